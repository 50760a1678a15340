//! Splitting a file into n share files, streaming with bounded memory.
//!
//! The shared stream is the envelope prefix (check key and metadata) and then
//! the file's bytes. It is read in batches of whole segments; each batch is
//! split by the backend, and every share's segments are hashed and appended
//! to its temporary file in parallel. The headers, which carry the tag of the
//! whole stream and the segment tables, are written last; then all n files
//! are renamed into place together.
//!
//! Small objects can instead be split many at a time, each whole in memory
//! ([`split_whole_streams`]): one engine call for all of them, and share
//! files byte for byte the same as the streaming path writes.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::buffer::{AlignedBuf, read_up_to};
use crate::engine::{Backend, DisperseJob, SplitJob};
use crate::error::{Error, IoContext, Result};
use crate::keystream::ObjectKey;
use crate::output::{self, PendingFile};
use crate::share::envelope::{self, CHECK_KEY_LEN, ObjectMeta};
use crate::share::format::{
    DEFAULT_SEGMENT_SIZE, HASH_LEN, KEY_SHARE_LEN, SPLIT_ID_LEN, Scheme, SchemeKind, ShareHeader,
    compact_payload_len, compact_segment_size, hex,
};
use crate::share::writer::{ShareWriter, share_file_name};
use crate::sharing::SplitPlan;

/// Default stream bytes per batch: two 1 MiB segments. With (4, 8) the batch
/// and its 16 MiB of shares stay in the last-level cache while they are
/// hashed and written out, instead of a round trip through DRAM.
pub const DEFAULT_BATCH_BYTES: usize = 2 << 20;

/// The random values of one split. From the OS in normal use; tests inject
/// fixed ones through [`SplitSecrets::fixed`] (the CLI never does).
pub struct SplitSecrets {
    pub key: ObjectKey,
    pub check_key: Zeroizing<[u8; CHECK_KEY_LEN]>,
    pub split_id: [u8; SPLIT_ID_LEN],
    /// The compact scheme's key-sharing coefficients are ChaCha20 under this
    /// seed (docs/DESIGN.md section 8); unused by Shamir.
    pub share_seed: ObjectKey,
}

impl SplitSecrets {
    /// Fresh object key, check key and split id from the operating system.
    pub fn from_os() -> Result<Self> {
        let key = ObjectKey::generate().map_err(|e| Error::Random(e.to_string()))?;
        let mut check_key = Zeroizing::new([0u8; CHECK_KEY_LEN]);
        getrandom::fill(check_key.as_mut()).map_err(|e| Error::Random(e.to_string()))?;
        let mut split_id = [0u8; SPLIT_ID_LEN];
        getrandom::fill(&mut split_id).map_err(|e| Error::Random(e.to_string()))?;
        let share_seed = ObjectKey::generate().map_err(|e| Error::Random(e.to_string()))?;
        Ok(Self {
            key,
            check_key,
            split_id,
            share_seed,
        })
    }

    /// Fixed values, for test vectors (the key-sharing seed is derived from
    /// the key; give one of its own with [`SplitSecrets::with_share_seed`]).
    pub fn fixed(key: [u8; 32], check_key: [u8; 32], split_id: [u8; 16]) -> Self {
        let seed = blake3::derive_key("umbra test key-sharing seed", &key);
        Self {
            key: ObjectKey::from_bytes(key),
            check_key: Zeroizing::new(check_key),
            split_id,
            share_seed: ObjectKey::from_bytes(seed),
        }
    }

    /// The same secrets with the key-sharing seed given, for test vectors.
    pub fn with_share_seed(mut self, seed: [u8; 32]) -> Self {
        self.share_seed = ObjectKey::from_bytes(seed);
        self
    }

