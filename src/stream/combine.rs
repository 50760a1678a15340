//! Rebuilding from shares: combine (the object), repair (a lost share) and
//! inspect (a share's own checks), streaming with bounded memory.
//!
//! Every payload segment is checked against its share's BLAKE3 table before
//! it is used; a share whose segment fails is named and replaced by a spare.
//! After a combine the keyed tag must match, or nothing is written; with
//! spares at hand, other subsets of t shares are tried first.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::engine::Backend;
use crate::error::{Error, IoContext, Result};
use crate::output::PendingFile;
use crate::share::envelope::{self, CHECK_KEY_LEN, EnvelopeError, ObjectMeta, Prefix};
use crate::share::format::{self, HASH_LEN, HEADER_LEN, ShareHeader};
use crate::sharing::Matrix;
use crate::stream::split::{DEFAULT_BATCH_BYTES, ShareWriter, read_up_to};

/// An opened share whose header and segment table have been checked.
pub struct ShareSource {
    pub path: PathBuf,
    file: File,
    pub header: ShareHeader,
    table: Vec<u8>,
}

impl ShareSource {
    /// Opens a share, checks its header, its header hash and its length.
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |error| Error::BadShare {
            path: path.to_path_buf(),
            error,
        };
        let mut file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        let mut head = [0u8; HEADER_LEN];
        let n = read_up_to(&mut file, &mut head).at(path)?;
        let (header, stored) = ShareHeader::decode(&head[..n]).map_err(bad)?;
        // The length first: a damaged header could announce a huge table.
        header.check_file_len(len).map_err(bad)?;
        let mut table = vec![0u8; header.table_len() as usize];
        file.read_exact(&mut table).at(path)?;
        header.verify_table(&stored, &table).map_err(bad)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            header,
            table,
        })
    }

    /// Reads payload bytes from `start` (segment-aligned) into `buf`, and
    /// checks every segment they cover. Returns why not, if they fail.
    fn read_verified(&self, start: u64, buf: &mut [u8]) -> std::result::Result<(), String> {
        let seg = self.header.segment_size as u64;
        debug_assert_eq!(start % seg, 0);
        self.file
            .read_exact_at(buf, self.header.payload_offset() + start)
            .map_err(|e| format!("read failed at payload offset {start}: {e}"))?;
        for (i, segment) in buf.chunks(seg as usize).enumerate() {
            let k = start / seg + i as u64;
            if !self.segment_ok(k, segment) {
                return Err(format!("segment {k} is corrupt (BLAKE3 mismatch)"));
            }
        }
        Ok(())
    }

    fn segment_ok(&self, k: u64, segment: &[u8]) -> bool {
        let at = k as usize * HASH_LEN;
        self.table[at..at + HASH_LEN] == format::segment_hash(segment)
    }
}

/// Shares that were opened, and those that could not be used, with why.
pub struct ShareSet {
    pub shares: Vec<ShareSource>,
    pub warnings: Vec<String>,
}

/// Opens every share and checks that they belong together.
///
/// Shares that cannot be read or whose header is damaged are set aside with
/// a warning while at least t others remain; mixing splits and giving one
/// x twice are refused outright.
pub fn open_shares(paths: &[PathBuf]) -> Result<ShareSet> {
    let mut shares: Vec<ShareSource> = Vec::with_capacity(paths.len());
    let mut failures: Vec<Error> = Vec::new();
    for p in paths {
        match ShareSource::open(p) {
            Ok(s) => shares.push(s),
            Err(e) => failures.push(e),
        }
    }
    if let Some(first) = shares.first() {
        let h0 = &first.header;
        for s in &shares[1..] {
            let h = &s.header;
            if h.split_id != h0.split_id {
                return Err(Error::MixedSplits {
                    first: first.path.clone(),
                    other: s.path.clone(),
                });
            }
            let field = if h.threshold != h0.threshold {
                Some("t and n")
            } else if h.payload_len != h0.payload_len {
                Some("the payload length")
            } else if h.tag != h0.tag {
                Some("the integrity tag")
            } else if h.segment_size != h0.segment_size {
                Some("the segment size")
            } else {
                None
            };
            if let Some(field) = field {
                return Err(Error::InconsistentHeaders {
                    first: first.path.clone(),
                    other: s.path.clone(),
                    field,
                });
            }
        }
        for (i, a) in shares.iter().enumerate() {
            if let Some(b) = shares[..i].iter().find(|b| b.header.x == a.header.x) {
                return Err(Error::DuplicateShare {
                    first: b.path.clone(),
                    other: a.path.clone(),
                    x: a.header.x,
                });
            }
        }
        let t = h0.threshold.t();
        if shares.len() >= t {
            return Ok(ShareSet {
                shares,
                warnings: failures.iter().map(|e| format!("skipped {e}")).collect(),
            });
        }
    }
    // Too few usable shares: the first failure says most, if there is one.
    match failures.into_iter().next() {
        Some(e) => Err(e),
        None => Err(Error::TooFewShares {
            given: shares.len(),
            t: shares.first().map_or(2, |s| s.header.threshold.t()),
        }),
    }
}

