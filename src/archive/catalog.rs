//! The catalog: SQLite on the hospital side, one row per object version and
//! one per placed share. It holds what must never reach a store (UIDs,
//! patient ID, source paths); the stores hold only keyed names.
//!
//! An object is identified by its source (a folder's absolute path, or an
//! Orthanc's URL without credentials) and its path in that source, both as
//! bytes: file names on Linux need not be UTF-8, and two sources may hold
//! the same relative path.
//!
//! States: `pending` (recorded, shares not all written: the next run redoes
//! it), `degraded` (at least the write quorum of its shares written, some
//! missing: archive-repair and the next migrate complete them), `written`
//! (every share was put), `verified` (a deep verify rebuilt it and matched
//! its BLAKE3).
//!
//! Schema version 2; a version-1 catalog (no sources, text paths) is
//! migrated in place when it is opened, its objects keeping their ids,
//! versions and shares (see [`MIGRATE_V1`]).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::db::{Db, DbError, DbResult, Dialect, Optional, Row, Value, vals};

use super::error::{ArchiveError, Result};
use super::time::now_secs;

/// The schema version this code writes.
pub const SCHEMA_VERSION: i64 = 5;

/// The catalog's tables and indexes, created if missing.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects (
    id          INTEGER PRIMARY KEY,
    source      BLOB NOT NULL,    -- the source's key (absolute folder path, orthanc+URL);
                                  -- empty for versions recorded before sources were
    path        BLOB NOT NULL,    -- the path in the source, '/'-separated bytes
    source_ref  TEXT NOT NULL,    -- the same path for people to read (other bytes as \\xNN)
    version     INTEGER NOT NULL, -- 1, 2, ... per (source, path)
    size        INTEGER NOT NULL,
    blake3      TEXT NOT NULL,    -- hex BLAKE3 of the object's bytes
    change_sig  INTEGER NOT NULL, -- a file's mtime in ns; an Orthanc instance's MD5,
                                  -- first 8 bytes (little-endian); 0: rehash next scan
    ctime_ns    INTEGER NOT NULL DEFAULT 0, -- a file's ctime in ns
    inode       INTEGER NOT NULL DEFAULT 0, -- a file's inode number
    kind        TEXT NOT NULL CHECK (kind IN ('dicom', 'unparsed-dicom', 'file')),
    sop_uid     TEXT,
    study_uid   TEXT,
    series_uid  TEXT,
    study_date  TEXT,             -- DICOM DA, YYYYMMDD
    modality    TEXT,
    patient_id  TEXT,
    split_id    TEXT,             -- hex; set before any share is written
    split_t     INTEGER,          -- t and n of that split (NULL: from before they were
    split_n     INTEGER,          -- recorded)
    split_scheme TEXT,            -- 'shamir' or 'compact' (NULL: Shamir, from before
                                  -- the scheme was recorded)
    share_bytes INTEGER,          -- bytes of each share file of that split (all n are
                                  -- equally long; NULL: from before it was recorded)
    lease_owner TEXT,             -- the worker writing this pending version (migrate
    lease_until INTEGER,          -- --worker) and until when (Unix seconds): after that
                                  -- another worker may take it over
    state       TEXT NOT NULL CHECK (state IN ('pending', 'degraded', 'written', 'verified')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    checked_at  INTEGER,          -- last verify of its shares (Unix seconds)
    created_at  INTEGER NOT NULL, -- Unix seconds
    updated_at  INTEGER NOT NULL,
    UNIQUE (source, path, version)
);
CREATE INDEX IF NOT EXISTS objects_state ON objects (state);
CREATE INDEX IF NOT EXISTS objects_study ON objects (study_uid);
CREATE INDEX IF NOT EXISTS objects_sop ON objects (sop_uid);
CREATE INDEX IF NOT EXISTS objects_patient ON objects (patient_id);
CREATE TABLE IF NOT EXISTS placements (
    object_id   INTEGER NOT NULL REFERENCES objects (id),
    x           INTEGER NOT NULL, -- share number
    store       TEXT NOT NULL,    -- store name from umbra.toml
    name        TEXT NOT NULL,    -- keyed object name in that store
    written     INTEGER NOT NULL DEFAULT 0, -- 1 once the share is in its store
    PRIMARY KEY (object_id, x)
);
CREATE TABLE IF NOT EXISTS meta (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deferred (
    source      BLOB NOT NULL,    -- an Orthanc source's key
    path        BLOB NOT NULL,    -- orthanc/ID: left out by a run's selection, and
                                  -- looked at again by every later run until archived
    since       INTEGER NOT NULL, -- Unix seconds
    PRIMARY KEY (source, path)
);
CREATE TABLE IF NOT EXISTS gone (
    source      BLOB NOT NULL,    -- an archived object's path that a full scan of
    path        BLOB NOT NULL,    -- its source no longer found, and since when
    since       INTEGER NOT NULL, -- (Unix seconds); removed when it is seen again
    PRIMARY KEY (source, path)
);
CREATE TABLE IF NOT EXISTS workers ( -- migrate --worker processes, for status
    id          TEXT PRIMARY KEY, -- the lease owner: INDEX@HOST/PID-RANDOM
    source_ref  TEXT NOT NULL,    -- the source it works on, for people to read
    started_at  INTEGER NOT NULL, -- Unix seconds
    heartbeat_at INTEGER NOT NULL,
    lease       INTEGER NOT NULL, -- its --lease in seconds: silent longer, it is gone
    finished_at INTEGER,          -- NULL while it runs (or if it was killed)
    objects     INTEGER NOT NULL DEFAULT 0, -- versions it wrote
    bytes       INTEGER NOT NULL DEFAULT 0  -- their source bytes
);
CREATE TABLE IF NOT EXISTS tasks ( -- restore/verify/archive-repair --worker: one row per
    run         TEXT NOT NULL,    -- version to do in a run, claimed like migrate's
    kind        TEXT NOT NULL,    -- pending versions ('restore', 'verify', 'repair')
    object_id   INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    done_at     INTEGER,
    PRIMARY KEY (run, kind, object_id)
);
CREATE TABLE IF NOT EXISTS audit ( -- the audit chain of a shared (PostgreSQL) catalog
    chain       TEXT NOT NULL,    -- 'current', or where an earlier chain was set aside
    seq         INTEGER NOT NULL,
    line        TEXT NOT NULL,    -- exactly the line an audit log file would hold
    PRIMARY KEY (chain, seq)
);
CREATE TABLE IF NOT EXISTS deletions ( -- shares owed a delete, and why
    id          INTEGER PRIMARY KEY,
    reason      TEXT NOT NULL,    -- the retention rule, 'erasure', or where a share moved
    source_ref  TEXT,             -- the version they belong to (NULL for an erasure: no
    version     INTEGER,          -- identifying value is kept)
    size        INTEGER,
    at          INTEGER NOT NULL, -- Unix seconds
    pending     TEXT NOT NULL,    -- JSON [[store, name], ...]: shares still to delete
    done_at     INTEGER           -- when the last of them was deleted
);
";

/// Version 1 to 2, in one transaction: objects gain their source (empty:
/// unknown, adopted by the first run whose source holds the same path), a
/// byte path, ctime and inode, and the `degraded` state; placements gain
/// `written` (every placement of a written object was).
pub const MIGRATE_V1: &str = "
CREATE TABLE objects_v2 (
    id INTEGER PRIMARY KEY, source BLOB NOT NULL, path BLOB NOT NULL, source_ref TEXT NOT NULL,
    version INTEGER NOT NULL, size INTEGER NOT NULL, blake3 TEXT NOT NULL,
    change_sig INTEGER NOT NULL, ctime_ns INTEGER NOT NULL DEFAULT 0,
    inode INTEGER NOT NULL DEFAULT 0,
    kind TEXT NOT NULL CHECK (kind IN ('dicom', 'unparsed-dicom', 'file')),
    sop_uid TEXT, study_uid TEXT, series_uid TEXT, study_date TEXT, modality TEXT,
    patient_id TEXT, split_id TEXT, split_t INTEGER, split_n INTEGER,
    state TEXT NOT NULL CHECK (state IN ('pending', 'degraded', 'written', 'verified')),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, checked_at INTEGER,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    UNIQUE (source, path, version)
);
INSERT INTO objects_v2 (id, source, path, source_ref, version, size, blake3, change_sig,
    kind, sop_uid, study_uid, series_uid, study_date, modality, patient_id, split_id, state,
    attempts, last_error, checked_at, created_at, updated_at)
SELECT id, X'', CAST(source_ref AS BLOB), source_ref, version, size, blake3, change_sig,
    kind, sop_uid, study_uid, series_uid, study_date, modality, patient_id, split_id, state,
    attempts, last_error, checked_at, created_at, updated_at FROM objects;
DROP TABLE objects;
ALTER TABLE objects_v2 RENAME TO objects;
ALTER TABLE placements ADD COLUMN written INTEGER NOT NULL DEFAULT 0;
UPDATE placements SET written = 1
    WHERE object_id IN (SELECT id FROM objects WHERE state IN ('written', 'verified'));
";

/// DICOM identity of an object, when its header could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub sop_uid: Option<String>,
    pub study_uid: Option<String>,
    pub series_uid: Option<String>,
    pub study_date: Option<String>,
    pub modality: Option<String>,
    pub patient_id: Option<String>,
}

/// One object version as the catalog records it.
#[derive(Debug, Clone)]
pub struct ObjectRow {
    pub id: i64,
    /// The source's key (empty: recorded before sources were).
    pub source: Vec<u8>,
    /// The path in the source, as bytes.
    pub path: Vec<u8>,
    /// The path for people to read.
    pub source_ref: String,
    pub version: i64,
    pub size: u64,
    /// Hex BLAKE3 of the content; empty for a new file not yet split.
    pub blake3: String,
    pub change_sig: i64,
    pub ctime_ns: i64,
    pub inode: i64,
    pub kind: String,
    pub ids: Identity,
    pub split_id: Option<String>,
    pub state: String,
    pub attempts: i64,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// A split about to reach the stores, as [`Catalog::begin_splits`] records
/// it: the version, its split id, where its shares go (none for a split
/// that failed before they were named), their length once staged, and the
/// BLAKE3 of the content split (recorded where the scan left it empty).
pub struct SplitBegun<'a> {
    pub id: i64,
    pub split_id: String,
    pub placements: &'a [Placement],
    pub share_bytes: Option<u64>,
    pub content: Option<String>,
}

