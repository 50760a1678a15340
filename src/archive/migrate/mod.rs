//! The archive operations: init, migrate, restore, verify, repair.
//!
//! Crash safety of `migrate`, step by step for one object version:
//! 1. the version is recorded `pending` (with its BLAKE3) in the catalog;
//! 2. shares of an earlier attempt, named in the catalog, are deleted;
//! 3. a fresh split id and the n store names are committed to the catalog;
//! 4. the shares are computed into a staging directory (no plaintext there;
//!    small objects are read whole and split many per engine call, larger
//!    ones stream);
//! 5. each share is put create-only and atomically into its store, and is
//!    on disk before its name is (local stores: `syncfs` of the staging file
//!    system before the link, and of the store's after it);
//! 6. the version is marked `written`.
//!
//! Objects go through steps 2-6 in groups (`--group`, default 64 objects or
//! 256 MiB): one catalog commit per step and one file system sync per store
//! per group, where one object at a time would wait for 2n + 2 syncs each.
//! Steps 2 and 4 may run before step 3 (nothing reaches a store before it),
//! so that one group is split while the stores take the one before.
//!
//! A run killed anywhere leaves at most `pending` versions whose shares are
//! all named in the catalog: the next run deletes them and starts those
//! objects again (step 2), so nothing is lost and nothing is left twice.
//! Names come from a fresh random split id per attempt, so a share of one
//! attempt is never mistaken for another's.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::archive::audit::AuditLog;
use crate::archive::catalog::{Catalog, Identity, NewObject, ObjectRow, Placement, Selection};
use crate::archive::config::{self, Config, Layout, SiteKey};
use crate::archive::source::orthanc::Orthanc;
use crate::archive::source::{self, Filter, Identified, SourceFile, SourceSpec};
use crate::archive::store::{self, Store};
use crate::archive::{ArchiveError, At, Result, now_secs};
use crate::buffer::read_up_to;
use crate::engine::Backend;
use crate::share::envelope::{self, ObjectMeta};
use crate::share::format::hex;
use crate::share::inspect::inspect_share;
use crate::share::reader::ShareSource;
use crate::share::writer::ShareWriter;
use crate::sharing::SplitPlan;
use crate::stream::combine::{self, CombineOptions, CombineTarget};
use crate::stream::repair::repair_share;
use crate::stream::split::{self, SplitOptions, SplitSecrets};

/// Where Orthanc downloads wait for their shares to be written, below the
/// archive directory (hospital side).
const ORTHANC_CACHE: &str = "source-cache";

/// Temporary directories of repair (removed by the lock's cleanup) and of
/// a plain verify (left alone: it runs without the lock).
const VERIFY_PREFIX: &str = ".umbra-verify-";
const CHECK_PREFIX: &str = ".umbra-check-";

/// Chooses the backend once the job size is known (the CLI honours
/// `--backend` and `--cross-check` here).
pub type BackendFactory<'a> = &'a mut dyn FnMut(u64) -> Result<Box<dyn Backend>, String>;

/// An opened archive directory.
pub struct Archive {
    pub dir: PathBuf,
    pub config: Config,
    pub layout: Layout,
    pub stores: Vec<Box<dyn Store>>,
    /// Missing only in a disaster: `restore --without-catalog` works
    /// without it (it reads names from the stores, not from the key).
    site_key: std::result::Result<SiteKey, String>,
    _lock: Option<File>,
}

/// Creates a new archive in `dir` (config, empty catalog, site key, stores).
pub fn init(dir: &Path, t: usize, n: usize, stores: usize) -> Result<Archive> {
    let config = config::write_new(dir, t, n, stores)?;
    Catalog::create(&dir.join(&config.catalog))?;
    Archive::open(dir)
}

impl Archive {
    pub fn open(dir: &Path) -> Result<Self> {
        let config = Config::load(dir)?;
        let layout = config.layout(&dir.join(config::CONFIG_FILE))?;
        let stores = config
            .stores
            .iter()
            .map(|s| {
                store::open(
                    &s.name,
                    &s.url,
                    s.endpoint.as_deref(),
                    s.region.as_deref(),
                    dir,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let site_key = SiteKey::load(&dir.join(&config.site_key)).map_err(|e| e.to_string());
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            layout,
            stores,
            site_key,
            _lock: None,
        })
    }

    /// Takes the archive's exclusive lock (one writer at a time), then
    /// removes what a killed writer left: staging files and store partials.
    fn lock(&mut self) -> Result<()> {
        let path = self.dir.join(".lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(ArchiveError::Locked { path }),
            Err(std::fs::TryLockError::Error(e)) => return Err(e).at(&path),
        }
        self._lock = Some(f);
        // Only what this code creates there (tempfile's `.tmp*` directories),
        // whatever the configuration names as staging.
        let staging = self.staging();
        std::fs::create_dir_all(&staging).at(&staging)?;
        for entry in std::fs::read_dir(&staging).at(&staging)? {
            let entry = entry.at(&staging)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if (name.starts_with(".tmp") || name.starts_with(VERIFY_PREFIX))
                && entry.file_type().at(&entry.path())?.is_dir()
            {
                std::fs::remove_dir_all(entry.path()).at(&entry.path())?;
            }
        }
        for s in &self.stores {
            // A store that cannot be listed now fails later, per object.
            let _ = s.clean_partials();
        }
        Ok(())
    }

    fn staging(&self) -> PathBuf {
        self.dir.join(&self.config.staging)
    }

    pub fn catalog(&self) -> Result<Catalog> {
        Catalog::open(&self.dir.join(&self.config.catalog))
    }

    fn site_key(&self) -> Result<&SiteKey> {
        self.site_key
            .as_ref()
            .map_err(|e| ArchiveError::Failed(e.clone()))
    }

    pub fn audit(&self) -> Result<AuditLog> {
        Ok(AuditLog::new(
            &self.dir.join(&self.config.audit_log),
            self.site_key()?.audit_key(),
        ))
    }

    fn store(&self, name: &str) -> Result<&dyn Store> {
        self.stores
            .iter()
            .find(|s| s.label() == name)
            .map(|s| s.as_ref())
            .ok_or_else(|| {
                ArchiveError::Failed(format!(
                    "the catalog names store {name:?}, which umbra.toml does not configure"
                ))
            })
    }

    fn plan(&self) -> Result<SplitPlan> {
        let xs: Vec<u8> = self.layout.placement.iter().map(|p| p.0).collect();
        SplitPlan::new(self.layout.threshold, xs).map_err(|e| ArchiveError::Core(e.into()))
    }
}

fn store_err(store: &str, object: &str) -> impl FnOnce(std::io::Error) -> ArchiveError {
    let store = store.to_string();
    let object = object.to_string();
    move |error| ArchiveError::Store {
        store,
        object,
        error,
    }
}

fn hash_file(path: &Path) -> Result<blake3::Hash> {
    let mut h = blake3::Hasher::new();
    h.update_reader(File::open(path).at(path)?).at(path)?;
    Ok(h.finalize())
}

/// Records one scanned file that is new or whose size or time changed:
/// `hash` is `None` when the selection leaves it out.
fn record(
    cat: &Catalog,
    f: &SourceFile,
    latest: Option<ObjectRow>,
    ident: Identified,
    hash: Option<String>,
    dry_run: bool,
    report: &mut MigrateReport,
) -> Result<()> {
    let Some(hash) = hash else {
        report.not_selected += 1;
        return Ok(());
    };
    if let Some(l) = &latest
        && l.blake3 == hash
        && l.size == f.size
    {
        if !dry_run {
            cat.touch(l.id, f.change_sig)?;
        }
        report.unchanged += 1;
        return Ok(());
    }
    if let Some(w) = ident.warning {
        report.warnings.push(w);
    }
    report.new_versions += 1;
    if dry_run {
        return Ok(());
    }
    let new = NewObject {
        source_ref: &f.source_ref,
        size: f.size,
        blake3: &hash,
        change_sig: f.change_sig,
        kind: ident.kind,
        ids: &ident.ids,
    };
    match latest {
        // Not yet written: it becomes this content instead.
        Some(l) if l.state == "pending" => cat.update_pending(l.id, &new),
        _ => cat.insert(&new).map(|_| ()),
    }
}

fn decode_hex32(s: &str) -> Result<[u8; 32]> {
    blake3::Hash::from_hex(s)
        .map(|h| *h.as_bytes())
        .map_err(|_| ArchiveError::Failed(format!("catalog holds a malformed hash {s:?}")))
}

/// Test hook (documented in tests/archive.rs): with UMBRA_TEST_PAUSE_AT set
/// to `POINT:K`, the K-th object of a migrate run stops at POINT (`split`,
/// `put` or `written`, each reached by a whole group at once), creates the file named by UMBRA_TEST_PAUSE_FILE and
/// waits until that file is removed. Tests kill the process there, or
/// change the stores and let it go on.
fn pause_point(point: &str, k: usize) {
    let Ok(at) = std::env::var("UMBRA_TEST_PAUSE_AT") else {
        return;
    };
    let Ok(file) = std::env::var("UMBRA_TEST_PAUSE_FILE") else {
        return;
    };
    if at != format!("{point}:{k}") {
        return;
    }
    let _ = std::fs::write(&file, point);
    while Path::new(&file).exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[derive(Debug, Clone)]
pub struct MigrateOptions {
    pub source: SourceSpec,
    pub filter: Filter,
    pub dry_run: bool,
    /// Orthanc: list every instance instead of following `/changes` from
    /// the stored cursor (the first run always does).
    pub full_scan: bool,
    /// Objects written and made durable together (see [`DEFAULT_GROUP`]).
    pub group: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrateReport {
    pub dry_run: bool,
    /// Files found under the source.
    pub scanned: u64,
    /// Files whose latest version is already recorded.
    pub unchanged: u64,
    /// Files the selection (--older-than, --modality) left out.
    pub not_selected: u64,
    /// New objects or new versions of changed ones recorded in this run.
    pub new_versions: u64,
    /// Versions whose n shares were written in this run.
    pub written: u64,
    pub bytes_written: u64,
    /// Versions that failed (they stay pending and are retried next run).
    pub failed: u64,
    /// Pending versions whose source file disappeared before they were
    /// written: forgotten.
    pub vanished: u64,
    /// Orthanc, full scans: archived instances no longer in the PACS (their
    /// shares are kept).
    pub gone_from_source: u64,
    /// Orthanc: whether every instance was listed (else `/changes` only).
    pub full_scan: bool,
    pub warnings: Vec<String>,
    pub failures: Vec<String>,
}

/// Objects written and made durable together, by default.
pub const DEFAULT_GROUP: usize = 64;
/// A group also ends once it holds this many source bytes.
const GROUP_BYTES: u64 = 256 << 20;
/// Source files whose headers and hashes are read in parallel and recorded
/// in one catalog transaction.
const SCAN_CHUNK: usize = 256;
/// Objects split or rebuilt at the same time (each is parallel inside too).
const MAX_WORKERS: usize = 4;

/// Consecutive groups of at most `objects` rows and (unless one row is
/// bigger) `bytes` bytes, each with the run's number of its first row.
fn groups(rows: &[ObjectRow], objects: usize, bytes: u64) -> Vec<(usize, &[ObjectRow])> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let mut end = start + 1;
        let mut size = rows[start].size;
        while end < rows.len() && end - start < objects && size + rows[end].size <= bytes {
            size += rows[end].size;
            end += 1;
        }
        out.push((start + 1, &rows[start..end]));
        start = end;
    }
    out
}

/// `f` over `items` on a few worker threads (each object's own work is
/// parallel inside too; more workers would only hold more memory), each
/// with its own state from `init`, which lives across its items. Results
/// in the order of `items`.
fn parallel_map<T: Sync, S, R: Send>(
    items: &[T],
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &T) -> R + Sync,
) -> Vec<R> {
    let workers = rayon::current_num_threads().clamp(2, MAX_WORKERS);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers.min(items.len()) {
            scope.spawn(|| {
                let mut state = init();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(&mut state, i, item);
                    *results[i].lock().expect("no panics while held") = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .expect("no panics while held")
                .expect("every item ran")
        })
        .collect()
}

/// One object version on its way to the stores.
struct Job<'a> {
    row: &'a ObjectRow,
    /// The run's number of this object, from 1.
    k: usize,
    secrets: SplitSecrets,
    placements: Vec<Placement>,
}

