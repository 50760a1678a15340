//! Staging: a group's sources are read, checked against the catalog and
//! split into share files in a staging directory; small objects many at a
//! time in one engine call, larger ones streaming. Nothing reaches a store
//! here.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::archive::catalog::{Catalog, ObjectRow, Placement};
use crate::archive::error::{ArchiveError, At, Result, store_err};
use crate::archive::migrate::options::MigrateReport;
use crate::archive::open::Archive;
use crate::archive::source::folder::Signature;
use crate::archive::source::join_bytes;
use crate::archive::util::{decode_hex32, parallel_map};
use crate::buffer::read_up_to;
use crate::engine::Backend;
use crate::share::envelope::{self, ObjectMeta};
use crate::share::writer::ShareWriter;
use crate::stream::split::{self, SplitOptions, SplitSecrets};

/// Test hook (documented in tests/archive/main.rs): with UMBRA_TEST_PAUSE_AT
/// set to `POINT:K`, the K-th object of a migrate run stops at POINT
/// (`split`, `put` or `written`, each reached by a whole group at once; or
/// the K-th group of a restore at `restored`, the K-th object of a verify at
/// `verified`; `scanned:0` a migrate once its scan has recorded every
/// new version, before it records what is gone; `forgotten:0` a forget or erase once the catalog has let the
/// versions go, before any share is deleted), creates the file named by UMBRA_TEST_PAUSE_FILE and waits
/// until that file is removed. Tests kill the process there, or change the
/// stores and let it go on, or look at the progress bar.
pub(crate) fn pause_point(point: &str, k: usize) {
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
pub(crate) struct Hashing<R> {
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

/// One object version on its way to the stores.
pub(crate) struct Job<'a> {
    pub(crate) row: &'a ObjectRow,
    /// The run's number of this object, from 1.
    pub(crate) k: usize,
    pub(crate) secrets: SplitSecrets,
    /// Its n shares' stores and names. A new file's names wait for its
    /// BLAKE3, taken as it is split ([`Archive::name_job`]): empty until
    /// then.
    pub(crate) placements: Vec<Placement>,
    /// The BLAKE3 of the content split: the catalog's, or for a new file
    /// the one taken while it was read.
    pub(crate) content: Option<[u8; 32]>,
}

/// A group split into the staging directory, on its way to the stores.
pub(crate) struct Staged<'a> {
    pub(crate) group: &'a [ObjectRow],
    /// The run's number of the group's first object, from 1.
    pub(crate) first: usize,
    pub(crate) jobs: Vec<Job<'a>>,
    /// Each job's staged share files, in placement order.
    pub(crate) files: Vec<Result<Vec<PathBuf>>>,
    /// Objects of the group that failed before their split, by position.
    pub(crate) failures: BTreeMap<usize, ArchiveError>,
    pub(crate) _dir: tempfile::TempDir,
}

impl Staged<'_> {
    pub(crate) fn bytes(&self) -> u64 {
        self.group.iter().map(|r| r.size).sum()
    }
}

/// An object's share files in staging, in placement order, and their
/// writers.
pub(crate) type StagedShares = (Vec<PathBuf>, Vec<ShareWriter<File>>);

/// An object's staged share files, in placement order, and the BLAKE3 of
/// the content they hold.
pub(crate) type SplitFiles = (Vec<PathBuf>, [u8; 32]);

/// Bytes of a source read to tell its content type.
pub(crate) const HEAD_BYTES: usize = 132;

/// Objects whose whole shared stream (envelope prefix and content) is at
/// most this long are read whole and split in batches (see
/// [`Archive::split_all`]); larger ones stream.
pub(crate) const SMALL_OBJECT_BYTES: usize = 4 << 20;

/// Plaintext of one batch of small objects: one engine call.
pub(crate) const SMALL_BATCH_BYTES: usize = 8 << 20;

/// A batch's plaintext and its n shares together stay within this: with
/// more shares, batches (and what counts as small) shrink.
pub(crate) const SMALL_BATCH_MEMORY: usize = 72 << 20;

/// Share files a batch holds open at once (n per object): well below the
/// usual limit of 1024 open files.
pub(crate) const SMALL_BATCH_FILES: usize = 256;

/// The limits of small-object batches for n shares.
pub(crate) struct SmallLimits {
    /// The longest stream that counts as small.
    object_bytes: usize,
    /// Plaintext bytes per batch.
    batch_bytes: usize,
    /// Objects per batch.
    batch_objects: usize,
}

