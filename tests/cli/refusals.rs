//! What the share tools refuse, and what they say when they succeed: a FIFO
//! input is refused (never read, never hung on), `--force` replaces regular
//! files only, split checks every input before it creates anything, and
//! argument errors are one line.

use std::os::unix::fs::symlink;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// Runs `c`, killing it (and failing the test) if it runs past 30 s: the
/// bug these tests guard against is a hang.
fn run_bounded(mut c: Command) -> Output {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("umbra hung on a FIFO: {c:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &Path) {
    let o = Command::new("mkfifo").arg(path).output().unwrap();
    assert!(o.status.success(), "mkfifo: {}", stderr(&o));
}

#[test]
fn a_fifo_input_is_refused_by_every_tool() {
    let s = split(2, 3, 5000, 1);
    let fifo = s.dir.path().join("pipe");
    mkfifo(&fifo);
    let out = s.dir.path().join("out");
    for args in [
        vec!["split", "-t", "2", "-n", "3", "-o"],
        vec!["combine", "-o"],
        vec!["inspect"],
    ] {
        let mut c = umbra();
        c.args(&args);
        if args[0] != "inspect" {
            c.arg(&out);
        }
        c.arg(&fifo);
        if args[0] == "combine" {
            c.arg(&s.shares[0]);
        }
        let o = run_bounded(c);
        assert_fails_with(&o, &["pipe", "a FIFO, not a regular file"]);
        assert!(!out.exists(), "{}: created {}", args[0], out.display());
    }
}

#[test]
fn force_replaces_regular_files_only() {
    let s = split(2, 3, 5000, 2);
    let fifo = s.dir.path().join("fifo-out");
    mkfifo(&fifo);
    let link = s.dir.path().join("link-out");
    let victim = s.dir.path().join("victim");
    fs::write(&victim, b"not to be touched").unwrap();
    symlink(&victim, &link).unwrap();
    for (target, kind) in [(&fifo, "a FIFO"), (&link, "a symbolic link")] {
        let o = combine(target, &s.shares, &["--force"]);
        assert_fails_with(&o, &["--force replaces regular files only", kind]);
    }
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read(&victim).unwrap(), b"not to be touched");
    let o = run_line(
        "repair --x 3 --force -o {} {} {}",
        &[&fifo, &s.shares[0], &s.shares[1]],
    );
    assert_fails_with(&o, &["a FIFO"]);
    // A regular file is replaced, as asked.
    let o = combine(&victim, &s.shares, &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read(&victim).unwrap(), s.original);
}

#[test]
fn split_checks_every_input_before_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bin");
    fs::write(&good, pseudo_random(1000, 3)).unwrap();
    let out = dir.path().join("out");
    let o = run_line(
        "split -t 2 -n 3 -o {} {} {}",
        &[&out, &good, &dir.path().join("missing.bin")],
    );
    assert_fails_with(&o, &["nothing split", "missing.bin"]);
    assert!(!out.exists());
}

#[test]
fn a_failure_part_way_says_which_files_were_split() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.bin"), dir.path().join("b.bin"));
    fs::write(&a, pseudo_random(1000, 4)).unwrap();
    fs::write(&b, pseudo_random(1000, 5)).unwrap();
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    // b's second share is already there: b is refused, a is split.
    fs::write(out.join("b.bin.002.umbra"), b"someone else's").unwrap();
    let o = run_line("split -t 2 -n 3 -o {} {} {}", &[&out, &a, &b]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let summary = err.lines().last().unwrap();
    assert!(
        summary.contains("1 of 2 files not split") && summary.ends_with("a.bin"),
        "{err}"
    );
    assert!(err.contains("b.bin.002.umbra already exists"), "{err}");
    assert_eq!(
        files_ending(&out, ".umbra").len(),
        4,
        "a's 3 and the stranger"
    );
    assert_eq!(
        fs::read(out.join("b.bin.002.umbra")).unwrap(),
        b"someone else's"
    );
}

#[test]
fn anonymous_names_need_the_umbra_format() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("scan.bin");
    fs::write(&input, b"x").unwrap();
    let out = dir.path().join("out");
    let o = run_line(
        "split --format gfshare --anonymous -t 2 -n 3 -o {} {}",
        &[&out, &input],
    );
    assert_fails_with(&o, &["--anonymous needs --format umbra"]);
    assert!(!out.exists());
}

#[test]
fn split_combine_and_repair_say_what_they_wrote_where() {
    let s = split(2, 3, 5000, 6);
    let out = s.dir.path().join("back.bin");
    let o = combine(&out, &s.shares[..2], &[]);
    assert!(o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("restored scan.bin (5000 bytes") && err.contains("back.bin"),
        "{err}"
    );
    let o = combine(&s.dir.path().join("quiet.bin"), &s.shares[..2], &["-q"]);
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));

    let again = s.dir.path().join("again");
    let o = run_line("split -t 2 -n 3 -o {} {}", &[&again, &s.input]);
    assert!(o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("into 3 shares each (any 2 rebuild it)") && err.contains("again"),
        "{err}"
    );

    let o = run_line(
        "repair --x 3 -o {} {} {}",
        &[&s.dir.path().join("x3.umbra"), &s.shares[0], &s.shares[1]],
    );
    assert!(o.status.success());
    assert!(stderr(&o).contains("rebuilt share x = 3"), "{}", stderr(&o));
}

