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
        pg.start_server();
        pg
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
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
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
        let mut c = self.client("postgres");
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
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
