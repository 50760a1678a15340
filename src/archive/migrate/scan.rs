//! The scan: new and changed objects of a folder or an Orthanc are found
//! and recorded `pending` in the catalog, with their BLAKE3 (a new file of
//! a folder without: it is hashed as it is split, see `scan_files`).

use std::path::Path;

use rayon::prelude::*;

use crate::archive::catalog::{Catalog, NewObject, ObjectRow};
use crate::archive::error::{ArchiveError, At, Result};
use crate::archive::migrate::options::{MigrateReport, WouldWrite};
use crate::archive::open::Archive;
use crate::archive::source::orthanc::Orthanc;
use crate::archive::source::{self, Filter, Identified, SourceFile, SourceSpec};
use crate::archive::time::now_secs;
use crate::archive::util::hash_file;

/// Where Orthanc downloads wait for their shares to be written, below the
/// archive directory (hospital side).
pub(crate) const ORTHANC_CACHE: &str = "source-cache";

/// Source files whose headers and hashes are read in parallel and recorded
/// in one catalog transaction.
pub(crate) const SCAN_CHUNK: usize = 256;

/// What a scan compares and records against: the source's key, the run's
/// selection, the time it runs at (for `--older-than`), and whether it
/// only looks.
pub(crate) struct ScanContext<'a> {
    pub(crate) source: Vec<u8>,
    pub(crate) filter: &'a Filter,
    pub(crate) now: i64,
    pub(crate) dry_run: bool,
    pub(crate) rehash: bool,
}

/// Whether the catalog's latest version still describes `f` without
/// reading it: same size, mtime (or Orthanc MD5), ctime and inode.
fn quick_match(l: &ObjectRow, f: &SourceFile) -> bool {
    l.size == f.size
        && l.change_sig == f.change_sig
        && l.ctime_ns == f.ctime_ns
        && l.inode == f.inode
}

/// Records one scanned file that is new or whose size or times changed:
/// `hash` is `None` when the selection leaves it out.
pub(crate) fn record(
    cat: &Catalog,
    ctx: &ScanContext<'_>,
    f: &SourceFile,
    latest: Option<ObjectRow>,
    ident: Identified,
    hash: Option<String>,
    report: &mut MigrateReport,
) -> Result<()> {
    let dry_run = ctx.dry_run;
    let Some(hash) = hash else {
        report.not_selected += 1;
        return Ok(());
    };
    if let Some(l) = &latest
        && l.blake3 == hash
        && l.size == f.size
    {
        if !dry_run {
            cat.touch(l.id, f.change_sig, f.ctime_ns, f.inode)?;
        }
        report.unchanged += 1;
        return Ok(());
    }
    if let Some(w) = ident.warning {
        report.warnings.push(w);
    }
    report.new_versions += 1;
    if dry_run {
        report.would_write.push(WouldWrite {
            path: f.source_ref.clone(),
            size: f.size,
            reason: if latest.is_some() { "changed" } else { "new" },
        });
        report.would_write_bytes += f.size;
        return Ok(());
    }
    let new = NewObject {
        source: &ctx.source,
        path: &f.rel,
        source_ref: &f.source_ref,
        size: f.size,
        blake3: &hash,
        change_sig: f.change_sig,
        ctime_ns: f.ctime_ns,
        inode: f.inode,
        kind: ident.kind,
        ids: &ident.ids,
    };
    match latest {
        // Not yet written: it becomes this content instead.
        Some(l) if l.state == "pending" => cat.update_pending(l.id, &new),
        _ => cat.insert(&new).map(|_| ()),
    }
}

