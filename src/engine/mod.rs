//! Split, combine and repair of in-memory chunks: the keystream feeds the
//! kernel, and rayon spreads chunks over the cores. No I/O happens here.
//!
//! A [`Backend`] computes exactly the same bytes whatever it runs on: the
//! CPU backend here, the GPU one in `gpu`. rayon only schedules the kernel;
//! it never changes the arithmetic, so the output does not depend on the
//! number of threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use crate::kernel::{Kernel, Level, LevelError};
use crate::keystream::{self, ObjectKey};
use crate::sharing::{self, Matrix, ParamError, Threshold};

/// Bytes per rayon task. Large enough to amortise scheduling, small enough
/// to balance a few MiB over many cores.
pub const TASK_BYTES: usize = 64 * 1024;

/// Bytes per kernel call inside a task: with t + n streams of this size the
/// working set stays in a 32-48 KiB L1 for (4, 8).
pub const SUB_CHUNK_BYTES: usize = 4 * 1024;

/// Streams at least this large are written with non-temporal stores (where
/// the kernel has them and the buffers are aligned): a split of a large
/// buffer sends n times the secret out to memory, and caching it would only
/// evict the inputs. The file pipeline's 2 MiB batches stay below it, since
/// their shares are hashed and written out right away, from cache.
pub const NONTEMPORAL_MIN_BYTES: usize = 4 << 20;

/// Why a backend could not compute.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Level(#[from] LevelError),
    #[error("GPU backend failed: {0}")]
    Gpu(String),
    #[error(
        "cross-check failed: {first} and {second} differ in {operation} at stream offset {offset} \
         (output row {row})"
    )]
    Mismatch {
        first: String,
        second: String,
        operation: &'static str,
        offset: u64,
        row: usize,
    },
    /// A failure in one object of [`Backend::split_many`].
    #[error("object {index} of a batch of {count}: {error}")]
    InBatch {
        index: usize,
        count: usize,
        error: Box<EngineError>,
    },
}

/// What a split computes: the polynomial degree and the share coordinates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SplitPlan {
    threshold: Threshold,
    xs: Vec<u8>,
    matrix: Matrix,
}

impl SplitPlan {
    pub fn new(threshold: Threshold, xs: Vec<u8>) -> Result<Self, ParamError> {
        if xs.len() != threshold.n() {
            return Err(ParamError::WrongXCount {
                given: xs.len(),
                n: threshold.n(),
            });
        }
        sharing::check_xs(&xs)?;
        let matrix = Matrix::vandermonde(&xs, threshold.t());
        Ok(Self {
            threshold,
            xs,
            matrix,
        })
    }

    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    pub fn xs(&self) -> &[u8] {
        &self.xs
    }

    /// n x t: row i is (1, x_i, x_i^2, ...).
    pub fn matrix(&self) -> &Matrix {
        &self.matrix
    }
}

/// One object of [`Backend::split_many`]: its own key, where its data sits
/// in its shared stream, and where its n shares go.
pub struct SplitJob<'a> {
    pub key: &'a ObjectKey,
    /// Byte offset of `secret` in the object's shared stream.
    pub offset: u64,
    pub secret: &'a [u8],
    /// n outputs, each as long as `secret`.
    pub shares: Vec<&'a mut [u8]>,
}

/// A place where share arithmetic runs.
pub trait Backend: Send + Sync {
    /// Says what runs, for logs and bench tables: "cpu (avx512-gfni)".
    fn describe(&self) -> String;

    /// Shares of `secret`, which sits at byte `offset` of the shared stream:
    /// `shares[i][k] = sum over j of x_i^j * a_j[offset + k]`, with `a_0` the
    /// secret and `a_j` keystream `j` of `key`.
    fn split(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        secret: &[u8],
        shares: &mut [&mut [u8]],
    ) -> Result<(), EngineError>;

