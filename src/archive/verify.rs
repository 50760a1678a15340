//! Verify: every share of every written object checked in its store, and
//! with `--deep` every object rebuilt and every share regenerated; and
//! `umbra audit verify`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use crate::archive::catalog::{Catalog, ObjectRow, Placement};
use crate::archive::check::{ShareState, describe, object_label};
use crate::archive::error::{ArchiveError, At, Result, store_err};
use crate::archive::migrate::stage::pause_point;
use crate::archive::open::{Archive, CHECK_PREFIX, LockMode, VERIFY_PREFIX};
use crate::archive::shard::WorkerOptions;
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
    /// Share files there that no catalog entry references.
    pub orphans: u64,
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
    /// Versions not written yet (each is a problem: it is not protected).
    pub pending: u64,
    /// Versions with shares never written (checked, and counted apart).
    pub degraded: u64,
    /// With repair: shares written anew, and what was wrong with them.
    pub repaired: u64,
    pub repaired_shares: Vec<String>,
    /// With `--orphans`: orphan share files deleted.
    pub orphans_removed: u64,
    /// What was found and dealt with (a lost store refilled by repair).
    pub notes: Vec<String>,
    pub problems: Vec<String>,
    /// `--worker`: the lease owner name this worker went by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

impl VerifyReport {
    /// No problem found.
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What verify learns of each store before it looks at objects: the names
/// it lists, or why it cannot, and whether it has lost everything.
struct Survey {
    /// Per store, in configuration order.
    listed: Vec<std::result::Result<HashSet<String>, String>>,
    /// Stores that hold none of the shares the catalog puts there: one
    /// line says so, instead of one per share.
    lost: Vec<bool>,
}

/// What verify is asked to do.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions {
    /// Rebuild every object, regenerate every share and compare.
    pub deep: bool,
    /// Rewrite missing and corrupt shares (archive-repair).
    pub repair: bool,
    /// With `repair`: delete the share files no catalog entry references.
    pub orphans: bool,
    /// Check only this percentage, least recently checked first.
    pub sample_percent: Option<f64>,
}

impl Archive {
    /// Checks every share of every stored version in every store (own
    /// hashes, split id, x), says which versions are not stored yet, which
    /// stores are lost as a whole and which files in them no catalog entry
    /// references; `deep` also rebuilds each object and compares it with
    /// the catalog; `repair` rewrites missing and corrupt shares from t
    /// good ones (and completes degraded objects).
    pub fn verify(&mut self, opts: VerifyOptions, backend: &dyn Backend) -> Result<VerifyReport> {
        self.verify_as(opts, None, backend)
    }

