//! Golden vectors: with the key, check key and split id injected through the
//! library (never the CLI), the share files are pinned by SHA-256. Any change
//! to the keystream, the kernel, the envelope or the share format changes
//! them; a deliberate change must come with a new format version.

mod common;

use std::path::Path;

use common::*;
use umbra::engine::CpuBackend;
use umbra::kernel::Level;
use umbra::share::format::SchemeKind;
use umbra::sharing::{SplitPlan, Threshold, default_xs};
use umbra::stream::split::{SplitOptions, SplitSecrets, split_file};

const KEY: [u8; 32] = [0x11; 32];
const CHECK_KEY: [u8; 32] = [0x22; 32];
const SPLIT_ID: [u8; 16] = [0x33; 16];
const SHARE_SEED: [u8; 32] = [0x44; 32];

fn split_with_level(level: Level, input: &Path, t: usize, n: usize) -> Vec<String> {
    split_scheme(level, input, t, n, SchemeKind::Shamir)
}

fn split_scheme(level: Level, input: &Path, t: usize, n: usize, scheme: SchemeKind) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let plan = SplitPlan::new(Threshold::new(t, n).unwrap(), default_xs(n)).unwrap();
    let mut opts = SplitOptions::new(plan).with_scheme(scheme);
    opts.segment_size = 4096; // several segments in a small file
    let backend = CpuBackend::new(level).unwrap();
    let secrets = SplitSecrets::fixed(KEY, CHECK_KEY, SPLIT_ID).with_share_seed(SHARE_SEED);
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

/// CT_small.dcm split (4, 8) with the compact scheme (share format v2).
const CT_SMALL_COMPACT_4_8: [&str; 8] = [
    "ba110bb2bdc6f5b740a9994a17ae05808f12e88f1e0648420a3f3d7c13aa40cd",
    "0e923ee85b3f1514a9aa38f7f03ac40d085787799619d360cc3aab96e94f2709",
    "529662e04c865a84250ca7ac359160319bcadc6527c88047bd8ed173237d2ad7",
    "a75b1ffab487c7789174c643f90a0d45a5c2ac264a77425c8d98e9eaf1ec52df",
    "3ac87ef8b1f863320d45d8ca9b1c940662ec36e6ec81a435ece294eb3e5c7a03",
    "a755a3fc39fab7c0bfaa8dea9dfcf07b836eedd56718d9d7711d9bc8b268bab8",
    "7e4751aa735c452ce55b9054c5c4d109b816daced86ae745bd7c1a25d3dc5dbf",
    "5da7ec23d1c36277609f6d08a7e079290f7b236ce840ba6c73f4d4e724543335",
];

#[test]
fn golden_compact_shares_of_ct_small() {
    let input = repo_file("datasets/dicom/CT_small.dcm");
    for level in Level::available() {
        let got = split_scheme(level, &input, 4, 8, SchemeKind::Compact);
        assert_eq!(got, CT_SMALL_COMPACT_4_8, "level {level}");
    }
}

/// The 10,000-byte synthetic file split (3, 5) with the compact scheme: a
/// full block of 3 x 4096 bytes and none, so one short block only.
const SYNTHETIC_COMPACT_3_5: [&str; 5] = [
    "6fcb41921176753d2259cbbb7f91bf8aa6e407fb32a329dea4cde9b3ac3f90dc",
    "ee29a24814b6375c136082870d8b32f2c92e64f56f70ca454819caf036431ee0",
    "95ddcb515e7b432584d647b514efffedc24c90047a2b3b7c5ab44c2e400387d6",
    "9e7e6dca69b5b17fbf3ef806023adfcebcdc57bc646b5d30c6f69dffef35c158",
    "c7ed8e55ca2be5845c4e4bef90171fe6b3bb1b6dc694919dbae26f12f5d997d5",
];

#[test]
fn golden_compact_shares_of_synthetic_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("synthetic.bin");
    std::fs::write(&input, pseudo_random(10_000, 42)).unwrap();
    for level in Level::available() {
        assert_eq!(
            split_scheme(level, &input, 3, 5, SchemeKind::Compact),
            SYNTHETIC_COMPACT_3_5,
            "level {level}"
        );
    }
}