/// Where one share of a version is: its x, its store and its name there.
#[derive(Debug, Clone)]
pub struct Placement {
    pub x: u8,
    pub store: String,
    pub name: String,
    /// The share is in its store.
    pub written: bool,
}

/// A new version to record.
pub struct NewObject<'a> {
    pub source: &'a [u8],
    pub path: &'a [u8],
    pub source_ref: &'a str,
    pub size: u64,
    pub blake3: &'a str,
    pub change_sig: i64,
    pub ctime_ns: i64,
    pub inode: i64,
    pub kind: &'a str,
    pub ids: &'a Identity,
}

/// A stored version for retention: (id, source, path, version, created_at).
pub type StoredVersion = (i64, Vec<u8>, Vec<u8>, i64, i64);

/// A placement with what its name is made of: (object id, content BLAKE3
/// hex, split id hex, x, store, name).
pub type NamedPlacement = (i64, String, String, u8, String, String);

/// A share as a store names it: (store, object name).
pub type StoreName = (String, String);

/// A migrate worker as the catalog records it (`umbra status`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerRow {
    pub id: String,
    pub source_ref: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub finished_at: Option<i64>,
    pub objects: u64,
    pub bytes: u64,
    pub lease: i64,
}

/// One object version as `umbra ls` shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: i64,
    pub source_ref: String,
    pub version: i64,
    /// Versions of its path in the catalog (forgotten ones are not), and
    /// the number of the newest.
    pub versions: i64,
    pub latest_version: i64,
    pub size: u64,
    pub state: String,
    pub kind: String,
    pub ids: Identity,
    pub scheme: Option<String>,
    pub t: Option<i64>,
    pub n: Option<i64>,
    pub share_bytes: Option<u64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub checked_at: Option<i64>,
    pub last_error: Option<String>,
}

/// Versions, objects and source bytes in one state.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StateCount {
    pub state: String,
    /// Objects whose latest version is in this state.
    pub objects: u64,
    pub versions: u64,
    /// Source bytes of those versions.
    pub bytes: u64,
}

/// What the catalog says one store holds.
#[derive(Debug, Clone)]
pub struct StoreUsage {
    pub store: String,
    pub shares: u64,
    pub bytes: u64,
    /// Shares of splits from before their length was recorded.
    pub unknown_size: u64,
}

/// How far verification lags.
#[derive(Debug, Clone)]
pub struct VerificationAge {
    pub never_checked: u64,
    /// (path, version, recorded at) of the oldest never verified.
    pub oldest_unchecked: Option<(String, i64, i64)>,
    /// When the version checked least recently was checked.
    pub least_recently_checked: Option<i64>,
}

/// Which objects to restore or verify: every given selector must hold.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub all: bool,
    pub study_uid: Option<String>,
    pub sop_uid: Option<String>,
    pub patient_id: Option<String>,
    pub series_uid: Option<String>,
    /// A glob over the path in the source (SQLite GLOB: `*`, `?`, `[...]`).
    pub path_glob: Option<String>,
    /// StudyDate range, inclusive, YYYYMMDD (objects without one are left out).
    pub date_from: Option<String>,
    pub date_until: Option<String>,
    /// This version of each object instead of its latest.
    pub version: Option<i64>,
    /// The latest version recorded at or before this time (Unix seconds).
    pub as_of: Option<i64>,
}

impl Selection {
    /// The selectors, for "nothing matched" (identifiers a person typed,
    /// said back to that person only).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (what, v) in [
            ("SOP Instance UID", &self.sop_uid),
            ("Study Instance UID", &self.study_uid),
            ("Series Instance UID", &self.series_uid),
            ("PatientID", &self.patient_id),
            ("a path matching", &self.path_glob),
        ] {
            if let Some(v) = v {
                parts.push(format!("{what} {v}"));
            }
        }
        if let Some(v) = self.version {
            parts.push(format!("a version {v}"));
        }
        if let Some(t) = self.as_of {
            parts.push(format!("a version recorded by {}", super::time::rfc3339(t)));
        }
        match (&self.date_from, &self.date_until) {
            (Some(a), Some(b)) => parts.push(format!("a StudyDate from {a} to {b}")),
            (Some(a), None) => parts.push(format!("a StudyDate from {a}")),
            (None, Some(b)) => parts.push(format!("a StudyDate until {b}")),
            (None, None) => {}
        }
        if parts.is_empty() {
            "been written yet".into()
        } else {
            parts.join(" and ")
        }
    }
}

/// The content and identity columns of a version, in the order of
/// `insert` and `update_pending` (size, blake3, change_sig, ctime_ns,
/// inode, kind, sop_uid, study_uid, series_uid, study_date, modality,
/// patient_id).
fn content_params(o: &NewObject<'_>) -> [Value; 12] {
    use super::db::ToValue;
    [
        o.size.to_value(),
        o.blake3.to_value(),
        o.change_sig.to_value(),
        o.ctime_ns.to_value(),
        o.inode.to_value(),
        o.kind.to_value(),
        o.ids.sop_uid.to_value(),
        o.ids.study_uid.to_value(),
        o.ids.series_uid.to_value(),
        o.ids.study_date.to_value(),
        o.ids.modality.to_value(),
        o.ids.patient_id.to_value(),
    ]
}

// PostgreSQL types a parameter by its first use: `?2 IS NULL OR col = ?2`
// leaves the first `?2` untyped ("could not determine data type"), so a
// parameter that may be NULL is cast where it is first tested.

/// The states of a version whose shares reached the stores (at least the
/// write quorum of them): what restore, verify and repair look at.
const STORED: &str = "'degraded', 'written', 'verified'";

/// Where a catalog is: a SQLite file, or a PostgreSQL database.
#[derive(Clone)]
pub enum Location {
    File(PathBuf),
    /// A libpq-style connection string or `postgresql://` URL without a
    /// password (umbra.toml never holds one), and the password from the
    /// environment or its 0600 file.
    Postgres {
        conninfo: String,
        password: Option<zeroize::Zeroizing<String>>,
        /// PEM certificates to trust for the server's TLS certificate
        /// instead of the operating system's roots.
        ca_file: Option<PathBuf>,
    },
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl Location {
    /// How errors name it (never with a password).
    pub fn shown(&self) -> String {
        match self {
            Location::File(p) => p.display().to_string(),
            Location::Postgres { conninfo, .. } => conninfo.clone(),
        }
    }

    /// A connection string (rather than a file name): `postgresql://`,
    /// `postgres://`, or libpq's `key=value` form.
    pub fn is_postgres(spec: &str) -> bool {
        spec.starts_with("postgresql://")
            || spec.starts_with("postgres://")
            || (spec.contains('=')
                && spec
                    .split_whitespace()
                    .all(|kv| kv.split_once('=').is_some_and(|(k, _)| !k.is_empty())))
    }

    /// Whether a catalog is there (a PostgreSQL database is asked).
    pub fn exists(&self) -> Result<bool> {
        match self {
            Location::File(p) => Ok(p.is_file()),
            Location::Postgres { .. } => {
                let db = connect(self)?;
                has_catalog(&db).map_err(|error| ArchiveError::Catalog {
                    at: self.shown(),
                    error,
                })
            }
        }
    }
}

/// The TLS connector for a PostgreSQL catalog: rustls with the ring
/// provider, trusting `ca_file`'s certificates or else the operating
/// system's roots; the chain and the host name (or IP address) are always
/// verified, so `sslmode=require` here is libpq's `verify-full`.
fn tls_connector(
    at: &Location,
    ca_file: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let bad = |reason: String| ArchiveError::Config {
        path: PathBuf::from(at.shown()),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(file) => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| bad(format!("catalog CA file {}: {e}", file.display())))?;
            if certs.is_empty() {
                return Err(bad(format!(
                    "catalog CA file {}: no certificate in it",
                    file.display()
                )));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| bad(format!("catalog CA file {}: {e}", file.display())))?;
            }
        }
        None => {
            // Unreadable system certificates are skipped: the handshake
            // then fails naming the certificate it could not verify.
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// libpq's `sslmode=verify-ca` and `verify-full` as the client library
/// spells them (`require`: with rustls it verifies the chain and the host
/// name, which is `verify-full`, stricter than `verify-ca`).
pub(crate) fn client_conninfo(conninfo: &str) -> String {
    conninfo
        .replace("sslmode=verify-full", "sslmode=require")
        .replace("sslmode=verify-ca", "sslmode=require")
}

/// Opens a connection to a PostgreSQL catalog (over TLS when the server
/// offers it, or only over TLS with `sslmode=require`).
pub(crate) fn connect(loc: &Location) -> Result<Db> {
    let Location::Postgres {
        conninfo,
        password,
        ca_file,
    } = loc
    else {
        unreachable!("connect is for PostgreSQL catalogs");
    };
    let at = loc.shown();
    let mut config: postgres::Config =
        client_conninfo(conninfo)
            .parse()
            .map_err(|e| ArchiveError::Catalog {
                at: at.clone(),
                error: DbError::Postgres(e),
            })?;
    if let Some(p) = password {
        config.password(p.as_bytes());
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("umbra");
    }
    let tls = tls_connector(loc, ca_file.as_deref())?;
    let client = config.connect(tls).map_err(|e| ArchiveError::Catalog {
        at,
        error: DbError::Postgres(e),
    })?;
    Ok(Db::Postgres(std::cell::RefCell::new(client)))
}

/// Tries to take the session advisory lock `name` (per schema) on a
/// PostgreSQL connection, exclusive or shared; held until the connection
/// closes (a killed process's with it).
pub(crate) fn try_advisory_lock(db: &Db, at: &Location, name: &str, shared: bool) -> Result<bool> {
    let f = if shared {
        "pg_try_advisory_lock_shared"
    } else {
        "pg_try_advisory_lock"
    };
    db.query_row(
        &format!("SELECT {f}(hashtext(current_schema() || ' ' || ?1))"),
        vals![name],
        |r| r.get(0),
    )
    .map_err(|error| ArchiveError::Catalog {
        at: at.shown(),
        error,
    })
}

/// Releases an advisory lock [`try_advisory_lock`] took.
pub(crate) fn advisory_unlock(db: &Db, at: &Location, name: &str, shared: bool) -> Result<()> {
    let f = if shared {
        "pg_advisory_unlock_shared"
    } else {
        "pg_advisory_unlock"
    };
    db.query_row(
        &format!("SELECT {f}(hashtext(current_schema() || ' ' || ?1))"),
        vals![name],
        |r| r.get::<bool>(0),
    )
    .map(|_| ())
    .map_err(|error| ArchiveError::Catalog {
        at: at.shown(),
        error,
    })
}

/// Whether the database holds a catalog (its `meta` table).
fn has_catalog(db: &Db) -> DbResult<bool> {
    let sql = match db.dialect() {
        Dialect::Sqlite => {
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        }
        Dialect::Postgres => "SELECT to_regclass('meta') IS NOT NULL",
    };
    db.query_row(sql, vals![], |r| r.get(0))
}

/// The catalog's tables for PostgreSQL: [`SCHEMA`] with its types (64-bit
/// integers, `BYTEA`, identity ids).
pub fn postgres_schema() -> String {
    SCHEMA
        .replace(
            "INTEGER PRIMARY KEY",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        )
        .replace("INTEGER", "BIGINT")
        .replace("BLOB", "BYTEA")
}

/// An open catalog: one connection to its database.
pub struct Catalog {
    db: Db,
    at: Location,
}

/// Creates `path` 0600 if it is missing, and takes group and other
/// permissions from an existing one: the catalog holds patient identifiers.
/// SQLite gives its WAL and shared-memory files the database's mode.
///
/// An existing file is never opened here: closing any descriptor of a
/// database file drops every POSIX lock this process holds on it, so a
/// second catalog connection (a heartbeat, a check) opened beside one in
/// a transaction would silently let other processes write under it.
pub fn private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let at = |error| ArchiveError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::fs::metadata(path).map_err(at)?.permissions().mode()
                }
                Err(e) => return Err(at(e)),
            }
        }
        Err(e) => return Err(at(e)),
    };
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
            .map_err(at)?;
    }
    Ok(())
}

