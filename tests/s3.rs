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
    }
}
