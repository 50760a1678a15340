//! `umbra migrate --worker`: one of many processes migrating one source
//! together, each claiming groups of pending versions from the shared
//! catalog (docs/SCALE.md). Kubernetes or Slurm starts and restarts them;
//! the catalog is the work queue and nothing else coordinates them.
//!
//! - The scan (listing the source, recording new and changed objects as
//!   pending) runs in one worker at a time, under the scan lock (an
//!   advisory lock on PostgreSQL, a lock file beside a SQLite catalog). A
//!   source is scanned once per run: with a run id (`--run-id`, from
//!   `UMBRA_RUN_ID` or Slurm's array job id) once per id; without one, once
//!   after the worker started. Workers claim pending versions while the
//!   scan is still recording them.
//! - A claim takes up to two groups of pending versions nobody holds a
//!   live lease on, and leases them to this worker (owner
//!   `INDEX@HOST/PID-RANDOM`, expiry now + `--lease`); a heartbeat thread
//!   renews the leases every third of the lease, and records the worker's
//!   counts for `umbra status`.
//! - A claimed version goes through the same steps as in a single migrate
//!   (its earlier attempt's shares deleted, a fresh split recorded, shares
//!   put create-only, then written). A worker killed anywhere leaves
//!   pending versions whose lease runs out; another worker claims them and
//!   deletes the dead attempt's shares first, as a resumed migrate does.
//! - Fencing: before recording a split and when recording what landed, the
//!   worker checks it still holds the lease; a version taken over by
//!   another worker (this one stalled past its lease) is left to it, and
//!   the shares this worker put for it are deleted.
//! - A worker ends when the scan is done and no pending version of the
//!   source is claimable or leased by another live worker (so a worker
//!   that dies at the end still has its work taken over). The last one to
//!   take the scan lock completes degraded versions and owed deletes.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;

use super::{GROUP_BYTES, MigrateOptions, MigrateReport, ScanContext};
use crate::archive::error::{ArchiveError, At, Result};
use crate::archive::open::{Archive, BackendFactory, LockMode, WORKER_STAGING};
use crate::archive::shard::{heartbeat, once_needed, once_record, owner_name};
use crate::archive::source::SourceSpec;
use crate::archive::time::now_secs;
use crate::engine::Backend;

pub use crate::archive::shard::WorkerOptions;

/// Groups a claim takes at most: two keep the split-while-putting pipeline
/// of a single migrate busy (one is split while the other is put); more
/// would leave the last workers of a run idle while one finishes a big claim.
const CLAIM_GROUPS: usize = 2;

impl Archive {
    /// `umbra migrate --worker` (see the module's documentation).
    pub(crate) fn migrate_worker(
        &mut self,
        opts: &MigrateOptions,
        worker: &WorkerOptions,
        make_backend: BackendFactory<'_>,
    ) -> Result<MigrateReport> {
        if let SourceSpec::Orthanc(_) = opts.source {
            return Err(ArchiveError::Unsupported(
                "migrate --worker takes a folder source that every worker sees at the same \
                 path (a shared file system): an Orthanc source's instances are downloaded by \
                 the scan into one machine's cache. Run one plain migrate per Orthanc"
                    .into(),
            ));
        }
        if opts.dry_run {
            return Err(ArchiveError::Unsupported(
                "--dry-run with --worker: a dry run writes nothing to share; run it without \
                 --worker"
                    .into(),
            ));
        }
        self.lock_as(LockMode::Shared)?;
        let owner = owner_name(worker.index.as_deref())?;
        // Its own staging directory: other workers on this machine share
        // the archive's.
        let staging = self
            .staging()
            .join(format!("{WORKER_STAGING}{}", owner.replace('/', "-")));
        std::fs::create_dir_all(&staging).at(&staging)?;
        self.worker_staging = Some(staging.clone());
        self.worker = Some(owner.clone());
        let result = self.run_worker(opts, worker, &owner, make_backend);
        self.worker = None;
        self.worker_staging = None;
        let _ = std::fs::remove_dir_all(&staging);
        result
    }

