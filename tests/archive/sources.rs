//! What an object is: its source and its path there, as bytes. Two sources
//! with the same relative paths, names that are not UTF-8, edits the quick
//! check cannot see by size and mtime, and a catalog from before sources
//! were recorded.

use std::os::unix::ffi::OsStrExt;

use super::*;

fn migrate_json(f: &Fixture, source: &Path) -> serde_json::Value {
    let o = f.run(&["migrate", "--source", source.to_str().unwrap(), "--json"]);
    assert!(
        o.status.success(),
        "migrate {}: {}",
        source.display(),
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Two trees with a `notes/readme.txt` each: both are archived, reruns of
/// either change nothing, and restore brings back both, side by side.
#[test]
fn two_sources_with_the_same_paths_are_two_objects() {
    let f = fixture(2, 3, 3);
    let (a, b) = (f.root.join("site-a"), f.root.join("site-b"));
    for (dir, text) in [(&a, "A's notes"), (&b, "B's notes, longer")] {
        fs::create_dir_all(dir.join("notes")).unwrap();
        fs::write(dir.join("notes/readme.txt"), text).unwrap();
    }
    assert_eq!(migrate_json(&f, &a)["written"], 1);
    assert_eq!(migrate_json(&f, &b)["written"], 1);
    for dir in [&a, &b, &a] {
        let r = migrate_json(&f, dir);
        assert_eq!(
            (r["new_versions"].as_u64(), r["unchanged"].as_u64()),
            (Some(0), Some(1))
        );
    }
    let versions: i64 = f
        .catalog()
        .query_row("SELECT MAX(version) FROM objects", [], |r| r.get(0))
        .unwrap();
    assert_eq!(versions, 1, "no alternating versions of one object");
    let out = f.root.join("out");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (dir, text) in [(&a, "A's notes"), (&b, "B's notes, longer")] {
        let src = fs::canonicalize(dir).unwrap();
        let restored = out
            .join("other")
            .join(src.strip_prefix("/").unwrap())
            .join("notes/readme.txt");
        assert_eq!(
            fs::read_to_string(&restored).unwrap(),
            text,
            "{}",
            restored.display()
        );
    }
}

/// `a\xff.bin` (not UTF-8) beside `a\u{FFFD}.bin` (its lossy form): two
/// objects, written, kept, and restored under their exact byte names, with
/// and without the catalog.
#[test]
fn names_that_are_not_utf8_are_kept_byte_for_byte() {
    let f = fixture(2, 3, 3);
    let src = f.root.join("bytes");
    fs::create_dir_all(&src).unwrap();
    let raw = std::ffi::OsStr::from_bytes(b"a\xff.bin");
    fs::write(src.join(raw), pseudo_random(3000, 1)).unwrap();
    fs::write(src.join("a\u{FFFD}.bin"), pseudo_random(3000, 2)).unwrap();
    let r = migrate_json(&f, &src);
    assert_eq!(
        (
            r["new_versions"].as_u64(),
            r["written"].as_u64(),
            r["vanished"].as_u64()
        ),
        (Some(2), Some(2), Some(0)),
        "{r}"
    );
    let r = migrate_json(&f, &src);
    assert_eq!(r["unchanged"], 2, "{r}");
    let shown: Vec<String> = {
        let c = f.catalog();
        let mut s = c
            .prepare("SELECT source_ref FROM objects ORDER BY id")
            .unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(shown.contains(&"a\\xff.bin".to_string()), "{shown:?}");

    let out = f.root.join("out");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = out
        .join("other")
        .join(fs::canonicalize(&src).unwrap().strip_prefix("/").unwrap());
    assert_eq!(fs::read(dir.join(raw)).unwrap(), pseudo_random(3000, 1));
    assert_eq!(
        fs::read(dir.join("a\u{FFFD}.bin")).unwrap(),
        pseudo_random(3000, 2)
    );

    let out = f.root.join("out-without-catalog");
    let o = f.restore(&out, &["--all", "--without-catalog"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = out.join("other");
    assert_eq!(fs::read(dir.join(raw)).unwrap(), pseudo_random(3000, 1));
    assert_eq!(
        fs::read(dir.join("a\u{FFFD}.bin")).unwrap(),
        pseudo_random(3000, 2)
    );
}

/// An edit of the same size with the old mtime put back is still noticed
/// (ctime moves on); `--rehash` reads everything and finds the rest the same.
#[test]
fn same_size_edit_with_the_old_mtime_is_a_new_version() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    let file = f.src.join("notes/report.txt");
    let mtime = fs::metadata(&file).unwrap().modified().unwrap();
    let mut bytes = fs::read(&file).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&file, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), mtime);
    let r = f.migrate_ok();
    assert_eq!(
        (r["new_versions"].as_u64(), r["written"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let o = f.run(&[
        "migrate",
        "--source",
        f.src.to_str().unwrap(),
        "--rehash",
        "--json",
    ]);
    let r = json(&o);
    assert_eq!(
        (r["new_versions"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(SMALL_FILES as u64))
    );
    let out = f.root.join("out");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
}

/// A catalog of schema 1 (no sources, text paths), as umbra before this
/// change wrote it: opened, it is migrated in place; the next run adopts
/// every object for its source and writes nothing again; verify and
/// restore work on the old objects.
#[test]
fn a_schema_1_catalog_is_migrated_and_its_objects_adopted() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    let before = store_objects(&f);
    // Back to schema 1, as the old code created it.
    f.catalog()
        .execute_batch(
            "CREATE TABLE objects_v1 (
                id INTEGER PRIMARY KEY, source_ref TEXT NOT NULL, version INTEGER NOT NULL,
                size INTEGER NOT NULL, blake3 TEXT NOT NULL, change_sig INTEGER NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('dicom', 'unparsed-dicom', 'file')),
                sop_uid TEXT, study_uid TEXT, series_uid TEXT, study_date TEXT, modality TEXT,
                patient_id TEXT, split_id TEXT,
                state TEXT NOT NULL CHECK (state IN ('pending', 'written', 'verified')),
                attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, checked_at INTEGER,
                created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
                UNIQUE (source_ref, version));
             INSERT INTO objects_v1 SELECT id, source_ref, version, size, blake3, change_sig,
                kind, sop_uid, study_uid, series_uid, study_date, modality, patient_id,
                split_id, state, attempts, last_error, checked_at, created_at, updated_at
                FROM objects;
             CREATE TABLE placements_v1 (object_id INTEGER NOT NULL, x INTEGER NOT NULL,
                store TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (object_id, x));
             INSERT INTO placements_v1 SELECT object_id, x, store, name FROM placements;
             DROP TABLE placements; DROP TABLE objects;
             ALTER TABLE objects_v1 RENAME TO objects;
             ALTER TABLE placements_v1 RENAME TO placements;
             DELETE FROM meta WHERE key = 'schema_version';",
        )
        .unwrap();
    let r = f.migrate_ok();
    assert_eq!(
        (
            r["new_versions"].as_u64(),
            r["written"].as_u64(),
            r["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(SMALL_FILES as u64)),
        "{r}"
    );
    assert_eq!(store_objects(&f), before, "nothing written twice");
    let unadopted: i64 = f
        .catalog()
        .query_row("SELECT COUNT(*) FROM objects WHERE source = X''", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(unadopted, 0);
    let o = f.run(&["verify", "--deep"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let out = f.root.join("out");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
}

/// The catalog and the audit log hold patient identifiers: 0600, and a
/// looser catalog is tightened when umbra opens it.
#[test]
fn catalog_and_audit_log_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for name in ["catalog.sqlite", "audit.log", "site.key"] {
        assert_eq!(mode(&f.arc.join(name)), 0o600, "{name}");
    }
    let cat = f.arc.join("catalog.sqlite");
    fs::set_permissions(&cat, fs::Permissions::from_mode(0o644)).unwrap();
    f.migrate_ok();
    assert_eq!(mode(&cat), 0o600);
}

/// An archive inside its own source: its directory (key, catalog, shares,
/// staging) is left out, and a second run finds nothing new.
#[test]
fn an_archive_inside_its_source_does_not_archive_itself() {
    let dir = tempfile::tempdir().unwrap();
    let src = dicom_source(&dir.path().join("src"), &["CT_small.dcm", "MR_small.dcm"]);
    let arc = src.join("arc");
    init_archive(&arc, 2, 3, None);
    let run = || {
        json(&umbra_at(
            &arc,
            &["migrate", "--source", src.to_str().unwrap(), "--json"],
            &[],
        ))
    };
    let r = run();
    assert_eq!(
        (r["scanned"].as_u64(), r["written"].as_u64()),
        (Some(2), Some(2)),
        "{r}"
    );
    assert!(
        r["skipped"][0]
            .as_str()
            .unwrap()
            .contains("arc: the archive's own directory"),
        "{r}"
    );
    let r = run();
    assert_eq!(
        (r["scanned"].as_u64(), r["new_versions"].as_u64()),
        (Some(2), Some(0)),
        "{r}"
    );
}

/// --exclude and --include, gitignore-style, relative to the source.
#[test]
fn exclude_and_include_patterns_select_the_files() {
    let f = fixture(2, 3, 3);
    fs::create_dir_all(f.src.join("scratch/deep")).unwrap();
    fs::write(f.src.join("scratch/deep/x.dcm"), b"scratch").unwrap();
    fs::write(f.src.join("CT_small.tmp"), b"temp").unwrap();
    let src = f.src.to_str().unwrap();
    let dry = |extra: &[&str]| {
        let mut args = vec!["migrate", "--source", src, "--dry-run", "--json"];
        args.extend_from_slice(extra);
        json(&f.run(&args))
    };
    let all = SMALL_FILES as u64 + 2;
    assert_eq!(dry(&[])["scanned"], all);
    let r = dry(&["--exclude", "*.tmp", "--exclude", "scratch/"]);
    assert_eq!(
        (r["scanned"].as_u64(), r["excluded"].as_u64()),
        (Some(all - 2), Some(2)),
        "{r}"
    );
    let r = dry(&["--include", "*.dcm"]);
    // The DICOM files of the fixture (4 at the top, 3 malformed) and scratch's.
    assert_eq!(r["scanned"], 8, "{r}");
    let r = dry(&["--include", "*.dcm", "--exclude", "malformed/"]);
    assert_eq!(r["scanned"], 5, "{r}");
}

/// Symbolic links (to a file, to a directory, dangling) are never followed
/// and each is named; a FIFO is skipped, never read (it would block).
#[test]
fn symbolic_links_and_special_files_are_named_not_followed() {
    let f = fixture(2, 3, 3);
    let outside = f.root.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret.txt"), b"not chosen").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), f.src.join("link-file")).unwrap();
    std::os::unix::fs::symlink(&outside, f.src.join("link-dir")).unwrap();
    std::os::unix::fs::symlink(f.root.join("nowhere"), f.src.join("dangling")).unwrap();
    let fifo = f.src.join("pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let o = f.run(&["migrate", "--source", f.src.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["written"], SMALL_FILES as u64);
    let skipped: Vec<&str> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for name in ["link-file", "link-dir", "dangling"] {
        assert!(
            skipped.contains(&format!("{name}: a symbolic link, not followed").as_str()),
            "{skipped:?}"
        );
    }
    assert!(
        skipped
            .iter()
            .any(|s| s.starts_with("pipe: not a regular file")),
        "{skipped:?}"
    );
    // Without --json they are notes on stderr.
    let o = f.run(&["migrate", "--source", f.src.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("skipped link-dir: a symbolic link, not followed"),
        "{}",
        stderr(&o)
    );
}

/// DICOM in every encoding the corpus has: identifying attributes stored as
/// UN select by `--modality` and restore under their real UIDs; big endian,
/// implicit VR and deflated files are identified too; a file without a
/// meta group is protected as plain bytes.
#[test]
fn odd_dicom_encodings_are_identified() {
    let f = fixture(2, 3, 3);
    let src = f.root.join("odd");
    fs::create_dir_all(&src).unwrap();
    for name in [
        "CT_small_UN.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "image_dfl.dcm",
        "ExplVR_LitEndNoMeta.dcm",
    ] {
        fs::copy(
            repo_file(&format!("datasets/encodings/{name}")),
            src.join(name),
        )
        .unwrap();
    }
    let s = src.to_str().unwrap();
    let r = json(&f.run(&["migrate", "--source", s, "--modality", "CT", "--json"]));
    assert_eq!(
        (r["written"].as_u64(), r["not_selected"].as_u64()),
        (Some(1), Some(4)),
        "{r}"
    );
    let r = json(&f.run(&["migrate", "--source", s, "--json"]));
    assert_eq!(r["written"], 4, "{r}");
    let kinds: BTreeMap<String, (String, Option<String>)> = {
        let c = f.catalog();
        let mut st = c
            .prepare("SELECT source_ref, kind, modality FROM objects")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        kinds["CT_small_UN.dcm"],
        ("dicom".into(), Some("CT".into()))
    );
    assert_eq!(
        kinds["MR_small_bigendian.dcm"],
        ("dicom".into(), Some("MR".into()))
    );
    assert_eq!(
        kinds["MR_small_implicit.dcm"],
        ("dicom".into(), Some("MR".into()))
    );
    assert_eq!(kinds["image_dfl.dcm"], ("dicom".into(), Some("OT".into())));
    assert_eq!(kinds["ExplVR_LitEndNoMeta.dcm"], ("file".into(), None));
    let out = f.root.join("out");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The UN file lands where CT_small.dcm would: patient 1CT1, its UIDs.
    assert!(
        out.join("1CT1/1.3.6.1.4.1.5962.1.2.1.20040119072730.12322")
            .is_dir(),
        "{:?}",
        all_files(&out)
    );
}