/// Receives each batch of rebuilt rows with its stream offset.
type RowSink<'a> = dyn FnMut(u64, &[&[u8]]) -> Result<()> + 'a;

/// Streams the payload rebuilt at each x in `targets` (0 = the secret),
/// batch by batch, from shares in `allowed` (in order of preference).
/// Shares whose segments fail are recorded in `bad` and replaced.
fn reconstruct(
    backend: &dyn Backend,
    shares: &[ShareSource],
    allowed: &[usize],
    targets: &[u8],
    batch_bytes: usize,
    bad: &mut BTreeMap<usize, String>,
    sink: &mut RowSink<'_>,
) -> Result<()> {
    let h = &shares[allowed[0]].header;
    let t = h.threshold.t();
    let seg = h.segment_size as usize;
    let payload_len = h.payload_len;
    // A small object gets buffers of its own size, not a full batch each.
    let batch_len = payload_len.clamp(1, ((batch_bytes.max(seg) / seg) * seg) as u64) as usize;
    let mut buffers: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let mut outputs: Vec<Zeroizing<Vec<u8>>> = targets
        .iter()
        .map(|_| Zeroizing::new(vec![0u8; batch_len]))
        .collect();
    let mut offset = 0u64;
    while offset < payload_len {
        let len = (payload_len - offset).min(batch_len as u64) as usize;
        let mut good: Vec<usize> = Vec::with_capacity(t);
        let mut cursor = 0;
        while good.len() < t {
            let candidates: Vec<usize> = allowed[cursor..]
                .iter()
                .copied()
                .filter(|i| !bad.contains_key(i))
                .take(t - good.len())
                .collect();
            if candidates.is_empty() {
                return Err(Error::NotEnoughIntact {
                    offset,
                    intact: good.len(),
                    t,
                    bad: bad
                        .iter()
                        .map(|(i, why)| format!("{} ({why})", shares[*i].path.display()))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
            let last = *candidates.last().expect("non-empty");
            cursor = allowed
                .iter()
                .position(|&i| i == last)
                .expect("from allowed")
                + 1;
            let mut bufs: Vec<(usize, Vec<u8>)> = candidates
                .iter()
                .map(|&i| {
                    (
                        i,
                        buffers.remove(&i).unwrap_or_else(|| vec![0u8; batch_len]),
                    )
                })
                .collect();
            let results: Vec<std::result::Result<(), String>> = bufs
                .par_iter_mut()
                .map(|(i, buf)| shares[*i].read_verified(offset, &mut buf[..len]))
                .collect();
            for ((i, buf), result) in bufs.into_iter().zip(results) {
                match result {
                    Ok(()) => good.push(i),
                    Err(why) => {
                        bad.insert(i, why);
                    }
                }
                buffers.insert(i, buf);
            }
        }
        let xs: Vec<u8> = good.iter().map(|&i| shares[i].header.x).collect();
        let matrix = Matrix::lagrange(&xs, targets)?;
        let inputs: Vec<&[u8]> = good.iter().map(|i| &buffers[i][..len]).collect();
        let mut outs: Vec<&mut [u8]> = outputs.iter_mut().map(|o| &mut o[..len]).collect();
        backend
            .apply(&matrix, &inputs, &mut outs)
            .map_err(|error| Error::EngineAt {
                path: shares[good[0]].path.clone(),
                error,
            })?;
        let rows: Vec<&[u8]> = outputs.iter().map(|o| &o[..len]).collect();
        sink(offset, &rows)?;
        offset += len as u64;
    }
    Ok(())
}

/// Checks the keyed tag of a combined stream as it goes by.
struct TagCheck {
    key: Zeroizing<Vec<u8>>,
    hasher: Option<blake3::Hasher>,
}

impl TagCheck {
    fn new() -> Self {
        Self {
            key: Zeroizing::new(Vec::with_capacity(CHECK_KEY_LEN)),
            hasher: None,
        }
    }

    fn update(&mut self, mut bytes: &[u8]) {
        if self.hasher.is_none() {
            let take = (CHECK_KEY_LEN - self.key.len()).min(bytes.len());
            self.key.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.key.len() == CHECK_KEY_LEN {
                let key: [u8; CHECK_KEY_LEN] = self.key[..].try_into().expect("32 bytes");
                self.hasher = Some(blake3::Hasher::new_keyed(&key));
            }
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(bytes);
        }
    }

    /// Constant-time comparison (blake3::Hash's equality is).
    fn matches(&self, tag: &[u8; HASH_LEN]) -> bool {
        self.hasher
            .as_ref()
            .is_some_and(|h| h.finalize() == blake3::Hash::from_bytes(*tag))
    }
}

/// Where a combined object goes.
#[derive(Debug, Clone)]
pub enum CombineTarget {
    /// This exact path.
    File(PathBuf),
    /// This directory, under the name stored inside the shares.
    Dir(PathBuf),
}

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
fn safe_name(name: &str) -> Result<&str> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).file_name().is_some_and(|f| f == name);
    if plain {
        Ok(name)
    } else {
        Err(Error::UnsafeName {
            name: name.to_string(),
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
            &[0],
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

    let all: Vec<usize> = (0..shares.len()).collect();
    let result = match attempt(&all, &mut bad) {
        Err(e) if is_wrong_combination(&e) && all.len() - bad.len() > t => {
            // Some share is wrong although its own hashes hold (rewritten
            // with fresh hashes, say): look for t shares that agree.
            let usable: Vec<usize> = all
                .iter()
                .copied()
                .filter(|i| !bad.contains_key(i))
                .collect();
            let mut found = Err(e);
            for combo in combinations(usable.len(), t).take(256).skip(1) {
                let chosen: Vec<usize> = combo.iter().map(|&k| usable[k]).collect();
                match attempt(&chosen, &mut bad) {
                    Ok(ok) => {
                        let left_out: Vec<String> = usable
                            .iter()
                            .filter(|i| !chosen.contains(i))
                            .map(|&i| shares[i].path.display().to_string())
                            .collect();
                        warnings.push(format!(
                            "the first {t} shares did not combine to the tagged object; shares {} \
                             were left out (one of them is wrong although its own hashes hold)",
                            left_out.join(", ")
                        ));
                        found = Ok(ok);
                        break;
                    }
                    Err(e) if is_wrong_combination(&e) => continue,
                    Err(e) => {
                        found = Err(e);
                        break;
                    }
                }
            }
            found
        }
        other => other,
    };
    for (i, why) in &bad {
        warnings.push(format!(
            "skipped share {}: {why}",
            shares[*i].path.display()
        ));
    }
    let (pending, meta, blake3) = result?;
    let output = pending.commit(opts.overwrite, opts.sync)?;
    Ok(CombineReport {
        output,
        meta,
        blake3,
        warnings,
    })
}

fn is_wrong_combination(e: &Error) -> bool {
    matches!(
        e,
        Error::IntegrityFailed { .. }
            | Error::Envelope {
                error: EnvelopeError::WrongMagic
                    | EnvelopeError::LengthMismatch { .. }
                    | EnvelopeError::BadName
                    | EnvelopeError::UnsupportedVersion(_),
                ..
            }
            | Error::UnsafeName { .. }
    )
}

/// k-combinations of 0..n in lexicographic order.
pub(crate) fn combinations(n: usize, k: usize) -> impl Iterator<Item = Vec<usize>> {
    let mut next = (k <= n).then(|| (0..k).collect::<Vec<usize>>());
    std::iter::from_fn(move || {
        let current = next.take()?;
        let mut c = current.clone();
        let mut i = k;
        while i > 0 {
            i -= 1;
            if c[i] < n - k + i {
                c[i] += 1;
                for j in i + 1..k {
                    c[j] = c[j - 1] + 1;
                }
                next = Some(c);
                break;
            }
        }
        Some(current)
    })
}

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
    let mut pending = PendingFile::create(output, opts.overwrite)?;
    let file = pending.file().try_clone().at(output)?;
    let mut writer = ShareWriter::new(file, header).at(output)?;
    let mut check = TagCheck::new();
    let mut bad = BTreeMap::new();
    let all: Vec<usize> = (0..shares.len()).collect();
    reconstruct(
        backend,
        &shares,
        &all,
        &[0, lost_x],
        opts.batch_bytes,
        &mut bad,
        &mut |_, rows| {
            check.update(rows[0]);
            writer.write_payload(rows[1]).at(output)
        },
    )?;
    for (i, why) in &bad {
        warnings.push(format!(
            "skipped share {}: {why}",
            shares[*i].path.display()
        ));
    }
    if !check.matches(&tag) {
        return Err(Error::IntegrityFailed {
            detail: " while repairing".into(),
        });
    }
    writer.finish(tag).at(output)?;
    let output = pending.commit(opts.overwrite, opts.sync)?;
    Ok(RepairReport {
        output,
        x: lost_x,
        warnings,
    })
}

/// What `umbra inspect` reports about one share.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InspectReport {
    pub path: PathBuf,
    pub version: u16,
    pub field_polynomial: String,
    pub t: usize,
    pub n: usize,
    pub x: u8,
    pub split_id: String,
    pub payload_len: u64,
    pub segment_size: u32,
    pub segments: u64,
    pub tag: String,
    /// Header hash and length hold.
    pub header_ok: bool,
    /// Indices of segments whose BLAKE3 hash does not match.
    pub corrupt_segments: Vec<u64>,
}

impl InspectReport {
    pub fn intact(&self) -> bool {
        self.header_ok && self.corrupt_segments.is_empty()
    }
}

/// Reads a share's header and checks every segment against its table.
pub fn inspect_share(path: &Path) -> Result<InspectReport> {
    let share = ShareSource::open(path)?;
    let h = &share.header;
    let seg = h.segment_size as usize;
    let mut corrupt = Vec::new();
    let mut buf = vec![0u8; seg];
    for k in 0..h.segment_count() {
        let (start, end) = h.segment_range(k);
        let part = &mut buf[..(end - start) as usize];
        share
            .file
            .read_exact_at(part, h.payload_offset() + start)
            .at(path)?;
        if !share.segment_ok(k, part) {
            corrupt.push(k);
        }
    }
    Ok(InspectReport {
        path: path.to_path_buf(),
        version: format::VERSION,
        field_polynomial: format!("{:#05x}", crate::field::POLY),
        t: h.threshold.t(),
        n: h.threshold.n(),
        x: h.x,
        split_id: crate::stream::split::hex(&h.split_id),
        payload_len: h.payload_len,
        segment_size: h.segment_size,
        segments: h.segment_count(),
        tag: crate::stream::split::hex(&h.tag),
        header_ok: true,
        corrupt_segments: corrupt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_in_order() {
        let all: Vec<Vec<usize>> = combinations(4, 2).collect();
        assert_eq!(
            all,
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        assert_eq!(combinations(8, 4).count(), 70);
        assert_eq!(combinations(2, 3).count(), 0);
    }

    #[test]
    fn names_that_escape_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "/etc/passwd", "a\\b"] {
            assert!(safe_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(safe_name("CT_small.dcm").unwrap(), "CT_small.dcm");
    }
}
