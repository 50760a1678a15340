//! aarch64 NEON kernel: nibble tables applied with TBL (`vqtbl1q_u8`).
//! Returns how many leading bytes it computed; the caller does the tail.

use std::arch::aarch64::*;

use crate::sharing::Matrix;

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub(super) unsafe fn apply_neon(
    m: &Matrix,
    tables: &[[u8; 32]],
    inputs: &[&[u8]],
    outputs: &mut [&mut [u8]],
) -> usize {
    const W: usize = 16;
    let len = outputs[0].len();
    let vectors = len / W;
    let mask = vdupq_n_u8(0x0F);
    let cols = m.cols();
    for (r, out) in outputs.iter_mut().enumerate() {
        let row_tables = &tables[r * cols..(r + 1) * cols];
        for v in 0..vectors {
            let mut acc = vdupq_n_u8(0);
            for (input, t) in inputs.iter().zip(row_tables) {
                // SAFETY: v * W + W <= len = input.len(); t has 32 bytes.
                let (x, lo_t, hi_t) = unsafe {
                    (
                        vld1q_u8(input.as_ptr().add(v * W)),
                        vld1q_u8(t.as_ptr()),
                        vld1q_u8(t.as_ptr().add(16)),
                    )
                };
                let lo = vandq_u8(x, mask);
                let hi = vshrq_n_u8::<4>(x);
                acc = veorq_u8(acc, vqtbl1q_u8(lo_t, lo));
                acc = veorq_u8(acc, vqtbl1q_u8(hi_t, hi));
            }
            // SAFETY: v * W + W <= len = out.len().
            unsafe { vst1q_u8(out.as_mut_ptr().add(v * W), acc) };
        }
    }
    vectors * W
}
