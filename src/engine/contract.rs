//! The backend contract: what every place where share arithmetic runs
//! (the CPU here, the GPU in `gpu`) computes, and how it reports failure.

use crate::kernel::LevelError;
use crate::keystream::{self, ObjectKey};
use crate::sharing::{Matrix, SplitPlan};
use zeroize::Zeroizing;

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

/// One object of [`Backend::disperse_many`]: its key, its shared stream
/// from byte `offset` (a block boundary), and its n payloads.
pub struct DisperseJob<'a> {
    pub key: &'a ObjectKey,
    pub offset: u64,
    pub stream: &'a [u8],
    /// n outputs of [`crate::share::format::compact_payload_len`] bytes.
    pub shares: Vec<&'a mut [u8]>,
}

/// One object of [`Backend::undisperse_many`]: the inverse of a
/// [`DisperseJob`], from the payloads of t shares.
pub struct UndisperseJob<'a> {
    pub key: &'a ObjectKey,
    pub offset: u64,
    /// t payloads, at the same place of their shares.
    pub shares: Vec<&'a [u8]>,
    pub stream: &'a mut [u8],
}

/// The blocks of a compact stream of `len` bytes in blocks of t x
/// `segment`: (byte of the stream, block length, byte of each payload,
/// stripe length) of each block.
pub fn compact_blocks(
    len: usize,
    t: usize,
    segment: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let block = t * segment;
    (0..len.div_ceil(block.max(1))).map(move |b| {
        let at = b * block;
        let block_len = (len - at).min(block);
        (at, block_len, b * segment, block_len.div_ceil(t))
    })
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

    /// The compact scheme's split of one block (docs/DESIGN.md section 8):
    /// `block`, at byte `offset` of the shared stream, is XORed with
    /// keystream 0 of `key`, zero-padded and cut into t stripes
    /// `c_k = cipher[k*s..(k+1)*s]` of `s = shares[i].len()` bytes, and
    /// `shares[i] = sum over k of x_i^k * c_k`, where s = ceil(block / t).
    ///
    /// By default the definition ([`disperse_via_apply`]): the
    /// keystream on the CPU, the dispersal on [`Backend::apply`].
    fn disperse(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        block: &[u8],
        shares: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        disperse_via_apply(self, plan, key, offset, block, shares)
    }

    /// The inverse of [`Backend::disperse`]: the block at `offset` from the
    /// payloads of t shares, `inverse` being
    /// [`Matrix::vandermonde_inverse`] of their points.
    fn undisperse(
        &self,
        inverse: &Matrix,
        key: &ObjectKey,
        offset: u64,
        shares: &[&[u8]],
        block: &mut [u8],
    ) -> Result<(), EngineError> {
        undisperse_via_apply(self, inverse, key, offset, shares, block)
    }

    /// The compact split of many whole streams (or runs of whole blocks),
    /// block after block of t x `segment` bytes through
    /// [`Backend::disperse`], so that a backend with a cost per call (a GPU
    /// dispatch) can pack many small objects together. After an error no
    /// output is to be used.
    fn disperse_many(
        &self,
        plan: &SplitPlan,
        segment: usize,
        jobs: &mut [DisperseJob<'_>],
    ) -> Result<(), EngineError> {
        disperse_many_by_block(self, plan, segment, jobs)
    }

    /// The inverse of [`Backend::disperse_many`], all jobs from the shares
    /// at the same points (`inverse` is [`Matrix::vandermonde_inverse`] of
    /// them), block after block through [`Backend::undisperse`].
    fn undisperse_many(
        &self,
        inverse: &Matrix,
        segment: usize,
        jobs: &mut [UndisperseJob<'_>],
    ) -> Result<(), EngineError> {
        undisperse_many_by_block(self, inverse, segment, jobs)
    }
}

/// [`Backend::disperse_many`] one block after the other through
/// [`Backend::disperse`].
pub fn disperse_many_by_block(
    backend: &(impl Backend + ?Sized),
    plan: &SplitPlan,
    segment: usize,
    jobs: &mut [DisperseJob<'_>],
) -> Result<(), EngineError> {
    let t = plan.threshold().t();
    for job in jobs.iter_mut() {
        for (at, len, out_at, stripe) in compact_blocks(job.stream.len(), t, segment) {
            let mut outs: Vec<&mut [u8]> = job
                .shares
                .iter_mut()
                .map(|s| &mut s[out_at..out_at + stripe])
                .collect();
            let block = &job.stream[at..at + len];
            backend.disperse(plan, job.key, job.offset + at as u64, block, &mut outs)?;
        }
    }
    Ok(())
}

/// [`Backend::undisperse_many`] one block after the other through
/// [`Backend::undisperse`].
pub fn undisperse_many_by_block(
    backend: &(impl Backend + ?Sized),
    inverse: &Matrix,
    segment: usize,
    jobs: &mut [UndisperseJob<'_>],
) -> Result<(), EngineError> {
    let t = inverse.rows();
    for job in jobs.iter_mut() {
        for (at, len, in_at, stripe) in compact_blocks(job.stream.len(), t, segment) {
            let ins: Vec<&[u8]> = job
                .shares
                .iter()
                .map(|s| &s[in_at..in_at + stripe])
                .collect();
            let block = &mut job.stream[at..at + len];
            backend.undisperse(inverse, job.key, job.offset + at as u64, &ins, block)?;
        }
    }
    Ok(())
}

/// Checks the shapes of a block and its stripes: t stripes of `stripe`
/// bytes hold the block: stripe = ceil(block / t).
pub(crate) fn check_block(t: usize, block_len: usize, stripe: usize) {
    assert!(
        block_len <= t * stripe && block_len.div_ceil(t) == stripe,
        "a block of {block_len} bytes is not t = {t} stripes of {stripe}"
    );
}

/// [`Backend::disperse`] by its definition: the ciphertext of the block,
/// zero-padded to t stripes, times the plan's Vandermonde rows on `backend`.
pub fn disperse_via_apply(
    backend: &(impl Backend + ?Sized),
    plan: &SplitPlan,
    key: &ObjectKey,
    offset: u64,
    block: &[u8],
    shares: &mut [&mut [u8]],
) -> Result<(), EngineError> {
    let t = plan.threshold().t();
    let stripe = shares.first().map_or(0, |s| s.len());
    check_block(t, block.len(), stripe);
    let mut cipher = Zeroizing::new(vec![0u8; t * stripe]);
    cipher[..block.len()].copy_from_slice(block);
    keystream::xor_cipher(key, offset, &mut cipher[..block.len()]);
    let stripes: Vec<&[u8]> = cipher.chunks_exact(stripe.max(1)).take(t).collect();
    if stripe == 0 {
        return Ok(());
    }
    backend.apply(plan.matrix(), &stripes, shares)
}

/// [`Backend::undisperse`] by its definition: the stripes from t shares
/// (`inverse` is [`Matrix::vandermonde_inverse`] of their points) on
/// `backend`, then decrypted, cut to the block's length.
pub fn undisperse_via_apply(
    backend: &(impl Backend + ?Sized),
    inverse: &Matrix,
    key: &ObjectKey,
    offset: u64,
    shares: &[&[u8]],
    block: &mut [u8],
) -> Result<(), EngineError> {
    let t = inverse.rows();
    let stripe = shares.first().map_or(0, |s| s.len());
    check_block(t, block.len(), stripe);
    if stripe == 0 {
        return Ok(());
    }
    let mut plain = Zeroizing::new(vec![0u8; t * stripe]);
    {
        let mut outs: Vec<&mut [u8]> = plain.chunks_exact_mut(stripe).collect();
        backend.apply(inverse, shares, &mut outs)?;
    }
    block.copy_from_slice(&plain[..block.len()]);
    keystream::xor_cipher(key, offset, block);
    Ok(())
}
