//! `restore`: by identity, and without the catalog.

use super::*;
use umbra::share::format::SchemeKind;

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
    // Selectors narrow each other: a study and another study's patient
    // match nothing, and nothing matched is an error, never "0 restored".
    let out = f.root.join("by-study-and-patient");
    let o = f.restore(
        &out,
        &[
            "--study",
            "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457",
            "--patient",
            "4MR1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(all_files(&out).len(), 2);
    for (what, args) in [
        (
            "study and another patient",
            vec![
                "--study",
                "1.3.6.1.4.1.5962.1.2.4.20040826185059.5457",
                "--patient",
                "1CT1",
            ],
        ),
        (
            "patient and date",
            vec!["--patient", "4MR1", "--since", "2005-01-01"],
        ),
    ] {
        let o = f.restore(&f.root.join("nothing"), &args);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("nothing matched"),
            "{what}: {}",
            stderr(&o)
        );
    }
    assert!(!f.root.join("nothing").exists() || all_files(&f.root.join("nothing")).is_empty());
    let o = f.restore(&f.root.join("none"), &[]);
    assert!(!o.status.success());
    let o = f.restore(&f.root.join("none"), &["--since", "2004"]);
    assert!(!o.status.success());
}

fn catalog_deleted_then_restore_without_catalog(scheme: SchemeKind) {
    let f = fixture_with(3, 5, 5, scheme);
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

/// Without the catalog and with fewer than t stores left, a split that has
/// shares but too few is a named failure (exit 3), not "0 restored"; with
/// the catalog still there, the leftover of a killed migration is told
/// apart and only noted.
#[test]
fn without_catalog_too_few_shares_fail_and_leftovers_are_named() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    // A run killed with one store written: a leftover split, pending.
    fs::write(f.src.join("late.txt"), pseudo_random(4000, 8)).unwrap();
    let pause = f.root.join("pause");
    let mut child = migrate_paused(&f, "put:1", 1, &pause);
    child.kill().unwrap();
    child.wait().unwrap();
    let out = f.root.join("out");
    let o = f.restore(&out, &["--all", "--without-catalog"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the leftover of a migration that did not finish"),
        "{}",
        stderr(&o)
    );
    // Two stores of three lost: every split has one share.
    fs::remove_dir_all(f.store(2)).unwrap();
    fs::remove_dir_all(f.store(3)).unwrap();
    let out = f.root.join("out-lost");
    let o = f.restore(&out, &["--all", "--without-catalog", "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["failed"], SMALL_FILES as u64, "{r}");
    assert!(
        stderr(&o).contains("only 1 share(s) found in the stores, 2 needed"),
        "{}",
        stderr(&o)
    );
}

/// A restore into a folder where the object's file was changed meanwhile
/// keeps that file, puts the archived one beside it, and says so; a second
/// restore finds both there and writes nothing.
#[test]
fn restore_over_a_changed_file_keeps_it_and_says_so() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    let out = f.root.join("out");
    let o = f.restore(&out, &["--patient", "1CT1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files = all_files(&out);
    assert_eq!(files.len(), 1);
    fs::write(&files[0], b"edited by a viewer").unwrap();
    let o = f.restore(&out, &["--patient", "1CT1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("differs from the archived object") && err.contains("restored beside it"),
        "{err}"
    );
    assert_eq!(fs::read(&files[0]).unwrap(), b"edited by a viewer");
    let now = all_files(&out);
    assert_eq!(now.len(), 2);
    let beside = now.iter().find(|p| **p != files[0]).unwrap();
    assert_eq!(
        fs::read(beside).unwrap(),
        fs::read(f.src.join("CT_small.dcm")).unwrap()
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["restored"], 1);
    let o = f.restore(&out, &["--patient", "1CT1", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (r["restored"].clone(), r["already_present"].clone()),
        (0.into(), 1.into())
    );
    assert!(!stderr(&o).contains("differs"), "{}", stderr(&o));
}

/// A healthy archive restores every object on the fast path (t shares,
/// each read once); only an object with a damaged share takes the careful
/// one (`careful` in --json), and still restores.
fn a_healthy_restore_takes_the_fast_path(scheme: SchemeKind) {
    let f = fixture_with(2, 3, 3, scheme);
    let written = f.migrate_ok()["written"].as_u64().unwrap();
    let o = f.restore(&f.root.join("a"), &["--all", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (r["restored"].as_u64(), r["careful"].as_u64()),
        (Some(written), Some(0))
    );
    // One share of one object damaged in store 1.
    let mut victim = all_files(&f.store(1));
    victim.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).unwrap().len()));
    let mut bytes = fs::read(&victim[0]).unwrap();
    let at = bytes.len() - 7;
    bytes[at] ^= 0x20;
    fs::write(&victim[0], &bytes).unwrap();
    let o = f.restore(&f.root.join("b"), &["--all", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (r["restored"].as_u64(), r["careful"].as_u64()),
        (Some(written), Some(1))
    );
}

both_schemes!(
    catalog_deleted_then_restore_without_catalog,
    a_healthy_restore_takes_the_fast_path
);
