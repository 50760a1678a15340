//! Restore: objects rebuilt from any t reachable stores, by the catalog or,
//! in a disaster, from the stores alone; each proven against its tag and
//! the catalog's BLAKE3 before it is put in place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use crate::archive::catalog::{Catalog, Identity, ObjectRow, Placement, Selection};
use crate::archive::check::{ShareState, describe};
use crate::archive::error::{ArchiveError, At, Result};
use crate::archive::migrate::stage::pause_point;
use crate::archive::open::Archive;
use crate::archive::source::looks_like_dicom;
use crate::archive::source::{self};
use crate::archive::util::{hash_file, parallel_map};
use crate::engine::Backend;
use crate::share::format::hex;
use crate::share::reader::ShareSource;
use crate::stream::combine::{self, CombineOptions, CombineTarget};

/// What a restore did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreReport {
    /// Why the run could not be recorded in the audit log, if it could not
    /// (the restore itself went ahead).
    pub audit_error: Option<String>,
    /// `--worker`: the lease owner name this worker went by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    pub restored: u64,
    pub already_present: u64,
    /// Objects whose first t shares did not rebuild them at once (missing,
    /// damaged or wrong): each share was checked and spares fetched.
    pub careful: u64,
    pub failed: u64,
    pub bytes: u64,
    pub files: Vec<PathBuf>,
    /// Files stored into Orthanc (with --to).
    pub pushed: u64,
    /// With --to: restored files that are not DICOM, so not pushed.
    pub not_pushed: Vec<PathBuf>,
    pub warnings: Vec<String>,
    pub failures: Vec<String>,
}

/// What to restore, and where.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub selection: Selection,
    pub out: PathBuf,
    pub without_catalog: bool,
    /// Also push every restored file into this Orthanc (`http://HOST:PORT`).
    pub push_to: Option<String>,
    /// One of many workers sharing the selection (`--worker`, docs/SCALE.md).
    pub worker: Option<crate::archive::shard::WorkerOptions>,
}

/// Shares are read once by a restore: their pages leave the page cache
/// again, so that restoring an archive does not push out what the machine
/// uses (and the restored files, not the shares, get the memory).
fn drop_cached(paths: &[PathBuf]) {
    for p in paths {
        if let Ok(f) = std::fs::File::open(p) {
            let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
        }
    }
}

/// A path tracked for removal on interruption while this lives.
struct Tracked(PathBuf);

impl Tracked {
    fn new(path: &Path) -> Self {
        crate::output::track(path);
        Self(path.to_path_buf())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        crate::output::untrack(&self.0);
    }
}

/// Where [`place`] put a rebuilt object.
pub(crate) enum Placed {
    /// At its own name.
    New(PathBuf),
    /// A different file held its name (changed locally, or another object
    /// with the same UID): that one is kept, this one went beside it.
    Beside { path: PathBuf, kept: PathBuf },
    /// An identical file was there already.
    Identical,
}

impl Placed {
    /// Counts the placement into `report`; a file restored beside a
    /// different one is said as a warning.
    fn record(self, report: &mut RestoreReport, bytes: u64) {
        let path = match self {
            Placed::Identical => {
                report.already_present += 1;
                return;
            }
            Placed::New(path) => path,
            Placed::Beside { path, kept } => {
                report.warnings.push(format!(
                    "{} differs from the archived object (changed locally?): it was kept, \
                     and the archived object was restored beside it as {}",
                    kept.display(),
                    path.display()
                ));
                path
            }
        };
        report.restored += 1;
        report.bytes += bytes;
        report.files.push(path);
    }
}

/// Moves a combined file to `out/rel`; an identical file there already is
/// kept, a different one keeps its place and this one gets a hash suffix.
pub(crate) fn place(
    combined: &Path,
    out: &Path,
    rel: &Path,
    hash: &blake3::Hash,
) -> Result<Placed> {
    let mut target = out.join(rel);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    let mut kept = None;
    if target.exists() {
        if hash_file(&target)? == *hash {
            return Ok(Placed::Identical);
        }
        kept = Some(target.clone());
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
        if target.exists() && hash_file(&target)? == *hash {
            return Ok(Placed::Identical);
        }
    }
    // Link, then unlink: never replaces a file that appeared meanwhile.
    std::fs::hard_link(combined, &target).at(&target)?;
    std::fs::remove_file(combined).at(combined)?;
    Ok(match kept {
        Some(kept) => Placed::Beside { path: target, kept },
        None => Placed::New(target),
    })
}

/// An object rebuilt into the restore's temporary directory.
pub(crate) struct Rebuilt<'a> {
    row: &'a ObjectRow,
    _dir: tempfile::TempDir,
    combined: PathBuf,
    hash: blake3::Hash,
}

