//! The share tools through the real binary, one module per command: every
//! bad-input case gets a one-line error naming the file or share, a non-zero
//! exit, and nothing half-written. The helpers here are the modules' shared
//! fixture: a fresh split of random bytes.

#[path = "../common/mod.rs"]
mod common;

/// Each named test function, taking the scheme, run once per scheme as
/// `NAME::shamir` and `NAME::compact`: every bad input is refused and named
/// the same way whichever scheme made the shares.
macro_rules! both_schemes {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn shamir() {
                    super::$name("shamir")
                }
                #[test]
                fn compact() {
                    super::$name("compact")
                }
            }
        )*
    };
}

mod backend;
mod combine;
mod gfshare;
mod inspect;
mod output;
mod refusals;
mod repair;
mod split;
mod synth_volume;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

struct Split {
    dir: tempfile::TempDir,
    input: PathBuf,
    original: Vec<u8>,
    shares: Vec<PathBuf>,
}

/// Splits a fresh random file with the given parameters (Shamir).
fn split(t: usize, n: usize, len: usize, seed: u64) -> Split {
    split_with(t, n, len, seed, "shamir")
}

/// [`split`] with `--scheme`; compact shares get 256 KiB segments, so that
/// a file of a few MiB has several, as Shamir's 1 MiB segments give.
fn split_with(t: usize, n: usize, len: usize, seed: u64, scheme: &str) -> Split {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scan.bin");
    let original = pseudo_random(len, seed);
    fs::write(&input, &original).unwrap();
    let out = dir.path().join("shares");
    let seg = if scheme == "compact" {
        "262144"
    } else {
        "1048576"
    };
    let o = run_line(
        "split -t {} -n {} --scheme {} --segment-size {} -o {} {}",
        &[&t.to_string(), &n.to_string(), &scheme, &seg, &out, &input],
    );
    assert!(o.status.success(), "split failed: {}", stderr(&o));
    let shares = files_ending(&out, ".umbra");
    assert_eq!(shares.len(), n);
    Split {
        dir,
        input,
        original,
        shares,
    }
}

fn combine(out: &Path, shares: &[PathBuf], extra: &[&str]) -> std::process::Output {
    let mut c = umbra();
    c.arg("combine").arg("-o").arg(out).args(extra).args(shares);
    c.output().unwrap()
}

/// Fails with a single error line containing every one of `needles`.
fn assert_fails_with(o: &std::process::Output, needles: &[&str]) {
    assert!(!o.status.success(), "expected failure, got success");
    let err = stderr(o);
    let error_lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(error_lines.len(), 1, "one error line expected, got: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

/// Rewrites a share's payload byte and recomputes its segment and header
/// hashes, as a provider that forges a share would: only the keyed tag can
/// notice.
/// (header length, segment size, payload length, payload offset) of a
/// share file, read by docs/FORMAT.md (version 1 or 2).
fn layout(b: &[u8]) -> (usize, usize, usize, usize) {
    let header = u16::from_le_bytes([b[10], b[11]]) as usize;
    let seg = u32::from_le_bytes(b[20..24].try_into().unwrap()) as usize;
    let payload_len = u64::from_le_bytes(b[24..32].try_into().unwrap()) as usize;
    (
        header,
        seg,
        payload_len,
        header + 32 * payload_len.div_ceil(seg),
    )
}

/// Which payload segment byte `at` of a share file is in.
fn segment_at(path: &Path, at: usize) -> usize {
    let (_, seg, _, payload_at) = layout(&fs::read(path).unwrap());
    (at - payload_at) / seg
}

/// Rewrites a share's payload byte (`payload_byte` modulo the payload
/// length) and recomputes its segment and header hashes, as a provider that
/// forges a share would: only the keyed tag can notice.
fn forge(path: &Path, payload_byte: usize) {
    let mut b = fs::read(path).unwrap();
    let (header, seg, payload_len, payload_at) = layout(&b);
    let payload_byte = payload_byte % payload_len;
    b[payload_at + payload_byte] ^= 0x40;
    let k = payload_byte / seg;
    let segment = &b[payload_at + k * seg..payload_at + ((k + 1) * seg).min(payload_len)];
    let h = *blake3::hash(segment).as_bytes();
    b[header + 32 * k..header + 32 * (k + 1)].copy_from_slice(&h);
    let context = if header == 128 {
        "umbra share header v1"
    } else {
        "umbra share header v2"
    };
    let mut hh = blake3::Hasher::new_derive_key(context);
    hh.update(&b[..header - 32]);
    hh.update(&b[header..payload_at]);
    let hh = *hh.finalize().as_bytes();
    b[header - 32..header].copy_from_slice(&hh);
    fs::write(path, &b).unwrap();
}

/// Flips a payload byte in segment `k` of a share, leaving its hashes: the
/// segment's hash no longer holds.
fn damage_segment(path: &Path, k: usize) {
    let mut b = fs::read(path).unwrap();
    let (_, seg, _, payload_at) = layout(&b);
    b[payload_at + k * seg + 10] ^= 0x01;
    fs::write(path, &b).unwrap();
}