impl SmallLimits {
    pub(crate) fn new(n: usize) -> Self {
        let batch_bytes = SMALL_BATCH_BYTES.min(SMALL_BATCH_MEMORY / (n + 1));
        Self {
            object_bytes: SMALL_OBJECT_BYTES.min(batch_bytes),
            batch_bytes,
            batch_objects: (SMALL_BATCH_FILES / n).max(1),
        }
    }

    /// Consecutive runs of `objects` (of `len` bytes each) within the
    /// limits; one longer than `batch_bytes` goes alone.
    pub(crate) fn batches<'s, T>(
        &self,
        objects: &'s [T],
        len: impl Fn(&T) -> usize,
    ) -> Vec<&'s [T]> {
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
pub(crate) struct Opened {
    pub(crate) path: PathBuf,
    /// The group's staging directory, where its shares are `K-share-X`.
    pub(crate) dir: PathBuf,
    /// The object's number in the run (K).
    pub(crate) k: usize,
    pub(crate) meta: ObjectMeta,
    /// The envelope prefix; holds the check key.
    pub(crate) prefix: Zeroizing<Vec<u8>>,
}

/// The error for a source whose bytes are not those hashed at the scan.
pub(crate) fn changed_since_scan(path: &Path) -> crate::Error {
    crate::Error::InputChanged {
        path: path.to_path_buf(),
        detail: "its BLAKE3 differs from the one recorded at the scan".into(),
    }
}

/// Checks what was read of a source against the catalog: its BLAKE3 where
/// the scan took one; for a new file, which the scan did not read, that
/// the open file is still the one the scan saw (size, modification and
/// change times, inode: a write, even one that set the times back, moves
/// the change time). The content's BLAKE3 either way.
pub(crate) fn check_read(
    row: &ObjectRow,
    path: &Path,
    file: &File,
    content: blake3::Hash,
) -> Result<[u8; 32]> {
    if row.blake3.is_empty() {
        let now = Signature::of(&file.metadata().at(path)?);
        let scanned = Signature {
            size: row.size,
            mtime_ns: row.change_sig,
            ctime_ns: row.ctime_ns,
            inode: row.inode,
        };
        if now != scanned {
            return Err(crate::Error::InputChanged {
                path: path.to_path_buf(),
                detail: "it changed since the scan (its size, times or inode differ)".into(),
            }
            .into());
        }
    } else if content.to_hex().as_str() != row.blake3 {
        return Err(changed_since_scan(path).into());
    }
    Ok(*content.as_bytes())
}

/// Fills `stream` with the object's envelope prefix and its whole content,
/// and checks that the content is the version the catalog recorded: its
/// length (no more, no less) and, by [`check_read`], its BLAKE3 or
/// signature, as [`Hashing`] does for a streamed one, and its first bytes
/// (the content type in the prefix). The content's BLAKE3.
pub(crate) fn read_whole(stream: &mut [u8], row: &ObjectRow, opened: &Opened) -> Result<[u8; 32]> {
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
    if envelope::sniff_content_type(head) != opened.meta.content_type {
        return Err(crate::Error::InputChanged {
            path: path.to_path_buf(),
            detail: "its first bytes changed while it was read".into(),
        }
        .into());
    }
    check_read(row, path, &file, blake3::hash(content))
}

/// The split's working memory, kept for the whole run: the streaming
/// workers' buffers, the largest of which also takes the shares of
/// small-object batches, and the plaintext of those batches. Both are sized
/// for a full batch when first needed: about 72 MiB for (4, 8).
#[derive(Default)]
pub(crate) struct SplitMemory {
    pool: std::sync::Mutex<Vec<split::SplitBuffers>>,
    /// Wiped after each batch, and on drop.
    plaintext: std::sync::Mutex<Zeroizing<Vec<u8>>>,
}

impl SplitMemory {
    pub(crate) fn lease(&self) -> Lease<'_> {
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
    pub(crate) fn lease_largest(&self) -> Lease<'_> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let largest = (0..pool.len()).max_by_key(|&i| pool[i].share_capacity());
        let bufs = largest.map(|i| pool.swap_remove(i)).unwrap_or_default();
        Lease(&self.pool, bufs)
    }
}

/// Buffers taken from [`SplitMemory`]'s pool, given back on drop.
pub(crate) struct Lease<'p>(
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

impl Archive {
    /// Deletes the shares an unfinished attempt may have left, then the
    /// pending version itself.
    pub(crate) fn forget(&self, cat: &mut Catalog, row: &ObjectRow) -> Result<()> {
        for p in cat.placements(row.id)? {
            self.store(&p.store)?
                .delete(&p.name)
                .map_err(store_err(&p.store, &p.name))?;
        }
        cat.forget_pending(row.id)
    }

