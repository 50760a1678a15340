//! `umbra config check`: the configuration against the real setup, not
//! only against itself. Every store is reached and written to (a probe put
//! and deleted), no two stores are one place, the catalog agrees with the
//! configuration (stores it names, the (t, n) its objects were split with),
//! the files holding patient data are private, and the storage cost and
//! the placement's strength are stated.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::archive::config::{PlacementReport, check_placement};
use crate::archive::error::Result;
use crate::archive::open::Archive;
use crate::share::format::SchemeKind;

/// What `umbra config check` found.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    pub placement: PlacementReport,
    /// One line per store: reached and writable, or what is wrong.
    pub stores: Vec<String>,
    /// The scheme new objects are split with ("shamir" or "compact").
    pub scheme: String,
    /// Bytes the stores hold per byte of source, for this configuration's
    /// scheme and (t, n).
    pub storage_factor: f64,
    /// What fewer than t shares keep secret with this scheme.
    pub secrecy: String,
    /// The other scheme, its storage factor with the same (t, n), and its
    /// secrecy: what switching would cost or save.
    pub other_scheme: String,
    pub other_storage_factor: f64,
    pub other_secrecy: String,
    /// Stored versions and source bytes per scheme, per the catalog.
    pub versions_by_scheme: BTreeMap<String, (u64, u64)>,
    /// Source bytes archived, and stored versions, per the catalog.
    pub source_bytes: u64,
    pub stored_versions: u64,
    /// What makes the setup wrong: a store missing or not writable, two
    /// stores in one place, the catalog naming stores the config lacks.
    pub errors: Vec<String>,
    /// What deserves a look: placements weaker than they look, objects of
    /// another (t, n), files readable by others.
    pub warnings: Vec<String>,
}

