//! ChaCha20 with AVX-512, sixteen blocks at a time in the "vertical" layout:
//! register w holds state word w of all sixteen blocks, so a double round is
//! plain adds, xors and rotates with no shuffles, and one 16x16 transpose at
//! the end puts each block's bytes in order. It computes exactly the RFC 8439
//! block function; `super::tests` check it against the chacha20 crate.

use std::arch::x86_64::*;

const CONSTANTS: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// Bytes produced per call.
pub(super) const BYTES: usize = 16 * 64;

#[inline]
#[target_feature(enable = "avx512f")]
fn quarter(x: &mut [__m512i; 16], a: usize, b: usize, c: usize, d: usize) {
    x[a] = _mm512_add_epi32(x[a], x[b]);
    x[d] = _mm512_rol_epi32::<16>(_mm512_xor_si512(x[d], x[a]));
    x[c] = _mm512_add_epi32(x[c], x[d]);
    x[b] = _mm512_rol_epi32::<12>(_mm512_xor_si512(x[b], x[c]));
    x[a] = _mm512_add_epi32(x[a], x[b]);
    x[d] = _mm512_rol_epi32::<8>(_mm512_xor_si512(x[d], x[a]));
    x[c] = _mm512_add_epi32(x[c], x[d]);
    x[b] = _mm512_rol_epi32::<7>(_mm512_xor_si512(x[b], x[c]));
}

/// Sixteen consecutive blocks, counters `counter..counter + 16` (the caller
/// keeps them from wrapping), written to `out` in block order.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn blocks16(
    key: &[u32; 8],
    nonce: [u32; 3],
    counter: u32,
    out: &mut [u8; BYTES],
) {
    let lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    let counters = _mm512_add_epi32(_mm512_set1_epi32(counter as i32), lanes);
    let mut x = [_mm512_setzero_si512(); 16];
    for (w, c) in CONSTANTS.iter().enumerate() {
        x[w] = _mm512_set1_epi32(*c as i32);
    }
    for (w, k) in key.iter().enumerate() {
        x[4 + w] = _mm512_set1_epi32(*k as i32);
    }
    x[12] = counters;
    for (w, n) in nonce.iter().enumerate() {
        x[13 + w] = _mm512_set1_epi32(*n as i32);
    }
    for _ in 0..10 {
        quarter(&mut x, 0, 4, 8, 12);
        quarter(&mut x, 1, 5, 9, 13);
        quarter(&mut x, 2, 6, 10, 14);
        quarter(&mut x, 3, 7, 11, 15);
        quarter(&mut x, 0, 5, 10, 15);
        quarter(&mut x, 1, 6, 11, 12);
        quarter(&mut x, 2, 7, 8, 13);
        quarter(&mut x, 3, 4, 9, 14);
    }
    // Add the input state back. Its words are broadcasts but for the
    // counter, so they are rebuilt rather than kept in registers: the 16
    // working vectors then have the register file to themselves.
    let words: [u32; 16] = [
        CONSTANTS[0],
        CONSTANTS[1],
        CONSTANTS[2],
        CONSTANTS[3],
        key[0],
        key[1],
        key[2],
        key[3],
        key[4],
        key[5],
        key[6],
        key[7],
        0,
        nonce[0],
        nonce[1],
        nonce[2],
    ];
    for w in 0..16 {
        let add = if w == 12 {
            counters
        } else {
            _mm512_set1_epi32(words[w] as i32)
        };
        x[w] = _mm512_add_epi32(x[w], add);
    }

    // Transpose: x[w] lane i is word w of block i; block i needs words 0..16.
    let mut t = [_mm512_setzero_si512(); 16];
    for p in 0..8 {
        t[2 * p] = _mm512_unpacklo_epi32(x[2 * p], x[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_epi32(x[2 * p], x[2 * p + 1]);
    }
    // u[4g + j]: 128-bit lane k holds words 4g..4g+4 of block 4k + j.
    let mut u = [_mm512_setzero_si512(); 16];
    for g in 0..4 {
        let (a0, a1, b0, b1) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
        u[4 * g] = _mm512_unpacklo_epi64(a0, b0);
        u[4 * g + 1] = _mm512_unpackhi_epi64(a0, b0);
        u[4 * g + 2] = _mm512_unpacklo_epi64(a1, b1);
        u[4 * g + 3] = _mm512_unpackhi_epi64(a1, b1);
    }
    for j in 0..4 {
        let v_lo = _mm512_shuffle_i32x4::<0b10_00_10_00>(u[j], u[4 + j]);
        let v_hi = _mm512_shuffle_i32x4::<0b11_01_11_01>(u[j], u[4 + j]);
        let w_lo = _mm512_shuffle_i32x4::<0b10_00_10_00>(u[8 + j], u[12 + j]);
        let w_hi = _mm512_shuffle_i32x4::<0b11_01_11_01>(u[8 + j], u[12 + j]);
        let blocks = [
            (j, _mm512_shuffle_i32x4::<0b10_00_10_00>(v_lo, w_lo)),
            (4 + j, _mm512_shuffle_i32x4::<0b10_00_10_00>(v_hi, w_hi)),
            (8 + j, _mm512_shuffle_i32x4::<0b11_01_11_01>(v_lo, w_lo)),
            (12 + j, _mm512_shuffle_i32x4::<0b11_01_11_01>(v_hi, w_hi)),
        ];
        for (block, v) in blocks {
            // SAFETY: block < 16, so the 64 bytes at block * 64 lie inside `out`.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(block * 64).cast(), v) };
        }
    }
}
