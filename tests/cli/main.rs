//! The real binary against every bad-input case of the core issue: each gets
//! a one-line error naming the file or share, a non-zero exit, and nothing
//! half-written.

#[path = "../common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

struct Split {
    dir: tempfile::TempDir,
    input: PathBuf,
    original: Vec<u8>,
    shares: Vec<PathBuf>,
}

/// Splits a fresh random file with the given parameters.
fn split(t: usize, n: usize, len: usize, seed: u64) -> Split {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scan.bin");
    let original = pseudo_random(len, seed);
    fs::write(&input, &original).unwrap();
    let out = dir.path().join("shares");
    let o = run(&[
        &"split",
        &"-t",
        &t.to_string(),
        &"-n",
        &n.to_string(),
        &"-o",
        &out,
        &input,
    ]);
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

#[test]
fn round_trip_restores_name_and_bytes() {
    let s = split(4, 8, 300_000, 1);
    let restore = s.dir.path().join("restore");
    fs::create_dir(&restore).unwrap();
    let o = combine(
        &restore,
        &[
            s.shares[7].clone(),
            s.shares[2].clone(),
            s.shares[4].clone(),
            s.shares[0].clone(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(restore.join("scan.bin")).unwrap(), s.original);
    assert_no_partials(&restore);
    // Share names show x; the input name only because it was asked for by default.
    assert!(
        s.shares[2]
            .to_string_lossy()
            .ends_with("scan.bin.003.umbra")
    );
}

#[test]
fn anonymous_names_hide_the_input_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("PATIENT_DOE_JOHN.dcm");
    fs::write(&input, b"DICOM-ish bytes").unwrap();
    let out = dir.path().join("shares");
    let o = run(&[
        &"split",
        &"--anonymous",
        &"-t",
        &"2",
        &"-n",
        &"3",
        &"-o",
        &out,
        &input,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shares = files_ending(&out, ".umbra");
    assert_eq!(shares.len(), 3);
    for s in &shares {
        let name = s.file_name().unwrap().to_string_lossy();
        assert!(!name.contains("DOE"), "{name}");
        let bytes = fs::read(s).unwrap();
        assert!(
            !bytes.windows(3).any(|w| w == b"DOE"),
            "name leaked into {name}"
        );
    }
    let restore = dir.path().join("restore");
    fs::create_dir(&restore).unwrap();
    let o = combine(&restore, &shares[..2], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::read(restore.join("PATIENT_DOE_JOHN.dcm")).unwrap(),
        b"DICOM-ish bytes"
    );
}

#[test]
fn bad_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("f");
    fs::write(&input, b"x").unwrap();
    for (t, n, needle) in [
        ("1", "3", "t = 1"),
        ("5", "4", "exceeds the share count"),
        ("4", "256", "n = 256"),
    ] {
        let o = run(&[
            &"split",
            &"-t",
            &t,
            &"-n",
            &n,
            &"-o",
            &dir.path().join("o"),
            &input,
        ]);
        assert_fails_with(&o, &[needle]);
    }
    let o = run(&[
        &"split",
        &"-t",
        &"2",
        &"-n",
        &"3",
        &"--xs",
        &"0,1,2",
        &"-o",
        &dir.path().join("o"),
        &input,
    ]);
    assert_fails_with(&o, &["x = 0"]);
    let o = run(&[
        &"split",
        &"-t",
        &"2",
        &"-n",
        &"3",
        &"--xs",
        &"1,2,2",
        &"-o",
        &dir.path().join("o"),
        &input,
    ]);
    assert_fails_with(&o, &["x = 2 appears twice"]);
    assert!(
        !dir.path().join("o").exists() || files_ending(&dir.path().join("o"), ".umbra").is_empty()
    );
}

#[test]
fn too_few_shares() {
    let s = split(4, 8, 5000, 2);
    let out = s.dir.path().join("out");
    let o = combine(&out, &s.shares[..3], &[]);
    assert_fails_with(&o, &["3 share(s) given", "t = 4"]);
    assert!(!out.exists());
}

#[test]
fn duplicate_share_or_duplicate_x() {
    let s = split(3, 5, 5000, 3);
    let out = s.dir.path().join("out");
    let o = combine(
        &out,
        &[
            s.shares[0].clone(),
            s.shares[0].clone(),
            s.shares[1].clone(),
        ],
        &[],
    );
    assert_fails_with(&o, &["x = 1", "scan.bin.001.umbra"]);
    // The same share under another name is still x = 1.
    let copy = s.dir.path().join("copy.umbra");
    fs::copy(&s.shares[0], &copy).unwrap();
    let o = combine(
        &out,
        &[s.shares[0].clone(), copy.clone(), s.shares[1].clone()],
        &[],
    );
    assert_fails_with(&o, &["both hold x = 1", "copy.umbra"]);
    assert!(!out.exists());
}

#[test]
fn shares_of_different_splits() {
    let a = split(2, 3, 5000, 4);
    let b = split(2, 3, 5000, 4); // same bytes, another split
    let out = a.dir.path().join("out");
    let o = combine(&out, &[a.shares[0].clone(), b.shares[1].clone()], &[]);
    assert_fails_with(&o, &["different splits"]);
    let c = split(3, 4, 5000, 4); // other t and n
    let o = combine(
        &out,
        &[
            a.shares[0].clone(),
            c.shares[1].clone(),
            c.shares[2].clone(),
        ],
        &[],
    );
    assert_fails_with(&o, &["different splits"]);
    assert!(!out.exists());
}

#[test]
fn truncated_share_named() {
    let s = split(2, 3, 5000, 5);
    let f = fs::OpenOptions::new()
        .write(true)
        .open(&s.shares[1])
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - 10).unwrap();
    let out = s.dir.path().join("out");
    let o = combine(&out, &s.shares[..2], &[]);
    assert_fails_with(&o, &["scan.bin.002.umbra", "truncated"]);
    assert!(!out.exists());
    // With a spare, the truncated share is skipped with a warning naming it.
    let o = combine(&out, &s.shares, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("scan.bin.002.umbra"), "{}", stderr(&o));
    assert_eq!(fs::read(&out).unwrap(), s.original);
}

#[test]
fn corrupted_share_named() {
    let s = split(3, 5, 3 << 20, 6);
    let mut bytes = fs::read(&s.shares[2]).unwrap();
    let at = bytes.len() - 100; // in the payload's last segment
    bytes[at] ^= 0x01;
    fs::write(&s.shares[2], &bytes).unwrap();
    let out = s.dir.path().join("out");
    let o = combine(&out, &s.shares[..3], &[]);
    assert_fails_with(&o, &["scan.bin.003.umbra", "corrupt"]);
    assert!(!out.exists());
    assert_no_partials(s.dir.path());
    // inspect names the bad segment and exits non-zero.
    let o = run(&[&"inspect", &s.shares[2]]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("CORRUPT segment(s): 2"));
    let o = run(&[&"inspect", &s.shares[1]]);
    assert!(o.status.success());
    // With spares, combine skips it and succeeds.
    let o = combine(&out, &s.shares, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("scan.bin.003.umbra"));
    assert_eq!(fs::read(&out).unwrap(), s.original);
}

#[test]
fn wrong_magic_and_unknown_version() {
    let s = split(2, 2, 1000, 7);
    let not_a_share = s.dir.path().join("notes.txt");
    fs::write(
        &not_a_share,
        "this is not a share, just text long enough to be read",
    )
    .unwrap();
    let out = s.dir.path().join("out");
    let o = combine(&out, &[s.shares[0].clone(), not_a_share.clone()], &[]);
    assert_fails_with(&o, &["notes.txt", "not an umbra share"]);

    let mut bytes = fs::read(&s.shares[1]).unwrap();
    bytes[8] = 9; // version
    let v9 = s.dir.path().join("v9.umbra");
    fs::write(&v9, &bytes).unwrap();
    let o = combine(&out, &[s.shares[0].clone(), v9], &[]);
    assert_fails_with(&o, &["v9.umbra", "version 9 is not supported"]);
    assert!(!out.exists());
}

#[test]
fn zero_x_in_a_share_header() {
    let s = split(2, 2, 1000, 8);
    let mut bytes = fs::read(&s.shares[1]).unwrap();
    bytes[16] = 0;
    fs::write(&s.shares[1], &bytes).unwrap();
    let o = combine(&s.dir.path().join("out"), &s.shares, &[]);
    assert_fails_with(&o, &["scan.bin.002.umbra", "x = 0"]);
}

/// Rewrites a share's payload byte and recomputes its segment and header
/// hashes, as a provider that forges a share would: only the keyed tag can
/// notice.
fn forge(path: &Path, payload_byte: usize) {
    let mut b = fs::read(path).unwrap();
    let seg = u32::from_le_bytes(b[20..24].try_into().unwrap()) as usize;
    let payload_len = u64::from_le_bytes(b[24..32].try_into().unwrap()) as usize;
    let segments = payload_len.div_ceil(seg);
    let payload_at = 128 + 32 * segments;
    b[payload_at + payload_byte] ^= 0x40;
    let k = payload_byte / seg;
    let segment = &b[payload_at + k * seg..payload_at + ((k + 1) * seg).min(payload_len)];
    let h = *blake3::hash(segment).as_bytes();
    b[128 + 32 * k..128 + 32 * (k + 1)].copy_from_slice(&h);
    let mut hh = blake3::Hasher::new_derive_key("umbra share header v1");
    hh.update(&b[..96]);
    hh.update(&b[128..payload_at]);
    let hh = *hh.finalize().as_bytes();
    b[96..128].copy_from_slice(&hh);
    fs::write(path, &b).unwrap();
}

#[test]
fn forged_share_fails_the_tag_and_spares_recover() {
    let s = split(3, 5, 100_000, 9);
    forge(&s.shares[1], 50_000);
    // inspect cannot tell: its own hashes hold.
    assert!(run(&[&"inspect", &s.shares[1]]).status.success());
    let out = s.dir.path().join("out");
    let o = combine(&out, &s.shares[..3], &[]);
    assert_fails_with(&o, &["integrity check failed"]);
    assert!(!out.exists());
    assert_no_partials(s.dir.path());
    // With spares, another subset rebuilds the tagged object.
    let o = combine(&out, &s.shares, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("left out"), "{}", stderr(&o));
    assert_eq!(fs::read(&out).unwrap(), s.original);
}

#[test]
fn unreadable_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file.dcm");
    let o = run(&[&"split", &"-o", &dir.path().join("o"), &missing]);
    assert_fails_with(&o, &["no-such-file.dcm"]);
    let o = run(&[
        &"combine",
        &"-o",
        &dir.path().join("x"),
        &missing,
        &dir.path().join("other"),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-file.dcm"), "{}", stderr(&o));
}

#[test]
fn existing_output_refused_unless_forced() {
    let s = split(2, 3, 2000, 10);
    let out = s.dir.path().join("out");
    fs::write(&out, b"precious").unwrap();
    let o = combine(&out, &s.shares[..2], &[]);
    assert_fails_with(&o, &["already exists", "--force"]);
    assert_eq!(fs::read(&out).unwrap(), b"precious");
    let o = combine(&out, &s.shares[..2], &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&out).unwrap(), s.original);
    // Splitting again into the same directory is refused too, and leaves
    // the earlier shares as they were.
    let before = fs::read(&s.shares[0]).unwrap();
    let o = run(&[
        &"split",
        &"-t",
        &"2",
        &"-n",
        &"3",
        &"-o",
        &s.shares[0].parent().unwrap(),
        &s.input,
    ]);
    assert_fails_with(&o, &["already exists"]);
    assert_eq!(fs::read(&s.shares[0]).unwrap(), before);
    assert_no_partials(s.shares[0].parent().unwrap());
}

#[test]
fn repair_rebuilds_the_exact_share() {
    let s = split(3, 5, 2_500_000, 11);
    let lost = s.shares[3].clone();
    let original_share = fs::read(&lost).unwrap();
    fs::remove_file(&lost).unwrap();
    let o = run(&[
        &"repair",
        &"--x",
        &"4",
        &s.shares[0],
        &s.shares[1],
        &s.shares[4],
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::read(&lost).unwrap(),
        original_share,
        "repaired share is byte-identical"
    );
    // Repairing an x that is present is refused.
    let o = run(&[
        &"repair",
        &"--x",
        &"1",
        &"-o",
        &s.dir.path().join("r"),
        &s.shares[0],
        &s.shares[1],
        &s.shares[4],
    ]);
    assert_fails_with(&o, &["x = 1"]);
}

#[test]
fn simd_override_cannot_exceed_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("f");
    fs::write(&input, b"abc").unwrap();
    let foreign = if cfg!(target_arch = "x86_64") {
        "neon"
    } else {
        "avx2"
    };
    let o = run(&[
        &"--simd",
        &foreign,
        &"split",
        &"-o",
        &dir.path().join("o"),
        &input,
    ]);
    assert_fails_with(&o, &[foreign, "lacks"]);
    let o = umbra()
        .env("UMBRA_SIMD", "portable")
        .args(["-v", "split", "-t", "2", "-n", "2", "-o"])
        .arg(dir.path().join("p"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("cpu (portable)"), "{}", stderr(&o));
}

#[test]
fn every_command_has_help() {
    for cmd in [
        "split",
        "combine",
        "repair",
        "inspect",
        "bench",
        "synth-volume",
        "shadows",
        "stats",
        "reproduce",
        "init",
        "config",
        "migrate",
        "restore",
        "verify",
        "archive-repair",
        "audit",
    ] {
        let o = run(&[&cmd, &"--help"]);
        assert!(o.status.success(), "{cmd} --help");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage"),
            "{cmd} --help"
        );
    }
}

/// On a terminal (a pty from `script`), a large enough input gets a progress
/// bar on stderr; with --quiet, or without a terminal, none.
#[test]
fn progress_bar_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.bin");
    fs::write(&input, pseudo_random(3 << 20, 12)).unwrap();
    let bin = env!("CARGO_BIN_EXE_umbra");
    let run_in_pty = |extra: &str, out: &str| {
        let cmd = format!(
            "UMBRA_PROGRESS_MIN_BYTES=1 {bin} {extra} split -o {} {}",
            dir.path().join(out).display(),
            input.display()
        );
        let o = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .expect("script (util-linux) runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let shown = run_in_pty("", "a");
    assert!(
        shown.contains("big.bin") && shown.contains("MiB"),
        "no progress bar: {shown:?}"
    );
    let quiet = run_in_pty("--quiet", "b");
    assert!(
        !quiet.contains("MiB"),
        "progress bar despite --quiet: {quiet:?}"
    );
    // Not a terminal: nothing on stderr at all.
    let o = umbra()
        .env("UMBRA_PROGRESS_MIN_BYTES", "1")
        .args(["split", "-o"])
        .arg(dir.path().join("c"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(stderr(&o), "");
}

/// `--backend gpu` runs on the best adapter there is (Mesa's software Vulkan
/// in CI) and says which; its shares combine on the CPU, and the other way.
#[test]
fn gpu_backend_round_trip_and_names_the_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scan.bin");
    let data = pseudo_random(200_000, 13);
    fs::write(&input, &data).unwrap();
    let out = dir.path().join("shares");
    let o = umbra()
        .args(["--backend", "gpu", "split", "-t", "3", "-n", "5", "-o"])
        .arg(&out)
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("backend: gpu ("), "{}", stderr(&o));
    let shares = files_ending(&out, ".umbra");
    let restored = dir.path().join("restored.bin");
    let o = umbra()
        .args(["--backend", "cpu", "combine", "-o"])
        .arg(&restored)
        .args(&shares[2..])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&restored).unwrap(), data);
    let again = dir.path().join("again.bin");
    let o = umbra()
        .args(["--backend", "gpu", "combine", "-o"])
        .arg(&again)
        .args(&shares[..3])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&again).unwrap(), data);
}