    /// [`Archive::verify`], as one of many workers when `worker` is given
    /// (docs/SCALE.md): the run's first worker records the versions to
    /// check, every worker claims and checks some of them.
    pub fn verify_as(
        &mut self,
        opts: VerifyOptions,
        worker: Option<&WorkerOptions>,
        backend: &dyn Backend,
    ) -> Result<VerifyReport> {
        if worker.is_some() && opts.orphans {
            return Err(ArchiveError::Unsupported(
                "--orphans with --worker: a worker sees only its own share of the archive; \
                 remove orphans with one archive-repair --orphans"
                    .into(),
            ));
        }
        if opts.repair {
            // Repair workers exclude other writers, not each other: each
            // repairs only the versions it claimed.
            self.lock_as(if worker.is_some() {
                LockMode::Shared
            } else {
                LockMode::Exclusive
            })?;
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
        let survey = self.survey_stores(&cat, opts, &mut report)?;
        // Beside the stores, so that local shares are linked, not copied.
        // Repair holds the lock, whose cleanup removes VERIFY_PREFIX
        // leftovers; a plain verify may run beside a migrate, so its
        // directory has a name that cleanup leaves alone.
        let staging = self.staging();
        std::fs::create_dir_all(&staging).at(&staging)?;
        let tmp_root = tempfile::Builder::new()
            .prefix(if opts.repair {
                VERIFY_PREFIX
            } else {
                CHECK_PREFIX
            })
            .tempdir_in(&staging)
            .at(&staging)?;
        let rows = match opts.sample_percent {
            Some(p) => cat.stored_sample(p)?,
            None => cat.stored()?,
        };
        let phase = if opts.deep { "verifying" } else { "checking" };
        let check = |cat: &mut Catalog, row: &ObjectRow, report: &mut VerifyReport| {
            let tmp = tempfile::tempdir_in(tmp_root.path()).at(tmp_root.path())?;
            self.verify_object(cat, row, &survey, opts, tmp.path(), backend, report)?;
            self.meter.advance(1, row.size);
            pause_point("verified", self.meter.read().objects_done as usize);
            Ok::<_, ArchiveError>(row.size)
        };
        match worker {
            None => {
                let bytes = rows.iter().map(|r| r.size).sum();
                self.meter.begin(phase, rows.len() as u64, bytes);
                for row in rows {
                    check(&mut cat, &row, &mut report)?;
                }
            }
            Some(w) => {
                // Every stored version by id: the run's first worker chose
                // which (a sample changes as the others check theirs).
                let by_id: std::collections::HashMap<i64, ObjectRow> =
                    cat.stored()?.into_iter().map(|r| (r.id, r)).collect();
                let seed: Vec<i64> = rows.iter().map(|r| r.id).collect();
                let kind = match (opts.repair, opts.deep) {
                    (true, true) => "repair-deep",
                    (true, false) => "repair",
                    (false, true) => "verify-deep",
                    (false, false) => "verify",
                };
                let owner =
                    self.sharded(&mut cat, w, kind, &|_| Ok(seed.clone()), 16, |c, ids| {
                        let mut bytes = 0;
                        for id in ids {
                            match by_id.get(id) {
                                Some(row) => bytes += check(c, row, &mut report)?,
                                None => report.problems.push(format!(
                                    "version id {id}: chosen when the run began, no longer \
                                     stored"
                                )),
                            }
                        }
                        Ok(bytes)
                    })?;
                report.worker = Some(owner);
            }
        }
        for row in cat.in_state("pending")? {
            report.pending += 1;
            report.problems.push(format!(
                "{}: pending, not protected yet{}",
                object_label(&row),
                row_error(&row)
            ));
        }
        let action = if opts.repair { "repair" } else { "verify" };
        let entry = self.audit().and_then(|log| {
            log.append(
                Some(&cat),
                action,
                json!({
                    "deep": opts.deep,
                    "sample_percent": opts.sample_percent,
                    "objects": report.objects,
                    "stores": report.stores,
                    "rebuilt_ok": report.rebuilt_ok,
                    "at_risk": report.at_risk,
                    "pending": report.pending,
                    "degraded": report.degraded,
                    "repaired": report.repaired,
                    "orphans_removed": report.orphans_removed,
                    "problems": report.problems.len(),
                }),
            )
        });
        if let Err(e) = entry {
            report
                .problems
                .push(format!("this run is not in the audit log: {e}"));
        }
        Ok(report)
    }

    /// Lists every store: one line for a store that cannot be listed or
    /// holds none of its shares, and one for the files that no catalog
    /// entry references (deleted with `opts.orphans` under repair).
    fn survey_stores(
        &self,
        cat: &Catalog,
        opts: VerifyOptions,
        report: &mut VerifyReport,
    ) -> Result<Survey> {
        let mut survey = Survey {
            listed: Vec::new(),
            lost: Vec::new(),
        };
        for (i, store) in self.stores.iter().enumerate() {
            let label = store.label();
            let referenced = cat.placement_names(label)?;
            let expected = cat.written_placements(label)?;
            let listed = store
                .list()
                .map(|names| names.into_iter().collect::<HashSet<_>>());
            let lost = match &listed {
                Err(e) => {
                    report.problems.push(format!(
                        "store {label}: cannot be listed ({e}): none of its {expected} share(s) \
                         can be checked"
                    ));
                    false
                }
                Ok(names) => {
                    let lost = expected > 0 && !names.iter().any(|n| referenced.contains(n));
                    if lost {
                        let line = format!(
                            "store {label}: holds none of its {expected} share(s): the store is \
                             lost or was emptied; archive-repair rebuilds them from the other \
                             stores"
                        );
                        // Under repair, each share rebuilt (or not) says the rest.
                        if opts.repair {
                            report.notes.push(line);
                        } else {
                            report.problems.push(line);
                        }
                    }
                    let orphans: Vec<&String> =
                        names.iter().filter(|n| !referenced.contains(*n)).collect();
                    report.stores[i].orphans = orphans.len() as u64;
                    if !orphans.is_empty() && opts.repair && opts.orphans {
                        for name in orphans {
                            store.delete(name).map_err(store_err(label, name))?;
                            report.orphans_removed += 1;
                        }
                    } else if !orphans.is_empty() {
                        report.problems.push(format!(
                            "store {label}: {} file(s) that no catalog entry references \
                             (space leaked by an interrupted run, or someone else's writes); \
                             `umbra archive-repair --orphans` deletes them",
                            orphans.len()
                        ));
                    }
                    lost
                }
            };
            survey.listed.push(listed.map_err(|e| e.to_string()));
            survey.lost.push(lost);
        }
        Ok(survey)
    }

    /// One stored version: its shares checked (and rebuilt, compared,
    /// repaired, as asked); problems into the report.
    #[allow(clippy::too_many_arguments)]
    fn verify_object(
        &self,
        cat: &mut Catalog,
        row: &ObjectRow,
        survey: &Survey,
        opts: VerifyOptions,
        tmp: &Path,
        backend: &dyn Backend,
        report: &mut VerifyReport,
    ) -> Result<()> {
        let t = self.layout.threshold.t();
        report.objects += 1;
        cat.set_checked(row.id)?;
        let placements = cat.placements(row.id)?;
        if row.state == "degraded" {
            report.degraded += 1;
        }
        let (written, unwritten): (Vec<Placement>, Vec<Placement>) =
            placements.iter().cloned().partition(|p| p.written);
        let states = self.check_shares(row, &written, tmp);
        let mut good = Vec::new();
        // (placement, problem, said already at store level)
        let mut bad: Vec<(Placement, String, bool)> = Vec::new();
        for p in unwritten {
            report.stores[self.store_index(&p.store)?].missing += 1;
            let msg = format!(
                "{}: missing: never written (its store was down when it was migrated; the \
                 object is degraded)",
                describe(row, &p)
            );
            bad.push((p, msg, false));
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
                    let msg = format!("{}: missing", describe(row, &p));
                    bad.push((p, msg, survey.lost[i]));
                }
                ShareState::Corrupt(why) => {
                    h.corrupt += 1;
                    let msg = format!("{}: corrupt: {why}", describe(row, &p));
                    bad.push((p, msg, false));
                }
                ShareState::Unreachable(why) => {
                    h.unreachable += 1;
                    if survey.listed[i].is_ok() {
                        report
                            .problems
                            .push(format!("{}: unreachable: {why}", describe(row, &p)));
                    }
                }
            }
        }
        if good.len() < t {
            report.at_risk += 1;
            report
                .problems
                .extend(bad.into_iter().filter(|b| !b.2).map(|b| b.1));
            report.problems.push(format!(
                "{}: only {} good share(s), {t} needed: it cannot be rebuilt",
                object_label(row),
                good.len()
            ));
            return Ok(());
        }
        let mut repair_from: Vec<PathBuf> = good.iter().map(|g| g.1.clone()).collect();
        let mut state = row.state.clone();
        if opts.deep {
            match self.deep_check(row, &good, tmp, backend) {
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
                        bad.push((p, msg, false));
                    }
                    repair_from = proven;
                }
                Err(e) => {
                    report.at_risk += 1;
                    report
                        .problems
                        .push(format!("{}: deep check: {e}", object_label(row)));
                }
            }
        }
        let (mut repaired_xs, mut unrepaired) = (Vec::new(), 0);
        for (p, msg, said) in bad {
            if !opts.repair {
                if !said {
                    report.problems.push(msg);
                }
                continue;
            }
            match self.repair_share(&p, &repair_from, tmp, backend) {
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
        Ok(())
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
        // A wrong site key is named by the catalog's check; a catalog that
        // is missing only leaves the chain to check on its own.
        let cat = self.catalog_if_exists()?;
        self.audit()?.verify(cat.as_ref())
    }

    /// `umbra audit restart`: a new audit log after a break, the old one
    /// set aside; returns where it went.
    pub fn audit_restart(&mut self, why: &str) -> Result<Option<PathBuf>> {
        self.lock()?;
        let cat = self.catalog()?;
        self.audit()?.restart(&cat, why)
    }
}

/// ": LAST ERROR" of a version, when it has one.
fn row_error(row: &ObjectRow) -> String {
    row.last_error
        .as_ref()
        .map_or(String::new(), |e| format!(" (last attempt: {e})"))
}
