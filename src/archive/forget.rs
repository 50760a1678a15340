//! Retention (`umbra forget`) and erasure on request (`umbra erase`): the
//! versions go out of the catalog and their shares out of every store.
//!
//! Crash safety: in one catalog transaction each version's share names go
//! into the `deletions` table as still to delete, and its rows go out of
//! `objects` and `placements`; then the shares are deleted store by store
//! and the table says which are left. A kill at any point leaves either the
//! version whole (nothing done) or its names recorded: the next forget,
//! erase or migrate deletes what is left, so no share is orphaned and none
//! is deleted that was not asked for. A store that cannot be reached keeps
//! its names recorded until a run reaches it.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;

use serde::Serialize;
use serde_json::json;

use super::catalog::Catalog;
use super::error::{ArchiveError, Result};
use super::open::Archive;
use super::source::OlderThan;
use super::time::now_secs;

/// Which stored versions `forget` keeps; the others go. Every object keeps
/// its latest stored version whatever the rules say, and a rule not given
/// keeps nothing on its own: with both, a version goes when neither keeps
/// it (as restic's keep rules add up).
#[derive(Debug, Clone, Default)]
pub struct ForgetPolicy {
    /// Keep the newest N stored versions of each object.
    pub keep_last: Option<usize>,
    /// Keep versions superseded (a newer stored version recorded) less
    /// than this long ago, or after this day.
    pub keep_superseded_within: Option<OlderThan>,
    /// Opt-in: every version of objects gone from their source longer than
    /// this (or since before this day), as migrate's full scans saw it.
    pub gone_for: Option<OlderThan>,
    /// List what would go, change nothing.
    pub dry_run: bool,
}

impl ForgetPolicy {
    fn describe(&self) -> String {
        let mut rules = Vec::new();
        if let Some(n) = self.keep_last {
            rules.push(format!("keep the last {n}"));
        }
        match self.keep_superseded_within {
            Some(OlderThan::Age(secs)) => {
                rules.push(format!("keep versions superseded less than {secs} s ago"))
            }
            Some(OlderThan::Before(day)) => rules.push(format!(
                "keep versions superseded after {}",
                &super::time::rfc3339(day * 86_400)[..10]
            )),
            None => {}
        }
        match self.gone_for {
            Some(OlderThan::Age(secs)) => {
                rules.push(format!("let objects gone for over {secs} s go"))
            }
            Some(OlderThan::Before(day)) => rules.push(format!(
                "let objects gone since before {} go",
                &super::time::rfc3339(day * 86_400)[..10]
            )),
            None => {}
        }
        rules.join(" and ")
    }

    /// The cutoff of the superseded rule: versions superseded before it go.
    fn cutoff(&self) -> Option<i64> {
        self.keep_superseded_within.map(cutoff_of)
    }
}

/// Unix seconds before which an age or a day lies.
fn cutoff_of(o: OlderThan) -> i64 {
    match o {
        OlderThan::Age(secs) => now_secs() - secs,
        OlderThan::Before(day) => day * 86_400,
    }
}

impl ForgetPolicy {}

/// One version `forget` removed, or would remove.
#[derive(Debug, Serialize)]
pub struct Forgotten {
    pub path: String,
    pub version: i64,
    pub size: u64,
}

/// What `forget` and `erase` did.
#[derive(Debug, Default, Serialize)]
pub struct ForgetReport {
    pub dry_run: bool,
    /// The versions removed from the catalog (for erase: how many only).
    pub versions: u64,
    pub bytes: u64,
    pub forgotten: Vec<Forgotten>,
    /// Shares deleted from the stores by this run (also of earlier runs'
    /// forgotten versions).
    pub shares_deleted: u64,
    /// Shares still to delete (their store did not answer): the next run
    /// that reaches it deletes them.
    pub shares_pending: u64,
    pub problems: Vec<String>,
    /// Erase: shares checked absent after their deletion.
    pub verified_absent: u64,
    /// Erase: erased objects whose file is still in its (folder) source:
    /// the next migrate protects them again unless they are deleted there.
    pub still_in_source: u64,
    pub audit_error: Option<String>,
}

/// Which objects `erase` removes: at least one selector.
#[derive(Debug, Clone, Default)]
pub struct EraseSelector {
    pub patient_id: Option<String>,
    pub study_uid: Option<String>,
    pub sop_uid: Option<String>,
    pub dry_run: bool,
}

