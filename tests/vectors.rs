//! Golden vectors: with the key, check key and split id injected through the
//! library (never the CLI), the share files are pinned by SHA-256. Any change
//! to the keystream, the kernel, the envelope or the share format changes
//! them; a deliberate change must come with a new format version.

mod common;

use std::path::Path;

use common::*;
use umbra::engine::CpuBackend;
use umbra::kernel::Level;
use umbra::sharing::{SplitPlan, Threshold, default_xs};
use umbra::stream::split::{SplitOptions, SplitSecrets, split_file};

const KEY: [u8; 32] = [0x11; 32];
const CHECK_KEY: [u8; 32] = [0x22; 32];
const SPLIT_ID: [u8; 16] = [0x33; 16];

fn split_with_level(level: Level, input: &Path, t: usize, n: usize) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let plan = SplitPlan::new(Threshold::new(t, n).unwrap(), default_xs(n)).unwrap();
    let mut opts = SplitOptions::new(plan);
    opts.segment_size = 4096; // several segments in a small file
    let backend = CpuBackend::new(level).unwrap();
    let secrets = SplitSecrets::fixed(KEY, CHECK_KEY, SPLIT_ID);
    let report = split_file(&backend, input, dir.path(), &opts, &secrets, &mut |_| {}).unwrap();
    report
        .shares
        .iter()
        .map(|p| sha256_hex(&std::fs::read(p).unwrap()))
        .collect()
}

/// CT_small.dcm from datasets/ split (4, 8).
const CT_SMALL_4_8: [&str; 8] = [
    "fefa0280d9a619fd0ee40989da1ff39599e955fed2128d8801ba539a1671baea",
    "f43f078fd301d6a47ab56e5fe832f0251ed2cf81c47b5af02c63eb80b92749ce",
    "9057bfcf607fe8f8452d21908f9c6c8b785aba97ce142a26d5a66046af475310",
    "b4b04d4b5025e67afab72277ae6c166f0aabca4e89489d89862df9ed4acf37ec",
    "2333ab724fbe4b382167665bd80380eca50b920cd47e06cd7bbdd54bd13813df",
    "c58f96332a19b90dfcbfaf84c6c63064a43d160ce5b0ce0e635580b9f690f488",
    "a90166afd49d9b3b7d560765c95a4826b593d7cbd3962f693b9a35697989b89d",
    "b41079837b4aed662519dcd750b365d6ae2b2b963d5e26c63c5f8be1cc43bae0",
];

#[test]
fn golden_shares_of_ct_small() {
    let input = repo_file("datasets/dicom/CT_small.dcm");
    for level in Level::available() {
        let got = split_with_level(level, &input, 4, 8);
        assert_eq!(got, CT_SMALL_4_8, "level {level}");
    }
}

/// A 10,000-byte synthetic file split (2, 3), small enough to read by eye.
const SYNTHETIC_2_3: [&str; 3] = [
    "6350fb1cb6c63af54c6ee5b0c85353e91ea086464118c645b2b78e5eef52e99e",
    "da5c42e23f02fe2468f72f038a912b6591367a237b27063082a509f7bd1b2006",
    "d19ca0dee071200c41252fcd7b0b194708ad3964769dd1c54e6017c0cf1876a4",
];

#[test]
fn golden_shares_of_synthetic_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("synthetic.bin");
    std::fs::write(&input, pseudo_random(10_000, 42)).unwrap();
    for level in Level::available() {
        assert_eq!(
            split_with_level(level, &input, 2, 3),
            SYNTHETIC_2_3,
            "level {level}"
        );
    }
}
