//! `umbra key rotate`: a new site key, every share renamed under it in its
//! store (names are keyed hashes of the version and x), the audit log's
//! chain moved to the new key, then the old key retired.
//!
//! Resumable: the new key is written first (`site.key.new`, 0600) and the
//! catalog's `key_rotation` entry records its fingerprint and the phase.
//! Names: for each share, the copy under its new name is put create-only,
//! then one transaction renames the placement and records the old name as
//! owed a delete, then old names are deleted; a store that does not answer
//! leaves the rotation unfinished (exit 3; run it again). Audit: the old
//! chain is checked, set aside (`audit.log.key-TIME`) and a new chain
//! under the new key begins with an entry that names it, its length and
//! head. Swap: `site.key.new` replaces `site.key`. Until it is finished,
//! every command that takes the archive lock refuses to run and says so.

use serde::Serialize;
use serde_json::{Value, json};

use super::config::SiteKey;
use super::error::{ArchiveError, At, Result};
use super::forget::ForgetReport;
use super::open::{Archive, ROTATION};
use super::time::now_secs;
use super::util::{decode_hex, decode_hex32};

/// What `key rotate` did.
#[derive(Debug, Default, Serialize)]
pub struct RotateReport {
    /// This run went on with a rotation an earlier one began.
    pub resumed: bool,
    /// Shares renamed under the new key by this run, and already renamed.
    pub renamed: u64,
    pub already: u64,
    /// Shares whose store did not answer: the rotation is unfinished.
    pub left: u64,
    pub old_names_deleted: u64,
    pub old_names_pending: u64,
    /// The new key replaced the old one; the audit chain moved with it.
    pub finished: bool,
    pub audit_set_aside: Option<String>,
    pub problems: Vec<String>,
}

impl Archive {
    /// Rotates the site key, or finishes a rotation an earlier run began.
    pub fn rotate_key(&mut self) -> Result<RotateReport> {
        self.lock_for_rotation()?;
        // Not `catalog()`: mid-swap, the catalog already names the new key.
        let mut cat = super::catalog::Catalog::open(&self.catalog_location()?)?;
        let key_path = self.dir.join(&self.config.site_key);
        let mut new_path = key_path.clone().into_os_string();
        new_path.push(".new");
        let new_path = std::path::PathBuf::from(new_path);
        let old = SiteKey::load(&key_path)?;
        let mut report = RotateReport::default();
        let mut state: Value = match cat.get_meta(ROTATION)? {
            Some(s) => {
                report.resumed = true;
                serde_json::from_str(&s).map_err(|e| {
                    ArchiveError::Failed(format!("the catalog's key rotation record is bad: {e}"))
                })?
            }
            None => Value::Null,
        };
        if !new_path.exists()
            && report.resumed
            && state["phase"] == "swap"
            && state["new"] == old.fingerprint().as_str()
        {
            // Killed right after the swap: only the record is left.
            cat.delete_meta(ROTATION)?;
            report.finished = true;
            return Ok(report);
        }
        if !new_path.exists() {
            if report.resumed && state["phase"] != "names" {
                return Err(ArchiveError::Failed(format!(
                    "the key rotation is past its renames but the new key {} is missing",
                    new_path.display()
                )));
            }
            super::config::write_site_key(&new_path)?;
        }
        let new = SiteKey::load(&new_path)?;
        if state.is_null() {
            state = json!({
                "new": new.fingerprint(),
                "phase": "names",
                "set_aside": format!("{}.key-{}", self.config.audit_log.display(), now_secs()),
            });
            cat.set_meta(ROTATION, &state.to_string())?;
        } else if state["new"] != new.fingerprint().as_str() {
            return Err(ArchiveError::Failed(format!(
                "{} is not the key this rotation began with (fingerprint {}, the catalog \
                 records {}): restore that file, or remove it and the catalog's key_rotation \
                 entry only if no share was renamed yet",
                new_path.display(),
                new.fingerprint(),
                state["new"]
            )));
        }

        if state["phase"] == "names" {
            self.rename_all(&mut cat, &new, &mut report)?;
            if report.left > 0 {
                return Ok(report);
            }
            state["phase"] = "audit".into();
            cat.set_meta(ROTATION, &state.to_string())?;
        }
        super::migrate::stage::pause_point("rotated", 0);
        let set_aside = self
            .dir
            .join(state["set_aside"].as_str().unwrap_or("audit.log.key-old"));
        if state["phase"] == "audit" {
            let was = self.audit_with(old.audit_key())?;
            let next = self.audit_with(new.audit_key())?;
            // Already moved (a run killed right after): its chain checks.
            if !(next.has_entries(Some(&cat))? && next.verify(Some(&cat)).is_ok()) {
                was.rotate_to(&cat, &next, &set_aside)?;
            }
            state["phase"] = "swap".into();
            cat.set_meta(ROTATION, &state.to_string())?;
        }
        // The new key takes the old one's place: the old is retired.
        cat.set_meta(super::open::SITE_KEY_ID, &new.fingerprint())?;
        std::fs::rename(&new_path, &key_path).at(&key_path)?;
        if let Some(dir) = key_path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .at(dir)?;
        }
        cat.delete_meta(ROTATION)?;
        report.finished = true;
        report.audit_set_aside = set_aside
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        Ok(report)
    }

    /// Every share under its name for `new`: put create-only, renamed in
    /// the catalog with the old name owed a delete, then old names deleted.
    fn rename_all(
        &self,
        cat: &mut super::catalog::Catalog,
        new: &SiteKey,
        report: &mut RotateReport,
    ) -> Result<()> {
        let scratch = tempfile::tempdir_in(self.staging()).at(&self.staging())?;
        for (k, (id, content, split_id, x, store_name, name)) in
            cat.named_placements()?.into_iter().enumerate()
        {
            let renamed = new.object_name(&decode_hex32(&content)?, &decode_hex(&split_id)?, x);
            if renamed == name {
                report.already += 1;
                continue;
            }
            let store = match self.store(&store_name) {
                Ok(s) => s,
                Err(e) => {
                    report.problems.push(e.to_string());
                    report.left += 1;
                    continue;
                }
            };
            let tmp = scratch.path().join(&name);
            let copied = store.get(&name, &tmp).and_then(|found| {
                if found {
                    store.put_if_absent(&renamed, &tmp)?;
                }
                Ok(())
            });
            let _ = std::fs::remove_file(&tmp);
            if let Err(e) = copied {
                report.problems.push(format!(
                    "store {store_name}: share {name} not renamed yet ({e}); run `umbra key \
                     rotate` again when the store answers"
                ));
                report.left += 1;
                continue;
            }
            super::migrate::stage::pause_point("renamed", k);
            cat.rename_placement(id, x, &store_name, &name, &renamed)?;
            report.renamed += 1;
        }
        let mut deletions = ForgetReport::default();
        self.delete_forgotten(cat, &mut deletions)?;
        report.old_names_deleted = deletions.shares_deleted;
        report.old_names_pending = deletions.shares_pending;
        report.problems.extend(deletions.problems);
        Ok(())
    }
}
