//! The archive's life after the first night: `status` and `ls` against the
//! catalog and the stores themselves, and older versions brought back with
//! `restore --version` and `--as-of`.

use super::*;
use umbra::share::format::SchemeKind;

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
);
