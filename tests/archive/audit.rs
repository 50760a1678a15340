//! The audit log: edits, truncation and deletion detected, a wrong site key
//! named, and neither stopping protection nor restore.

use super::*;

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

/// A deleted log is noticed, and the next runs do not hide it: migrate
/// still protects the new object but says the run is not in the log (exit
/// 3), restore still restores (with a WARNING), until `audit restart`
/// records the break. A wrong site key is named as such, not as tampering.
#[test]
fn a_deleted_log_is_noticed_and_never_blocks_protection_or_restore() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    let log = f.arc.join("audit.log");
    fs::remove_file(&log).unwrap();
    let o = f.run(&["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is missing"), "{}", stderr(&o));

    fs::write(f.src.join("new.txt"), pseudo_random(1000, 3)).unwrap();
    let o = f.migrate();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("WARNING: this run is not in the audit log"),
        "{}",
        stderr(&o)
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["written"], 1, "protection goes on");
    let o = f.run(&["audit", "verify"]);
    assert!(
        !o.status.success(),
        "the next run did not hide the deletion"
    );

    let out = f.root.join("out");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("WARNING: this restore is not in the audit log"));
    assert_restored_identical(&f.src, &out);

    let o = f.run(&["audit", "restart", "--reason", "deleted by mistake"]);
    assert!(o.status.success(), "{}", stderr(&o));
    f.migrate_ok();
    let o = f.run(&["audit", "verify", "--json"]);
    let v = json(&o);
    assert_eq!(
        (v["intact"].as_bool(), v["entries"].as_u64()),
        (Some(true), Some(2))
    );
    assert!(
        fs::read_to_string(&log)
            .unwrap()
            .contains("deleted by mistake")
    );

    // Another archive's site key.
    let key = f.arc.join("site.key");
    let original = fs::read(&key).unwrap();
    fs::write(&key, [9u8; 32]).unwrap();
    let o = f.run(&["audit", "verify"]);
    assert!(stderr(&o).contains("wrong site key"), "{}", stderr(&o));
    fs::write(&key, original).unwrap();
    assert!(f.run(&["audit", "verify"]).status.success());
}
