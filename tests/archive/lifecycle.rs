//! The archive's life after the first night: `status` and `ls` against the
//! catalog and the stores themselves, and older versions brought back with
//! `restore --version` and `--as-of`.

use super::*;
use umbra::share::format::SchemeKind;

/// Runs umbra with `args` until the test hook stops it at `point`
/// (`POINT:K`), then kills it with SIGKILL.
fn kill_at(f: &Fixture, args: &[&str], point: &str) {
    let pause = f.root.join("pause");
    let mut child = f
        .cmd(args)
        .env("UMBRA_TEST_PAUSE_AT", point)
        .env("UMBRA_TEST_PAUSE_FILE", &pause)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&pause, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Two nights: the small source, then one file changed. Returns the first
/// version's bytes of the changed file.
fn two_nights(f: &Fixture) -> Vec<u8> {
    f.migrate_ok();
    let v1 = fs::read(f.src.join("notes/report.txt")).unwrap();
    // Versions are recorded to the second: the second night is later.
    std::thread::sleep(Duration::from_millis(1100));
    fs::write(f.src.join("notes/report.txt"), pseudo_random(50_001, 77)).unwrap();
    let r = f.migrate_ok();
    assert_eq!(r["written"], 1);
    v1
}

fn status_and_ls_agree_with_the_catalog_and_the_stores(scheme: SchemeKind) {
    let f = fixture_with(2, 4, 4, scheme);
    two_nights(&f);
    let s = json(&f.run(&["status", "--json"]));
    let versions = SMALL_FILES as u64 + 1;
    assert_eq!(s["objects"], SMALL_FILES as u64, "{s}");
    assert_eq!(s["versions"], versions);
    let state = |name: &str| {
        s["states"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["state"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(state("written")["objects"], SMALL_FILES as u64);
    assert_eq!(state("written")["versions"], versions);
    for other in ["pending", "failed", "degraded", "verified"] {
        assert_eq!(state(other)["versions"], 0, "{other}");
    }
    assert_eq!(s["stored_versions"], versions);
    // What each store holds, as the catalog says it, is what is on disk.
    let mut total = 0u64;
    for (k, st) in s["stores"].as_array().unwrap().iter().enumerate() {
        let files = all_files(&f.store(k + 1));
        let on_disk: u64 = files.iter().map(|p| p.metadata().unwrap().len()).sum();
        assert_eq!(st["name"], format!("store-{}", k + 1));
        assert_eq!(st["shares"], files.len() as u64, "{st}");
        assert_eq!(st["shares"], versions);
        assert_eq!(st["bytes"], on_disk, "{st}");
        assert_eq!(st["reachable"], true);
        assert_eq!(st["listed"], versions);
        total += on_disk;
    }
    assert_eq!(s["store_bytes"], total);
    let source: u64 = s["stored_source_bytes"].as_u64().unwrap();
    let factor = s["storage_factor"].as_f64().unwrap();
    assert!((factor - total as f64 / source as f64).abs() < 1e-9);
    // Headers and the last block's padding on top of n (Shamir) or n / t.
    let floor = match scheme {
        SchemeKind::Shamir => 4.0,
        SchemeKind::Compact => 2.0,
    };
    assert!(factor > floor && factor < floor * 1.1, "{factor}");
    assert_eq!(s["never_verified"], versions);
    assert!(s["oldest_unverified"][0].as_str().is_some(), "{s}");
    let migrate = &s["last_runs"][0];
    assert_eq!(migrate["action"], "migrate");
    assert_eq!(migrate["details"]["written"], 1, "the second night's run");

    // After a verify, nothing is unverified and the verify is the last one.
    assert!(f.run(&["verify"]).status.success());
    let s = json(&f.run(&["status", "--json"]));
    assert_eq!(s["never_verified"], 0);
    assert!(s["oldest_unverified"].is_null());
    assert!(
        s["last_runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "verify"),
        "{s}"
    );
    let text = f.run(&["status"]);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(
        out.contains("every stored version verified") && out.contains("last verify: 20"),
        "{out}"
    );

    // ls: the latest version of each object; --versions every one.
    let ls = json(&f.run(&["ls", "--json"]));
    assert_eq!(ls.as_array().unwrap().len(), SMALL_FILES);
    let report = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == "notes/report.txt")
        .unwrap();
    assert_eq!(
        (report["version"].clone(), report["versions"].clone()),
        (2.into(), 2.into())
    );
    assert_eq!(report["size"], 50_001);
    let all = json(&f.run(&["ls", "--versions", "--json"]));
    assert_eq!(all.as_array().unwrap().len(), SMALL_FILES + 1);
    let notes = json(&f.run(&["ls", "--path", "notes/*", "--versions", "--json"]));
    let sizes: Vec<u64> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![70_000, 50_001], "both versions, oldest first");
    let sop: String = f
        .catalog()
        .query_row(
            "SELECT sop_uid FROM objects WHERE source_ref = 'CT_small.dcm'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let one = json(&f.run(&["ls", "--sop", &sop, "--json"]));
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["path"], "CT_small.dcm");
    assert_eq!(one[0]["sop_uid"], sop.as_str());
    // For people: one line each, sizes they can read.
    let o = f.run(&["ls", "--path", "notes/*", "--versions"]);
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("v1/2") && lines[0].contains("68.4 KiB"),
        "{out}"
    );
    assert!(
        lines[1].contains("v2/2")
            && lines[1].contains("48.8 KiB")
            && lines[1].contains("notes/report.txt"),
        "{out}"
    );

    // A store that does not answer: named, and exit 3 for a health check;
    // --offline does not ask.
    fs::rename(f.store(3), f.root.join("store-3-away")).unwrap();
    let o = f.run(&["status"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("store store-3") && l.contains("NOT reachable")),
        "{out}"
    );
    let o = f.run(&["status", "--offline"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn restore_version_and_as_of_bring_back_an_older_version(scheme: SchemeKind) {
    let f = fixture_with(2, 3, 3, scheme);
    let v1 = two_nights(&f);
    let v2 = fs::read(f.src.join("notes/report.txt")).unwrap();
    let restored = |args: &[&str]| -> Vec<u8> {
        let out = f
            .root
            .join(format!("out-{}", args.join("-").replace(['/', ':'], "_")));
        let mut all = vec!["--path", "notes/report.txt"];
        all.extend_from_slice(args);
        let o = f.restore(&out, &all);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        fs::read(f.restored_other(&out, "notes/report.txt")).unwrap()
    };
    assert!(restored(&[]) == v2, "the latest by default");
    assert!(restored(&["--version", "1"]) == v1, "--version 1");
    assert!(restored(&["--version", "2"]) == v2, "--version 2");
    // As of the first night: the version recorded then.
    let ls = json(&f.run(&["ls", "--path", "notes/*", "--versions", "--json"]));
    let first = ls[0]["recorded_at"].as_str().unwrap().to_string();
    assert!(restored(&["--as-of", &first]) == v1, "--as-of {first}");
    assert!(restored(&["--as-of", "2999-01-01"]) == v2);

    // No such version: said, non-zero, nothing written.
    let out = f.root.join("none");
    let o = f.restore(&out, &["--path", "notes/report.txt", "--version", "3"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("nothing matched") && stderr(&o).contains("a version 3"),
        "{}",
        stderr(&o)
    );
    let o = f.restore(
        &out,
        &["--path", "notes/report.txt", "--as-of", "2001-01-01"],
    );
    assert!(!o.status.success() && stderr(&o).contains("nothing matched"));
    assert!(all_files(&out).is_empty());
    // Without the catalog there are no versions to choose from.
    let o = f.restore(&out, &["--all", "--without-catalog", "--version", "1"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--version and --as-of need the catalog"),
        "{}",
        stderr(&o)
    );
    let o = f.restore(&out, &["--all", "--as-of", "yesterday"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("YYYY-MM-DD"), "{}", stderr(&o));
}

both_schemes!(
    status_and_ls_agree_with_the_catalog_and_the_stores,
    restore_version_and_as_of_bring_back_an_older_version,
    forget_keeps_what_the_policy_says_and_leaves_no_share_behind,
    erase_removes_every_share_and_identifier_of_a_patient,
    rebalance_adds_retires_and_replaces_stores_keeping_every_object,
    key_rotation_renames_every_share_and_moves_the_audit_chain,
);

/// The share names (store, name) of the catalog's versions of `path`, by
/// version.
fn share_names(f: &Fixture, path: &str) -> BTreeMap<i64, Vec<(String, String)>> {
    let c = f.catalog();
    let mut s = c
        .prepare(
            "SELECT o.version, p.store, p.name FROM objects o JOIN placements p \
             ON p.object_id = o.id WHERE o.source_ref = ?1 ORDER BY o.version, p.x",
        )
        .unwrap();
    let mut out: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
    for r in s
        .query_map([path], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
    {
        let (v, store, name): (i64, String, String) = r.unwrap();
        out.entry(v).or_default().push((store, name));
    }
    out
}

fn in_some_store(f: &Fixture, names: &[(String, String)]) -> Vec<String> {
    names
        .iter()
        .filter(|(store, name)| f.share_path(store, name).exists())
        .map(|(_, name)| name.clone())
        .collect()
}

fn forget_keeps_what_the_policy_says_and_leaves_no_share_behind(scheme: SchemeKind) {
    let f = fixture_with(2, 3, 3, scheme);
    f.migrate_ok();
    let mut bodies = vec![fs::read(f.src.join("notes/report.txt")).unwrap()];
    for night in 2..=4u64 {
        std::thread::sleep(Duration::from_millis(1100));
        let body = pseudo_random(40_000 + night as usize, night);
        fs::write(f.src.join("notes/report.txt"), &body).unwrap();
        bodies.push(body);
        assert_eq!(f.migrate_ok()["written"], 1);
    }
    let names = share_names(&f, "notes/report.txt");
    assert_eq!(names.keys().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    let before = store_objects(&f);

    let dry = json(&f.run(&["forget", "--keep-last", "2", "--dry-run", "--json"]));
    let listed: Vec<i64> = dry["forgotten"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, vec![1, 2], "{dry}");
    assert_eq!(store_objects(&f), before, "a dry run deleted shares");
    assert_eq!(share_names(&f, "notes/report.txt").len(), 4);

    let r = json(&f.run(&["forget", "--keep-last", "2", "--json"]));
    assert_eq!(r["versions"], 2, "{r}");
    assert_eq!(r["shares_deleted"], 6);
    assert_eq!(r["shares_pending"], 0);
    assert_eq!(store_objects(&f), before - 6);
    let gone: Vec<(String, String)> = names[&1].iter().chain(&names[&2]).cloned().collect();
    assert!(in_some_store(&f, &gone).is_empty(), "forgotten shares left");
    assert!(in_some_store(&f, &names[&3]).len() == 3 && in_some_store(&f, &names[&4]).len() == 3);
    // The catalog keeps a record of what went and why.
    let c = f.catalog();
    let record: Vec<(String, String, i64, bool)> = c
        .prepare(
            "SELECT reason, source_ref, version, done_at IS NOT NULL FROM deletions ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(record.len(), 2);
    assert!(
        record
            .iter()
            .all(|(why, path, _, done)| why.contains("keep the last 2")
                && path == "notes/report.txt"
                && *done)
    );
    // What is kept restores; what went is gone.
    let out = f.root.join("v3");
    let o = f.restore(&out, &["--path", "notes/report.txt", "--version", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(fs::read(f.restored_other(&out, "notes/report.txt")).unwrap() == bodies[2]);
    let o = f.restore(
        &f.root.join("v1"),
        &["--path", "notes/report.txt", "--version", "1"],
    );
    assert!(!o.status.success() && stderr(&o).contains("nothing matched"));

    // Superseded within a year: kept, alone or beside --keep-last.
    for rules in [
        &["--keep-within", "1y"][..],
        &["--keep-last", "1", "--keep-within", "1y"],
    ] {
        let mut args = vec!["forget", "--json"];
        args.extend_from_slice(rules);
        assert_eq!(json(&f.run(&args))["versions"], 0, "{rules:?}");
    }
    let r = json(&f.run(&["forget", "--keep-last", "1", "--json"]));
    assert_eq!(r["versions"], 1);
    assert!(in_some_store(&f, &names[&3]).is_empty());
    assert_eq!(
        in_some_store(&f, &names[&4]).len(),
        3,
        "the latest always stays"
    );
    let o = f.run(&["forget"]);
    assert!(
        !o.status.success() && stderr(&o).contains("say what to keep"),
        "{}",
        stderr(&o)
    );
    // Recorded in the audit log, which still checks, without the path.
    assert!(f.run(&["audit", "verify"]).status.success());
    let log = fs::read_to_string(f.arc.join("audit.log")).unwrap();
    assert!(
        log.contains("\"forget\"") && !log.contains("report.txt"),
        "{log}"
    );
}

fn erase_removes_every_share_and_identifier_of_a_patient(scheme: SchemeKind) {
    let f = fixture_with(2, 3, 3, scheme);
    f.migrate_ok();
    let patient: String = f
        .catalog()
        .query_row(
            "SELECT patient_id FROM objects WHERE source_ref = 'CT_small.dcm'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let paths: Vec<String> = f
        .catalog()
        .prepare("SELECT source_ref FROM objects WHERE patient_id = ?1")
        .unwrap()
        .query_map([&patient], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!paths.is_empty());
    let names: Vec<(String, String)> = paths
        .iter()
        .flat_map(|p| share_names(&f, p).into_values().flatten())
        .collect();
    assert_eq!(names.len(), paths.len() * 3);
    let before = store_objects(&f);

    let o = f.run(&["erase", "--patient", &patient, "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("would erase CT_small.dcm"));
    assert_eq!(store_objects(&f), before);

    // A store down: its shares stay recorded, the exit says so.
    fs::rename(f.store(2), f.root.join("store-2-away")).unwrap();
    let o = f.run(&["erase", "--patient", &patient, "--json"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["versions"], paths.len() as u64);
    assert_eq!(r["shares_pending"], paths.len() as u64, "{r}");
    assert_eq!(r["shares_deleted"], 2 * paths.len() as u64);
    assert_eq!(r["still_in_source"], paths.len() as u64);
    assert!(
        !o.stdout
            .windows(patient.len())
            .any(|w| w == patient.as_bytes())
    );
    fs::rename(f.root.join("store-2-away"), f.store(2)).unwrap();
    assert_eq!(
        in_some_store(&f, &names).len(),
        paths.len(),
        "store 2's are left"
    );
    // The next migrate reaches it and deletes them (the files are gone
    // from the source first: else it would protect them again).
    for p in &paths {
        fs::remove_file(f.src.join(p)).unwrap();
    }
    let m = f.migrate_ok();
    assert_eq!(m["forgotten_shares_deleted"], paths.len() as u64, "{m}");
    assert_eq!(m["new_versions"], 0);
    assert!(in_some_store(&f, &names).is_empty(), "erased shares left");
    assert_eq!(store_objects(&f), before - names.len());

    // Nothing in the catalog, its write-ahead log or the audit log names
    // the patient any more.
    let c = f.catalog();
    let left: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM objects WHERE patient_id = ?1",
            [&patient],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    let nulls: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM deletions WHERE reason = 'erasure' AND source_ref IS NULL \
             AND version IS NULL AND size IS NULL AND done_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(nulls, paths.len() as i64);
    drop(c);
    for file in ["catalog.sqlite", "catalog.sqlite-wal", "audit.log"] {
        let bytes = fs::read(f.arc.join(file)).unwrap_or_default();
        assert!(
            !bytes
                .windows(patient.len())
                .any(|w| w == patient.as_bytes()),
            "{file} still holds the patient ID"
        );
    }
    let log = fs::read_to_string(f.arc.join("audit.log")).unwrap();
    assert!(log.contains("\"erase\"") && log.contains("\"selector\":\"patient\""));
    assert!(f.run(&["audit", "verify"]).status.success());
    let o = f.restore(&f.root.join("back"), &["--patient", &patient]);
    assert!(!o.status.success() && stderr(&o).contains("nothing matched"));
    let o = f.run(&["erase", "--patient", &patient]);
    assert!(!o.status.success() && stderr(&o).contains("nothing matched"));
}

/// A forget killed after the catalog let the versions go and before any
/// share was deleted: the next forget deletes them, none is orphaned.
#[test]
fn a_forget_killed_mid_way_leaves_no_orphan() {
    let f = fixture_with(2, 3, 3, SchemeKind::Compact);
    f.migrate_ok();
    std::thread::sleep(Duration::from_millis(1100));
    fs::write(f.src.join("notes/report.txt"), b"second").unwrap();
    f.migrate_ok();
    let names = share_names(&f, "notes/report.txt");
    kill_at(&f, &["forget", "--keep-last", "1"], "forgotten:0");
    assert_eq!(
        share_names(&f, "notes/report.txt").len(),
        1,
        "the catalog let v1 go"
    );
    assert_eq!(
        in_some_store(&f, &names[&1]).len(),
        3,
        "killed before any delete"
    );
    let r = json(&f.run(&["forget", "--keep-last", "1", "--json"]));
    assert_eq!(
        (r["versions"].clone(), r["shares_deleted"].clone()),
        (0.into(), 3.into())
    );
    assert!(in_some_store(&f, &names[&1]).is_empty());
    assert_eq!(store_objects(&f), (SMALL_FILES) * 3);
}

/// Rewrites umbra.toml: `store`'s shares become `shares`, and `add` (name,
/// shares) stores are appended (local, under stores/).
fn replace_placement(f: &Fixture, store: &str, shares: &str, add: &[(&str, &str)]) {
    let path = f.arc.join("umbra.toml");
    let text = fs::read_to_string(&path).unwrap();
    let head = format!("name = \"{store}\"\nurl = \"stores/{store}\"\nshares = [");
    let at = text
        .find(&head)
        .unwrap_or_else(|| panic!("{store} in {text}"))
        + head.len();
    let end = at + text[at..].find(']').unwrap();
    let mut text = format!("{}{shares}{}", &text[..at], &text[end..]);
    for (name, shares) in add {
        fs::create_dir_all(f.arc.join("stores").join(name)).unwrap();
        text.push_str(&format!(
            "\n[[store]]\nname = \"{name}\"\nurl = \"stores/{name}\"\nshares = [{shares}]\n"
        ));
    }
    fs::write(&path, text).unwrap();
}

/// Every store holds exactly the shares the catalog places there.
fn stores_match_catalog(f: &Fixture) {
    let mut placed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, _, store, name) in f.placements() {
        placed.entry(store).or_default().push(name);
    }
    for e in fs::read_dir(f.arc.join("stores")).unwrap() {
        let dir = e.unwrap().path();
        let store = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut held: Vec<String> = all_files(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        held.sort();
        let mut want = placed.remove(&store).unwrap_or_default();
        want.sort();
        assert_eq!(
            held, want,
            "store {store}: what it holds against the catalog"
        );
    }
}

fn rebalance_adds_retires_and_replaces_stores_keeping_every_object(scheme: SchemeKind) {
    let f = fixture_with(2, 3, 3, scheme);
    f.migrate_ok();
    // Retire store-2, its share 2 to a new store-4.
    replace_placement(&f, "store-2", "", &[("store-4", "2")]);
    let o = f.run(&["config", "check"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("are on store store-2, where umbra.toml now places them on store store-4")
            || stderr(&o).contains(
                "are on store store-2, where umbra.toml now places them on store store-4"
            ),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    let r = json(&f.run(&["archive-repair", "--rebalance", "--json"]));
    assert_eq!(r["moved"], SMALL_FILES as u64, "{r}");
    assert_eq!(
        (r["rebuilt"].clone(), r["old_copies_pending"].clone()),
        (0.into(), 0.into())
    );
    assert_eq!(r["old_copies_deleted"], SMALL_FILES as u64);
    assert!(
        all_files(&f.store(2)).is_empty(),
        "the retired store keeps copies"
    );
    assert_eq!(all_files(&f.store(4)).len(), SMALL_FILES);
    stores_match_catalog(&f);
    assert_eq!(
        store_objects(&f),
        SMALL_FILES * 3,
        "0600, keyed names, none twice"
    );
    assert!(f.run(&["verify"]).status.success());
    let out = f.root.join("after-add");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
    // A second rebalance has nothing to do.
    assert_eq!(
        json(&f.run(&["archive-repair", "--rebalance", "--json"]))["moved"],
        0
    );

    // A provider dies: store-3 is gone with its shares; share 3 goes to a
    // new store-5, rebuilt from the t others. Killed after the first put.
    fs::remove_dir_all(f.store(3)).unwrap();
    replace_placement(&f, "store-3", "", &[("store-5", "3")]);
    kill_at(&f, &["archive-repair", "--rebalance"], "moved:0");
    // Mid-way, with store-3 gone: every object restores from the t left.
    let out = f.root.join("mid-move");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_restored_identical(&f.src, &out);
    let o = f.run(&["archive-repair", "--rebalance", "--json"]);
    assert_eq!(o.status.code(), Some(3), "old copies owed: {}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["moved"], SMALL_FILES as u64, "{r}");
    assert_eq!(r["rebuilt"], SMALL_FILES as u64);
    assert_eq!(r["old_copies_pending"], SMALL_FILES as u64);
    assert_eq!(all_files(&f.store(5)).len(), SMALL_FILES);
    let out = f.root.join("after-loss");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
    // The provider answers again (empty): the next migrate settles what
    // was owed, and every store holds what the catalog says.
    fs::create_dir_all(f.store(3)).unwrap();
    let m = f.migrate_ok();
    assert_eq!(m["forgotten_shares_deleted"], SMALL_FILES as u64, "{m}");
    stores_match_catalog(&f);
    assert!(f.run(&["verify"]).status.success());
    let s = json(&f.run(&["status", "--json"]));
    for st in s["stores"].as_array().unwrap() {
        let want = if st["name"] == "store-2" || st["name"] == "store-3" {
            0
        } else {
            SMALL_FILES
        };
        assert_eq!(st["shares"], want as u64, "{st}");
    }
}

fn key_rotation_renames_every_share_and_moves_the_audit_chain(scheme: SchemeKind) {
    let f = fixture_with(2, 3, 3, scheme);
    f.migrate_ok();
    let before: Vec<String> = f.placements().into_iter().map(|p| p.3).collect();
    let old_key = fs::read(f.arc.join("site.key")).unwrap();

    // Killed after a few renames: nothing else writes until it is done,
    // reads go on (every name the catalog gives has its share).
    kill_at(&f, &["key", "rotate"], "renamed:4");
    let o = f.migrate();
    assert!(
        !o.status.success() && stderr(&o).contains("site key rotation is unfinished"),
        "{}",
        stderr(&o)
    );
    let out = f.root.join("mid");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
    // The restore's entry went into the old chain: the key is not moved.
    let old_log = fs::read_to_string(f.arc.join("audit.log")).unwrap();

    let r = json(&f.run(&["key", "rotate", "--json"]));
    assert_eq!(r["finished"], true, "{r}");
    assert_eq!(r["resumed"], true);
    assert_eq!(r["old_names_pending"], 0);
    let after: Vec<String> = f.placements().into_iter().map(|p| p.3).collect();
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().all(|n| !before.contains(n)),
        "every share has a new name"
    );
    stores_match_catalog(&f);
    assert_eq!(store_objects(&f), SMALL_FILES * 3);
    let new_key = fs::read(f.arc.join("site.key")).unwrap();
    assert!(new_key.len() == 32 && new_key != old_key, "the key changed");
    assert!(!f.arc.join("site.key.new").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata(f.arc.join("site.key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // The old chain is kept aside, the new one starts by naming it.
    let set_aside = f.arc.join(r["audit_set_aside"].as_str().unwrap());
    assert_eq!(fs::read_to_string(&set_aside).unwrap(), old_log);
    let log = fs::read_to_string(f.arc.join("audit.log")).unwrap();
    let first = log.lines().next().unwrap();
    assert!(
        first.contains("\"key rotate\"")
            && first.contains(&format!("\"previous_entries\":{}", old_log.lines().count())),
        "{first}"
    );
    assert!(f.run(&["audit", "verify"]).status.success());
    // Everything works under the new key.
    let out = f.root.join("after");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
    assert!(f.run(&["verify"]).status.success());
    fs::write(f.src.join("new.bin"), pseudo_random(5000, 5)).unwrap();
    assert_eq!(f.migrate_ok()["written"], 1);
    stores_match_catalog(&f);
    // The old key back (or any other): named as the wrong key by every
    // command, before anything is read or written.
    fs::write(f.arc.join("site.key"), &old_key).unwrap();
    for args in [
        &["status"][..],
        &["ls"],
        &["verify"],
        &["restore", "--all", "-o", "x"],
    ] {
        let o = f.run(args);
        assert!(
            !o.status.success() && stderr(&o).contains("wrong site key"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    fs::write(f.arc.join("site.key"), &new_key).unwrap();
    assert!(f.run(&["verify"]).status.success());
}

/// Opt-in retention of objects deleted from the source: migrate records
/// since when an archived path is gone (an excluded file is not gone), and
/// `forget --gone-for` lets them go after the grace period.
#[test]
fn forget_gone_for_lets_objects_deleted_from_the_source_go() {
    let f = fixture_with(2, 3, 3, SchemeKind::Compact);
    f.migrate_ok();
    let src = f.src.to_str().unwrap();
    // Left out by --exclude: still there, so not gone.
    let o = f.run(&[
        "migrate",
        "--source",
        src,
        "--exclude",
        "CT_small.dcm",
        "--json",
    ]);
    assert_eq!(json(&o)["gone_from_source"], 0);
    let names = share_names(&f, "notes/report.txt");
    fs::remove_file(f.src.join("notes/report.txt")).unwrap();
    assert_eq!(f.migrate_ok()["gone_from_source"], 1);
    let gone: i64 = f
        .catalog()
        .query_row("SELECT COUNT(*) FROM gone", [], |r| r.get(0))
        .unwrap();
    assert_eq!(gone, 1);
    // Within the grace period: kept.
    let r = json(&f.run(&["forget", "--gone-for", "30d", "--json"]));
    assert_eq!(r["versions"], 0, "{r}");
    // Past it (gone since before a day to come): its every version goes.
    let r = json(&f.run(&["forget", "--gone-for", "2999-01-01", "--json"]));
    assert_eq!(
        (r["versions"].clone(), r["shares_deleted"].clone()),
        (1.into(), 3.into()),
        "{r}"
    );
    assert!(in_some_store(&f, &names[&1]).is_empty());
    let why: String = f
        .catalog()
        .query_row("SELECT reason FROM deletions", [], |r| r.get(0))
        .unwrap();
    assert!(why.starts_with("gone from the source since 20"), "{why}");
    stores_match_catalog(&f);
    // A path that comes back is not gone any more.
    fs::write(f.src.join("MR_small.dcm.bak"), b"x").unwrap();
    fs::remove_file(f.src.join("MR_small.dcm")).unwrap();
    assert_eq!(f.migrate_ok()["gone_from_source"], 1);
    fs::copy(
        repo_file("datasets/dicom/MR_small.dcm"),
        f.src.join("MR_small.dcm"),
    )
    .unwrap();
    assert_eq!(f.migrate_ok()["gone_from_source"], 0);
    let gone: i64 = f
        .catalog()
        .query_row("SELECT COUNT(*) FROM gone", [], |r| r.get(0))
        .unwrap();
    assert_eq!(gone, 0);
}

/// Changing t or the scheme for new objects, then re-splitting the old
/// ones from t of their shares: killed mid-way it leaves no orphan, and
/// after it every version has umbra.toml's parameters and restores.
#[test]
fn reshare_resplits_old_objects_from_their_shares() {
    let f = fixture_with(2, 3, 3, SchemeKind::Shamir);
    f.migrate_ok();
    let toml = f.arc.join("umbra.toml");
    let text = fs::read_to_string(&toml).unwrap();
    let set = |text: &str, from: &str, to: &str| {
        assert!(text.contains(from), "{from} in {text}");
        text.replace(from, to)
    };
    // Compact from now on, and t = 3: what status and config check say.
    fs::write(
        &toml,
        set(
            &set(&text, "t = 2", "t = 3"),
            "scheme = \"shamir\"",
            "scheme = \"compact\"",
        ),
    )
    .unwrap();
    let s = json(&f.run(&["status", "--json"]));
    let others = s["other_parameters"].as_array().unwrap();
    assert!(
        others
            .iter()
            .any(|o| o.as_str().unwrap().contains("(2, 3)")),
        "{s}"
    );
    assert!(
        others
            .iter()
            .any(|o| o.as_str().unwrap().contains("shamir")),
        "{s}"
    );

    kill_at(&f, &["archive-repair", "--reshare"], "reshared:3");
    // Mid-way: every object restores (old split or new, whole).
    let out = f.root.join("mid");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);

    let r = json(&f.run(&["archive-repair", "--reshare", "--json"]));
    assert!(r["failed"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(r["resplit"], SMALL_FILES as u64 - 3, "{r}");
    stores_match_catalog(&f);
    assert_eq!(store_objects(&f), SMALL_FILES * 3);
    let (t, scheme): (i64, String) = f
        .catalog()
        .query_row(
            "SELECT MIN(split_t), MIN(split_scheme) FROM objects",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((t, scheme.as_str()), (3, "compact"));
    let s = json(&f.run(&["status", "--json"]));
    assert!(s["other_parameters"].as_array().unwrap().is_empty(), "{s}");
    let o = f.run(&["verify", "--deep"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let out = f.root.join("after");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
    // Nothing left to do.
    assert_eq!(
        json(&f.run(&["archive-repair", "--reshare", "--json"]))["resplit"],
        0
    );
}
