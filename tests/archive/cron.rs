//! The nightly job as cron runs it: no terminal, a bare environment, `-q`
//! and `--json`: one JSON line on stdout, nothing on stderr; distinct exit
//! codes (0 done, 1 fatal, 3 some objects failed or degraded, 11 locked).

use super::*;

#[test]
fn a_cron_run_prints_one_json_line_and_nothing_on_stderr() {
    let f = fixture(2, 3, 3);
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_umbra"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            // Probe for a GPU even for this small job: the driver's noise
            // at the probe must not reach cron's mail either.
            .env("UMBRA_AUTO_GPU_MIN_BYTES", "0")
            .args(["-q", "migrate", "-C"])
            .arg(&f.arc)
            .args(["--source", f.src.to_str().unwrap(), "--json"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for written in [SMALL_FILES as u64, 0] {
        let o = run();
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(stderr(&o), "", "stderr must stay empty under cron");
        let out = String::from_utf8(o.stdout).unwrap();
        assert_eq!(out.lines().count(), 1, "one JSON line: {out}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["written"], written);
        for field in ["started_at", "finished_at"] {
            let t = r[field].as_str().unwrap();
            assert!(
                t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
                "{t}"
            );
        }
        assert!(r["duration_seconds"].as_f64().unwrap() >= 0.0);
    }
}

/// A second writer while one holds the lock: exit 11, naming the lock;
/// `--retry-lock` waits (and says how long) before giving up.
#[test]
fn a_held_lock_is_exit_11_and_retry_lock_waits() {
    let f = fixture(2, 3, 3);
    let pause = f.root.join("pause");
    let mut first = migrate_paused(&f, "split:1", 64, &pause);
    let o = f.migrate();
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("holds the archive lock"),
        "{}",
        stderr(&o)
    );
    let started = Instant::now();
    let o = f.run(&["archive-repair", "--retry-lock", "1s"]);
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(stderr(&o).contains("waited 1 s"), "{}", stderr(&o));
    // The first run goes on; a waiting second one then gets the lock.
    let second = f
        .cmd(&[
            "migrate",
            "--source",
            f.src.to_str().unwrap(),
            "--retry-lock",
            "2m",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    fs::remove_file(&pause).unwrap();
    assert!(first.wait().unwrap().success());
    let o = second.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["written"], 0, "the first run wrote everything");
}
