//! `migrate`: byte-identical round trips, selections, new versions, batches, kills.

use super::*;
use umbra::share::format::SchemeKind;

fn migrate_restore_byte_identical_and_rerun_does_nothing(scheme: SchemeKind) {
    let f = fixture_with(4, 8, 4, scheme);
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
    assert_eq!(fs::read(f.restored_other(&out, "empty.bin")).unwrap(), b"");

    let o = f.run(&["verify", "--deep", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rebuilt_ok"], total as u64);
    assert_eq!(f.states()["verified"], total as i64);
    let o = f.run(&["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
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

fn killed_migrate_resumes_with_nothing_lost_or_duplicated(scheme: SchemeKind) {
    let f = fixture_with(3, 5, 5, scheme);
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
fn file_changed_while_being_read_is_retried_as_its_new_content() {
    let f = fixture(2, 3, 3);
    let pause = f.root.join("pause");
    // Object 1 (CT_small.dcm) is recorded; it changes before it is read.
    // The scan does not read a new file (it is hashed as it is split):
    // what catches the change is its change time, which no `touch` sets
    // back, even with the same size and the old modification time.
    let child = migrate_paused(&f, "split:1", 64, &pause);
    let ct = f.src.join("CT_small.dcm");
    let mtime = fs::metadata(&ct).unwrap().modified().unwrap();
    let mut bytes = fs::read(&ct).unwrap();
    bytes[1000] ^= 1;
    fs::write(&ct, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&ct)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
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
fn small_objects_in_batches_and_large_ones_streamed(scheme: SchemeKind) {
    let f = fixture_with(2, 3, 3, scheme);
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

/// A folder file too new for tonight's `--older-than` is seen again each
/// night and archived the night it qualifies; ages are a number and a unit
/// (hours count), or a date; a bare number and impossible dates are refused.
#[test]
fn a_file_left_out_tonight_is_archived_the_night_it_qualifies() {
    let f = fixture(2, 3, 3);
    let src = f.src.to_str().unwrap();
    let late = f.src.join("late.txt");
    fs::write(&late, pseudo_random(2000, 4)).unwrap();
    let run =
        |age: &str| json(&f.run(&["migrate", "--source", src, "--older-than", age, "--json"]));
    let counts = |r: &serde_json::Value| {
        (
            r["written"].as_u64().unwrap(),
            r["not_selected"].as_u64().unwrap(),
        )
    };
    // The dated DICOM files leave; the fixture's other files are new too,
    // and wait with late.txt, night after night.
    let (written, waiting) = counts(&run("30d"));
    assert_eq!(written + waiting, SMALL_FILES as u64 + 1);
    assert!(waiting >= 2);
    assert_eq!(counts(&run("30d")), (0, waiting));
    let days_ago = |d: u64| std::time::SystemTime::now() - Duration::from_secs(d * 86_400);
    fs::File::options()
        .write(true)
        .open(&late)
        .unwrap()
        .set_modified(days_ago(31))
        .unwrap();
    assert_eq!(
        counts(&run("30d")),
        (1, waiting - 1),
        "archived the night it qualifies"
    );
    // An hour is an hour, not "0 days": the files written seconds ago wait.
    assert_eq!(counts(&run("1h")), (0, waiting - 1));
    // Dated before 2000: nothing here (the DICOM studies are from 2004 on).
    assert_eq!(counts(&run("2000-01-01")).0, 0);
    for bad in ["30", "3x"] {
        let o = f.run(&["migrate", "--source", src, "--older-than", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("unit"), "{}", stderr(&o));
    }
    let out = f.root.join("out");
    let o = f.restore(&out, &["--until", "20201399"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("a real one"), "{}", stderr(&o));
}

/// The night after a migrate: --dry-run lists what the real run would
/// write (path, size, why) and the total, changes nothing, and the real run
/// then writes exactly that.
#[test]
fn dry_run_lists_what_would_be_written() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    let src = f.src.to_str().unwrap();
    let report = f.src.join("notes/report.txt");
    let mut changed = fs::read(&report).unwrap();
    changed.extend_from_slice(b"addendum");
    fs::write(&report, &changed).unwrap();
    fs::write(f.src.join("new.bin"), pseudo_random(1234, 77)).unwrap();
    let before = store_objects(&f);
    for _ in 0..2 {
        let o = f.run(&["migrate", "--source", src, "--dry-run", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let mut listed: Vec<(String, u64, String)> = r["would_write"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["path"].as_str().unwrap().to_string(),
                    w["size"].as_u64().unwrap(),
                    w["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            vec![
                ("new.bin".into(), 1234, "new".into()),
                (
                    "notes/report.txt".into(),
                    changed.len() as u64,
                    "changed".into()
                ),
            ]
        );
        assert_eq!(r["would_write_bytes"], 1234 + changed.len() as u64);
        assert_eq!(store_objects(&f), before, "a dry run wrote shares");
    }
    let o = f.run(&["migrate", "--source", src, "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.contains("would write") && out.contains("1.21 KiB new.bin (new)"),
        "{out}"
    );
    let total = 1234 + changed.len();
    // For people in KiB and MiB, the exact count beside it.
    let said = stderr(&o);
    assert!(
        said.contains("would write 2 object(s), ")
            && said.contains(&format!(" KiB of source ({total} bytes; "))
            && said.contains(" KiB in the stores: 3 shares of each)"),
        "{said}"
    );
    let r = f.migrate_ok();
    assert_eq!(
        (r["written"].clone(), r["bytes_written"].clone()),
        (2.into(), total.into())
    );
}

both_schemes!(
    migrate_restore_byte_identical_and_rerun_does_nothing,
    killed_migrate_resumes_with_nothing_lost_or_duplicated,
    small_objects_in_batches_and_large_ones_streamed
);

/// The scheme changed in umbra.toml between two nights: the first night's
/// objects stay Shamir, the new ones are compact (share format v2, about
/// 1/t of the stream each), the catalog records each version's scheme,
/// `config check` states both costs and the mixed archive, and one
/// restore brings back both kinds; so does `verify --deep`.
#[test]
fn an_archive_holds_both_schemes_and_new_objects_take_the_configured_one() {
    let f = fixture(4, 8, 4);
    f.migrate_ok();
    let night_one = store_bytes(&f);
    let cfg_path = f.arc.join("umbra.toml");
    let cfg = fs::read_to_string(&cfg_path).unwrap();
    assert!(cfg.contains("scheme = \"shamir\""), "{cfg}");
    fs::write(
        &cfg_path,
        cfg.replace("scheme = \"shamir\"", "scheme = \"compact\""),
    )
    .unwrap();

    // Night two: a large new object and a new version of an old one.
    let big = pseudo_random(3 << 20, 77);
    fs::write(f.src.join("notes/big.bin"), &big).unwrap();
    fs::write(f.src.join("notes/report.txt"), pseudo_random(70_000, 4)).unwrap();
    let r = f.migrate_ok();
    assert_eq!(r["written"], 2);
    let schemes: BTreeMap<String, i64> = {
        let c = f.catalog();
        let mut st = c
            .prepare("SELECT split_scheme, COUNT(*) FROM objects GROUP BY 1")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(schemes["shamir"], SMALL_FILES as i64);
    assert_eq!(schemes["compact"], 2);

    // The compact shares of the 3 MiB object: 8 of about 3 MiB / 4 each,
    // version 2 headers; 2x the object in all, not 8x.
    let added = store_bytes(&f) - night_one;
    let source_added = (big.len() + 70_000) as u64;
    assert!(
        added < source_added * 21 / 10 && added > source_added * 2,
        "{added} bytes stored for {source_added}"
    );
    let mut v2 = 0;
    for p in all_files(&f.arc.join("stores")) {
        let head = fs::read(&p).unwrap();
        if u16::from_le_bytes([head[8], head[9]]) == 2 {
            v2 += 1;
            assert_eq!(head[17], 1, "scheme byte: compact");
        }
    }
    assert_eq!(v2, 2 * 8);

    let o = f.run(&["config", "check", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["scheme"], "compact");
    assert_eq!(c["storage_factor"], 2.0);
    assert_eq!(c["other_storage_factor"], 8.0);
    assert!(c["secrecy"].as_str().unwrap().starts_with("computational"));
    assert!(
        c["warnings"].to_string().contains("are shamir"),
        "{}",
        c["warnings"]
    );
    let o = f.run(&["config", "check"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("scheme: compact"), "{text}");
    assert!(text.contains("shamir would hold 8.00"), "{text}");

    let out = f.root.join("out");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_restored_identical(&f.src, &out);
    let o = f.run(&["verify", "--deep"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

/// Bytes in every store.
fn store_bytes(f: &Fixture) -> u64 {
    all_files(&f.arc.join("stores"))
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum()
}
