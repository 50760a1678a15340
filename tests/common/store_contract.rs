//! The store contract, one suite for every store (as rclone's fstests): the
//! local directory (tests/stores.rs) and each cloud store against its real
//! server (tests/s3.rs, tests/gcs.rs, tests/azure.rs) run the same checks;
//! a store's test file only starts its server and calls these.
//!
//! - [`contract`]: the `Store` operations one by one: create-only puts, gets,
//!   listing confined to the store's prefix, deletes, refused names, batch
//!   puts, and a store whose place is gone failing rather than being
//!   created.
//! - [`outage`]: an archive with two of its three stores on the server, the
//!   server going down in the middle of the nightly job and coming back.
//! - [`lifecycle`]: shares moved onto the server, an erasure, retention
//!   and a site key rotation, the server's stores held to the catalog.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use umbra::archive::store::Store;

use super::*;

/// Puts `bytes` as `name` under a prefix, another way than the store.
pub type Seed<'a> = &'a dyn Fn(&str, &str, &[u8]);

/// How a store's test reaches its store.
pub struct Subject<'a> {
    /// A store of this kind at `prefix` (a directory, a bucket prefix).
    pub open: &'a dyn Fn(&str) -> Box<dyn Store>,
    /// Puts `bytes` as `name` under `prefix` another way than the store (for
    /// a server whose upload object_store cannot use); `None`: the store's
    /// own puts are tested.
    pub seed: Option<Seed<'a>>,
    /// A store whose place (directory, container, bucket) does not exist.
    pub missing: Option<Box<dyn Store>>,
}

fn name(tag: u8) -> String {
    format!("{tag:02x}").repeat(32)
}

/// A fresh file holding `bytes` (stores may take a put's file over, so each
/// put gets its own).
fn file(dir: &Path, bytes: &[u8]) -> PathBuf {
    let p = dir.join(format!("src-{}", sha256_hex(bytes)));
    fs::write(&p, bytes).unwrap();
    p
}

fn read(store: &dyn Store, name: &str, dir: &Path) -> Option<Vec<u8>> {
    let out = dir.join(format!("out-{}-{name}", store.label()));
    let _ = fs::remove_file(&out);
    store
        .get(name, &out)
        .unwrap_or_else(|e| panic!("get {name}: {e}"))
        .then(|| fs::read(&out).unwrap())
}

/// Puts `bytes` as `name`: through the store, or through `seed`.
fn put(s: &Subject<'_>, store: &dyn Store, prefix: &str, name: &str, bytes: &[u8], dir: &Path) {
    match s.seed {
        Some(seed) => seed(prefix, name, bytes),
        None => assert!(
            store.put_if_absent(name, &file(dir, bytes)).unwrap(),
            "first put of {name}"
        ),
    }
}

