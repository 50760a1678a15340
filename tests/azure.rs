//! Azure Blob stores (feature `azure`) held to the store contract
//! (tests/common/store_contract.rs) against Azurite, Microsoft's own
//! Azure Storage emulator, on a free loopback port: `npm install -g
//! azurite@3.37.0`, found as $UMBRA_AZURITE or `azurite-blob` on PATH.
//! Without it the test FAILS with that install hint; it never skips. Run
//! with `cargo test --features azure --test azure`.

mod common;

#[cfg(not(feature = "azure"))]
#[test]
fn az_urls_need_the_azure_feature() {
    common::assert_needs_feature("az://container/prefix", "azure");
}

#[cfg(feature = "azure")]
mod with_server {
    use super::common;

    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Output, Stdio};
    use std::time::{Duration, Instant};

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use hmac::{Hmac, Mac};
    use umbra::archive::store::{self, Store};

    use common::store_contract::{self, Server, Subject};
    use common::*;

    /// Azurite's published development account and key (the same for every
    /// Azurite; not a secret).
    const ACCOUNT: &str = "devstoreaccount1";
    const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    const CONTAINER: &str = "umbra";

    fn azurite_binary() -> PathBuf {
        find_tool(
            "UMBRA_AZURITE",
            "azurite-blob",
            &[],
            "`npm install -g azurite@3.37.0`",
        )
    }

    struct Azurite {
        child: Option<Child>,
        port: u16,
        location: PathBuf,
    }

    impl Azurite {
        fn start(location: &Path, port: u16) -> Self {
            fs::create_dir_all(location).unwrap();
            let child = Command::new(azurite_binary())
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .arg("--location")
                .arg(location)
                .args(["--silent", "--disableTelemetry"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("azurite-blob starts");
            wait_listening(port, "Azurite", Duration::from_secs(30));
            Self {
                child: Some(child),
                port,
                location: location.to_path_buf(),
            }
        }

        /// The account's blob service URL, path style as Azurite serves it.
        fn endpoint(&self) -> String {
            format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
        }

        /// SIGTERM, so Azurite saves its metadata for a restart on the same
        /// location (a SIGKILL could lose the last blobs' records).
        fn stop(&mut self) {
            if let Some(mut child) = self.child.take() {
                let _ = Command::new("kill").arg(child.id().to_string()).status();
                let start = Instant::now();
                while child.try_wait().ok().flatten().is_none() {
                    if start.elapsed() > Duration::from_secs(10) {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }

        /// Creates a container with a Shared Key signed request
        /// (object_store has no call for it).
        fn create_container(&self, name: &str) {
            let version = "2021-08-06";
            let date = chrono::Utc::now()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string();
            let path = format!("/{ACCOUNT}/{name}");
            // Verb, 11 empty standard headers, the x-ms- headers, the resource.
            let to_sign = format!(
                "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
                 /{ACCOUNT}{path}\nrestype:container"
            );
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&BASE64.decode(KEY).unwrap())
                .expect("any key length");
            mac.update(to_sign.as_bytes());
            let signature = BASE64.encode(mac.finalize().into_bytes());
            let url = format!("http://127.0.0.1:{}{path}?restype=container", self.port);
            ureq::put(&url)
                .header("x-ms-date", &date)
                .header("x-ms-version", version)
                .header("Authorization", &format!("SharedKey {ACCOUNT}:{signature}"))
                .send_empty()
                .unwrap_or_else(|e| panic!("creating container {name}: {e}"));
        }
    }

    impl Drop for Azurite {
        fn drop(&mut self) {
            self.stop();
        }
    }

    fn um(arc: &Path, args: &[&str]) -> Output {
        um_env(arc, args, &[])
    }

    fn um_env(arc: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut vars: Vec<(&str, &dyn AsRef<std::ffi::OsStr>)> = vec![
            ("AZURE_STORAGE_ACCOUNT_NAME", &ACCOUNT),
            ("AZURE_STORAGE_ACCOUNT_KEY", &KEY),
        ];
        vars.extend(
            env.iter()
                .map(|(k, v)| (*k, v as &dyn AsRef<std::ffi::OsStr>)),
        );
        let mut c = umbra_at_cmd(arc, args, &[]);
        // The emulator flag of this process must not reach umbra unless asked.
        c.env_remove("AZURE_STORAGE_USE_EMULATOR");
        for (k, v) in vars {
            c.env(k, v.as_ref());
        }
        c.output().unwrap()
    }

    fn open(label: &str, url: &str, endpoint: Option<&str>) -> Box<dyn Store> {
        store::open(label, url, endpoint, None, Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
    }

    impl Server for Azurite {
        fn store_config(&self, k: usize) -> String {
            format!(
                "url = \"az://{CONTAINER}/store-{k}\"\nendpoint = \"{}\"",
                self.endpoint()
            )
        }

        fn open(&self, k: usize) -> Box<dyn Store> {
            open(
                &format!("store-{k}"),
                &format!("az://{CONTAINER}/store-{k}"),
                Some(&self.endpoint()),
            )
        }

        fn umbra(&self, arc: &Path, args: &[&str]) -> Output {
            um(arc, args)
        }

        fn stop(&mut self) {
            Azurite::stop(self);
        }

        fn restart(&mut self) {
            *self = Azurite::start(&self.location.clone(), self.port);
        }
    }

    /// One test function: it sets the process environment, which must not
    /// race with another test thread.
    #[test]
    fn azure_stores() {
        // SAFETY: the only test in this binary, so no other thread reads the
        // environment meanwhile; Azurite's public development account only.
        unsafe {
            std::env::set_var("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT);
            std::env::set_var("AZURE_STORAGE_ACCOUNT_KEY", KEY);
            std::env::remove_var("AZURE_STORAGE_USE_EMULATOR");
        }
        let dir = tempfile::tempdir().unwrap();
        let server = Azurite::start(&dir.path().join("azurite"), free_port());
        server.create_container(CONTAINER);
        let endpoint = server.endpoint();
        let at = |prefix: &str| open("az", &format!("az://{CONTAINER}/{prefix}"), Some(&endpoint));
        store_contract::contract(
            &Subject {
                open: &at,
                seed: None,
                missing: Some(open("gone", "az://no-such-container/p", Some(&endpoint))),
            },
            dir.path(),
        );
        emulator_mode(&server, dir.path());
        drop(server);

        let dir = tempfile::tempdir().unwrap();
        let mut server = Azurite::start(&dir.path().join("azurite"), free_port());
        server.create_container(CONTAINER);
        store_contract::outage(&mut server, dir.path());
        store_contract::lifecycle(&mut server, dir.path());
        // An endpoint with the emulator flag set is refused, naming the store.
        let arc = dir.path().join("arc");
        let o = um_env(&arc, &["verify"], &[("AZURE_STORAGE_USE_EMULATOR", "true")]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("emulator mode"), "{}", stderr(&o));
    }

    /// `AZURE_STORAGE_USE_EMULATOR=true` with `AZURITE_BLOB_STORAGE_URL`,
    /// and no endpoint in the configuration.
    fn emulator_mode(server: &Azurite, dir: &Path) {
        let url = format!("http://127.0.0.1:{}", server.port);
        // SAFETY: as in azure_stores (one test thread).
        unsafe {
            std::env::remove_var("AZURE_STORAGE_ACCOUNT_NAME");
            std::env::remove_var("AZURE_STORAGE_ACCOUNT_KEY");
            std::env::set_var("AZURE_STORAGE_USE_EMULATOR", "true");
            std::env::set_var("AZURITE_BLOB_STORAGE_URL", &url);
        }
        let store = open("emu", "az://umbra/emulated", None);
        let src = dir.join("emu-src");
        fs::write(&src, b"emulated").unwrap();
        let name = "0f".repeat(32);
        assert!(store.put_if_absent(&name, &src).unwrap());
        assert!(!store.put_if_absent(&name, &src).unwrap());
        let out = dir.join("emu-out");
        assert!(store.get(&name, &out).unwrap());
        assert_eq!(fs::read(&out).unwrap(), b"emulated");
        // An endpoint would be ignored in emulator mode: refused, by name.
        let e = store::open(
            "emu",
            "az://umbra/emulated",
            Some(&server.endpoint()),
            None,
            Path::new("."),
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(
            e.contains("store emu:") && e.contains("emulator mode"),
            "{e}"
        );
        // SAFETY: as above.
        unsafe {
            std::env::remove_var("AZURE_STORAGE_USE_EMULATOR");
            std::env::remove_var("AZURITE_BLOB_STORAGE_URL");
            std::env::set_var("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT);
            std::env::set_var("AZURE_STORAGE_ACCOUNT_KEY", KEY);
        }
    }
}
