//! Arithmetic in Z_257, the field of the paper, and its coefficient sampler.
//!
//! Pixel values 0..=255 are elements of Z_257; shares take values 0..=256,
//! one more than a byte holds, which is why p257 shadows are 16-bit images.
//! Everything else in umbra works in GF(2^8); this module exists only to
//! reproduce the paper.
//!
//! Reductions are `% 257` on `u32` with a constant divisor, which compilers
//! turn into a multiply and shifts (no data-dependent division timing), and
//! no table is indexed by a secret value.
//!
//! # Coefficients
//!
//! Coefficient `a_j` (j = 1..t-1) comes from the same ChaCha20 stream as in
//! GF(2^8) (`keystream::fill(key, j, ...)`), read from offset 0 as
//! consecutive little-endian 16-bit words `w`. A word `w < 65535` gives
//! `a = w mod 257`; the word `w = 65535` is rejected and the next one read.
//! Since 65535 = 255 * 257, each of the 257 values has exactly 255
//! preimages among the accepted words: the coefficients are exactly uniform
//! over 0..=256, zero included. One word in 65,536 is rejected, so position
//! k of the image uses roughly word k of stream j; the stream is read
//! sequentially (p257 gives up the random access of the GF(2^8) layout).

use crate::keystream::{self, ObjectKey};

/// The prime of the paper's field.
pub const P: u32 = 257;

/// a + b mod 257.
#[inline]
pub fn add(a: u16, b: u16) -> u16 {
    ((u32::from(a) + u32::from(b)) % P) as u16
}

/// a - b mod 257.
#[inline]
pub fn sub(a: u16, b: u16) -> u16 {
    ((u32::from(a) + P - u32::from(b) % P) % P) as u16
}

/// a * b mod 257.
#[inline]
pub fn mul(a: u16, b: u16) -> u16 {
    ((u32::from(a) * u32::from(b)) % P) as u16
}

/// a^e mod 257, by squaring.
pub fn pow(a: u16, mut e: u32) -> u16 {
    let mut result = 1u16;
    let mut base = a % P as u16;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// a^-1 = a^255 (Fermat); `None` for zero.
pub fn inv(a: u16) -> Option<u16> {
    if a.is_multiple_of(P as u16) {
        None
    } else {
        Some(pow(a, P - 2))
    }
}

/// Uniform coefficients over 0..=256 from keystream `j` (see the module docs).
pub struct CoefficientStream<'k> {
    key: &'k ObjectKey,
    j: u32,
    offset: u64,
    buf: zeroize::Zeroizing<Vec<u8>>,
    pos: usize,
}

const STREAM_BUF: usize = 16 * 1024;

impl<'k> CoefficientStream<'k> {
    /// Coefficient stream `j` of `key`, from offset 0.
    pub fn new(key: &'k ObjectKey, j: u32) -> Self {
        Self {
            key,
            j,
            offset: 0,
            buf: zeroize::Zeroizing::new(vec![0u8; STREAM_BUF]),
            pos: STREAM_BUF,
        }
    }

    fn word(&mut self) -> u16 {
        if self.pos == self.buf.len() {
            keystream::fill(self.key, self.j, self.offset, &mut self.buf);
            self.offset += self.buf.len() as u64;
            self.pos = 0;
        }
        let w = u16::from_le_bytes([self.buf[self.pos], self.buf[self.pos + 1]]);
        self.pos += 2;
        w
    }

    /// The next coefficient, uniform over 0..=256.
    pub fn next_coefficient(&mut self) -> u16 {
        loop {
            let w = self.word();
            if w != u16::MAX {
                return (u32::from(w) % P) as u16;
            }
        }
    }
}

/// Value at `x` of the polynomial with coefficients `coeffs` (constant first).
pub fn eval(coeffs: &[u16], x: u16) -> u16 {
    coeffs
        .iter()
        .rev()
        .fold(0u16, |acc, &c| add(mul(acc, x), c))
}