/// Objects rebuilt at a time and made durable together by restore.
pub(crate) const RESTORE_GROUP: usize = 16;

/// Makes a group of rebuilt objects durable together (one file system sync,
/// not one per file), then puts each into place below `out`: a restored
/// name never points at data that is not on disk.
pub(crate) fn place_group(
    rebuilt: Vec<Rebuilt<'_>>,
    tmp: &Path,
    out: &Path,
) -> Result<RestoreReport> {
    let mut report = RestoreReport::default();
    let files: Vec<&Path> = rebuilt.iter().map(|r| r.combined.as_path()).collect();
    crate::output::sync_paths(&files).at(tmp)?;
    for r in &rebuilt {
        let rel = restore_path(&r.row.ids, &r.row.source, &r.row.path);
        match place(&r.combined, out, &rel, &r.hash) {
            Ok(placed) => placed.record(&mut report, r.row.size),
            Err(e) => {
                report.failed += 1;
                report.failures.push(format!("object #{}: {e}", r.row.id));
            }
        }
    }
    Ok(report)
}

pub(crate) fn join_placed(
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
    report.warnings.extend(placed.warnings);
    Ok(())
}

impl Archive {
    /// Rebuilds the selected objects (or, without the catalog, every split found in the stores) into `opts.out`.
    pub fn restore(&self, opts: &RestoreOptions, backend: &dyn Backend) -> Result<RestoreReport> {
        // A PACS to push into is asked first: with it down (or refusing the
        // credentials) nothing is restored for nothing.
        let orthanc = match &opts.push_to {
            Some(url) => {
                let o = self.orthanc(url)?;
                o.check()?;
                Some(o)
            }
            None => None,
        };
        std::fs::create_dir_all(&opts.out).at(&opts.out)?;
        crate::output::sweep_stale(&opts.out);
        let tmp = tempfile::Builder::new()
            .prefix(&crate::output::temp_prefix("restore-"))
            .tempdir_in(&opts.out)
            .at(&opts.out)?;
        // Removed on SIGINT or SIGTERM: it holds rebuilt plaintext.
        let _tracked = Tracked::new(tmp.path());
        let mut report = RestoreReport::default();
        let catalog = if opts.without_catalog {
            self.restore_from_stores(tmp.path(), opts, backend, &mut report)?;
            None
        } else {
            let cat = self.catalog()?;
            self.check_catalog_stores(&cat)?;
            let rows = cat.select(&opts.selection)?;
            if rows.is_empty() {
                return Err(ArchiveError::NothingMatched(opts.selection.describe()));
            }
            let mut cat = cat;
            match &opts.worker {
                None => {
                    let rows = rows
                        .into_iter()
                        .map(|row| Ok((cat.placements(row.id)?, row)))
                        .collect::<Result<Vec<_>>>()?;
                    self.restore_rows(&rows, tmp.path(), &opts.out, backend, &mut report)?;
                }
                Some(w) => {
                    let by_id: std::collections::HashMap<i64, ObjectRow> =
                        rows.into_iter().map(|r| (r.id, r)).collect();
                    let select = |c: &Catalog| -> Result<Vec<i64>> {
                        Ok(c.select(&opts.selection)?.iter().map(|r| r.id).collect())
                    };
                    let owner = self.sharded(
                        &mut cat,
                        w,
                        "restore",
                        &select,
                        RESTORE_GROUP * 2,
                        |c, ids| {
                            let mut rows = Vec::new();
                            for id in ids {
                                match by_id.get(id) {
                                    Some(r) => rows.push((c.placements(r.id)?, r.clone())),
                                    None => {
                                        report.failed += 1;
                                        report.failures.push(format!(
                                            "version id {id}: selected when the run began, \
                                             no longer stored"
                                        ));
                                    }
                                }
                            }
                            let bytes = rows.iter().map(|(_, r)| r.size).sum();
                            self.restore_rows(&rows, tmp.path(), &opts.out, backend, &mut report)?;
                            Ok(bytes)
                        },
                    )?;
                    report.worker = Some(owner);
                }
            }
            // The placed names, on disk before the run says they are.
            crate::output::sync_paths(&[opts.out.as_path()]).at(&opts.out)?;
            Some(cat)
        };
        if let Some(orthanc) = &orthanc {
            for f in &report.files {
                // Orthanc takes DICOM only: the others stay where -o put
                // them, and are listed.
                if !looks_like_dicom(f).unwrap_or(false) {
                    report.not_pushed.push(f.clone());
                    continue;
                }
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
            "careful": report.careful,
            "failed": report.failed,
            "bytes": report.bytes,
            "pushed": report.pushed,
            "warnings": report.warnings.len(),
        });
        // The audit log never blocks a restore: the files are there; a log
        // that cannot take the entry (damaged, no site key) is said loudly.
        if let Err(e) = self
            .audit()
            .and_then(|log| log.append(catalog.as_ref(), "restore", details))
        {
            report.audit_error = Some(format!("this restore is not in the audit log: {e}"));
        }
        Ok(report)
    }