impl ConfigReport {
    /// No error (warnings allowed).
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A store name no share ever has (share names are keyed hashes; this one
/// is all zeros but the last digit) for the write probe.
const PROBE: &str = "000000000000000000000000000000000000000000000000000000000000000e";

impl Archive {
    /// Checks the configuration against the stores, the catalog and the
    /// file system.
    pub fn config_check(&self) -> Result<ConfigReport> {
        let placement = check_placement(&self.layout);
        let mut report = ConfigReport {
            warnings: placement.warnings.clone(),
            placement,
            stores: Vec::new(),
            scheme: String::new(),
            storage_factor: 0.0,
            secrecy: String::new(),
            other_scheme: String::new(),
            other_storage_factor: 0.0,
            other_secrecy: String::new(),
            versions_by_scheme: BTreeMap::new(),
            source_bytes: 0,
            stored_versions: 0,
            errors: Vec::new(),
        };
        self.check_private_files(&mut report);
        self.check_stores(&mut report)?;
        self.check_nesting(&mut report);
        if let Some(cat) = self.catalog_if_exists()? {
            if let Err(e) = self.check_catalog_stores(&cat) {
                report.errors.push(e.to_string());
            }
            let (t, n) = (self.layout.threshold.t(), self.layout.threshold.n());
            for ((st, sn), count) in cat.split_shapes()? {
                if (st, sn) == (0, 0) {
                    continue;
                }
                if (st, sn) != (t, n) {
                    report.warnings.push(format!(
                        "{count} stored version(s) were split ({st}, {sn}); umbra.toml now says \
                         ({t}, {n}): they keep their own t and n (restore needs {st} of their \
                         {sn} shares), new objects get the new ones"
                    ));
                }
            }
            // Shares the catalog has on another store than umbra.toml now
            // places their x on (a store added, retired or swapped).
            let mut misplaced: BTreeMap<(String, String), u64> = BTreeMap::new();
            for (x, store, count) in cat.placement_counts()? {
                let wanted = self
                    .layout
                    .placement
                    .iter()
                    .find(|(px, _)| *px == x)
                    .map(|&(_, i)| self.config.stores[i].name.clone());
                if let Some(wanted) = wanted
                    && wanted != store
                {
                    *misplaced.entry((store, wanted)).or_default() += count;
                }
            }
            for ((from, to), count) in misplaced {
                report.warnings.push(format!(
                    "{count} share(s) are on store {from}, where umbra.toml now places them on \
                     store {to}: `umbra archive-repair --rebalance` moves them (copied, or rebuilt \
                     from t good shares) and then deletes the old copies"
                ));
            }
            (report.source_bytes, report.stored_versions) = cat.stored_bytes()?;
            for (scheme, versions, bytes) in cat.scheme_counts()? {
                if scheme != self.layout.scheme.name() {
                    report.warnings.push(format!(
                        "{versions} stored version(s) ({bytes} bytes of source) are {scheme}; \
                         umbra.toml now says {}: they stay {scheme} until rewritten, new \
                         objects are {}",
                        self.layout.scheme, self.layout.scheme
                    ));
                }
                report.versions_by_scheme.insert(scheme, (versions, bytes));
            }
        }
        let (t, n) = (self.layout.threshold.t(), self.layout.threshold.n());
        let scheme = self.layout.scheme;
        let other = match scheme {
            SchemeKind::Shamir => SchemeKind::Compact,
            SchemeKind::Compact => SchemeKind::Shamir,
        };
        report.scheme = scheme.name().into();
        report.storage_factor = scheme.storage_factor(t, n);
        report.secrecy = scheme.secrecy().into();
        report.other_scheme = other.name().into();
        report.other_storage_factor = other.storage_factor(t, n);
        report.other_secrecy = other.secrecy().into();
        Ok(report)
    }

    /// The catalog, audit log and site key hold patient identifiers or the
    /// key to the names: 0600.
    fn check_private_files(&self, report: &mut ConfigReport) {
        for (what, rel) in [
            ("catalog", &self.config.catalog),
            ("audit log", &self.config.audit_log),
            ("site key", &self.config.site_key),
        ] {
            let path = self.dir.join(rel);
            if let Ok(meta) = std::fs::metadata(&path) {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    report.warnings.push(format!(
                        "{what} {} is readable by others (mode {mode:o}); it should be 0600 \
                         (umbra tightens the catalog when it opens it)",
                        path.display()
                    ));
                }
            }
        }
    }

    /// No local store inside another, and the archive's own files (catalog,
    /// staging, audit log, site key) in none: a store is a provider's, and
    /// the catalog or key there would hand it the names or more.
    fn check_nesting(&self, report: &mut ConfigReport) {
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let roots: Vec<(&str, PathBuf)> = self
            .stores
            .iter()
            .filter_map(|s| Some((s.label(), canon(s.local_root()?))))
            .collect();
        for (a, ra) in &roots {
            for (b, rb) in &roots {
                if a != b && ra != rb && rb.starts_with(ra) {
                    report.errors.push(format!(
                        "store {b} ({}) is inside store {a} ({})",
                        rb.display(),
                        ra.display()
                    ));
                }
            }
            for (what, rel) in [
                ("catalog", &self.config.catalog),
                ("staging directory", &self.config.staging),
                ("audit log", &self.config.audit_log),
                ("site key", &self.config.site_key),
            ] {
                let path = canon(&self.dir.join(rel));
                if path.starts_with(ra) {
                    report.errors.push(format!(
                        "the {what} {} is inside store {a} ({}): move it out of the store",
                        path.display(),
                        ra.display()
                    ));
                }
            }
        }
    }

    /// Each store reached and written to; no two stores in one place.
    fn check_stores(&self, report: &mut ConfigReport) -> Result<()> {
        let mut places: BTreeMap<String, &str> = BTreeMap::new();
        let scratch = tempfile::NamedTempFile::new_in(&self.dir).ok();
        for (s, conf) in self.stores.iter().zip(&self.config.stores) {
            let place = match s.local_root() {
                Some(root) => std::fs::canonicalize(root)
                    .unwrap_or_else(|_| root.to_path_buf())
                    .display()
                    .to_string(),
                None => format!(
                    "{} at {}",
                    conf.url.trim_end_matches('/'),
                    conf.endpoint.as_deref().unwrap_or("its default endpoint")
                ),
            };
            if let Some(other) = places.insert(place.clone(), s.label()) {
                report.errors.push(format!(
                    "stores {other} and {} are one place ({place}): that provider would hold \
                     the shares of both",
                    s.label()
                ));
            }
            let line = match (s.list(), &scratch) {
                (Err(e), _) => {
                    report
                        .errors
                        .push(format!("store {}: cannot be listed: {e}", s.label()));
                    format!("{}: {place}: NOT reachable ({e})", s.label())
                }
                (Ok(names), Some(probe)) => {
                    let written = s.put_if_absent(PROBE, probe.path());
                    let _ = s.delete(PROBE);
                    match written {
                        Ok(_) => format!(
                            "{}: {place}: reachable, writable, {} share(s)",
                            s.label(),
                            names.len()
                        ),
                        Err(e) => {
                            report
                                .errors
                                .push(format!("store {}: not writable: {e}", s.label()));
                            format!("{}: {place}: NOT writable ({e})", s.label())
                        }
                    }
                }
                (Ok(names), None) => {
                    format!(
                        "{}: {place}: reachable, {} share(s)",
                        s.label(),
                        names.len()
                    )
                }
            };
            report.stores.push(line);
        }
        Ok(())
    }
}