    fn run_worker(
        &self,
        opts: &MigrateOptions,
        worker: &WorkerOptions,
        owner: &str,
        make_backend: BackendFactory<'_>,
    ) -> Result<MigrateReport> {
        let mut cat = self.catalog()?;
        self.check_catalog_stores(&cat)?;
        let started = now_secs();
        let source = opts.source.key()?;
        let source_ref = String::from_utf8_lossy(&source).into_owned();
        let root = PathBuf::from(std::ffi::OsStr::from_bytes(&source));
        let scan_key = format!("scan {}", &blake3::hash(&source).to_hex()[..16]);
        let lease = worker.lease.as_secs().max(3) as i64;
        let ctx = ScanContext {
            source: source.clone(),
            filter: &opts.filter,
            now: started,
            dry_run: false,
            rehash: opts.rehash,
        };
        let mut report = MigrateReport::default();
        // A month of workers' rows is what status may show.
        cat.prune_workers(started - 30 * 86_400)?;
        cat.worker_heartbeat(owner, &source_ref, started, lease, 0, 0, false)?;
        let at = self.catalog_location()?;
        let stop = AtomicBool::new(false);
        let counts = [AtomicU64::new(0), AtomicU64::new(0)];
        let mut backend: Option<Box<dyn Backend>> = None;
        let mut scanned_here = false;
        let looped = std::thread::scope(|scope| -> Result<Option<String>> {
            let beat =
                scope.spawn(|| heartbeat(&at, owner, &source_ref, started, lease, &stop, &counts));
            let run = (|| -> Result<()> {
                let mut scan_done = false;
                loop {
                    if !scan_done {
                        if let Some(guard) = self.try_once_lock(&cat)? {
                            let needed =
                                once_needed(&cat, &scan_key, worker.run_id.as_deref(), started);
                            let scanned = match needed {
                                Ok(true) => {
                                    let record = |finished: Option<i64>| {
                                        once_record(worker.run_id.as_deref(), owner, finished)
                                    };
                                    cat.set_meta(&scan_key, &record(None))
                                        .and_then(|_| {
                                            self.scan_source(&mut cat, opts, &ctx, &mut report)
                                        })
                                        .and_then(|_| {
                                            cat.set_meta(&scan_key, &record(Some(now_secs())))
                                        })
                                        .map(|_| true)
                                }
                                Ok(false) => Ok(false),
                                Err(e) => Err(e),
                            };
                            self.release_once_lock(&cat, guard)?;
                            scanned_here |= scanned?;
                            scan_done = true;
                        } else if !once_needed(&cat, &scan_key, worker.run_id.as_deref(), started)?
                        {
                            scan_done = true;
                        }
                    }
                    let now = now_secs();
                    let rows = cat.claim(
                        &source,
                        owner,
                        now,
                        now + lease,
                        started,
                        opts.group.max(1) * CLAIM_GROUPS,
                        GROUP_BYTES * CLAIM_GROUPS as u64,
                    )?;
                    if !rows.is_empty() {
                        if backend.is_none() {
                            let bytes =
                                rows.iter().map(|r| r.size).sum::<u64>() * CLAIM_GROUPS as u64;
                            backend = Some(make_backend(bytes).map_err(ArchiveError::Failed)?);
                        }
                        let b = backend.as_deref().expect("made above");
                        let written =
                            self.write_pending(&mut cat, b, &root, &rows, opts, &mut report);
                        cat.release_leases(owner)?;
                        written?;
                        counts[0].store(report.written, Ordering::Relaxed);
                        counts[1].store(report.bytes_written, Ordering::Relaxed);
                        continue;
                    }
                    if scan_done && cat.leased_by_others(&source, owner, now)? == 0 {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            })();
            stop.store(true, Ordering::Relaxed);
            let beat_error = beat.join().expect("the heartbeat thread panicked");
            // A worker that stops on an error lets go of its claims at
            // once rather than after its lease.
            let _ = cat.release_leases(owner);
            run.map(|_| beat_error)
        })?;
        if let Some(e) = looped {
            report
                .warnings
                .push(format!("the worker's last heartbeat failed: {e}"));
        }
        // Whoever holds the scan lock last completes degraded versions and
        // deletes what is owed (both idempotent).
        if let Some(guard) = self.try_once_lock(&cat)? {
            let finish = (|| -> Result<()> {
                let degraded = cat.in_state("degraded")?;
                if !degraded.is_empty() {
                    if backend.is_none() {
                        let bytes = degraded.iter().map(|r| r.size).sum();
                        backend = Some(make_backend(bytes).map_err(ArchiveError::Failed)?);
                    }
                    let b = backend.as_deref().expect("made above");
                    let (completed, still) = self.complete_degraded(&mut cat, &degraded, b)?;
                    report.completed = completed;
                    report.degraded += still.len() as u64;
                    report.degraded_objects.extend(still);
                }
                self.delete_owed(&cat, &mut report)
            })();
            self.release_once_lock(&cat, guard)?;
            finish?;
        }
        cat.worker_heartbeat(
            owner,
            &source_ref,
            started,
            lease,
            report.written,
            report.bytes_written,
            true,
        )?;
        self.audit_migrate(
            &cat,
            &mut report,
            json!({ "worker": owner, "scan": scanned_here }),
        );
        report.worker = Some(owner.to_string());
        Ok(report)
    }
}