impl Archive {
    /// Applies `policy`: the versions it does not keep leave the catalog
    /// (recorded with the rule in `deletions`) and their shares every
    /// store.
    pub fn forget_versions(&mut self, policy: &ForgetPolicy) -> Result<ForgetReport> {
        if policy.keep_last.is_none()
            && policy.keep_superseded_within.is_none()
            && policy.gone_for.is_none()
        {
            return Err(ArchiveError::Failed(
                "say what to keep: --keep-last N and/or --keep-within AGE (or what to let go: \
                 --gone-for AGE)"
                    .into(),
            ));
        }
        if policy.keep_last == Some(0) {
            return Err(ArchiveError::Failed(
                "--keep-last 0: the latest version of every object is always kept; give 1 or more"
                    .into(),
            ));
        }
        if !policy.dry_run {
            self.lock()?;
        }
        let mut cat = self.catalog()?;
        let cutoff = policy.cutoff();
        let rule = policy.describe();
        // Per object, its stored versions, oldest first.
        // (source, path) -> (id, version, recorded at), oldest first.
        type Versions = Vec<(i64, i64, i64)>;
        let mut objects: BTreeMap<(Vec<u8>, Vec<u8>), Versions> = BTreeMap::new();
        for (id, source, path, version, created) in cat.stored_versions()? {
            objects
                .entry((source, path))
                .or_default()
                .push((id, version, created));
        }
        let mut going = Vec::new();
        let mut reasons: BTreeMap<i64, String> = BTreeMap::new();
        if let Some(g) = policy.gone_for {
            for (row, since) in cat.gone_before(cutoff_of(g))? {
                reasons.insert(
                    row.id,
                    format!(
                        "gone from the source since {}",
                        &super::time::rfc3339(since)[..10]
                    ),
                );
                going.push(row.id);
            }
        }
        let retention = policy.keep_last.is_some() || cutoff.is_some();
        for versions in objects.values().filter(|_| retention) {
            let count = versions.len();
            for (k, &(id, _, _)) in versions.iter().enumerate() {
                if k + 1 == count {
                    break; // the latest stored version stays
                }
                let kept_by_last = policy.keep_last.is_some_and(|n| count - k <= n);
                // Superseded when the next stored version was recorded.
                let superseded = versions[k + 1].2;
                let kept_by_age = cutoff.is_some_and(|c| superseded >= c);
                if !kept_by_last && !kept_by_age {
                    going.push(id);
                }
            }
        }
        let going: std::collections::HashSet<i64> = going.into_iter().collect();
        let rows: Vec<_> = cat
            .stored()?
            .into_iter()
            .filter(|r| going.contains(&r.id))
            .collect();
        let mut report = ForgetReport {
            dry_run: policy.dry_run,
            versions: rows.len() as u64,
            bytes: rows.iter().map(|r| r.size).sum(),
            forgotten: rows
                .iter()
                .map(|r| Forgotten {
                    path: r.source_ref.clone(),
                    version: r.version,
                    size: r.size,
                })
                .collect(),
            ..Default::default()
        };
        if policy.dry_run {
            return Ok(report);
        }
        let reasons: Vec<(i64, String)> = rows
            .iter()
            .map(|r| {
                (
                    r.id,
                    reasons.get(&r.id).cloned().unwrap_or_else(|| rule.clone()),
                )
            })
            .collect();
        cat.forget_versions(&reasons, false)?;
        super::migrate::stage::pause_point("forgotten", 0);
        self.delete_forgotten(&cat, &mut report)?;
        report.audit_error = self.log(
            &cat,
            "forget",
            json!({
                "rule": rule,
                "versions": report.versions,
                "bytes": report.bytes,
                "shares_deleted": report.shares_deleted,
                "shares_pending": report.shares_pending,
            }),
        );
        Ok(report)
    }

