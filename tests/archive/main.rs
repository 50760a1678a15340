//! The archive commands through the real binary, with a real SQLite catalog
//! and real store directories: migrate, restore, verify, archive-repair and
//! the audit log, under the faults of issue 4.
//!
//! Test hook: `UMBRA_TEST_PAUSE_AT=POINT:K` with `UMBRA_TEST_PAUSE_FILE=PATH`
//! makes `umbra migrate` stop at POINT (`split`: the object is about to be
//! read and split, nothing of this attempt in a store; `put`: the first store's shares written; `written`: all
//! shares written, the catalog not yet updated) for the K-th object of the
//! run (objects go in groups, `--group`: every object of K's group is there),
//! create PATH and wait until PATH is removed. The tests kill it there with
//! SIGKILL, or change a store and let it go on.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    arc: PathBuf,
    src: PathBuf,
}

/// A small source: four DICOM files, two malformed ones, a DICOM-looking
/// file dicom-rs cannot parse, an empty file and a text file in a subfolder.
fn small_source(src: &Path) {
    fs::create_dir_all(src.join("notes")).unwrap();
    fs::create_dir_all(src.join("malformed")).unwrap();
    for f in ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG-LL.dcm"] {
        fs::copy(repo_file(&format!("datasets/dicom/{f}")), src.join(f)).unwrap();
    }
    for f in ["MR_truncated.dcm", "no_meta.dcm"] {
        fs::copy(
            repo_file(&format!("datasets/malformed/{f}")),
            src.join("malformed").join(f),
        )
        .unwrap();
    }
    let mut bad = vec![0u8; 128];
    bad.extend_from_slice(b"DICM");
    bad.extend_from_slice(&pseudo_random(300, 9));
    fs::write(src.join("malformed/garbage_after_dicm.dcm"), bad).unwrap();
    fs::write(src.join("empty.bin"), b"").unwrap();
    fs::write(src.join("notes/report.txt"), pseudo_random(70_000, 3)).unwrap();
}

fn fixture(t: usize, n: usize, stores: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let arc = root.join("arc");
    let o = umbra()
        .args(["init", "-t", &t.to_string(), "-n", &n.to_string()])
        .args(["--stores", &stores.to_string()])
        .arg(&arc)
        .output()
        .unwrap();
    assert!(o.status.success(), "init: {}", stderr(&o));
    let src = root.join("src");
    small_source(&src);
    Fixture {
        _dir: dir,
        root,
        arc,
        src,
    }
}

impl Fixture {
    /// `umbra WORDS -C ARC REST`: -C belongs to the (sub)command.
    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let words = if matches!(args.first(), Some(&"config") | Some(&"audit")) {
            2
        } else {
            1
        };
        let (words, rest) = args.split_at(words.min(args.len()));
        let mut c = umbra();
        c.env("UMBRA_BACKEND", "cpu")
            .env_remove("UMBRA_TEST_PAUSE_AT")
            .env_remove("UMBRA_ARCHIVE")
            .args(words)
            .arg("-C")
            .arg(&self.arc)
            .args(rest);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn migrate(&self) -> Output {
        self.run(&["migrate", "--source", self.src.to_str().unwrap(), "--json"])
    }

    fn migrate_ok(&self) -> serde_json::Value {
        let o = self.migrate();
        assert!(o.status.success(), "migrate: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn restore(&self, out: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["restore", "-o", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn store(&self, k: usize) -> PathBuf {
        self.arc.join("stores").join(format!("store-{k}"))
    }

    fn catalog(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.arc.join("catalog.sqlite")).unwrap()
    }

