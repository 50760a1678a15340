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

/// Loads a vector of each input at vector index `v`, multiplies by each
/// row's constants and stores one vector per output row: inputs are read
/// once per position, and for up to eight inputs they stay in registers.
/// With `ONE`, every row's first constant is 1 (split: x^0 of the
/// Vandermonde rows, the secret's column): its product is the input itself,
/// one affine instruction less per row.
macro_rules! gfni_kernel {
    ($name:ident, $fixed:ident, $features:literal, $vec:ty, $w:expr,
     $load:ident, $store:ident, $stream:ident, $zero:ident, $xor:ident, $affine:ident, $splat:ident) => {
        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        unsafe fn $fixed<const C: usize, const NT: bool, const ONE: bool>(
            affine: &[u64],
            inputs: &[&[u8]],
            outputs: &mut [&mut [u8]],
            vectors: usize,
        ) {
            const W: usize = $w;
            let ins: [*const u8; C] = core::array::from_fn(|c| inputs[c].as_ptr());
            for v in 0..vectors {
                // SAFETY: v * W + W <= len of every input and output.
                let x: [$vec; C] =
                    core::array::from_fn(|c| unsafe { $load(ins[c].add(v * W).cast()) });
                for (row, out) in affine.chunks_exact(C).zip(outputs.iter_mut()) {
                    let mut acc = if ONE { x[0] } else { $zero() };
                    for c in usize::from(ONE)..C {
                        // The broadcast folds into the instruction's memory operand.
                        acc = $xor(acc, $affine::<0>(x[c], $splat(row[c] as i64)));
                    }
                    // SAFETY: as above; with NT the caller checked W-byte alignment.
                    unsafe {
                        let dst = out.as_mut_ptr().add(v * W).cast();
                        if NT {
                            $stream(dst, acc)
                        } else {
                            $store(dst, acc)
                        }
                    };
                }
            }
        }

        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        pub(super) unsafe fn $name(
            m: &Matrix,
            affine: &[u64],
            inputs: &[&[u8]],
            outputs: &mut [&mut [u8]],
            nontemporal: bool,
        ) -> usize {
            const W: usize = $w;
            let len = outputs[0].len();
            let vectors = len / W;
            // Streaming stores skip the cache for outputs nobody reads soon;
            // they need aligned destinations.
            let nt = nontemporal && outputs.iter().all(|o| (o.as_ptr() as usize) % W == 0);
            let one = affine
                .chunks_exact(m.cols())
                .all(|row| row[0] == crate::field::affine_matrix(1));
            macro_rules! fixed {
                ($c:literal) => {{
                    match (nt, one) {
                        (true, true) => $fixed::<$c, true, true>(affine, inputs, outputs, vectors),
                        (true, false) => {
                            $fixed::<$c, true, false>(affine, inputs, outputs, vectors)
                        }
                        (false, true) => {
                            $fixed::<$c, false, true>(affine, inputs, outputs, vectors)
                        }
                        (false, false) => {
                            $fixed::<$c, false, false>(affine, inputs, outputs, vectors)
                        }
                    }
                    if nt {
                        _mm_sfence();
                    }
                }};
            }
            // SAFETY (all arms): same features as this function; lengths checked by the caller.
            unsafe {
                match m.cols() {
                    1 => fixed!(1),
                    2 => fixed!(2),
                    3 => fixed!(3),
                    4 => fixed!(4),
                    5 => fixed!(5),
                    6 => fixed!(6),
                    7 => fixed!(7),
                    8 => fixed!(8),
                    cols => {
                        // Wide matrices: a row at a time, inputs from L1.
                        for (r, out) in outputs.iter_mut().enumerate() {
                            let row = &affine[r * cols..(r + 1) * cols];
                            for v in 0..vectors {
                                let mut acc = $zero();
                                for (input, &a) in inputs.iter().zip(row) {
                                    let x = $load(input.as_ptr().add(v * W).cast());
                                    acc = $xor(acc, $affine::<0>(x, $splat(a as i64)));
                                }
                                $store(out.as_mut_ptr().add(v * W).cast(), acc);
                            }
                        }
                    }
                }
            }
            vectors * W
        }
    };
}

gfni_kernel!(
    apply_avx2_gfni,
    avx2_gfni_fixed,
    "avx2,gfni",
    __m256i,
    32,
    _mm256_loadu_si256,
    _mm256_storeu_si256,
    _mm256_stream_si256,
    _mm256_setzero_si256,
    _mm256_xor_si256,
    _mm256_gf2p8affine_epi64_epi8,
    _mm256_set1_epi64x
);

gfni_kernel!(
    apply_avx512_gfni,
    avx512_gfni_fixed,
    "avx512f,avx512bw,gfni",
    __m512i,
    64,
    _mm512_loadu_si512,
    _mm512_storeu_si512,
    _mm512_stream_si512,
    _mm512_setzero_si512,
    _mm512_xor_si512,
    _mm512_gf2p8affine_epi64_epi8,
    _mm512_set1_epi64
);
