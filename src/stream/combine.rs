//! Combine: the object rebuilt from any t of its shares, streaming with
//! bounded memory, into a file that appears only once it is proven whole.
//!
//! Every payload segment is checked against its share's BLAKE3 table before
//! it is used; a share whose segment fails is named and replaced by a spare.
//! After a combine the keyed tag must match, or nothing is written; with
//! spares at hand, other subsets of t shares are tried first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::rebuild::{TagCheck, Want, reconstruct, search_subsets, wrong_shares};
use super::split::DEFAULT_BATCH_BYTES;
use crate::engine::Backend;
use crate::error::{Error, IoContext, Result};
use crate::output::PendingFile;
use crate::share::envelope::{self, EnvelopeError, ObjectMeta, Prefix};
use crate::share::reader::{ShareSource, open_shares};

/// Where a combined object goes.
#[derive(Debug, Clone)]
pub enum CombineTarget {
    /// This exact path.
    File(PathBuf),
    /// This directory, under the name stored inside the shares.
    Dir(PathBuf),
}

/// How a combine writes its output.
#[derive(Debug, Clone)]
pub struct CombineOptions {
    pub overwrite: bool,
    pub sync: bool,
    pub batch_bytes: usize,
    /// Also hash the rebuilt bytes as they are written
    /// ([`CombineReport::blake3`]), for callers that compare with a record.
    pub hash_content: bool,
}

impl Default for CombineOptions {
    fn default() -> Self {
        Self {
            overwrite: false,
            sync: false,
            batch_bytes: DEFAULT_BATCH_BYTES,
            hash_content: false,
        }
    }
}

/// What a combine wrote, and what it read around.
#[derive(Debug, Clone)]
pub struct CombineReport {
    pub output: PathBuf,
    pub meta: ObjectMeta,
    /// BLAKE3 of the rebuilt object's bytes, hashed as they were written
    /// (with [`CombineOptions::hash_content`]).
    pub blake3: Option<blake3::Hash>,
    pub warnings: Vec<String>,
}

/// Writes the object part of a combined stream to a pending file.
struct ObjectSink<'a> {
    target: &'a CombineTarget,
    overwrite: bool,
    prefix: Zeroizing<Vec<u8>>,
    meta: Option<ObjectMeta>,
    pending: Option<PendingFile>,
    written: u64,
    tag: TagCheck,
    content: Option<blake3::Hasher>,
    on_progress: &'a mut dyn FnMut(u64),
}

impl ObjectSink<'_> {
    fn envelope_error(&self, error: EnvelopeError) -> Error {
        let path = match self.target {
            CombineTarget::File(p) | CombineTarget::Dir(p) => p.clone(),
        };
        Error::Envelope { path, error }
    }

    fn push(&mut self, stream: &[u8]) -> Result<()> {
        if self.meta.is_some() {
            return self.write_content(stream, true);
        }
        self.tag.update(stream);
        self.prefix.extend_from_slice(stream);
        match envelope::parse_prefix(&self.prefix).map_err(|e| self.envelope_error(e))? {
            Prefix::NeedMore(_) => Ok(()),
            Prefix::Done { meta, len, .. } => {
                self.open_output(&meta)?;
                self.meta = Some(meta);
                // Whatever followed the prefix in this batch is content.
                let prefix = std::mem::take(&mut self.prefix);
                self.write_content(&prefix[len..], false)
            }
        }
    }

    fn open_output(&mut self, meta: &ObjectMeta) -> Result<()> {
        let target = match self.target {
            CombineTarget::File(p) => p.clone(),
            CombineTarget::Dir(d) => d.join(safe_name(&meta.name)?),
        };
        self.pending = Some(PendingFile::create(&target, self.overwrite)?);
        Ok(())
    }

    /// Content bytes; with `tag`, also into the tag, hashed while the bytes
    /// are written (and hashed), on two cores.
    fn write_content(&mut self, bytes: &[u8], tag: bool) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let expected = self.meta.as_ref().map_or(0, |m| m.content_len);
        if self.written + bytes.len() as u64 > expected {
            return Err(self.envelope_error(EnvelopeError::LengthMismatch {
                expected,
                found: self.written + bytes.len() as u64,
            }));
        }
        let pending = self.pending.as_mut().expect("opened with the metadata");
        let target = pending.target().to_path_buf();
        let (tag_check, content) = (&mut self.tag, &mut self.content);
        let ((), written) = rayon::join(
            || {
                if tag {
                    tag_check.update(bytes)
                }
            },
            || -> std::io::Result<()> {
                std::io::Write::write_all(pending.file(), bytes)?;
                if let Some(h) = content {
                    h.update(bytes);
                }
                Ok(())
            },
        );
        written.at(&target)?;
        self.written += bytes.len() as u64;
        (self.on_progress)(self.written);
        Ok(())
    }
}