/// A group split into the staging directory, on its way to the stores.
struct Staged<'a> {
    group: &'a [ObjectRow],
    /// The run's number of the group's first object, from 1.
    first: usize,
    jobs: Vec<Job<'a>>,
    /// Each job's staged share files, in placement order.
    files: Vec<Result<Vec<PathBuf>>>,
    /// Objects of the group that failed before their split, by position.
    failures: BTreeMap<usize, ArchiveError>,
    _dir: tempfile::TempDir,
}

impl Staged<'_> {
    fn bytes(&self) -> u64 {
        self.group.iter().map(|r| r.size).sum()
    }
}

/// Failed puts: the job and the error naming store and object.
type PutErrors = Vec<(usize, ArchiveError)>;

/// Progress of a run: objects done of total, source bytes done.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64, u64);

impl Archive {
    /// Records new and changed objects of the source, then writes the shares
    /// of every pending version. A failing object is recorded and left
    /// pending; it never stops the run.
    pub fn migrate(
        &mut self,
        opts: &MigrateOptions,
        make_backend: BackendFactory<'_>,
        progress: Progress<'_>,
    ) -> Result<MigrateReport> {
        self.lock()?;
        let mut cat = self.catalog()?;
        let mut report = MigrateReport {
            dry_run: opts.dry_run,
            ..Default::default()
        };
        let today = now_secs().div_euclid(86_400);
        let source_root = match &opts.source {
            SourceSpec::Dir(d) => {
                let files = source::walk(d)?;
                report.scanned += files.len() as u64;
                self.scan_files(
                    &mut cat,
                    &files,
                    &opts.filter,
                    today,
                    opts.dry_run,
                    &mut report,
                )?;
                d.clone()
            }
            SourceSpec::Orthanc(url) => {
                let cache = self.dir.join(ORTHANC_CACHE);
                self.scan_orthanc(
                    &mut cat,
                    &Orthanc::new(url),
                    &cache,
                    opts,
                    today,
                    &mut report,
                )?;
                cache
            }
        };
        let pending = cat.pending()?;
        if opts.dry_run {
            self.clean_cache(&cat, &opts.source)?;
            return Ok(report);
        }
        let total_bytes: u64 = pending.iter().map(|r| r.size).sum();
        let backend = if pending.is_empty() {
            None
        } else {
            Some(make_backend(total_bytes).map_err(ArchiveError::Failed)?)
        };
        if let Some(backend) = backend.as_deref() {
            self.write_pending(
                &mut cat,
                backend,
                &source_root,
                &pending,
                opts,
                progress,
                &mut report,
            )?;
        }
        self.clean_cache(&cat, &opts.source)?;
        self.audit()?.append(
            Some(&cat),
            "migrate",
            json!({
                "scanned": report.scanned,
                "new_versions": report.new_versions,
                "written": report.written,
                "bytes_written": report.bytes_written,
                "failed": report.failed,
            }),
        )?;
        Ok(report)
    }

