//! `init` and `config check`: what a placement means.

use super::*;

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

/// config check tests the real setup: a mistyped store path and two
/// stores in one place are errors (exit 1); (t, n) changed since objects
/// were written, and a catalog readable by others, are warnings; the
/// storage cost is stated.
#[test]
fn config_check_tests_the_real_setup() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    let cfg_path = f.arc.join("umbra.toml");
    let cfg = fs::read_to_string(&cfg_path).unwrap();
    let o = f.run(&["config", "check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("3.00 bytes per byte of source"), "{out}");
    assert!(
        out.contains("store store-1:") && out.contains("reachable, writable"),
        "{out}"
    );

    fs::write(
        &cfg_path,
        cfg.replace("url = \"stores/store-2\"", "url = \"stores/stroe-2\""),
    )
    .unwrap();
    let o = f.run(&["config", "check"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("error: store store-2: not writable"), "{out}");
    assert!(out.contains("stroe-2"), "{out}");

    fs::write(
        &cfg_path,
        cfg.replace("url = \"stores/store-2\"", "url = \"stores/store-1\""),
    )
    .unwrap();
    let o = f.run(&["config", "check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("stores store-1 and store-2 are one place"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    fs::write(
        &cfg_path,
        cfg.replace("staging = \"staging\"", "staging = \"stores/store-3/tmp\""),
    )
    .unwrap();
    let o = f.run(&["config", "check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("staging directory"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // n raised to 4 (a fourth store), with the old objects split (2, 3).
    fs::create_dir_all(f.store(4)).unwrap();
    let four = cfg.replace("n = 3", "n = 4")
        + "\n[[store]]\nname = \"store-4\"\nurl = \"stores/store-4\"\nshares = [4]\n";
    fs::write(&cfg_path, four).unwrap();
    fs::set_permissions(
        f.arc.join("catalog.sqlite"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = f.run(&["config", "check", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let warnings = r["warnings"].to_string();
    assert!(warnings.contains("were split (2, 3)"), "{warnings}");
    assert!(warnings.contains("readable by others"), "{warnings}");
    assert_eq!(r["storage_factor"], 4.0);
}
