//! The CPU backend: one SIMD level of the kernel on every core. rayon only
//! schedules the kernel; it never changes the arithmetic, so the output does
//! not depend on the number of threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::contract::{Backend, EngineError};
use crate::kernel::{Kernel, Level, LevelError};
use crate::keystream::{self, ObjectKey};
use crate::sharing::{Matrix, SplitPlan};

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

    /// The SIMD level this backend runs.
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

/// Bytes per rayon task for a stream of `len`: at most [`TASK_BYTES`]; a
/// small input (a 256x256 image) is cut into one task per thread, not
/// more: each task more is a cross-thread hand-off that costs about as much
/// as its 4 KiB of work (four tasks per thread ran the 64 KiB split and
/// combine 20-25% slower on 2 cores; from 4 x `TASK_BYTES` per thread up,
/// inputs are cut the same either way).
fn task_bytes(len: usize) -> usize {
    let per_thread = len.div_ceil(rayon::current_num_threads().max(1));
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

    /// Fused: each 4 KiB sub-chunk of the t stripes is encrypted into a
    /// scratch buffer and dispersed from there while it is in L1, so the
    /// block is read once and the ciphertext never goes to memory.
    fn disperse(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        block: &[u8],
        shares: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        let kernel = self.kernel(plan.matrix())?;
        let t = plan.threshold().t();
        let stripe = shares.first().map_or(0, |s| s.len());
        assert_eq!(shares.len(), plan.threshold().n(), "one output per share");
        assert!(
            shares.iter().all(|s| s.len() == stripe),
            "shares of one stripe each"
        );
        super::contract::check_block(t, block.len(), stripe);
        let scratch = || zeroize::Zeroizing::new(vec![0u8; t * SUB_CHUNK_BYTES]);
        for_each_sub_chunk(shares, stripe, scratch, |cipher, sub, sub_end, outs| {
            let len = sub_end - sub;
            for (k, buf) in cipher.chunks_exact_mut(SUB_CHUNK_BYTES).enumerate() {
                let buf = &mut buf[..len];
                let lo = (k * stripe + sub).min(block.len());
                let hi = (k * stripe + sub_end).min(block.len());
                let (data, pad) = buf.split_at_mut(hi - lo);
                keystream::fill(key, keystream::CIPHER_STREAM, offset + lo as u64, data);
                for (c, p) in data.iter_mut().zip(&block[lo..hi]) {
                    *c ^= p;
                }
                // The last block's ciphertext is padded with zeros.
                pad.fill(0);
            }
            let inputs: Streams<&[u8]> = cipher
                .chunks_exact(SUB_CHUNK_BYTES)
                .map(|b| &b[..len])
                .collect();
            // Streaming stores by the stripe, as a split goes by its
            // secret: the file pipeline's blocks (stripes of at most 1 MiB)
            // are hashed and written right away, from cache.
            run_kernel(&kernel, stripe, &inputs, outs);
        });
        Ok(())
    }

    /// Fused: each 4 KiB sub-chunk of the t stripes is rebuilt and
    /// decrypted in place while it is in L1. A short last block rebuilds
    /// only the stripes that hold data (the first rows of the inverse),
    /// straight into `block`, the one cut by the block's end in a scratch
    /// stripe: padding is never computed, and the block is not copied.
    fn undisperse(
        &self,
        inverse: &Matrix,
        key: &ObjectKey,
        offset: u64,
        shares: &[&[u8]],
        block: &mut [u8],
    ) -> Result<(), EngineError> {
        let t = inverse.rows();
        let stripe = shares.first().map_or(0, |s| s.len());
        super::contract::check_block(t, block.len(), stripe);
        if stripe == 0 {
            return Ok(());
        }
        let len = block.len();
        let (full, rows) = (len / stripe, len.div_ceil(stripe));
        let kernel = if rows == t {
            self.kernel(inverse)?
        } else {
            let entries = (0..rows).flat_map(|r| inverse.row(r).to_vec()).collect();
            self.kernel(&Matrix::new(rows, inverse.cols(), entries))?
        };
        let mut tail = zeroize::Zeroizing::new(vec![0u8; if rows > full { stripe } else { 0 }]);
        let (head, rest) = block.split_at_mut(full * stripe);
        let mut outs: Vec<&mut [u8]> = head.chunks_exact_mut(stripe).collect();
        if rows > full {
            outs.push(&mut tail[..]);
        }
        // One keystream buffer per batch of tasks, wiped when dropped.
        let scratch = || zeroize::Zeroizing::new(vec![0u8; SUB_CHUNK_BYTES]);
        for_each_sub_chunk(&mut outs, stripe, scratch, |ks, sub, sub_end, outs| {
            let ins: Streams<&[u8]> = shares.iter().map(|s| &s[sub..sub_end]).collect();
            kernel.apply(&ins, outs);
            for (k, out) in outs.iter_mut().enumerate() {
                let at = offset + (k * stripe + sub) as u64;
                keystream::xor_cipher_with(key, at, out, ks);
            }
        });
        let cut = rest.len();
        rest.copy_from_slice(&tail[..cut]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_support::{BatchCase, batch_case, split_many_with};
    use crate::field;
    use crate::sharing::{self, Threshold, combine_matrix, repair_matrix};

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