    /// [`Backend::split`] of many independent objects with one plan, in one
    /// call, so that a backend with a cost per call (a GPU dispatch) can pack
    /// small objects together. Every job gets the shares it would get split
    /// alone. After an error no output is to be used.
    ///
    /// By default, one job after the other: the CPU gains nothing from
    /// packing, since each split already spreads over every core.
    fn split_many(&self, plan: &SplitPlan, jobs: &mut [SplitJob<'_>]) -> Result<(), EngineError> {
        for job in jobs.iter_mut() {
            self.split(plan, job.key, job.offset, job.secret, &mut job.shares)?;
        }
        Ok(())
    }

    /// `outputs[r] = sum over c of matrix[r][c] * inputs[c]`: combine (Lagrange
    /// weights at 0) and repair (weights at a lost x).
    fn apply(
        &self,
        matrix: &Matrix,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> Result<(), EngineError>;
}

/// The CPU backend: one SIMD level, all cores.
pub struct CpuBackend {
    level: Level,
    kernels: Mutex<HashMap<Matrix, Arc<Kernel>>>,
}

impl CpuBackend {
    /// The given level, if this CPU has it.
    pub fn new(level: Level) -> Result<Self, LevelError> {
        Ok(Self {
            level: level.checked()?,
            kernels: Mutex::new(HashMap::new()),
        })
    }

    /// The fastest level this CPU has.
    pub fn detect() -> Self {
        Self {
            level: Level::detect(),
            kernels: Mutex::new(HashMap::new()),
        }
    }

    pub fn level(&self) -> Level {
        self.level
    }

    fn kernel(&self, matrix: &Matrix) -> Result<Arc<Kernel>, LevelError> {
        let mut cache = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = cache.get(matrix) {
            return Ok(k.clone());
        }
        // Bounded: a long combine with shares going bad uses at most C(n, t)
        // matrices; clear rather than grow without limit.
        if cache.len() >= 64 {
            cache.clear();
        }
        let k = Arc::new(Kernel::new(self.level, matrix.clone())?);
        cache.insert(matrix.clone(), k.clone());
        Ok(k)
    }
}

/// Per-sub-chunk lists of stream slices: on the stack for up to 16 streams,
/// since a 4 KiB sub-chunk is too small to pay for a heap allocation.
type Streams<T> = smallvec::SmallVec<[T; 16]>;

/// Bytes per rayon task for a stream of `len`: at most [`TASK_BYTES`], but
/// small inputs (a 256x256 image) still give every thread a few tasks.
fn task_bytes(len: usize) -> usize {
    let per_thread = len.div_ceil(4 * rayon::current_num_threads().max(1));
    per_thread
        .next_multiple_of(SUB_CHUNK_BYTES)
        .clamp(SUB_CHUNK_BYTES, TASK_BYTES)
}

/// Runs `work(scratch, start, end, outs)` in parallel over the positions of
/// `len`-byte streams, one sub-chunk at a time: each rayon task owns the same
/// range of every output stream, and `outs` holds that sub-chunk of each.
/// `scratch` comes from `init`, once per batch of tasks on a thread.
fn for_each_sub_chunk<S, I, F>(outputs: &mut [&mut [u8]], len: usize, init: I, work: F)
where
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, usize, &mut [&mut [u8]]) + Sync + Send,
{
    let task = task_bytes(len);
    let tasks = len.div_ceil(task);
    let mut by_task: Vec<Vec<&mut [u8]>> = (0..tasks)
        .map(|_| Vec::with_capacity(outputs.len()))
        .collect();
    for out in outputs.iter_mut() {
        for (k, piece) in out.chunks_mut(task).enumerate() {
            by_task[k].push(piece);
        }
    }
    by_task
        .into_par_iter()
        .enumerate()
        .for_each_init(&init, |scratch, (k, mut pieces)| {
            let start = k * task;
            let end = (start + task).min(len);
            let mut sub = start;
            while sub < end {
                let sub_end = (sub + SUB_CHUNK_BYTES).min(end);
                let mut outs: Streams<&mut [u8]> = pieces
                    .iter_mut()
                    .map(|o| &mut o[sub - start..sub_end - start])
                    .collect();
                work(scratch, sub, sub_end, &mut outs);
                sub = sub_end;
            }
        });
}

/// Plain or streaming stores, by size (see [`NONTEMPORAL_MIN_BYTES`]).
fn run_kernel(kernel: &Kernel, len: usize, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
    if len >= NONTEMPORAL_MIN_BYTES {
        kernel.apply_nontemporal(inputs, outputs);
    } else {
        kernel.apply(inputs, outputs);
    }
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        format!("cpu ({})", self.level)
    }