    /// The compact scheme's share of the object key at `x` for (t, n):
    /// K + c_1 x + ... + c_{t-1} x^(t-1), byte by byte over GF(2^8), with
    /// c_j bytes 32(j-1)..32j of ChaCha20 under the seed (stream 0, offset
    /// 0): uniform over all 256 values, zero included.
    pub fn key_share(&self, t: usize, x: u8) -> [u8; KEY_SHARE_LEN] {
        let mut coeffs = Zeroizing::new(vec![0u8; (t - 1) * KEY_SHARE_LEN]);
        crate::keystream::fill(&self.share_seed, 0, 0, &mut coeffs);
        let mut share = *self.key.expose();
        let mut power = 1u8;
        for c in coeffs.chunks_exact(KEY_SHARE_LEN) {
            power = crate::field::mul(power, x);
            for (s, &a) in share.iter_mut().zip(c) {
                *s ^= crate::field::mul(a, power);
            }
        }
        share
    }
}

/// How share files are named in the output directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareNaming {
    /// `INPUT.xxx.umbra`: convenient, but the name is visible to whoever holds the share.
    InputName,
    /// `SPLITID.xxx.umbra`: reveals nothing; the name is restored from inside the shares.
    SplitId,
}

/// How a split is made and its shares written.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    pub plan: SplitPlan,
    pub scheme: SchemeKind,
    pub segment_size: u32,
    pub batch_bytes: usize,
    pub overwrite: bool,
    pub sync: bool,
    pub naming: ShareNaming,
}

impl SplitOptions {
    /// Defaults for `plan`: 1 MiB segments, 2 MiB batches, shares named after
    /// the input, no overwrite, no fsync.
    pub fn new(plan: SplitPlan) -> Self {
        Self {
            plan,
            scheme: SchemeKind::Shamir,
            segment_size: DEFAULT_SEGMENT_SIZE,
            batch_bytes: DEFAULT_BATCH_BYTES,
            overwrite: false,
            sync: false,
            naming: ShareNaming::InputName,
        }
    }

    /// The same with `scheme`, and for compact its default segment size
    /// ([`compact_segment_size`]).
    pub fn with_scheme(mut self, scheme: SchemeKind) -> Self {
        self.scheme = scheme;
        self.segment_size = match scheme {
            SchemeKind::Shamir => DEFAULT_SEGMENT_SIZE,
            SchemeKind::Compact => compact_segment_size(self.plan.threshold().t()),
        };
        self
    }

    /// The header of share `x` of a stream of `stream_len` bytes split with
    /// these options and `secrets`; the tag is filled in by
    /// [`ShareWriter::finish`].
    pub fn share_header(&self, x: u8, stream_len: u64, secrets: &SplitSecrets) -> ShareHeader {
        let t = self.plan.threshold().t();
        let (payload_len, scheme) = match self.scheme {
            SchemeKind::Shamir => (stream_len, Scheme::Shamir),
            SchemeKind::Compact => (
                compact_payload_len(stream_len, t, self.segment_size),
                Scheme::Compact {
                    stream_len,
                    key_share: secrets.key_share(t, x),
                },
            ),
        };
        ShareHeader {
            threshold: self.plan.threshold(),
            x,
            segment_size: self.segment_size,
            payload_len,
            split_id: secrets.split_id,
            tag: [0; HASH_LEN],
            scheme,
        }
    }

    /// Stream bytes per batch: whole segments for Shamir, whole blocks of
    /// t segments for compact.
    fn batch_len(&self) -> usize {
        let unit = match self.scheme {
            SchemeKind::Shamir => self.segment_size as usize,
            SchemeKind::Compact => self.segment_size as usize * self.plan.threshold().t(),
        };
        (self.batch_bytes.max(unit) / unit) * unit
    }

    /// Payload bytes of each share for `len` bytes of stream from a batch
    /// boundary.
    fn payload_len(&self, len: usize) -> usize {
        match self.scheme {
            SchemeKind::Shamir => len,
            SchemeKind::Compact => {
                compact_payload_len(len as u64, self.plan.threshold().t(), self.segment_size)
                    as usize
            }
        }
    }