/// Lagrange weights at 0 for shares at `xs` (distinct, non-zero mod 257).
pub fn lagrange_at_zero(xs: &[u16]) -> Vec<u16> {
    xs.iter()
        .enumerate()
        .map(|(i, &xi)| {
            let mut num = 1u16;
            let mut den = 1u16;
            for (j, &xj) in xs.iter().enumerate() {
                if i != j {
                    num = mul(num, sub(0, xj));
                    den = mul(den, sub(xi, xj));
                }
            }
            mul(num, inv(den).expect("distinct xs"))
        })
        .collect()
}

/// The inverse of the t x t Vandermonde matrix at `xs` (row i = 1, x_i,
/// x_i^2, ...), row-major: multiplying it by t share values gives the t
/// coefficients. `None` if the xs are not distinct.
pub fn vandermonde_inverse(xs: &[u16]) -> Option<Vec<u16>> {
    let t = xs.len();
    // Gauss-Jordan on [V | I]. Public values only.
    let mut m = vec![0u16; t * 2 * t];
    let w = 2 * t;
    for (r, &x) in xs.iter().enumerate() {
        let mut p = 1u16;
        for c in 0..t {
            m[r * w + c] = p;
            p = mul(p, x);
        }
        m[r * w + t + r] = 1;
    }
    for col in 0..t {
        let pivot = (col..t).find(|&r| m[r * w + col] != 0)?;
        if pivot != col {
            for c in 0..w {
                m.swap(pivot * w + c, col * w + c);
            }
        }
        let inv_p = inv(m[col * w + col])?;
        for c in 0..w {
            m[col * w + c] = mul(m[col * w + c], inv_p);
        }
        for r in 0..t {
            if r != col && m[r * w + col] != 0 {
                let f = m[r * w + col];
                for c in 0..w {
                    let v = mul(f, m[col * w + c]);
                    m[r * w + c] = sub(m[r * w + c], v);
                }
            }
        }
    }
    Some(
        (0..t)
            .flat_map(|r| m[r * w + t..r * w + 2 * t].to_vec())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverses_of_every_element() {
        for a in 1..257u16 {
            assert_eq!(mul(a, inv(a).unwrap()), 1, "a = {a}");
        }
        assert_eq!(inv(0), None);
    }

    #[test]
    fn interpolation_recovers_the_constant() {
        let coeffs = [200u16, 256, 0, 17];
        let xs = [8u16, 3, 5, 1];
        let ys: Vec<u16> = xs.iter().map(|&x| eval(&coeffs, x)).collect();
        let w = lagrange_at_zero(&xs);
        let s = ys
            .iter()
            .zip(&w)
            .fold(0, |acc, (&y, &l)| add(acc, mul(y, l)));
        assert_eq!(s, 200);
        let inv_v = vandermonde_inverse(&xs).unwrap();
        for (r, &expect) in coeffs.iter().enumerate() {
            let got = (0..4).fold(0, |acc, c| add(acc, mul(inv_v[r * 4 + c], ys[c])));
            assert_eq!(got, expect, "coefficient {r}");
        }
        assert!(vandermonde_inverse(&[1, 2, 1]).is_none());
    }

    #[test]
    fn coefficients_cover_0_to_256_evenly() {
        let key = ObjectKey::from_bytes([11; 32]);
        let mut s = CoefficientStream::new(&key, 1);
        let n = 257 * 400;
        let mut counts = [0u32; 257];
        for _ in 0..n {
            counts[s.next_coefficient() as usize] += 1;
        }
        let expected = f64::from(n) / 257.0;
        let chi: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - expected).powi(2) / expected)
            .sum();
        // 256 degrees of freedom: the 99.99th percentile is about 359.
        assert!(chi < 359.0, "chi-square {chi}");
        assert!(counts[0] > 0 && counts[256] > 0);
    }

    #[test]
    fn the_rejected_word_is_skipped() {
        // 65535 = 255 * 257 would map to 0 and bias zero; it must be skipped.
        assert_eq!(65535 % P, 0);
        assert_eq!(65536 % P, 1);
    }
}