/// `--cross-check` computes on two backends and agrees.
#[test]
fn cross_check_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scan.bin");
    fs::write(&input, pseudo_random(70_000, 14)).unwrap();
    let o = umbra()
        .args(["--cross-check", "split", "-t", "2", "-n", "3", "-o"])
        .arg(dir.path().join("s"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("cross-checked with"), "{}", stderr(&o));
}

/// With no Vulkan driver at all: `--backend gpu` is a clear error, and
/// `--backend auto` quietly uses the CPU even for a job large enough to
/// want a GPU.
#[test]
fn no_adapter_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scan.bin");
    let data = pseudo_random(50_000, 15);
    fs::write(&input, &data).unwrap();
    let no_driver = |c: &mut std::process::Command| {
        c.env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
            .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
            .env("WGPU_BACKEND", "vulkan");
    };
    let mut c = umbra();
    no_driver(&mut c);
    let o = c
        .args(["--backend", "gpu", "split", "-o"])
        .arg(dir.path().join("g"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--backend gpu"), "{}", stderr(&o));
    assert!(
        !dir.path().join("g").exists() || files_ending(&dir.path().join("g"), ".umbra").is_empty()
    );

    let mut c = umbra();
    no_driver(&mut c);
    let o = c
        .env("UMBRA_AUTO_GPU_MIN_BYTES", "1")
        .args([
            "-v",
            "--backend",
            "auto",
            "split",
            "-t",
            "2",
            "-n",
            "2",
            "-o",
        ])
        .arg(dir.path().join("a"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("no hardware GPU") && err.contains("backend: cpu ("),
        "{err}"
    );
}

#[test]
fn inspect_json_reports_every_field() {
    let s = split(3, 5, 10_000, 16);
    let o = run(&[&"inspect", &"--json", &s.shares[4]]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v[0];
    assert_eq!(r["t"], 3);
    assert_eq!(r["n"], 5);
    assert_eq!(r["x"], 5);
    assert_eq!(r["field_polynomial"], "0x11d");
    assert_eq!(r["header_ok"], true);
    assert_eq!(r["corrupt_segments"].as_array().unwrap().len(), 0);
    assert_eq!(r["split_id"].as_str().unwrap().len(), 32);
    // The payload is the object plus its private metadata, never less.
    assert!(r["payload_len"].as_u64().unwrap() > 10_000);
}

#[test]
fn custom_coordinates_round_trip_and_repair_names_the_share() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("img.raw");
    let data = pseudo_random(40_000, 17);
    fs::write(&input, &data).unwrap();
    let out = dir.path().join("s");
    let o = run(&[
        &"split",
        &"-t",
        &"2",
        &"-n",
        &"3",
        &"--xs",
        &"7,200,255",
        &"-o",
        &out,
        &input,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shares = files_ending(&out, ".umbra");
    let names: Vec<String> = shares
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "img.raw.007.umbra",
            "img.raw.200.umbra",
            "img.raw.255.umbra"
        ]
    );
    let lost = fs::read(&shares[1]).unwrap();
    fs::remove_file(&shares[1]).unwrap();
    let o = run(&[&"repair", &"--x", &"200", &shares[0], &shares[2]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&shares[1]).unwrap(), lost);
    let restored = dir.path().join("back.raw");
    let o = run(&[&"combine", &"-o", &restored, &shares[2], &shares[1]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&restored).unwrap(), data);
}

#[test]
fn gfshare_bad_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("f.bin");
    fs::write(&input, pseudo_random(1000, 18)).unwrap();
    let out = dir.path().join("g");
    let o = run(&[
        &"split",
        &"--format",
        &"gfshare",
        &"-t",
        &"2",
        &"-n",
        &"3",
        &"-o",
        &out,
        &input,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shares = files_ending(&out, "");
    // A share of another length.
    let short = dir.path().join("f.bin.009");
    fs::write(&short, b"short").unwrap();
    let o = run(&[
        &"combine",
        &"--format",
        &"gfshare",
        &"-o",
        &dir.path().join("x"),
        &shares[0],
        &short,
    ]);
    assert_fails_with(&o, &["f.bin.009", "5 bytes"]);
    // A name without three digits.
    let odd = dir.path().join("f.bin.x1");
    fs::copy(&shares[0], &odd).unwrap();
    let o = run(&[
        &"combine",
        &"--format",
        &"gfshare",
        &"-o",
        &dir.path().join("x"),
        &shares[1],
        &odd,
    ]);
    assert_fails_with(&o, &["f.bin.x1", "three digits"]);
    // The same x twice.
    let o = run(&[
        &"combine",
        &"--format",
        &"gfshare",
        &"-o",
        &dir.path().join("x"),
        &shares[1],
        &shares[1],
    ]);
    assert_fails_with(&o, &["x = 2"]);
    assert!(!dir.path().join("x").exists());
}

#[test]
fn synthetic_volume_is_deterministic_and_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.raw");
    let b = dir.path().join("b.raw");
    for out in [&a, &b] {
        let o = run(&[
            &"synth-volume",
            &"--slices",
            &"3",
            &"--width",
            &"64",
            &"--height",
            &"32",
            &"-o",
            out,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let bytes = fs::read(&a).unwrap();
    assert_eq!(bytes.len(), 3 * 64 * 32 * 2);
    assert_eq!(bytes, fs::read(&b).unwrap());
    let o = run(&[&"synth-volume", &"--slices", &"1", &"-o", &a]);
    assert_fails_with(&o, &["a.raw", "already exists"]);
    assert_eq!(fs::read(&a).unwrap(), bytes);
}