    /// Lists every Orthanc instance; downloads the new and changed ones
    /// into `cache` and records them like files.
    fn scan_orthanc(
        &self,
        cat: &mut Catalog,
        orthanc: &Orthanc,
        cache: &Path,
        opts: &MigrateOptions,
        today: i64,
        report: &mut MigrateReport,
    ) -> Result<()> {
        let cursor_key = format!("orthanc_changes_cursor {}", orthanc.base());
        let cursor = cat
            .get_meta(&cursor_key)?
            .and_then(|c| c.parse::<u64>().ok());
        let (ids, new_cursor) = match cursor {
            Some(c) if !opts.full_scan => orthanc.new_instances_since(c)?,
            _ => {
                // The cursor first: what changes during the listing is
                // seen again next time.
                let last = orthanc.last_change()?;
                let ids = orthanc.instances()?;
                report.full_scan = true;
                let listed: std::collections::HashSet<String> =
                    ids.iter().map(|id| format!("orthanc/{id}")).collect();
                report.gone_from_source = cat
                    .source_refs_with_prefix("orthanc/")?
                    .iter()
                    .filter(|r| !listed.contains(*r))
                    .count() as u64;
                (ids, last)
            }
        };
        let failed_before = report.failed;
        for id in ids {
            report.scanned += 1;
            let source_ref = format!("orthanc/{id}");
            let result = (|| -> Result<()> {
                let Some((size, sig)) = orthanc.signature(&id)? else {
                    // Deleted since it was announced.
                    return Ok(());
                };
                if let Some(l) = cat.latest(&source_ref)?
                    && l.size == size
                    && l.change_sig == sig
                {
                    report.unchanged += 1;
                    return Ok(());
                }
                let path = cache.join(&source_ref);
                // A pending version's download survives until it is written.
                if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(size) {
                    orthanc.download(&id, &path)?;
                }
                let f = SourceFile {
                    size: std::fs::metadata(&path).at(&path)?.len(),
                    path,
                    source_ref: source_ref.clone(),
                    change_sig: sig,
                    time_ns: now_secs() * 1_000_000_000,
                };
                self.scan_files(cat, &[f], &opts.filter, today, opts.dry_run, report)
            })();
            if let Err(e) = result {
                report.failed += 1;
                report.failures.push(format!("{source_ref}: {e}"));
            }
        }
        // Only a clean scan moves the cursor: a failed instance is seen again.
        if !opts.dry_run && report.failed == failed_before {
            cat.set_meta(&cursor_key, &new_cursor.to_string())?;
        }
        Ok(())
    }

    /// Downloads are kept only while their version is pending.
    fn clean_cache(&self, cat: &Catalog, spec: &SourceSpec) -> Result<()> {
        if !matches!(spec, SourceSpec::Orthanc(_)) {
            return Ok(());
        }
        let cache = self.dir.join(ORTHANC_CACHE);
        let pending: std::collections::HashSet<String> =
            cat.pending()?.into_iter().map(|r| r.source_ref).collect();
        let Ok(files) = source::walk(&cache) else {
            return Ok(());
        };
        for f in files {
            if !pending.contains(&f.source_ref) {
                std::fs::remove_file(&f.path).at(&f.path)?;
            }
        }
        Ok(())
    }

