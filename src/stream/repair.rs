//! Repair: the share at a lost x rebuilt from t good ones, without the
//! source, byte for byte the share that was lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::combine::{CombineOptions, damaged_warnings, name_wrong_shares};
use super::rebuild::{TagCheck, Want, compact_key_share, reconstruct, search_subsets};
use crate::engine::Backend;
use crate::error::{Error, IoContext, Result};
use crate::output::PendingFile;
use crate::share::format::Scheme;
use crate::share::reader::open_shares;
use crate::share::writer::ShareWriter;

/// What a repair wrote, and the shares it skipped.
#[derive(Debug, Clone)]
pub struct RepairReport {
    pub output: PathBuf,
    pub x: u8,
    pub warnings: Vec<String>,
}

/// Rebuilds the share at `lost_x` from t good shares, without the source,
/// and writes it to `output`. The combined object is checked against the
/// tag on the way; if it fails, nothing is written.
pub fn repair_share(
    backend: &dyn Backend,
    paths: &[PathBuf],
    lost_x: u8,
    output: &Path,
    opts: &CombineOptions,
) -> Result<RepairReport> {
    let set = open_shares(paths)?;
    let mut warnings = set.warnings;
    let shares = set.shares;
    crate::sharing::check_xs(&[lost_x])?;
    if let Some(s) = shares.iter().find(|s| s.header.x == lost_x) {
        return Err(Error::DuplicateShare {
            first: s.path.clone(),
            other: output.to_path_buf(),
            x: lost_x,
        });
    }
    let mut header = shares[0].header.clone();
    header.x = lost_x;
    let tag = header.tag;
    let t = header.threshold.t();
    let mut bad = BTreeMap::new();
    // Each attempt writes a fresh pending share; a failed one is dropped.
    let mut attempt = |allowed: &[usize],
                       bad: &mut BTreeMap<usize, String>|
     -> Result<(PendingFile, ShareWriter<std::fs::File>)> {
        let mut pending = PendingFile::create(output, opts.overwrite)?;
        let file = pending.file().try_clone().at(output)?;
        let mut writer = ShareWriter::new(file, header.clone()).at(output)?;
        let mut check = TagCheck::new();
        let used = reconstruct(
            backend,
            &shares,
            allowed,
            Want::Stream(&[lost_x]),
            opts.batch_bytes,
            bad,
            &mut |_, rows| {
                check.update(rows[0]);
                writer.write_payload(rows[1]).at(output)
            },
        )?;
        // A compact share's key share, from the shares the key came from.
        if let Scheme::Compact { stream_len, .. } = header.scheme {
            writer.header_mut().scheme = Scheme::Compact {
                stream_len,
                key_share: *compact_key_share(&shares, &used, lost_x)?,
            };
        }
        if !check.matches(&tag) {
            return Err(Error::IntegrityFailed {
                detail: " while repairing".into(),
            });
        }
        Ok((pending, writer))
    };
    let searched = search_subsets(shares.len(), t, &mut bad, &mut attempt);
    if let Ok((_, Some(chosen))) = &searched {
        warnings.extend(name_wrong_shares(
            backend,
            &shares,
            chosen,
            &bad,
            opts.batch_bytes,
        )?);
    }
    warnings.extend(damaged_warnings(&shares, &bad));
    let ((pending, writer), _) = searched?;
    writer.finish(tag).at(output)?;
    let output = pending.commit(opts.overwrite, opts.sync)?;
    Ok(RepairReport {
        output,
        x: lost_x,
        warnings,
    })
}
