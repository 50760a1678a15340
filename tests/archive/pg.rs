//! A PostgreSQL catalog (docs/SCALE.md) on a real server the test starts:
//! the same nights, restores, checks and lifecycle commands as with SQLite,
//! giving the same answers; archives on one server kept apart; passwords
//! never in umbra.toml.

use super::*;
use umbra::share::format::SchemeKind;

/// What `ls --json --versions` says, without what differs between two
/// runs (times, ids, the source's absolute path).
fn listing(f: &Fixture) -> Vec<serde_json::Value> {
    let o = f.run(&["ls", "--versions", "--json"]);
    assert!(o.status.success(), "ls: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .unwrap_or_else(|| panic!("ls --json: {v}"))
        .iter()
        .map(|o| {
            let mut o = o.clone();
            let m = o.as_object_mut().unwrap();
            for k in ["recorded_at", "updated_at", "verified_at"] {
                m.remove(k);
            }
            o
        })
        .collect()
}

/// The nightly workflow, one night after another, on SQLite and on
/// PostgreSQL side by side: every answer the same.
fn postgres_catalog_answers_as_sqlite_does(scheme: SchemeKind) {
    let pg = postgres::Postgres::start();
    let url = pg.database("nightly");
    let lite = fixture_with(2, 4, 4, scheme);
    let f = fixture_on(2, 4, 4, scheme, Some(&url));
    // Same source bytes for both: the second fixture's source is replaced
    // by the first's.
    fs::remove_dir_all(&f.src).unwrap();
    fs::rename(&lite.src, &f.src).unwrap();
    let both = |args: &[&str]| -> [Output; 2] {
        [&lite, &f].map(|x| {
            let mut args = args.to_vec();
            let src = f.src.to_str().unwrap().to_string();
            for a in args.iter_mut() {
                if *a == "SRC" {
                    *a = Box::leak(src.clone().into_boxed_str());
                }
            }
            x.run(&args)
        })
    };
    let counts = |o: &Output| {
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("not JSON: {}", stderr(o)));
        [
            "scanned",
            "new_versions",
            "written",
            "degraded",
            "failed",
            "bytes_written",
        ]
        .map(|k| v[k].clone())
    };
    let [a, b] = both(&["migrate", "--source", "SRC", "--json"]);
    assert!(b.status.success(), "migrate on PostgreSQL: {}", stderr(&b));
    assert_eq!(counts(&a), counts(&b));
    assert_eq!(counts(&b)[2], SMALL_FILES as u64);
    // The next night: one file changed, one new, nothing else written.
    let first = fs::read(f.src.join("notes/report.txt")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    fs::write(f.src.join("notes/report.txt"), pseudo_random(50_001, 77)).unwrap();
    fs::write(f.src.join("notes/new.txt"), pseudo_random(9_000, 78)).unwrap();
    let [a, b] = both(&["migrate", "--source", "SRC", "--json"]);
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(counts(&a), counts(&b));
    assert_eq!(counts(&b)[2], 2);
    assert_eq!(listing(&lite), listing(&f));
    // Selections (GLOB on PostgreSQL is a regular expression).
    for sel in [
        &["ls", "--path", "notes/*", "--json"][..],
        &["ls", "--path", "*_small.dcm", "--json"],
        &["ls", "--path", "[CM]?_small.dcm", "--json"],
        &["ls", "--path", "[^C]*.dcm", "--json"],
    ] {
        let [a, b] = both(sel);
        assert!(a.status.success(), "{sel:?}: {}", stderr(&a));
        assert!(b.status.success(), "{sel:?}: {}", stderr(&b));
        let names = |o: &Output| -> Vec<String> {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            v.as_array()
                .unwrap()
                .iter()
                .map(|o| o["path"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        assert_eq!(names(&a), names(&b), "{sel:?}");
        assert!(!names(&b).is_empty(), "{sel:?} matched nothing");
    }
    let s = json(&f.run(&["status", "--json"]));
    assert_eq!(s["objects"], SMALL_FILES as u64 + 1, "{s}");
    let o = f.run(&["config", "check", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["stored_versions"], SMALL_FILES as u64 + 2);
    assert_eq!(s["versions"], SMALL_FILES as u64 + 2);
    // Restores: everything, and the first version of the changed file.
    let out = f.root.join("back");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_restored_identical(&f.src, &out);
    let v1 = f.root.join("v1");
    let o = f.restore(&v1, &["--path", "notes/report.txt", "--version", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        fs::read(f.restored_other(&v1, "notes/report.txt")).unwrap(),
        first
    );
    // A lost share, found by verify and rebuilt by repair.
    let (store, name) = {
        let mut c = pg.client("nightly");
        let r = c
            .query_one(
                "SELECT store, name FROM placements ORDER BY object_id, x LIMIT 1",
                &[],
            )
            .unwrap();
        (r.get::<_, String>(0), r.get::<_, String>(1))
    };
    fs::remove_file(f.share_path(&store, &name)).unwrap();
    let o = f.run(&["verify", "--json"]);
    assert!(!o.status.success(), "verify found nothing missing");
    let o = f.run(&["archive-repair", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(f.share_path(&store, &name).is_file());
    let o = f.run(&["verify", "--deep", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Retention and erasure.
    let [a, b] = both(&["forget", "--keep-last", "1", "--json"]);
    assert!(b.status.success(), "{}", stderr(&b));
    let forgotten = |o: &Output| json(o)["forgotten_versions"].clone();
    assert_eq!(forgotten(&a), forgotten(&b));
    assert_eq!(listing(&lite).len(), listing(&f).len());
    let patient: String = {
        let mut c = pg.client("nightly");
        c.query_one(
            "SELECT patient_id FROM objects WHERE source_ref = 'CT_small.dcm'",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let o = f.run(&["erase", "--patient", &patient, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut c = pg.client("nightly");
    let left: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM objects WHERE patient_id = $1",
            &[&patient],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    let o = f.run(&["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Nothing of the catalog in the archive directory: no SQLite file, and
    // the audit chain is in the catalog, shared by every worker.
    assert!(!f.arc.join("catalog.sqlite").exists());
    assert!(!f.arc.join("audit.log").exists());
    let lines: i64 = c
        .query_one("SELECT COUNT(*) FROM audit WHERE chain = 'current'", &[])
        .unwrap()
        .get(0);
    assert!(lines >= 6, "{lines} audit entries");
    // A site key rotation moves the names and the chain, in the catalog.
    let o = f.run(&["key", "rotate", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.run(&["audit", "verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = f.root.join("after-rotate");
    let o = f.restore(&out, &["--path", "notes/*"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // An edited entry breaks the chain, and is named.
    let edited = c
        .execute(
            "UPDATE audit SET line = replace(line, '\"key rotate\"', '\"key rotated\"') \
             WHERE chain = 'current' AND seq = 1",
            &[],
        )
        .unwrap();
    assert_eq!(edited, 1);
    let o = f.run(&["audit", "verify"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("line 1"), "{}", stderr(&o));
}

both_schemes!(postgres_catalog_answers_as_sqlite_does);

/// Two archives on one server: each its own database, or its own schema
/// of one database; a second archive pointed at a catalog in use is
/// refused before anything is written.
#[test]
fn archives_on_one_server_stay_apart() {
    let pg = postgres::Postgres::start();
    let url = pg.database("shared");
    let a = fixture_on(2, 3, 3, SchemeKind::Shamir, Some(&url));
    // The same database again: refused, and no archive left half-made.
    let dir = tempfile::tempdir().unwrap();
    let o = umbra()
        .env("UMBRA_CATALOG_PASSWORD", postgres::PASSWORD)
        .args(["init", "-t", "2", "-n", "3", "--catalog", &url])
        .arg(dir.path().join("b"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("a catalog already exists"),
        "{}",
        stderr(&o)
    );
    assert!(
        !dir.path().join("b").exists(),
        "a refused init left a directory"
    );
    // Its own schema of the same database (libpq's options).
    pg.client("shared")
        .batch_execute("CREATE SCHEMA other")
        .unwrap();
    let other = format!("{url}?options=-csearch_path%3Dother");
    let b = fixture_on(2, 3, 3, SchemeKind::Compact, Some(&other));
    fs::write(b.src.join("only-in-b.bin"), pseudo_random(1000, 5)).unwrap();
    a.migrate_ok();
    b.migrate_ok();
    assert_eq!(listing(&a).len(), SMALL_FILES);
    assert_eq!(listing(&b).len(), SMALL_FILES + 1);
    // One's site key does not open the other's catalog.
    fs::copy(b.arc.join("site.key"), a.arc.join("site.key")).unwrap();
    let o = a.run(&["ls"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("wrong site key"), "{}", stderr(&o));
}

/// The password never sits in umbra.toml: a URL with one is refused; it
/// comes from the environment or a 0600 file; a wrong one is named.
#[test]
fn catalog_password_from_the_environment_or_a_private_file() {
    let pg = postgres::Postgres::start();
    let url = pg.database("pw");
    let dir = tempfile::tempdir().unwrap();
    let with_pw = url.replace("umbra@", &format!("umbra:{}@", postgres::PASSWORD));
    let o = umbra()
        .args(["init", "-t", "2", "-n", "3", "--catalog", &with_pw])
        .arg(dir.path().join("a"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("holds a password"), "{e}");
    assert!(
        !e.contains(postgres::PASSWORD),
        "the password was echoed: {e}"
    );
    let f = fixture_on(2, 3, 3, SchemeKind::Shamir, Some(&url));
    assert!(
        !fs::read_to_string(f.arc.join("umbra.toml"))
            .unwrap()
            .contains(postgres::PASSWORD)
    );
    // No password at all, then a wrong one: named errors, exit non-zero.
    let bare = |x: &Fixture| {
        let mut c = x.cmd(&["ls"]);
        c.env_remove("UMBRA_CATALOG_PASSWORD")
            .env_remove("PGPASSWORD");
        c
    };
    let o = bare(&f).output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("catalog {url}")),
        "{}",
        stderr(&o)
    );
    let o = bare(&f).env("PGPASSWORD", "wrong").output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("password authentication failed"),
        "{}",
        stderr(&o)
    );
    // A password file: refused while others may read it, then used.
    let pw = f.arc.join("catalog.pw");
    fs::write(&pw, format!("{}\n", postgres::PASSWORD)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o644)).unwrap();
    let toml = fs::read_to_string(f.arc.join("umbra.toml")).unwrap();
    fs::write(
        f.arc.join("umbra.toml"),
        format!("catalog_password_file = \"catalog.pw\"\n{toml}"),
    )
    .unwrap();
    let o = bare(&f).output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).unwrap();
    let o = bare(&f).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// TLS to the catalog: a server that takes TLS connections only; umbra
/// verifies its certificate against the CA umbra.toml (or PGSSLROOTCERT)
/// names, refuses it against the system's roots, and `sslmode=verify-full`
/// (libpq's spelling) works as `require` does.
#[test]
fn catalog_over_tls_verifies_the_server_certificate() {
    let pg = postgres::Postgres::start_tls();
    let url = pg.database("tls");
    let dir = tempfile::tempdir().unwrap();
    let init = |name: &str, conninfo: &str, ca: Option<&Path>| {
        let mut c = umbra();
        c.env("UMBRA_CATALOG_PASSWORD", postgres::PASSWORD)
            .env_remove("PGSSLROOTCERT")
            .args(["init", "-t", "2", "-n", "3", "--catalog", conninfo])
            .arg(dir.path().join(name));
        if let Some(ca) = ca {
            c.env("PGSSLROOTCERT", ca);
        }
        c.output().unwrap()
    };
    // Plain connections are refused by the server.
    let o = init("plain", &format!("{url}?sslmode=disable"), None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no encryption"), "{}", stderr(&o));
    // TLS, trusting only the system's roots: the test CA is not one.
    let o = init("untrusted", &format!("{url}?sslmode=require"), None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("certificate"), "{}", stderr(&o));
    assert!(!dir.path().join("untrusted").exists());
    // A CA file that is not one is named.
    let bogus = dir.path().join("bogus.pem");
    fs::write(&bogus, "not a certificate\n").unwrap();
    let o = init("bogus", &format!("{url}?sslmode=require"), Some(&bogus));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bogus.pem"), "{}", stderr(&o));
    // With the CA: the archive works night after night, over TLS only.
    let o = init("arc", &format!("{url}?sslmode=verify-full"), Some(&pg.ca()));
    assert!(o.status.success(), "{}", stderr(&o));
    let arc = dir.path().join("arc");
    let toml = fs::read_to_string(arc.join("umbra.toml")).unwrap();
    fs::write(
        arc.join("umbra.toml"),
        format!("catalog_ca_file = {:?}\n{toml}", pg.ca().to_str().unwrap()),
    )
    .unwrap();
    let src = dir.path().join("src");
    small_source(&src);
    let f = Fixture {
        _dir: tempfile::tempdir().unwrap(),
        root: dir.path().to_path_buf(),
        arc,
        src,
    };
    assert_eq!(f.migrate_ok()["written"], SMALL_FILES as u64);
    let out = dir.path().join("out");
    let o = f.restore(&out, &["--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_restored_identical(&f.src, &out);
}