    /// Erases every version (any state) of the selected objects: their
    /// shares from every store, checked absent after, and their rows from
    /// the catalog, keeping no identifying value; the audit log says an
    /// erasure happened, not of whom.
    pub fn erase(&mut self, sel: &EraseSelector) -> Result<ForgetReport> {
        if sel.patient_id.is_none() && sel.study_uid.is_none() && sel.sop_uid.is_none() {
            return Err(ArchiveError::Failed(
                "say whom to erase: --patient ID, --study UID or --sop UID".into(),
            ));
        }
        if !sel.dry_run {
            self.lock()?;
        }
        let mut cat = self.catalog()?;
        let rows = cat.identified(
            sel.patient_id.as_deref(),
            sel.study_uid.as_deref(),
            sel.sop_uid.as_deref(),
        )?;
        let mut report = ForgetReport {
            dry_run: sel.dry_run,
            versions: rows.len() as u64,
            bytes: rows.iter().map(|r| r.size).sum(),
            ..Default::default()
        };
        if sel.dry_run {
            // Said to the person who asked, on their terminal only.
            report.forgotten = rows
                .iter()
                .map(|r| Forgotten {
                    path: r.source_ref.clone(),
                    version: r.version,
                    size: r.size,
                })
                .collect();
            return Ok(report);
        }
        if rows.is_empty() {
            return Err(ArchiveError::Failed(
                "nothing matched: no version in the catalog has that identifier".into(),
            ));
        }
        report.still_in_source = rows
            .iter()
            .filter(|r| {
                r.source.first() == Some(&b'/')
                    && super::source::folder::join_bytes(
                        std::path::Path::new(std::ffi::OsStr::from_bytes(&r.source)),
                        &r.path,
                    )
                    .exists()
            })
            .count() as u64;
        let reasons: Vec<(i64, String)> = rows.iter().map(|r| (r.id, "erasure".into())).collect();
        cat.forget_versions(&reasons, true)?;
        super::migrate::stage::pause_point("forgotten", 0);
        self.delete_forgotten(&cat, &mut report)?;
        let selector = if sel.patient_id.is_some() {
            "patient"
        } else if sel.study_uid.is_some() {
            "study"
        } else {
            "sop"
        };
        report.audit_error = self.log(
            &cat,
            "erase",
            json!({
                "selector": selector,
                "versions": report.versions,
                "shares_deleted": report.shares_deleted,
                "shares_verified_absent": report.verified_absent,
                "shares_pending": report.shares_pending,
            }),
        );
        Ok(report)
    }

    /// Deletes the shares of every forgotten version still recorded as to
    /// delete (of this run or an earlier one), checks each one gone, and
    /// records what is left (a store that did not answer).
    pub(crate) fn delete_forgotten(&self, cat: &Catalog, report: &mut ForgetReport) -> Result<()> {
        let scratch = tempfile::tempdir_in(self.staging()).map_err(|e| ArchiveError::Io {
            path: self.staging(),
            error: e,
        })?;
        for (row, names) in cat.pending_deletions()? {
            let mut left = Vec::new();
            for (store, name) in names {
                let Ok(k) = self.store_index(&store) else {
                    report.problems.push(format!(
                        "store {store} is not in umbra.toml: its share {name} of a forgotten \
                         version stays recorded"
                    ));
                    left.push((store, name));
                    continue;
                };
                let s = &self.stores[k];
                let deleted = s.delete(&name).and_then(|_| {
                    // Gone means a get finds nothing (a cloud delete of a
                    // missing name also succeeds, so its answer proves
                    // nothing).
                    let probe = scratch.path().join(&name);
                    let there = s.get(&name, &probe);
                    let _ = std::fs::remove_file(&probe);
                    there
                });
                match deleted {
                    Ok(false) => {
                        report.shares_deleted += 1;
                        report.verified_absent += 1;
                    }
                    Ok(true) => {
                        report.problems.push(format!(
                            "store {store}: share {name} is still there after its deletion"
                        ));
                        left.push((store, name));
                    }
                    Err(e) => {
                        report.problems.push(format!(
                            "store {store}: share {name} not deleted yet ({e}); the next run \
                             that reaches the store deletes it"
                        ));
                        left.push((store, name));
                    }
                }
            }
            report.shares_pending += left.len() as u64;
            cat.set_pending_deletions(row, &left)?;
        }
        Ok(())
    }

    /// Appends an audit entry; the error, if the log cannot take it (the
    /// work is done either way).
    pub(crate) fn log(
        &self,
        cat: &Catalog,
        action: &str,
        details: serde_json::Value,
    ) -> Option<String> {
        self.audit()
            .and_then(|log| log.append(Some(cat), action, details))
            .err()
            .map(|e| format!("this run is not in the audit log: {e}"))
    }
}
