//! The sharing math: validated parameters, share coordinates, and the small
//! GF(2^8) matrices that split, combine and repair multiply byte streams by.
//!
//! - split:   share_i = sum_k x_i^k * a_k, with a_0 the secret (Vandermonde rows);
//! - combine: secret  = sum_i l_i(0) * share_i (Lagrange weights at 0);
//! - repair:  share_j = sum_i l_i(x_j) * share_i (Lagrange weights at a lost x).

use crate::field;

/// Why a set of parameters or coordinates was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("threshold t = {t} is below 2: one share would reveal the secret")]
    ThresholdTooSmall { t: usize },
    #[error("threshold t = {t} exceeds the share count n = {n}")]
    ThresholdAboveShares { t: usize, n: usize },
    #[error("share count n = {n} exceeds 255, the number of non-zero points in GF(2^8)")]
    TooManyShares { n: usize },
    #[error("x = 0 is the secret itself and never a share")]
    ZeroX,
    #[error("x = {x} appears twice")]
    DuplicateX { x: u8 },
    #[error("{given} share coordinates given for n = {n}")]
    WrongXCount { given: usize, n: usize },
    #[error("{given} shares given, the threshold is {t}")]
    TooFewShares { given: usize, t: usize },
}

/// A checked (t, n): 2 <= t <= n <= 255.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Threshold {
    t: u8,
    n: u8,
}

impl Threshold {
    /// (t, n) with 2 <= t <= n <= 255.
    pub fn new(t: usize, n: usize) -> Result<Self, ParamError> {
        if t < 2 {
            return Err(ParamError::ThresholdTooSmall { t });
        }
        if n > 255 {
            return Err(ParamError::TooManyShares { n });
        }
        if t > n {
            return Err(ParamError::ThresholdAboveShares { t, n });
        }
        Ok(Self {
            t: t as u8,
            n: n as u8,
        })
    }

    /// Shares needed to rebuild.
    pub fn t(self) -> usize {
        self.t as usize
    }

    /// Shares made.
    pub fn n(self) -> usize {
        self.n as usize
    }
}

/// Distinct non-zero share coordinates, checked.
pub fn check_xs(xs: &[u8]) -> Result<(), ParamError> {
    let mut seen = [false; 256];
    for &x in xs {
        if x == 0 {
            return Err(ParamError::ZeroX);
        }
        if seen[x as usize] {
            return Err(ParamError::DuplicateX { x });
        }
        seen[x as usize] = true;
    }
    Ok(())
}

/// The default coordinates x = 1..=n.
pub fn default_xs(n: usize) -> Vec<u8> {
    (1..=n).map(|x| x as u8).collect()
}

/// A small row-major matrix over GF(2^8): `out[r] = sum over c of m[r][c] * in[c]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    entries: Vec<u8>,
}

impl Matrix {
    /// A `rows` x `cols` matrix from its entries, row by row.
    pub fn new(rows: usize, cols: usize, entries: Vec<u8>) -> Self {
        assert_eq!(entries.len(), rows * cols, "matrix shape");
        Self {
            rows,
            cols,
            entries,
        }
    }

