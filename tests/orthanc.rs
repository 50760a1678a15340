//! The Orthanc source and restore target against a real Orthanc (Debian's
//! `orthanc` package), started here on free loopback ports with a temporary
//! configuration. Without Orthanc this test FAILS with an install hint; it
//! never skips. The binary is found as $UMBRA_ORTHANC, /usr/sbin/Orthanc or
//! `Orthanc` on PATH.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Server {
    child: Child,
    base: String,
    /// The Authorization header for an Orthanc that asks for one.
    auth: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn orthanc_binary() -> PathBuf {
    find_tool(
        "UMBRA_ORTHANC",
        "Orthanc",
        &["/usr/sbin/Orthanc".into(), "/usr/bin/Orthanc".into()],
        "`apt-get install -y --no-install-recommends orthanc` (Debian)",
    )
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn start_orthanc() -> Server {
    start_orthanc_with(None)
}

/// With `user`, Orthanc asks for HTTP basic authentication as that
/// (name, password); the test's own requests send it.
fn start_orthanc_with(user: Option<(&str, &str)>) -> Server {
    let bin = orthanc_binary();
    let dir = tempfile::tempdir().unwrap();
    let (http, dicom) = (free_port(), free_port());
    let db = dir.path().join("db");
    let config = dir.path().join("orthanc.json");
    let json = serde_json::json!({
        "Name": "umbra-test",
        "StorageDirectory": db,
        "IndexDirectory": db,
        "HttpPort": http,
        "DicomPort": dicom,
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": user.is_some(),
        "RegisteredUsers": user.map(|(u, p)| serde_json::json!({ u: p })).unwrap_or(serde_json::json!({})),
    });
    fs::write(&config, json.to_string()).unwrap();
    let child = Command::new(&bin)
        .arg(format!(
            "--logfile={}",
            dir.path().join("orthanc.log").display()
        ))
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{http}"),
        auth: user.map(|(u, p)| {
            use base64::Engine as _;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        }),
        _dir: dir,
    };
    let start = Instant::now();
    loop {
        if server.get("/system").call().is_ok() {
            return server;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Orthanc did not answer on {} (see its log)",
            server.base
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Server {
    fn get(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let r = agent().get(&format!("{}{path}", self.base));
        match &self.auth {
            Some(a) => r.header("Authorization", a),
            None => r,
        }
    }

    fn upload(&self, file: &Path) {
        let bytes = fs::read(file).unwrap();
        let r = agent().post(&format!("{}/instances", self.base));
        let r = match &self.auth {
            Some(a) => r.header("Authorization", a),
            None => r,
        };
        r.send(&bytes[..]).unwrap();
    }

    fn ids(&self) -> Vec<String> {
        let text = self
            .get("/instances")
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn file_hashes(&self) -> BTreeSet<String> {
        self.ids()
            .iter()
            .map(|id| {
                let mut r = self.get(&format!("/instances/{id}/file")).call().unwrap();
                let bytes = r
                    .body_mut()
                    .with_config()
                    .limit(1 << 30)
                    .read_to_vec()
                    .unwrap();
                sha256_hex(&bytes)
            })
            .collect()
    }

    fn delete_all(&self) {
        for id in self.ids() {
            agent()
                .delete(&format!("{}/instances/{id}", self.base))
                .call()
                .unwrap();
        }
    }
}

fn um(arc: &Path, args: &[&str]) -> Output {
    umbra_at(arc, args, &[])
}

fn hashes_of(files: &[PathBuf]) -> BTreeSet<String> {
    files
        .iter()
        .map(|f| sha256_hex(&fs::read(f).unwrap()))
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn orthanc_source_migrate_restore_and_push_back() {
    let server = start_orthanc();
    let seeds: Vec<PathBuf> = ["CT_small", "MR_small", "rtplan", "JPEG-LL"]
        .iter()
        .map(|n| repo_file(&format!("datasets/dicom/{n}.dcm")))
        .collect();
    for s in &seeds {
        server.upload(s);
    }
    let dir = tempfile::tempdir().unwrap();
    let arc = dir.path().join("arc");
    init_archive(&arc, 2, 3, None);
    let source = format!("orthanc+{}", server.base);

    // The first run lists everything and keeps the change cursor.
    let r = json(&um(&arc, &["migrate", "--source", &source, "--json"]));
    assert_eq!(
        (r["written"].as_u64(), r["full_scan"].as_bool()),
        (Some(4), Some(true))
    );
    // Later runs follow /changes: nothing new, nothing asked for.
    let r = json(&um(&arc, &["migrate", "--source", &source, "--json"]));
    assert_eq!(
        (
            r["scanned"].as_u64(),
            r["written"].as_u64(),
            r["full_scan"].as_bool()
        ),
        (Some(0), Some(0), Some(false))
    );
    assert!(
        files_under(&arc.join("source-cache")).is_empty(),
        "downloads are dropped once written"
    );

    // A new instance arrives: only it is migrated.
    let us = repo_file("datasets/dicom/US1_UNCR.dcm");
    server.upload(&us);
    let r = json(&um(&arc, &["migrate", "--source", &source, "--json"]));
    assert_eq!(
        (r["scanned"].as_u64(), r["written"].as_u64()),
        (Some(1), Some(1))
    );
    let r = json(&um(
        &arc,
        &["migrate", "--source", &source, "--full-scan", "--json"],
    ));
    assert_eq!(
        (
            r["scanned"].as_u64(),
            r["unchanged"].as_u64(),
            r["gone_from_source"].as_u64()
        ),
        (Some(5), Some(5), Some(0))
    );
    let mut all = seeds.clone();
    all.push(us);

    let out = dir.path().join("out");
    let o = um(&arc, &["restore", "--all", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(hashes_of(&files_under(&out)), hashes_of(&all));

    // The PACS loses everything; restore pushes it back byte for byte.
    server.delete_all();
    assert!(server.ids().is_empty());
    let r = json(&um(
        &arc,
        &["migrate", "--source", &source, "--full-scan", "--json"],
    ));
    assert_eq!(r["gone_from_source"], 5, "deletions noticed, shares kept");
    let r = json(&um(&arc, &["restore", "--all", "--to", &source, "--json"]));
    assert_eq!(r["pushed"], 5);
    assert_eq!(server.file_hashes(), hashes_of(&all));

    // An unreachable PACS fails the run.
    drop(server);
    let o = um(&arc, &["migrate", "--source", &source]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("Orthanc at http://127.0.0.1"),
        "{}",
        stderr(&o)
    );
}

/// CT_small.dcm with today's StudyDate and its own SOP Instance UID (the
/// same length, so every offset stays): a study too new to leave yet.
fn recent_ct(dir: &Path) -> PathBuf {
    let mut bytes = fs::read(repo_file("datasets/dicom/CT_small.dcm")).unwrap();
    let date = bytes
        .windows(8)
        .position(|w| w == b"\x08\x00\x20\x00DA\x08\x00")
        .expect("StudyDate")
        + 8;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = chrono::DateTime::from_timestamp(now, 0)
        .unwrap()
        .format("%Y%m%d")
        .to_string();
    bytes[date..date + 8].copy_from_slice(today.as_bytes());
    let uid = bytes
        .windows(6)
        .position(|w| w == b"\x08\x00\x18\x00UI")
        .expect("SOPInstanceUID")
        + 8;
    let end = uid + bytes[uid..].iter().position(|&b| b == 0).unwrap() - 1;
    bytes[end] = if bytes[end] == b'9' { b'8' } else { b'9' };
    let path = dir.join("recent_ct.dcm");
    fs::write(&path, bytes).unwrap();
    path
}

/// The documented nightly patterns with a selection: an instance left out
/// (too new, or another modality) is seen again by every later run, from
/// its tags and without a download, until it qualifies and is archived;
/// the change cursor moving past it loses nothing.
#[test]
fn instances_left_out_by_the_selection_are_archived_when_they_qualify() {
    let server = start_orthanc();
    for n in ["CT_small", "MR_small"] {
        server.upload(&repo_file(&format!("datasets/dicom/{n}.dcm")));
    }
    let dir = tempfile::tempdir().unwrap();
    let arc = dir.path().join("arc");
    init_archive(&arc, 2, 3, None);
    let source = format!("orthanc+{}", server.base);
    let migrate = |extra: &[&str]| {
        let mut args = vec!["migrate", "--source", &source, "--json"];
        args.extend_from_slice(extra);
        json(&um(&arc, &args))
    };
    let counts = |r: &serde_json::Value| (r["written"].as_u64(), r["not_selected"].as_u64());

    // --modality CT: the MR is left out; the next plain run takes it,
    // though the cursor moved past it.
    assert_eq!(counts(&migrate(&["--modality", "CT"])), (Some(1), Some(1)));
    assert!(
        files_under(&arc.join("source-cache")).is_empty(),
        "nothing kept"
    );
    assert_eq!(counts(&migrate(&[])), (Some(1), Some(0)));
    assert_eq!(counts(&migrate(&[])), (Some(0), Some(0)));

    // A study of today under --older-than 30d: left out night after night,
    // never downloaded for that, archived the night it qualifies.
    server.upload(&recent_ct(dir.path()));
    for _ in 0..2 {
        assert_eq!(
            counts(&migrate(&["--older-than", "30d"])),
            (Some(0), Some(1))
        );
        assert!(files_under(&arc.join("source-cache")).is_empty());
    }
    assert_eq!(
        counts(&migrate(&["--older-than", "0d"])),
        (Some(1), Some(0))
    );
    assert_eq!(
        counts(&migrate(&["--older-than", "30d"])),
        (Some(0), Some(0))
    );
    let out = dir.path().join("out");
    let o = um(&arc, &["restore", "--all", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(hashes_of(&files_under(&out)), server.file_hashes());
}

/// An Orthanc that asks for a password: taken from the environment or a
/// 0600 file umbra.toml names (or, with a warning, the URL), and never
/// written anywhere umbra writes: catalog, audit log, messages.
#[test]
fn credentials_come_from_the_environment_or_a_private_file_and_are_never_stored() {
    let server = start_orthanc_with(Some(("alice", "s3cret-pw")));
    server.upload(&repo_file("datasets/dicom/CT_small.dcm"));
    let dir = tempfile::tempdir().unwrap();
    let arc = dir.path().join("arc");
    init_archive(&arc, 2, 3, None);
    let source = format!("orthanc+{}", server.base);
    let migrate = |env: &[(&str, &dyn AsRef<std::ffi::OsStr>)], src: &str| {
        umbra_at(
            &arc,
            &["migrate", "--source", src, "--full-scan", "--json"],
            env,
        )
    };
    let o = migrate(&[], &source);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("HTTP 401") && stderr(&o).contains("UMBRA_ORTHANC_USER"),
        "{}",
        stderr(&o)
    );

    let o = migrate(
        &[
            ("UMBRA_ORTHANC_USER", &"alice"),
            ("UMBRA_ORTHANC_PASSWORD", &"s3cret-pw"),
        ],
        &source,
    );
    assert_eq!(json(&o)["written"], 1);

    let in_url = source.replace("http://", "http://alice:s3cret-pw@");
    let o = migrate(&[], &in_url);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("visible to other users"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("s3cret"), "{}", stderr(&o));

    // A credentials file: refused while others can read it.
    let creds = arc.join("orthanc.secret");
    fs::write(&creds, "alice:s3cret-pw\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&creds, fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = arc.join("umbra.toml");
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(
        &cfg,
        format!("orthanc_credentials = \"orthanc.secret\"\n{text}"),
    )
    .unwrap();
    let o = migrate(&[], &source);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    fs::set_permissions(&creds, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(migrate(&[], &source).status.success());

    for file in ["catalog.sqlite", "audit.log", "umbra.toml"] {
        let bytes = fs::read(arc.join(file)).unwrap();
        assert!(
            !bytes.windows(9).any(|w| w == b"s3cret-pw"),
            "{file} holds the password"
        );
    }
}

/// restore --to: an Orthanc that is down stops it before anything is
/// restored; only DICOM is pushed (the rest is named, and kept with -o);
/// a refused push quotes Orthanc's answer.
#[test]
fn restore_to_orthanc_checks_first_and_pushes_dicom_only() {
    let dir = tempfile::tempdir().unwrap();
    let src = dicom_source(&dir.path().join("src"), &["CT_small.dcm", "MR_small.dcm"]);
    fs::write(src.join("notes.txt"), b"not DICOM").unwrap();
    let mut bad = vec![0u8; 128];
    bad.extend_from_slice(b"DICM");
    bad.extend_from_slice(&pseudo_random(300, 9));
    fs::write(src.join("garbage.dcm"), bad).unwrap();
    let arc = dir.path().join("arc");
    init_archive(&arc, 2, 3, None);
    assert!(
        um(&arc, &["migrate", "--source", src.to_str().unwrap()])
            .status
            .success()
    );

    let gone = format!("orthanc+http://127.0.0.1:{}", free_port());
    let out = dir.path().join("out-down");
    let o = um(
        &arc,
        &[
            "restore",
            "--all",
            "--to",
            &gone,
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("GET /system"), "{}", stderr(&o));
    assert!(
        !out.exists() || files_under(&out).is_empty(),
        "nothing restored"
    );

    let server = start_orthanc();
    let to = format!("orthanc+{}", server.base);
    let out = dir.path().join("out");
    let o = um(
        &arc,
        &[
            "restore",
            "--all",
            "--to",
            &to,
            "-o",
            out.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "the garbage file is refused: {}",
        stderr(&o)
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["pushed"], 2, "{r}");
    assert_eq!(r["not_pushed"].as_array().unwrap().len(), 1, "{r}");
    assert!(
        stderr(&o).contains("not DICOM, not pushed to Orthanc"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("Orthanc says"), "{}", stderr(&o));
    assert_eq!(server.ids().len(), 2);
}
