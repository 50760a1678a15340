//! A real PostgreSQL server for the tests: `initdb` into a temporary
//! directory, `pg_ctl start` on a free loopback port with password
//! authentication (SCRAM), torn down when dropped. Debian's `postgresql`
//! package provides the binaries (/usr/lib/postgresql/VERSION/bin, or
//! $UMBRA_PG_BIN); missing, the test fails with how to install them.
//! PostgreSQL refuses to run as root: as root, the server runs as the
//! `postgres` user the package creates.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The password of the `umbra` role the server is made with.
pub const PASSWORD: &str = "umbra-test-pw";

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
    /// With [`Postgres::start_tls`]: the server takes TLS connections only.
    tls: bool,
}

fn bin_dir() -> PathBuf {
    if let Ok(p) = std::env::var("UMBRA_PG_BIN") {
        return PathBuf::from(p);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").is_file());
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             apt-get install postgresql, or point UMBRA_PG_BIN at its bin directory"
        )
    })
}

impl Postgres {
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A server that accepts only TLS connections (pg_hba `hostssl`), its
    /// certificate for 127.0.0.1 signed by a test CA ([`Postgres::ca`]),
    /// made here with openssl.
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    /// The test CA's certificate (PEM) of [`Postgres::start_tls`].
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn start_with(tls: bool) -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("umbra-pg-")
            .tempdir()
            .unwrap();
        let as_postgres = rustix::process::geteuid().is_root();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, PASSWORD).unwrap();
        if as_postgres {
            let o = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "chown: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let port = super::free_port();
        let mut pg = Self {
            dir,
            bin,
            port,
            as_postgres,
            tls,
        };
        let data = pg.data();
        let o = pg
            .tool("initdb")
            .args([
                "-U",
                "umbra",
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pw.display()))
            .arg("-D")
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        if tls {
            pg.make_certificates();
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
            )
            .unwrap();
            pg.give_to_server(&[data.join("pg_hba.conf")]);
        }
        pg.start_server();
        pg
    }

    /// A CA and a server certificate for 127.0.0.1, as openssl makes them.
    fn make_certificates(&self) {
        let d = self.dir.path();
        let run = |args: &[&str]| {
            let o = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=umbra test CA",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(d.join("ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext",
        ]);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("server.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        self.give_to_server(&[d.join("server.key"), d.join("server.crt")]);
    }

    /// Files the server must own (it runs as postgres when we are root).
    fn give_to_server(&self, files: &[PathBuf]) {
        if self.as_postgres {
            let o = Command::new("chown")
                .arg("postgres:postgres")
                .args(files)
                .output()
                .unwrap();
            assert!(o.status.success());
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A command of the server's bin directory, as the user that may run it.
    fn tool(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn start_server(&mut self) {
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        if self.tls {
            let d = self.dir.path().display();
            opts.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={d}/server.crt -c ssl_key_file={d}/server.key"
            ));
        }
        let o = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&o.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Stops the server at once (`-m immediate`: as a crash would).
    pub fn kill(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    /// Starts it again after [`Postgres::kill`].
    pub fn restart(&mut self) {
        self.start_server();
    }

    /// A new database `name`, owned by `umbra`; returns its URL (without
    /// the password: umbra reads it from UMBRA_CATALOG_PASSWORD).
    pub fn database(&self, name: &str) -> String {
        if self.tls {
            // The test's own client has no TLS: over the local socket.
            let o = self
                .tool("psql")
                .args(["-h"])
                .arg(self.dir.path())
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "umbra",
                    "-d",
                    "postgres",
                    "-c",
                ])
                .arg(format!("CREATE DATABASE {name}"))
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "psql: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        } else {
            let mut c = self.client("postgres");
            c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        }
        self.url(name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgresql://umbra@127.0.0.1:{}/{db}", self.port)
    }

    /// A client of database `db`, for a test to look inside.
    pub fn client(&self, db: &str) -> postgres::Client {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("umbra")
            .password(PASSWORD)
            .dbname(db)
            .connect(postgres::NoTls)
            .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill();
    }
}