#[test]
fn combine_into_a_missing_directory_says_so() {
    let s = split(2, 3, 5000, 7);
    let o = combine(&s.dir.path().join("missing/dir/"), &s.shares, &[]);
    assert_fails_with(&o, &["missing/dir/ is not a directory that exists"]);
    let o = combine(&s.dir.path().join("missing/out.bin"), &s.shares, &[]);
    assert_fails_with(&o, &["the directory", "missing does not exist"]);
}

#[test]
fn argument_errors_are_one_line_with_a_hint() {
    let o = run_line("split -t 2 -n 3", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_fails_with(&o, &["--output", "usage: umbra split"]);
    let o = run_line("repair -C arc", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_fails_with(&o, &["umbra archive-repair -C DIR"]);
    // Help is still help, on stdout, exit 0.
    let o = run_line("split --help", &[]);
    assert!(o.status.success() && o.stderr.is_empty());
}

#[test]
fn init_takes_the_archive_as_every_command_does() {
    let dir = tempfile::tempdir().unwrap();
    let arc = dir.path().join("arc");
    let o = run_line("init -t 2 -n 3 -C {}", &[&arc]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(arc.join("umbra.toml").exists());
    let o = run_line(
        "init -t 2 -n 3 -C {} {}",
        &[&arc, &dir.path().join("other")],
    );
    assert_eq!(o.status.code(), Some(2));
}

/// Starts `umbra ARGS` paused at its `k`-th temporary output (the test hook
/// of src/output.rs), with stderr piped.
fn paused_at_output(args: &[&std::ffi::OsStr], k: usize, pause: &Path) -> std::process::Child {
    let _ = fs::remove_file(pause);
    let mut child = umbra()
        .env("UMBRA_TEST_PAUSE_AT", format!("output:{k}"))
        .env("UMBRA_TEST_PAUSE_FILE", pause)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !pause.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before its pause"
        );
        assert!(start.elapsed() < Duration::from_secs(60), "never paused");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

fn partials(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect()
}

fn signal(child: &std::process::Child, sig: &str) {
    let o = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .output()
        .unwrap();
    assert!(o.status.success());
}

/// SIGTERM or SIGINT in the middle of a combine or split: the partial
/// outputs are removed, the exit status says which signal.
#[test]
fn a_signal_leaves_no_partial_output() {
    let s = split(2, 3, 200_000, 20);
    let pause = s.dir.path().join("pause");
    let out = s.dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let mut args: Vec<&std::ffi::OsStr> = vec!["combine".as_ref(), "-o".as_ref(), out.as_ref()];
    args.extend(s.shares.iter().map(|p| p.as_os_str()));
    let child = paused_at_output(&args, 1, &pause);
    assert_eq!(partials(&out).len(), 1);
    signal(&child, "-TERM");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(128 + 15), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    assert_eq!(partials(&out), Vec::<String>::new());
    assert!(
        fs::read_dir(&out).unwrap().next().is_none(),
        "combine left files"
    );

    let shares = s.dir.path().join("again");
    let args: Vec<&std::ffi::OsStr> = vec![
        "split".as_ref(),
        "-t".as_ref(),
        "2".as_ref(),
        "-n".as_ref(),
        "3".as_ref(),
        "-o".as_ref(),
        shares.as_ref(),
        s.input.as_ref(),
    ];
    let child = paused_at_output(&args, 3, &pause);
    assert_eq!(partials(&shares).len(), 3);
    signal(&child, "-INT");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(128 + 2), "{}", stderr(&o));
    assert!(
        fs::read_dir(&shares).unwrap().next().is_none(),
        "split left files"
    );
}

/// Killed harder (SIGKILL), a combine leaves its partial; the next output
/// made in that directory removes it (its process is gone), but not a live
/// process's partial nor anything else.
#[test]
fn the_next_run_removes_partials_of_dead_runs() {
    let s = split(2, 3, 200_000, 21);
    let pause = s.dir.path().join("pause");
    let out = s.dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let mut args: Vec<&std::ffi::OsStr> = vec!["combine".as_ref(), "-o".as_ref(), out.as_ref()];
    args.extend(s.shares.iter().map(|p| p.as_os_str()));
    let mut child = paused_at_output(&args, 1, &pause);
    child.kill().unwrap();
    child.wait().unwrap();
    fs::remove_file(&pause).unwrap();
    let dead = partials(&out);
    assert_eq!(dead.len(), 1);
    // A partial of a process that is alive (this test) and a stranger.
    let live = format!(".umbra-{}-keepme.partial", std::process::id());
    fs::write(out.join(&live), b"in use").unwrap();
    fs::write(out.join(".umbra-notes"), b"not ours").unwrap();
    let o = combine(&out.join("scan.bin"), &s.shares, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(partials(&out), vec![live]);
    assert!(out.join(".umbra-notes").exists());
}