    /// Rebuilds `rows` into `tmp` and puts them in place under `out`, a
    /// pipeline: while one group is made durable and put into place, the
    /// next is rebuilt.
    fn restore_rows(
        &self,
        rows: &[(Vec<Placement>, ObjectRow)],
        tmp: &Path,
        out: &Path,
        backend: &dyn Backend,
        report: &mut RestoreReport,
    ) -> Result<()> {
        let bytes: u64 = rows.iter().map(|(_, r)| r.size).sum();
        self.meter.begin("restoring", rows.len() as u64, bytes);
        std::thread::scope(|scope| -> Result<()> {
            let mut in_flight = None;
            for (g, group) in rows.chunks(RESTORE_GROUP).enumerate() {
                let rebuilt = self.rebuild_group(group, tmp, backend, report);
                let bytes = group.iter().map(|(_, r)| r.size).sum();
                self.meter.advance(group.len() as u64, bytes);
                pause_point("restored", g + 1);
                if let Some(h) = in_flight.take() {
                    join_placed(h, report)?;
                }
                in_flight = Some(scope.spawn(move || place_group(rebuilt, tmp, out)));
            }
            if let Some(h) = in_flight.take() {
                join_placed(h, report)?;
            }
            Ok(())
        })
    }

    /// Rebuilds a group of objects in parallel into `tmp`; failures go to
    /// the report.
    pub(crate) fn rebuild_group<'a>(
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
                // On its way to disk now, while the rest of the group is
                // rebuilt: the group's sync then finds little to write.
                if let Ok((combined, _)) = &result
                    && let Ok(f) = std::fs::File::open(combined)
                {
                    crate::output::start_writeback(f);
                }
                Ok((dir, warnings, result))
            },
        );
        let mut rebuilt = Vec::new();
        for ((_, row), r) in group.iter().zip(results) {
            let r = r.and_then(|(dir, warnings, result)| {
                report.careful += u64::from(warnings.is_some());
                report.warnings.extend(warnings.unwrap_or_default());
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
    /// the catalog's BLAKE3; also returns, if the careful path was needed,
    /// its warnings (shares skipped).
    pub(crate) fn rebuild(
        &self,
        row: &ObjectRow,
        placements: &[Placement],
        tmp: &Path,
        backend: &dyn Backend,
    ) -> (Option<Vec<String>>, Result<(PathBuf, blake3::Hash)>) {
        if let Some(done) = self.rebuild_fast(row, placements, tmp, backend) {
            return (None, Ok(done));
        }
        let mut warnings = Vec::new();
        let careful = tmp.join("careful");
        let result = std::fs::create_dir(&careful)
            .at(&careful)
            .and_then(|()| self.rebuild_careful(row, placements, &careful, backend, &mut warnings));
        (Some(warnings), result)
    }

    /// The common case, reading every share once: the first t shares go
    /// straight into combine, which checks each segment's BLAKE3 and the tag
    /// as it reads. `None` on anything unexpected: the careful path then
    /// finds and names what is wrong.
    pub(crate) fn rebuild_fast(
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
            &CombineOptions {
                hash_content: true,
                ..CombineOptions::default()
            },
            &mut |_| {},
        )
        .ok()?;
        drop_cached(&paths);
        let hash = r.blake3?;
        (r.warnings.is_empty() && hash.to_hex().as_str() == row.blake3).then_some((combined, hash))
    }

    /// Every share checked on its own first: the bad ones are named and
    /// skipped, spares are fetched as needed.
    pub(crate) fn rebuild_careful(
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
    pub(crate) fn restore_from_stores(
        &self,
        tmp: &Path,
        opts: &RestoreOptions,
        backend: &dyn Backend,
        report: &mut RestoreReport,
    ) -> Result<()> {
        let fetched = tmp.join("fetched");
        std::fs::create_dir_all(&fetched).at(&fetched)?;
        // (t from the shares' own headers, the shares fetched) per split.
        let mut groups: BTreeMap<[u8; 16], (usize, Vec<PathBuf>)> = BTreeMap::new();
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
                    Ok(src) => {
                        let g = groups
                            .entry(src.header.split_id)
                            .or_insert((src.header.threshold.t(), Vec::new()));
                        g.1.push(dest)
                    }
                    Err(e) => {
                        report
                            .warnings
                            .push(format!("store {}: object {name}: {e}; skipped", s.label()));
                    }
                }
            }
        }
        // With a catalog still there, the splits of versions that never
        // finished (pending: an unfinished or failed migration) are told
        // apart from objects that lost shares; without one they cannot be.
        let unfinished: Option<std::collections::HashSet<String>> = self
            .catalog()
            .and_then(|cat| cat.in_state("pending"))
            .ok()
            .map(|rows| rows.into_iter().filter_map(|r| r.split_id).collect());
        for (split_id, (t, paths)) in groups {
            let id = hex(&split_id);
            if paths.len() < t {
                let found = format!(
                    "only {} share(s) found in the stores, {t} needed",
                    paths.len()
                );
                match &unfinished {
                    Some(pending) if pending.contains(&id) => report.warnings.push(format!(
                        "split {id}: {found}: the leftover of a migration that did not finish \
                         (the catalog has it pending); skipped"
                    )),
                    Some(_) => {
                        report.failed += 1;
                        report.failures.push(format!(
                            "split {id}: {found}: this object cannot be rebuilt from the stores \
                             that are left"
                        ));
                    }
                    None => {
                        report.failed += 1;
                        report.failures.push(format!(
                            "split {id}: {found}: this object cannot be rebuilt from the stores \
                             that are left (or it is the leftover of a migration that did not \
                             finish: without the catalog umbra cannot tell)"
                        ));
                    }
                }
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
            let rel = restore_path(&ids, b"", &r.meta.name);
            let hash = r.blake3.expect("asked for");
            place(&combined, &opts.out, &rel, &hash)?.record(report, r.meta.content_len);
            for p in &paths {
                let _ = std::fs::remove_file(p);
            }
        }
        Ok(())
    }
}

