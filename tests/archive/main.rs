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
//! SIGKILL, or change a store and let it go on. `restored:K` stops a
//! restore after its K-th group of objects is rebuilt, `verified:K` a
//! verify after its K-th object: the progress bar is looked at there.

#[path = "../common/mod.rs"]
mod common;

/// Each named test function, taking the scheme, run once per scheme as
/// `NAME::shamir` and `NAME::compact`: the archive's faults are the same
/// for both, and so must be what umbra does about them.
macro_rules! both_schemes {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use umbra::share::format::SchemeKind;
                #[test]
                fn shamir() {
                    super::$name(SchemeKind::Shamir)
                }
                #[test]
                fn compact() {
                    super::$name(SchemeKind::Compact)
                }
            }
        )*
    };
}

mod audit;
mod cron;
mod deploy;
mod faults;
mod lifecycle;
mod migrate;
mod pg;
mod restore;
mod setup;
mod sources;
mod verify;
mod workers;

use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

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
    fixture_with(t, n, stores, umbra::share::format::SchemeKind::Shamir)
}

/// A (t, n) archive over `stores` local stores whose objects are split
/// with `scheme`, and the small source.
fn fixture_with(
    t: usize,
    n: usize,
    stores: usize,
    scheme: umbra::share::format::SchemeKind,
) -> Fixture {
    fixture_on(t, n, stores, scheme, None)
}

/// [`fixture_with`] whose catalog is `catalog` (umbra init --catalog: a
/// PostgreSQL URL), else the archive's SQLite file.
fn fixture_on(
    t: usize,
    n: usize,
    stores: usize,
    scheme: umbra::share::format::SchemeKind,
    catalog: Option<&str>,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let arc = root.join("arc");
    let mut c = umbra();
    c.env("UMBRA_CATALOG_PASSWORD", postgres::PASSWORD).args([
        "init",
        "-t",
        &t.to_string(),
        "-n",
        &n.to_string(),
        "--stores",
        &stores.to_string(),
        "--scheme",
        scheme.name(),
    ]);
    if let Some(url) = catalog {
        c.args(["--catalog", url]);
    }
    let o = c.arg(&arc).output().unwrap();
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
        let words = if matches!(
            args.first(),
            Some(&"config") | Some(&"audit") | Some(&"key")
        ) {
            2
        } else {
            1
        };
        let (words, rest) = args.split_at(words.min(args.len()));
        let mut c = umbra();
        c.env("UMBRA_BACKEND", "cpu")
            .env_remove("UMBRA_TEST_PAUSE_AT")
            .env_remove("UMBRA_ARCHIVE")
            // For a PostgreSQL catalog (tests/common/postgres.rs).
            .env("UMBRA_CATALOG_PASSWORD", postgres::PASSWORD)
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

    /// Where restore puts the source's non-DICOM file `rel` below `out`:
    /// `other/`, the source's absolute path, then `rel`.
    fn restored_other(&self, out: &Path, rel: &str) -> PathBuf {
        let src = fs::canonicalize(&self.src).unwrap();
        out.join("other")
            .join(src.strip_prefix("/").unwrap())
            .join(rel)
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

/// Whether a line of `text` names share `x` of catalog object `id` in
/// `store` (as "store S: PATH (... object #ID version V) share x=X").
fn names_share(text: &str, store: &str, id: i64, x: u8) -> bool {
    text.lines().any(|l| {
        l.contains(&format!("store {store}: "))
            && l.contains(&format!("object #{id} "))
            && l.contains(&format!("share x={x} "))
    })
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
        // A share is patient data: readable by its owner only.
        let mode = std::os::unix::fs::PermissionsExt::mode(&p.metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600, "{} is {:o}", p.display(), mode & 0o777);
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
