//! `umbra status` and `umbra ls`: what the archive holds, from the catalog
//! (and for status the stores and the audit log). Neither takes the
//! archive's lock: both run beside a migrate, and neither changes anything.

use serde::Serialize;
use serde_json::Value;

use super::catalog::{Listed, Selection, StateCount, VerificationAge};
use super::error::Result;
use super::open::Archive;
use super::time::rfc3339;

/// The states, in the order a person reads them.
pub const STATES: [&str; 5] = ["pending", "failed", "degraded", "written", "verified"];

/// One store of [`StatusReport`].
#[derive(Debug, Serialize)]
pub struct StoreStatus {
    pub name: String,
    pub url: String,
    /// In umbra.toml (a store only the catalog names was removed from it).
    pub configured: bool,
    /// Shares the catalog records as written there, and their bytes.
    pub shares: u64,
    pub bytes: u64,
    /// Shares of splits from before their length was recorded (not in
    /// `bytes`).
    pub shares_of_unknown_size: u64,
    /// Whether it answered a listing (None: not asked, `--offline`).
    pub reachable: Option<bool>,
    /// Objects its listing returned (shares and anything else umbra
    /// names there).
    pub listed: Option<u64>,
    pub error: Option<String>,
}

/// One migrate worker of the last day, or one still running.
#[derive(Debug, Serialize)]
pub struct WorkerStatus {
    pub id: String,
    pub source: String,
    pub started: String,
    pub last_heartbeat: String,
    pub finished: Option<String>,
    /// Unfinished and heard from within its lease.
    pub live: bool,
    /// Unfinished and silent past its lease: killed (its claims are taken
    /// over by the other workers or the next run).
    pub lost: bool,
    pub objects: u64,
    pub bytes: u64,
    /// Source bytes it wrote per second, start to last heartbeat.
    pub bytes_per_second: f64,
}

/// The last run of one command, from the audit log.
#[derive(Debug, Serialize)]
pub struct LastRun {
    pub action: String,
    pub time: String,
    pub details: Value,
}

/// What `umbra status` reports.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub archive: String,
    pub t: usize,
    pub n: usize,
    pub scheme: String,
    /// Bytes stored per byte of source for the configured scheme.
    pub configured_storage_factor: f64,
    /// Every state of [`STATES`], in that order, zeros included.
    pub states: Vec<StateCount>,
    pub objects: u64,
    pub versions: u64,
    /// Source bytes of the versions whose shares are in the stores.
    pub stored_source_bytes: u64,
    pub stored_versions: u64,
    /// Share bytes the catalog records in all stores.
    pub store_bytes: u64,
    /// `store_bytes` over `stored_source_bytes` (None: nothing stored, or
    /// lengths not recorded).
    pub storage_factor: Option<f64>,
    pub stores: Vec<StoreStatus>,
    /// Stored versions per (t, n) and per scheme, where they differ from
    /// umbra.toml: `archive-repair --reshare` is what would change them.
    pub other_parameters: Vec<String>,
    pub never_verified: u64,
    /// The oldest version never verified: path, version, recorded at.
    pub oldest_unverified: Option<(String, i64, String)>,
    pub least_recently_verified: Option<String>,
    pub last_runs: Vec<LastRun>,
    pub audit_error: Option<String>,
    /// Shares owed a delete (forgotten, erased or moved), their store not
    /// reached yet.
    pub deletions_pending: u64,
    /// `migrate --worker` processes of the last day, and those still live.
    pub workers: Vec<WorkerStatus>,
    /// Pending versions claimed by a live worker's lease.
    pub leases: u64,
    /// The live workers' bytes per second together.
    pub workers_bytes_per_second: f64,
}

fn state_lines(counts: Vec<StateCount>) -> Vec<StateCount> {
    STATES
        .iter()
        .map(|&st| {
            counts
                .iter()
                .find(|c| c.state == st)
                .cloned()
                .unwrap_or_else(|| StateCount {
                    state: st.to_string(),
                    ..Default::default()
                })
        })
        .collect()
}