    /// Rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The entry at row `r`, column `c`.
    pub fn get(&self, r: usize, c: usize) -> u8 {
        self.entries[r * self.cols + c]
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[u8] {
        &self.entries[r * self.cols..(r + 1) * self.cols]
    }

    /// Rows (1, x, x^2, ..., x^(t-1)) for each share coordinate: evaluates the
    /// polynomial with coefficients (secret, a_1, ..., a_{t-1}) at each x.
    pub fn vandermonde(xs: &[u8], t: usize) -> Self {
        let mut entries = Vec::with_capacity(xs.len() * t);
        for &x in xs {
            let mut p = 1u8;
            for _ in 0..t {
                entries.push(p);
                p = field::mul(p, x);
            }
        }
        Self::new(xs.len(), t, entries)
    }

    /// One row of Lagrange weights: the interpolating polynomial through the
    /// points at `xs`, evaluated at each of `targets`.
    ///
    /// A target equal to one of `xs` gives the unit row that copies that share.
    pub fn lagrange(xs: &[u8], targets: &[u8]) -> Result<Self, ParamError> {
        check_xs(xs)?;
        let mut entries = Vec::with_capacity(targets.len() * xs.len());
        for &at in targets {
            for (i, &xi) in xs.iter().enumerate() {
                // l_i(at) = prod over j != i of (at - x_j) / (x_i - x_j); minus is xor.
                let mut num = 1u8;
                let mut den = 1u8;
                for (j, &xj) in xs.iter().enumerate() {
                    if i != j {
                        num = field::mul(num, at ^ xj);
                        den = field::mul(den, xi ^ xj);
                    }
                }
                // den != 0 because the xs are distinct.
                let den_inv = field::inv(den).expect("distinct xs give a non-zero denominator");
                entries.push(field::mul(num, den_inv));
            }
        }
        Ok(Self::new(targets.len(), xs.len(), entries))
    }
}

impl Matrix {
    /// The inverse of the t x t Vandermonde rows at `xs` (t = `xs.len()`):
    /// row k gives the polynomial's coefficient k from its values at `xs`.
    /// The compact scheme's decoding matrix (docs/DESIGN.md section 8): its
    /// stripes are the coefficients, its shares the values.
    pub fn vandermonde_inverse(xs: &[u8]) -> Result<Self, ParamError> {
        check_xs(xs)?;
        let t = xs.len();
        // Gauss-Jordan on [V | I]; distinct xs make V invertible.
        let mut a = Self::vandermonde(xs, t).entries;
        let mut inv: Vec<u8> = (0..t * t).map(|k| u8::from(k / t == k % t)).collect();
        for col in 0..t {
            let pivot = (col..t)
                .find(|&r| a[r * t + col] != 0)
                .expect("distinct xs give an invertible Vandermonde matrix");
            for c in 0..t {
                a.swap(col * t + c, pivot * t + c);
                inv.swap(col * t + c, pivot * t + c);
            }
            let p = field::inv(a[col * t + col]).expect("non-zero pivot");
            for c in 0..t {
                a[col * t + c] = field::mul(a[col * t + c], p);
                inv[col * t + c] = field::mul(inv[col * t + c], p);
            }
            for r in 0..t {
                let f = a[r * t + col];
                if r != col && f != 0 {
                    for c in 0..t {
                        a[r * t + c] ^= field::mul(f, a[col * t + c]);
                        inv[r * t + c] ^= field::mul(f, inv[col * t + c]);
                    }
                }
            }
        }
        Ok(Self::new(t, t, inv))
    }
}

/// Byte-wise reference: evaluate the matrix on single bytes. Slow; for tests
/// and for cross-checks of every backend.
pub fn apply_reference(m: &Matrix, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) {
    assert_eq!(inputs.len(), m.cols());
    assert_eq!(outputs.len(), m.rows());
    for (r, out) in outputs.iter_mut().enumerate() {
        for (pos, o) in out.iter_mut().enumerate() {
            let mut acc = 0u8;
            for (c, input) in inputs.iter().enumerate() {
                acc ^= field::mul_reference(m.get(r, c), input[pos]);
            }
            *o = acc;
        }
    }
}

/// What a split computes: the polynomial degree and the share coordinates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SplitPlan {
    threshold: Threshold,
    xs: Vec<u8>,
    matrix: Matrix,
}

impl SplitPlan {
    /// The plan of a (t, n) split at the points `xs`: n distinct non-zero points.
    pub fn new(threshold: Threshold, xs: Vec<u8>) -> Result<Self, ParamError> {
        if xs.len() != threshold.n() {
            return Err(ParamError::WrongXCount {
                given: xs.len(),
                n: threshold.n(),
            });
        }
        check_xs(&xs)?;
        let matrix = Matrix::vandermonde(&xs, threshold.t());
        Ok(Self {
            threshold,
            xs,
            matrix,
        })
    }

    /// t and n.
    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    /// The share points, in share order.
    pub fn xs(&self) -> &[u8] {
        &self.xs
    }

    /// n x t: row i is (1, x_i, x_i^2, ...).
    pub fn matrix(&self) -> &Matrix {
        &self.matrix
    }
}

/// Lagrange weights that rebuild the secret (x = 0) from shares at `xs`.
pub fn combine_matrix(xs: &[u8]) -> Result<Matrix, ParamError> {
    Matrix::lagrange(xs, &[0])
}

/// Lagrange weights that rebuild the shares at `lost` from shares at `xs`.
pub fn repair_matrix(xs: &[u8], lost: &[u8]) -> Result<Matrix, ParamError> {
    check_xs(lost)?;
    Matrix::lagrange(xs, lost)
}