    fn split(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        secret: &[u8],
        shares: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        let kernel = self.kernel(plan.matrix())?;
        let t = plan.threshold().t();
        assert_eq!(shares.len(), plan.threshold().n(), "one output per share");
        assert!(
            shares.iter().all(|s| s.len() == secret.len()),
            "shares as long as the secret"
        );
        // Scratch for the coefficient streams of one sub-chunk; wiped when
        // dropped, since with one share they would reveal the secret.
        let scratch = || zeroize::Zeroizing::new(vec![0u8; (t - 1) * SUB_CHUNK_BYTES]);
        for_each_sub_chunk(
            shares,
            secret.len(),
            scratch,
            |coeffs, sub, sub_end, outs| {
                let len = sub_end - sub;
                for (j, buf) in coeffs.chunks_exact_mut(SUB_CHUNK_BYTES).enumerate() {
                    keystream::fill(key, (j + 1) as u32, offset + sub as u64, &mut buf[..len]);
                }
                let mut inputs: Vec<&[u8]> = Vec::with_capacity(t);
                inputs.push(&secret[sub..sub_end]);
                inputs.extend(coeffs.chunks_exact(SUB_CHUNK_BYTES).map(|b| &b[..len]));
                run_kernel(&kernel, secret.len(), &inputs, outs);
            },
        );
        Ok(())
    }

    fn apply(
        &self,
        matrix: &Matrix,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        let kernel = self.kernel(matrix)?;
        let len = inputs.first().map_or(0, |i| i.len());
        assert!(
            outputs.iter().all(|o| o.len() == len),
            "outputs as long as inputs"
        );
        for_each_sub_chunk(
            outputs,
            len,
            || (),
            |_, sub, sub_end, outs| {
                let ins: Streams<&[u8]> = inputs.iter().map(|i| &i[sub..sub_end]).collect();
                run_kernel(&kernel, len, &ins, outs);
            },
        );
        Ok(())
    }
}

/// Runs every operation on two backends from the same inputs and key, and
/// fails loudly at the first byte where they differ; returns the first
/// backend's output. For `--cross-check`: CPU against GPU, or two SIMD levels.
pub struct CrossCheck {
    first: Box<dyn Backend>,
    second: Box<dyn Backend>,
}

impl CrossCheck {
    pub fn new(first: Box<dyn Backend>, second: Box<dyn Backend>) -> Self {
        Self { first, second }
    }

    fn compare(
        &self,
        operation: &'static str,
        offset: u64,
        ours: &[&mut [u8]],
        theirs: &[Vec<u8>],
    ) -> Result<(), EngineError> {
        for (row, (a, b)) in ours.iter().zip(theirs).enumerate() {
            if let Some(at) = a.iter().zip(b).position(|(x, y)| x != y) {
                return Err(EngineError::Mismatch {
                    first: self.first.describe(),
                    second: self.second.describe(),
                    operation,
                    offset: offset + at as u64,
                    row,
                });
            }
        }
        Ok(())
    }
}

impl Backend for CrossCheck {
    fn describe(&self) -> String {
        format!(
            "{} cross-checked with {}",
            self.first.describe(),
            self.second.describe()
        )
    }

    fn split(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        secret: &[u8],
        shares: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        self.first.split(plan, key, offset, secret, shares)?;
        let mut theirs: Vec<Vec<u8>> = shares.iter().map(|s| vec![0u8; s.len()]).collect();
        let mut refs: Vec<&mut [u8]> = theirs.iter_mut().map(Vec::as_mut_slice).collect();
        self.second.split(plan, key, offset, secret, &mut refs)?;
        self.compare("split", offset, shares, &theirs)
    }

