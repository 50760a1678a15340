//! Backends and batches shared by the engine's unit tests.

use super::contract::{Backend, DisperseJob, EngineError, SplitJob, UndisperseJob};
use super::cpu::{CpuBackend, TASK_BYTES};
use crate::kernel::Level;
use crate::keystream::ObjectKey;
use crate::sharing::{Matrix, SplitPlan};

/// A backend that flips one output byte (at 1234, where there is one),
/// to show the cross-check fires.
pub(crate) struct Faulty(pub(crate) CpuBackend);

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
    fn disperse(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        block: &[u8],
        shares: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        self.0.disperse(plan, key, offset, block, shares)?;
        if let Some(byte) = shares[2].get_mut(1234) {
            *byte ^= 1;
        }
        Ok(())
    }
    fn undisperse(
        &self,
        inverse: &Matrix,
        key: &ObjectKey,
        offset: u64,
        shares: &[&[u8]],
        block: &mut [u8],
    ) -> Result<(), EngineError> {
        self.0.undisperse(inverse, key, offset, shares, block)?;
        if let Some(byte) = block.get_mut(1234) {
            *byte ^= 1;
        }
        Ok(())
    }
}

/// Compact jobs for the decorators' tests: streams of 100, 5,000 and
/// 9,000 bytes (one, two and three 4 KiB blocks of t = 2), own keys, and
/// the payloads each gets dispersed on the CPU.
pub(crate) struct CompactCase {
    pub(crate) keys: Vec<ObjectKey>,
    pub(crate) streams: Vec<Vec<u8>>,
    pub(crate) payloads: Vec<Shares>,
}

/// Segment size of [`CompactCase`].
pub(crate) const COMPACT_SEGMENT: usize = 4096;

pub(crate) fn compact_case(plan: &SplitPlan) -> CompactCase {
    let t = plan.threshold().t();
    let streams: Vec<Vec<u8>> = [100usize, 5000, 9000]
        .iter()
        .map(|&len| (0..len).map(|i| (i * 7 + len) as u8).collect())
        .collect();
    let keys: Vec<ObjectKey> = (0..streams.len())
        .map(|i| ObjectKey::from_bytes([i as u8 + 90; 32]))
        .collect();
    let payloads = streams
        .iter()
        .zip(&keys)
        .map(|(s, k)| {
            let plen: usize = super::contract::compact_blocks(s.len(), t, COMPACT_SEGMENT)
                .map(|(_, _, _, stripe)| stripe)
                .sum();
            let mut out = vec![vec![0u8; plen]; plan.threshold().n()];
            let mut refs: Vec<&mut [u8]> = out.iter_mut().map(Vec::as_mut_slice).collect();
            super::compact::disperse_stream(
                &CpuBackend::new(Level::Portable).unwrap(),
                plan,
                k,
                COMPACT_SEGMENT,
                0,
                s,
                &mut refs,
            )
            .unwrap();
            out
        })
        .collect();
    CompactCase {
        keys,
        streams,
        payloads,
    }
}

/// `disperse_many` of the case on `backend`: each job's payloads, or the
/// error.
pub(crate) fn disperse_many_with(
    backend: &dyn Backend,
    plan: &SplitPlan,
    case: &CompactCase,
) -> Result<Vec<Shares>, EngineError> {
    let mut got: Vec<Shares> = case
        .payloads
        .iter()
        .map(|p| vec![vec![0xA5u8; p[0].len()]; p.len()])
        .collect();
    let mut jobs: Vec<DisperseJob<'_>> = got
        .iter_mut()
        .zip(case.streams.iter().zip(&case.keys))
        .map(|(out, (stream, key))| DisperseJob {
            key,
            offset: 0,
            stream,
            shares: out.iter_mut().map(Vec::as_mut_slice).collect(),
        })
        .collect();
    backend.disperse_many(plan, COMPACT_SEGMENT, &mut jobs)?;
    drop(jobs);
    Ok(got)
}

/// `undisperse_many` of the case's payloads at the first t points on
/// `backend`: each stream back, or the error.
pub(crate) fn undisperse_many_with(
    backend: &dyn Backend,
    plan: &SplitPlan,
    case: &CompactCase,
) -> Result<Vec<Vec<u8>>, EngineError> {
    let t = plan.threshold().t();
    let inverse = Matrix::vandermonde_inverse(&plan.xs()[..t]).unwrap();
    let mut back: Vec<Vec<u8>> = case.streams.iter().map(|s| vec![0x5Au8; s.len()]).collect();
    let mut jobs: Vec<UndisperseJob<'_>> = back
        .iter_mut()
        .zip(case.payloads.iter().zip(&case.keys))
        .map(|(out, (payloads, key))| UndisperseJob {
            key,
            offset: 0,
            shares: payloads[..t].iter().map(Vec::as_slice).collect(),
            stream: out.as_mut_slice(),
        })
        .collect();
    backend.undisperse_many(&inverse, COMPACT_SEGMENT, &mut jobs)?;
    drop(jobs);
    Ok(back)
}

/// Shares of one secret, one stream per x.
pub(crate) type Shares = Vec<Vec<u8>>;

/// Jobs of awkward lengths and offsets (0 and past a rayon task
/// included), each with its own key, and the shares each gets split
/// alone on the portable path.
pub(crate) struct BatchCase {
    pub(crate) keys: Vec<ObjectKey>,
    pub(crate) objects: Vec<(u64, Vec<u8>)>,
    pub(crate) alone: Vec<Shares>,
}

pub(crate) fn batch_case(plan: &SplitPlan) -> BatchCase {
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
pub(crate) fn split_many_with(
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

/// A backend that always fails, as a lost GPU does.
pub(crate) struct Lost;

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
