//! `archive-repair --reshare`: versions split with another (t, n) or scheme
//! than umbra.toml's are re-split with the configured ones, from t of their
//! shares (no source needed).
//!
//! Per version: the object is rebuilt from its good shares into a
//! temporary file and checked against the catalog's BLAKE3; the new
//! shares' names are first owed a delete (a guard row), then the new split
//! is staged and put create-only; then one transaction swaps the split,
//! owes the old shares a delete and drops the guard; then old shares are
//! deleted. Killed anywhere, the version keeps its old split or has its
//! new one, whole, and no share is orphaned (the guard deletes the new
//! shares of an unfinished attempt).

use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use super::check::ShareState;
use super::error::{At, Result};
use super::forget::ForgetReport;
use super::migrate::stage::SplitMemory;
use super::open::{Archive, VERIFY_PREFIX};
use crate::engine::Backend;
use crate::stream::combine::{CombineOptions, CombineTarget, combine_files};

/// What a reshare did.
#[derive(Debug, Default, Serialize)]
pub struct ReshareReport {
    /// Versions re-split with umbra.toml's (t, n) and scheme.
    pub resplit: u64,
    pub old_shares_deleted: u64,
    pub old_shares_pending: u64,
    pub failed: Vec<String>,
    pub notes: Vec<String>,
    pub audit_error: Option<String>,
}

impl Archive {
    /// Re-splits every stored version whose split differs from umbra.toml.
    /// Needs the archive lock.
    pub fn reshare(&mut self, backend: &dyn Backend) -> Result<ReshareReport> {
        self.lock()?;
        let mut cat = self.catalog()?;
        let mut report = ReshareReport::default();
        // Deletes owed by an attempt killed earlier come first.
        let mut owed = ForgetReport::default();
        self.delete_forgotten(&cat, &mut owed)?;
        let (t, n) = (self.layout.threshold.t(), self.layout.threshold.n());
        let scheme = self.layout.scheme;
        let staging = self.staging();
        std::fs::create_dir_all(&staging).at(&staging)?;
        let root = tempfile::Builder::new()
            .prefix(VERIFY_PREFIX)
            .tempdir_in(&staging)
            .at(&staging)?;
        let memory = SplitMemory::default();
        let rows = cat.stored()?;
        for (k, row) in rows.iter().enumerate() {
            let (st, sn, ss) = cat.split_params(row.id)?;
            let same = st == Some(t as i64)
                && sn == Some(n as i64)
                && ss.as_deref().unwrap_or("shamir") == scheme.name();
            if same {
                continue;
            }
            let label = format!("{} (version {})", row.source_ref, row.version);
            let tmp = tempfile::tempdir_in(root.path()).at(root.path())?;
            let placements = cat.placements(row.id)?;
            let written: Vec<_> = placements.iter().filter(|p| p.written).cloned().collect();
            let good: Vec<PathBuf> = self
                .check_shares(row, &written, tmp.path())
                .into_iter()
                .filter_map(|(_, s)| match s {
                    ShareState::Good(p) => Some(p),
                    _ => None,
                })
                .collect();
            // The object itself, where the split reads it: SOURCE/path.
            let source = tmp.path().join("source");
            let file = super::source::folder::join_bytes(&source, &row.path);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).at(dir)?;
            }
            let rebuilt = combine_files(
                backend,
                &good,
                &CombineTarget::File(file.clone()),
                &CombineOptions {
                    hash_content: true,
                    ..CombineOptions::default()
                },
                &mut |_| {},
            );
            match rebuilt {
                Ok(r) if r.blake3.is_some_and(|h| h.to_hex().as_str() == row.blake3) => {}
                Ok(_) => {
                    report
                        .failed
                        .push(format!("{label}: rebuilt, but not the catalog's BLAKE3"));
                    continue;
                }
                Err(e) => {
                    report.failed.push(format!(
                        "{label}: not rebuilt from {} good share(s): {e}",
                        good.len()
                    ));
                    continue;
                }
            }
            let job = self.fresh_job(row, k + 1)?;
            let names: Vec<(String, String)> = job
                .placements
                .iter()
                .map(|p| (p.store.clone(), p.name.clone()))
                .collect();
            let guard = cat.owe_deletes("unfinished reshare", &names)?;
            let stage = tmp.path().join("stage");
            std::fs::create_dir(&stage).at(&stage)?;
            let files = match self
                .split_all(
                    &memory,
                    backend,
                    &source,
                    std::slice::from_ref(&job),
                    &stage,
                )
                .pop()
                .expect("one job, one result")
            {
                // Checked against the catalog's BLAKE3 as it was read.
                Ok((files, _)) => files,
                Err(e) => {
                    report.failed.push(format!("{label}: not split: {e}"));
                    continue;
                }
            };
            let mut put_ok = true;
            for (p, f) in job.placements.iter().zip(&files) {
                if let Err(e) = self.store(&p.store).and_then(|s| {
                    s.put_if_absent(&p.name, f)
                        .map_err(super::error::store_err(&p.store, &p.name))
                }) {
                    report.failed.push(format!("{label}: {e}"));
                    put_ok = false;
                    break;
                }
            }
            if !put_ok {
                // The guard deletes what landed, below.
                continue;
            }
            super::migrate::stage::pause_point("reshared", k);
            let share_bytes = files
                .first()
                .and_then(|f| std::fs::metadata(f).ok())
                .map(|m| m.len());
            let placed: Vec<_> = job
                .placements
                .iter()
                .map(|p| super::catalog::Placement {
                    written: true,
                    ..p.clone()
                })
                .collect();
            cat.finish_resplit(
                row.id,
                guard,
                &crate::share::format::hex(&job.secrets.split_id),
                t,
                scheme,
                share_bytes,
                &placed,
                &format!("re-split with ({t}, {n}) {scheme}"),
            )?;
            report.resplit += 1;
        }
        let mut deletions = ForgetReport::default();
        self.delete_forgotten(&cat, &mut deletions)?;
        report.old_shares_deleted = deletions.shares_deleted + owed.shares_deleted;
        report.old_shares_pending = deletions.shares_pending;
        report.notes.extend(owed.problems);
        report.notes.extend(deletions.problems);
        report.audit_error = self.log(
            &cat,
            "reshare",
            json!({
                "t": t,
                "n": n,
                "scheme": scheme.name(),
                "resplit": report.resplit,
                "old_shares_deleted": report.old_shares_deleted,
                "old_shares_pending": report.old_shares_pending,
                "failed": report.failed.len(),
            }),
        );
        Ok(report)
    }
}