/// Every operation of the contract, on fresh prefixes `contract` and
/// `contract-2` of the subject's store.
pub fn contract(s: &Subject<'_>, scratch: &Path) {
    let dir = scratch.join("contract-files");
    fs::create_dir_all(&dir).unwrap();
    let store = (s.open)("contract");
    let beside = (s.open)("contract-2");
    assert!(
        store.list().unwrap().is_empty(),
        "a new store lists nothing"
    );

    let a = name(0xa1);
    put(s, store.as_ref(), "contract", &a, b"first", &dir);
    put(
        s,
        beside.as_ref(),
        "contract-2",
        &name(0xb2),
        b"beside",
        &dir,
    );
    assert_eq!(
        read(store.as_ref(), &a, &dir).as_deref(),
        Some(&b"first"[..])
    );
    assert_eq!(
        read(store.as_ref(), &name(0x00), &dir),
        None,
        "no such object"
    );
    assert_eq!(
        store.list().unwrap(),
        vec![a.clone()],
        "only its own prefix"
    );
    assert_eq!(beside.list().unwrap(), vec![name(0xb2)]);

    if s.seed.is_none() {
        // Create-only: a second put of a name leaves the first bytes.
        assert!(!store.put_if_absent(&a, &file(&dir, b"second")).unwrap());
        assert_eq!(
            read(store.as_ref(), &a, &dir).as_deref(),
            Some(&b"first"[..])
        );
        // A batch: one result per object, the existing one left alone, a bad
        // name refused without stopping the others.
        let (b, c) = (name(0xb0), name(0xc0));
        let srcs = [
            file(&dir, b"share b"),
            file(&dir, b"again a"),
            file(&dir, b"x"),
            file(&dir, b"share c"),
        ];
        let r = store.put_all_if_absent(&[
            (b.as_str(), srcs[0].as_path()),
            (a.as_str(), srcs[1].as_path()),
            ("../escape", srcs[2].as_path()),
            (c.as_str(), srcs[3].as_path()),
        ]);
        assert_eq!(r.len(), 4);
        assert!(*r[0].as_ref().unwrap());
        assert!(!*r[1].as_ref().unwrap(), "an existing name is left alone");
        assert!(r[2].is_err(), "a name that is not a share name is refused");
        assert!(*r[3].as_ref().unwrap());
        assert_eq!(
            read(store.as_ref(), &a, &dir).as_deref(),
            Some(&b"first"[..])
        );
        assert_eq!(
            read(store.as_ref(), &b, &dir).as_deref(),
            Some(&b"share b"[..])
        );
        assert_eq!(
            read(store.as_ref(), &c, &dir).as_deref(),
            Some(&b"share c"[..])
        );
        let mut all = store.list().unwrap();
        all.sort();
        assert_eq!(all, vec![a.clone(), b.clone(), c.clone()]);
        for n in [&b, &c] {
            assert!(store.delete(n).unwrap());
        }
    }
    // Names that are not share names never reach the store.
    for bad in ["../etc", "AB".repeat(32).as_str(), "ab", ""] {
        assert!(
            store.put_if_absent(bad, &file(&dir, b"x")).is_err(),
            "{bad:?}"
        );
        assert!(store.get(bad, &dir.join("bad")).is_err(), "{bad:?}");
        assert!(store.delete(bad).is_err(), "{bad:?}");
    }

    assert!(store.delete(&a).unwrap());
    assert!(!store.delete(&a).unwrap(), "deleted twice");
    assert_eq!(read(store.as_ref(), &a, &dir), None);
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        beside.list().unwrap(),
        vec![name(0xb2)],
        "the other prefix kept"
    );

    if let Some(missing) = &s.missing {
        assert!(
            missing
                .put_if_absent(&name(0x0d), &file(&dir, b"x"))
                .is_err(),
            "a store whose place is gone must fail, not be created"
        );
    }
}

/// A server that holds stores 2 and 3 of a (2, 3) archive.
pub trait Server {
    /// The umbra.toml lines of store `k` on this server (`url = ...`, and
    /// `endpoint`, `region` as needed).
    fn store_config(&self, k: usize) -> String;
    /// Store `k`, opened in this process, to count its objects.
    fn open(&self, k: usize) -> Box<dyn Store>;
    /// `umbra ARGS` against the archive, with this server's credentials.
    fn umbra(&self, arc: &Path, args: &[&str]) -> Output;
    /// Down, as a provider's outage (the data stays).
    fn stop(&mut self);
    /// Back up, on the same address and data.
    fn restart(&mut self);
}

