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

/// On a terminal (a pty from `script`), migrate, restore and verify --deep
/// show their phase and bytes (MB, MB/s, objects done of all); each is
/// stopped at a test pause point so that the bar is surely drawn. Without a
/// terminal the same runs draw nothing.
#[test]
fn a_terminal_shows_progress_in_bytes() {
    let f = fixture(2, 3, 3);
    let bin = env!("CARGO_BIN_EXE_umbra");
    let arc = f.arc.display().to_string();
    let pause = f.root.join("pause");
    let in_pty = |point: &str, args: String| -> String {
        let _ = fs::remove_file(&pause);
        let line = format!(
            "UMBRA_BACKEND=cpu UMBRA_TEST_PAUSE_AT={point} UMBRA_TEST_PAUSE_FILE={} {bin} {args}",
            pause.display()
        );
        let mut child = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs");
        wait_for(&pause, &mut child);
        // The bar is redrawn ten times a second: let it be drawn.
        std::thread::sleep(Duration::from_millis(500));
        fs::remove_file(&pause).unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let src = f.src.display().to_string();
    let shown = in_pty(
        "put:2",
        format!("migrate -C {arc} --source {src} --group 1"),
    );
    assert!(
        shown.contains("writing [") && shown.contains(" MB/s"),
        "{shown:?}"
    );
    assert!(shown.contains(&format!("(1/{SMALL_FILES})")), "{shown:?}");
    let out = f.root.join("out").display().to_string();
    let shown = in_pty("restored:1", format!("restore -C {arc} --all -o {out}"));
    assert!(
        shown.contains("restoring [") && shown.contains(" MB/s"),
        "{shown:?}"
    );
    let shown = in_pty("verified:3", format!("verify --deep -C {arc}"));
    assert!(
        shown.contains("verifying [") && shown.contains(&format!("(3/{SMALL_FILES})")),
        "{shown:?}"
    );
    // No terminal, no -q: the summary line, no bar.
    let o = f.run(&["verify", "--deep"]);
    assert!(o.status.success());
    assert!(!stderr(&o).contains("MB/s"), "{}", stderr(&o));
}