    /// (object id, x, store, object name) of every placement.
    fn placements(&self) -> Vec<(i64, i64, String, String)> {
        let c = self.catalog();
        let mut s = c
            .prepare("SELECT object_id, x, store, name FROM placements ORDER BY object_id, x")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    fn share_path(&self, store: &str, name: &str) -> PathBuf {
        self.arc
            .join("stores")
            .join(store)
            .join(&name[..2])
            .join(name)
    }

    fn states(&self) -> BTreeMap<String, i64> {
        let c = self.catalog();
        let mut s = c
            .prepare("SELECT state, COUNT(*) FROM objects GROUP BY state")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

/// Every regular file under `dir` (recursively), partial files included.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Content hashes of the files under `dir`, with counts.
fn contents(dir: &Path) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in all_files(dir) {
        *m.entry(sha256_hex(&fs::read(&f).unwrap())).or_default() += 1;
    }
    m
}

fn assert_restored_identical(src: &Path, out: &Path) {
    for f in all_files(out) {
        let name = f.to_string_lossy();
        assert!(
            !name.contains(".umbra-") && !name.contains(".partial"),
            "left-over temporary {name}"
        );
    }
    assert_eq!(
        contents(src),
        contents(out),
        "restored files differ from the source"
    );
}

/// Share objects in every store, and no partial files anywhere.
fn store_objects(f: &Fixture) -> usize {
    let files = all_files(&f.arc.join("stores"));
    for p in &files {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "store holds {name}: only keyed hex names may appear"
        );
    }
    files.len()
}

fn wait_for(path: &Path, child: &mut Child) {
    let start = Instant::now();
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("migrate ended ({status}) before its pause point");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pause point never reached"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Starts a migrate that stops at `point`; returns it paused.
/// `umbra migrate --group GROUP`, paused at POINT (see the test hook above).
fn migrate_paused(f: &Fixture, point: &str, group: usize, pause_file: &Path) -> Child {
    let _ = fs::remove_file(pause_file);
    let group = group.to_string();
    let mut child = f
        .cmd(&[
            "migrate",
            "--source",
            f.src.to_str().unwrap(),
            "--group",
            &group,
        ])
        .env("UMBRA_TEST_PAUSE_AT", point)
        .env("UMBRA_TEST_PAUSE_FILE", pause_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(pause_file, &mut child);
    child
}

const SMALL_FILES: usize = 9;

#[test]
fn init_and_config_check_explain_the_placement() {
    let f = fixture(4, 8, 4);
    let key = f.arc.join("site.key");
    let meta = fs::metadata(&key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 32);
    assert!(f.arc.join("catalog.sqlite").is_file());
    for k in 1..=4 {
        assert!(f.store(k).is_dir());
    }
    let toml = fs::read_to_string(f.arc.join("umbra.toml")).unwrap();
    assert!(
        toml.contains("# ") && toml.contains("shares = [7, 8]"),
        "{toml}"
    );

    let o = f.run(&["config", "check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("any 2 store(s) may be lost"), "{out}");
    assert!(out.contains("any 2 colluding store(s)"), "{out}");
    assert!(
        out.contains("warning: the threshold against colluding providers is 2"),
        "{out}"
    );

    let g = fixture(3, 5, 5);
    let o = g.run(&["config", "check"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("any 2 store(s) may be lost"), "{out}");
    assert!(out.contains("any 3 colluding"), "{out}");
    assert!(!out.contains("warning"), "{out}");

    // An existing archive is never overwritten.
    let o = umbra().arg("init").arg(&f.arc).output().unwrap();
    assert!(!o.status.success());
    // Unknown URL schemes are refused honestly (cloud schemes built out
    // name their feature: tests/s3.rs, gcs.rs, azure.rs).
    let cfg = toml.replace("url = \"stores/store-4\"", "url = \"ftp://host/prefix\"");
    fs::write(f.arc.join("umbra.toml"), cfg).unwrap();
    let o = f.run(&["config", "check"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not implemented"), "{}", stderr(&o));
}

#[test]
fn migrate_restore_byte_identical_and_rerun_does_nothing() {
    let f = fixture(4, 8, 4);
    // The whole sample set, beside the small one.
    for e in fs::read_dir(repo_file("datasets/dicom")).unwrap() {
        let p = e.unwrap().path();
        fs::create_dir_all(f.src.join("full")).unwrap();
        fs::copy(&p, f.src.join("full").join(p.file_name().unwrap())).unwrap();
    }
    let total = SMALL_FILES + 8;
    let o = f.migrate();
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["written"], total as u64);
    assert_eq!(r["failed"], 0);
    assert!(
        stderr(&o).contains("garbage_after_dicm.dcm: DICOM header unreadable"),
        "{}",
        stderr(&o)
    );
    assert_eq!(store_objects(&f), total * 8);

    let kinds: BTreeMap<String, String> = {
        let c = f.catalog();
        let mut s = c.prepare("SELECT source_ref, kind FROM objects").unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(kinds["CT_small.dcm"], "dicom");
    assert_eq!(kinds["malformed/garbage_after_dicm.dcm"], "unparsed-dicom");
    assert_eq!(kinds["malformed/no_meta.dcm"], "file");
    assert_eq!(kinds["empty.bin"], "file");

    // Again: nothing to do.
    let again = f.migrate_ok();
    assert_eq!(again["written"], 0);
    assert_eq!(again["new_versions"], 0);
    assert_eq!(again["unchanged"], total as u64);
    assert_eq!(store_objects(&f), total * 8);

    let out = f.root.join("out");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Every source file once (the full set repeats the small DICOM files,
    // whose restored paths coincide: they are restored once).
    let mut expected = contents(&f.src);
    for v in expected.values_mut() {
        *v = 1;
    }
    assert_eq!(contents(&out), expected);
    let ct = out.join(
        "1CT1/1.3.6.1.4.1.5962.1.2.1.20040119072730.12322/\
         1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322/\
         1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322.dcm",
    );
    assert_eq!(
        fs::read(&ct).unwrap(),
        fs::read(repo_file("datasets/dicom/CT_small.dcm")).unwrap()
    );
    assert_eq!(fs::read(out.join("other/empty.bin")).unwrap(), b"");

    let o = f.run(&["verify", "--deep", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rebuilt_ok"], total as u64);
    assert_eq!(f.states()["verified"], total as i64);
    let o = f.run(&["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn restore_by_patient_study_and_sop() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    let out = f.root.join("by-patient");
    let o = f.restore(&out, &["--patient", "1CT1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files = all_files(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        fs::read(&files[0]).unwrap(),
        fs::read(f.src.join("CT_small.dcm")).unwrap()
    );
    let out = f.root.join("by-sop");
    let o = f.restore(
        &out,
        &["--sop", "1.2.777.777.77.7.7777.7777.20030903150023"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(all_files(&out).len(), 1);
    let out = f.root.join("by-study");
    let o = f.restore(
        &out,
        &["--study", "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // MR_small and its truncated copy share a study (and a SOP UID).
    assert_eq!(all_files(&out).len(), 2);
    // StudyDate range: the 2004 studies (CT_small, MR_small and its
    // truncated copy, JPEG-LL), not rtplan (2003) nor undated files.
    let out = f.root.join("by-date");
    let o = f.restore(&out, &["--since", "20040101", "--until", "20041231"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(all_files(&out).len(), 4);
    let out = f.root.join("by-patient-and-date");
    let o = f.restore(&out, &["--patient", "4MR1", "--since", "20050101"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(all_files(&out).is_empty());
    let o = f.restore(&f.root.join("none"), &[]);
    assert!(!o.status.success());
    let o = f.restore(&f.root.join("none"), &["--since", "2004"]);
    assert!(!o.status.success());
}

#[test]
fn sampled_verify_rolls_over_the_archive() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    for _ in 0..3 {
        let o = f.run(&["verify", "--sample", "34%", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["objects"], 4, "ceil(9 x 34%)");
    }
    let checked: i64 = f
        .catalog()
        .query_row(
            "SELECT COUNT(*) FROM objects WHERE checked_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        checked, SMALL_FILES as i64,
        "three samples cover everything"
    );
    assert!(!f.run(&["verify", "--sample", "0%"]).status.success());
}

#[test]
fn selection_and_dry_run() {
    let f = fixture(2, 3, 3);
    let src = f.src.to_str().unwrap();
    let o = f.run(&["migrate", "--source", src, "--dry-run", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["new_versions"], SMALL_FILES as u64);
    assert_eq!(store_objects(&f), 0);
    assert!(f.states().is_empty());
    // A group holds at least one object.
    let o = f.run(&["migrate", "--source", src, "--group", "0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--group"), "{}", stderr(&o));
    assert!(f.states().is_empty());

    let o = f.run(&[
        "migrate",
        "--source",
        src,
        "--modality",
        "CT,RTPLAN",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["written"], 2);
    assert_eq!(r["not_selected"], SMALL_FILES as u64 - 2);

    // StudyDates are from 2003-2006; file times are now.
    let o = f.run(&["migrate", "--source", src, "--older-than", "30d", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["written"], 3, "MR_small, its truncated copy, JPEG-LL");
    let o = f.run(&[
        "migrate",
        "--source",
        src,
        "--older-than",
        "36500d",
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["written"], 0);
}

#[test]
fn changed_file_becomes_a_new_version() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    let report = f.src.join("notes/report.txt");
    fs::write(&report, pseudo_random(50_000, 4)).unwrap();
    let r = f.migrate_ok();
    assert_eq!(r["new_versions"], 1);
    assert_eq!(r["written"], 1);
    let versions: i64 = f
        .catalog()
        .query_row(
            "SELECT MAX(version) FROM objects WHERE source_ref = 'notes/report.txt'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(versions, 2);
    let out = f.root.join("out");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
}

#[test]
fn killed_migrate_resumes_with_nothing_lost_or_duplicated() {
    let f = fixture(3, 5, 5);
    let pause = f.root.join("pause");
    // Groups of one, two and all objects: killed between groups and inside
    // one, with some objects written and others pending.
    for (point, group) in [
        ("split:2", 2),
        ("put:1", 64),
        ("written:3", 2),
        ("put:2", 1),
    ] {
        let mut child = migrate_paused(&f, point, group, &pause);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    // A writer killed mid-copy leaves a temporary file: resume removes it.
    let fan = f.store(1).join("ab");
    fs::create_dir_all(&fan).unwrap();
    fs::write(fan.join(".umbra-dead.partial"), b"half a share").unwrap();
    assert!(f.states().contains_key("pending"));

    let r = f.migrate_ok();
    assert_eq!(r["failed"], 0);
    assert_eq!(f.states().get("pending"), None);
    assert_eq!(f.states()["written"], SMALL_FILES as i64);
    assert!(!fan.join(".umbra-dead.partial").exists());
    assert_eq!(store_objects(&f), SMALL_FILES * 5, "nothing duplicated");
    let out = f.root.join("out");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_restored_identical(&f.src, &out);
    assert!(f.run(&["verify"]).status.success());
}

#[test]
fn lost_stores_then_restore_and_repair() {
    let f = fixture(4, 8, 4);
    f.migrate_ok();
    // Two of four stores gone: n - t = 4 shares of every object.
    fs::remove_dir_all(f.store(1)).unwrap();
    fs::remove_dir_all(f.store(3)).unwrap();
    let out = f.root.join("out");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("store store-1: object #1 share x=1") && err.contains("missing"),
        "{err}"
    );
    assert!(err.contains("store store-3"), "{err}");
    assert_restored_identical(&f.src, &out);

    let o = f.run(&["verify", "--json"]);
    assert!(!o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stores"][0]["missing"], SMALL_FILES as u64 * 2);
    assert_eq!(v["stores"][1]["present"], SMALL_FILES as u64 * 2);

    // New, empty providers in their place; repair refills them.
    fs::create_dir(f.store(1)).unwrap();
    fs::create_dir(f.store(3)).unwrap();
    let o = f.run(&["archive-repair", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["repaired"], SMALL_FILES as u64 * 4);
    assert!(f.run(&["verify", "--deep"]).status.success());
    // Now the two other stores may go.
    fs::remove_dir_all(f.store(2)).unwrap();
    fs::remove_dir_all(f.store(4)).unwrap();
    let out = f.root.join("out2");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
}

#[test]
fn flipped_truncated_and_swapped_shares_are_named_and_survived() {
    let f = fixture(3, 5, 5);
    f.migrate_ok();
    let p = f.placements();
    let find = |obj: i64, x: i64| {
        let (_, _, s, n) = p.iter().find(|q| q.0 == obj && q.1 == x).unwrap();
        f.share_path(s, n)
    };
    // Object 1, share 1: a flipped byte in the payload.
    let a = find(1, 1);
    let mut bytes = fs::read(&a).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&a, bytes).unwrap();
    // Object 2, share 2: truncated.
    let b = find(2, 2);
    let len = fs::metadata(&b).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&b)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    // Objects 3 and 4, share 3: swapped.
    let (c, d) = (find(3, 3), find(4, 3));
    let (bc, bd) = (fs::read(&c).unwrap(), fs::read(&d).unwrap());
    fs::write(&c, bd).unwrap();
    fs::write(&d, bc).unwrap();

    // Object 5, share 1: forged, a payload byte changed and every hash
    // recomputed, so that only the integrity tag can tell.
    let e = find(5, 1);
    forge(&e);

    let o = f.run(&["verify"]);
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("store store-1: object #1 share x=1") && out.contains("fail their BLAKE3"),
        "{out}"
    );
    assert!(out.contains("store store-2: object #2 share x=2"), "{out}");
    assert!(out.contains("store store-3: object #3 share x=3"), "{out}");
    assert!(out.contains("store store-3: object #4 share x=3"), "{out}");
    assert!(out.contains("another object"), "{out}");

    assert!(
        !out.contains("object #5"),
        "the forged share passes its own hashes: {out}"
    );

    let restored = f.root.join("out");
    let o = f.restore(&restored, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("object #2 share x=2"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("object #5: the first 3 shares did not combine"),
        "{}",
        stderr(&o)
    );
    assert_restored_identical(&f.src, &restored);

    // Only --deep finds the forged share: it regenerates every share from
    // t that rebuild the object and compares.
    let o = f.run(&["verify", "--deep"]);
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("store store-1: object #5 share x=1") && out.contains("found by --deep"),
        "{out}"
    );
    let o = f.run(&["archive-repair", "--deep", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["repaired"], 5, "flipped, truncated, two swapped, forged");
    let o = f.run(&["verify", "--deep"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

/// Changes one payload byte of a share and recomputes its segment table and
/// header hash: a share that is wrong although its own hashes hold.
fn forge(path: &Path) {
    use umbra::share::format::{self as share_file, HASH_LEN};
    let bytes = fs::read(path).unwrap();
    let parsed = share_file::parse(&bytes).unwrap();
    let header = parsed.header.clone();
    let mut payload = parsed.payload.to_vec();
    let last = payload.len() - 1;
    payload[last] ^= 0x5a;
    let mut table = Vec::with_capacity(header.segment_count() as usize * HASH_LEN);
    for k in 0..header.segment_count() {
        let (a, b) = header.segment_range(k);
        table.extend_from_slice(&share_file::segment_hash(&payload[a as usize..b as usize]));
    }
    let mut out = header.encode(&table).to_vec();
    out.extend_from_slice(&table);
    out.extend_from_slice(&payload);
    fs::write(path, out).unwrap();
    assert!(
        share_file::parse(&fs::read(path).unwrap())
            .unwrap()
            .corrupt_segments()
            .is_empty()
    );
}

#[test]
fn failing_store_leaves_objects_pending_until_the_next_run() {
    let f = fixture(3, 5, 5);
    let pause = f.root.join("pause");
    // Groups of three: the first group's shares are all in the stores when
    // the store fails (the next group is being split meanwhile).
    let child = migrate_paused(&f, "written:3", 3, &pause);
    // Store 2 starts failing every write: its directory becomes a file.
    let away = f.root.join("store-2-away");
    fs::rename(f.store(2), &away).unwrap();
    fs::write(f.store(2), b"not a directory").unwrap();
    fs::remove_file(&pause).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success(), "the run must say something failed");
    let err = stderr(&o);
    assert!(err.contains("store store-2"), "{err}");
    let states = f.states();
    assert_eq!(states["written"], 3);
    assert_eq!(states["pending"], SMALL_FILES as i64 - 3);
    let errors: i64 = f
        .catalog()
        .query_row(
            "SELECT COUNT(*) FROM objects WHERE last_error IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(errors, SMALL_FILES as i64 - 3);

    // The store is back; the next run completes the pending objects, and
    // forgets one whose source was deleted meanwhile.
    fs::remove_file(f.store(2)).unwrap();
    fs::rename(&away, f.store(2)).unwrap();
    fs::remove_file(f.src.join("notes/report.txt")).unwrap();
    let r = f.migrate_ok();
    assert_eq!(r["written"], SMALL_FILES as u64 - 4);
    assert_eq!(r["vanished"], 1);
    assert_eq!(f.states()["written"], SMALL_FILES as i64 - 1);
    assert_eq!(
        store_objects(&f),
        (SMALL_FILES - 1) * 5,
        "no leftovers of failed attempts"
    );
    let out = f.root.join("out");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
}

#[test]
fn catalog_deleted_then_restore_without_catalog() {
    let f = fixture(3, 5, 5);
    f.migrate_ok();
    let old_report = fs::read(f.src.join("notes/report.txt")).unwrap();
    fs::write(f.src.join("notes/report.txt"), pseudo_random(1000, 5)).unwrap();
    f.migrate_ok();
    fs::remove_file(f.arc.join("catalog.sqlite")).unwrap();
    // The site key is lost too: names come from the stores' listings.
    fs::remove_file(f.arc.join("site.key")).unwrap();
    let _ = fs::remove_file(f.arc.join("catalog.sqlite-wal"));
    let _ = fs::remove_file(f.arc.join("catalog.sqlite-shm"));

    // Writing on without a catalog would duplicate everything: refused.
    let o = f.migrate();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--without-catalog"), "{}", stderr(&o));

    // Two stores lost as well: t = 3 of 5 remain.
    fs::remove_dir_all(f.store(2)).unwrap();
    fs::remove_dir_all(f.store(5)).unwrap();
    let out = f.root.join("out");
    let o = f.restore(&out, &["--all", "--without-catalog"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not in the audit log"),
        "{}",
        stderr(&o)
    );
    // Every source file, plus the old version of the changed one.
    let mut expected = contents(&f.src);
    *expected.entry(sha256_hex(&old_report)).or_default() += 1;
    assert_eq!(contents(&out), expected);
    assert!(out.join("other/empty.bin").is_file());
    assert!(out.join("1CT1").is_dir());
}

#[test]
fn audit_log_edits_and_truncation_are_detected() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    assert!(f.run(&["verify"]).status.success());
    let out = f.root.join("out");
    assert!(f.restore(&out, &["--all"]).status.success());
    let o = f.run(&["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("3 entries"), "{}", stderr(&o));

    let log = f.arc.join("audit.log");
    let text = fs::read_to_string(&log).unwrap();
    // No patient data, no UIDs, no file names in the log.
    for secret in ["1CT1", "1.3.6.1.4.1.5962", "CT_small", "report.txt"] {
        assert!(!text.contains(secret), "audit log holds {secret}");
    }
    fs::write(&log, text.replacen("\"written\":9", "\"written\":11", 1)).unwrap();
    let o = f.run(&["audit", "verify"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("line 1"), "{}", stderr(&o));

    let first_two: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    fs::write(&log, first_two).unwrap();
    let o = f.run(&["audit", "verify"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));

    fs::write(&log, &text).unwrap();
    assert!(f.run(&["audit", "verify"]).status.success());
}

#[test]
fn file_changed_while_being_read_is_retried_as_its_new_content() {
    let f = fixture(2, 3, 3);
    let pause = f.root.join("pause");
    // Object 1 (CT_small.dcm) is recorded; it changes before it is read.
    let child = migrate_paused(&f, "split:1", 64, &pause);
    let ct = f.src.join("CT_small.dcm");
    let mut bytes = fs::read(&ct).unwrap();
    bytes[1000] ^= 1;
    fs::write(&ct, &bytes).unwrap();
    fs::remove_file(&pause).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("CT_small.dcm") && stderr(&o).contains("changed while it was read"),
        "{}",
        stderr(&o)
    );
    assert_eq!(f.states()["pending"], 1);

    let r = f.migrate_ok();
    assert_eq!(r["written"], 1);
    assert_eq!(store_objects(&f), SMALL_FILES * 3);
    let out = f.root.join("out");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
}

/// Small objects (whole stream up to 4 MiB) are read whole and split in
/// batches of up to 8 MiB of plaintext per engine call; larger ones stream.
/// A source that needs several batches and both paths comes back byte for
/// byte, and each path refuses a file changed since the scan.
#[test]
fn small_objects_in_batches_and_large_ones_streamed() {
    let f = fixture(2, 3, 3);
    let mixed = f.src.join("mixed");
    fs::create_dir_all(&mixed).unwrap();
    // Three 3 MiB files do not fit one batch; 4 MiB less 300 bytes is
    // small with its envelope prefix, 4 MiB and 1 byte streams.
    let lens = [3 << 20, 3 << 20, 1, 3 << 20, (4 << 20) - 300, (4 << 20) + 1];
    for (i, &len) in lens.iter().enumerate() {
        fs::write(
            mixed.join(format!("{i}.bin")),
            pseudo_random(len, 50 + i as u64),
        )
        .unwrap();
    }
    let total = SMALL_FILES + lens.len();

    // Changed after the scan, before the split: a 3 MiB one (batched) and
    // the largest (streamed), same sizes, one byte flipped.
    let pause = f.root.join("pause");
    let child = migrate_paused(&f, "split:1", 64, &pause);
    for name in ["1.bin", "5.bin"] {
        let p = mixed.join(name);
        let mut bytes = fs::read(&p).unwrap();
        bytes[2 << 20] ^= 1;
        fs::write(&p, &bytes).unwrap();
    }
    fs::remove_file(&pause).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success());
    for name in ["mixed/1.bin", "mixed/5.bin"] {
        assert!(
            stderr(&o)
                .lines()
                .any(|l| l.contains(name) && l.contains("changed while it was read")),
            "{name} not named as changed: {}",
            stderr(&o)
        );
    }
    assert_eq!(f.states()["pending"], 2);
    assert_eq!(f.states()["written"], total as i64 - 2);

    let r = f.migrate_ok();
    assert_eq!(r["written"], 2);
    assert_eq!(r["failed"], 0);
    assert_eq!(store_objects(&f), total * 3);
    let out = f.root.join("out");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_restored_identical(&f.src, &out);
    let o = f.run(&["verify", "--deep"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A store that the catalog names but umbra.toml no longer lists (renamed,
/// or its entry deleted) is one clear error in every command that reads the
/// catalog's placements, naming the store and what to do: never a panic,
/// never an error per object.
#[test]
fn store_missing_from_the_config_is_named_by_every_command() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    let cfg_path = f.arc.join("umbra.toml");
    let cfg = fs::read_to_string(&cfg_path).unwrap();
    assert!(cfg.contains("name = \"store-2\""), "{cfg}");
    fs::write(
        &cfg_path,
        cfg.replace("name = \"store-2\"", "name = \"renamed\""),
    )
    .unwrap();
    let out = f.root.join("out");
    let runs: Vec<(&str, Output)> = vec![
        ("verify", f.run(&["verify"])),
        ("verify --deep", f.run(&["verify", "--deep"])),
        ("archive-repair", f.run(&["archive-repair"])),
        ("migrate", f.migrate()),
        ("restore", f.restore(&out, &["--all"])),
    ];
    for (what, o) in runs {
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {err}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(
            err.contains("store \"store-2\"") && err.contains("umbra.toml does not list"),
            "{what}: {err}"
        );
        assert!(err.contains("[[stores]] entry back"), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
    }
    // Put back, everything works again.
    fs::write(&cfg_path, cfg).unwrap();
    let o = f.run(&["verify", "--deep"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