/// k-combinations of 0..n in lexicographic order.
pub fn combinations(n: usize, k: usize) -> impl Iterator<Item = Vec<usize>> {
    let mut next = (k <= n).then(|| (0..k).collect::<Vec<usize>>());
    std::iter::from_fn(move || {
        let current = next.take()?;
        let mut c = current.clone();
        let mut i = k;
        while i > 0 {
            i -= 1;
            if c[i] < n - k + i {
                c[i] += 1;
                for j in i + 1..k {
                    c[j] = c[j - 1] + 1;
                }
                next = Some(c);
                break;
            }
        }
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn vandermonde_inverse_inverts() {
        let cases: Vec<Vec<u8>> = vec![
            vec![1, 2],
            vec![1, 2, 3, 4],
            vec![7, 200, 3, 91, 255],
            (1..=255).collect(),
            (1..=16).rev().collect(),
        ];
        for xs in cases {
            let t = xs.len();
            let v = Matrix::vandermonde(&xs, t);
            let inv = Matrix::vandermonde_inverse(&xs).unwrap();
            for r in 0..t {
                for c in 0..t {
                    let mut acc = 0u8;
                    for k in 0..t {
                        acc ^= field::mul(inv.get(r, k), v.get(k, c));
                    }
                    assert_eq!(acc, u8::from(r == c), "t = {t}, entry ({r}, {c})");
                }
            }
        }
        assert_eq!(
            Matrix::vandermonde_inverse(&[1, 1]).unwrap_err(),
            ParamError::DuplicateX { x: 1 }
        );
    }

    use super::*;

    #[test]
    fn threshold_bounds() {
        assert!(Threshold::new(2, 2).is_ok());
        assert!(Threshold::new(255, 255).is_ok());
        assert_eq!(
            Threshold::new(1, 3),
            Err(ParamError::ThresholdTooSmall { t: 1 })
        );
        assert_eq!(
            Threshold::new(4, 3),
            Err(ParamError::ThresholdAboveShares { t: 4, n: 3 })
        );
        assert_eq!(
            Threshold::new(4, 256),
            Err(ParamError::TooManyShares { n: 256 })
        );
    }

    #[test]
    fn lagrange_inverts_vandermonde() {
        // Evaluate a random-ish polynomial at 8 points, interpolate from any 4.
        let coeffs = [0x42u8, 0x13, 0xFE, 0x00];
        let xs = default_xs(8);
        let v = Matrix::vandermonde(&xs, 4);
        let shares: Vec<u8> = (0..8)
            .map(|r| (0..4).fold(0u8, |acc, c| acc ^ field::mul(v.get(r, c), coeffs[c])))
            .collect();
        let pick = [7usize, 2, 5, 0];
        let px: Vec<u8> = pick.iter().map(|&i| xs[i]).collect();
        let w = Matrix::lagrange(&px, &[0, 4]).unwrap();
        for (row, expect) in [(0, coeffs[0]), (1, shares[3])] {
            let got = pick.iter().enumerate().fold(0u8, |acc, (c, &i)| {
                acc ^ field::mul(w.get(row, c), shares[i])
            });
            assert_eq!(got, expect, "row {row}");
        }
    }

    #[test]
    fn lagrange_refuses_bad_points() {
        assert_eq!(
            Matrix::lagrange(&[1, 2, 1], &[0]),
            Err(ParamError::DuplicateX { x: 1 })
        );
        assert_eq!(Matrix::lagrange(&[0, 2], &[0]), Err(ParamError::ZeroX));
    }

    #[test]
    fn libgfshare_check_value() {
        // NOTES.md: s.001 = 0x00 and s.002 = 0x01 combine to 0xF4.
        let w = Matrix::lagrange(&[1, 2], &[0]).unwrap();
        let secret = field::mul(w.get(0, 0), 0x00) ^ field::mul(w.get(0, 1), 0x01);
        assert_eq!(secret, 0xF4);
    }

    #[test]
    fn combinations_in_order() {
        let all: Vec<Vec<usize>> = combinations(4, 2).collect();
        assert_eq!(
            all,
            vec![
                vec![0, 1],
                vec![0, 2],
                vec![0, 3],
                vec![1, 2],
                vec![1, 3],
                vec![2, 3]
            ]
        );
        assert_eq!(combinations(8, 4).count(), 70);
        assert_eq!(combinations(2, 3).count(), 0);
    }
}