    /// The backend's split of `stream` bytes at `offset` into `shares`
    /// ([`SplitOptions::payload_len`] bytes each), by scheme.
    fn split_into(
        &self,
        backend: &dyn Backend,
        key: &ObjectKey,
        offset: u64,
        stream: &[u8],
        shares: &mut [&mut [u8]],
    ) -> std::result::Result<(), crate::engine::EngineError> {
        match self.scheme {
            SchemeKind::Shamir => backend.split(&self.plan, key, offset, stream, shares),
            SchemeKind::Compact => crate::engine::compact::disperse_stream(
                backend,
                &self.plan,
                key,
                self.segment_size as usize,
                offset,
                stream,
                shares,
            ),
        }
    }
}

/// What a split produced.
#[derive(Debug, Clone)]
pub struct SplitReport {
    pub input: PathBuf,
    pub shares: Vec<PathBuf>,
    pub content_len: u64,
    pub stream_len: u64,
    pub split_id: [u8; SPLIT_ID_LEN],
}

/// The working memory of [`split_stream_with`]: a batch of plaintext and one
/// batch per share, kept from one object to the next (many small objects
/// then cost no allocation and no page faults each). They grow to the
/// largest batch seen; the plaintext is wiped after every stream and on drop.
#[derive(Default)]
pub struct SplitBuffers {
    batch: Vec<u8>,
    outs: Vec<AlignedBuf>,
}

impl SplitBuffers {
    fn reserve_plain(&mut self, batch_len: usize) {
        if self.batch.len() < batch_len {
            zeroize::Zeroize::zeroize(&mut self.batch);
            self.batch = vec![0u8; batch_len];
        }
    }

    /// Makes the share buffers at least `len` bytes for `shares` shares now
    /// (only those: [`split_whole_streams`] reads its plaintext from the
    /// caller). A caller that knows its largest batch sizes them once: grown
    /// batch by batch, n buffers are freed and reallocated each time, and
    /// the freed ones can stay in the process's memory as heap holes.
    pub fn reserve_shares(&mut self, len: usize, shares: usize) {
        self.outs.truncate(shares);
        for o in &mut self.outs {
            if o.len() < len {
                *o = AlignedBuf::zeroed(len);
            }
        }
        while self.outs.len() < shares {
            self.outs.push(AlignedBuf::zeroed(len));
        }
    }

    /// Bytes of each share buffer: what a batch can take without growing.
    pub fn share_capacity(&self) -> usize {
        self.outs.first().map_or(0, |o| o.len())
    }
}

impl Drop for SplitBuffers {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.batch);
    }
}

/// Splits the stream `prefix ++ content` into the given share writers.
/// `content` must yield exactly `content_len` bytes; `on_progress` gets the
/// content bytes done after each batch. Returns the integrity tag.
#[allow(clippy::too_many_arguments)]
pub fn split_stream<W: Write + Seek + Send>(
    backend: &dyn Backend,
    opts: &SplitOptions,
    secrets: &SplitSecrets,
    prefix: &[u8],
    content: &mut (dyn Read + Send),
    content_len: u64,
    writers: &mut [ShareWriter<W>],
    on_progress: &mut dyn FnMut(u64),
) -> std::result::Result<[u8; HASH_LEN], SplitStreamError> {
    split_stream_with(
        &mut SplitBuffers::default(),
        backend,
        opts,
        secrets,
        prefix,
        content,
        content_len,
        writers,
        on_progress,
    )
}

