//! Repair of one share in its store: rebuilt from t good shares by
//! Lagrange at its x (no source needed) and put in place of the bad one.

use std::path::{Path, PathBuf};

use crate::archive::catalog::{Catalog, Placement};
use crate::archive::check::{ShareState, describe};
use crate::archive::error::{At, Result, store_err};
use crate::archive::open::{Archive, VERIFY_PREFIX};
use crate::engine::Backend;
use crate::stream::combine::CombineOptions;
use crate::stream::repair::repair_share;

impl Archive {
    /// Rebuilds share `p.x` from the good ones (Lagrange at the lost x, no
    /// source needed) and puts it in place of the missing or corrupt one.
    pub(crate) fn repair_share(
        &self,
        p: &Placement,
        good: &[PathBuf],
        tmp: &Path,
        backend: &dyn Backend,
    ) -> Result<()> {
        let out = tmp.join(format!("repaired.x{:03}", p.x));
        repair_share(backend, good, p.x, &out, &CombineOptions::default())?;
        let store = self.store(&p.store)?;
        // Delete then create: each step is atomic; a crash between them
        // leaves the share missing, which the next repair fixes.
        store
            .delete(&p.name)
            .map_err(store_err(&p.store, &p.name))?;
        store
            .put_if_absent(&p.name, &out)
            .map_err(store_err(&p.store, &p.name))?;
        Ok(())
    }

    /// Completes the degraded versions among `rows`: each missing share is
    /// rebuilt from the written ones (t of them suffice; no source needed)
    /// and put in its store. Returns how many became `written`, and a line
    /// for each that is still degraded (its store still down). Needs the
    /// archive lock.
    pub(crate) fn complete_degraded(
        &self,
        cat: &mut Catalog,
        rows: &[crate::archive::catalog::ObjectRow],
        backend: &dyn Backend,
    ) -> Result<(u64, Vec<String>)> {
        let (mut completed, mut still) = (0, Vec::new());
        if rows.is_empty() {
            return Ok((completed, still));
        }
        let t = self.layout.threshold.t();
        let staging = self.staging();
        std::fs::create_dir_all(&staging).at(&staging)?;
        let tmp_root = tempfile::Builder::new()
            .prefix(VERIFY_PREFIX)
            .tempdir_in(&staging)
            .at(&staging)?;
        for row in rows {
            let placements = cat.placements(row.id)?;
            let (written, missing): (Vec<Placement>, Vec<Placement>) =
                placements.into_iter().partition(|p| p.written);
            let tmp = tempfile::tempdir_in(tmp_root.path()).at(tmp_root.path())?;
            let good: Vec<PathBuf> = self
                .check_shares(row, &written, tmp.path())
                .into_iter()
                .filter_map(|(_, s)| match s {
                    ShareState::Good(path) => Some(path),
                    _ => None,
                })
                .collect();
            if good.len() < t {
                still.push(format!(
                    "{} (version {}): only {} good share(s) of {} written, {t} needed to \
                     complete it",
                    row.source_ref,
                    row.version,
                    good.len(),
                    written.len()
                ));
                continue;
            }
            let (mut done, mut failed) = (Vec::new(), Vec::new());
            for p in &missing {
                match self.repair_share(p, &good, tmp.path(), backend) {
                    Ok(()) => done.push(p.x),
                    Err(e) => failed.push(format!("{}: still missing: {e}", describe(row, p))),
                }
            }
            let state = if failed.is_empty() {
                completed += 1;
                "written"
            } else {
                still.push(failed.join("; "));
                "degraded"
            };
            cat.set_landed(&[(row.id, state, done)])?;
        }
        Ok((completed, still))
    }
}