const COLUMNS: &str = "id, source, path, source_ref, version, size, blake3, change_sig, ctime_ns, \
                       inode, kind, sop_uid, study_uid, series_uid, study_date, modality, \
                       patient_id, split_id, state, attempts, last_error";

fn row(r: &Row) -> DbResult<ObjectRow> {
    Ok(ObjectRow {
        id: r.get(0)?,
        source: r.get(1)?,
        path: r.get(2)?,
        source_ref: r.get(3)?,
        version: r.get(4)?,
        size: r.get::<i64>(5)? as u64,
        blake3: r.get(6)?,
        change_sig: r.get(7)?,
        ctime_ns: r.get(8)?,
        inode: r.get(9)?,
        kind: r.get(10)?,
        ids: Identity {
            sop_uid: r.get(11)?,
            study_uid: r.get(12)?,
            series_uid: r.get(13)?,
            study_date: r.get(14)?,
            modality: r.get(15)?,
            patient_id: r.get(16)?,
        },
        split_id: r.get(17)?,
        state: r.get(18)?,
        attempts: r.get(19)?,
        last_error: r.get(20)?,
    })
}

impl Catalog {
    fn err(&self, error: DbError) -> ArchiveError {
        ArchiveError::Catalog {
            at: self.at.shown(),
            error,
        }
    }

    /// Its connection (for a session advisory lock on it).
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Which database it is.
    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// Where it is.
    pub fn location(&self) -> &Location {
        &self.at
    }

    /// Creates an empty catalog; refuses an existing one.
    pub fn create(at: &Location) -> Result<Self> {
        if at.exists()? {
            return Err(ArchiveError::Config {
                path: PathBuf::from(at.shown()),
                reason: "a catalog already exists here".into(),
            });
        }
        Self::open_inner(at)
    }

    /// Opens an existing catalog. A missing one is an error: migrating into
    /// a fresh catalog would write every object a second time.
    pub fn open(at: &Location) -> Result<Self> {
        let missing = || ArchiveError::Config {
            path: PathBuf::from(at.shown()),
            reason: "the catalog is missing; `umbra restore --without-catalog --all` \
                     rebuilds the objects from the stores alone"
                .into(),
        };
        Self::open_if_exists(at)?.ok_or_else(missing)
    }

    /// Opens the catalog if there is one (one connection, where
    /// [`Location::exists`] and [`Catalog::open`] would make two).
    pub fn open_if_exists(at: &Location) -> Result<Option<Self>> {
        match at {
            Location::File(p) if !p.is_file() => Ok(None),
            Location::File(_) => Self::open_inner(at).map(Some),
            Location::Postgres { .. } => {
                let c = Self {
                    db: connect(at)?,
                    at: at.clone(),
                };
                if !has_catalog(&c.db).map_err(|e| c.err(e))? {
                    return Ok(None);
                }
                c.prepare_schema()?;
                Ok(Some(c))
            }
        }
    }

    fn open_inner(at: &Location) -> Result<Self> {
        let db = match at {
            Location::File(path) => {
                private_file(path)?;
                Db::Sqlite(rusqlite::Connection::open(path).map_err(|error| {
                    ArchiveError::Catalog {
                        at: at.shown(),
                        error: error.into(),
                    }
                })?)
            }
            Location::Postgres { .. } => connect(at)?,
        };
        let c = Self { db, at: at.clone() };
        c.prepare_schema()?;
        Ok(c)
    }

