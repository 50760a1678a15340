//! The compact scheme over a whole stream (docs/DESIGN.md section 8):
//! block after block of t segments through [`Backend::disperse_many`]. The
//! per-block definitions every backend must match are the trait's default
//! methods ([`super::contract::disperse_via_apply`] and its inverse): they
//! run on [`Backend::apply`], so a backend with no fused version of its own
//! still disperses where its `apply` runs, the keystream on the CPU. The
//! CPU fuses both per 4 KiB; the GPU runs both on the device
//! (`shaders/compact.wgsl`), many small objects per dispatch.

use super::contract::{Backend, DisperseJob, EngineError, UndisperseJob};
use crate::keystream::ObjectKey;
use crate::sharing::{Matrix, SplitPlan};

/// The compact split of `stream`, which starts at byte `offset` of the
/// shared stream (a block boundary), block by block of t x `segment` bytes,
/// into n payloads of [`crate::share::format::compact_payload_len`] bytes
/// each: [`Backend::disperse_many`] of one job.
pub fn disperse_stream(
    backend: &(impl Backend + ?Sized),
    plan: &SplitPlan,
    key: &ObjectKey,
    segment: usize,
    offset: u64,
    stream: &[u8],
    shares: &mut [&mut [u8]],
) -> Result<(), EngineError> {
    let job = DisperseJob {
        key,
        offset,
        stream,
        shares: shares.iter_mut().map(|s| &mut **s).collect(),
    };
    backend.disperse_many(plan, segment, &mut [job])
}

/// The inverse of [`disperse_stream`]: `stream` (the shared stream from
/// byte `offset`, a block boundary) from the payloads of t shares at the
/// same place, `inverse` being [`Matrix::vandermonde_inverse`] of their
/// points: [`Backend::undisperse_many`] of one job.
pub fn undisperse_stream(
    backend: &(impl Backend + ?Sized),
    inverse: &Matrix,
    key: &ObjectKey,
    segment: usize,
    offset: u64,
    shares: &[&[u8]],
    stream: &mut [u8],
) -> Result<(), EngineError> {
    let job = UndisperseJob {
        key,
        offset,
        shares: shares.to_vec(),
        stream,
    };
    backend.undisperse_many(inverse, segment, &mut [job])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::CpuBackend;
    use crate::field;
    use crate::kernel::Level;
    use crate::keystream::{self, xor_cipher};
    use crate::sharing::{self, Threshold};

    /// A backend with no compact code of its own: the trait's defaults run,
    /// as on the GPU.
    struct ApplyOnly(CpuBackend);

    impl Backend for ApplyOnly {
        fn describe(&self) -> String {
            "apply only".into()
        }
        fn split(
            &self,
            plan: &SplitPlan,
            key: &ObjectKey,
            offset: u64,
            secret: &[u8],
            shares: &mut [&mut [u8]],
        ) -> Result<(), EngineError> {
            self.0.split(plan, key, offset, secret, shares)
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

    /// The compact shares of one block, byte by byte from docs/DESIGN.md
    /// section 8: encrypt, pad the ciphertext with zeros, evaluate (Horner).
    fn disperse_reference(
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        block: &[u8],
    ) -> Vec<Vec<u8>> {
        let t = plan.threshold().t();
        let stripe = block.len().div_ceil(t);
        let mut ks = vec![0u8; block.len()];
        keystream::fill(key, 0, offset, &mut ks);
        let mut cipher: Vec<u8> = block.iter().zip(&ks).map(|(a, b)| a ^ b).collect();
        cipher.resize(t * stripe, 0);
        plan.xs()
            .iter()
            .map(|&x| {
                (0..stripe)
                    .map(|p| {
                        let mut acc = 0u8;
                        for k in (0..t).rev() {
                            acc = field::mul(acc, x) ^ cipher[k * stripe + p];
                        }
                        acc
                    })
                    .collect()
            })
            .collect()
    }

    fn shares_of(
        b: &dyn Backend,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        block: &[u8],
    ) -> Vec<Vec<u8>> {
        let t = plan.threshold().t();
        let stripe = block.len().div_ceil(t);
        let mut shares = vec![vec![0xEEu8; stripe]; plan.threshold().n()];
        let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(Vec::as_mut_slice).collect();
        b.disperse(plan, key, offset, block, &mut refs).unwrap();
        shares
    }

    #[test]
    fn every_backend_path_disperses_by_the_definition_and_back() {
        let key = ObjectKey::from_bytes([0x42; 32]);
        for (t, n) in [(2, 2), (4, 8), (3, 5), (8, 16)] {
            let plan =
                SplitPlan::new(Threshold::new(t, n).unwrap(), sharing::default_xs(n)).unwrap();
            // Lengths around the SIMD, keystream-block and sub-chunk edges.
            for len in [
                1usize,
                2,
                63,
                64,
                65,
                4095,
                4096,
                4097,
                t * 4096 - 1,
                t * 4096,
                70_001,
            ] {
                let block: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
                let offset = 3 * 64 * 4096;
                let expected = disperse_reference(&plan, &key, offset, &block);
                let generic = shares_of(
                    &ApplyOnly(CpuBackend::detect()),
                    &plan,
                    &key,
                    offset,
                    &block,
                );
                assert_eq!(generic, expected, "generic, ({t},{n}), length {len}");
                for level in Level::available() {
                    let cpu = CpuBackend::new(level).unwrap();
                    let got = shares_of(&cpu, &plan, &key, offset, &block);
                    assert_eq!(got, expected, "cpu {level}, ({t},{n}), length {len}");
                    // Any t shares give the block back, on both paths.
                    for pick in [(0..t).collect::<Vec<_>>(), (n - t..n).collect()] {
                        let xs: Vec<u8> = pick.iter().map(|&i| plan.xs()[i]).collect();
                        let inverse = Matrix::vandermonde_inverse(&xs).unwrap();
                        let ins: Vec<&[u8]> = pick.iter().map(|&i| got[i].as_slice()).collect();
                        for b in [
                            &cpu as &dyn Backend,
                            &ApplyOnly(CpuBackend::new(level).unwrap()),
                        ] {
                            let mut back = vec![0x11u8; len];
                            b.undisperse(&inverse, &key, offset, &ins, &mut back)
                                .unwrap();
                            assert_eq!(
                                back,
                                block,
                                "{} ({t},{n}) length {len} from {pick:?}",
                                b.describe()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_cipher_is_keystream_zero() {
        let key = ObjectKey::from_bytes([9; 32]);
        let mut data = vec![0u8; 200_000];
        xor_cipher(&key, 100, &mut data);
        let mut ks = vec![0u8; 200_000];
        keystream::fill(&key, 0, 100, &mut ks);
        assert_eq!(data, ks);
        xor_cipher(&key, 100, &mut data);
        assert!(data.iter().all(|&b| b == 0));
    }
}
