//! Verify: every share of every written object checked in its store, and
//! with `--deep` every object rebuilt and every share regenerated; and
//! `umbra audit verify`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use crate::archive::catalog::{ObjectRow, Placement};
use crate::archive::check::{ShareState, describe};
use crate::archive::error::{ArchiveError, At, Result};
use crate::archive::open::{Archive, CHECK_PREFIX, VERIFY_PREFIX};
use crate::archive::util::hash_file;
use crate::engine::Backend;
use crate::stream::combine::{self, CombineOptions, CombineTarget};
use crate::stream::repair::repair_share;

/// Share counts of one store after a verify.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreHealth {
    pub store: String,
    pub present: u64,
    pub missing: u64,
    pub corrupt: u64,
    pub unreachable: u64,
}

/// What a verify (or archive-repair) found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub objects: u64,
    pub stores: Vec<StoreHealth>,
    /// With --deep: rebuilt and matched the catalog's BLAKE3.
    pub rebuilt_ok: u64,
    /// Objects with fewer than t good shares, or failing the deep check.
    pub at_risk: u64,
    /// With repair: shares written anew, and what was wrong with them.
    pub repaired: u64,
    pub repaired_shares: Vec<String>,
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// No problem found.
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Archive {
    /// Checks every share of every written version in every store (own
    /// hashes, split id, x); `deep` also rebuilds each object and compares
    /// it with the catalog; `repair` rewrites missing and corrupt shares
    /// from t good ones.
    pub fn verify(
        &mut self,
        deep: bool,
        repair: bool,
        sample_percent: Option<f64>,
        backend: &dyn Backend,
    ) -> Result<VerifyReport> {
        if repair {
            self.lock()?;
        }
        let mut cat = self.catalog()?;
        self.check_catalog_stores(&cat)?;
        let mut report = VerifyReport {
            stores: self
                .layout
                .store_names
                .iter()
                .map(|s| StoreHealth {
                    store: s.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        // Beside the stores, so that local shares are linked, not copied.
        // Repair holds the lock, whose cleanup removes VERIFY_PREFIX
        // leftovers; a plain verify may run beside a migrate, so its
        // directory has a name that cleanup leaves alone.
        let staging = self.staging();
        std::fs::create_dir_all(&staging).at(&staging)?;
        let tmp_root = tempfile::Builder::new()
            .prefix(if repair { VERIFY_PREFIX } else { CHECK_PREFIX })
            .tempdir_in(&staging)
            .at(&staging)?;
        let t = self.layout.threshold.t();
        let rows = match sample_percent {
            Some(p) => cat.stored_sample(p)?,
            None => cat.stored()?,
        };
        for row in rows {
            report.objects += 1;
            cat.set_checked(row.id)?;
            let placements = cat.placements(row.id)?;
            let tmp = tempfile::tempdir_in(tmp_root.path()).at(tmp_root.path())?;
            let (written, unwritten): (Vec<Placement>, Vec<Placement>) =
                placements.iter().cloned().partition(|p| p.written);
            let states = self.check_shares(&row, &written, tmp.path());
            let mut good = Vec::new();
            let mut bad: Vec<(Placement, String)> = Vec::new();
            for p in unwritten {
                report.stores[self.store_index(&p.store)?].missing += 1;
                let msg = format!(
                    "{}: missing: never written (its store was down when it was migrated; \
                     the object is degraded)",
                    describe(&row, &p)
                );
                bad.push((p, msg));
            }
            for (p, state) in states {
                let i = self.store_index(&p.store)?;
                let h = &mut report.stores[i];
                match state {
                    ShareState::Good(path) => {
                        h.present += 1;
                        good.push((p, path));
                    }
                    ShareState::Missing => {
                        h.missing += 1;
                        let msg = format!("{}: missing", describe(&row, &p));
                        bad.push((p, msg));
                    }
                    ShareState::Corrupt(why) => {
                        h.corrupt += 1;
                        let msg = format!("{}: corrupt: {why}", describe(&row, &p));
                        bad.push((p, msg));
                    }
                    ShareState::Unreachable(why) => {
                        h.unreachable += 1;
                        report
                            .problems
                            .push(format!("{}: unreachable: {why}", describe(&row, &p)));
                    }
                }
            }
            if good.len() < t {
                report.at_risk += 1;
                report.problems.extend(bad.into_iter().map(|b| b.1));
                report.problems.push(format!(
                    "object #{}: only {} good share(s), {t} needed: it cannot be rebuilt",
                    row.id,
                    good.len()
                ));
                continue;
            }
            let mut repair_from: Vec<PathBuf> = good.iter().map(|g| g.1.clone()).collect();
            let mut state = row.state.clone();
            if deep {
                match self.deep_check(&row, &good, tmp.path(), backend) {
                    Ok((proven, forged)) => {
                        report.rebuilt_ok += 1;
                        if forged.is_empty() && row.state != "degraded" {
                            cat.set_state(row.id, "verified")?;
                            state = "verified".into();
                        }
                        for (p, msg) in forged {
                            let h = &mut report.stores[self.store_index(&p.store)?];
                            h.present -= 1;
                            h.corrupt += 1;
                            bad.push((p, msg));
                        }
                        repair_from = proven;
                    }
                    Err(e) => {
                        report.at_risk += 1;
                        report
                            .problems
                            .push(format!("object #{}: deep check: {e}", row.id));
                    }
                }
            }
            let (mut repaired_xs, mut unrepaired) = (Vec::new(), 0);
            for (p, msg) in bad {
                if !repair {
                    report.problems.push(msg);
                    continue;
                }
                match self.repair_share(&p, &repair_from, tmp.path(), backend) {
                    Ok(()) => {
                        report.repaired += 1;
                        report.repaired_shares.push(msg);
                        repaired_xs.push(p.x);
                    }
                    Err(e) => {
                        unrepaired += 1;
                        report.problems.push(format!("{msg}; repair failed: {e}"))
                    }
                }
            }
            if !repaired_xs.is_empty() {
                // A degraded object whose every share is now in place is
                // written; the others keep their state.
                let complete = unrepaired == 0
                    && placements
                        .iter()
                        .all(|p| p.written || repaired_xs.contains(&p.x));
                let state = match state.as_str() {
                    "degraded" if complete => "written",
                    s => s,
                };
                cat.set_landed(&[(row.id, state, repaired_xs)])?;
            }
        }
        let action = if repair { "repair" } else { "verify" };
        self.audit()?.append(
            Some(&cat),
            action,
            json!({
                "deep": deep,
                "sample_percent": sample_percent,
                "objects": report.objects,
                "stores": report.stores,
                "rebuilt_ok": report.rebuilt_ok,
                "at_risk": report.at_risk,
                "repaired": report.repaired_shares,
                "problems": report.problems,
            }),
        )?;
        Ok(report)
    }

    /// Finds t shares that rebuild the object with its tag and the
    /// catalog's BLAKE3, then regenerates every other share from them and
    /// compares: a share whose own hashes hold but whose content is not
    /// this object's (rewritten, forged) is returned with why. Returns the
    /// proven t shares too.
    #[allow(clippy::type_complexity)]
    pub(crate) fn deep_check(
        &self,
        row: &ObjectRow,
        good: &[(Placement, PathBuf)],
        tmp: &Path,
        backend: &dyn Backend,
    ) -> Result<(Vec<PathBuf>, Vec<(Placement, String)>)> {
        let t = self.layout.threshold.t();
        let combined = tmp.join("combined");
        let mut proven = None;
        for combo in crate::sharing::combinations(good.len(), t).take(256) {
            let paths: Vec<PathBuf> = combo.iter().map(|&i| good[i].1.clone()).collect();
            let _ = std::fs::remove_file(&combined);
            let ok = combine::combine_files(
                backend,
                &paths,
                &CombineTarget::File(combined.clone()),
                &CombineOptions {
                    hash_content: true,
                    ..Default::default()
                },
                &mut |_| {},
            )
            .is_ok()
                && hash_file(&combined)?.to_hex().as_str() == row.blake3;
            if ok {
                proven = Some((combo, paths));
                break;
            }
        }
        let _ = std::fs::remove_file(&combined);
        let (combo, proven) = proven.ok_or_else(|| {
            ArchiveError::Failed(format!(
                "no {t} of the {} intact shares rebuild the object the catalog recorded",
                good.len()
            ))
        })?;
        let mut forged = Vec::new();
        for (i, (p, path)) in good.iter().enumerate() {
            if combo.contains(&i) {
                continue;
            }
            let expected = tmp.join(format!("expected.x{:03}", p.x));
            repair_share(backend, &proven, p.x, &expected, &CombineOptions::default())?;
            if hash_file(&expected)? != hash_file(path)? {
                forged.push((
                    p.clone(),
                    format!(
                        "{}: corrupt: its own hashes hold, but it is not this object's share \
                         (rewritten or forged; found by --deep)",
                        describe(row, p)
                    ),
                ));
            }
            std::fs::remove_file(&expected).at(&expected)?;
        }
        Ok((proven, forged))
    }

    /// `umbra audit verify`.
    pub fn audit_verify(&self) -> Result<u64> {
        let cat = self.catalog().ok();
        self.audit()?.verify(cat.as_ref())
    }
}
