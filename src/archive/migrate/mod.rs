//! The archive operations: init, migrate, restore, verify, repair.
//!
//! Crash safety of `migrate`, step by step for one object version:
//! 1. the version is recorded `pending` in the catalog (a changed file with
//!    its BLAKE3; a new one is not read until step 4, which takes it);
//! 2. shares of an earlier attempt, named in the catalog, are deleted;
//! 3. a fresh split id, the n store names (from the BLAKE3) and a new
//!    file's BLAKE3 are committed to the catalog;
//! 4. the shares are computed into a staging directory (no plaintext there;
//!    small objects are read whole and split many per engine call, larger
//!    ones stream);
//! 5. each share is put create-only and atomically into its store, and is
//!    on disk before its name is (local stores: `syncfs` of the staging file
//!    system before the link, and of the store's after it);
//! 6. the version is marked `written`.
//!
//! Objects go through steps 2-6 in groups (`--group`, default 64 objects or
//! 256 MiB): one catalog commit per step and one file system sync per store
//! per group, where one object at a time would wait for 2n + 2 syncs each.
//! Steps 2 and 4 may run before step 3 (nothing reaches a store before it),
//! so that one group is split while the stores take the one before.
//!
//! A run killed anywhere leaves at most `pending` versions whose shares are
//! all named in the catalog: the next run deletes them and starts those
//! objects again (step 2), so nothing is lost and nothing is left twice.
//! Names come from a fresh random split id per attempt, so a share of one
//! attempt is never mistaken for another's.

pub mod options;
pub mod put;
pub mod scan;
pub mod stage;
pub mod worker;

pub use options::{DEFAULT_GROUP, MigrateOptions, MigrateReport, WouldWrite};

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::archive::catalog::{Catalog, ObjectRow, SplitBegun};
use crate::archive::error::{ArchiveError, Result};
use crate::archive::migrate::put::PutErrors;
use crate::archive::migrate::scan::ScanContext;
use crate::archive::migrate::stage::{SplitMemory, Staged};
use crate::archive::open::{Archive, BackendFactory};
use crate::archive::source::{self, SourceSpec, WalkRules};
use crate::archive::time::now_secs;
use crate::engine::Backend;
use crate::share::format::hex;

/// A group also ends once it holds this many source bytes.
const GROUP_BYTES: u64 = 256 << 20;

/// Consecutive groups of at most `objects` rows and (unless one row is
/// bigger) `bytes` bytes, each with the run's number of its first row.
fn groups(rows: &[ObjectRow], objects: usize, bytes: u64) -> Vec<(usize, &[ObjectRow])> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        let mut size = rows[start].size;
        while end < rows.len() && end - start < objects && size + rows[end].size <= bytes {
            size += rows[end].size;
            end += 1;
        }
        out.push((start + 1, &rows[start..end]));
        start = end;
    }
    out
}

impl Archive {
    /// Records new and changed objects of the source, then writes the shares
    /// of every pending version. A failing object is recorded and left
    /// pending; it never stops the run.
    pub fn migrate(
        &mut self,
        opts: &MigrateOptions,
        make_backend: BackendFactory<'_>,
    ) -> Result<MigrateReport> {
        if let Some(w) = &opts.worker {
            return self.migrate_worker(opts, w, make_backend);
        }
        self.lock()?;
        let mut cat = self.catalog()?;
        self.check_catalog_stores(&cat)?;
        let mut report = MigrateReport {
            dry_run: opts.dry_run,
            ..Default::default()
        };
        let source = opts.source.key()?;
        let ctx = ScanContext {
            source: source.clone(),
            filter: &opts.filter,
            now: now_secs(),
            dry_run: opts.dry_run,
            rehash: opts.rehash,
        };
        let source_root = self.scan_source(&mut cat, opts, &ctx, &mut report)?;
        // This source's pending versions only: another source's files are
        // found under its own root, on its own runs.
        let pending = cat.pending(&source)?;
        if opts.dry_run {
            self.clean_cache(&cat, &opts.source, &source)?;
            let listed: std::collections::HashSet<String> =
                report.would_write.iter().map(|w| w.path.clone()).collect();
            let earlier = pending.iter().map(|r| (r, "pending"));
            let degraded = cat.in_state("degraded")?;
            for (row, reason) in earlier.chain(degraded.iter().map(|r| (r, "degraded"))) {
                if !listed.contains(&row.source_ref) {
                    report.would_write.push(WouldWrite {
                        path: row.source_ref.clone(),
                        size: row.size,
                        reason,
                    });
                    report.would_write_bytes += row.size;
                }
            }
            return Ok(report);
        }
        // Degraded versions of earlier runs: their missing shares are
        // completed once this run's pending ones are written.
        let degraded = cat.in_state("degraded")?;
        let total_bytes: u64 = pending.iter().chain(&degraded).map(|r| r.size).sum();
        let backend = if pending.is_empty() && degraded.is_empty() {
            None
        } else {
            Some(make_backend(total_bytes).map_err(ArchiveError::Failed)?)
        };
        if let Some(backend) = backend.as_deref() {
            self.write_pending(&mut cat, backend, &source_root, &pending, opts, &mut report)?;
            let (completed, still) = self.complete_degraded(&mut cat, &degraded, backend)?;
            report.completed = completed;
            report.degraded += still.len() as u64;
            report.degraded_objects.extend(still);
        }
        self.clean_cache(&cat, &opts.source, &source)?;
        self.delete_owed(&cat, &mut report)?;
        self.audit_migrate(&cat, &mut report, json!({}));
        Ok(report)
    }

