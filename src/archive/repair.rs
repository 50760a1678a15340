//! Repair of one share in its store: rebuilt from t good shares by
//! Lagrange at its x (no source needed) and put in place of the bad one.

use std::path::{Path, PathBuf};

use crate::archive::catalog::Placement;
use crate::archive::error::{Result, store_err};
use crate::archive::open::Archive;
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
}
