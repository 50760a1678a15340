//! S3 stores (feature `aws`) against a real S3 server on loopback:
//! s3s-fs (`cargo install s3s-fs@0.14.1 --features binary --locked`), found
//! as $UMBRA_S3S_FS, ~/.cargo/bin/s3s-fs or `s3s-fs` on PATH. Without it the
//! test FAILS with that install hint; it never skips. Run with
//! `cargo test --features aws --test s3`.

mod common;

#[cfg(not(feature = "aws"))]
#[test]
fn s3_urls_need_the_aws_feature() {
    common::assert_needs_feature("s3://bucket/prefix", "aws");
}

#[cfg(feature = "aws")]
mod with_server {
    use super::common;

    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Output, Stdio};
    use std::time::Duration;

    use common::*;

    const ACCESS: &str = "umbra-test-access";
    const SECRET: &str = "umbra-test-secret-key";

    fn s3s_binary() -> PathBuf {
        let home: Vec<PathBuf> = std::env::var("HOME")
            .map(|h| Path::new(&h).join(".cargo/bin/s3s-fs"))
            .into_iter()
            .collect();
        find_tool(
            "UMBRA_S3S_FS",
            "s3s-fs",
            &home,
            "`cargo install s3s-fs@0.14.1 --features binary --locked`",
        )
    }

    struct S3Server {
        child: Child,
        port: u16,
        root: PathBuf,
    }

    impl S3Server {
        fn start(root: &Path, port: u16) -> Self {
            fs::create_dir_all(root.join("bucket")).unwrap();
            let child = Command::new(s3s_binary())
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS, "--secret-key", SECRET])
                .arg(root)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("s3s-fs starts");
            wait_listening(port, "s3s-fs", Duration::from_secs(20));
            Self {
                child,
                port,
                root: root.to_path_buf(),
            }
        }

        fn endpoint(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        fn stop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Drop for S3Server {
        fn drop(&mut self) {
            self.stop();
        }
    }

    fn um(arc: &Path, args: &[&str]) -> Output {
        umbra_at(
            arc,
            args,
            &[
                ("AWS_ACCESS_KEY_ID", &ACCESS),
                ("AWS_SECRET_ACCESS_KEY", &SECRET),
            ],
        )
    }

    /// One test function: it sets the process environment, which must not
    /// race with another test thread.
    #[test]
    fn s3_stores() {
        s3_store_is_create_only();
        migrate_and_restore_through_s3_with_an_outage();
    }

    fn s3_store_is_create_only() {
        let dir = tempfile::tempdir().unwrap();
        let server = S3Server::start(&dir.path().join("s3"), free_port());
        // SAFETY: the only test in this binary, so no other thread reads the
        // environment meanwhile; credentials of the loopback server only.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
        }
        let store = umbra::archive::store::open(
            "s3",
            "s3://bucket/unit",
            Some(&server.endpoint()),
            Some("us-east-1"),
            dir.path(),
        )
        .unwrap();
        let src = dir.path().join("src");
        fs::write(&src, b"first").unwrap();
        let name = "cd".repeat(32);
        assert!(store.put_if_absent(&name, &src).unwrap());
        fs::write(&src, b"second").unwrap();
        assert!(!store.put_if_absent(&name, &src).unwrap(), "create-only");
        let out = dir.path().join("out");
        assert!(store.get(&name, &out).unwrap());
        assert_eq!(fs::read(&out).unwrap(), b"first");
        assert_eq!(store.list().unwrap(), vec![name.clone()]);
        assert!(store.delete(&name).unwrap());
        assert!(!store.delete(&name).unwrap());
        assert!(!store.get(&name, &out).unwrap());
    }

    fn migrate_and_restore_through_s3_with_an_outage() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut server = S3Server::start(&dir.path().join("s3"), port);
        let arc = dir.path().join("arc");
        let o = umbra()
            .args(["init", "-t", "2", "-n", "3"])
            .arg(&arc)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        // Stores 2 and 3 become S3 prefixes.
        let cfg_path = arc.join("umbra.toml");
        let mut cfg = fs::read_to_string(&cfg_path).unwrap();
        for k in [2, 3] {
            cfg = cfg.replace(
                &format!("url = \"stores/store-{k}\""),
                &format!(
                    "url = \"s3://bucket/store-{k}\"\nendpoint = \"{}\"\nregion = \"us-east-1\"",
                    server.endpoint()
                ),
            );
        }
        fs::write(&cfg_path, cfg).unwrap();

        let src = dir.path().join("src");
        fs::create_dir_all(&src).unwrap();
        for f in ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm"] {
            fs::copy(repo_file(&format!("datasets/dicom/{f}")), src.join(f)).unwrap();
        }
        let source = src.to_str().unwrap();
        let r = json(&um(&arc, &["migrate", "--source", source, "--json"]));
        assert_eq!(r["written"], 3);
        let r = json(&um(&arc, &["migrate", "--source", source, "--json"]));
        assert_eq!(r["written"], 0);
        let s3_root = server.root.clone();
        let objects = |k: usize| {
            fs::read_dir(s3_root.join("bucket").join(format!("store-{k}")))
                .map(|d| d.count())
                .unwrap_or(0)
        };
        assert_eq!((objects(2), objects(3)), (3, 3));

        // The S3 server goes down: the new object stays pending.
        server.stop();
        fs::write(src.join("late.txt"), pseudo_random(5000, 1)).unwrap();
        let o = um(&arc, &["migrate", "--source", source]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("store store-2") || stderr(&o).contains("store store-3"));
        // Back up, on the same port and data: the next run completes it.
        let server = S3Server::start(&s3_root, port);
        let r = json(&um(&arc, &["migrate", "--source", source, "--json"]));
        assert_eq!(r["written"], 1);
        assert_eq!((objects(2), objects(3)), (4, 4), "no leftovers");
        let o = um(&arc, &["verify", "--deep"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

        // The local store is lost: restore from the two S3 stores alone.
        fs::remove_dir_all(arc.join("stores/store-1")).unwrap();
        let out = dir.path().join("out");
        let o = um(&arc, &["restore", "--all", "-o", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(tree_hashes(&out), tree_hashes(&src));
        let out2 = dir.path().join("out2");
        let o = um(
            &arc,
            &[
                "restore",
                "--all",
                "--without-catalog",
                "-o",
                out2.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(tree_hashes(&out2), tree_hashes(&src));
        drop(server);
    }
}