impl Archive {
    /// Lists every Orthanc instance (or, with a cursor, those added since);
    /// downloads the new and changed ones into `cache` and records them
    /// like files.
    pub(crate) fn scan_orthanc(
        &self,
        cat: &mut Catalog,
        ctx: &ScanContext<'_>,
        orthanc: &Orthanc,
        cache: &Path,
        full_scan: bool,
        report: &mut MigrateReport,
    ) -> Result<()> {
        let cursor_key = format!(
            "orthanc_changes_cursor {}",
            String::from_utf8_lossy(&ctx.source)
        );
        let cursor = cat
            .get_meta(&cursor_key)?
            .and_then(|c| c.parse::<u64>().ok());
        self.meter.begin("listing", 0, 0);
        let (ids, new_cursor) = match cursor {
            Some(c) if !full_scan => orthanc.new_instances_since(c)?,
            _ => {
                // The cursor first: what changes during the listing is
                // seen again next time.
                let last = orthanc.last_change()?;
                let ids = orthanc.instances()?;
                report.full_scan = true;
                let listed: std::collections::HashSet<Vec<u8>> = ids
                    .iter()
                    .map(|id| format!("orthanc/{id}").into_bytes())
                    .collect();
                let missing: Vec<Vec<u8>> = cat
                    .paths_of(&ctx.source)?
                    .into_iter()
                    .filter(|r| !listed.contains(r))
                    .collect();
                report.gone_from_source = if ctx.dry_run {
                    missing.len() as u64
                } else {
                    cat.record_gone(&ctx.source, &missing)?
                };
                (ids, last)
            }
        };
        let failed_before = report.failed;
        // Instances an earlier run's selection left out are looked at again
        // every run until they are archived: the cursor has moved past them.
        let mut candidates = ids;
        for path in cat.deferred(&ctx.source)? {
            if let Some(id) = path.strip_prefix(b"orthanc/")
                && let Ok(id) = std::str::from_utf8(id)
                && !candidates.iter().any(|c| c == id)
            {
                candidates.push(id.to_string());
            }
        }
        self.meter.begin("scanning", candidates.len() as u64, 0);
        for id in candidates {
            self.meter.advance(1, 0);
            report.scanned += 1;
            let source_ref = format!("orthanc/{id}");
            let result = (|| -> Result<()> {
                let Some((size, sig)) = orthanc.signature(&id)? else {
                    // Deleted since it was announced (or deferred).
                    cat.undefer(&ctx.source, source_ref.as_bytes())?;
                    return Ok(());
                };
                if let Some(l) = cat.latest(&ctx.source, source_ref.as_bytes())?
                    && l.size == size
                    && l.change_sig == sig
                    && !ctx.rehash
                {
                    report.unchanged += 1;
                    return Ok(());
                }
                // The selection from the instance's tags, before its file is
                // downloaded; left out, it is remembered for the next runs.
                let mut time_ns = now_secs() * 1_000_000_000;
                if !ctx.filter.is_empty() {
                    let (ids, received) = orthanc.selection_tags(&id)?;
                    if let Some(day) = received {
                        time_ns = day * 86_400 * 1_000_000_000;
                    }
                    if !ctx.filter.accepts(&ids, time_ns, ctx.now) {
                        report.not_selected += 1;
                        if !ctx.dry_run {
                            cat.defer(&ctx.source, source_ref.as_bytes())?;
                        }
                        return Ok(());
                    }
                }
                let path = cache.join(&source_ref);
                // A pending version's download survives until it is written.
                if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(size) {
                    orthanc.download(&id, &path)?;
                }
                let f = SourceFile {
                    size: std::fs::metadata(&path).at(&path)?.len(),
                    path,
                    rel: source_ref.clone().into_bytes(),
                    source_ref: source_ref.clone(),
                    change_sig: sig,
                    ctime_ns: 0,
                    inode: 0,
                    time_ns,
                };
                let selected_before = report.not_selected;
                self.scan_files(cat, ctx, &[f], false, report)?;
                if !ctx.dry_run && report.not_selected == selected_before {
                    cat.undefer(&ctx.source, source_ref.as_bytes())?;
                }
                Ok(())
            })();
            if let Err(e) = result {
                report.failed += 1;
                report.failures.push(format!("{source_ref}: {e}"));
            }
        }
        // Only a clean scan moves the cursor: a failed instance is seen again.
        if !ctx.dry_run && report.failed == failed_before {
            cat.set_meta(&cursor_key, &new_cursor.to_string())?;
        }
        Ok(())
    }

    /// The download cache of an Orthanc source: one folder per source, so
    /// that two PACS never share a file.
    pub(crate) fn orthanc_cache(&self, source: &[u8]) -> std::path::PathBuf {
        let tag = blake3::hash(source).to_hex();
        self.dir.join(ORTHANC_CACHE).join(&tag.as_str()[..16])
    }

    /// Downloads are kept only while their version is pending.
    pub(crate) fn clean_cache(
        &self,
        cat: &Catalog,
        spec: &SourceSpec,
        source: &[u8],
    ) -> Result<()> {
        if !matches!(spec, SourceSpec::Orthanc(_)) {
            return Ok(());
        }
        let cache = self.orthanc_cache(source);
        let pending: std::collections::HashSet<Vec<u8>> =
            cat.pending(source)?.into_iter().map(|r| r.path).collect();
        let Ok(walk) = source::walk(&cache, &source::WalkRules::default()) else {
            return Ok(());
        };
        for f in walk.files {
            if !pending.contains(&f.rel) {
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
    ///
    /// With `hash_new_when_split` (files of a folder, whose signature holds
    /// ctime and inode) a file the catalog has never seen is not read here:
    /// it is recorded with an empty BLAKE3, taken while it is split, so a
    /// new file is read once (docs/DESIGN.md, section 7). A changed file is
    /// hashed here, to tell new content from a touch.
    pub(crate) fn scan_files(
        &self,
        cat: &mut Catalog,
        ctx: &ScanContext<'_>,
        files: &[SourceFile],
        hash_new_when_split: bool,
        report: &mut MigrateReport,
    ) -> Result<()> {
        let fail = |report: &mut MigrateReport, f: &SourceFile, e: ArchiveError| {
            report.failed += 1;
            report.failures.push(format!("{}: {e}", f.source_ref));
        };
        for chunk in files.chunks(SCAN_CHUNK) {
            let mut todo = Vec::new();
            for f in chunk {
                match cat.latest(&ctx.source, &f.rel) {
                    Ok(Some(l)) if quick_match(&l, f) && !ctx.rehash => {
                        report.unchanged += 1;
                    }
                    Ok(latest) => todo.push((f, latest)),
                    Err(e) => fail(report, f, e),
                }
            }
            let probes: Vec<Result<(Identified, Option<String>)>> = todo
                .par_iter()
                .map(|(f, latest)| {
                    let ident = source::identify(&f.path)?;
                    if !ctx.filter.accepts(&ident.ids, f.time_ns, ctx.now) {
                        return Ok((ident, None));
                    }
                    if latest.is_none() && hash_new_when_split {
                        return Ok((ident, Some(String::new())));
                    }
                    let hash = hash_file(&f.path)?.to_hex().to_string();
                    Ok((ident, Some(hash)))
                })
                .collect();
            cat.in_transaction(|cat| {
                for ((f, latest), probe) in todo.into_iter().zip(probes) {
                    let recorded = probe
                        .and_then(|(ident, hash)| record(cat, ctx, f, latest, ident, hash, report));
                    if let Err(e) = recorded {
                        fail(report, f, e);
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}
