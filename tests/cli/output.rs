//! What every command prints: help, and progress bars only on a terminal.

use super::*;

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
        "status",
        "ls",
        "forget",
        "erase",
        "key",
    ] {
        let o = run_line("{} --help", &[&cmd]);
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
    // Not a terminal: no bar, only the one line saying what was written;
    // with --quiet, nothing at all.
    let o = umbra()
        .env("UMBRA_PROGRESS_MIN_BYTES", "1")
        .args(["split", "-o"])
        .arg(dir.path().join("c"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(!err.contains("MiB") && err.lines().count() == 1, "{err}");
    let o = umbra()
        .env("UMBRA_PROGRESS_MIN_BYTES", "1")
        .args(["-q", "split", "-o"])
        .arg(dir.path().join("d"))
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(stderr(&o), "");
}