    /// Records the new and changed files among `files` (counted as scanned
    /// by the caller), a chunk at a time:
    /// the catalog says which changed, their headers and BLAKE3 are read in
    /// parallel, and each chunk is recorded in one transaction. A file that
    /// fails is reported, not fatal.
    fn scan_files(
        &self,
        cat: &mut Catalog,
        files: &[SourceFile],
        filter: &Filter,
        today: i64,
        dry_run: bool,
        report: &mut MigrateReport,
    ) -> Result<()> {
        let fail = |report: &mut MigrateReport, f: &SourceFile, e: ArchiveError| {
            report.failed += 1;
            report.failures.push(format!("{}: {e}", f.source_ref));
        };
        for chunk in files.chunks(SCAN_CHUNK) {
            let mut todo = Vec::new();
            for f in chunk {
                match cat.latest(&f.source_ref) {
                    Ok(Some(l)) if l.size == f.size && l.change_sig == f.change_sig => {
                        report.unchanged += 1;
                    }
                    Ok(latest) => todo.push((f, latest)),
                    Err(e) => fail(report, f, e),
                }
            }
            let probes: Vec<Result<(Identified, Option<String>)>> = todo
                .par_iter()
                .map(|(f, _)| {
                    let ident = source::identify(&f.path)?;
                    if !filter.accepts(&ident.ids, f.time_ns, today) {
                        return Ok((ident, None));
                    }
                    let hash = hash_file(&f.path)?.to_hex().to_string();
                    Ok((ident, Some(hash)))
                })
                .collect();
            cat.in_transaction(|cat| {
                for ((f, latest), probe) in todo.into_iter().zip(probes) {
                    let recorded = probe.and_then(|(ident, hash)| {
                        record(cat, f, latest, ident, hash, dry_run, report)
                    });
                    if let Err(e) = recorded {
                        fail(report, f, e);
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Deletes the shares an unfinished attempt may have left, then the
    /// pending version itself.
    fn forget(&self, cat: &mut Catalog, row: &ObjectRow) -> Result<()> {
        for p in cat.placements(row.id)? {
            self.store(&p.store)?
                .delete(&p.name)
                .map_err(store_err(&p.store, &p.name))?;
        }
        cat.forget_pending(row.id)
    }

    /// Writes the shares of every pending version, a group at a time, as a
    /// two-stage pipeline: while the stores take group g's shares (and wait
    /// for the disk or the network), group g+1 is read and split.
    ///
    /// Per group: shares of earlier attempts deleted and new secrets drawn;
    /// the splits run in parallel into the staging directory; one catalog
    /// commit records the new splits; each store takes its shares of the
    /// whole group with one durable commit; one catalog commit marks them
    /// written. A failing object is recorded and left pending.
    #[allow(clippy::too_many_arguments)]
    fn write_pending(
        &self,
        cat: &mut Catalog,
        backend: &dyn Backend,
        source_root: &Path,
        pending: &[ObjectRow],
        opts: &MigrateOptions,
        progress: Progress<'_>,
        report: &mut MigrateReport,
    ) -> Result<()> {
        let (mut objects_done, mut bytes_done) = (0, 0);
        // The splits' buffers, kept for the whole run.
        let memory = SplitMemory::default();
        std::thread::scope(|scope| -> Result<()> {
            let mut in_flight: Option<(Staged<'_>, std::thread::ScopedJoinHandle<'_, PutErrors>)> =
                None;
            let mut finish = |cat: &mut Catalog,
                              staged: Staged<'_>,
                              handle: std::thread::ScopedJoinHandle<'_, PutErrors>,
                              report: &mut MigrateReport|
             -> Result<()> {
                let put_errors = handle.join().expect("the put thread panicked");
                let (objects, bytes) = (staged.group.len() as u64, staged.bytes());
                self.record_group(cat, staged, put_errors, report)?;
                objects_done += objects;
                bytes_done += bytes;
                progress(objects_done, pending.len() as u64, bytes_done);
                Ok(())
            };
            for (first, group) in groups(pending, opts.group.max(1), GROUP_BYTES) {
                let staged =
                    self.stage_group(cat, &memory, backend, source_root, group, first, report)?;
                if let Some((prev, handle)) = in_flight.take() {
                    finish(cat, prev, handle, report)?;
                }
                let splits: Vec<(i64, String, &[Placement])> = staged
                    .jobs
                    .iter()
                    .map(|j| (j.row.id, hex(&j.secrets.split_id), j.placements.as_slice()))
                    .collect();
                let splits: Vec<(i64, &str, &[Placement])> = splits
                    .iter()
                    .map(|(id, s, p)| (*id, s.as_str(), *p))
                    .collect();
                cat.begin_splits(&splits)?;
                let items = self.put_items(&staged)?;
                let ks: Vec<usize> = staged.jobs.iter().map(|j| j.k).collect();
                let handle = scope.spawn(move || self.put_group(items, &ks));
                in_flight = Some((staged, handle));
            }
            if let Some((prev, handle)) = in_flight.take() {
                finish(cat, prev, handle, report)?;
            }
            Ok(())
        })
    }

    /// Steps 1-2 of a group: forgets versions whose source vanished, deletes
    /// earlier attempts' shares, draws new secrets, and splits into a fresh
    /// staging directory. Nothing reaches a store here.
    #[allow(clippy::too_many_arguments)]
    fn stage_group<'a>(
        &self,
        cat: &mut Catalog,
        memory: &SplitMemory,
        backend: &dyn Backend,
        source_root: &Path,
        group: &'a [ObjectRow],
        first: usize,
        report: &mut MigrateReport,
    ) -> Result<Staged<'a>> {
        let mut failures: BTreeMap<usize, ArchiveError> = BTreeMap::new();
        let mut jobs: Vec<Job<'a>> = Vec::new();
        for (i, row) in group.iter().enumerate() {
            if !source_root.join(&row.source_ref).exists() {
                // Deleted from the source before it was ever written.
                self.forget(cat, row)?;
                report.vanished += 1;
                continue;
            }
            match self.prepare(cat, row, first + i) {
                Ok(job) => jobs.push(job),
                Err(e) => {
                    failures.insert(i, e);
                }
            }
        }
        for j in &jobs {
            pause_point("split", j.k);
        }
        let dir = tempfile::tempdir_in(self.staging()).at(&self.staging())?;
        let files = self.split_all(memory, backend, source_root, &jobs, dir.path());
        Ok(Staged {
            group,
            first,
            jobs,
            files,
            failures,
            _dir: dir,
        })
    }

    /// Each store's shares of every staged object that split: (job, name,
    /// staged file).
    fn put_items(&self, staged: &Staged<'_>) -> Result<Vec<Vec<(usize, String, PathBuf)>>> {
        let mut per_store = vec![Vec::new(); self.stores.len()];
        for (j, (job, files)) in staged.jobs.iter().zip(&staged.files).enumerate() {
            if let Ok(files) = files {
                for (p, f) in job.placements.iter().zip(files) {
                    per_store[self.store_index(&p.store)?].push((j, p.name.clone(), f.clone()));
                }
            }
        }
        Ok(per_store)
    }

    /// Puts a group's shares (`ks`: the run's numbers of its objects, for
    /// the test hook), every store taking its own in one call; the first
    /// store alone (the test hook stops there with one store written),
    /// then the others at once: they wait on the disk or the network, not on
    /// the CPU.
    fn put_group(&self, per_store: Vec<Vec<(usize, String, PathBuf)>>, ks: &[usize]) -> PutErrors {
        let put = |s: usize| -> PutErrors {
            let items = &per_store[s];
            let names: Vec<(&str, &Path)> = items
                .iter()
                .map(|(_, name, f)| (name.as_str(), f.as_path()))
                .collect();
            let results = self.stores[s].put_all_if_absent(&names);
            items
                .iter()
                .zip(results)
                .filter_map(|((j, name, _), r)| {
                    r.err()
                        .map(|e| (*j, store_err(self.stores[s].label(), name)(e)))
                })
                .collect()
        };
        let mut errors = put(0);
        for &k in ks {
            pause_point("put", k);
        }
        errors.extend(std::thread::scope(|scope| {
            let handles: Vec<_> = (1..self.stores.len())
                .map(|s| scope.spawn(move || put(s)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a put thread panicked"))
                .collect::<Vec<_>>()
        }));
        for &k in ks {
            pause_point("written", k);
        }
        errors
    }

    /// Last step of a group: marks written every object whose shares all
    /// landed, in one catalog commit, and records the failures.
    fn record_group(
        &self,
        cat: &mut Catalog,
        staged: Staged<'_>,
        put_errors: PutErrors,
        report: &mut MigrateReport,
    ) -> Result<()> {
        let Staged {
            group,
            first,
            jobs,
            files,
            mut failures,
            ..
        } = staged;
        let mut job_errors: BTreeMap<usize, ArchiveError> = BTreeMap::new();
        for (j, files) in files.into_iter().enumerate() {
            if let Err(e) = files {
                job_errors.insert(j, e);
            }
        }
        for (j, e) in put_errors {
            job_errors.entry(j).or_insert(e);
        }
        let written: Vec<i64> = (0..jobs.len())
            .filter(|j| !job_errors.contains_key(j))
            .map(|j| jobs[j].row.id)
            .collect();
        cat.set_written(&written)?;
        for (j, job) in jobs.iter().enumerate() {
            if !job_errors.contains_key(&j) {
                report.written += 1;
                report.bytes_written += job.row.size;
            }
        }
        for (j, e) in job_errors {
            failures.insert(jobs[j].k - first, e);
        }
        for (i, e) in failures {
            let row = &group[i];
            let msg = e.to_string();
            cat.set_error(row.id, &msg)?;
            report.failed += 1;
            report.failures.push(format!(
                "{} (version {}): {msg}",
                row.source_ref, row.version
            ));
        }
        Ok(())
    }

    fn store_index(&self, name: &str) -> Result<usize> {
        self.stores
            .iter()
            .position(|s| s.label() == name)
            .ok_or_else(|| {
                ArchiveError::Failed(format!(
                    "the catalog names store {name:?}, which umbra.toml does not configure"
                ))
            })
    }

    /// Deletes the shares of an earlier, unfinished attempt and draws the
    /// new split's secrets and names.
    fn prepare<'a>(&self, cat: &Catalog, row: &'a ObjectRow, k: usize) -> Result<Job<'a>> {
        if row.split_id.is_some() {
            for p in cat.placements(row.id)? {
                self.store(&p.store)?
                    .delete(&p.name)
                    .map_err(store_err(&p.store, &p.name))?;
            }
        }
        let secrets = SplitSecrets::from_os()?;
        let content = decode_hex32(&row.blake3)?;
        let site_key = self.site_key()?;
        let placements = self
            .layout
            .placement
            .iter()
            .map(|&(x, si)| Placement {
                x,
                store: self.layout.store_names[si].clone(),
                name: site_key.object_name(&content, &secrets.split_id, x),
            })
            .collect();
        Ok(Job {
            row,
            k,
            secrets,
            placements,
        })
    }

    /// Splits every job's source into `stage/K/`. Small objects (whole
    /// stream at most [`SMALL_OBJECT_BYTES`]) are read whole and split in
    /// batches, many per engine call ([`Backend::split_many`]: on a GPU one
    /// dispatch for dozens of small DICOM files, not one each); larger ones
    /// stream, a few at a time (each split also runs in parallel inside).
    /// The two kinds go one after the other, so that memory stays bounded by
    /// the larger of the two, and buffers come from and go back to `memory`.
    fn split_all(
        &self,
        memory: &SplitMemory,
        backend: &dyn Backend,
        source_root: &Path,
        jobs: &[Job<'_>],
        stage: &Path,
    ) -> Vec<Result<Vec<PathBuf>>> {
        let opts = match self.plan() {
            Ok(plan) => SplitOptions::new(plan),
            Err(e) => {
                let e = e.to_string();
                return jobs
                    .iter()
                    .map(|_| Err(ArchiveError::Failed(e.clone())))
                    .collect();
            }
        };
        let limits = SmallLimits::new(opts.plan.threshold().n());
        let opened: Vec<Result<Opened>> = parallel_map(
            jobs,
            || (),
            |_, _, job| self.open_source(source_root, job, stage),
        );
        let mut results: Vec<Option<Result<Vec<PathBuf>>>> = jobs.iter().map(|_| None).collect();
        let mut small: Vec<(usize, &Job<'_>, Opened)> = Vec::new();
        let mut large: Vec<(usize, &Job<'_>, Opened)> = Vec::new();
        for (i, (job, opened)) in jobs.iter().zip(opened).enumerate() {
            match opened {
                Err(e) => results[i] = Some(Err(e)),
                Ok(o) if o.meta.stream_len() <= limits.object_bytes as u64 => {
                    small.push((i, job, o))
                }
                Ok(o) => large.push((i, job, o)),
            }
        }

        if !small.is_empty() {
            // Sized once for the largest batch, and kept for the run.
            let mut lease = memory.lease_largest();
            lease
                .1
                .reserve_shares(limits.batch_bytes, opts.plan.threshold().n());
            let mut plaintext = memory.plaintext.lock().unwrap_or_else(|p| p.into_inner());
            if plaintext.len() < limits.batch_bytes {
                *plaintext = Zeroizing::new(vec![0u8; limits.batch_bytes]);
            }
            for batch in limits.batches(&small, |(_, _, o)| o.meta.stream_len() as usize) {
                let done =
                    self.split_small_batch(&mut plaintext, &mut lease.1, backend, &opts, batch);
                for ((i, _, _), r) in batch.iter().zip(done) {
                    results[*i] = Some(r);
                }
            }
        }

        let done = parallel_map(
            &large,
            || memory.lease(),
            |lease, _, (_, job, opened)| {
                self.split_streaming(&mut lease.1, backend, &opts, job, opened)
            },
        );
        for ((i, _, _), r) in large.iter().zip(done) {
            results[*i] = Some(r);
        }
        results
            .into_iter()
            .map(|r| r.expect("every job opened, then split"))
            .collect()
    }

    /// Creates the job's staging directory, opens its source, checks its
    /// size against the catalog and reads its first bytes: what the envelope
    /// prefix needs, and so the length of its shared stream.
    fn open_source(&self, source_root: &Path, job: &Job<'_>, stage: &Path) -> Result<Opened> {
        let dir = stage.join(job.k.to_string());
        std::fs::create_dir(&dir).at(&dir)?;
        let path = source_root.join(&job.row.source_ref);
        let mut file = File::open(&path).at(&path)?;
        let len = file.metadata().at(&path)?.len();
        if len != job.row.size {
            return Err(crate::Error::InputChanged {
                path,
                detail: format!("{} bytes recorded, {len} now", job.row.size),
            }
            .into());
        }
        let mut head = [0u8; HEAD_BYTES];
        let n = read_up_to(&mut file, &mut head).at(&path)?;
        let meta = ObjectMeta {
            name: job.row.source_ref.clone(),
            content_type: envelope::sniff_content_type(&head[..n]).to_string(),
            content_len: job.row.size,
        };
        let prefix = meta
            .encode_prefix(&job.secrets.check_key)
            .map_err(|error| crate::Error::Envelope {
                path: path.clone(),
                error,
            })?;
        Ok(Opened {
            path,
            dir,
            meta,
            prefix,
        })
    }

    /// The n share files of an object in its staging directory, in
    /// placement order, each behind a writer with its header.
    fn share_writers(
        &self,
        opened: &Opened,
        secrets: &SplitSecrets,
        opts: &SplitOptions,
    ) -> Result<StagedShares> {
        let mut files = Vec::new();
        let mut writers = Vec::new();
        for &(x, _) in &self.layout.placement {
            let p = opened.dir.join(format!("share-{x:03}"));
            let f = File::create(&p).at(&p)?;
            let header = opts.share_header(x, opened.meta.stream_len(), secrets.split_id);
            writers.push(ShareWriter::new(f, header).at(&p)?);
            files.push(p);
        }
        Ok((files, writers))
    }

    /// Streams a large source into its share files; checks that what was
    /// read is the version the catalog recorded.
    fn split_streaming(
        &self,
        bufs: &mut split::SplitBuffers,
        backend: &dyn Backend,
        opts: &SplitOptions,
        job: &Job<'_>,
        opened: &Opened,
    ) -> Result<Vec<PathBuf>> {
        let (row, path) = (job.row, &opened.path);
        let (files, mut writers) = self.share_writers(opened, &job.secrets, opts)?;
        let mut reader = Hashing {
            inner: File::open(path).at(path)?,
            hasher: blake3::Hasher::new(),
        };
        let tag = split::split_stream_with(
            bufs,
            backend,
            opts,
            &job.secrets,
            &opened.prefix,
            &mut reader,
            row.size,
            &mut writers,
            &mut |_| {},
        )
        .map_err(|e| e.into_error(path, &opened.dir))?;
        if reader.hasher.finalize().to_hex().as_str() != row.blake3 {
            return Err(changed_since_scan(path).into());
        }
        for (w, p) in writers.into_iter().zip(&files) {
            w.finish(tag).at(p)?;
        }
        Ok(files)
    }

    /// Reads a batch of small sources whole into `plaintext` (in parallel),
    /// checks each against the catalog, splits all that read well with one
    /// engine call and writes their share files: the same bytes as
    /// [`Archive::split_streaming`] would write. Each object's result, in
    /// order; the plaintext is wiped before this returns.
    fn split_small_batch(
        &self,
        plaintext: &mut Zeroizing<Vec<u8>>,
        bufs: &mut split::SplitBuffers,
        backend: &dyn Backend,
        opts: &SplitOptions,
        batch: &[(usize, &Job<'_>, Opened)],
    ) -> Vec<Result<Vec<PathBuf>>> {
        let lens: Vec<usize> = batch
            .iter()
            .map(|(_, _, o)| o.meta.stream_len() as usize)
            .collect();
        let total: usize = lens.iter().sum();
        if plaintext.len() < total {
            // The old buffer is wiped as it drops.
            *plaintext = Zeroizing::new(vec![0u8; total]);
        }
        let mut regions: Vec<&mut [u8]> = Vec::with_capacity(batch.len());
        let mut rest = &mut plaintext[..total];
        for &len in &lens {
            let (region, after) = rest.split_at_mut(len);
            regions.push(region);
            rest = after;
        }
        let prepared: Vec<Result<StagedShares>> = regions
            .into_par_iter()
            .zip(batch.par_iter())
            .map(|(region, (_, job, opened))| {
                read_whole(region, job.row, opened)?;
                self.share_writers(opened, &job.secrets, opts)
            })
            .collect();

        let mut results: Vec<Option<Result<Vec<PathBuf>>>> = batch.iter().map(|_| None).collect();
        // Objects that read well: their place in the batch, share files and
        // writers.
        let mut ready: Vec<(usize, Vec<PathBuf>, Vec<ShareWriter<File>>)> = Vec::new();
        for (b, p) in prepared.into_iter().enumerate() {
            match p {
                Ok((files, writers)) => ready.push((b, files, writers)),
                Err(e) => results[b] = Some(Err(e)),
            }
        }
        let starts: Vec<usize> = lens
            .iter()
            .scan(0, |at, &len| {
                let start = *at;
                *at += len;
                Some(start)
            })
            .collect();
        let mut whole: Vec<split::WholeStream<'_, File>> = ready
            .iter_mut()
            .map(|(b, _, writers)| split::WholeStream {
                secrets: &batch[*b].1.secrets,
                stream: &plaintext[starts[*b]..starts[*b] + lens[*b]],
                writers,
            })
            .collect();
        let split = split::split_whole_streams(bufs, backend, opts, &mut whole);
        drop(whole);
        zeroize::Zeroize::zeroize(&mut plaintext[..total]);
        match split {
            Err(error) => {
                for (b, _, _) in &ready {
                    let path = batch[*b].2.path.clone();
                    let error = error.clone();
                    results[*b] = Some(Err(crate::Error::EngineAt { path, error }.into()));
                }
            }
            Ok(tags) => {
                let places: Vec<usize> = ready.iter().map(|(b, _, _)| *b).collect();
                let finished: Vec<Result<Vec<PathBuf>>> = ready
                    .into_par_iter()
                    .zip(tags)
                    .map(|((_, files, writers), tag)| {
                        let tag = tag.map_err(|(s, error)| ArchiveError::Io {
                            path: files[s].clone(),
                            error,
                        })?;
                        for (w, p) in writers.into_iter().zip(&files) {
                            w.finish(tag).at(p)?;
                        }
                        Ok(files)
                    })
                    .collect();
                for (b, r) in places.into_iter().zip(finished) {
                    results[b] = Some(r);
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every object read, then split"))
            .collect()
    }
}

/// An object's share files in staging, in placement order, and their
/// writers.
type StagedShares = (Vec<PathBuf>, Vec<ShareWriter<File>>);

/// Bytes of a source read to tell its content type.
const HEAD_BYTES: usize = 132;

/// Objects whose whole shared stream (envelope prefix and content) is at
/// most this long are read whole and split in batches (see
/// [`Archive::split_all`]); larger ones stream.
const SMALL_OBJECT_BYTES: usize = 4 << 20;
/// Plaintext of one batch of small objects: one engine call.
const SMALL_BATCH_BYTES: usize = 8 << 20;
/// A batch's plaintext and its n shares together stay within this: with
/// more shares, batches (and what counts as small) shrink.
const SMALL_BATCH_MEMORY: usize = 72 << 20;
/// Share files a batch holds open at once (n per object): well below the
/// usual limit of 1024 open files.
const SMALL_BATCH_FILES: usize = 256;

/// The limits of small-object batches for n shares.
struct SmallLimits {
    /// The longest stream that counts as small.
    object_bytes: usize,
    /// Plaintext bytes per batch.
    batch_bytes: usize,
    /// Objects per batch.
    batch_objects: usize,
}

impl SmallLimits {
    fn new(n: usize) -> Self {
        let batch_bytes = SMALL_BATCH_BYTES.min(SMALL_BATCH_MEMORY / (n + 1));
        Self {
            object_bytes: SMALL_OBJECT_BYTES.min(batch_bytes),
            batch_bytes,
            batch_objects: (SMALL_BATCH_FILES / n).max(1),
        }
    }

    /// Consecutive runs of `objects` (of `len` bytes each) within the
    /// limits; one longer than `batch_bytes` goes alone.
    fn batches<'s, T>(&self, objects: &'s [T], len: impl Fn(&T) -> usize) -> Vec<&'s [T]> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < objects.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < objects.len() && end - start < self.batch_objects {
                let len = len(&objects[end]);
                if end > start && bytes + len > self.batch_bytes {
                    break;
                }
                bytes += len;
                end += 1;
            }
            out.push(&objects[start..end]);
            start = end;
        }
        out
    }
}

/// An object's source, opened: what its split needs before the content.
struct Opened {
    path: PathBuf,
    /// Its staging directory.
    dir: PathBuf,
    meta: ObjectMeta,
    /// The envelope prefix; holds the check key.
    prefix: Zeroizing<Vec<u8>>,
}

/// The error for a source whose bytes are not those hashed at the scan.
fn changed_since_scan(path: &Path) -> crate::Error {
    crate::Error::InputChanged {
        path: path.to_path_buf(),
        detail: "its BLAKE3 differs from the one recorded at the scan".into(),
    }
}

/// Fills `stream` with the object's envelope prefix and its whole content,
/// and checks that the content is the version the catalog recorded: its
/// length (no more, no less) and its BLAKE3, as [`Hashing`] does for a
/// streamed one, and its first bytes (the content type in the prefix).
fn read_whole(stream: &mut [u8], row: &ObjectRow, opened: &Opened) -> Result<()> {
    let path = &opened.path;
    let (prefix, content) = stream.split_at_mut(opened.prefix.len());
    prefix.copy_from_slice(&opened.prefix);
    let mut file = File::open(path).at(path)?;
    let found = read_up_to(&mut file, content).at(path)?;
    let mut probe = [0u8; 1];
    let error = if found < content.len() {
        Some(split::SplitStreamError::Shrank {
            expected: row.size,
            found: found as u64,
        })
    } else if read_up_to(&mut file, &mut probe).at(path)? != 0 {
        Some(split::SplitStreamError::Grew { expected: row.size })
    } else {
        None
    };
    if let Some(e) = error {
        return Err(e.into_error(path, &opened.dir).into());
    }
    let head = &content[..content.len().min(HEAD_BYTES)];
    if blake3::hash(content).to_hex().as_str() != row.blake3
        || envelope::sniff_content_type(head) != opened.meta.content_type
    {
        return Err(changed_since_scan(path).into());
    }
    Ok(())
}

/// The split's working memory, kept for the whole run: the streaming
/// workers' buffers, the largest of which also takes the shares of
/// small-object batches, and the plaintext of those batches. Both are sized
/// for a full batch when first needed: about 72 MiB for (4, 8).
#[derive(Default)]
struct SplitMemory {
    pool: std::sync::Mutex<Vec<split::SplitBuffers>>,
    /// Wiped after each batch, and on drop.
    plaintext: std::sync::Mutex<Zeroizing<Vec<u8>>>,
}

/// Buffers taken from [`SplitMemory`]'s pool, given back on drop.
struct Lease<'p>(
    &'p std::sync::Mutex<Vec<split::SplitBuffers>>,
    split::SplitBuffers,
);

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.0.lock() {
            pool.push(std::mem::take(&mut self.1));
        }
    }
}

impl SplitMemory {
    fn lease(&self) -> Lease<'_> {
        let bufs = self
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        Lease(&self.pool, bufs)
    }

    /// The buffers with the largest share buffers: the small-object batches
    /// reuse the same ones every group, rather than grow a second set.
    fn lease_largest(&self) -> Lease<'_> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let largest = (0..pool.len()).max_by_key(|&i| pool[i].share_capacity());
        let bufs = largest.map(|i| pool.swap_remove(i)).unwrap_or_default();
        Lease(&self.pool, bufs)
    }
}

/// The state of one share in its store.
#[derive(Debug)]
enum ShareState {
    Good(PathBuf),
    Missing,
    Corrupt(String),
    Unreachable(String),
}

fn describe(row: &ObjectRow, p: &Placement) -> String {
    format!(
        "store {}: object #{} share x={} ({})",
        p.store, row.id, p.x, p.name
    )
}

impl Archive {
    /// Fetches every share of `row` into `tmp` and checks each one's own
    /// hashes, split id and x, without reconstructing.
    fn check_shares(
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

#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    pub restored: u64,
    pub already_present: u64,
    pub failed: u64,
    pub bytes: u64,
    pub files: Vec<PathBuf>,
    /// Files stored into Orthanc (with --to).
    pub pushed: u64,
    pub warnings: Vec<String>,
    pub failures: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub selection: Selection,
    pub out: PathBuf,
    pub without_catalog: bool,
    /// Also push every restored file into this Orthanc (`http://HOST:PORT`).
    pub push_to: Option<String>,
}

/// Moves a combined file to `out/rel`; an identical file there already is
/// kept, a different one keeps its place and this one gets a hash suffix.
fn place(combined: &Path, out: &Path, rel: &Path, hash: &blake3::Hash) -> Result<Option<PathBuf>> {
    let mut target = out.join(rel);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    if target.exists() {
        if hash_file(&target)? == *hash {
            return Ok(None);
        }
        // SOP.dcm -> SOP.HASH.dcm: one UID can come with different bytes.
        let stem = target
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = target
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        target.set_file_name(format!("{stem}.{}{ext}", &hash.to_hex()[..16]));
        if target.exists() {
            return Ok(None);
        }
    }
    // Link, then unlink: never replaces a file that appeared meanwhile.
    std::fs::hard_link(combined, &target).at(&target)?;
    std::fs::remove_file(combined).at(combined)?;
    Ok(Some(target))
}

/// An object rebuilt into the restore's temporary directory.
struct Rebuilt<'a> {
    row: &'a ObjectRow,
    _dir: tempfile::TempDir,
    combined: PathBuf,
    hash: blake3::Hash,
}

/// Objects rebuilt at a time and made durable together by restore.
const RESTORE_GROUP: usize = 16;

/// Makes a group of rebuilt objects durable together (one file system sync,
/// not one per file), then puts each into place below `out`: a restored
/// name never points at data that is not on disk.
fn place_group(rebuilt: Vec<Rebuilt<'_>>, tmp: &Path, out: &Path) -> Result<RestoreReport> {
    let mut report = RestoreReport::default();
    let files: Vec<&Path> = rebuilt.iter().map(|r| r.combined.as_path()).collect();
    crate::output::sync_paths(&files).at(tmp)?;
    for r in &rebuilt {
        let rel = source::restore_path(&r.row.ids, &r.row.source_ref);
        match place(&r.combined, out, &rel, &r.hash) {
            Ok(Some(p)) => {
                report.restored += 1;
                report.bytes += r.row.size;
                report.files.push(p);
            }
            Ok(None) => report.already_present += 1,
            Err(e) => {
                report.failed += 1;
                report.failures.push(format!("object #{}: {e}", r.row.id));
            }
        }
    }
    Ok(report)
}

fn join_placed(
    h: std::thread::ScopedJoinHandle<'_, Result<RestoreReport>>,
    report: &mut RestoreReport,
) -> Result<()> {
    let placed = h.join().expect("the placing thread panicked")?;
    report.restored += placed.restored;
    report.already_present += placed.already_present;
    report.failed += placed.failed;
    report.bytes += placed.bytes;
    report.files.extend(placed.files);
    report.failures.extend(placed.failures);
    Ok(())
}

impl Archive {
    pub fn restore(&self, opts: &RestoreOptions, backend: &dyn Backend) -> Result<RestoreReport> {
        std::fs::create_dir_all(&opts.out).at(&opts.out)?;
        let tmp = tempfile::Builder::new()
            .prefix(".umbra-restore-")
            .tempdir_in(&opts.out)
            .at(&opts.out)?;
        let mut report = RestoreReport::default();
        let catalog = if opts.without_catalog {
            self.restore_from_stores(tmp.path(), opts, backend, &mut report)?;
            None
        } else {
            let cat = self.catalog()?;
            let rows = cat
                .select(&opts.selection)?
                .into_iter()
                .map(|row| Ok((cat.placements(row.id)?, row)))
                .collect::<Result<Vec<_>>>()?;
            // A pipeline: while one group is made durable and put into
            // place, the next is rebuilt.
            std::thread::scope(|scope| -> Result<()> {
                let mut in_flight = None;
                for group in rows.chunks(RESTORE_GROUP) {
                    let rebuilt = self.rebuild_group(group, tmp.path(), backend, &mut report);
                    if let Some(h) = in_flight.take() {
                        join_placed(h, &mut report)?;
                    }
                    let out = opts.out.as_path();
                    let tmp = tmp.path();
                    in_flight = Some(scope.spawn(move || place_group(rebuilt, tmp, out)));
                }
                if let Some(h) = in_flight.take() {
                    join_placed(h, &mut report)?;
                }
                Ok(())
            })?;
            // The placed names, on disk before the run says they are.
            crate::output::sync_paths(&[opts.out.as_path()]).at(&opts.out)?;
            Some(cat)
        };
        if let Some(url) = &opts.push_to {
            let orthanc = Orthanc::new(url);
            for f in &report.files {
                match orthanc.upload(f) {
                    Ok(_) => report.pushed += 1,
                    Err(e) => {
                        report.failed += 1;
                        report.failures.push(e.to_string());
                    }
                }
            }
        }
        let details = json!({
            "without_catalog": opts.without_catalog,
            "restored": report.restored,
            "already_present": report.already_present,
            "failed": report.failed,
            "bytes": report.bytes,
            "pushed": report.pushed,
            "warnings": report.warnings.len(),
        });
        match self.audit() {
            Ok(log) => log.append(catalog.as_ref(), "restore", details)?,
            // Disaster recovery without the site key still restores.
            Err(e) => report
                .warnings
                .push(format!("this restore is not in the audit log: {e}")),
        }
        Ok(report)
    }

    /// Rebuilds a group of objects in parallel into `tmp`; failures go to
    /// the report.
    fn rebuild_group<'a>(
        &self,
        group: &'a [(Vec<Placement>, ObjectRow)],
        tmp: &Path,
        backend: &dyn Backend,
        report: &mut RestoreReport,
    ) -> Vec<Rebuilt<'a>> {
        let results = parallel_map(
            group,
            || (),
            |_, _, (placements, row)| -> Result<_> {
                let dir = tempfile::tempdir_in(tmp).at(tmp)?;
                let (warnings, result) = self.rebuild(row, placements, dir.path(), backend);
                Ok((dir, warnings, result))
            },
        );
        let mut rebuilt = Vec::new();
        for ((_, row), r) in group.iter().zip(results) {
            let r = r.and_then(|(dir, warnings, result)| {
                report.warnings.extend(warnings);
                result.map(|(combined, hash)| Rebuilt {
                    row,
                    _dir: dir,
                    combined,
                    hash,
                })
            });
            match r {
                Ok(done) => rebuilt.push(done),
                Err(e) => {
                    report.failed += 1;
                    report.failures.push(format!("object #{}: {e}", row.id));
                }
            }
        }
        rebuilt
    }

    /// Rebuilds one object into a file below `tmp` and checks it against
    /// the catalog's BLAKE3; also returns the warnings (shares skipped).
    fn rebuild(
        &self,
        row: &ObjectRow,
        placements: &[Placement],
        tmp: &Path,
        backend: &dyn Backend,
    ) -> (Vec<String>, Result<(PathBuf, blake3::Hash)>) {
        if let Some(done) = self.rebuild_fast(row, placements, tmp, backend) {
            return (Vec::new(), Ok(done));
        }
        let mut warnings = Vec::new();
        let careful = tmp.join("careful");
        let result = std::fs::create_dir(&careful)
            .at(&careful)
            .and_then(|()| self.rebuild_careful(row, placements, &careful, backend, &mut warnings));
        (warnings, result)
    }

    /// The common case, reading every share once: the first t shares go
    /// straight into combine, which checks each segment's BLAKE3 and the tag
    /// as it reads. `None` on anything unexpected: the careful path then
    /// finds and names what is wrong.
    fn rebuild_fast(
        &self,
        row: &ObjectRow,
        placements: &[Placement],
        tmp: &Path,
        backend: &dyn Backend,
    ) -> Option<(PathBuf, blake3::Hash)> {
        let t = self.layout.threshold.t();
        let dir = tmp.join("fast");
        std::fs::create_dir(&dir).ok()?;
        let mut paths = Vec::with_capacity(t);
        for p in placements.iter().take(t) {
            let dest = dir.join(format!("{}.x{:03}", p.store, p.x));
            if !self.store(&p.store).ok()?.get(&p.name, &dest).ok()? {
                return None;
            }
            let h = ShareSource::open(&dest).ok()?.header;
            if Some(hex(&h.split_id)) != row.split_id || h.x != p.x {
                return None;
            }
            paths.push(dest);
        }
        let combined = dir.join("combined");
        let r = combine::combine_files(
            backend,
            &paths,
            &CombineTarget::File(combined.clone()),
            &CombineOptions::default(),
            &mut |_| {},
        )
        .ok()?;
        let hash = r.blake3?;
        (r.warnings.is_empty() && hash.to_hex().as_str() == row.blake3).then_some((combined, hash))
    }

    /// Every share checked on its own first: the bad ones are named and
    /// skipped, spares are fetched as needed.
    fn rebuild_careful(
        &self,
        row: &ObjectRow,
        placements: &[Placement],
        tmp: &Path,
        backend: &dyn Backend,
        warnings: &mut Vec<String>,
    ) -> Result<(PathBuf, blake3::Hash)> {
        // t shares first, in waves: more only to replace bad ones, or if
        // the first t do not combine to the tagged object.
        let t = self.layout.threshold.t();
        let mut good = Vec::new();
        let mut next = 0;
        let fetch =
            |upto: usize, next: &mut usize, good: &mut Vec<PathBuf>, warnings: &mut Vec<String>| {
                while good.len() < upto && *next < placements.len() {
                    let wave =
                        &placements[*next..(*next + upto - good.len()).min(placements.len())];
                    *next += wave.len();
                    for (p, state) in self.check_shares(row, wave, tmp) {
                        match state {
                            ShareState::Good(path) => good.push(path),
                            ShareState::Missing => {
                                warnings.push(format!("{}: missing, skipped", describe(row, &p)))
                            }
                            ShareState::Corrupt(why) | ShareState::Unreachable(why) => {
                                warnings.push(format!("{}: {why}; skipped", describe(row, &p)))
                            }
                        }
                    }
                }
            };
        fetch(t, &mut next, &mut good, warnings);
        if good.len() < t {
            return Err(ArchiveError::Failed(format!(
                "only {} good share(s) reachable, {t} needed",
                good.len()
            )));
        }
        let combined = tmp.join("combined");
        let combine = |good: &[PathBuf]| {
            combine::combine_files(
                backend,
                good,
                &CombineTarget::File(combined.clone()),
                &CombineOptions {
                    hash_content: true,
                    ..Default::default()
                },
                &mut |_| {},
            )
        };
        let r = match combine(&good) {
            Ok(r) => r,
            // A share with intact hashes but wrong content: bring in the
            // spares, and combine finds t that agree.
            Err(e) if next < placements.len() => {
                warnings.push(format!(
                    "object #{}: the first {t} shares did not combine ({e}); fetching the others",
                    row.id
                ));
                fetch(placements.len(), &mut next, &mut good, warnings);
                combine(&good)?
            }
            Err(e) => return Err(e.into()),
        };
        warnings.extend(r.warnings.iter().map(|w| {
            format!(
                "object #{}: {}",
                row.id,
                w.replace(&format!("{}/", tmp.display()), "")
            )
        }));
        let hash = r.blake3.expect("asked for");
        if hash.to_hex().as_str() != row.blake3 {
            return Err(ArchiveError::Failed(
                "the rebuilt object passes its tag but not the catalog's BLAKE3".into(),
            ));
        }
        Ok((combined, hash))
    }

    /// Disaster recovery: lists every store, groups the shares by split id
    /// (from their headers) and rebuilds every split with t good shares; the
    /// object's name travels inside the shares, its layout comes from its
    /// own DICOM header.
    fn restore_from_stores(
        &self,
        tmp: &Path,
        opts: &RestoreOptions,
        backend: &dyn Backend,
        report: &mut RestoreReport,
    ) -> Result<()> {
        let fetched = tmp.join("fetched");
        std::fs::create_dir_all(&fetched).at(&fetched)?;
        let mut groups: BTreeMap<[u8; 16], Vec<PathBuf>> = BTreeMap::new();
        for s in &self.stores {
            let names = match s.list() {
                Ok(n) => n,
                Err(e) => {
                    report
                        .warnings
                        .push(format!("store {}: cannot list ({e}); skipped", s.label()));
                    continue;
                }
            };
            for name in names {
                let dest = fetched.join(format!("{}.{name}", s.label()));
                match s.get(&name, &dest) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        report
                            .warnings
                            .push(format!("store {}: object {name}: {e}; skipped", s.label()));
                        continue;
                    }
                }
                match ShareSource::open(&dest) {
                    Ok(src) => groups.entry(src.header.split_id).or_default().push(dest),
                    Err(e) => {
                        report
                            .warnings
                            .push(format!("store {}: object {name}: {e}; skipped", s.label()));
                    }
                }
            }
        }
        let t = self.layout.threshold.t();
        for (split_id, paths) in groups {
            let id = hex(&split_id);
            if paths.len() < t {
                report.warnings.push(format!(
                    "split {id}: only {} share(s) found, {t} needed; skipped (an unfinished \
                     migration leaves such leftovers)",
                    paths.len()
                ));
                continue;
            }
            let combined = tmp.join(format!("combined-{id}"));
            let result = combine::combine_files(
                backend,
                &paths,
                &CombineTarget::File(combined.clone()),
                &CombineOptions {
                    sync: true,
                    hash_content: true,
                    ..Default::default()
                },
                &mut |_| {},
            );
            let r = match result {
                Ok(r) => r,
                Err(e) => {
                    report.failed += 1;
                    report.failures.push(format!("split {id}: {e}"));
                    continue;
                }
            };
            let prefix = format!("{}/", fetched.display());
            report.warnings.extend(
                r.warnings
                    .iter()
                    .map(|w| format!("split {id}: {}", w.replace(&prefix, ""))),
            );
            let ids = if source::looks_like_dicom(&combined)? {
                source::read_identity(&combined).unwrap_or_default()
            } else {
                Identity::default()
            };
            let rel = source::restore_path(&ids, &r.meta.name);
            let hash = r.blake3.expect("asked for");
            match place(&combined, &opts.out, &rel, &hash)? {
                Some(p) => {
                    report.restored += 1;
                    report.bytes += r.meta.content_len;
                    report.files.push(p);
                }
                None => report.already_present += 1,
            }
            for p in &paths {
                let _ = std::fs::remove_file(p);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreHealth {
    pub store: String,
    pub present: u64,
    pub missing: u64,
    pub corrupt: u64,
    pub unreachable: u64,
}

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
        let cat = self.catalog()?;
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
            let states = self.check_shares(&row, &placements, tmp.path());
            let mut good = Vec::new();
            let mut bad: Vec<(Placement, String)> = Vec::new();
            for (p, state) in states {
                let h = report
                    .stores
                    .iter_mut()
                    .find(|h| h.store == p.store)
                    .expect("configured store");
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
            if deep {
                match self.deep_check(&row, &good, tmp.path(), backend) {
                    Ok((proven, forged)) => {
                        report.rebuilt_ok += 1;
                        if forged.is_empty() {
                            cat.set_state(row.id, "verified")?;
                        }
                        for (p, msg) in forged {
                            let h = report
                                .stores
                                .iter_mut()
                                .find(|h| h.store == p.store)
                                .expect("configured store");
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
            for (p, msg) in bad {
                if !repair {
                    report.problems.push(msg);
                    continue;
                }
                match self.repair_share(&p, &repair_from, tmp.path(), backend) {
                    Ok(()) => {
                        report.repaired += 1;
                        report.repaired_shares.push(msg);
                    }
                    Err(e) => report.problems.push(format!("{msg}; repair failed: {e}")),
                }
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
    fn deep_check(
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

    /// Rebuilds share `p.x` from the good ones (Lagrange at the lost x, no
    /// source needed) and puts it in place of the missing or corrupt one.
    fn repair_share(
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

    /// `umbra audit verify`.
    pub fn audit_verify(&self) -> Result<u64> {
        let cat = self.catalog().ok();
        self.audit()?.verify(cat.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(sizes: &[u64]) -> Vec<ObjectRow> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| ObjectRow {
                id: i as i64 + 1,
                source_ref: format!("f{i}"),
                version: 1,
                size,
                blake3: String::new(),
                change_sig: 0,
                kind: "file".into(),
                ids: Identity::default(),
                split_id: None,
                state: "pending".into(),
                attempts: 0,
            })
            .collect()
    }

    fn shape(rows: &[ObjectRow], objects: usize, bytes: u64) -> Vec<(usize, usize)> {
        groups(rows, objects, bytes)
            .into_iter()
            .map(|(first, g)| (first, g.len()))
            .collect()
    }

    #[test]
    fn groups_cut_by_count_and_bytes() {
        let r = rows(&[10, 10, 10, 10, 10]);
        assert_eq!(shape(&r, 2, 1000), vec![(1, 2), (3, 2), (5, 1)]);
        assert_eq!(shape(&r, 64, 25), vec![(1, 2), (3, 2), (5, 1)]);
        assert_eq!(
            shape(&r, 1, 1000),
            vec![(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)]
        );
        // An object bigger than the byte limit goes alone.
        let r = rows(&[5, 100, 5, 5]);
        assert_eq!(shape(&r, 64, 20), vec![(1, 1), (2, 1), (3, 2)]);
        assert!(groups(&[], 64, 20).is_empty());
    }

    /// A source read whole must be the recorded version: every byte, no
    /// more, no less; the error names the file.
    #[test]
    fn read_whole_refuses_a_source_that_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scan.dcm");
        let recorded: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut row = rows(&[recorded.len() as u64]).remove(0);
        row.blake3 = blake3::hash(&recorded).to_hex().to_string();
        let meta = ObjectMeta {
            name: "scan.dcm".into(),
            content_type: envelope::sniff_content_type(&recorded).to_string(),
            content_len: row.size,
        };
        let opened = Opened {
            path: path.clone(),
            dir: dir.path().to_path_buf(),
            prefix: meta.encode_prefix(&[5; 32]).unwrap(),
            meta,
        };
        let mut stream = vec![0u8; opened.meta.stream_len() as usize];

        std::fs::write(&path, &recorded).unwrap();
        read_whole(&mut stream, &row, &opened).unwrap();
        let (prefix, content) = stream.split_at(opened.prefix.len());
        assert_eq!((prefix, content), (&opened.prefix[..], &recorded[..]));

        let mut flipped = recorded.clone();
        flipped[4321] ^= 1;
        let mut longer = recorded.clone();
        longer.push(0);
        for (bytes, says) in [
            (&recorded[..4999], "only 4999 could be read"),
            (&longer[..], "it grew past its 5000 bytes"),
            (&flipped[..], "its BLAKE3 differs"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            let e = read_whole(&mut stream, &row, &opened)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("scan.dcm")
                    && e.contains("changed while it was read")
                    && e.contains(says),
                "{e}"
            );
        }
    }

    #[test]
    fn small_batches_cut_by_bytes_objects_and_memory() {
        // (4, 8): 8 MiB of plaintext, 32 objects (256 open files) a batch.
        let limits = SmallLimits::new(8);
        assert_eq!(
            (
                limits.object_bytes,
                limits.batch_bytes,
                limits.batch_objects
            ),
            (4 << 20, 8 << 20, 32)
        );
        let cut = |lens: &[usize]| -> Vec<usize> {
            limits
                .batches(lens, |&l| l)
                .into_iter()
                .map(<[usize]>::len)
                .collect()
        };
        let mib = 1 << 20;
        assert_eq!(cut(&[4 * mib, 4 * mib, 1]), vec![2, 1]);
        assert_eq!(cut(&[3 * mib, 3 * mib, 3 * mib, 0]), vec![2, 2]);
        assert_eq!(cut(&[9 * mib, 1]), vec![1, 1], "too long: alone");
        assert_eq!(cut(&[100; 70]), vec![32, 32, 6]);
        assert!(cut(&[]).is_empty());
        // Many shares: smaller batches, fewer objects, and what counts as
        // small shrinks with them.
        let wide = SmallLimits::new(255);
        assert_eq!(wide.batch_bytes, (72 << 20) / 256);
        assert_eq!(wide.object_bytes, wide.batch_bytes);
        assert_eq!(wide.batch_objects, 1);
    }
}
