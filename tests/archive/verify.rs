//! `verify` and `archive-repair` say what the archive's state really is:
//! pending objects, a store lost as a whole (one line, not one per share),
//! files no catalog entry references, and objects named by their path.

use super::*;

/// Pending objects are problems ("0 problems" with nothing protected was a
/// lie); a lost store is one line; an orphan is found and, with
/// `archive-repair --orphans`, deleted; problems name the object's path.
#[test]
fn verify_reports_pending_lost_stores_and_orphans() {
    let f = fixture(2, 3, 3);
    // A version that cannot be written: its store is a file.
    f.migrate_ok();
    fs::write(f.src.join("late.txt"), pseudo_random(3000, 6)).unwrap();
    let away = f.root.join("away");
    fs::rename(f.store(3), &away).unwrap();
    fs::write(f.store(3), b"not a directory").unwrap();
    fs::rename(f.store(2), f.root.join("away-2")).unwrap();
    fs::write(f.store(2), b"not a directory").unwrap();
    let o = f.migrate();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    fs::remove_file(f.store(3)).unwrap();
    fs::rename(&away, f.store(3)).unwrap();
    fs::remove_file(f.store(2)).unwrap();
    fs::rename(f.root.join("away-2"), f.store(2)).unwrap();

    let o = f.run(&["verify", "--json"]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pending"], 1, "{v}");
    let problems: Vec<String> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("late.txt (object #") && p.contains("pending")),
        "{problems:?}"
    );
    // The store 1 leftovers of the failed attempt are referenced by the
    // pending version: not orphans.
    assert_eq!(v["stores"][0]["orphans"], 0, "{v}");

    // Store 2 emptied, and a file nobody wrote in store 3.
    fs::remove_dir_all(f.store(2)).unwrap();
    fs::create_dir(f.store(2)).unwrap();
    let stray = f.store(3).join("ab").join("ab".repeat(32));
    fs::create_dir_all(stray.parent().unwrap()).unwrap();
    fs::write(&stray, b"someone else's").unwrap();
    let o = f.run(&["verify"]);
    assert_eq!(o.status.code(), Some(3));
    let out = String::from_utf8_lossy(&o.stdout);
    let lost: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("problem: store store-2"))
        .collect();
    assert_eq!(lost.len(), 1, "one line for the lost store: {lost:?}");
    assert!(lost[0].contains("holds none of its"), "{out}");
    assert!(
        out.contains("store store-3: 1 file(s) that no catalog entry references"),
        "{out}"
    );

    let o = f.run(&["archive-repair", "--orphans", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["orphans_removed"], 1, "{v}");
    assert!(!stray.exists());
    assert_eq!(v["repaired"], SMALL_FILES as u64, "store 2 refilled: {v}");
    // Still one pending object: repair cannot write what migrate has not.
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    f.migrate_ok();
    let o = f.run(&["verify", "--deep"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}
