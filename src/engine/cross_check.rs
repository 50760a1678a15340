//! `--cross-check`: every operation on two backends from the same inputs,
//! compared byte for byte.

use super::contract::{Backend, DisperseJob, EngineError, SplitJob, UndisperseJob};
use crate::keystream::ObjectKey;
use crate::sharing::{Matrix, SplitPlan};

/// Runs every operation on two backends from the same inputs and key, and
/// fails loudly at the first byte where they differ; returns the first
/// backend's output. For `--cross-check`: CPU against GPU, or two SIMD levels.
pub struct CrossCheck {
    first: Box<dyn Backend>,
    second: Box<dyn Backend>,
}

impl CrossCheck {
    /// Runs on `first` (whose output is returned) and checks against `second`.
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

    /// Both backends disperse the whole batch their own way, then every
    /// job's payloads are compared.
    fn disperse_many(
        &self,
        plan: &SplitPlan,
        segment: usize,
        jobs: &mut [DisperseJob<'_>],
    ) -> Result<(), EngineError> {
        self.first.disperse_many(plan, segment, jobs)?;
        let mut theirs: Vec<Vec<Vec<u8>>> = jobs
            .iter()
            .map(|j| j.shares.iter().map(|s| vec![0u8; s.len()]).collect())
            .collect();
        {
            let mut second: Vec<DisperseJob<'_>> = jobs
                .iter()
                .zip(theirs.iter_mut())
                .map(|(j, outs)| DisperseJob {
                    key: j.key,
                    offset: j.offset,
                    stream: j.stream,
                    shares: outs.iter_mut().map(Vec::as_mut_slice).collect(),
                })
                .collect();
            self.second.disperse_many(plan, segment, &mut second)?;
        }
        let count = jobs.len();
        for (index, (job, outs)) in jobs.iter().zip(&theirs).enumerate() {
            self.compare("compact split", 0, &job.shares, outs)
                .map_err(|error| EngineError::InBatch {
                    index,
                    count,
                    error: Box::new(error),
                })?;
        }
        Ok(())
    }

    /// As [`CrossCheck::disperse_many`], for the combine; the plaintext of
    /// the second backend is wiped.
    fn undisperse_many(
        &self,
        inverse: &Matrix,
        segment: usize,
        jobs: &mut [UndisperseJob<'_>],
    ) -> Result<(), EngineError> {
        self.first.undisperse_many(inverse, segment, jobs)?;
        let mut theirs: zeroize::Zeroizing<Vec<Vec<u8>>> =
            zeroize::Zeroizing::new(jobs.iter().map(|j| vec![0u8; j.stream.len()]).collect());
        {
            let mut second: Vec<UndisperseJob<'_>> = jobs
                .iter()
                .zip(theirs.iter_mut())
                .map(|(j, out)| UndisperseJob {
                    key: j.key,
                    offset: j.offset,
                    shares: j.shares.clone(),
                    stream: out.as_mut_slice(),
                })
                .collect();
            self.second.undisperse_many(inverse, segment, &mut second)?;
        }
        let count = jobs.len();
        for (index, job) in jobs.iter_mut().enumerate() {
            let ours: [&mut [u8]; 1] = [&mut *job.stream];
            self.compare(
                "compact combine",
                job.offset,
                &ours,
                &theirs[index..index + 1],
            )
            .map_err(|error| EngineError::InBatch {
                index,
                count,
                error: Box::new(error),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::CpuBackend;
    use crate::engine::test_support::{
        BatchCase, Faulty, batch_case, compact_case, disperse_many_with, split_many_with,
        undisperse_many_with,
    };
    use crate::kernel::Level;
    use crate::sharing::{self, Threshold};

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

    /// The compact scheme's batches are cross-checked too, both ways:
    /// Faulty flips byte 1234 of share 2 of every block (and of every
    /// rebuilt block) that long, so the 5,000-byte stream (object 1, its
    /// 2,500-byte stripes) is the first named.
    #[test]
    fn cross_checked_compact_batches_name_the_object_that_differs() {
        let plan = SplitPlan::new(Threshold::new(2, 3).unwrap(), sharing::default_xs(3)).unwrap();
        let case = compact_case(&plan);
        let agree = CrossCheck::new(
            Box::new(CpuBackend::new(Level::Portable).unwrap()),
            Box::new(CpuBackend::detect()),
        );
        assert!(disperse_many_with(&agree, &plan, &case).unwrap() == case.payloads);
        assert!(undisperse_many_with(&agree, &plan, &case).unwrap() == case.streams);
        let disagree = CrossCheck::new(
            Box::new(CpuBackend::detect()),
            Box::new(Faulty(CpuBackend::detect())),
        );
        for err in [
            disperse_many_with(&disagree, &plan, &case).unwrap_err(),
            undisperse_many_with(&disagree, &plan, &case).unwrap_err(),
        ] {
            assert!(
                matches!(&err, EngineError::InBatch { index: 1, count: 3, error }
                    if matches!(**error, EngineError::Mismatch { .. })),
                "{err}"
            );
        }
    }
}