/// The nightly job through an outage: three objects into a (2, 3) archive
/// whose stores 2 and 3 are on `server`; the server goes down, the night's
/// new object stays pending with a failure naming the store; back up, the
/// next run completes it with nothing left twice; a share lost on the
/// server is named by verify and put back by archive-repair; with the local
/// store lost, restore (with and without the catalog) gives the source back.
/// A (2, 3) archive at `arc` whose store-2 and store-3 are the server's
/// store-(`offset` + 2) and store-(`offset` + 3); store-1 stays local.
/// Returns its umbra.toml.
fn archive_on_server(server: &dyn Server, arc: &Path, offset: usize) -> String {
    init_archive(arc, 2, 3, None);
    let cfg_path = arc.join("umbra.toml");
    let mut cfg = fs::read_to_string(&cfg_path).unwrap();
    for k in [2, 3] {
        cfg = cfg.replace(
            &format!("url = \"stores/store-{k}\""),
            &server.store_config(offset + k),
        );
    }
    fs::write(&cfg_path, &cfg).unwrap();
    cfg
}

pub fn outage(server: &mut dyn Server, scratch: &Path) {
    let arc = scratch.join("arc");
    archive_on_server(server, &arc, 0);
    let objects = |server: &dyn Server, k: usize| server.open(k).list().unwrap().len();

    let src = dicom_source(
        &scratch.join("src"),
        &["CT_small.dcm", "MR_small.dcm", "rtplan.dcm"],
    );
    let source = src.to_str().unwrap();
    let r = json(&server.umbra(&arc, &["migrate", "--source", source, "--json"]));
    assert_eq!(r["written"], 3);
    let r = json(&server.umbra(&arc, &["migrate", "--source", source, "--json"]));
    assert_eq!(r["written"], 0, "a second run writes nothing");
    assert_eq!((objects(server, 2), objects(server, 3)), (3, 3));

    server.stop();
    fs::write(src.join("late.txt"), pseudo_random(5000, 1)).unwrap();
    let o = server.umbra(&arc, &["migrate", "--source", source]);
    assert!(!o.status.success(), "a run with stores down must say so");
    let err = stderr(&o);
    assert!(
        err.contains("store store-2") || err.contains("store store-3"),
        "{err}"
    );
    server.restart();
    let r = json(&server.umbra(&arc, &["migrate", "--source", source, "--json"]));
    assert_eq!(r["written"], 1);
    assert_eq!(
        (objects(server, 2), objects(server, 3)),
        (4, 4),
        "no leftovers of the failed attempt"
    );
    let o = server.umbra(&arc, &["verify", "--deep"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    let lost = server.open(3).list().unwrap()[0].clone();
    assert!(server.open(3).delete(&lost).unwrap());
    let o = server.umbra(&arc, &["verify"]);
    assert!(!o.status.success(), "a missing share must fail verify");
    let o = server.umbra(&arc, &["archive-repair"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(objects(server, 3), 4);
    let o = server.umbra(&arc, &["verify", "--deep"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    fs::remove_dir_all(arc.join("stores/store-1")).unwrap();
    for (out, extra) in [
        ("out", None),
        ("out-without-catalog", Some("--without-catalog")),
    ] {
        let out = scratch.join(out);
        let mut args = vec!["restore", "--all", "-o", out.to_str().unwrap()];
        args.extend(extra);
        let o = server.umbra(&arc, &args);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(tree_hashes(&out), tree_hashes(&src), "{extra:?}");
    }
}

/// The archive's lifecycle on the server's stores: a share moved off a
/// local store onto a new one on the server (`archive-repair --rebalance`),
/// a patient erased, older versions forgotten and the site key rotated;
/// every share the catalog places on the server is there and nothing else,
/// and everything restores byte for byte.
pub fn lifecycle(server: &mut dyn Server, scratch: &Path) {
    let arc = scratch.join("arc-life");
    // Places of their own on the server (outage's archive used store-2 and
    // store-3): store-k of this archive is the server's store-(10 + k).
    let cfg = archive_on_server(server, &arc, 10);
    let cfg_path = arc.join("umbra.toml");
    let src = dicom_source(
        &scratch.join("src-life"),
        &["CT_small.dcm", "MR_small.dcm", "rtplan.dcm"],
    );
    fs::write(src.join("notes.txt"), pseudo_random(9000, 1)).unwrap();
    let source = src.to_str().unwrap();
    let migrate =
        |server: &dyn Server| json(&server.umbra(&arc, &["migrate", "--source", source, "--json"]));
    assert_eq!(migrate(server)["written"], 4);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    fs::write(src.join("notes.txt"), pseudo_random(7000, 2)).unwrap();
    assert_eq!(migrate(server)["written"], 1);
    let names = |server: &dyn Server, k: usize| {
        let mut n = server.open(10 + k).list().unwrap();
        n.sort();
        n
    };
    let placed = |store: &str| -> Vec<String> {
        let c = rusqlite::Connection::open(arc.join("catalog.sqlite")).unwrap();
        let mut s = c
            .prepare("SELECT name FROM placements WHERE store = ?1 ORDER BY name")
            .unwrap();
        s.query_map([store], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let check = |server: &dyn Server, stores: &[usize]| {
        for &k in stores {
            assert_eq!(names(server, k), placed(&format!("store-{k}")), "store-{k}");
        }
    };
    check(server, &[2, 3]);

    // Share 1 leaves the local store for store-4 on the server.
    let cfg = cfg.replace(
        "name = \"store-1\"\nurl = \"stores/store-1\"\nshares = [1]",
        "name = \"store-1\"\nurl = \"stores/store-1\"\nshares = []",
    ) + &format!(
        "\n[[store]]\nname = \"store-4\"\n{}\nshares = [1]\n",
        server.store_config(14)
    );
    fs::write(&cfg_path, cfg).unwrap();
    let r = json(&server.umbra(&arc, &["archive-repair", "--rebalance", "--json"]));
    assert_eq!(
        (r["moved"].clone(), r["old_copies_deleted"].clone()),
        (5.into(), 5.into()),
        "{r}"
    );
    check(server, &[2, 3, 4]);
    assert_eq!(names(server, 4).len(), 5);

    // Erase the patient of CT_small.dcm: gone from the server's stores.
    let c = rusqlite::Connection::open(arc.join("catalog.sqlite")).unwrap();
    let patient: String = c
        .query_row(
            "SELECT patient_id FROM objects WHERE source_ref = 'CT_small.dcm'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(c);
    let before = names(server, 2).len();
    let r = json(&server.umbra(&arc, &["erase", "--patient", &patient, "--json"]));
    let versions = r["versions"].as_u64().unwrap();
    assert!(versions >= 1);
    assert_eq!(r["verified_absent"], versions * 3, "{r}");
    assert_eq!(names(server, 2).len() as u64, before as u64 - versions);
    check(server, &[2, 3, 4]);
    let r = json(&server.umbra(&arc, &["forget", "--keep-last", "1", "--json"]));
    assert_eq!(
        (r["versions"].clone(), r["shares_deleted"].clone()),
        (1.into(), 3.into())
    );
    check(server, &[2, 3, 4]);

    // A new site key: every name on the server changes.
    let old = names(server, 3);
    let r = json(&server.umbra(&arc, &["key", "rotate", "--json"]));
    assert_eq!(r["finished"], true, "{r}");
    let new = names(server, 3);
    assert_eq!(new.len(), old.len());
    assert!(new.iter().all(|n| !old.contains(n)));
    check(server, &[2, 3, 4]);
    let o = server.umbra(&arc, &["verify", "--deep"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let out = scratch.join("out-life");
    let o = server.umbra(&arc, &["restore", "--all", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Every object left (the erased ones are not) restores, once.
    let c = rusqlite::Connection::open(arc.join("catalog.sqlite")).unwrap();
    let left: usize = c
        .query_row("SELECT COUNT(*) FROM objects", [], |r| r.get(0))
        .unwrap();
    let restored = walkdir_files(&out);
    assert_eq!(
        restored, left,
        "restored files against the catalog's objects"
    );
    assert!(left >= 1);
}

/// Regular files below `dir`, counted.
fn walkdir_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            n += walkdir_files(&p);
        } else {
            n += 1;
        }
    }
    n
}
