//! Azure Blob stores (feature `azure`) against Azurite, Microsoft's own
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
        let (words, rest) = args.split_at(1);
        let mut c = umbra();
        c.env("UMBRA_BACKEND", "cpu")
            .env("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT)
            .env("AZURE_STORAGE_ACCOUNT_KEY", KEY)
            .env_remove("AZURE_STORAGE_USE_EMULATOR")
            .env_remove("UMBRA_ARCHIVE");
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(words)
            .arg("-C")
            .arg(arc)
            .args(rest)
            .output()
            .unwrap()
    }

    fn open(label: &str, url: &str, endpoint: Option<&str>) -> Box<dyn Store> {
        store::open(label, url, endpoint, None, Path::new(".")).unwrap_or_else(|e| panic!("{e}"))
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
        azure_store_is_create_only(&server, dir.path());
        emulator_mode(&server, dir.path());
        drop(server);
        migrate_restore_and_repair_through_azure_with_an_outage();
    }

    fn azure_store_is_create_only(server: &Azurite, dir: &Path) {
        let store = open("az", "az://umbra/unit", Some(&server.endpoint()));
        let src = dir.join("src");
        fs::write(&src, b"first").unwrap();
        let name = "cd".repeat(32);
        assert!(store.put_if_absent(&name, &src).unwrap());
        // Azurite must refuse the second put (If-None-Match: *), not
        // overwrite: the content stays the first one.
        fs::write(&src, b"second").unwrap();
        assert!(!store.put_if_absent(&name, &src).unwrap(), "create-only");
        let out = dir.join("out");
        assert!(store.get(&name, &out).unwrap());
        assert_eq!(fs::read(&out).unwrap(), b"first");
        // Only this prefix's objects are listed.
        let beside = open("az", "az://umbra/unit-2", Some(&server.endpoint()));
        assert!(beside.put_if_absent(&"ef".repeat(32), &src).unwrap());
        assert_eq!(store.list().unwrap(), vec![name.clone()]);
        assert!(store.delete(&name).unwrap());
        assert!(!store.delete(&name).unwrap());
        assert!(!store.get(&name, &dir.join("out2")).unwrap());
        assert!(store.list().unwrap().is_empty());
        assert_eq!(beside.list().unwrap(), vec!["ef".repeat(32)]);
        // A missing container is an error, not an empty store.
        let gone = open("gone", "az://no-such-container/p", Some(&server.endpoint()));
        assert!(gone.put_if_absent(&name, &src).is_err());
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

    fn migrate_restore_and_repair_through_azure_with_an_outage() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let location = dir.path().join("azurite");
        let mut server = Azurite::start(&location, port);
        server.create_container(CONTAINER);
        let endpoint = server.endpoint();
        let arc = dir.path().join("arc");
        let o = umbra()
            .args(["init", "-t", "2", "-n", "3"])
            .arg(&arc)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        // Stores 2 and 3 become Azure prefixes.
        let cfg_path = arc.join("umbra.toml");
        let mut cfg = fs::read_to_string(&cfg_path).unwrap();
        for k in [2, 3] {
            cfg = cfg.replace(
                &format!("url = \"stores/store-{k}\""),
                &format!("url = \"az://{CONTAINER}/store-{k}\"\nendpoint = \"{endpoint}\""),
            );
        }
        fs::write(&cfg_path, cfg).unwrap();
        let azure = |k: usize| {
            open(
                &format!("store-{k}"),
                &format!("az://{CONTAINER}/store-{k}"),
                Some(&endpoint),
            )
        };
        let objects = |k: usize| azure(k).list().unwrap().len();

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
        assert_eq!((objects(2), objects(3)), (3, 3));

        // Azurite goes down: the new object stays pending, its failure names
        // the store.
        server.stop();
        fs::write(src.join("late.txt"), pseudo_random(5000, 1)).unwrap();
        let o = um(&arc, &["migrate", "--source", source]);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(
            err.contains("store store-2") || err.contains("store store-3"),
            "{err}"
        );
        // Back up, on the same port and data: the next run completes it.
        let server = Azurite::start(&location, port);
        let r = json(&um(&arc, &["migrate", "--source", source, "--json"]));
        assert_eq!(r["written"], 1);
        assert_eq!((objects(2), objects(3)), (4, 4), "no leftovers");
        let o = um(&arc, &["verify", "--deep"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

        // A share lost in Azure: verify names it, archive-repair puts it
        // back (delete, then create-only put).
        let lost = azure(3).list().unwrap()[0].clone();
        assert!(azure(3).delete(&lost).unwrap());
        let o = um(&arc, &["verify"]);
        assert!(!o.status.success(), "a missing share must fail verify");
        let o = um(&arc, &["archive-repair"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(objects(3), 4);
        let o = um(&arc, &["verify", "--deep"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

        // The local store is lost: restore from the two Azure stores alone.
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

        // An endpoint with the emulator flag set is refused, naming the store.
        let o = um_env(&arc, &["verify"], &[("AZURE_STORAGE_USE_EMULATOR", "true")]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("emulator mode"), "{}", stderr(&o));
        drop(server);
    }
}