/// [`split_stream`] with buffers kept by the caller.
///
/// Pipelined over two plaintext batches: while batch k is split and its
/// shares written (hashing their segments), batch k+1 is read and added to
/// the tag, so the read, the tag and any hashing in `content` run beside
/// the engine and the writes instead of between them.
#[allow(clippy::too_many_arguments)]
pub fn split_stream_with<W: Write + Seek + Send>(
    bufs: &mut SplitBuffers,
    backend: &dyn Backend,
    opts: &SplitOptions,
    secrets: &SplitSecrets,
    prefix: &[u8],
    content: &mut (dyn Read + Send),
    content_len: u64,
    writers: &mut [ShareWriter<W>],
    on_progress: &mut dyn FnMut(u64),
) -> std::result::Result<[u8; HASH_LEN], SplitStreamError> {
    let stream_len = prefix.len() as u64 + content_len;
    // A small object gets buffers of its own size, not a full batch each.
    let batch_len = stream_len.clamp(1, opts.batch_len() as u64) as usize;
    let pipelined = stream_len > batch_len as u64;
    bufs.reserve_plain(if pipelined { 2 * batch_len } else { batch_len });
    bufs.reserve_shares(opts.payload_len(batch_len), writers.len());
    let (first, second) = bufs.batch.split_at_mut(batch_len);
    let mut current: &mut [u8] = first;
    let mut next: &mut [u8] = &mut second[..if pipelined { batch_len } else { 0 }];
    let outs = &mut bufs.outs[..];
    let mut source = Source {
        prefix,
        content,
        content_len,
        content_done: 0,
        tag: blake3::Hasher::new_keyed(&secrets.check_key),
    };
    let first_len = stream_len.min(batch_len as u64) as usize;
    source.fill(0, &mut current[..first_len])?;
    let mut offset = 0u64;
    while offset < stream_len {
        let len = (stream_len - offset).min(batch_len as u64) as usize;
        let next_offset = offset + len as u64;
        let next_len = (stream_len - next_offset).min(batch_len as u64) as usize;
        let buf = &current[..len];
        let plen = opts.payload_len(len);
        let (read, written) = rayon::join(
            || source.fill(next_offset, &mut next[..next_len]),
            || {
                let mut out_refs: Vec<&mut [u8]> =
                    outs.iter_mut().map(|o| &mut o[..plen]).collect();
                opts.split_into(backend, &secrets.key, offset, buf, &mut out_refs)
                    .map_err(SplitStreamError::Engine)?;
                writers
                    .par_iter_mut()
                    .zip(outs.par_iter())
                    .try_for_each(|(w, out)| w.write_payload(&out[..plen]))
                    .map_err(SplitStreamError::Write)
            },
        );
        read?;
        written?;
        offset = next_offset;
        on_progress(offset.saturating_sub(prefix.len() as u64).min(content_len));
        std::mem::swap(&mut current, &mut next);
    }
    // The content must end where its length said.
    let mut probe = [0u8; 1];
    if read_up_to(source.content, &mut probe).map_err(SplitStreamError::Read)? != 0 {
        return Err(SplitStreamError::Grew {
            expected: content_len,
        });
    }
    // Wipe the plaintext of the last batches (the source's bytes and the
    // check key): the part used, as a slice. (Zeroizing the Vec would also
    // empty it, and the next stream would allocate and fault in its batches
    // again: for a migrate of 7 MB files, 8 MiB of fresh pages per object.)
    let used = if pipelined { 2 * batch_len } else { batch_len };
    zeroize::Zeroize::zeroize(&mut bufs.batch[..used]);
    Ok(*source.tag.finalize().as_bytes())
}

/// The shared stream `prefix ++ content` as [`split_stream_with`] reads it,
/// batch by batch, each batch added to the tag as it comes in.
struct Source<'a, 'r> {
    prefix: &'a [u8],
    content: &'r mut (dyn Read + Send),
    content_len: u64,
    content_done: u64,
    tag: blake3::Hasher,
}

impl Source<'_, '_> {
    /// Fills `buf` with the stream from `offset` (the prefix first, then
    /// content) and adds it to the tag, which covers the stream after the
    /// check key.
    fn fill(&mut self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), SplitStreamError> {
        let len = buf.len();
        let mut filled = prefix_part(offset, self.prefix.len(), len) as usize;
        if filled > 0 {
            buf[..filled].copy_from_slice(&self.prefix[offset as usize..offset as usize + filled]);
        }
        while filled < len {
            let n = match self.content.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SplitStreamError::Read(e)),
            };
            if n == 0 {
                return Err(SplitStreamError::Shrank {
                    expected: self.content_len,
                    found: self.content_done,
                });
            }
            filled += n;
            self.content_done += n as u64;
        }
        let skip = (CHECK_KEY_LEN as u64)
            .saturating_sub(offset)
            .min(len as u64) as usize;
        self.tag.update(&buf[skip..]);
        Ok(())
    }
}

