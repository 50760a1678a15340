//! S3 stores (feature `aws`) held to the store contract
//! (tests/common/store_contract.rs) against a real S3 server on loopback:
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

    use common::store_contract::{self, Server, Subject};
    use common::*;
    use umbra::archive::store::{self, Store};

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
    }

    impl Drop for S3Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
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

    fn open(endpoint: &str, label: &str, url: &str) -> Box<dyn Store> {
        store::open(
            label,
            url,
            Some(endpoint),
            Some("us-east-1"),
            Path::new("."),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    impl Server for S3Server {
        fn store_config(&self, k: usize) -> String {
            format!(
                "url = \"s3://bucket/store-{k}\"\nendpoint = \"{}\"\nregion = \"us-east-1\"",
                self.endpoint()
            )
        }

        fn open(&self, k: usize) -> Box<dyn Store> {
            open(
                &self.endpoint(),
                &format!("store-{k}"),
                &format!("s3://bucket/store-{k}"),
            )
        }

        fn umbra(&self, arc: &Path, args: &[&str]) -> Output {
            um(arc, args)
        }

        fn stop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }

        fn restart(&mut self) {
            *self = S3Server::start(&self.root.clone(), self.port);
        }
    }

    /// One test function: it sets the process environment, which must not
    /// race with another test thread.
    #[test]
    fn s3_stores() {
        // SAFETY: the only test in this binary, so no other thread reads the
        // environment meanwhile; credentials of the loopback server only.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
        }
        let dir = tempfile::tempdir().unwrap();
        let server = S3Server::start(&dir.path().join("s3"), free_port());
        let endpoint = server.endpoint();
        let at = |prefix: &str| open(&endpoint, "s3", &format!("s3://bucket/{prefix}"));
        store_contract::contract(
            &Subject {
                open: &at,
                seed: None,
                // s3s-fs accepts a put into a bucket that was never created
                // (real S3 answers NoSuchBucket), so that check is not made here.
                missing: None,
            },
            dir.path(),
        );
        drop(server);

        let dir = tempfile::tempdir().unwrap();
        let mut server = S3Server::start(&dir.path().join("s3"), free_port());
        store_contract::outage(&mut server, dir.path());
        store_contract::lifecycle(&mut server, dir.path());
        workers_on_s3(&server, dir.path());
    }

    /// Four `migrate --worker` processes on a PostgreSQL catalog, two of the
    /// three stores on the S3 server: every object written once, each S3
    /// store holding exactly the shares the catalog places there, a restore
    /// byte-identical.
    fn workers_on_s3(server: &S3Server, scratch: &Path) {
        let pg = postgres::Postgres::start();
        let url = pg.database("s3workers");
        let arc = scratch.join("arc-workers");
        let o = umbra()
            .env("UMBRA_CATALOG_PASSWORD", postgres::PASSWORD)
            .args(["init", "-t", "2", "-n", "3", "--catalog", &url])
            .arg(&arc)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let cfg_path = arc.join("umbra.toml");
        let mut cfg = fs::read_to_string(&cfg_path).unwrap();
        for k in [2, 3] {
            cfg = cfg.replace(
                &format!("url = \"stores/store-{k}\""),
                &server.store_config(20 + k),
            );
        }
        fs::write(&cfg_path, &cfg).unwrap();
        let src = scratch.join("src-workers");
        fs::create_dir_all(&src).unwrap();
        for i in 0..24 {
            fs::write(
                src.join(format!("{i:02}.bin")),
                pseudo_random(3000 + i * 101, i as u64),
            )
            .unwrap();
        }
        let env: [(&str, &dyn AsRef<std::ffi::OsStr>); 1] =
            [("UMBRA_CATALOG_PASSWORD", &postgres::PASSWORD)];
        let workers: Vec<Child> = (0..4)
            .map(|i| {
                let mut c = umbra_at_cmd(
                    &arc,
                    &[
                        "migrate",
                        "--source",
                        src.to_str().unwrap(),
                        "--worker",
                        "--run-id",
                        "s3-night",
                        "--group",
                        "2",
                        "--json",
                    ],
                    &env,
                );
                c.env("JOB_COMPLETION_INDEX", i.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                c.spawn().unwrap()
            })
            .collect();
        let mut written = 0;
        for w in workers {
            let o = w.wait_with_output().unwrap();
            assert!(o.status.success(), "worker: {}", stderr(&o));
            written += json(&o)["written"].as_u64().unwrap();
        }
        assert_eq!(written, 24);
        let mut c = pg.client("s3workers");
        for k in [2, 3] {
            let mut listed = server.open(20 + k).list().unwrap();
            listed.sort();
            let placed: Vec<String> = c
                .query(
                    "SELECT name FROM placements WHERE store = $1 ORDER BY name",
                    &[&format!("store-{k}")],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(listed.len(), 24, "store-{k}");
            assert_eq!(
                listed, placed,
                "store-{k} holds exactly the catalog's shares"
            );
        }
        let out = scratch.join("out-workers");
        let o = umbra_at(
            &arc,
            &["restore", "--all", "-o", out.to_str().unwrap()],
            &env,
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(
            tree_hashes(&out),
            tree_hashes(&src),
            "restored bytes differ"
        );
    }
}
