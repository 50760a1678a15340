//! One object's shares fetched from their stores and checked on their own
//! (hashes, split id, x), without reconstructing: what restore falls back on
//! and what verify counts.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::archive::catalog::{ObjectRow, Placement};
use crate::archive::open::Archive;
use crate::share::inspect::inspect_share;

/// The state of one share in its store.
#[derive(Debug)]
pub(crate) enum ShareState {
    Good(PathBuf),
    Missing,
    Corrupt(String),
    Unreachable(String),
}

pub(crate) fn describe(row: &ObjectRow, p: &Placement) -> String {
    format!(
        "store {}: {} share x={} ({})",
        p.store,
        object_label(row),
        p.x,
        p.name
    )
}

/// An object as people know it: its path in its source, its SOP Instance
/// UID when it has one, and the catalog's number and version.
pub(crate) fn object_label(row: &ObjectRow) -> String {
    match &row.ids.sop_uid {
        Some(sop) => format!(
            "{} (SOP {sop}, object #{} version {})",
            row.source_ref, row.id, row.version
        ),
        None => format!(
            "{} (object #{} version {})",
            row.source_ref, row.id, row.version
        ),
    }
}

impl Archive {
    /// Fetches every share of `row` into `tmp` and checks each one's own
    /// hashes, split id and x, without reconstructing.
    pub(crate) fn check_shares(
        &self,
        row: &ObjectRow,
        placements: &[Placement],
        tmp: &Path,
    ) -> Vec<(Placement, ShareState)> {
        placements
            .par_iter()
            .map(|p| {
                let dest = tmp.join(format!("{}.x{:03}", p.store, p.x));
                let state = match self.store(&p.store).map(|s| s.get(&p.name, &dest)) {
                    Err(e) => ShareState::Unreachable(e.to_string()),
                    Ok(Err(e)) => ShareState::Unreachable(e.to_string()),
                    Ok(Ok(false)) => ShareState::Missing,
                    Ok(Ok(true)) => match inspect_share(&dest) {
                        Err(e) => ShareState::Corrupt(e.to_string()),
                        Ok(r) if !r.intact() => ShareState::Corrupt(format!(
                            "segments {:?} fail their BLAKE3",
                            r.corrupt_segments
                        )),
                        Ok(r) if Some(&r.split_id) != row.split_id.as_ref() || r.x != p.x => {
                            ShareState::Corrupt(
                                "intact, but a share of another object (swapped or misplaced)"
                                    .into(),
                            )
                        }
                        Ok(_) => ShareState::Good(dest),
                    },
                };
                (p.clone(), state)
            })
            .collect()
    }
}