    /// Both backends split the whole batch (each in its own way: the GPU
    /// packs it into shared dispatches), then every job is compared.
    fn split_many(&self, plan: &SplitPlan, jobs: &mut [SplitJob<'_>]) -> Result<(), EngineError> {
        self.first.split_many(plan, jobs)?;
        let mut theirs: Vec<Vec<Vec<u8>>> = jobs
            .iter()
            .map(|j| j.shares.iter().map(|s| vec![0u8; s.len()]).collect())
            .collect();
        {
            let mut second: Vec<SplitJob<'_>> = jobs
                .iter()
                .zip(theirs.iter_mut())
                .map(|(j, outs)| SplitJob {
                    key: j.key,
                    offset: j.offset,
                    secret: j.secret,
                    shares: outs.iter_mut().map(Vec::as_mut_slice).collect(),
                })
                .collect();
            self.second.split_many(plan, &mut second)?;
        }
        let count = jobs.len();
        for (index, (job, outs)) in jobs.iter().zip(&theirs).enumerate() {
            self.compare("split", job.offset, &job.shares, outs)
                .map_err(|error| EngineError::InBatch {
                    index,
                    count,
                    error: Box::new(error),
                })?;
        }
        Ok(())
    }

    fn apply(
        &self,
        matrix: &Matrix,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        self.first.apply(matrix, inputs, outputs)?;
        let mut theirs: Vec<Vec<u8>> = outputs.iter().map(|s| vec![0u8; s.len()]).collect();
        let mut refs: Vec<&mut [u8]> = theirs.iter_mut().map(Vec::as_mut_slice).collect();
        self.second.apply(matrix, inputs, &mut refs)?;
        self.compare("combine/repair", 0, outputs, &theirs)
    }
}

/// A backend that falls back to a second one when the first fails (a GPU
/// lost or out of memory in the middle of a job): the failed call is redone
/// on the fallback, and every later call goes there directly. Backends are
/// pure functions of their inputs, so the bytes are the same either way.
pub struct Fallback {
    primary: Box<dyn Backend>,
    fallback: Box<dyn Backend>,
    tripped: std::sync::atomic::AtomicBool,
    on_trip: Box<dyn Fn(&EngineError) + Send + Sync>,
}

impl Fallback {
    /// `on_trip` hears about the first failure (to warn the user).
    pub fn new(
        primary: Box<dyn Backend>,
        fallback: Box<dyn Backend>,
        on_trip: Box<dyn Fn(&EngineError) + Send + Sync>,
    ) -> Self {
        Self {
            primary,
            fallback,
            tripped: std::sync::atomic::AtomicBool::new(false),
            on_trip,
        }
    }

    fn run(
        &self,
        mut op: impl FnMut(&dyn Backend) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        use std::sync::atomic::Ordering;
        if !self.tripped.load(Ordering::Acquire) {
            match op(self.primary.as_ref()) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if !self.tripped.swap(true, Ordering::AcqRel) {
                        (self.on_trip)(&e);
                    }
                }
            }
        }
        op(self.fallback.as_ref())
    }
}

impl Backend for Fallback {
    fn describe(&self) -> String {
        format!(
            "{} (falling back to {})",
            self.primary.describe(),
            self.fallback.describe()
        )
    }

    fn split(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        secret: &[u8],
        shares: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        // Outputs are overwritten whole by whichever backend finishes.
        self.run(|b| b.split(plan, key, offset, secret, shares))
    }

