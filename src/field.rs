//! Arithmetic in GF(2^8) with the reduction polynomial 0x11D
//! (x^8 + x^4 + x^3 + x^2 + 1), the field of libgfshare, ISA-L and most
//! Reed-Solomon code.
//!
//! Every function here is branch-free in its operands and indexes no memory
//! by them: secret bytes pass through [`mul`] in the portable paths, so a
//! log/exp table would leak them through the cache.

/// The reduction polynomial, bit 8 included.
pub const POLY: u16 = 0x11D;

/// The low byte of [`POLY`]: what `x * 2` folds back in when bit 7 overflows.
const POLY_LOW: u8 = (POLY & 0xFF) as u8;

/// Multiplies by x (i.e. by 2) in the field.
#[inline(always)]
pub const fn xtime(a: u8) -> u8 {
    // 0xFF when the top bit is set, 0 otherwise: no branch on `a`.
    let carry = 0u8.wrapping_sub(a >> 7);
    (a << 1) ^ (carry & POLY_LOW)
}

/// Product of two field elements, in constant time.
#[inline]
pub const fn mul(a: u8, b: u8) -> u8 {
    let mut acc = 0u8;
    let mut a = a;
    let mut b = b;
    let mut i = 0;
    while i < 8 {
        acc ^= a & 0u8.wrapping_sub(b & 1);
        a = xtime(a);
        b >>= 1;
        i += 1;
    }
    acc
}

/// `a` raised to the power `e`.
pub const fn pow(a: u8, mut e: u32) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// Multiplicative inverse; `None` for zero, which has none.
///
/// Used on public values only (share coordinates), but constant time anyway:
/// a^254 = a^-1 in a field of 256 elements.
pub const fn inv(a: u8) -> Option<u8> {
    if a == 0 { None } else { Some(pow(a, 254)) }
}

/// The 8x8 bit matrix of "multiply by `c`" in the layout of the x86
/// `GF2P8AFFINEQB` instruction: result bit i is the parity of
/// `matrix.byte[7 - i] & input`.
///
/// Column j of the linear map is `c * 2^j`, so row i collects bit i of each
/// column. This lets GFNI multiply in 0x11D, although its own `GF2P8MULB`
/// is fixed to the AES polynomial 0x11B.
pub const fn affine_matrix(c: u8) -> u64 {
    let mut columns = [0u8; 8];
    let mut j = 0;
    let mut p = c;
    while j < 8 {
        columns[j] = p;
        p = xtime(p);
        j += 1;
    }
    let mut matrix = 0u64;
    let mut i = 0;
    while i < 8 {
        let mut row = 0u8;
        let mut j = 0;
        while j < 8 {
            row |= ((columns[j] >> i) & 1) << j;
            j += 1;
        }
        matrix |= (row as u64) << (8 * (7 - i));
        i += 1;
    }
    matrix
}

/// The two 16-entry tables of "multiply by `c`" indexed by the low and the
/// high nibble of the input, for PSHUFB / TBL kernels: `c*x = lo[x & 15] ^ hi[x >> 4]`.
/// The lookups happen inside a register shuffle, never in memory.
pub const fn nibble_tables(c: u8) -> ([u8; 16], [u8; 16]) {
    let mut lo = [0u8; 16];
    let mut hi = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        lo[i] = mul(c, i as u8);
        hi[i] = mul(c, (i as u8) << 4);
        i += 1;
    }
    (lo, hi)
}

/// Reference multiply for tests: carry-less product, then polynomial long
/// division by [`POLY`]. A different algorithm from [`mul`], on purpose.
pub fn mul_reference(a: u8, b: u8) -> u8 {
    let mut product: u16 = 0;
    for bit in 0..8 {
        if (b >> bit) & 1 == 1 {
            product ^= (a as u16) << bit;
        }
    }
    for bit in (8..16).rev() {
        if (product >> bit) & 1 == 1 {
            product ^= POLY << (bit - 8);
        }
    }
    product as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_products_match_reference() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), mul_reference(a, b), "{a} * {b}");
            }
        }
    }

    #[test]
    fn inverses() {
        assert_eq!(inv(0), None);
        for a in 1..=255u8 {
            let i = inv(a).unwrap();
            assert_eq!(mul(a, i), 1, "inverse of {a}");
        }
        // The libgfshare check from NOTES: 1/3 = 0xF4 in this field.
        assert_eq!(inv(3), Some(0xF4));
    }

    #[test]
    fn affine_matrix_multiplies() {
        // Emulate GF2P8AFFINEQB bit by bit.
        for c in 0..=255u8 {
            let m = affine_matrix(c);
            for x in 0..=255u8 {
                let mut out = 0u8;
                for i in 0..8 {
                    let row = (m >> (8 * (7 - i))) as u8;
                    out |= (((row & x).count_ones() & 1) as u8) << i;
                }
                assert_eq!(out, mul(c, x), "{c} * {x}");
            }
        }
    }

    #[test]
    fn field_is_a_field() {
        // 2 generates the multiplicative group of 0x11D (it is primitive).
        let mut seen = [false; 256];
        let mut p = 1u8;
        for _ in 0..255 {
            assert!(!seen[p as usize]);
            seen[p as usize] = true;
            p = xtime(p);
        }
        assert_eq!(p, 1);
    }
}