impl Archive {
    /// The archive's state; with `probe`, each store is listed to see that
    /// it answers (a listing of a large cloud store takes a while).
    pub fn status(&self, probe: bool) -> Result<StatusReport> {
        let cat = self.catalog()?;
        let (t, n) = (self.layout.threshold.t(), self.layout.threshold.n());
        let states = state_lines(cat.state_counts()?);
        let (stored_source_bytes, stored_versions) = cat.stored_bytes()?;
        let usage = cat.store_usage()?;
        let mut stores: Vec<StoreStatus> = Vec::new();
        for (s, conf) in self.stores.iter().zip(&self.config.stores) {
            let u = usage.iter().find(|u| u.store == conf.name);
            let missing = s.local_root().filter(|root| !root.is_dir());
            let (reachable, listed, error) = if let (true, Some(root)) = (probe, missing) {
                (
                    Some(false),
                    None,
                    Some(format!("store directory {} is missing", root.display())),
                )
            } else if probe {
                match s.list() {
                    Ok(names) => (Some(true), Some(names.len() as u64), None),
                    Err(e) => (Some(false), None, Some(e.to_string())),
                }
            } else {
                (None, None, None)
            };
            stores.push(StoreStatus {
                name: conf.name.clone(),
                url: conf.url.clone(),
                configured: true,
                shares: u.map_or(0, |u| u.shares),
                bytes: u.map_or(0, |u| u.bytes),
                shares_of_unknown_size: u.map_or(0, |u| u.unknown_size),
                reachable,
                listed,
                error,
            });
        }
        for u in &usage {
            if !stores.iter().any(|s| s.name == u.store) {
                stores.push(StoreStatus {
                    name: u.store.clone(),
                    url: String::new(),
                    configured: false,
                    shares: u.shares,
                    bytes: u.bytes,
                    shares_of_unknown_size: u.unknown_size,
                    reachable: None,
                    listed: None,
                    error: Some("named by the catalog, not in umbra.toml".into()),
                });
            }
        }
        let store_bytes: u64 = stores.iter().map(|s| s.bytes).sum();
        let unknown: u64 = stores.iter().map(|s| s.shares_of_unknown_size).sum();
        let storage_factor = (stored_source_bytes > 0 && unknown == 0)
            .then(|| store_bytes as f64 / stored_source_bytes as f64);
        let mut other_parameters = Vec::new();
        for ((st, sn), count) in cat.split_shapes()? {
            if (st, sn) != (t, n) {
                let shape = if st == 0 {
                    "an unrecorded (t, n)".to_string()
                } else {
                    format!("({st}, {sn})")
                };
                other_parameters.push(format!("{count} version(s) split with {shape}"));
            }
        }
        for (scheme, count, _) in cat.scheme_counts()? {
            if scheme != self.layout.scheme.name() {
                other_parameters.push(format!("{count} version(s) in the {scheme} scheme"));
            }
        }
        let VerificationAge {
            never_checked,
            oldest_unchecked,
            least_recently_checked,
        } = cat.verification_age()?;
        let (last_runs, audit_error) = match self.audit().and_then(|log| log.entries(Some(&cat))) {
            Ok(entries) => (last_runs(&entries), None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let now = super::time::now_secs();
        let workers: Vec<WorkerStatus> = cat
            .workers()?
            .into_iter()
            .filter_map(|w| {
                let unfinished = w.finished_at.is_none();
                let live = unfinished && w.heartbeat_at + w.lease >= now;
                (live || w.started_at >= now - 86_400).then(|| WorkerStatus {
                    bytes_per_second: w.bytes as f64
                        / (w.finished_at.unwrap_or(w.heartbeat_at) - w.started_at).max(1) as f64,
                    id: w.id,
                    source: w.source_ref,
                    started: rfc3339(w.started_at),
                    last_heartbeat: rfc3339(w.heartbeat_at),
                    finished: w.finished_at.map(rfc3339),
                    live,
                    lost: unfinished && !live,
                    objects: w.objects,
                    bytes: w.bytes,
                })
            })
            .collect();
        let workers_bytes_per_second = workers
            .iter()
            .filter(|w| w.live)
            .map(|w| w.bytes_per_second)
            .sum();
        Ok(StatusReport {
            leases: cat.live_leases(now)?,
            workers,
            workers_bytes_per_second,
            archive: self.dir.display().to_string(),
            t,
            n,
            scheme: self.layout.scheme.name().to_string(),
            configured_storage_factor: self.layout.scheme.storage_factor(t, n),
            objects: states.iter().map(|s| s.objects).sum(),
            versions: states.iter().map(|s| s.versions).sum(),
            states,
            stored_source_bytes,
            stored_versions,
            store_bytes,
            storage_factor,
            stores,
            other_parameters,
            never_verified: never_checked,
            oldest_unverified: oldest_unchecked.map(|(p, v, at)| (p, v, rfc3339(at))),
            least_recently_verified: least_recently_checked.map(rfc3339),
            last_runs,
            audit_error,
            deletions_pending: cat
                .pending_deletions()?
                .iter()
                .map(|(_, names)| names.len() as u64)
                .sum(),
        })
    }

    /// `umbra ls`: the latest version of each selected object, or every
    /// version.
    pub fn ls(&self, sel: &Selection, every_version: bool) -> Result<Vec<Listed>> {
        self.catalog()?.list(sel, every_version)
    }
}

/// The newest entry of each command that changes or checks the archive.
fn last_runs(entries: &[Value]) -> Vec<LastRun> {
    [
        "migrate",
        "verify",
        "repair",
        "restore",
        "forget",
        "erase",
        "rebalance",
    ]
    .iter()
    .filter_map(|&action| {
        entries
            .iter()
            .rev()
            .find(|e| e["action"] == action)
            .map(|e| LastRun {
                action: action.to_string(),
                time: e["time"].as_i64().map(rfc3339).unwrap_or_default(),
                details: e["details"].clone(),
            })
    })
    .collect()
}
