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
