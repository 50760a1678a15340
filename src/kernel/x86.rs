//! x86-64 SIMD kernels. Each returns how many leading bytes it computed (a
//! whole number of vectors); the caller finishes the tail portably.
//!
//! Loop order: one output row at a time, all of its vectors, summing over
//! the inputs. The engine feeds sub-chunks small enough that every input
//! and output stream stays in L1 while the rows are swept.

use std::arch::x86_64::*;

use crate::sharing::Matrix;

/// # Safety
/// The CPU must support SSSE3.
#[target_feature(enable = "ssse3")]
pub(super) unsafe fn apply_ssse3(
    m: &Matrix,
    tables: &[[u8; 32]],
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
) -> usize {
    const W: usize = 16;
    let len = outputs[0].len();
    let vectors = len / W;
    let mask = _mm_set1_epi8(0x0F);
    let cols = m.cols();
    for (r, out) in outputs.iter_mut().enumerate() {
        let row_tables = &tables[r * cols..(r + 1) * cols];
        for v in 0..vectors {
            let mut acc = _mm_setzero_si128();
            for (input, t) in inputs.iter().zip(row_tables) {
                // SAFETY: v * W + W <= len = input.len(); unaligned loads.
                let (x, lo_t, hi_t) = unsafe {
                    (
                        _mm_loadu_si128(input.as_ptr().add(v * W).cast()),
                        _mm_loadu_si128(t.as_ptr().cast()),
                        _mm_loadu_si128(t.as_ptr().add(16).cast()),
                    )
                };
                let lo = _mm_and_si128(x, mask);
                let hi = _mm_and_si128(_mm_srli_epi64(x, 4), mask);
                acc = _mm_xor_si128(acc, _mm_shuffle_epi8(lo_t, lo));
                acc = _mm_xor_si128(acc, _mm_shuffle_epi8(hi_t, hi));
            }
            // SAFETY: v * W + W <= len = out.len().
            unsafe { _mm_storeu_si128(out.as_mut_ptr().add(v * W).cast(), acc) };
        }
    }
    vectors * W
}

/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn apply_avx2(
    m: &Matrix,
    tables: &[[u8; 32]],
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
) -> usize {
    const W: usize = 32;
    let len = outputs[0].len();
    let vectors = len / W;
    let mask = _mm256_set1_epi8(0x0F);
    let cols = m.cols();
    for (r, out) in outputs.iter_mut().enumerate() {
        let row_tables = &tables[r * cols..(r + 1) * cols];
        for v in 0..vectors {
            let mut acc = _mm256_setzero_si256();
            for (input, t) in inputs.iter().zip(row_tables) {
                // SAFETY: v * W + W <= len = input.len(); t has 32 bytes.
                let (x, lo_t, hi_t) = unsafe {
                    (
                        _mm256_loadu_si256(input.as_ptr().add(v * W).cast()),
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(t.as_ptr().cast())),
                        _mm256_broadcastsi128_si256(_mm_loadu_si128(t.as_ptr().add(16).cast())),
                    )
                };
                let lo = _mm256_and_si256(x, mask);
                let hi = _mm256_and_si256(_mm256_srli_epi64(x, 4), mask);
                acc = _mm256_xor_si256(acc, _mm256_shuffle_epi8(lo_t, lo));
                acc = _mm256_xor_si256(acc, _mm256_shuffle_epi8(hi_t, hi));
            }
            // SAFETY: v * W + W <= len = out.len().
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(v * W).cast(), acc) };
        }
    }
    vectors * W
}

/// # Safety
/// The CPU must support AVX2 and GFNI.
#[target_feature(enable = "avx2,gfni")]
pub(super) unsafe fn apply_avx2_gfni(
    m: &Matrix,
    affine: &[u64],
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
) -> usize {
    const W: usize = 32;
    let len = outputs[0].len();
    let vectors = len / W;
    let cols = m.cols();
    for (r, out) in outputs.iter_mut().enumerate() {
        let row = &affine[r * cols..(r + 1) * cols];
        for v in 0..vectors {
            let mut acc = _mm256_setzero_si256();
            for (input, &a) in inputs.iter().zip(row) {
                // SAFETY: v * W + W <= len = input.len().
                let x = unsafe { _mm256_loadu_si256(input.as_ptr().add(v * W).cast()) };
                let product = _mm256_gf2p8affine_epi64_epi8::<0>(x, _mm256_set1_epi64x(a as i64));
                acc = _mm256_xor_si256(acc, product);
            }
            // SAFETY: v * W + W <= len = out.len().
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(v * W).cast(), acc) };
        }
    }
    vectors * W
}

/// # Safety
/// The CPU must support AVX-512F, AVX-512BW and GFNI.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
pub(super) unsafe fn apply_avx512_gfni(
    m: &Matrix,
    affine: &[u64],
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
) -> usize {
    const W: usize = 64;
    let len = outputs[0].len();
    let vectors = len / W;
    let cols = m.cols();
    for (r, out) in outputs.iter_mut().enumerate() {
        let row = &affine[r * cols..(r + 1) * cols];
        for v in 0..vectors {
            let mut acc = _mm512_setzero_si512();
            for (input, &a) in inputs.iter().zip(row) {
                // SAFETY: v * W + W <= len = input.len().
                let x = unsafe { _mm512_loadu_si512(input.as_ptr().add(v * W).cast()) };
                let product = _mm512_gf2p8affine_epi64_epi8::<0>(x, _mm512_set1_epi64(a as i64));
                acc = _mm512_xor_si512(acc, product);
            }
            // SAFETY: v * W + W <= len = out.len().
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(v * W).cast(), acc) };
        }
    }
    vectors * W
}