/// One path component made safe: letters, digits, `.`, `-`, `_`; others `_`.
fn component(s: &str) -> String {
    let c: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if c.is_empty() || c == "." || c == ".." {
        "_".into()
    } else {
        c
    }
}

/// Where a restored object goes below the output directory:
/// `PATIENT/STUDY/SERIES/SOP.dcm` for DICOM with its UIDs, else
/// `other/SOURCE/PATH`: the source's own path (a folder's absolute path, an
/// Orthanc's host and port) and the object's path in it, so that two
/// sources' `notes/readme.txt` restore side by side. File names keep their
/// bytes; only `.`, `..` and empty components become `_`, so nothing
/// escapes the output directory.
pub fn restore_path(ids: &Identity, source: &[u8], path: &[u8]) -> PathBuf {
    match (&ids.study_uid, &ids.series_uid, &ids.sop_uid) {
        (Some(study), Some(series), Some(sop)) => {
            let mut p = PathBuf::from(component(
                ids.patient_id.as_deref().unwrap_or("unknown-patient"),
            ));
            p.push(component(study));
            p.push(component(series));
            p.push(format!("{}.dcm", component(sop)));
            p
        }
        _ => {
            let mut p = PathBuf::from("other");
            match source.strip_prefix(b"orthanc+") {
                Some(url) => {
                    let url = String::from_utf8_lossy(url);
                    let host = url.split_once("://").map_or(&*url, |(_, h)| h);
                    p.push(component(host.trim_end_matches('/')));
                }
                None => push_bytes(&mut p, source),
            }
            push_bytes(&mut p, path);
            if p.as_os_str() == "other" {
                p.push("_");
            }
            p
        }
    }
}

/// Pushes the `/`-separated components of `bytes` onto `p`, each as it is
/// but `.`, `..` and empty ones, which become `_` (leading, trailing and
/// doubled separators are dropped).
fn push_bytes(p: &mut PathBuf, bytes: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    for part in bytes.split(|&b| b == b'/').filter(|s| !s.is_empty()) {
        if part == b"." || part == b".." || part.contains(&0) {
            p.push("_");
        } else {
            p.push(std::ffi::OsStr::from_bytes(part));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;

    #[test]
    fn restore_paths_stay_inside() {
        let ids = Identity::default();
        assert_eq!(
            restore_path(&ids, b"", b"../../etc/passwd"),
            PathBuf::from("other/_/_/etc/passwd")
        );
        assert_eq!(
            restore_path(&ids, b"/data/src", b"notes/a b\xff.txt"),
            PathBuf::from(std::ffi::OsStr::from_bytes(
                b"other/data/src/notes/a b\xff.txt"
            ))
        );
        assert_eq!(
            restore_path(&ids, b"orthanc+http://127.0.0.1:8042", b"orthanc/ab-cd"),
            PathBuf::from("other/127.0.0.1_8042/orthanc/ab-cd")
        );
        let ids = Identity {
            patient_id: Some("../x".into()),
            study_uid: Some("1.2".into()),
            series_uid: Some("1.2.3".into()),
            sop_uid: Some("1.2.3.4".into()),
            ..Default::default()
        };
        assert_eq!(
            restore_path(&ids, b"/s", b"a"),
            PathBuf::from(".._x/1.2/1.2.3/1.2.3.4.dcm")
        );
    }
}
