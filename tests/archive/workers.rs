//! `umbra migrate --worker` (docs/SCALE.md): many processes on one source
//! and one catalog, PostgreSQL on a real server (and SQLite for workers on
//! one machine). Every object is written exactly once, nothing is left in
//! a store that the catalog does not place there, and a worker or scanner
//! killed with SIGKILL loses nothing: the others take its work over.

use super::*;
use umbra::share::format::SchemeKind;

/// A source of `count` files of a few KB (and the small source's files).
fn many_files(f: &Fixture, count: usize) -> usize {
    fs::create_dir_all(f.src.join("bulk")).unwrap();
    for i in 0..count {
        fs::write(
            f.src.join(format!("bulk/{i:04}.bin")),
            pseudo_random(2_000 + i * 37, i as u64 + 100),
        )
        .unwrap();
    }
    SMALL_FILES + count
}

fn worker(f: &Fixture, index: usize, run: &str, extra: &[&str]) -> std::process::Command {
    let mut args = vec![
        "migrate",
        "--source",
        f.src.to_str().unwrap(),
        "--worker",
        "--run-id",
        run,
        "--group",
        "3",
        "--json",
    ];
    args.extend_from_slice(extra);
    let mut c = f.cmd(&args);
    c.env("JOB_COMPLETION_INDEX", index.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `workers` to the end; returns each one's report.
fn finish_all(children: Vec<Child>) -> Vec<serde_json::Value> {
    children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "worker: {}", stderr(&o));
            serde_json::from_slice(&o.stdout).unwrap()
        })
        .collect()
}