/// Refuses names that would leave the output directory.
fn safe_name(name: &[u8]) -> Result<&std::ffi::OsStr> {
    use std::os::unix::ffi::OsStrExt;
    let os = std::ffi::OsStr::from_bytes(name);
    let plain = !name.is_empty()
        && name != b"."
        && name != b".."
        && !name.iter().any(|b| matches!(b, b'/' | b'\\' | 0))
        && Path::new(os).file_name().is_some_and(|f| f == os);
    if plain {
        Ok(os)
    } else {
        Err(Error::UnsafeName {
            name: crate::share::envelope::display_bytes(name),
        })
    }
}

/// Rebuilds the object from shares and writes it to `target`.
pub fn combine_files(
    backend: &dyn Backend,
    paths: &[PathBuf],
    target: &CombineTarget,
    opts: &CombineOptions,
    on_progress: &mut dyn FnMut(u64),
) -> Result<CombineReport> {
    let set = open_shares(paths)?;
    let mut warnings = set.warnings;
    let shares = set.shares;
    let t = shares[0].header.threshold.t();
    let tag = shares[0].header.tag;
    let mut bad = BTreeMap::new();

    let mut attempt = |allowed: &[usize],
                       bad: &mut BTreeMap<usize, String>|
     -> Result<(PendingFile, ObjectMeta, Option<blake3::Hash>)> {
        let mut sink = ObjectSink {
            target,
            overwrite: opts.overwrite,
            prefix: Zeroizing::new(Vec::new()),
            meta: None,
            pending: None,
            written: 0,
            tag: TagCheck::new(),
            content: opts.hash_content.then(blake3::Hasher::new),
            on_progress: &mut *on_progress,
        };
        reconstruct(
            backend,
            &shares,
            allowed,
            Want::Stream(&[]),
            opts.batch_bytes,
            bad,
            &mut |_, rows| sink.push(rows[0]),
        )?;
        let meta = sink
            .meta
            .take()
            .ok_or_else(|| sink.envelope_error(EnvelopeError::WrongMagic))?;
        if sink.written != meta.content_len {
            return Err(sink.envelope_error(EnvelopeError::LengthMismatch {
                expected: meta.content_len,
                found: sink.written,
            }));
        }
        if !sink.tag.matches(&tag) {
            return Err(Error::IntegrityFailed {
                detail: String::new(),
            });
        }
        Ok((
            sink.pending.take().expect("opened"),
            meta,
            sink.content.as_ref().map(blake3::Hasher::finalize),
        ))
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
    let ((pending, meta, blake3), _) = searched?;
    let output = pending.commit(opts.overwrite, opts.sync)?;
    Ok(CombineReport {
        output,
        meta,
        blake3,
        warnings,
    })
}

/// After a subset search found t shares that rebuild the tagged object:
/// which of the others are wrong although their own hashes hold, named.
pub(super) fn name_wrong_shares(
    backend: &dyn Backend,
    shares: &[ShareSource],
    chosen: &[usize],
    bad: &BTreeMap<usize, String>,
    batch_bytes: usize,
) -> Result<Vec<String>> {
    let suspects: Vec<usize> = (0..shares.len())
        .filter(|i| !chosen.contains(i) && !bad.contains_key(i))
        .collect();
    let wrong = wrong_shares(backend, shares, chosen, &suspects, batch_bytes)?;
    Ok(wrong
        .iter()
        .map(|&i| {
            format!(
                "share {} is wrong although its own hashes hold (rewritten or forged): \
                 the object was rebuilt without it",
                shares[i].path.display()
            )
        })
        .collect())
}

/// One warning per share with a damaged segment (or that could not be
/// read), saying the other shares stood in.
pub(super) fn damaged_warnings(
    shares: &[ShareSource],
    bad: &BTreeMap<usize, String>,
) -> Vec<String> {
    bad.iter()
        .map(|(i, why)| {
            format!(
                "share {}: {why}; the other shares stood in for what is damaged",
                shares[*i].path.display()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "/etc/passwd", "a\\b"] {
            assert!(safe_name(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert_eq!(safe_name(b"CT_small.dcm").unwrap(), "CT_small.dcm");
        assert_eq!(safe_name(b"n\xffame").unwrap().len(), 5);
    }
}
