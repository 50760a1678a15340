//! Stores that lose, damage, swap or refuse shares: named, survived, repaired.

use super::*;
use umbra::share::format::SchemeKind;

fn lost_stores_then_restore_and_repair(scheme: SchemeKind) {
    let f = fixture_with(4, 8, 4, scheme);
    f.migrate_ok();
    // Two of four stores gone: n - t = 4 shares of every object.
    fs::remove_dir_all(f.store(1)).unwrap();
    fs::remove_dir_all(f.store(3)).unwrap();
    let out = f.root.join("out");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        names_share(&err, "store-1", 1, 1) && err.contains("missing"),
        "{err}"
    );
    assert!(err.contains("store store-3"), "{err}");
    assert_restored_identical(&f.src, &out);

    let o = f.run(&["verify", "--json"]);
    assert!(!o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stores"][0]["missing"], SMALL_FILES as u64 * 2);
    assert_eq!(v["stores"][1]["present"], SMALL_FILES as u64 * 2);

    // New, empty providers in their place; repair refills them.
    fs::create_dir(f.store(1)).unwrap();
    fs::create_dir(f.store(3)).unwrap();
    let o = f.run(&["archive-repair", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["repaired"], SMALL_FILES as u64 * 4);
    assert!(f.run(&["verify", "--deep"]).status.success());
    // Now the two other stores may go.
    fs::remove_dir_all(f.store(2)).unwrap();
    fs::remove_dir_all(f.store(4)).unwrap();
    let out = f.root.join("out2");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
}

fn flipped_truncated_and_swapped_shares_are_named_and_survived(scheme: SchemeKind) {
    let f = fixture_with(3, 5, 5, scheme);
    f.migrate_ok();
    let p = f.placements();
    let find = |obj: i64, x: i64| {
        let (_, _, s, n) = p.iter().find(|q| q.0 == obj && q.1 == x).unwrap();
        f.share_path(s, n)
    };
    // Object 1, share 1: a flipped byte in the payload.
    let a = find(1, 1);
    let mut bytes = fs::read(&a).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&a, bytes).unwrap();
    // Object 2, share 2: truncated.
    let b = find(2, 2);
    let len = fs::metadata(&b).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&b)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    // Objects 3 and 4, share 3: swapped.
    let (c, d) = (find(3, 3), find(4, 3));
    let (bc, bd) = (fs::read(&c).unwrap(), fs::read(&d).unwrap());
    fs::write(&c, bd).unwrap();
    fs::write(&d, bc).unwrap();

    // Object 5, share 1: forged, a payload byte changed and every hash
    // recomputed, so that only the integrity tag can tell.
    let e = find(5, 1);
    forge(&e);

    let o = f.run(&["verify"]);
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        names_share(&out, "store-1", 1, 1) && out.contains("fail their BLAKE3"),
        "{out}"
    );
    assert!(names_share(&out, "store-2", 2, 2), "{out}");
    assert!(names_share(&out, "store-3", 3, 3), "{out}");
    assert!(names_share(&out, "store-3", 4, 3), "{out}");
    assert!(out.contains("another object"), "{out}");

    assert!(
        !out.contains("object #5"),
        "the forged share passes its own hashes: {out}"
    );

    let restored = f.root.join("out");
    let o = f.restore(&restored, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(names_share(&stderr(&o), "store-2", 2, 2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("object #5: the first 3 shares did not combine"),
        "{}",
        stderr(&o)
    );
    assert_restored_identical(&f.src, &restored);

    // Only --deep finds the forged share: it regenerates every share from
    // t that rebuild the object and compares.
    let o = f.run(&["verify", "--deep"]);
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        names_share(&out, "store-1", 5, 1) && out.contains("found by --deep"),
        "{out}"
    );
    let o = f.run(&["archive-repair", "--deep", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["repaired"], 5, "flipped, truncated, two swapped, forged");
    let o = f.run(&["verify", "--deep"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

/// Changes one payload byte of a share and recomputes its segment table and
/// header hash: a share that is wrong although its own hashes hold.
fn forge(path: &Path) {
    use umbra::share::format::{self as share_file, HASH_LEN};
    let bytes = fs::read(path).unwrap();
    let parsed = share_file::parse(&bytes).unwrap();
    let header = parsed.header.clone();
    let mut payload = parsed.payload.to_vec();
    let last = payload.len() - 1;
    payload[last] ^= 0x5a;
    let mut table = Vec::with_capacity(header.segment_count() as usize * HASH_LEN);
    for k in 0..header.segment_count() {
        let (a, b) = header.segment_range(k);
        table.extend_from_slice(&share_file::segment_hash(&payload[a as usize..b as usize]));
    }
    let mut out = header.encode(&table).to_vec();
    out.extend_from_slice(&table);
    out.extend_from_slice(&payload);
    fs::write(path, out).unwrap();
    assert!(
        share_file::parse(&fs::read(path).unwrap())
            .unwrap()
            .corrupt_segments()
            .is_empty()
    );
}

/// A (3, 5) archive (write quorum 4) whose stores `broken` start failing
/// every write once the first group of three is written: the run's output.
fn stores_fail_mid_run(broken: &[usize], scheme: SchemeKind) -> (Fixture, Output) {
    let f = fixture_with(3, 5, 5, scheme);
    let pause = f.root.join("pause");
    // Groups of three: the first group's shares are all in the stores when
    // the stores fail (the next group is being split meanwhile).
    let child = migrate_paused(&f, "written:3", 3, &pause);
    for &k in broken {
        // Its directory becomes a file.
        fs::rename(f.store(k), f.root.join(format!("store-{k}-away"))).unwrap();
        fs::write(f.store(k), b"not a directory").unwrap();
    }
    fs::remove_file(&pause).unwrap();
    let o = child.wait_with_output().unwrap();
    (f, o)
}

fn stores_back(f: &Fixture, broken: &[usize]) {
    for &k in broken {
        fs::remove_file(f.store(k)).unwrap();
        fs::rename(f.root.join(format!("store-{k}-away")), f.store(k)).unwrap();
    }
}

/// One store of five down: the objects reach the other four (the write
/// quorum), are `degraded`, restorable, named by the run and by verify, and
/// the next run with the store back completes them from their own shares.
fn one_store_down_degrades_then_the_next_run_completes(scheme: SchemeKind) {
    let (f, o) = stores_fail_mid_run(&[2], scheme);
    assert_eq!(
        o.status.code(),
        Some(3),
        "degraded is exit 3: {}",
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("degraded:") && err.contains("store store-2"),
        "{err}"
    );
    assert!(
        err.contains("4 of 5 shares written (write quorum 4)"),
        "{err}"
    );
    let states = f.states();
    assert_eq!(states["written"], 3);
    assert_eq!(states["degraded"], SMALL_FILES as i64 - 3);
    assert!(!states.contains_key("pending"), "{states:?}");

    let o = f.run(&["verify"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stdout).contains("never written"));
    let out = f.root.join("out-degraded");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_restored_identical(&f.src, &out);

    // The store is back: the next run completes every degraded object from
    // its written shares, even one whose source is gone meanwhile.
    stores_back(&f, &[2]);
    fs::remove_file(f.src.join("notes/report.txt")).unwrap();
    let r = f.migrate_ok();
    assert_eq!(r["completed"], SMALL_FILES as u64 - 3);
    assert_eq!(r["degraded"], 0);
    assert_eq!(f.states()["written"], SMALL_FILES as i64);
    assert_eq!(store_objects(&f), SMALL_FILES * 5);
    let o = f.run(&["verify", "--deep"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

/// Two stores of five down: below the write quorum, the objects stay
/// pending with their failure recorded; the next run, stores back, writes
/// them, forgets one whose source was deleted, and leaves nothing twice.
fn below_the_write_quorum_objects_stay_pending_until_the_next_run(scheme: SchemeKind) {
    let (f, o) = stores_fail_mid_run(&[2, 4], scheme);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("store store-2") || err.contains("store store-4"),
        "{err}"
    );
    assert!(err.contains("below the write quorum of 4"), "{err}");
    let states = f.states();
    assert_eq!(states["written"], 3);
    assert_eq!(states["pending"], SMALL_FILES as i64 - 3);
    let errors: i64 = f
        .catalog()
        .query_row(
            "SELECT COUNT(*) FROM objects WHERE last_error IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(errors, SMALL_FILES as i64 - 3);

    stores_back(&f, &[2, 4]);
    fs::remove_file(f.src.join("notes/report.txt")).unwrap();
    let r = f.migrate_ok();
    assert_eq!(r["written"], SMALL_FILES as u64 - 4);
    assert_eq!(r["vanished"], 1);
    assert_eq!(f.states()["written"], SMALL_FILES as i64 - 1);
    assert_eq!(
        store_objects(&f),
        (SMALL_FILES - 1) * 5,
        "no leftovers of failed attempts"
    );
    let out = f.root.join("out");
    assert!(f.restore(&out, &["--all"]).status.success());
    assert_restored_identical(&f.src, &out);
}

#[test]
fn sampled_verify_rolls_over_the_archive() {
    let f = fixture(2, 3, 3);
    f.migrate_ok();
    for _ in 0..3 {
        let o = f.run(&["verify", "--sample", "34%", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["objects"], 4, "ceil(9 x 34%)");
    }
    let checked: i64 = f
        .catalog()
        .query_row(
            "SELECT COUNT(*) FROM objects WHERE checked_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        checked, SMALL_FILES as i64,
        "three samples cover everything"
    );
    assert!(!f.run(&["verify", "--sample", "0%"]).status.success());
}

both_schemes!(
    lost_stores_then_restore_and_repair,
    flipped_truncated_and_swapped_shares_are_named_and_survived,
    one_store_down_degrades_then_the_next_run_completes,
    below_the_write_quorum_objects_stay_pending_until_the_next_run
);
