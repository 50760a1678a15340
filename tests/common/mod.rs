//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The real `umbra` binary built by cargo for these tests.
pub fn umbra() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_umbra"));
    c.env_remove("UMBRA_SIMD").env_remove("UMBRA_THREADS");
    c
}

pub fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = umbra();
    for a in args {
        c.arg(a.as_ref());
    }
    c.output().expect("umbra runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Deterministic bytes (xorshift), different per seed.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect()
}

pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Files in `dir` whose names end with `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// No temporary or partial files left behind in `dir`.
pub fn assert_no_partials(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(
            !name.contains(".partial"),
            "left-over temporary file {name} in {}",
            dir.display()
        );
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The JSON a successful command printed on stdout.
pub fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

/// Where `name` is on PATH, if it is: for the real external programs the
/// tests use (gfsplit, Orthanc, s3s-fs), whose absence must fail a test
/// with an install hint, never skip it.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
}

/// Every file under `dir`, as a multiset of SHA-256 hashes: two trees
/// compare equal when they hold the same bytes, whatever the layout.
pub fn tree_hashes(dir: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                *m.entry(sha256_hex(&std::fs::read(&p).expect("file")))
                    .or_default() += 1;
            }
        }
    }
    m
}
