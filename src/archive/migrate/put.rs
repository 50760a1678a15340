//! Putting a staged group into the stores, each store in one durable
//! commit, and recording which objects landed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::archive::catalog::Catalog;
use crate::archive::error::{ArchiveError, Result, store_err};
use crate::archive::migrate::options::MigrateReport;
use crate::archive::migrate::stage::{Staged, pause_point};
use crate::archive::open::Archive;

/// Failed puts: the job, the share's x, and the error naming store and
/// object.
pub(crate) type PutErrors = Vec<(usize, u8, ArchiveError)>;

/// One share to put: its job, its x, its name in the store, its staged file.
pub(crate) type PutItem = (usize, u8, String, PathBuf);

impl Archive {
    /// Each store's shares of every staged object that split.
    pub(crate) fn put_items(&self, staged: &Staged<'_>) -> Result<Vec<Vec<PutItem>>> {
        let mut per_store = vec![Vec::new(); self.stores.len()];
        for (j, (job, files)) in staged.jobs.iter().zip(&staged.files).enumerate() {
            if let Ok(files) = files {
                for (p, f) in job.placements.iter().zip(files) {
                    per_store[self.store_index(&p.store)?].push((
                        j,
                        p.x,
                        p.name.clone(),
                        f.clone(),
                    ));
                }
            }
        }
        Ok(per_store)
    }

    /// Puts a group's shares (`ks`: the run's numbers of its objects, for
    /// the test hook), every store taking its own in one call; the first
    /// store alone (the test hook stops there with one store written),
    /// then the others at once: they wait on the disk or the network, not on
    /// the CPU.
    pub(crate) fn put_group(&self, per_store: Vec<Vec<PutItem>>, ks: &[usize]) -> PutErrors {
        let put = |s: usize| -> PutErrors {
            let items = &per_store[s];
            let names: Vec<(&str, &Path)> = items
                .iter()
                .map(|(_, _, name, f)| (name.as_str(), f.as_path()))
                .collect();
            let results = self.stores[s].put_all_if_absent(&names);
            items
                .iter()
                .zip(results)
                .filter_map(|((j, x, name, _), r)| {
                    r.err()
                        .map(|e| (*j, *x, store_err(self.stores[s].label(), name)(e)))
                })
                .collect()
        };
        let mut errors = put(0);
        for &k in ks {
            pause_point("put", k);
        }
        errors.extend(std::thread::scope(|scope| {
            let handles: Vec<_> = (1..self.stores.len())
                .map(|s| scope.spawn(move || put(s)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a put thread panicked"))
                .collect::<Vec<_>>()
        }));
        for &k in ks {
            pause_point("written", k);
        }
        errors
    }

    /// Last step of a group, in one catalog commit: an object whose shares
    /// all landed is `written`; one with at least the write quorum landed is
    /// `degraded` (its missing shares are completed when their stores are
    /// back); any other stays `pending` with its failure recorded, and the
    /// next run deletes what did land and starts it again.
    pub(crate) fn record_group(
        &self,
        cat: &mut Catalog,
        staged: Staged<'_>,
        put_errors: PutErrors,
        report: &mut MigrateReport,
    ) -> Result<()> {
        let Staged {
            group,
            first,
            jobs,
            files,
            mut failures,
            ..
        } = staged;
        let n = self.layout.threshold.n();
        let quorum = self.layout.write_quorum;
        let mut split_errors: BTreeMap<usize, ArchiveError> = BTreeMap::new();
        for (j, files) in files.into_iter().enumerate() {
            if let Err(e) = files {
                split_errors.insert(j, e);
            }
        }
        let mut lost: BTreeMap<usize, Vec<(u8, ArchiveError)>> = BTreeMap::new();
        for (j, x, e) in put_errors {
            lost.entry(j).or_default().push((x, e));
        }
        let mut landed: Vec<(i64, &str, Vec<u8>)> = Vec::new();
        for (j, job) in jobs.iter().enumerate() {
            if let Some(e) = split_errors.remove(&j) {
                failures.insert(job.k - first, e);
                continue;
            }
            let lost_here = lost.remove(&j).unwrap_or_default();
            let xs: Vec<u8> = job
                .placements
                .iter()
                .map(|p| p.x)
                .filter(|x| !lost_here.iter().any(|(l, _)| l == x))
                .collect();
            if lost_here.is_empty() {
                landed.push((job.row.id, "written", xs));
            } else if xs.len() >= quorum {
                report.degraded += 1;
                report.degraded_objects.push(format!(
                    "{} (version {}): {} of {n} shares written (write quorum {quorum}); \
                     missing: {}",
                    job.row.source_ref,
                    job.row.version,
                    xs.len(),
                    lost_here
                        .iter()
                        .map(|(_, e)| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
                landed.push((job.row.id, "degraded", xs));
            } else {
                let (_, e) = lost_here.into_iter().next().expect("a lost share");
                failures.insert(
                    job.k - first,
                    ArchiveError::Failed(format!(
                        "only {} of {n} shares written, below the write quorum of {quorum}: {e}",
                        xs.len()
                    )),
                );
                continue;
            }
            report.written += 1;
            report.bytes_written += job.row.size;
        }
        let taken_over = cat.set_landed_as(&landed, self.worker.as_deref())?;
        for id in &taken_over {
            // Another worker took this version over after this one's lease
            // ran out: the shares this one put are named nowhere now.
            let job = jobs.iter().find(|j| j.row.id == *id).expect("a landed job");
            for p in &job.placements {
                if let Ok(store) = self.store(&p.store) {
                    let _ = store.delete(&p.name);
                }
            }
            report.written -= 1;
            report.bytes_written -= job.row.size;
            if landed.iter().any(|(i, st, _)| i == id && *st == "degraded") {
                report.degraded -= 1;
            }
            report.warnings.push(format!(
                "{} (version {}): taken over by another worker (this one's lease ran out); \
                 the shares this worker put were deleted",
                job.row.source_ref, job.row.version
            ));
        }
        for (i, e) in failures {
            let row = &group[i];
            let msg = e.to_string();
            cat.set_error(row.id, &msg)?;
            if matches!(&e, ArchiveError::Core(crate::Error::InputChanged { .. })) {
                // Read in full next time: a change that kept size and
                // times must not pass the quick check again.
                cat.forget_signature(row.id)?;
            }
            report.failed += 1;
            report.failures.push(format!(
                "{} (version {}): {msg}",
                row.source_ref, row.version
            ));
        }
        Ok(())
    }
}
