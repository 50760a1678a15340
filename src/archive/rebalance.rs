//! `archive-repair --rebalance`: every share goes to the store umbra.toml
//! now places its x on. That is how a store is added (give it shares), a
//! store retired (give it none: its shares move off, then its copies are
//! deleted) and shares moved between stores. A share is copied from its
//! old store when it is good there, else rebuilt from t good shares (no
//! source needed: a dead store is retired too).
//!
//! Crash safety: the new copy is put first (create-only), then one catalog
//! transaction moves the placement and records the old copy as owed a
//! delete, then the old copy is deleted. Killed anywhere, every object
//! keeps t good shares where the catalog says they are, and a rerun
//! finishes the move; the old copy is deleted by the run that reaches its
//! store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use super::check::ShareState;
use super::error::{At, Result};
use super::forget::ForgetReport;
use super::open::{Archive, VERIFY_PREFIX};
use crate::engine::Backend;
use crate::stream::combine::CombineOptions;

/// What a rebalance did.
#[derive(Debug, Default, Serialize)]
pub struct RebalanceReport {
    pub versions: u64,
    /// Shares now in the store umbra.toml places them on.
    pub moved: u64,
    /// Of those, rebuilt from t good shares (their old copy unusable).
    pub rebuilt: u64,
    /// Old copies deleted, and those still owed a delete (their store did
    /// not answer).
    pub old_copies_deleted: u64,
    pub old_copies_pending: u64,
    /// Shares that could not be moved this run, and why.
    pub failed: Vec<String>,
    pub notes: Vec<String>,
    pub audit_error: Option<String>,
}

impl Archive {
    /// Moves every share whose store is not the one umbra.toml places its
    /// x on. Needs the archive lock.
    pub fn rebalance(&mut self, backend: &dyn Backend) -> Result<RebalanceReport> {
        self.lock()?;
        let mut cat = self.catalog()?;
        let t = self.layout.threshold.t();
        let wanted: BTreeMap<u8, String> = self
            .layout
            .placement
            .iter()
            .map(|&(x, i)| (x, self.config.stores[i].name.clone()))
            .collect();
        let staging = self.staging();
        std::fs::create_dir_all(&staging).at(&staging)?;
        let root = tempfile::Builder::new()
            .prefix(VERIFY_PREFIX)
            .tempdir_in(&staging)
            .at(&staging)?;
        let mut report = RebalanceReport::default();
        let mut k = 0usize;
        for row in cat.stored()? {
            let placements = cat.placements(row.id)?;
            let moves: Vec<_> = placements
                .iter()
                .filter(|p| wanted.get(&p.x).is_some_and(|s| *s != p.store))
                .cloned()
                .collect();
            if placements.iter().any(|p| !wanted.contains_key(&p.x)) {
                report.failed.push(format!(
                    "{} (version {}): split with another n than umbra.toml's: its shares stay \
                     where they are",
                    row.source_ref, row.version
                ));
                continue;
            }
            if moves.is_empty() {
                continue;
            }
            report.versions += 1;
            let tmp = tempfile::tempdir_in(root.path()).at(root.path())?;
            let written: Vec<_> = placements.iter().filter(|p| p.written).cloned().collect();
            let states = self.check_shares(&row, &written, tmp.path());
            let good: Vec<PathBuf> = states
                .iter()
                .filter_map(|(_, s)| match s {
                    ShareState::Good(path) => Some(path.clone()),
                    _ => None,
                })
                .collect();
            for p in moves {
                let target = &wanted[&p.x];
                let own = states.iter().find_map(|(q, s)| match s {
                    ShareState::Good(path) if q.x == p.x => Some(path.clone()),
                    _ => None,
                });
                let file = match own {
                    Some(path) => path,
                    None if good.len() >= t => {
                        let out = tmp.path().join(format!("rebuilt.x{:03}", p.x));
                        if let Err(e) = crate::stream::repair::repair_share(
                            backend,
                            &good,
                            p.x,
                            &out,
                            &CombineOptions::default(),
                        ) {
                            report.failed.push(format!(
                                "{} (version {}) share {}: not rebuilt: {e}",
                                row.source_ref, row.version, p.x
                            ));
                            continue;
                        }
                        report.rebuilt += 1;
                        out
                    }
                    None => {
                        report.failed.push(format!(
                            "{} (version {}) share {}: its copy in store {} is not usable and \
                             only {} good share(s) are reachable, {t} needed to rebuild it",
                            row.source_ref,
                            row.version,
                            p.x,
                            p.store,
                            good.len()
                        ));
                        continue;
                    }
                };
                let put = self.store(target).and_then(|s| {
                    s.put_if_absent(&p.name, &file)
                        .map_err(|e| super::error::store_err(target, &p.name)(e))
                });
                if let Err(e) = put {
                    report.failed.push(format!(
                        "{} (version {}) share {}: {e}",
                        row.source_ref, row.version, p.x
                    ));
                    continue;
                }
                super::migrate::stage::pause_point("moved", k);
                k += 1;
                let old = if self.store_index(&p.store).is_ok() {
                    Some((p.store.as_str(), p.name.as_str()))
                } else {
                    report.notes.push(format!(
                        "store {} is not in umbra.toml: its copy of {} share {} cannot be \
                         deleted by umbra (delete that store's data at its provider)",
                        p.store, row.source_ref, p.x
                    ));
                    None
                };
                cat.move_placement(row.id, p.x, target, old)?;
                report.moved += 1;
            }
        }
        let mut deletions = ForgetReport::default();
        self.delete_forgotten(&cat, &mut deletions)?;
        report.old_copies_deleted = deletions.shares_deleted;
        report.old_copies_pending = deletions.shares_pending;
        report.notes.extend(deletions.problems);
        report.audit_error = self.log(
            &cat,
            "rebalance",
            json!({
                "versions": report.versions,
                "moved": report.moved,
                "rebuilt": report.rebuilt,
                "old_copies_deleted": report.old_copies_deleted,
                "old_copies_pending": report.old_copies_pending,
                "failed": report.failed.len(),
            }),
        );
        Ok(report)
    }
}
