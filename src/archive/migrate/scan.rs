//! The scan: new and changed objects of a folder or an Orthanc are found
//! and recorded `pending` in the catalog, with their BLAKE3.

use std::path::Path;

use rayon::prelude::*;

use crate::archive::catalog::{Catalog, NewObject, ObjectRow};
use crate::archive::error::{ArchiveError, At, Result};
use crate::archive::migrate::options::{MigrateOptions, MigrateReport};
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

/// Records one scanned file that is new or whose size or time changed:
/// `hash` is `None` when the selection leaves it out.
pub(crate) fn record(
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

impl Archive {
    /// Lists every Orthanc instance; downloads the new and changed ones
    /// into `cache` and records them like files.
    pub(crate) fn scan_orthanc(
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
    pub(crate) fn clean_cache(&self, cat: &Catalog, spec: &SourceSpec) -> Result<()> {
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
    pub(crate) fn scan_files(
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
}
