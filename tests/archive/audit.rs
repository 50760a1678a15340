//! The audit log: edits and truncation detected.

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