/// A compact split read back by docs/FORMAT.md alone, not by umbra's
/// combine: header fields at their offsets, the key from the key shares by
/// Lagrange at 0, the stripes of each block from the payloads, the cipher
/// stream XORed off; the envelope and content must come out.
#[test]
fn compact_shares_decode_by_the_format_document() {
    use umbra::field;
    use umbra::keystream::{ObjectKey, fill};
    use umbra::sharing::Matrix;

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("doc.bin");
    let content = pseudo_random(30_001, 7);
    std::fs::write(&input, &content).unwrap();
    let (t, n) = (3, 5);
    let plan = SplitPlan::new(Threshold::new(t, n).unwrap(), default_xs(n)).unwrap();
    let mut opts = SplitOptions::new(plan).with_scheme(SchemeKind::Compact);
    opts.segment_size = 4096;
    let secrets = SplitSecrets::fixed(KEY, CHECK_KEY, SPLIT_ID).with_share_seed(SHARE_SEED);
    let report = split_file(
        &CpuBackend::detect(),
        &input,
        dir.path(),
        &opts,
        &secrets,
        &mut |_| {},
    )
    .unwrap();
    let files: Vec<Vec<u8>> = [1usize, 3, 4]
        .iter()
        .map(|&i| std::fs::read(&report.shares[i]).unwrap())
        .collect();
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let xs: Vec<u8> = files.iter().map(|f| f[16]).collect();
    assert_eq!(xs, [2, 4, 5]);
    for f in &files {
        assert_eq!(&f[0..8], b"UMBRASHR");
        assert_eq!(u16::from_le_bytes([f[8], f[9]]), 2, "version");
        assert_eq!(u16::from_le_bytes([f[10], f[11]]), 160, "header length");
        assert_eq!(f[17], 1, "scheme: compact");
    }
    let seg = u32::from_le_bytes(files[0][20..24].try_into().unwrap()) as usize;
    let payload_len = u64_at(&files[0], 24) as usize;
    let stream_len = u64_at(&files[0], 80) as usize;
    assert_eq!(
        stream_len,
        53 + "doc.bin".len() + "application/octet-stream".len() + 30_001
    );
    let segments = payload_len.div_ceil(seg);
    let payloads: Vec<&[u8]> = files.iter().map(|f| &f[160 + 32 * segments..]).collect();
    assert!(payloads.iter().all(|p| p.len() == payload_len));

    // The key: Lagrange at 0 over the key shares at bytes 96..128.
    let weights = Matrix::lagrange(&xs, &[0]).unwrap();
    let mut key = [0u8; 32];
    for (c, f) in files.iter().enumerate() {
        for (k, b) in key.iter_mut().zip(&f[96..128]) {
            *k ^= field::mul(weights.get(0, c), *b);
        }
    }
    assert_eq!(key, KEY);
    let key = ObjectKey::from_bytes(key);

    // Block b: t stripes from segment b of the payloads, then decrypted.
    let inverse = Matrix::vandermonde_inverse(&xs).unwrap();
    let mut stream = Vec::new();
    let mut at = 0;
    while stream.len() < stream_len {
        let stripe = (payload_len - at).min(seg);
        let mut block = vec![0u8; t * stripe];
        for k in 0..t {
            for p in 0..stripe {
                block[k * stripe + p] = (0..t).fold(0u8, |acc, c| {
                    acc ^ field::mul(inverse.get(k, c), payloads[c][at + p])
                });
            }
        }
        block.truncate((stream_len - stream.len()).min(t * seg));
        let mut ks = vec![0u8; block.len()];
        fill(&key, 0, stream.len() as u64, &mut ks);
        stream.extend(block.iter().zip(&ks).map(|(a, b)| a ^ b));
        at += stripe;
    }
    assert_eq!(&stream[..32], &CHECK_KEY, "the check key opens the stream");
    assert_eq!(&stream[32..40], b"UMBRAOBJ");
    assert_eq!(&stream[stream_len - content.len()..], &content[..]);
    // The tag in every header is keyed BLAKE3 of the stream after the check key.
    let tag = blake3::keyed_hash(&CHECK_KEY, &stream[32..]);
    assert!(files.iter().all(|f| f[48..80] == *tag.as_bytes()));
}