    /// Deletes what a forget, erase or move could not delete then (its
    /// store was down), as every migrate does at its end.
    fn delete_owed(&self, cat: &Catalog, report: &mut MigrateReport) -> Result<()> {
        if !cat.pending_deletions()?.is_empty() {
            let mut deletions = crate::archive::forget::ForgetReport::default();
            self.delete_forgotten(cat, &mut deletions)?;
            report.forgotten_shares_deleted = deletions.shares_deleted;
            report.forgotten_shares_pending = deletions.shares_pending;
            report.warnings.extend(deletions.problems);
        }
        Ok(())
    }

    /// The run's audit entry: its counts, and `extra` (a worker's name).
    /// The shares are written either way: a log that cannot take the entry
    /// is reported, never a reason to stop protecting objects.
    fn audit_migrate(&self, cat: &Catalog, report: &mut MigrateReport, extra: serde_json::Value) {
        let mut details = json!({
            "scanned": report.scanned,
            "new_versions": report.new_versions,
            "written": report.written,
            "bytes_written": report.bytes_written,
            "degraded": report.degraded,
            "completed": report.completed,
            "failed": report.failed,
        });
        if let (Some(d), Some(e)) = (details.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        let entry = self
            .audit()
            .and_then(|log| log.append(Some(cat), "migrate", details));
        report.audit_error = entry
            .err()
            .map(|e| format!("this run is not in the audit log: {e}"));
    }

    /// Lists the source and records its new and changed objects (pending)
    /// and the paths gone from it; returns where the pending versions' bytes
    /// are read from (the folder, or the Orthanc download cache).
    fn scan_source(
        &self,
        cat: &mut Catalog,
        opts: &MigrateOptions,
        ctx: &ScanContext<'_>,
        report: &mut MigrateReport,
    ) -> Result<PathBuf> {
        let source = ctx.source.as_slice();
        Ok(match &opts.source {
            SourceSpec::Dir(_) => {
                let root = PathBuf::from(std::ffi::OsStr::from_bytes(source));
                let mut skip_dirs = vec![self.dir.clone(), self.staging()];
                skip_dirs.extend(
                    self.stores
                        .iter()
                        .filter_map(|s| s.local_root())
                        .map(Path::to_path_buf),
                );
                let rules = WalkRules {
                    skip_dirs,
                    exclude: opts.exclude.clone(),
                    include: opts.include.clone(),
                };
                self.meter.begin("listing", 0, 0);
                let walk = source::walk(&root, &rules)?;
                report.scanned += walk.files.len() as u64;
                report.excluded = walk.excluded;
                report.skipped = walk.skipped;
                for u in walk.unreadable {
                    report.failed += 1;
                    report.failures.push(format!(
                        "directory {u}: its files are not protected this run"
                    ));
                }
                self.meter.begin("scanning", walk.files.len() as u64, 0);
                for chunk in walk.files.chunks(scan::SCAN_CHUNK) {
                    self.scan_files(cat, ctx, chunk, true, report)?;
                    self.meter.advance(chunk.len() as u64, 0);
                }
                stage::pause_point("scanned", 0);
                // Archived paths this walk did not find and that are not
                // there (an excluded file or an unreadable directory is):
                // gone from the source, since the first run that saw it.
                let listed: std::collections::HashSet<&[u8]> =
                    walk.files.iter().map(|f| f.rel.as_slice()).collect();
                let missing: Vec<Vec<u8>> = cat
                    .paths_of(source)?
                    .into_iter()
                    .filter(|p| !listed.contains(p.as_slice()))
                    .filter(|p| {
                        matches!(
                            std::fs::symlink_metadata(source::folder::join_bytes(&root, p)),
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound
                        )
                    })
                    .collect();
                report.gone_from_source = if opts.dry_run {
                    missing.len() as u64
                } else {
                    cat.record_gone(source, &missing)?
                };
                root
            }
            SourceSpec::Orthanc(url) => {
                let cache = self.orthanc_cache(source);
                let orthanc = self.orthanc(url)?;
                self.scan_orthanc(cat, ctx, &orthanc, &cache, opts.full_scan, report)?;
                cache
            }
        })
    }

    /// Writes the shares of every pending version, a group at a time, as a
    /// two-stage pipeline: while the stores take group g's shares (and wait
    /// for the disk or the network), group g+1 is read and split.
    ///
    /// Per group: shares of earlier attempts deleted and new secrets drawn;
    /// the splits run in parallel into the staging directory; one catalog
    /// commit records the new splits; each store takes its shares of the
    /// whole group with one durable commit; one catalog commit marks them
    /// written. A failing object is recorded and left pending.
    #[allow(clippy::too_many_arguments)]
    fn write_pending(
        &self,
        cat: &mut Catalog,
        backend: &dyn Backend,
        source_root: &Path,
        pending: &[ObjectRow],
        opts: &MigrateOptions,
        report: &mut MigrateReport,
    ) -> Result<()> {
        let total: u64 = pending.iter().map(|r| r.size).sum();
        self.meter.begin("writing", pending.len() as u64, total);
        // The splits' buffers, kept for the whole run.
        let memory = SplitMemory::default();
        std::thread::scope(|scope| -> Result<()> {
            let mut in_flight: Option<(Staged<'_>, std::thread::ScopedJoinHandle<'_, PutErrors>)> =
                None;
            let finish = |cat: &mut Catalog,
                          staged: Staged<'_>,
                          handle: std::thread::ScopedJoinHandle<'_, PutErrors>,
                          report: &mut MigrateReport|
             -> Result<()> {
                let put_errors = handle.join().expect("the put thread panicked");
                let (objects, bytes) = (staged.group.len() as u64, staged.bytes());
                self.record_group(cat, staged, put_errors, report)?;
                self.meter.advance(objects, bytes);
                Ok(())
            };
            for (first, group) in groups(pending, opts.group.max(1), GROUP_BYTES) {
                let staged =
                    self.stage_group(cat, &memory, backend, source_root, group, first, report)?;
                if let Some((prev, handle)) = in_flight.take() {
                    finish(cat, prev, handle, report)?;
                }
                // Every share of a split is as long as its first. A split
                // that failed before a new file's BLAKE3 was known has no
                // names: nothing of it reached a store.
                let splits: Vec<SplitBegun<'_>> = staged
                    .jobs
                    .iter()
                    .zip(&staged.files)
                    .map(|(j, files)| {
                        let bytes = files
                            .as_ref()
                            .ok()
                            .and_then(|f| f.first())
                            .and_then(|f| std::fs::metadata(f).ok())
                            .map(|m| m.len());
                        SplitBegun {
                            id: j.row.id,
                            split_id: hex(&j.secrets.split_id),
                            placements: &j.placements,
                            share_bytes: bytes,
                            content: j.content.map(|c| hex(&c)),
                        }
                    })
                    .collect();
                if let Some(owner) = &self.worker {
                    // Fencing: nothing of a version another worker took
                    // over reaches the catalog or a store.
                    let ids: Vec<i64> = splits.iter().map(|s| s.id).collect();
                    let lost = cat.leases_lost(&ids, owner)?;
                    if !lost.is_empty() {
                        return Err(ArchiveError::Failed(format!(
                            "worker {owner}: the lease on {} version(s) ran out and another \
                             worker took them over (this one stalled longer than --lease); \
                             stopping",
                            lost.len()
                        )));
                    }
                }
                cat.begin_splits(self.layout.threshold, self.layout.scheme, &splits)?;
                let items = self.put_items(&staged)?;
                let ks: Vec<usize> = staged.jobs.iter().map(|j| j.k).collect();
                let handle = scope.spawn(move || self.put_group(items, &ks));
                in_flight = Some((staged, handle));
            }
            if let Some((prev, handle)) = in_flight.take() {
                finish(cat, prev, handle, report)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::catalog::Identity;

    pub(super) fn rows(sizes: &[u64]) -> Vec<ObjectRow> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| ObjectRow {
                id: i as i64 + 1,
                source: b"/src".to_vec(),
                path: format!("f{i}").into_bytes(),
                source_ref: format!("f{i}"),
                version: 1,
                size,
                blake3: String::new(),
                change_sig: 0,
                ctime_ns: 0,
                inode: 0,
                kind: "file".into(),
                ids: Identity::default(),
                split_id: None,
                state: "pending".into(),
                attempts: 0,
                last_error: None,
            })
            .collect()
    }

    fn shape(rows: &[ObjectRow], objects: usize, bytes: u64) -> Vec<(usize, usize)> {
        groups(rows, objects, bytes)
            .into_iter()
            .map(|(first, g)| (first, g.len()))
            .collect()
    }

    #[test]
    fn groups_cut_by_count_and_bytes() {
        let r = rows(&[10, 10, 10, 10, 10]);
        assert_eq!(shape(&r, 2, 1000), vec![(1, 2), (3, 2), (5, 1)]);
        assert_eq!(shape(&r, 64, 25), vec![(1, 2), (3, 2), (5, 1)]);
        assert_eq!(
            shape(&r, 1, 1000),
            vec![(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)]
        );
        // An object bigger than the byte limit goes alone.
        let r = rows(&[5, 100, 5, 5]);
        assert_eq!(shape(&r, 64, 20), vec![(1, 1), (2, 1), (3, 2)]);
        assert!(groups(&[], 64, 20).is_empty());
    }
}