    /// Creates the tables that are missing and brings an older schema up to
    /// [`SCHEMA_VERSION`]; refuses a catalog a newer umbra wrote.
    fn prepare_schema(&self) -> Result<()> {
        match self.db.dialect() {
            Dialect::Sqlite => {
                self.db
                    .batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
                    .map_err(|e| self.err(e))?;
                self.check_version()?;
                self.migrate_sqlite()?;
                self.db
                    .batch("PRAGMA foreign_keys = ON;")
                    .map_err(|e| self.err(e))?;
                self.db.batch(SCHEMA).map_err(|e| self.err(e))?;
                self.set_meta("schema_version", &SCHEMA_VERSION.to_string())
            }
            Dialect::Postgres => {
                // Many workers open the catalog at once: the first creates
                // or migrates it, the others wait on this lock, then find
                // it done. The key is per schema (two archives may share a
                // database in two schemas).
                if self.get_meta_if_any("schema_version")?.as_deref()
                    == Some(SCHEMA_VERSION.to_string().as_str())
                {
                    return Ok(());
                }
                self.db.begin().map_err(|e| self.err(e))?;
                let done = (|| {
                    self.db
                        .execute(
                            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || \
                             ' umbra catalog schema'))",
                            vals![],
                        )
                        .map_err(|e| self.err(e))?;
                    self.check_version()?;
                    self.db.batch(&postgres_schema()).map_err(|e| self.err(e))?;
                    for (column, ty) in Self::ADDED_COLUMNS {
                        let ty = ty.replace("INTEGER", "BIGINT");
                        self.db
                            .batch(&format!(
                                "ALTER TABLE objects ADD COLUMN IF NOT EXISTS {column} {ty}"
                            ))
                            .map_err(|e| self.err(e))?;
                    }
                    self.set_meta("schema_version", &SCHEMA_VERSION.to_string())
                })();
                match done {
                    Ok(()) => self.db.batch("COMMIT").map_err(|e| self.err(e)),
                    Err(e) => {
                        let _ = self.db.batch("ROLLBACK");
                        Err(e)
                    }
                }
            }
        }
    }

    /// A meta value, or none when the table is not there yet.
    fn get_meta_if_any(&self, key: &str) -> Result<Option<String>> {
        if !has_catalog(&self.db).map_err(|e| self.err(e))? {
            return Ok(None);
        }
        self.get_meta(key)
    }

    fn check_version(&self) -> Result<()> {
        if let Some(v) = self.get_meta_if_any("schema_version")?
            && v.parse::<i64>().is_ok_and(|v| v > SCHEMA_VERSION)
        {
            return Err(ArchiveError::Config {
                path: PathBuf::from(self.at.shown()),
                reason: format!(
                    "this catalog is of schema version {v}, written by a newer umbra; this one \
                     knows versions up to {SCHEMA_VERSION}"
                ),
            });
        }
        Ok(())
    }

    /// Columns added to `objects` after schema version 2: version 3 the
    /// scheme of each split (NULL: Shamir, the only scheme before), version
    /// 4 the length of each split's share files (NULL: unknown), version 5
    /// a worker's lease on a pending version (docs/SCALE.md).
    const ADDED_COLUMNS: [(&str, &str); 4] = [
        ("split_scheme", "TEXT"),
        ("share_bytes", "INTEGER"),
        ("lease_owner", "TEXT"),
        ("lease_until", "INTEGER"),
    ];

    /// Brings a SQLite catalog of an older schema up to [`SCHEMA_VERSION`]
    /// (with foreign keys off, as SQLite requires for rebuilding a table).
    fn migrate_sqlite(&self) -> Result<()> {
        let has_objects: bool = self
            .db
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'objects'",
                vals![],
                |r| r.get::<i64>(0).map(|n| n > 0),
            )
            .map_err(|e| self.err(e))?;
        if !has_objects {
            return Ok(());
        }
        let has_path: bool = self
            .db
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('objects') WHERE name = 'path'",
                vals![],
                |r| r.get::<i64>(0).map(|n| n > 0),
            )
            .map_err(|e| self.err(e))?;
        if !has_path {
            self.db
                .batch(&format!("BEGIN IMMEDIATE; {MIGRATE_V1} COMMIT;"))
                .map_err(|e| {
                    let _ = self.db.batch("ROLLBACK");
                    self.err(e)
                })?;
        }
        for (column, ty) in Self::ADDED_COLUMNS {
            let has: bool = self
                .db
                .query_row(
                    "SELECT COUNT(*) FROM pragma_table_info('objects') WHERE name = ?1",
                    vals![column],
                    |r| r.get::<i64>(0).map(|n| n > 0),
                )
                .map_err(|e| self.err(e))?;
            if !has {
                self.db
                    .batch(&format!("ALTER TABLE objects ADD COLUMN {column} {ty}"))
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    /// The newest version of `path` in `source`, if any. A version recorded
    /// before sources were (source unknown) at the same path is adopted by
    /// this source first, so that an upgraded archive does not write its
    /// objects again.
    pub fn latest(&self, source: &[u8], path: &[u8]) -> Result<Option<ObjectRow>> {
        let find = || {
            self.db
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM objects WHERE source = ?1 AND path = ?2 \
                         ORDER BY version DESC LIMIT 1"
                    ),
                    vals![source, path],
                    row,
                )
                .optional()
                .map_err(|e| self.err(e))
        };
        if let Some(r) = find()? {
            return Ok(Some(r));
        }
        let adopted = self
            .db
            .execute(
                "UPDATE objects SET source = ?1 WHERE source = ?3 AND path = ?2",
                vals![source, path, b"".as_slice()],
            )
            .map_err(|e| self.err(e))?;
        if adopted == 0 {
            return Ok(None);
        }
        find()
    }

    /// Records the source's new change signature (times, inode) of a version
    /// whose bytes were found unchanged.
    pub fn touch(&self, id: i64, change_sig: i64, ctime_ns: i64, inode: i64) -> Result<()> {
        self.db
            .execute(
                "UPDATE objects SET change_sig = ?2, ctime_ns = ?3, inode = ?4 WHERE id = ?1",
                vals![id, change_sig, ctime_ns, inode],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets a version's change signature, so that the next scan reads
    /// its source in full (after its bytes were found to differ from the
    /// recorded BLAKE3).
    pub fn forget_signature(&self, id: i64) -> Result<()> {
        self.touch(id, 0, 0, 0)
    }

    /// Records a new version of `o.source_ref`, `pending`; returns its id.
    pub fn insert(&self, o: &NewObject<'_>) -> Result<i64> {
        use super::db::ToValue;
        let now = now_secs();
        let version: i64 = self
            .db
            .query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM objects WHERE source = ?1 AND path = ?2",
                vals![o.source, o.path],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let params: Vec<Value> = [
            o.source.to_value(),
            o.path.to_value(),
            o.source_ref.to_value(),
            version.to_value(),
        ]
        .into_iter()
        .chain(content_params(o))
        .chain([now.to_value()])
        .collect();
        self.db
            .query_row(
                "INSERT INTO objects (source, path, source_ref, version, size, blake3, change_sig, \
                 ctime_ns, inode, kind, sop_uid, study_uid, series_uid, study_date, modality, \
                 patient_id, state, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, \
                 ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 'pending', ?17, ?17) RETURNING id",
                &params,
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// A pending version whose source changed before it was written
    /// becomes the new content (no shares of it were ever complete).
    pub fn update_pending(&self, id: i64, o: &NewObject<'_>) -> Result<()> {
        use super::db::ToValue;
        let params: Vec<Value> = [id.to_value()]
            .into_iter()
            .chain(content_params(o))
            .chain([now_secs().to_value()])
            .collect();
        self.db
            .execute(
                "UPDATE objects SET size = ?2, blake3 = ?3, change_sig = ?4, ctime_ns = ?5, \
                 inode = ?6, kind = ?7, sop_uid = ?8, study_uid = ?9, series_uid = ?10, \
                 study_date = ?11, modality = ?12, patient_id = ?13, updated_at = ?14 \
                 WHERE id = ?1 AND state = 'pending'",
                &params,
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every path recorded for `source` (any version, any state).
    pub fn paths_of(&self, source: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.db
            .query_map(
                "SELECT DISTINCT path FROM objects WHERE source = ?1",
                vals![source],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// After a full listing of `source`: its archived paths in `missing`
    /// are gone (since now, unless recorded earlier), every other path of
    /// it is not. Returns how many are gone.
    pub fn record_gone(&mut self, source: &[u8], missing: &[Vec<u8>]) -> Result<u64> {
        self.in_transaction(|c| {
            let err = |e| c.err(e);
            let mut keep: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
            for path in missing {
                keep.insert(path);
                c.db.execute(
                    "INSERT INTO gone (source, path, since) VALUES (?1, ?2, ?3) \
                         ON CONFLICT DO NOTHING",
                    vals![source, path, now_secs()],
                )
                .map_err(err)?;
            }
            let recorded: Vec<Vec<u8>> = {
                c.db.query_map(
                    "SELECT path FROM gone WHERE source = ?1",
                    vals![source],
                    |r| r.get(0),
                )
                .map_err(err)?
            };
            for path in recorded.iter().filter(|p| !keep.contains(p.as_slice())) {
                c.db.execute(
                    "DELETE FROM gone WHERE source = ?1 AND path = ?2",
                    vals![source, path],
                )
                .map_err(err)?;
            }
            Ok(missing.len() as u64)
        })
    }

    /// Stored versions of objects gone from their source since before
    /// `cutoff` (Unix seconds), with when they went.
    pub fn gone_before(&self, cutoff: i64) -> Result<Vec<(ObjectRow, i64)>> {
        let cols: String = COLUMNS
            .split(", ")
            .map(|c| format!("o.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        self.db
            .query_map(
                &format!(
                    "SELECT {cols}, g.since FROM objects o JOIN gone g \
                 ON g.source = o.source AND g.path = o.path \
                 WHERE o.state IN ({STORED}) AND g.since < ?1 ORDER BY o.id"
                ),
                vals![cutoff],
                |r| Ok((row(r)?, r.get(21)?)),
            )
            .map_err(|e| self.err(e))
    }

    /// Every version of `source` whose shares are not all written yet.
    pub fn pending(&self, source: &[u8]) -> Result<Vec<ObjectRow>> {
        self.db
            .query_map(
                &format!(
                    "SELECT {COLUMNS} FROM objects WHERE state = 'pending' AND source = ?1 \
                     ORDER BY id"
                ),
                vals![source],
                row,
            )
            .map_err(|e| self.err(e))
    }

    /// Every version in `state`, of any source.
    pub fn in_state(&self, state: &str) -> Result<Vec<ObjectRow>> {
        self.db
            .query_map(
                &format!("SELECT {COLUMNS} FROM objects WHERE state = ?1 ORDER BY id"),
                vals![state],
                row,
            )
            .map_err(|e| self.err(e))
    }

    fn query(&self, sql: &str) -> Result<Vec<ObjectRow>> {
        self.db
            .query_map(sql, vals![], row)
            .map_err(|e| self.err(e))
    }

    /// Objects whose shares were all written, filtered by `sel`: the latest
    /// stored version of each source reference, or the latest recorded by
    /// `sel.as_of`, or exactly `sel.version`.
    pub fn select(&self, sel: &Selection) -> Result<Vec<ObjectRow>> {
        let glob = self.db.glob("source_ref", "?10");
        // Selectors narrow each other; a date range alone selects every
        // object in it.
        let any = sel.all;
        self.db
            .query_map(
                &format!(
                    "SELECT {COLUMNS} FROM objects o WHERE state IN ({STORED}) \
                 AND (CAST(?8 AS BIGINT) IS NULL OR created_at <= ?8) \
                 AND CASE WHEN CAST(?7 AS BIGINT) IS NOT NULL THEN version = ?7 ELSE version = \
                 (SELECT MAX(version) FROM objects p WHERE p.source = o.source \
                 AND p.path = o.path AND p.state IN ({STORED}) \
                 AND (CAST(?8 AS BIGINT) IS NULL OR p.created_at <= ?8)) END \
                 AND (?1 OR ((CAST(?2 AS TEXT) IS NULL OR sop_uid = ?2) \
                 AND (CAST(?3 AS TEXT) IS NULL OR study_uid = ?3) \
                 AND (CAST(?4 AS TEXT) IS NULL OR patient_id = ?4) \
                 AND (CAST(?9 AS TEXT) IS NULL OR series_uid = ?9) \
                 AND (CAST(?10 AS TEXT) IS NULL OR {glob}))) \
                 AND (CAST(?5 AS TEXT) IS NULL OR study_date >= ?5) \
                 AND (CAST(?6 AS TEXT) IS NULL OR study_date <= ?6) \
                 ORDER BY id"
                ),
                vals![
                    any,
                    sel.sop_uid,
                    sel.study_uid,
                    sel.patient_id,
                    sel.date_from,
                    sel.date_until,
                    sel.version,
                    sel.as_of,
                    sel.series_uid,
                    self.db.glob_param(sel.path_glob.as_deref())
                ],
                row,
            )
            .map_err(|e| self.err(e))
    }

    /// `umbra ls`: the latest version of each object in any state (or
    /// every version), filtered as [`Catalog::select`] filters (its version
    /// and time selectors aside), by path.
    pub fn list(&self, sel: &Selection, every_version: bool) -> Result<Vec<Listed>> {
        let glob = self.db.glob("o.source_ref", "?6");
        self.db
            .query_map(
                &format!(
                    "SELECT o.id, o.source_ref, o.version, (SELECT COUNT(*) FROM objects p \
                 WHERE p.source = o.source AND p.path = o.path), (SELECT MAX(version) \
                 FROM objects p WHERE p.source = o.source AND p.path = o.path), o.size, o.state, \
                 o.kind, \
                 o.sop_uid, o.study_uid, o.series_uid, o.study_date, o.modality, o.patient_id, \
                 o.split_scheme, o.split_t, o.split_n, o.share_bytes, o.created_at, \
                 o.updated_at, o.checked_at, o.last_error FROM objects o \
                 WHERE (?1 OR o.version = (SELECT MAX(version) FROM objects p \
                 WHERE p.source = o.source AND p.path = o.path)) \
                 AND (CAST(?2 AS TEXT) IS NULL OR o.sop_uid = ?2) \
                 AND (CAST(?3 AS TEXT) IS NULL OR o.study_uid = ?3) \
                 AND (CAST(?4 AS TEXT) IS NULL OR o.patient_id = ?4) \
                 AND (CAST(?5 AS TEXT) IS NULL OR o.series_uid = ?5) \
                 AND (CAST(?6 AS TEXT) IS NULL OR {glob}) \
                 AND (CAST(?7 AS TEXT) IS NULL OR o.study_date >= ?7) \
                 AND (CAST(?8 AS TEXT) IS NULL OR o.study_date <= ?8) \
                 ORDER BY o.source_ref, o.source, o.version"
                ),
                vals![
                    every_version,
                    sel.sop_uid,
                    sel.study_uid,
                    sel.patient_id,
                    sel.series_uid,
                    self.db.glob_param(sel.path_glob.as_deref()),
                    sel.date_from,
                    sel.date_until
                ],
                |r| {
                    Ok(Listed {
                        id: r.get(0)?,
                        source_ref: r.get(1)?,
                        version: r.get(2)?,
                        versions: r.get(3)?,
                        latest_version: r.get(4)?,
                        size: r.get::<i64>(5)? as u64,
                        state: r.get(6)?,
                        kind: r.get(7)?,
                        ids: Identity {
                            sop_uid: r.get(8)?,
                            study_uid: r.get(9)?,
                            series_uid: r.get(10)?,
                            study_date: r.get(11)?,
                            modality: r.get(12)?,
                            patient_id: r.get(13)?,
                        },
                        scheme: r.get(14)?,
                        t: r.get(15)?,
                        n: r.get(16)?,
                        share_bytes: r.get::<Option<i64>>(17)?.map(|b| b as u64),
                        created_at: r.get(18)?,
                        updated_at: r.get(19)?,
                        checked_at: r.get(20)?,
                        last_error: r.get(21)?,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    /// Versions and source bytes by state, and objects (their latest
    /// version) by state. A pending version with an error is `failed`.
    pub fn state_counts(&self) -> Result<Vec<StateCount>> {
        let state = "CASE WHEN state = 'pending' AND last_error IS NOT NULL THEN 'failed' \
                     ELSE state END";
        let mut out: BTreeMap<String, StateCount> = BTreeMap::new();
        for (latest, sql) in [
            (
                false,
                format!(
                    "SELECT {state}, COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM objects GROUP BY 1"
                ),
            ),
            (
                true,
                format!(
                    "SELECT {state}, COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM objects o \
                     WHERE version = (SELECT MAX(version) FROM objects p \
                     WHERE p.source = o.source AND p.path = o.path) GROUP BY 1"
                ),
            ),
        ] {
            let rows = self
                .db
                .query_map(&sql, vals![], |r| {
                    Ok((
                        r.get::<String>(0)?,
                        r.get::<i64>(1)? as u64,
                        r.get::<i64>(2)? as u64,
                    ))
                })
                .map_err(|e| self.err(e))?;
            for (st, count, bytes) in rows {
                let c = out.entry(st.clone()).or_insert_with(|| StateCount {
                    state: st,
                    ..Default::default()
                });
                if latest {
                    c.objects = count;
                } else {
                    (c.versions, c.bytes) = (count, bytes);
                }
            }
        }
        Ok(out.into_values().collect())
    }

    /// Per store the catalog names: shares written there, their bytes
    /// where recorded, and how many are of unrecorded length.
    pub fn store_usage(&self) -> Result<Vec<StoreUsage>> {
        self.db
            .query_map(
                "SELECT p.store, COUNT(*), CAST(COALESCE(SUM(o.share_bytes), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(CASE WHEN o.share_bytes IS NULL THEN 1 ELSE 0 END), 0) \
                 AS BIGINT) FROM placements p \
                 JOIN objects o ON o.id = p.object_id WHERE p.written = 1 \
                 GROUP BY p.store ORDER BY p.store",
                vals![],
                |r| {
                    Ok(StoreUsage {
                        store: r.get(0)?,
                        shares: r.get::<i64>(1)? as u64,
                        bytes: r.get::<i64>(2)? as u64,
                        unknown_size: r.get::<i64>(3)? as u64,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    /// Stored versions never verified: how many, and the oldest of them
    /// (its path, version and when it was recorded); and when the version
    /// checked least recently was checked.
    pub fn verification_age(&self) -> Result<VerificationAge> {
        let (never, least_recent): (i64, Option<i64>) = self
            .db
            .query_row(
                &format!(
                    "SELECT CAST(COALESCE(SUM(CASE WHEN checked_at IS NULL THEN 1 ELSE 0 END), 0) \
                     AS BIGINT), MIN(checked_at) FROM objects \
                     WHERE state IN ({STORED})"
                ),
                vals![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let oldest = self
            .db
            .query_row(
                &format!(
                    "SELECT source_ref, version, created_at FROM objects \
                     WHERE state IN ({STORED}) AND checked_at IS NULL \
                     ORDER BY created_at, id LIMIT 1"
                ),
                vals![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(VerificationAge {
            never_checked: never as u64,
            oldest_unchecked: oldest,
            least_recently_checked: least_recent,
        })
    }

    /// Every version whose shares were all written (verify and repair look
    /// after old versions too).
    pub fn stored(&self) -> Result<Vec<ObjectRow>> {
        self.query(&format!(
            "SELECT {COLUMNS} FROM objects WHERE state IN ({STORED}) ORDER BY id"
        ))
    }

    /// The `percent` of written versions checked least recently (never
    /// checked first): successive sampled verifies roll over everything.
    pub fn stored_sample(&self, percent: f64) -> Result<Vec<ObjectRow>> {
        let total: i64 = self
            .db
            .query_row(
                &format!("SELECT COUNT(*) FROM objects WHERE state IN ({STORED})"),
                vals![],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let take = ((total as f64 * percent / 100.0).ceil() as i64).clamp(0, total);
        let mut rows = self.query(&format!(
            "SELECT {COLUMNS} FROM objects WHERE state IN ({STORED}) \
             ORDER BY checked_at IS NOT NULL, checked_at, id LIMIT {take}"
        ))?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Notes that version `id`'s shares were just checked.
    pub fn set_checked(&self, id: i64) -> Result<()> {
        self.db
            .execute(
                "UPDATE objects SET checked_at = ?2 WHERE id = ?1",
                vals![id, now_secs()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Where version `id`'s shares are: one placement per x.
    pub fn placements(&self, id: i64) -> Result<Vec<Placement>> {
        self.db
            .query_map(
                "SELECT x, store, name, written FROM placements WHERE object_id = ?1 ORDER BY x",
                vals![id],
                |r| {
                    Ok(Placement {
                        x: r.get::<i64>(0)? as u8,
                        store: r.get(1)?,
                        name: r.get(2)?,
                        written: r.get(3)?,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    /// Runs `f` in one transaction: many small writes, one commit (one
    /// sync of the write-ahead log instead of one per write). Rolled back
    /// if `f` fails.
    pub fn in_transaction<T>(&mut self, f: impl FnOnce(&Catalog) -> Result<T>) -> Result<T> {
        self.db.begin().map_err(|e| self.err(e))?;
        match f(self) {
            Ok(v) => {
                self.db.batch("COMMIT").map_err(|e| self.err(e))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.db.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Records the new splits (threshold `t`, n = the placements, `scheme`,
    /// the length of their share files when known) of pending objects,
    /// replacing the placements of earlier attempts, in one transaction:
    /// before any share is written.
    pub fn begin_splits(
        &mut self,
        threshold: crate::sharing::Threshold,
        scheme: crate::share::format::SchemeKind,
        splits: &[SplitBegun<'_>],
    ) -> Result<()> {
        self.in_transaction(|c| {
            let err = |e| c.err(e);
            for b in splits {
                let id = b.id;
                c.db.execute("DELETE FROM placements WHERE object_id = ?1", vals![id])
                    .map_err(err)?;
                c.db.execute(
                    "UPDATE objects SET split_id = ?2, split_t = ?4, split_n = ?5, \
                         split_scheme = ?6, share_bytes = ?7, attempts = attempts + 1, \
                         blake3 = COALESCE(?8, blake3), updated_at = ?3 WHERE id = ?1",
                    vals![
                        id,
                        b.split_id,
                        now_secs(),
                        threshold.t() as i64,
                        threshold.n() as i64,
                        scheme.name(),
                        b.share_bytes.map(|b| b as i64),
                        b.content
                    ],
                )
                .map_err(err)?;
                for p in b.placements {
                    c.db.execute(
                        "INSERT INTO placements (object_id, x, store, name) \
                             VALUES (?1, ?2, ?3, ?4)",
                        vals![id, p.x as i64, p.store, p.name],
                    )
                    .map_err(err)?;
                }
            }
            Ok(())
        })
    }

    /// Every version whose shares reached the stores, oldest first per
    /// object: (id, source, path, version, created_at), ordered by object.
    pub fn stored_versions(&self) -> Result<Vec<StoredVersion>> {
        self.db
            .query_map(
                &format!(
                    "SELECT id, source, path, version, created_at FROM objects \
                 WHERE state IN ({STORED}) ORDER BY source, path, version"
                ),
                vals![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .map_err(|e| self.err(e))
    }

    /// Every version (any state) whose DICOM identity matches: what an
    /// erasure removes.
    pub fn identified(
        &self,
        patient_id: Option<&str>,
        study_uid: Option<&str>,
        sop_uid: Option<&str>,
    ) -> Result<Vec<ObjectRow>> {
        self.db
            .query_map(
                &format!(
                    "SELECT {COLUMNS} FROM objects WHERE (CAST(?1 AS TEXT) IS NOT NULL \
                 OR CAST(?2 AS TEXT) IS NOT NULL \
                 OR CAST(?3 AS TEXT) IS NOT NULL) \
                 AND (CAST(?1 AS TEXT) IS NULL OR patient_id = ?1) \
                 AND (CAST(?2 AS TEXT) IS NULL OR study_uid = ?2) \
                 AND (CAST(?3 AS TEXT) IS NULL OR sop_uid = ?3) \
                 ORDER BY id"
                ),
                vals![patient_id, study_uid, sop_uid],
                row,
            )
            .map_err(|e| self.err(e))
    }

    /// Forgets versions, in one transaction: each one's share names (every
    /// placement, written or not) go into the `deletions` table as still to
    /// delete, with `reason`, then its placements and its row are removed.
    /// An erasure keeps no identifying value (no path, version or size),
    /// and the deleted rows are overwritten in the database file
    /// (`secure_delete`) and the write-ahead log emptied. Returns the
    /// `deletions` rows made.
    pub fn forget_versions(
        &mut self,
        versions: &[(i64, String)],
        erasure: bool,
    ) -> Result<Vec<i64>> {
        let sqlite = self.dialect() == Dialect::Sqlite;
        if erasure && sqlite {
            self.db
                .batch("PRAGMA secure_delete = ON;")
                .map_err(|e| self.err(e))?;
        }
        let made = self.in_transaction(|c| {
            let err = |e| c.err(e);
            let mut made = Vec::new();
            for (id, reason) in versions {
                let (source_ref, version, size): (String, i64, i64) =
                    c.db.query_row(
                        "SELECT source_ref, version, size FROM objects WHERE id = ?1",
                        vals![id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map_err(err)?;
                let names: Vec<(String, String)> = c
                    .placements(*id)?
                    .into_iter()
                    .map(|p| (p.store, p.name))
                    .collect();
                let of = (!erasure).then_some((source_ref.as_str(), version, size));
                made.push(c.owe(reason, of, &names)?);
                let mut cleanup = Vec::new();
                if erasure {
                    cleanup.extend([
                        // Earlier deletions of this object (retention,
                        // moves) keep no identifying value either.
                        "UPDATE deletions SET source_ref = NULL, version = NULL, size = NULL \
                         WHERE source_ref = (SELECT source_ref FROM objects WHERE id = ?1)",
                        "DELETE FROM gone WHERE (source, path) IN \
                         (SELECT source, path FROM objects WHERE id = ?1)",
                        // An Orthanc instance left out by a run's selection
                        // is remembered by its ID: not after an erasure.
                        "DELETE FROM deferred WHERE (source, path) IN \
                         (SELECT source, path FROM objects WHERE id = ?1)",
                    ]);
                }
                cleanup.extend([
                    "DELETE FROM placements WHERE object_id = ?1",
                    "DELETE FROM objects WHERE id = ?1",
                ]);
                for sql in cleanup {
                    c.db.execute(sql, vals![id]).map_err(err)?;
                }
            }
            Ok(made)
        })?;
        if erasure && sqlite {
            self.db
                .batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA secure_delete = OFF;")
                .map_err(|e| self.err(e))?;
        } else if erasure {
            // PostgreSQL: the dead rows' space is marked free for reuse
            // (docs/SCALE.md says what it cannot promise: the bytes stay
            // in free space and the server's WAL until overwritten).
            self.db
                .batch("VACUUM objects, placements, deletions, gone, deferred")
                .map_err(|e| self.err(e))?;
        }
        Ok(made)
    }

    /// Every placement of every version with what its name is made of:
    /// (object id, content BLAKE3 hex, split id hex, x, store, name).
    pub fn named_placements(&self) -> Result<Vec<NamedPlacement>> {
        self.db
            .query_map(
                "SELECT o.id, o.blake3, o.split_id, p.x, p.store, p.name FROM placements p \
                 JOIN objects o ON o.id = p.object_id WHERE o.split_id IS NOT NULL \
                 ORDER BY o.id, p.x",
                vals![],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get::<i64>(3)? as u8,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .map_err(|e| self.err(e))
    }

    /// Renames share `x` of version `id` to `name` and records the old name
    /// in its store as owed a delete, in one transaction.
    pub fn rename_placement(
        &mut self,
        id: i64,
        x: u8,
        store: &str,
        old: &str,
        name: &str,
    ) -> Result<()> {
        self.in_transaction(|c| {
            let err = |e| c.err(e);
            c.db.execute(
                "UPDATE placements SET name = ?3 WHERE object_id = ?1 AND x = ?2",
                vals![id, x as i64, name],
            )
            .map_err(err)?;
            c.owe("site key rotated", None, &[(store, old)])?;
            Ok(())
        })
    }

    /// Owes a delete to shares about to be written (`names`), so that a run
    /// killed before [`Catalog::finish_resplit`] leaves no orphan: the next
    /// run deletes them. Returns the row.
    pub fn owe_deletes(&self, reason: &str, names: &[(String, String)]) -> Result<i64> {
        self.owe(reason, None, names)
    }

    /// A version re-split (`archive-repair --reshare`), in one transaction:
    /// its new split and placements (all written) replace the old, whose
    /// names are owed a delete, and the new names' guard row `guard` goes.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_resplit(
        &mut self,
        id: i64,
        guard: i64,
        split_id: &str,
        t: usize,
        scheme: crate::share::format::SchemeKind,
        share_bytes: Option<u64>,
        placements: &[Placement],
        reason: &str,
    ) -> Result<()> {
        self.in_transaction(|c| {
            let err = |e| c.err(e);
            let old: Vec<(String, String)> = c
                .placements(id)?
                .into_iter()
                .map(|p| (p.store, p.name))
                .collect();
            c.owe(reason, None, &old)?;
            c.db.execute("DELETE FROM placements WHERE object_id = ?1", vals![id])
                .map_err(err)?;
            for p in placements {
                c.db.execute(
                    "INSERT INTO placements (object_id, x, store, name, written) \
                         VALUES (?1, ?2, ?3, ?4, 1)",
                    vals![id, p.x as i64, p.store, p.name],
                )
                .map_err(err)?;
            }
            c.db.execute(
                "UPDATE objects SET split_id = ?2, split_t = ?3, split_n = ?4, \
                     split_scheme = ?5, share_bytes = ?6, state = 'written', checked_at = NULL, \
                     updated_at = ?7 WHERE id = ?1",
                vals![
                    id,
                    split_id,
                    t as i64,
                    placements.len() as i64,
                    scheme.name(),
                    share_bytes.map(|b| b as i64),
                    now_secs()
                ],
            )
            .map_err(err)?;
            c.db.execute("DELETE FROM deletions WHERE id = ?1", vals![guard])
                .map_err(err)?;
            Ok(())
        })
    }

    /// (t, n, scheme) each stored version was split with; None where not
    /// recorded.
    pub fn split_params(&self, id: i64) -> Result<(Option<i64>, Option<i64>, Option<String>)> {
        self.db
            .query_row(
                "SELECT split_t, split_n, split_scheme FROM objects WHERE id = ?1",
                vals![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.err(e))
    }

    /// Shares of stored versions per (x, store): where the catalog has them.
    pub fn placement_counts(&self) -> Result<Vec<(u8, String, u64)>> {
        self.db
            .query_map(
                &format!(
                    "SELECT p.x, p.store, COUNT(*) FROM placements p JOIN objects o \
                 ON o.id = p.object_id WHERE o.state IN ({STORED}) GROUP BY 1, 2 ORDER BY 1, 2"
                ),
                vals![],
                |r| Ok((r.get::<i64>(0)? as u8, r.get(1)?, r.get::<i64>(2)? as u64)),
            )
            .map_err(|e| self.err(e))
    }

    /// Moves share `x` of version `id` to `store` (its copy there written),
    /// and, in the same transaction, records the old copy (`from`, `name`)
    /// as owed a delete when `from` can still be reached.
    pub fn move_placement(
        &mut self,
        id: i64,
        x: u8,
        store: &str,
        old: Option<(&str, &str)>,
    ) -> Result<()> {
        self.in_transaction(|c| {
            let err = |e| c.err(e);
            c.db.execute(
                "UPDATE placements SET store = ?3, written = 1 WHERE object_id = ?1 AND x = ?2",
                vals![id, x as i64, store],
            )
            .map_err(err)?;
            if let Some((from, name)) = old {
                let (source_ref, version, size): (String, i64, i64) =
                    c.db.query_row(
                        "SELECT source_ref, version, size FROM objects WHERE id = ?1",
                        vals![id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map_err(err)?;
                c.owe(
                    &format!("share {x} moved from store {from} to store {store}"),
                    Some((&source_ref, version, size)),
                    &[(from, name)],
                )?;
            }
            Ok(())
        })
    }

    /// Records `names` (store, name) as owed a delete, with `reason` and
    /// the version they belong to (none: an erasure, or not one version).
    /// Returns the row.
    fn owe<S: AsRef<str> + serde::Serialize>(
        &self,
        reason: &str,
        of: Option<(&str, i64, i64)>,
        names: &[(S, S)],
    ) -> Result<i64> {
        let pending = serde_json::to_string(names).expect("names serialise");
        let (source_ref, version, size) = of.map_or((None, None, None), |(r, v, s)| {
            (Some(r.to_string()), Some(v), Some(s))
        });
        self.db
            .query_row(
                "INSERT INTO deletions (reason, source_ref, version, size, at, pending) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                vals![reason, source_ref, version, size, now_secs(), pending],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Deletions not all done yet (forgotten or erased versions, moved
    /// shares' old copies): (row,
    /// [(store, name)]).
    pub fn pending_deletions(&self) -> Result<Vec<(i64, Vec<StoreName>)>> {
        let rows = self
            .db
            .query_map(
                "SELECT id, pending FROM deletions WHERE done_at IS NULL ORDER BY id",
                vals![],
                |r| Ok((r.get::<i64>(0)?, r.get::<String>(1)?)),
            )
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(id, json)| {
                let names = serde_json::from_str(&json).map_err(|e| {
                    ArchiveError::Failed(format!("deletions row {id}: bad share list: {e}"))
                })?;
                Ok((id, names))
            })
            .collect()
    }

    /// Records the shares of deletions row `id` still to delete; none left:
    /// done.
    pub fn set_pending_deletions(&self, id: i64, left: &[(String, String)]) -> Result<()> {
        let pending = serde_json::to_string(left).expect("names serialise");
        self.db
            .execute(
                "UPDATE deletions SET pending = ?2, \
                 done_at = CASE WHEN ?3 = 1 THEN CAST(?4 AS BIGINT) ELSE NULL END WHERE id = ?1",
                vals![id, pending, left.is_empty(), now_secs()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes a pending version that will never be written (its source is
    /// gone); the caller has deleted its leftover shares.
    pub fn forget_pending(&mut self, id: i64) -> Result<()> {
        self.in_transaction(|c| {
            c.db.execute("DELETE FROM placements WHERE object_id = ?1", vals![id])
                .map_err(|e| c.err(e))?;
            c.db.execute(
                "DELETE FROM objects WHERE id = ?1 AND state = 'pending'",
                vals![id],
            )
            .map_err(|e| c.err(e))?;
            Ok(())
        })
    }

    /// Sets version `id`'s state (`pending`, `degraded`, `written` or
    /// `verified`).
    pub fn set_state(&self, id: i64, state: &str) -> Result<()> {
        self.db
            .execute(
                "UPDATE objects SET state = ?2, last_error = NULL, updated_at = ?3 WHERE id = ?1",
                vals![id, state, now_secs()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records which shares landed: for each object its state (`written`,
    /// `degraded`) and the x of every share now in its store, in one
    /// transaction.
    pub fn set_landed(&mut self, landed: &[(i64, &str, Vec<u8>)]) -> Result<()> {
        self.set_landed_as(landed, None).map(|_| ())
    }

    /// [`Catalog::set_landed`] for a migrate worker: only the versions it
    /// still holds the lease of (`owner`) are recorded; returns the ids of
    /// those another worker took over meanwhile (their shares, just put,
    /// are the caller's to delete: the catalog names them nowhere now).
    pub fn set_landed_as(
        &mut self,
        landed: &[(i64, &str, Vec<u8>)],
        owner: Option<&str>,
    ) -> Result<Vec<i64>> {
        let lock = self.row_lock();
        self.in_transaction(|c| {
            let mut lost = Vec::new();
            for (id, state, xs) in landed {
                if let Some(owner) = owner {
                    let holder: Option<Option<String>> =
                        c.db.query_row(
                            &format!(
                                "SELECT lease_owner FROM objects WHERE id = ?1 \
                                 AND state = 'pending'{lock}"
                            ),
                            vals![id],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(|e| c.err(e))?;
                    if holder.flatten().as_deref() != Some(owner) {
                        lost.push(*id);
                        continue;
                    }
                }
                for &x in xs {
                    c.db.execute(
                        "UPDATE placements SET written = 1 WHERE object_id = ?1 AND x = ?2",
                        vals![id, x as i64],
                    )
                    .map_err(|e| c.err(e))?;
                }
                c.set_state(*id, state)?;
            }
            Ok(lost)
        })
    }

    /// ` FOR UPDATE` on PostgreSQL (the row stays locked to the end of the
    /// transaction); nothing on SQLite, whose write transaction already
    /// excludes every other writer.
    fn row_lock(&self) -> &'static str {
        match self.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// ` FOR UPDATE SKIP LOCKED` on PostgreSQL: a claim passes over rows
    /// another claim is taking; nothing on SQLite (claims are serialised).
    fn skip_locked(&self) -> &'static str {
        match self.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Claims pending versions of `source` for worker `owner` until `until`
    /// (Unix seconds): at most `objects` of them and `bytes` of source (at
    /// least one), oldest first, none another worker holds a live lease
    /// on, none that failed since `since` (this worker's start: it is not
    /// retried by the same run). PostgreSQL skips rows another claim is
    /// locking (`FOR UPDATE SKIP LOCKED`); SQLite's write lock serialises
    /// claims. Returns the claimed versions.
    #[allow(clippy::too_many_arguments)]
    pub fn claim(
        &mut self,
        source: &[u8],
        owner: &str,
        now: i64,
        until: i64,
        since: i64,
        objects: usize,
        bytes: u64,
    ) -> Result<Vec<ObjectRow>> {
        let skip = self.skip_locked();
        self.in_transaction(|c| {
            let candidates: Vec<(i64, u64)> =
                c.db.query_map(
                    &format!(
                        "SELECT id, size FROM objects WHERE state = 'pending' AND source = ?1 \
                         AND (lease_until IS NULL OR lease_until < ?2) \
                         AND NOT (last_error IS NOT NULL AND updated_at >= ?3) \
                         ORDER BY id LIMIT ?4{skip}"
                    ),
                    vals![source, now, since, objects as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(|e| c.err(e))?;
            let mut total = 0u64;
            let mut chosen = Vec::new();
            for (id, size) in candidates {
                if !chosen.is_empty() && total + size > bytes {
                    break;
                }
                total += size;
                chosen.push(id);
            }
            for id in &chosen {
                c.db.execute(
                    "UPDATE objects SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1",
                    vals![id, owner, until],
                )
                .map_err(|e| c.err(e))?;
            }
            // What this transaction just leased, in one query (the lease's
            // rows stay locked to the end of it, so no heartbeat moved
            // `until` meanwhile).
            c.db.query_map(
                &format!(
                    "SELECT {COLUMNS} FROM objects WHERE lease_owner = ?1 AND lease_until = ?2 \
                     AND state = 'pending' ORDER BY id"
                ),
                vals![owner, until],
                row,
            )
            .map_err(|e| c.err(e))
        })
    }

    /// Extends every lease `owner` holds (pending versions, and tasks of
    /// restore, verify and repair workers) to `until`; returns how many.
    pub fn renew_leases(&self, owner: &str, until: i64) -> Result<u64> {
        let objects = self
            .db
            .execute(
                "UPDATE objects SET lease_until = ?2 WHERE lease_owner = ?1 AND state = 'pending'",
                vals![owner, until],
            )
            .map_err(|e| self.err(e))?;
        let tasks = self
            .db
            .execute(
                "UPDATE tasks SET lease_until = ?2 WHERE lease_owner = ?1 AND done_at IS NULL",
                vals![owner, until],
            )
            .map_err(|e| self.err(e))?;
        Ok(objects + tasks)
    }

    /// Records the versions `ids` as the tasks of run `run` and `kind`
    /// (those already there stay as they are).
    pub fn seed_tasks(&mut self, run: &str, kind: &str, ids: &[i64]) -> Result<()> {
        self.in_transaction(|c| {
            for id in ids {
                c.db.execute(
                    "INSERT INTO tasks (run, kind, object_id) VALUES (?1, ?2, ?3) \
                     ON CONFLICT DO NOTHING",
                    vals![run, kind, id],
                )
                .map_err(|e| c.err(e))?;
            }
            Ok(())
        })
    }

    /// Claims up to `limit` undone tasks of (`run`, `kind`) nobody holds a
    /// live lease on, for `owner` until `until`; returns their version ids.
    pub fn claim_tasks(
        &mut self,
        run: &str,
        kind: &str,
        owner: &str,
        now: i64,
        until: i64,
        limit: usize,
    ) -> Result<Vec<i64>> {
        let skip = self.skip_locked();
        self.in_transaction(|c| {
            let ids: Vec<i64> =
                c.db.query_map(
                    &format!(
                        "SELECT object_id FROM tasks WHERE run = ?1 AND kind = ?2 \
                         AND done_at IS NULL AND (lease_until IS NULL OR lease_until < ?3) \
                         ORDER BY object_id LIMIT ?4{skip}"
                    ),
                    vals![run, kind, now, limit as i64],
                    |r| r.get(0),
                )
                .map_err(|e| c.err(e))?;
            for id in &ids {
                c.db.execute(
                    "UPDATE tasks SET lease_owner = ?4, lease_until = ?5 \
                     WHERE run = ?1 AND kind = ?2 AND object_id = ?3",
                    vals![run, kind, id, owner, until],
                )
                .map_err(|e| c.err(e))?;
            }
            Ok(ids)
        })
    }

    /// Marks tasks done.
    pub fn finish_tasks(&mut self, run: &str, kind: &str, ids: &[i64]) -> Result<()> {
        let now = now_secs();
        self.in_transaction(|c| {
            for id in ids {
                c.db.execute(
                    "UPDATE tasks SET done_at = ?4, lease_owner = NULL, lease_until = NULL \
                     WHERE run = ?1 AND kind = ?2 AND object_id = ?3",
                    vals![run, kind, id, now],
                )
                .map_err(|e| c.err(e))?;
            }
            Ok(())
        })
    }

    /// Undone tasks of (`run`, `kind`) under another worker's live lease.
    pub fn tasks_leased_by_others(
        &self,
        run: &str,
        kind: &str,
        owner: &str,
        now: i64,
    ) -> Result<u64> {
        self.db
            .query_row(
                "SELECT COUNT(*) FROM tasks WHERE run = ?1 AND kind = ?2 AND done_at IS NULL \
                 AND lease_until >= ?3 AND lease_owner <> ?4",
                vals![run, kind, now, owner],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Lets go of `owner`'s task leases (what it did not finish is claimed
    /// by another worker at once).
    pub fn release_tasks(&self, owner: &str) -> Result<()> {
        self.db
            .execute(
                "UPDATE tasks SET lease_owner = NULL, lease_until = NULL \
                 WHERE lease_owner = ?1 AND done_at IS NULL",
                vals![owner],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Of `ids`, those `owner` no longer holds the lease of (another worker
    /// took them over after it expired).
    pub fn leases_lost(&self, ids: &[i64], owner: &str) -> Result<Vec<i64>> {
        let held: std::collections::HashSet<i64> = self
            .db
            .query_map(
                "SELECT id FROM objects WHERE lease_owner = ?1 AND state = 'pending'",
                vals![owner],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?
            .into_iter()
            .collect();
        Ok(ids
            .iter()
            .copied()
            .filter(|id| !held.contains(id))
            .collect())
    }

    /// Lets go of every lease `owner` holds (what is still pending among
    /// them is for the next claim, or the next run).
    pub fn release_leases(&self, owner: &str) -> Result<()> {
        self.db
            .execute(
                "UPDATE objects SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?1",
                vals![owner],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Pending versions of `source` under a live lease of another worker.
    pub fn leased_by_others(&self, source: &[u8], owner: &str, now: i64) -> Result<u64> {
        self.db
            .query_row(
                "SELECT COUNT(*) FROM objects WHERE state = 'pending' AND source = ?1 \
                 AND lease_until >= ?2 AND lease_owner <> ?3",
                vals![source, now, owner],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Records worker `id`'s heartbeat and counts (a first one: its row).
    #[allow(clippy::too_many_arguments)]
    pub fn worker_heartbeat(
        &self,
        id: &str,
        source_ref: &str,
        started_at: i64,
        lease: i64,
        objects: u64,
        bytes: u64,
        finished: bool,
    ) -> Result<()> {
        let now = now_secs();
        self.db
            .execute(
                "INSERT INTO workers (id, source_ref, started_at, heartbeat_at, lease, objects, \
                 bytes, finished_at) VALUES (?1, ?2, ?3, ?4, ?8, ?5, ?6, CASE WHEN ?7 = 1 THEN \
                 CAST(?4 AS BIGINT) ELSE NULL END) ON CONFLICT (id) DO UPDATE SET \
                 heartbeat_at = excluded.heartbeat_at, objects = excluded.objects, \
                 bytes = excluded.bytes, finished_at = excluded.finished_at",
                vals![
                    id, source_ref, started_at, now, objects, bytes, finished, lease
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets the rows of workers that started before `cutoff`.
    pub fn prune_workers(&self, cutoff: i64) -> Result<()> {
        self.db
            .execute("DELETE FROM workers WHERE started_at < ?1", vals![cutoff])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every worker's row: (id, source, started, heartbeat, finished,
    /// objects, bytes), newest first.
    pub fn workers(&self) -> Result<Vec<WorkerRow>> {
        self.db
            .query_map(
                "SELECT id, source_ref, started_at, heartbeat_at, finished_at, objects, bytes, \
                 lease FROM workers ORDER BY started_at DESC, id",
                vals![],
                |r| {
                    Ok(WorkerRow {
                        id: r.get(0)?,
                        source_ref: r.get(1)?,
                        started_at: r.get(2)?,
                        heartbeat_at: r.get(3)?,
                        finished_at: r.get(4)?,
                        objects: r.get(5)?,
                        bytes: r.get(6)?,
                        lease: r.get(7)?,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    /// Pending versions under a live lease (status).
    pub fn live_leases(&self, now: i64) -> Result<u64> {
        self.db
            .query_row(
                "SELECT COUNT(*) FROM objects WHERE state = 'pending' AND lease_until >= ?1",
                vals![now],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Records why version `id` failed this run (it stays pending).
    pub fn set_error(&self, id: i64, error: &str) -> Result<()> {
        self.db
            .execute(
                "UPDATE objects SET last_error = ?2, updated_at = ?3 WHERE id = ?1",
                vals![id, error, now_secs()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every share name the catalog places in `store` (any state: a pending
    /// attempt's names are not orphans).
    pub fn placement_names(&self, store: &str) -> Result<std::collections::HashSet<String>> {
        self.db
            .query_map(
                "SELECT name FROM placements WHERE store = ?1",
                vals![store],
                |r| r.get(0),
            )
            .map(|rows| rows.into_iter().collect())
            .map_err(|e| self.err(e))
    }

    /// Shares the catalog says are in `store`.
    pub fn written_placements(&self, store: &str) -> Result<u64> {
        self.db
            .query_row(
                "SELECT COUNT(*) FROM placements WHERE store = ?1 AND written = 1",
                vals![store],
                |r| r.get::<i64>(0).map(|n| n as u64),
            )
            .map_err(|e| self.err(e))
    }

    /// How many stored versions were split with each (t, n); (0, 0): not
    /// recorded (from before umbra recorded it).
    pub fn split_shapes(&self) -> Result<Vec<((usize, usize), u64)>> {
        self.db
            .query_map(
                &format!(
                    "SELECT COALESCE(split_t, 0), COALESCE(split_n, 0), COUNT(*) FROM objects \
                 WHERE state IN ({STORED}) GROUP BY 1, 2 ORDER BY 1, 2"
                ),
                vals![],
                |r| {
                    Ok((
                        (r.get::<i64>(0)? as usize, r.get::<i64>(1)? as usize),
                        r.get::<i64>(2)? as u64,
                    ))
                },
            )
            .map_err(|e| self.err(e))
    }

    /// How many stored versions, and source bytes, each scheme holds
    /// ("shamir" for versions from before the scheme was recorded).
    pub fn scheme_counts(&self) -> Result<Vec<(String, u64, u64)>> {
        self.db
            .query_map(
                &format!(
                    "SELECT COALESCE(split_scheme, 'shamir'), COUNT(*), \
                 CAST(COALESCE(SUM(size), 0) AS BIGINT) \
                 FROM objects WHERE state IN ({STORED}) GROUP BY 1 ORDER BY 1"
                ),
                vals![],
                |r| {
                    Ok((
                        r.get::<String>(0)?,
                        r.get::<i64>(1)? as u64,
                        r.get::<i64>(2)? as u64,
                    ))
                },
            )
            .map_err(|e| self.err(e))
    }

    /// Source bytes of the stored versions, and how many there are.
    pub fn stored_bytes(&self) -> Result<(u64, u64)> {
        self.db
            .query_row(
                &format!(
                    "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT), COUNT(*) FROM objects \
                     WHERE state IN ({STORED})"
                ),
                vals![],
                |r| Ok((r.get::<i64>(0)? as u64, r.get::<i64>(1)? as u64)),
            )
            .map_err(|e| self.err(e))
    }

    /// Every store the placements name, with the number of object versions
    /// that have shares there.
    pub fn placement_stores(&self) -> Result<Vec<(String, u64)>> {
        self.db
            .query_map(
                "SELECT store, COUNT(DISTINCT object_id) FROM placements GROUP BY store",
                vals![],
                |r| Ok((r.get::<String>(0)?, r.get::<u64>(1)?)),
            )
            .map_err(|e| self.err(e))
    }

    /// Remembers an object a run's selection left out, to look at it again
    /// next run (Orthanc: the change cursor moves past it).
    pub fn defer(&self, source: &[u8], path: &[u8]) -> Result<()> {
        self.db
            .execute(
                "INSERT INTO deferred (source, path, since) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
                vals![source, path, now_secs()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets a deferred object: archived, or gone from its source.
    pub fn undefer(&self, source: &[u8], path: &[u8]) -> Result<()> {
        self.db
            .execute(
                "DELETE FROM deferred WHERE source = ?1 AND path = ?2",
                vals![source, path],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The deferred objects of `source`.
    pub fn deferred(&self, source: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.db
            .query_map(
                "SELECT path FROM deferred WHERE source = ?1 ORDER BY since, path",
                vals![source],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// The lines of audit chain `chain` (the `audit` table of a shared
    /// catalog), in order.
    pub fn audit_lines(&self, chain: &str) -> Result<Vec<String>> {
        self.db
            .query_map(
                "SELECT line FROM audit WHERE chain = ?1 ORDER BY seq",
                vals![chain],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Appends line `seq` to audit chain `chain`.
    pub fn audit_insert(&self, chain: &str, seq: u64, line: &str) -> Result<()> {
        self.db
            .execute(
                "INSERT INTO audit (chain, seq, line) VALUES (?1, ?2, ?3)",
                vals![chain, seq, line],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Renames audit chain `from` to `to` (set aside after a break or a
    /// key rotation).
    pub fn audit_set_aside(&self, from: &str, to: &str) -> Result<()> {
        self.db
            .execute(
                "UPDATE audit SET chain = ?2 WHERE chain = ?1",
                vals![from, to],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Runs `f` in one transaction that holds the audit chain's lock (one
    /// appender at a time, whichever machine it runs on).
    pub fn audit_transaction<T>(&self, f: impl FnOnce(&Catalog) -> Result<T>) -> Result<T> {
        self.db.begin().map_err(|e| self.err(e))?;
        let run = (|| {
            if self.dialect() == Dialect::Postgres {
                self.db
                    .execute(
                        "SELECT pg_advisory_xact_lock(hashtext(current_schema() || ' umbra audit'))",
                        vals![],
                    )
                    .map_err(|e| self.err(e))?;
            }
            f(self)
        })();
        match run {
            Ok(v) => {
                self.db.batch("COMMIT").map_err(|e| self.err(e))?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.db.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// A value of the catalog's key-value table (cursors, the audit head).
    pub fn get_meta(&self, key: &str) -> Result<Option<String>> {
        self.db
            .query_row("SELECT value FROM meta WHERE key = ?1", vals![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets a value of the catalog's key-value table.
    pub fn delete_meta(&self, key: &str) -> Result<()> {
        self.db
            .execute("DELETE FROM meta WHERE key = ?1", vals![key])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.db
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                vals![key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Location;

    /// A catalog name is a file unless it is a URL or libpq's key=value form.
    #[test]
    fn connection_strings_are_told_from_file_names() {
        for pg in [
            "postgresql://umbra@db/pacs",
            "postgres://db/pacs?sslmode=require",
            "host=db port=5432 dbname=pacs user=umbra",
            "dbname=pacs",
        ] {
            assert!(Location::is_postgres(pg), "{pg}");
        }
        for file in [
            "catalog.sqlite",
            "/var/lib/umbra/catalog.sqlite",
            "my catalog.sqlite",
            "",
        ] {
            assert!(!Location::is_postgres(file), "{file}");
        }
    }
}
