//! Putting a staged group into the stores, each store in one durable
//! commit, and recording which objects landed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::archive::catalog::Catalog;
use crate::archive::error::{ArchiveError, Result, store_err};
use crate::archive::migrate::options::MigrateReport;
use crate::archive::migrate::stage::{Staged, pause_point};
use crate::archive::open::Archive;

/// Failed puts: the job and the error naming store and object.
pub(crate) type PutErrors = Vec<(usize, ArchiveError)>;

impl Archive {
    /// Each store's shares of every staged object that split: (job, name,
    /// staged file).
    pub(crate) fn put_items(
        &self,
        staged: &Staged<'_>,
    ) -> Result<Vec<Vec<(usize, String, PathBuf)>>> {
        let mut per_store = vec![Vec::new(); self.stores.len()];
        for (j, (job, files)) in staged.jobs.iter().zip(&staged.files).enumerate() {
            if let Ok(files) = files {
                for (p, f) in job.placements.iter().zip(files) {
                    per_store[self.store_index(&p.store)?].push((j, p.name.clone(), f.clone()));
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
    pub(crate) fn put_group(
        &self,
        per_store: Vec<Vec<(usize, String, PathBuf)>>,
        ks: &[usize],
    ) -> PutErrors {
        let put = |s: usize| -> PutErrors {
            let items = &per_store[s];
            let names: Vec<(&str, &Path)> = items
                .iter()
                .map(|(_, name, f)| (name.as_str(), f.as_path()))
                .collect();
            let results = self.stores[s].put_all_if_absent(&names);
            items
                .iter()
                .zip(results)
                .filter_map(|((j, name, _), r)| {
                    r.err()
                        .map(|e| (*j, store_err(self.stores[s].label(), name)(e)))
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

    /// Last step of a group: marks written every object whose shares all
    /// landed, in one catalog commit, and records the failures.
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
        let mut job_errors: BTreeMap<usize, ArchiveError> = BTreeMap::new();
        for (j, files) in files.into_iter().enumerate() {
            if let Err(e) = files {
                job_errors.insert(j, e);
            }
        }
        for (j, e) in put_errors {
            job_errors.entry(j).or_insert(e);
        }
        let written: Vec<i64> = (0..jobs.len())
            .filter(|j| !job_errors.contains_key(j))
            .map(|j| jobs[j].row.id)
            .collect();
        cat.set_written(&written)?;
        for (j, job) in jobs.iter().enumerate() {
            if !job_errors.contains_key(&j) {
                report.written += 1;
                report.bytes_written += job.row.size;
            }
        }
        for (j, e) in job_errors {
            failures.insert(jobs[j].k - first, e);
        }
        for (i, e) in failures {
            let row = &group[i];
            let msg = e.to_string();
            cat.set_error(row.id, &msg)?;
            report.failed += 1;
            report.failures.push(format!(
                "{} (version {}): {msg}",
                row.source_ref, row.version
            ));
        }
        Ok(())
    }
}
