//! Work shared by many worker processes through the catalog (docs/SCALE.md):
//! who they are, their leases' heartbeat, the one-per-run steps (migrate's
//! scan, the seeding of a restore's or verify's tasks) under one lock, and
//! the claim loop of `restore`, `verify` and `archive-repair --worker`.
//! `migrate --worker` (archive::migrate::worker) claims pending versions
//! themselves; the others claim rows of the `tasks` table, one per version
//! of the run's selection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::archive::catalog::{self, Catalog, Location};
use crate::archive::error::{ArchiveError, Result};
use crate::archive::open::{Archive, LockMode, try_lock_file};
use crate::archive::time::now_secs;

/// What makes a command a worker's.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The Job's completion index or the array's task id: identity and
    /// logging only (work is claimed, never assigned by index).
    pub index: Option<String>,
    /// How long a claim holds without a heartbeat.
    pub lease: Duration,
    /// The run the workers belong to: what is done once per run is done
    /// once per run id (migrate without one: once per worker start).
    pub run_id: Option<String>,
}

/// The advisory lock of the once-per-run steps (PostgreSQL).
const ONCE_LOCK: &str = "umbra scan";

/// The once-per-run lock while held.
pub(crate) enum OnceGuard {
    File(#[allow(dead_code)] std::fs::File),
    /// Held by the catalog connection's session (released by
    /// [`Archive::release_once_lock`], or when the process dies).
    Advisory,
}

fn random_tag() -> Result<String> {
    let mut b = [0u8; 3];
    getrandom::fill(&mut b).map_err(|e| ArchiveError::Random(e.to_string()))?;
    Ok(crate::share::format::hex(&b))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A worker's lease owner name, unique per process: `INDEX@HOST/PID-RANDOM`
/// (a restarted pod may reuse its index, host name and PID 1).
pub(crate) fn owner_name(index: Option<&str>) -> Result<String> {
    Ok(format!(
        "{}@{}/{}-{}",
        index.unwrap_or("-"),
        hostname(),
        std::process::id(),
        random_tag()?
    ))
}

/// Whether the once-per-run step recorded under `key` is still to do:
/// not done for this run id (or, without one, not finished since
/// `started`).
pub(crate) fn once_needed(
    cat: &Catalog,
    key: &str,
    run_id: Option<&str>,
    started: i64,
) -> Result<bool> {
    let Some(text) = cat.get_meta(key)? else {
        return Ok(true);
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(true);
    };
    let finished = v["finished"].as_i64();
    Ok(match run_id {
        Some(r) => !(v["run"].as_str() == Some(r) && finished.is_some()),
        None => finished.is_none_or(|f| f < started),
    })
}

/// The record [`once_needed`] reads.
pub(crate) fn once_record(run_id: Option<&str>, owner: &str, finished: Option<i64>) -> String {
    serde_json::json!({
        "run": run_id,
        "started": now_secs(),
        "finished": finished,
        "by": owner,
    })
    .to_string()
}

/// Renews `owner`'s leases and records its counts every third of the
/// lease until `stop`; on its own connection (the main one is busy).
#[allow(clippy::too_many_arguments)]
pub(crate) fn heartbeat(
    at: &Location,
    owner: &str,
    what: &str,
    started: i64,
    lease: i64,
    stop: &AtomicBool,
    counts: &[AtomicU64; 2],
) -> Option<String> {
    let cat = match Catalog::open(at) {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    let every = Duration::from_secs((lease / 3).max(1) as u64);
    let mut next = Instant::now();
    let mut last_error = None;
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            let beat = cat.renew_leases(owner, now_secs() + lease).and_then(|_| {
                cat.worker_heartbeat(
                    owner,
                    what,
                    started,
                    lease,
                    counts[0].load(Ordering::Relaxed),
                    counts[1].load(Ordering::Relaxed),
                    false,
                )
            });
            last_error = beat.err().map(|e| e.to_string());
            next += every;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last_error
}

impl Archive {
    /// Tries the once-per-run lock: an advisory lock on PostgreSQL, a lock
    /// file in the archive directory beside a SQLite catalog.
    pub(crate) fn try_once_lock(&self, cat: &Catalog) -> Result<Option<OnceGuard>> {
        match cat.location() {
            Location::File(_) => Ok(try_lock_file(
                &self.dir.join(".scan.lock"),
                LockMode::Exclusive,
            )?
            .map(OnceGuard::File)),
            at @ Location::Postgres { .. } => {
                Ok(catalog::try_advisory_lock(cat.db(), at, ONCE_LOCK, false)?
                    .then_some(OnceGuard::Advisory))
            }
        }
    }

    pub(crate) fn release_once_lock(&self, cat: &Catalog, guard: OnceGuard) -> Result<()> {
        match guard {
            OnceGuard::File(_) => Ok(()),
            OnceGuard::Advisory => {
                catalog::advisory_unlock(cat.db(), cat.location(), ONCE_LOCK, false)
            }
        }
    }

    /// The claim loop of a restore, verify or repair worker: the first
    /// worker of run `w.run_id` records the selection's versions (`select`)
    /// as tasks of `kind`; every worker claims up to `batch` of them at a
    /// time, leased and kept alive by a heartbeat, and hands them to `work`
    /// (their version ids), then marks them done; it ends when none is left
    /// to claim or held by another live worker. Returns its owner name.
    pub(crate) fn sharded(
        &self,
        cat: &mut Catalog,
        w: &WorkerOptions,
        kind: &str,
        select: &dyn Fn(&Catalog) -> Result<Vec<i64>>,
        batch: usize,
        mut work: impl FnMut(&mut Catalog, &[i64]) -> Result<u64>,
    ) -> Result<String> {
        let run = w.run_id.clone().ok_or_else(|| {
            ArchiveError::Failed(format!(
                "{kind} --worker needs a run id its workers share: --run-id, UMBRA_RUN_ID or \
                 Slurm's SLURM_ARRAY_JOB_ID"
            ))
        })?;
        let owner = owner_name(w.index.as_deref())?;
        let started = now_secs();
        let lease = w.lease.as_secs().max(3) as i64;
        let key = format!("tasks {kind} {run}");
        let what = format!("{kind} {run}");
        cat.worker_heartbeat(&owner, &what, started, lease, 0, 0, false)?;
        let at = cat.location().clone();
        let stop = AtomicBool::new(false);
        let counts = [AtomicU64::new(0), AtomicU64::new(0)];
        let run_loop = std::thread::scope(|scope| -> Result<Option<String>> {
            let beat =
                scope.spawn(|| heartbeat(&at, &owner, &what, started, lease, &stop, &counts));
            let looped = (|| -> Result<()> {
                let mut seeded = false;
                loop {
                    if !seeded {
                        if let Some(guard) = self.try_once_lock(cat)? {
                            let seed = (|| -> Result<()> {
                                if once_needed(cat, &key, Some(&run), started)? {
                                    let ids = select(cat)?;
                                    cat.seed_tasks(&run, kind, &ids)?;
                                    cat.set_meta(
                                        &key,
                                        &once_record(Some(&run), &owner, Some(now_secs())),
                                    )?;
                                }
                                Ok(())
                            })();
                            self.release_once_lock(cat, guard)?;
                            seed?;
                            seeded = true;
                        } else {
                            seeded = !once_needed(cat, &key, Some(&run), started)?;
                        }
                    }
                    let now = now_secs();
                    let ids = if seeded {
                        cat.claim_tasks(&run, kind, &owner, now, now + lease, batch)?
                    } else {
                        Vec::new()
                    };
                    if !ids.is_empty() {
                        let bytes = work(cat, &ids)?;
                        cat.finish_tasks(&run, kind, &ids)?;
                        counts[0].fetch_add(ids.len() as u64, Ordering::Relaxed);
                        counts[1].fetch_add(bytes, Ordering::Relaxed);
                        continue;
                    }
                    if seeded && cat.tasks_leased_by_others(&run, kind, &owner, now)? == 0 {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            })();
            stop.store(true, Ordering::Relaxed);
            let beat_error = beat.join().expect("the heartbeat thread panicked");
            let _ = cat.release_tasks(&owner);
            looped.map(|_| beat_error)
        })?;
        cat.worker_heartbeat(
            &owner,
            &what,
            started,
            lease,
            counts[0].load(Ordering::Relaxed),
            counts[1].load(Ordering::Relaxed),
            true,
        )?;
        if let Some(e) = run_loop {
            eprintln!("umbra: warning: worker {owner}: its last heartbeat failed: {e}");
        }
        Ok(owner)
    }
}