    fn split_many(&self, plan: &SplitPlan, jobs: &mut [SplitJob<'_>]) -> Result<(), EngineError> {
        // As in `split`: the fallback overwrites every output whole.
        self.run(|b| b.split_many(plan, jobs))
    }

    fn apply(
        &self,
        matrix: &Matrix,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        self.run(|b| b.apply(matrix, inputs, outputs))
    }
}

/// Lagrange weights that rebuild the secret (x = 0) from shares at `xs`.
pub fn combine_matrix(xs: &[u8]) -> Result<Matrix, ParamError> {
    Matrix::lagrange(xs, &[0])
}

/// Lagrange weights that rebuild the shares at `lost` from shares at `xs`.
pub fn repair_matrix(xs: &[u8], lost: &[u8]) -> Result<Matrix, ParamError> {
    sharing::check_xs(lost)?;
    Matrix::lagrange(xs, lost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field;

    /// Split computed byte by byte from the definition, for cross-checks.
    fn split_reference(
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        secret: &[u8],
    ) -> Vec<Vec<u8>> {
        let t = plan.threshold().t();
        let coeffs: Vec<Vec<u8>> = (1..t)
            .map(|j| {
                let mut c = vec![0u8; secret.len()];
                keystream::fill(key, j as u32, offset, &mut c);
                c
            })
            .collect();
        plan.xs()
            .iter()
            .map(|&x| {
                (0..secret.len())
                    .map(|k| {
                        // Horner: a different evaluation order from the kernel.
                        let mut acc = 0u8;
                        for j in (0..t).rev() {
                            let a = if j == 0 { secret[k] } else { coeffs[j - 1][k] };
                            acc = field::mul(acc, x) ^ a;
                        }
                        acc
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn split_matches_definition_on_every_level() {
        let key = ObjectKey::from_bytes([3u8; 32]);
        for (t, n) in [(2, 2), (4, 8), (3, 5)] {
            let plan =
                SplitPlan::new(Threshold::new(t, n).unwrap(), sharing::default_xs(n)).unwrap();
            for len in [0usize, 1, 63, 64, 65, 4095, 4097, TASK_BYTES + 5] {
                let secret: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
                let expected = split_reference(&plan, &key, 1000, &secret);
                for level in Level::available() {
                    let backend = CpuBackend::new(level).unwrap();
                    let mut shares = vec![vec![0x5Au8; len]; n];
                    let mut refs: Vec<&mut [u8]> =
                        shares.iter_mut().map(Vec::as_mut_slice).collect();
                    backend
                        .split(&plan, &key, 1000, &secret, &mut refs)
                        .unwrap();
                    assert_eq!(shares, expected, "level {level}, ({t},{n}), length {len}");
                }
            }
        }
    }

    /// Past NONTEMPORAL_MIN_BYTES, into aligned buffers, the streaming-store
    /// path gives the same shares as the portable backend.
    #[test]
    fn large_aligned_split_matches_portable() {
        use crate::buffer::AlignedBuf;
        let key = ObjectKey::from_bytes([4u8; 32]);
        let plan = SplitPlan::new(Threshold::new(4, 8).unwrap(), sharing::default_xs(8)).unwrap();
        let len = NONTEMPORAL_MIN_BYTES + 4097;
        let secret: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
        let split_with = |level: Level| {
            let mut shares: Vec<AlignedBuf> = (0..8).map(|_| AlignedBuf::zeroed(len)).collect();
            let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(|b| &mut b[..]).collect();
            CpuBackend::new(level)
                .unwrap()
                .split(&plan, &key, 64, &secret, &mut refs)
                .unwrap();
            shares
        };
        let expected = split_with(Level::Portable);
        for level in Level::available() {
            let got = split_with(level);
            for i in 0..8 {
                assert!(got[i][..] == expected[i][..], "level {level}, share {i}");
            }
        }
    }

    /// A backend that flips one output byte (at 1234, where there is one),
    /// to show the cross-check fires.
    struct Faulty(CpuBackend);

    impl Backend for Faulty {
        fn describe(&self) -> String {
            "faulty".into()
        }
        fn split(
            &self,
            plan: &SplitPlan,
            key: &ObjectKey,
            offset: u64,
            secret: &[u8],
            shares: &mut [&mut [u8]],
        ) -> Result<(), EngineError> {
            self.0.split(plan, key, offset, secret, shares)?;
            if let Some(byte) = shares[2].get_mut(1234) {
                *byte ^= 1;
            }
            Ok(())
        }
        fn apply(
            &self,
            matrix: &Matrix,
            inputs: &[&[u8]],
            outputs: &mut [&mut [u8]],
        ) -> Result<(), EngineError> {
            self.0.apply(matrix, inputs, outputs)
        }
    }

    #[test]
    fn cross_check_names_the_first_difference() {
        let key = ObjectKey::from_bytes([6u8; 32]);
        let plan = SplitPlan::new(Threshold::new(2, 3).unwrap(), sharing::default_xs(3)).unwrap();
        let secret = vec![9u8; 5000];
        let mut shares = vec![vec![0u8; 5000]; 3];
        let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
        let agree = CrossCheck::new(
            Box::new(CpuBackend::new(Level::Portable).unwrap()),
            Box::new(CpuBackend::detect()),
        );
        agree.split(&plan, &key, 64, &secret, &mut refs).unwrap();
        let disagree = CrossCheck::new(
            Box::new(CpuBackend::detect()),
            Box::new(Faulty(CpuBackend::detect())),
        );
        let err = disagree
            .split(&plan, &key, 64, &secret, &mut refs)
            .unwrap_err();
        assert!(
            matches!(
                err,
                EngineError::Mismatch {
                    offset: 1298,
                    row: 2,
                    operation: "split",
                    ..
                }
            ),
            "{err}"
        );
    }

    /// Shares of one secret, one stream per x.
    type Shares = Vec<Vec<u8>>;

    /// Jobs of awkward lengths and offsets (0 and past a rayon task
    /// included), each with its own key, and the shares each gets split
    /// alone on the portable path.
    struct BatchCase {
        keys: Vec<ObjectKey>,
        objects: Vec<(u64, Vec<u8>)>,
        alone: Vec<Shares>,
    }

    fn batch_case(plan: &SplitPlan) -> BatchCase {
        let n = plan.threshold().n();
        let objects: Vec<(u64, Vec<u8>)> = [(0u64, 100usize), (64, 5000), (7, 0), (1 << 33, 3000)]
            .into_iter()
            .chain([(3, TASK_BYTES + 1)])
            .map(|(offset, len)| {
                let secret = (0..len).map(|i| (i * 29 + len) as u8).collect();
                (offset, secret)
            })
            .collect();
        let keys: Vec<ObjectKey> = (0..objects.len())
            .map(|i| ObjectKey::from_bytes([i as u8 + 40; 32]))
            .collect();
        let alone = objects
            .iter()
            .zip(&keys)
            .map(|((offset, secret), key)| {
                let mut shares = vec![vec![0u8; secret.len()]; n];
                let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
                CpuBackend::new(Level::Portable)
                    .unwrap()
                    .split(plan, key, *offset, secret, &mut refs)
                    .unwrap();
                shares
            })
            .collect();
        BatchCase {
            keys,
            objects,
            alone,
        }
    }

    /// `split_many` on `backend`: each job's shares, or the error.
    fn split_many_with(
        backend: &dyn Backend,
        plan: &SplitPlan,
        keys: &[ObjectKey],
        objects: &[(u64, Vec<u8>)],
    ) -> Result<Vec<Shares>, EngineError> {
        let n = plan.threshold().n();
        // A pattern, so that bytes left unwritten show up.
        let mut got: Vec<Shares> = objects
            .iter()
            .map(|(_, s)| vec![vec![0xA5u8; s.len()]; n])
            .collect();
        let mut jobs: Vec<SplitJob<'_>> = got
            .iter_mut()
            .zip(objects.iter().zip(keys))
            .map(|(shares, ((offset, secret), key))| SplitJob {
                key,
                offset: *offset,
                secret,
                shares: shares.iter_mut().map(Vec::as_mut_slice).collect(),
            })
            .collect();
        backend.split_many(plan, &mut jobs)?;
        drop(jobs);
        Ok(got)
    }

    #[test]
    fn split_many_gives_each_job_its_own_shares() {
        let plan = SplitPlan::new(Threshold::new(3, 5).unwrap(), sharing::default_xs(5)).unwrap();
        let BatchCase {
            keys,
            objects,
            alone,
        } = batch_case(&plan);
        for level in Level::available() {
            let got = split_many_with(&CpuBackend::new(level).unwrap(), &plan, &keys, &objects);
            assert!(got.unwrap() == alone, "level {level}");
        }
    }

    #[test]
    fn cross_checked_split_many_names_the_object_that_differs() {
        let plan = SplitPlan::new(Threshold::new(2, 3).unwrap(), sharing::default_xs(3)).unwrap();
        let BatchCase {
            keys,
            objects,
            alone,
        } = batch_case(&plan);
        let agree = CrossCheck::new(
            Box::new(CpuBackend::new(Level::Portable).unwrap()),
            Box::new(CpuBackend::detect()),
        );
        assert!(split_many_with(&agree, &plan, &keys, &objects).unwrap() == alone);
        // Faulty flips byte 1234 of share 2 of every job that long: object 1
        // (offset 64) is the first.
        let disagree = CrossCheck::new(
            Box::new(CpuBackend::detect()),
            Box::new(Faulty(CpuBackend::detect())),
        );
        let err = split_many_with(&disagree, &plan, &keys, &objects).unwrap_err();
        let EngineError::InBatch {
            index: 1,
            count: 5,
            error,
        } = &err
        else {
            panic!("expected object 1 of 5 named: {err}");
        };
        assert!(
            matches!(
                **error,
                EngineError::Mismatch {
                    offset: 1298,
                    row: 2,
                    operation: "split",
                    ..
                }
            ),
            "{err}"
        );
    }

    /// A backend that always fails, as a lost GPU does.
    struct Lost;

    impl Backend for Lost {
        fn describe(&self) -> String {
            "lost".into()
        }
        fn split(
            &self,
            _: &SplitPlan,
            _: &ObjectKey,
            _: u64,
            _: &[u8],
            shares: &mut [&mut [u8]],
        ) -> Result<(), EngineError> {
            shares[0][0] ^= 0xFF; // a partial write before the failure
            Err(EngineError::Gpu("device lost".into()))
        }
        fn apply(&self, _: &Matrix, _: &[&[u8]], _: &mut [&mut [u8]]) -> Result<(), EngineError> {
            Err(EngineError::Gpu("device lost".into()))
        }
    }

    #[test]
    fn fallback_redoes_the_failed_work_with_identical_bytes() {
        let key = ObjectKey::from_bytes([8u8; 32]);
        let plan = SplitPlan::new(Threshold::new(3, 4).unwrap(), sharing::default_xs(4)).unwrap();
        let secret: Vec<u8> = (0..70_000).map(|i| (i % 251) as u8).collect();
        let mut expected = vec![vec![0u8; secret.len()]; 4];
        let mut refs: Vec<&mut [u8]> = expected.iter_mut().map(Vec::as_mut_slice).collect();
        CpuBackend::detect()
            .split(&plan, &key, 0, &secret, &mut refs)
            .unwrap();

        let trips = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = trips.clone();
        let fb = Fallback::new(
            Box::new(Lost),
            Box::new(CpuBackend::detect()),
            Box::new(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }),
        );
        for _ in 0..3 {
            let mut got = vec![vec![0u8; secret.len()]; 4];
            let mut refs: Vec<&mut [u8]> = got.iter_mut().map(Vec::as_mut_slice).collect();
            fb.split(&plan, &key, 0, &secret, &mut refs).unwrap();
            assert_eq!(got, expected);
        }
        assert_eq!(
            trips.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "warned once"
        );
    }

    #[test]
    fn fallback_redoes_a_failed_batch_with_identical_bytes() {
        let plan = SplitPlan::new(Threshold::new(3, 4).unwrap(), sharing::default_xs(4)).unwrap();
        let BatchCase {
            keys,
            objects,
            alone,
        } = batch_case(&plan);
        let trips = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = trips.clone();
        let fb = Fallback::new(
            Box::new(Lost),
            Box::new(CpuBackend::detect()),
            Box::new(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }),
        );
        for _ in 0..2 {
            assert!(split_many_with(&fb, &plan, &keys, &objects).unwrap() == alone);
        }
        assert_eq!(
            trips.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "warned once"
        );
    }

    #[test]
    fn combine_and_repair_round_trip() {
        let key = ObjectKey::from_bytes([5u8; 32]);
        let plan = SplitPlan::new(Threshold::new(4, 8).unwrap(), sharing::default_xs(8)).unwrap();
        let secret: Vec<u8> = (0..200_000).map(|i| (i % 256) as u8).collect();
        let backend = CpuBackend::detect();
        let mut shares = vec![vec![0u8; secret.len()]; 8];
        let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
        backend.split(&plan, &key, 0, &secret, &mut refs).unwrap();

        let pick = [6usize, 1, 3, 4];
        let xs: Vec<u8> = pick.iter().map(|&i| plan.xs()[i]).collect();
        let inputs: Vec<&[u8]> = pick.iter().map(|&i| shares[i].as_slice()).collect();
        let mut out = vec![0u8; secret.len()];
        backend
            .apply(&combine_matrix(&xs).unwrap(), &inputs, &mut [&mut out])
            .unwrap();
        assert_eq!(out, secret);

        let mut rebuilt = vec![0u8; secret.len()];
        backend
            .apply(
                &repair_matrix(&xs, &[3]).unwrap(),
                &inputs,
                &mut [&mut rebuilt],
            )
            .unwrap();
        assert_eq!(rebuilt, shares[2], "share x = 3 rebuilt exactly");
    }
}