/// One object of [`split_whole_streams`]: its whole shared stream in memory,
/// the secrets it is split with, and its n share writers (in the plan's
/// order of x, headers as for [`split_stream`]).
pub struct WholeStream<'a, W: Write + Seek> {
    pub secrets: &'a SplitSecrets,
    /// The envelope prefix, then the content: what [`split_stream`] reads.
    pub stream: &'a [u8],
    pub writers: &'a mut [ShareWriter<W>],
}

/// Splits many small objects, each whole in memory, with one engine call
/// ([`Backend::split_many`]: on a GPU a few dispatches for all of them, not
/// one per object), then writes every object's shares into its writers in
/// parallel. Each share file gets exactly the bytes that [`split_stream`]
/// writes for the same stream and secrets: the same payload, segment hashes
/// and tag (keyed BLAKE3 of the stream after the check key), which this
/// returns per object for [`ShareWriter::finish`].
///
/// The shares of all objects are held at once (n times the streams'
/// total, in `bufs`): the caller bounds the batch. The streams are the
/// caller's to wipe.
///
/// The outer error is the engine's, and fails every object; an inner one
/// is a failed write to that object's share `.0` (its writer's index).
pub fn split_whole_streams<W: Write + Seek + Send>(
    bufs: &mut SplitBuffers,
    backend: &dyn Backend,
    opts: &SplitOptions,
    objects: &mut [WholeStream<'_, W>],
) -> std::result::Result<WholeStreamResults, crate::engine::EngineError> {
    let n = opts.plan.threshold().n();
    assert!(
        objects.iter().all(|o| o.writers.len() == n),
        "one writer per share"
    );
    let plens: Vec<usize> = objects
        .iter()
        .map(|o| opts.payload_len(o.stream.len()))
        .collect();
    let total: usize = plens.iter().sum();
    bufs.reserve_shares(total, n);
    // Object k's shares are the bytes `starts[k]..starts[k] + plens[k]` of
    // each share buffer.
    let starts: Vec<usize> = plens
        .iter()
        .scan(0, |at, &len| {
            let start = *at;
            *at += len;
            Some(start)
        })
        .collect();
    let mut rows: Vec<&mut [u8]> = bufs.outs.iter_mut().map(|o| &mut o[..total]).collect();
    if opts.scheme == SchemeKind::Compact {
        // One engine call for all: a GPU packs every object's blocks into
        // shared dispatches; the CPU spreads each block over every core.
        let mut jobs: Vec<DisperseJob<'_>> = objects
            .iter()
            .map(|o| DisperseJob {
                key: &o.secrets.key,
                offset: 0,
                stream: o.stream,
                shares: Vec::with_capacity(n),
            })
            .collect();
        for row in rows.iter_mut() {
            let mut rest: &mut [u8] = row;
            for (job, &plen) in jobs.iter_mut().zip(&plens) {
                let (mine, after) = std::mem::take(&mut rest).split_at_mut(plen);
                job.shares.push(mine);
                rest = after;
            }
        }
        backend.disperse_many(&opts.plan, opts.segment_size as usize, &mut jobs)?;
    } else {
        let mut jobs: Vec<SplitJob<'_>> = objects
            .iter()
            .map(|o| SplitJob {
                key: &o.secrets.key,
                offset: 0,
                secret: o.stream,
                shares: Vec::with_capacity(n),
            })
            .collect();
        for row in rows.iter_mut() {
            let mut rest: &mut [u8] = row;
            for job in jobs.iter_mut() {
                let (mine, after) = std::mem::take(&mut rest).split_at_mut(job.secret.len());
                job.shares.push(mine);
                rest = after;
            }
        }
        backend.split_many(&opts.plan, &mut jobs)?;
    }
    let outs = &bufs.outs;
    Ok(objects
        .par_iter_mut()
        .zip(starts)
        .zip(plens)
        .map(|((object, start), plen)| {
            let len = object.stream.len();
            let (tag, written) = rayon::join(
                || {
                    // The tag covers the stream after the check key.
                    let tagged = &object.stream[CHECK_KEY_LEN.min(len)..];
                    *blake3::Hasher::new_keyed(&object.secrets.check_key)
                        .update(tagged)
                        .finalize()
                        .as_bytes()
                },
                || {
                    object
                        .writers
                        .par_iter_mut()
                        .zip(outs.par_iter())
                        .enumerate()
                        .try_for_each(|(i, (w, out))| {
                            w.write_payload(&out[start..start + plen])
                                .map_err(|e| (i, e))
                        })
                },
            );
            written.map(|()| tag)
        })
        .collect())
}

/// Per object of [`split_whole_streams`]: its tag, or which of its share
/// writers failed, and why.
pub type WholeStreamResults = Vec<std::result::Result<[u8; HASH_LEN], (usize, std::io::Error)>>;

/// Bytes of the batch at `offset` (of length `len`) that belong to the prefix.
fn prefix_part(offset: u64, prefix_len: usize, len: usize) -> u64 {
    (prefix_len as u64).saturating_sub(offset).min(len as u64)
}

/// Why [`split_stream`] stopped; the caller attaches the file names.
#[derive(Debug)]
pub enum SplitStreamError {
    Read(std::io::Error),
    Write(std::io::Error),
    Engine(crate::engine::EngineError),
    Shrank { expected: u64, found: u64 },
    Grew { expected: u64 },
}

impl SplitStreamError {
    /// The library error, naming the input read or the directory written.
    pub fn into_error(self, input: &Path, out_dir: &Path) -> Error {
        match self {
            SplitStreamError::Read(error) => Error::Io {
                path: input.to_path_buf(),
                error,
            },
            SplitStreamError::Write(error) => Error::Io {
                path: out_dir.to_path_buf(),
                error,
            },
            SplitStreamError::Engine(error) => Error::EngineAt {
                path: input.to_path_buf(),
                error,
            },
            SplitStreamError::Shrank { expected, found } => Error::InputChanged {
                path: input.to_path_buf(),
                detail: format!("{expected} bytes expected, only {found} could be read"),
            },
            SplitStreamError::Grew { expected } => Error::InputChanged {
                path: input.to_path_buf(),
                detail: format!("it grew past its {expected} bytes"),
            },
        }
    }
}

/// Splits `input` into n share files in `out_dir`.
pub fn split_file(
    backend: &dyn Backend,
    input: &Path,
    out_dir: &Path,
    opts: &SplitOptions,
    secrets: &SplitSecrets,
    on_progress: &mut dyn FnMut(u64),
) -> Result<SplitReport> {
    let mut file = crate::error::open_regular(input)?;
    let content_len = file.metadata().at(input)?.len();
    let name = input.file_name().unwrap_or_default();

    let mut head = [0u8; 132];
    let head_len = read_up_to(&mut file, &mut head).at(input)?;
    file.seek(SeekFrom::Start(0)).at(input)?;
    let object = ObjectMeta {
        name: name.as_bytes().to_vec(),
        content_type: envelope::sniff_content_type(&head[..head_len]).to_string(),
        content_len,
    };
    let prefix = object
        .encode_prefix(&secrets.check_key)
        .map_err(|error| Error::Envelope {
            path: input.to_path_buf(),
            error,
        })?;

    let base: std::ffi::OsString = match opts.naming {
        ShareNaming::InputName => name.to_os_string(),
        ShareNaming::SplitId => hex(&secrets.split_id).into(),
    };
    let threshold = opts.plan.threshold();
    let mut pending = Vec::with_capacity(threshold.n());
    for &x in opts.plan.xs() {
        pending.push(PendingFile::create(
            &out_dir.join(share_file_name(&base, x)),
            opts.overwrite,
        )?);
    }
    let mut writers = Vec::with_capacity(pending.len());
    for (p, &x) in pending.iter_mut().zip(opts.plan.xs()) {
        let header = opts.share_header(x, object.stream_len(), secrets);
        let target = p.target().to_path_buf();
        let f = p.file().try_clone().at(&target)?;
        writers.push(ShareWriter::new(f, header).at(&target)?);
    }

    let tag = split_stream(
        backend,
        opts,
        secrets,
        &prefix,
        &mut file,
        content_len,
        &mut writers,
        on_progress,
    )
    .map_err(|e| e.into_error(input, out_dir))?;
    for (w, p) in writers.into_iter().zip(&pending) {
        w.finish(tag).at(p.target())?;
    }
    let shares = output::commit_all(pending, opts.overwrite, opts.sync)?;
    Ok(SplitReport {
        input: input.to_path_buf(),
        shares,
        content_len,
        stream_len: object.stream_len(),
        split_id: secrets.split_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::CpuBackend;
    use crate::sharing::Threshold;
    use std::io::Cursor;

    /// The share files of `content` split with the buffers given.
    fn shares(bufs: &mut SplitBuffers, content: &[u8], opts: &SplitOptions) -> Vec<Vec<u8>> {
        let secrets = SplitSecrets::fixed([7; 32], [9; 32], [3; 16]);
        let mut writers: Vec<ShareWriter<Cursor<Vec<u8>>>> = opts
            .plan
            .xs()
            .iter()
            .map(|&x| {
                let header = opts.share_header(x, 16 + content.len() as u64, &secrets);
                ShareWriter::new(Cursor::new(Vec::new()), header).unwrap()
            })
            .collect();
        let tag = split_stream_with(
            bufs,
            &CpuBackend::detect(),
            opts,
            &secrets,
            &[0xAB; 16],
            &mut &content[..],
            content.len() as u64,
            &mut writers,
            &mut |_| {},
        )
        .unwrap();
        writers
            .into_iter()
            .map(|w| w.finish(tag).unwrap().into_inner())
            .collect()
    }

    #[test]
    fn reused_buffers_give_the_same_shares() {
        let plan = SplitPlan::new(Threshold::new(3, 5).unwrap(), vec![1, 2, 3, 4, 5]).unwrap();
        let mut opts = SplitOptions::new(plan);
        opts.batch_bytes = 64 << 10;
        let mut kept = SplitBuffers::default();
        // Small, bigger than a batch, empty, small again: each buffer is
        // reused at a different length, with old bytes left in it.
        for (i, len) in [5000usize, 200_000, 0, 70_001, 10].into_iter().enumerate() {
            let content: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
            let fresh = shares(&mut SplitBuffers::default(), &content, &opts);
            assert_eq!(shares(&mut kept, &content, &opts), fresh, "length {len}");
        }
    }

    #[test]
    fn the_plaintext_buffer_is_wiped_and_kept() {
        let plan = SplitPlan::new(Threshold::new(2, 3).unwrap(), vec![1, 2, 3]).unwrap();
        let mut opts = SplitOptions::new(plan).with_scheme(SchemeKind::Compact);
        opts.segment_size = 4096;
        opts.batch_bytes = 8192;
        let mut kept = SplitBuffers::default();
        // Pipelined (two batches), then smaller streams in the same buffer:
        // after each one the plaintext is wiped, and the buffer is not
        // given up (the next object would allocate and fault it in again).
        let mut held = None;
        for len in [100_000usize, 50_000, 3, 0, 9000] {
            let content = vec![0xA5u8; len];
            shares(&mut kept, &content, &opts);
            assert!(kept.batch.iter().all(|&b| b == 0), "length {len}: wiped");
            assert_eq!(kept.batch.len(), 2 * 8192, "length {len}: kept");
            let at = kept.batch.as_ptr();
            assert_eq!(*held.get_or_insert(at), at, "length {len}: same memory");
        }
    }
}
