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
        "AuthenticationEnabled": false,
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
        _dir: dir,
    };
    let start = Instant::now();
    loop {
        if agent()
            .get(&format!("{}/system", server.base))
            .call()
            .is_ok()
        {
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
    fn upload(&self, file: &Path) {
        let bytes = fs::read(file).unwrap();
        agent()
            .post(&format!("{}/instances", self.base))
            .send(&bytes[..])
            .unwrap();
    }

    fn ids(&self) -> Vec<String> {
        let text = agent()
            .get(&format!("{}/instances", self.base))
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
                let mut r = agent()
                    .get(&format!("{}/instances/{id}/file", self.base))
                    .call()
                    .unwrap();
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