    /// Steps 1-2 of a group: forgets versions whose source vanished, deletes
    /// earlier attempts' shares, draws new secrets, and splits into a fresh
    /// staging directory. Nothing reaches a store here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn stage_group<'a>(
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
            let path = join_bytes(source_root, &row.path);
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Deleted from the source before it was ever written.
                    self.forget(cat, row)?;
                    report.vanished += 1;
                    report.vanished_objects.push(row.source_ref.clone());
                    continue;
                }
                // Anything else (no permission, a broken disk) is a failure
                // of this object, never a reason to forget it.
                Err(e) => {
                    failures.insert(i, ArchiveError::Io { path, error: e });
                    continue;
                }
                Ok(_) => {}
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
        let split = self.split_all(memory, backend, source_root, &jobs, dir.path());
        // A new file's shares are named now that its BLAKE3 is known (a
        // known one was checked against the split's as it was read).
        let files = jobs
            .iter_mut()
            .zip(split)
            .map(|(job, r)| {
                let (files, content) = r?;
                if job.content.is_none() {
                    self.name_job(job, content)?;
                }
                Ok(files)
            })
            .collect();
        Ok(Staged {
            group,
            first,
            jobs,
            files,
            failures,
            _dir: dir,
        })
    }

    /// Deletes the shares of an earlier, unfinished attempt and draws the
    /// new split's secrets and names.
    pub(crate) fn prepare<'a>(
        &self,
        cat: &Catalog,
        row: &'a ObjectRow,
        k: usize,
    ) -> Result<Job<'a>> {
        if row.split_id.is_some() {
            for p in cat.placements(row.id)? {
                self.store(&p.store)?
                    .delete(&p.name)
                    .map_err(store_err(&p.store, &p.name))?;
            }
        }
        self.fresh_job(row, k)
    }

    /// A new split of `row` as umbra.toml says: fresh secrets, and its
    /// placements, named if the catalog has its BLAKE3 (nothing is deleted
    /// or written).
    pub(crate) fn fresh_job<'a>(&self, row: &'a ObjectRow, k: usize) -> Result<Job<'a>> {
        let mut job = Job {
            row,
            k,
            secrets: SplitSecrets::from_os()?,
            placements: Vec::new(),
            content: None,
        };
        if !row.blake3.is_empty() {
            self.name_job(&mut job, decode_hex32(&row.blake3)?)?;
        }
        Ok(job)
    }

    /// Names the job's shares from its content's BLAKE3 and its split id.
    pub(crate) fn name_job(&self, job: &mut Job<'_>, content: [u8; 32]) -> Result<()> {
        let site_key = self.site_key()?;
        job.placements = self
            .layout
            .placement
            .iter()
            .map(|&(x, si)| Placement {
                x,
                store: self.layout.store_names[si].clone(),
                name: site_key.object_name(&content, &job.secrets.split_id, x),
                written: false,
            })
            .collect();
        job.content = Some(content);
        Ok(())
    }

    /// Splits every job's source into `stage/K/`. Small objects (whole
    /// stream at most [`SMALL_OBJECT_BYTES`]) are read whole and split in
    /// batches, many per engine call ([`Backend::split_many`]: on a GPU one
    /// dispatch for dozens of small DICOM files, not one each); larger ones
    /// stream, a few at a time (each split also runs in parallel inside).
    /// The two kinds go one after the other, so that memory stays bounded by
    /// the larger of the two, and buffers come from and go back to `memory`.
    pub(crate) fn split_all(
        &self,
        memory: &SplitMemory,
        backend: &dyn Backend,
        source_root: &Path,
        jobs: &[Job<'_>],
        stage: &Path,
    ) -> Vec<Result<SplitFiles>> {
        let opts = match self.plan() {
            Ok(plan) => SplitOptions::new(plan).with_scheme(self.layout.scheme),
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
        let mut results: Vec<Option<Result<SplitFiles>>> = jobs.iter().map(|_| None).collect();
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

    /// Opens the job's source, checks its size against the catalog and
    /// reads its first bytes: what the envelope prefix needs, and so the
    /// length of its shared stream. Its shares go into the group's staging
    /// directory `stage` (no directory per object: on ext4 each is another
    /// inode to allocate and free).
    pub(crate) fn open_source(
        &self,
        source_root: &Path,
        job: &Job<'_>,
        stage: &Path,
    ) -> Result<Opened> {
        let path = join_bytes(source_root, &job.row.path);
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
            name: job.row.path.clone(),
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
            dir: stage.to_path_buf(),
            k: job.k,
            meta,
            prefix,
        })
    }

    /// The n share files of an object in its staging directory, in
    /// placement order, each behind a writer with its header.
    pub(crate) fn share_writers(
        &self,
        opened: &Opened,
        secrets: &SplitSecrets,
        opts: &SplitOptions,
    ) -> Result<StagedShares> {
        let mut files = Vec::new();
        let mut writers = Vec::new();
        for &(x, _) in &self.layout.placement {
            let p = opened.dir.join(format!("{}-share-{x:03}", opened.k));
            // Patient data: 0600 here, and so in every local store (a
            // hard link) and in what a cloud store is sent.
            let f = std::os::unix::fs::OpenOptionsExt::mode(
                std::fs::OpenOptions::new().write(true).create_new(true),
                0o600,
            )
            .open(&p)
            .at(&p)?;
            let header = opts.share_header(x, opened.meta.stream_len(), secrets);
            writers.push(ShareWriter::new(f, header).at(&p)?);
            files.push(p);
        }
        Ok((files, writers))
    }

    /// Streams a large source into its share files; checks that what was
    /// read is the version the catalog recorded.
    pub(crate) fn split_streaming(
        &self,
        bufs: &mut split::SplitBuffers,
        backend: &dyn Backend,
        opts: &SplitOptions,
        job: &Job<'_>,
        opened: &Opened,
    ) -> Result<SplitFiles> {
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
        let content = check_read(row, path, &reader.inner, reader.hasher.finalize())?;
        for (w, p) in writers.into_iter().zip(&files) {
            crate::output::start_writeback(w.finish(tag).at(p)?);
        }
        Ok((files, content))
    }

    /// Reads a batch of small sources whole into `plaintext` (in parallel),
    /// checks each against the catalog, splits all that read well with one
    /// engine call and writes their share files: the same bytes as
    /// [`Archive::split_streaming`] would write. Each object's result, in
    /// order; the plaintext is wiped before this returns.
    pub(crate) fn split_small_batch(
        &self,
        plaintext: &mut Zeroizing<Vec<u8>>,
        bufs: &mut split::SplitBuffers,
        backend: &dyn Backend,
        opts: &SplitOptions,
        batch: &[(usize, &Job<'_>, Opened)],
    ) -> Vec<Result<SplitFiles>> {
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
        let prepared: Vec<Result<(StagedShares, [u8; 32])>> = regions
            .into_par_iter()
            .zip(batch.par_iter())
            .map(|(region, (_, job, opened))| {
                let content = read_whole(region, job.row, opened)?;
                Ok((self.share_writers(opened, &job.secrets, opts)?, content))
            })
            .collect();

        let mut results: Vec<Option<Result<SplitFiles>>> = batch.iter().map(|_| None).collect();
        // Objects that read well: their place in the batch, share files and
        // writers, and content's BLAKE3.
        let mut ready: Vec<(usize, Vec<PathBuf>, Vec<ShareWriter<File>>)> = Vec::new();
        let mut contents: Vec<[u8; 32]> = Vec::new();
        for (b, p) in prepared.into_iter().enumerate() {
            match p {
                Ok(((files, writers), content)) => {
                    ready.push((b, files, writers));
                    contents.push(content);
                }
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
                let finished: Vec<Result<SplitFiles>> = ready
                    .into_par_iter()
                    .zip(tags)
                    .zip(contents)
                    .map(|(((_, files, writers), tag), content)| {
                        let tag = tag.map_err(|(s, error)| ArchiveError::Io {
                            path: files[s].clone(),
                            error,
                        })?;
                        for (w, p) in writers.into_iter().zip(&files) {
                            crate::output::start_writeback(w.finish(tag).at(p)?);
                        }
                        Ok((files, content))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::migrate::tests::rows;

    /// A source read whole must be the recorded version: every byte, no
    /// more, no less; the error names the file.
    #[test]
    pub(crate) fn read_whole_refuses_a_source_that_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scan.dcm");
        let recorded: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let mut row = rows(&[recorded.len() as u64]).remove(0);
        row.blake3 = blake3::hash(&recorded).to_hex().to_string();
        let meta = ObjectMeta {
            name: b"scan.dcm".to_vec(),
            content_type: envelope::sniff_content_type(&recorded).to_string(),
            content_len: row.size,
        };
        let opened = Opened {
            path: path.clone(),
            dir: dir.path().to_path_buf(),
            k: 0,
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
    pub(crate) fn small_batches_cut_by_bytes_objects_and_memory() {
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