/// The catalog's placements (store, name), all written, one per share of
/// every object; and the stores hold exactly those files.
fn assert_exactly_placed(
    f: &Fixture,
    pg: Option<(&postgres::Postgres, &str)>,
    objects: usize,
    n: usize,
) {
    let (placed, states): (Vec<(String, String, i64)>, Vec<String>) = match pg {
        Some((pg, db)) => {
            let mut c = pg.client(db);
            let p = c
                .query("SELECT store, name, written FROM placements", &[])
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let s = c
                .query("SELECT state FROM objects", &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            (p, s)
        }
        None => {
            let c = f.catalog();
            let mut st = c
                .prepare("SELECT store, name, written FROM placements")
                .unwrap();
            let p = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let mut st = c.prepare("SELECT state FROM objects").unwrap();
            let s = st
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            (p, s)
        }
    };
    assert_eq!(states.len(), objects, "versions recorded");
    assert!(states.iter().all(|s| s == "written"), "{states:?}");
    assert_eq!(placed.len(), objects * n);
    assert!(placed.iter().all(|p| p.2 == 1));
    let mut on_disk: Vec<String> = all_files(&f.arc.join("stores"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut names: Vec<String> = placed.iter().map(|p| p.1.clone()).collect();
    on_disk.sort();
    names.sort();
    assert_eq!(store_objects(f), objects * n, "share files in the stores");
    assert_eq!(
        on_disk, names,
        "the stores hold exactly the catalog's shares"
    );
}

fn workers_write_every_object_once(f: &Fixture, pg: Option<(&postgres::Postgres, &str)>) {
    let objects = many_files(f, 48);
    let children: Vec<Child> = (0..4)
        .map(|i| worker(f, i, "night-1", &[]).spawn().unwrap())
        .collect();
    let reports = finish_all(children);
    let written: u64 = reports.iter().map(|r| r["written"].as_u64().unwrap()).sum();
    assert_eq!(written, objects as u64, "{reports:?}");
    let scanners = reports
        .iter()
        .filter(|r| r["scanned"].as_u64() > Some(0))
        .count();
    assert_eq!(scanners, 1, "one worker scans: {reports:?}");
    assert!(reports.iter().all(|r| r["failed"] == 0));
    assert_exactly_placed(f, pg, objects, 4);
    let out = f.root.join("back");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_restored_identical(&f.src, &out);
    // Status sees the four, finished, with what each wrote.
    let s = json(&f.run(&["status", "--json"]));
    let ws = s["workers"].as_array().unwrap_or_else(|| panic!("{s}"));
    assert_eq!(ws.len(), 4, "{s}");
    assert_eq!(
        ws.iter()
            .map(|w| w["objects"].as_u64().unwrap())
            .sum::<u64>(),
        objects as u64
    );
    assert!(ws.iter().all(|w| w["live"] == false));
    // Every worker's run is in the audit log, whose chain holds.
    let o = f.run(&["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The same run id again: nothing to scan, nothing to write.
    let again = finish_all(vec![worker(f, 0, "night-1", &[]).spawn().unwrap()]);
    assert_eq!(again[0]["scanned"], 0);
    assert_eq!(again[0]["written"], 0);
    // The next night, a new run: one file changed, written once.
    fs::write(f.src.join("bulk/0007.bin"), pseudo_random(3_333, 7)).unwrap();
    let next = finish_all(
        (0..3)
            .map(|i| worker(f, i, "night-2", &[]).spawn().unwrap())
            .collect(),
    );
    assert_eq!(
        next.iter()
            .map(|r| r["written"].as_u64().unwrap())
            .sum::<u64>(),
        1
    );
}

#[test]
fn four_workers_on_postgres_write_every_object_once() {
    let pg = postgres::Postgres::start();
    let url = pg.database("workers");
    let f = fixture_on(2, 4, 4, SchemeKind::Compact, Some(&url));
    workers_write_every_object_once(&f, Some((&pg, "workers")));
}

#[test]
fn four_workers_on_sqlite_write_every_object_once() {
    let f = fixture_on(2, 4, 4, SchemeKind::Shamir, None);
    workers_write_every_object_once(&f, None);
}

/// A worker killed after its first group's shares reached a store, and a
/// scanner killed once it has recorded the pending versions: the other
/// workers wait out their leases, take their work over (deleting the dead
/// attempt's shares), and finish; nothing lost, nothing twice, no orphan.
fn killed_worker_and_scanner_lose_nothing(scheme: SchemeKind) {
    let pg = postgres::Postgres::start();
    let url = pg.database("kills");
    let f = fixture_on(2, 4, 4, scheme, Some(&url));
    let objects = many_files(&f, 30);
    // The scanner, killed with the pending versions recorded.
    let pause = f.root.join("pause");
    let mut scanner = worker(&f, 0, "night-1", &["--lease", "3s"])
        .env("UMBRA_TEST_PAUSE_AT", "scanned:0")
        .env("UMBRA_TEST_PAUSE_FILE", &pause)
        .spawn()
        .unwrap();
    wait_for(&pause, &mut scanner);
    // While workers hold the archive, a writer that needs it alone waits.
    let o = f.run(&["forget", "--keep-last", "1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("holds the archive lock"),
        "{}",
        stderr(&o)
    );
    scanner.kill().unwrap();
    scanner.wait().unwrap();
    fs::remove_file(&pause).unwrap();
    // A worker killed with its first group's first shares in a store.
    let mut victim = worker(&f, 1, "night-1", &["--lease", "3s"])
        .env("UMBRA_TEST_PAUSE_AT", "put:1")
        .env("UMBRA_TEST_PAUSE_FILE", &pause)
        .spawn()
        .unwrap();
    wait_for(&pause, &mut victim);
    victim.kill().unwrap();
    victim.wait().unwrap();
    fs::remove_file(&pause).unwrap();
    assert!(store_objects(&f) > 0, "the victim put nothing");
    let reports = finish_all(
        (2..5)
            .map(|i| {
                worker(&f, i, "night-1", &["--lease", "3s"])
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let written: u64 = reports.iter().map(|r| r["written"].as_u64().unwrap()).sum();
    assert_eq!(written, objects as u64, "{reports:?}");
    // The scan the killed scanner left unfinished was done again, once, by
    // the next worker to start (the victim, before it was killed).
    let scans = reports
        .iter()
        .filter(|r| r["scanned"].as_u64() > Some(0))
        .count();
    assert_eq!(scans, 0, "{reports:?}");
    let record: String = pg
        .client("kills")
        .query_one("SELECT value FROM meta WHERE key LIKE 'scan %'", &[])
        .unwrap()
        .get(0);
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert!(record["by"].as_str().unwrap().starts_with("1@"), "{record}");
    assert!(record["finished"].is_i64(), "{record}");
    assert_exactly_placed(&f, Some((&pg, "kills")), objects, 4);
    let out = f.root.join("back");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_restored_identical(&f.src, &out);
    let s = json(&f.run(&["status", "--json"]));
    assert_eq!(s["leases"], 0, "{s}");
    // The killed two are lost (silent past their lease), the rest done.
    let ws = s["workers"].as_array().unwrap();
    assert_eq!(ws.len(), 5, "{s}");
    for w in ws {
        let id = w["id"].as_str().unwrap();
        let killed = id.starts_with("0@") || id.starts_with("1@");
        assert_eq!(w["lost"], killed, "{w}");
        assert_eq!(w["live"], false, "{w}");
    }
}

both_schemes!(killed_worker_and_scanner_lose_nothing);

/// An Orthanc source or a dry run with --worker: refused, naming why.
#[test]
fn worker_refuses_what_it_cannot_share() {
    let f = fixture(2, 3, 3);
    let o = f.run(&[
        "migrate",
        "--source",
        "orthanc+http://127.0.0.1:1",
        "--worker",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("folder source"), "{}", stderr(&o));
    let o = f.run(&[
        "migrate",
        "--source",
        f.src.to_str().unwrap(),
        "--worker",
        "--dry-run",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--dry-run"), "{}", stderr(&o));
    let o = f.run(&[
        "migrate",
        "--source",
        f.src.to_str().unwrap(),
        "--lease",
        "5s",
    ]);
    assert!(!o.status.success(), "--lease without --worker was taken");
    // What a worker sees only its share of is for one process.
    for args in [
        &["archive-repair", "--worker", "--run-id", "r", "--rebalance"][..],
        &["archive-repair", "--worker", "--run-id", "r", "--reshare"],
    ] {
        let o = f.run(args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains("run as one process"), "{}", stderr(&o));
    }
    let o = f.run(&["archive-repair", "--worker", "--run-id", "r", "--orphans"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--orphans with --worker"),
        "{}",
        stderr(&o)
    );
}

/// A disaster recovery scaled out: restore, verify --deep and archive-repair
/// as three workers each on one run id; a restore worker killed after its
/// first group has its claim taken over; every version is done once.
#[test]
fn restore_verify_and_repair_shard_over_workers() {
    let pg = postgres::Postgres::start();
    let url = pg.database("dr");
    let f = fixture_on(2, 4, 4, SchemeKind::Compact, Some(&url));
    let objects = many_files(&f, 40);
    f.migrate_ok();
    let run = |args: &[&str], i: usize, run: &str| {
        let mut all = args.to_vec();
        all.extend(["--worker", "--run-id", run, "--lease", "3s", "--json"]);
        let mut c = f.cmd(&all);
        c.env("JOB_COMPLETION_INDEX", i.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    // Restore: one worker killed with its first group placed.
    let out = f.root.join("dr");
    let out_s = out.to_str().unwrap().to_string();
    let pause = f.root.join("pause");
    let mut victim = run(&["restore", "--all", "-o", &out_s], 9, "dr-1")
        .env("UMBRA_TEST_PAUSE_AT", "restored:1")
        .env("UMBRA_TEST_PAUSE_FILE", &pause)
        .spawn()
        .unwrap();
    wait_for(&pause, &mut victim);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let reports = finish_all(
        (0..3)
            .map(|i| {
                run(&["restore", "--all", "-o", &out_s], i, "dr-1")
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let restored: u64 = reports
        .iter()
        .map(|r| r["restored"].as_u64().unwrap() + r["already_present"].as_u64().unwrap())
        .sum();
    assert!(restored >= objects as u64, "{reports:?}");
    assert!(reports.iter().all(|r| r["failed"] == 0), "{reports:?}");
    assert_restored_identical(&f.src, &out);
    // A share lost; verify --deep over three workers checks each version
    // once and finds it; archive-repair --worker puts it back.
    let (store, name): (String, String) = {
        let mut c = pg.client("dr");
        let r = c
            .query_one(
                "SELECT store, name FROM placements ORDER BY object_id DESC, x LIMIT 1",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    fs::remove_file(f.share_path(&store, &name)).unwrap();
    let checks: Vec<Output> = (0..3)
        .map(|i| run(&["verify", "--deep"], i, "v-1").spawn().unwrap())
        .collect::<Vec<_>>()
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let checked: u64 = checks
        .iter()
        .map(|o| {
            serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["objects"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(checked, objects as u64);
    assert_eq!(
        checks.iter().filter(|o| !o.status.success()).count(),
        1,
        "exactly one worker met the lost share"
    );
    let repairs = finish_all(
        (0..3)
            .map(|i| run(&["archive-repair"], i, "r-1").spawn().unwrap())
            .collect(),
    );
    let repaired: u64 = repairs
        .iter()
        .map(|r| r["repaired"].as_u64().unwrap())
        .sum();
    assert_eq!(repaired, 1, "{repairs:?}");
    assert!(f.share_path(&store, &name).is_file());
    let o = f.run(&["verify", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Without a run id, a restore worker cannot know its fellows.
    let mut c = f.cmd(&["restore", "--all", "-o", &out_s, "--worker"]);
    let o = c
        .env_remove("UMBRA_RUN_ID")
        .env_remove("SLURM_ARRAY_JOB_ID")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("run id"), "{}", stderr(&o));
}

/// Fencing: a worker frozen (SIGSTOP: no heartbeat) while its first store
/// takes its first group's shares loses its leases; another worker takes its
/// versions over and writes them. Thawed, the first finds that group taken
/// over, records nothing of it and deletes the shares it had put, then stops
/// with an error before its next group: every object once, no orphan.
#[test]
fn a_frozen_worker_finds_its_versions_taken_over() {
    let pg = postgres::Postgres::start();
    let url = pg.database("fence");
    let f = fixture_on(2, 4, 4, SchemeKind::Shamir, Some(&url));
    let objects = many_files(&f, 12);
    let pause = f.root.join("pause");
    let mut frozen = worker(&f, 0, "night-1", &["--lease", "3s"])
        .env("UMBRA_TEST_PAUSE_AT", "put:1")
        .env("UMBRA_TEST_PAUSE_FILE", &pause)
        .spawn()
        .unwrap();
    wait_for(&pause, &mut frozen);
    let signal = |sig: &str| {
        let o = std::process::Command::new("kill")
            .args([sig, &frozen.id().to_string()])
            .output()
            .unwrap();
        assert!(o.status.success());
    };
    signal("-STOP");
    let other = finish_all(vec![
        worker(&f, 1, "night-1", &["--lease", "3s"])
            .spawn()
            .unwrap(),
    ]);
    assert_eq!(other[0]["written"], objects as u64, "{other:?}");
    signal("-CONT");
    fs::remove_file(&pause).unwrap();
    let o = frozen.wait_with_output().unwrap();
    assert!(!o.status.success(), "the thawed worker went on");
    assert!(
        stderr(&o).contains("ran out and another worker took them over"),
        "{}",
        stderr(&o)
    );
    assert_exactly_placed(&f, Some((&pg, "fence")), objects, 4);
}
