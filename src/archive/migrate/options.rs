//! What a migrate run is asked to do, and what it reports.

use serde::Serialize;

use crate::archive::source::{Filter, SourceSpec};

/// What a migrate run is asked to do.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    pub source: SourceSpec,
    pub filter: Filter,
    pub dry_run: bool,
    /// Orthanc: list every instance instead of following `/changes` from
    /// the stored cursor (the first run always does).
    pub full_scan: bool,
    /// Objects written and made durable together (see [`DEFAULT_GROUP`]).
    pub group: usize,
    /// Read and hash every file, instead of trusting an unchanged size,
    /// mtime, ctime and inode.
    pub rehash: bool,
    /// gitignore-style patterns of files and directories to leave out
    /// (folder sources).
    pub exclude: Vec<String>,
    /// gitignore-style patterns: if any, only matching files are taken.
    pub include: Vec<String>,
    /// One of many workers (`--worker`, docs/SCALE.md), else alone.
    pub worker: Option<crate::archive::shard::WorkerOptions>,
}

/// What a migrate run did, object by object counted (`--json` prints it).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateReport {
    pub dry_run: bool,
    /// Files found under the source.
    pub scanned: u64,
    /// Files whose latest version is already recorded.
    pub unchanged: u64,
    /// Files the selection (--older-than, --modality) left out.
    pub not_selected: u64,
    /// Files and directories left out by --exclude / --include.
    pub excluded: u64,
    /// Entries not taken, with why: symbolic links (never followed),
    /// special files, the archive's own directories.
    pub skipped: Vec<String>,
    /// New objects or new versions of changed ones recorded in this run.
    pub new_versions: u64,
    /// Versions whose shares were written in this run (all n, or at least
    /// the write quorum: see `degraded`).
    pub written: u64,
    /// Of those, versions with some shares missing (their stores were
    /// down): protected, but with less to spare until completed.
    pub degraded: u64,
    /// Degraded versions of earlier runs whose missing shares this run
    /// completed.
    pub completed: u64,
    pub bytes_written: u64,
    /// Versions that failed (they stay pending and are retried next run).
    pub failed: u64,
    /// Pending versions whose source file disappeared before they were
    /// written: forgotten.
    pub vanished: u64,
    /// Archived objects no longer in the source (folders: every run;
    /// Orthanc: full scans). Their shares are kept; the catalog records
    /// since when they are gone, for `forget --gone-for`.
    pub gone_from_source: u64,
    /// Orthanc: whether every instance was listed (else `/changes` only).
    pub full_scan: bool,
    /// Shares of versions forgotten or erased by an earlier run, deleted by
    /// this one (their store did not answer then), and those still left.
    pub forgotten_shares_deleted: u64,
    pub forgotten_shares_pending: u64,
    pub warnings: Vec<String>,
    pub failures: Vec<String>,
    /// Each vanished version's path.
    pub vanished_objects: Vec<String>,
    /// Why the run could not be recorded in the audit log, if it could not.
    pub audit_error: Option<String>,
    /// Each degraded version, with what is missing.
    pub degraded_objects: Vec<String>,
    /// --dry-run: what a real run would write, and why.
    pub would_write: Vec<WouldWrite>,
    /// --dry-run: the source bytes of `would_write` (each is shared into n
    /// shares of its size).
    pub would_write_bytes: u64,
    /// `--worker`: the lease owner name this worker went by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

/// An object a real run would write (--dry-run).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WouldWrite {
    pub path: String,
    pub size: u64,
    /// `new`, `changed`, `pending` (recorded by an earlier run, not yet
    /// written) or `degraded` (its missing shares completed).
    pub reason: &'static str,
}

/// Objects written and made durable together, by default.
pub const DEFAULT_GROUP: usize = 64;
