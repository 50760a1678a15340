//! The portable backend: GF(2^8) multiply by a public constant as shift-xor
//! on eight bytes at once. It branches on the constant's bits (public) and
//! never on the data.

use crate::sharing::Matrix;

const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const LOW1: u64 = 0x0101_0101_0101_0101;
const POLY_LOW: u64 = (crate::field::POLY & 0xFF) as u64;

/// Eight independent `xtime`s.
#[inline(always)]
fn xtime8(x: u64) -> u64 {
    ((x & LOW7) << 1) ^ (((x >> 7) & LOW1) * POLY_LOW)
}

/// Eight independent products `c * x_k`.
#[inline(always)]
fn mul8(c: u8, mut x: u64) -> u64 {
    let mut acc = 0u64;
    let mut c = c;
    while c != 0 {
        if c & 1 == 1 {
            acc ^= x;
        }
        x = xtime8(x);
        c >>= 1;
    }
    acc
}

pub(super) fn apply(m: &Matrix, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
    let len = outputs.first().map_or(0, |o| o.len());
    let words = len / 8;
    for (r, out) in outputs.iter_mut().enumerate() {
        let row = m.row(r);
        for w in 0..words {
            let mut acc = 0u64;
            for (c, input) in inputs.iter().enumerate() {
                let bytes: [u8; 8] = input[w * 8..w * 8 + 8].try_into().expect("8 bytes");
                acc ^= mul8(row[c], u64::from_le_bytes(bytes));
            }
            out[w * 8..w * 8 + 8].copy_from_slice(&acc.to_le_bytes());
        }
        for pos in words * 8..len {
            let mut acc = 0u64;
            for (c, input) in inputs.iter().enumerate() {
                acc ^= mul8(row[c], input[pos] as u64);
            }
            out[pos] = acc as u8;
        }
    }
}
