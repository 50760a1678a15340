//! Falling back from one backend to another (a GPU to the CPU) in the middle
//! of a job, with the same bytes out.

use std::sync::atomic::{AtomicBool, Ordering};

use super::contract::{Backend, DisperseJob, EngineError, SplitJob, UndisperseJob};
use crate::keystream::ObjectKey;
use crate::sharing::{Matrix, SplitPlan};

/// A backend that falls back to a second one when the first fails (a GPU
/// lost or out of memory in the middle of a job): the failed call is redone
/// on the fallback, and every later call goes there directly. Backends are
/// pure functions of their inputs, so the bytes are the same either way.
pub struct Fallback {
    primary: Box<dyn Backend>,
    fallback: Box<dyn Backend>,
    tripped: AtomicBool,
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
            tripped: AtomicBool::new(false),
            on_trip,
        }
    }

    fn run(
        &self,
        mut op: impl FnMut(&dyn Backend) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
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

    fn disperse(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        block: &[u8],
        shares: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        self.run(|b| b.disperse(plan, key, offset, block, shares))
    }

    fn undisperse(
        &self,
        inverse: &Matrix,
        key: &ObjectKey,
        offset: u64,
        shares: &[&[u8]],
        block: &mut [u8],
    ) -> Result<(), EngineError> {
        self.run(|b| b.undisperse(inverse, key, offset, shares, block))
    }

    fn disperse_many(
        &self,
        plan: &SplitPlan,
        segment: usize,
        jobs: &mut [DisperseJob<'_>],
    ) -> Result<(), EngineError> {
        self.run(|b| b.disperse_many(plan, segment, jobs))
    }

    fn undisperse_many(
        &self,
        inverse: &Matrix,
        segment: usize,
        jobs: &mut [UndisperseJob<'_>],
    ) -> Result<(), EngineError> {
        self.run(|b| b.undisperse_many(inverse, segment, jobs))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::engine::CpuBackend;
    use crate::engine::test_support::{
        BatchCase, Lost, batch_case, compact_case, disperse_many_with, split_many_with,
        undisperse_many_with,
    };
    use crate::sharing::{self, Threshold};

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

        let trips = Arc::new(AtomicUsize::new(0));
        let counter = trips.clone();
        let fb = Fallback::new(
            Box::new(Lost),
            Box::new(CpuBackend::detect()),
            Box::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        );
        for _ in 0..3 {
            let mut got = vec![vec![0u8; secret.len()]; 4];
            let mut refs: Vec<&mut [u8]> = got.iter_mut().map(Vec::as_mut_slice).collect();
            fb.split(&plan, &key, 0, &secret, &mut refs).unwrap();
            assert_eq!(got, expected);
        }
        assert_eq!(trips.load(Ordering::SeqCst), 1, "warned once");
    }

    #[test]
    fn fallback_redoes_a_failed_batch_with_identical_bytes() {
        let plan = SplitPlan::new(Threshold::new(3, 4).unwrap(), sharing::default_xs(4)).unwrap();
        let BatchCase {
            keys,
            objects,
            alone,
        } = batch_case(&plan);
        let trips = Arc::new(AtomicUsize::new(0));
        let counter = trips.clone();
        let fb = Fallback::new(
            Box::new(Lost),
            Box::new(CpuBackend::detect()),
            Box::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        );
        for _ in 0..2 {
            assert!(split_many_with(&fb, &plan, &keys, &objects).unwrap() == alone);
        }
        assert_eq!(trips.load(Ordering::SeqCst), 1, "warned once");
    }

    /// The compact scheme's batches fall back too (Lost fails them through
    /// its apply), with the bytes the CPU gives.
    #[test]
    fn fallback_redoes_failed_compact_batches_with_identical_bytes() {
        let plan = SplitPlan::new(Threshold::new(2, 3).unwrap(), sharing::default_xs(3)).unwrap();
        let case = compact_case(&plan);
        assert!(disperse_many_with(&Lost, &plan, &case).is_err());
        let trips = Arc::new(AtomicUsize::new(0));
        let counter = trips.clone();
        let fb = Fallback::new(
            Box::new(Lost),
            Box::new(CpuBackend::detect()),
            Box::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        );
        assert!(disperse_many_with(&fb, &plan, &case).unwrap() == case.payloads);
        assert!(undisperse_many_with(&fb, &plan, &case).unwrap() == case.streams);
        assert_eq!(trips.load(Ordering::SeqCst), 1, "warned once");
    }
}
