//! The numbers behind the paper's security argument, and more: Shannon
//! entropy, chi-square uniformity with its p-value, correlation of adjacent
//! pixels, and NPCR / UACI between shadows. Pure functions of the samples;
//! `umbra stats`, which reads files and writes reports, is in
//! [`stats_report`](super::stats_report).
//!
//! Every statistic is over the plane's alphabet of `levels` sample values:
//! 256 for 8-bit images and GF(2^8) shadows, 257 for p257 shadows, 65,536
//! for 16-bit planes.

use std::path::PathBuf;

use serde::Serialize;

use super::image_io::GrayImage;

/// Counts of each value 0..levels; `None` if a sample is out of range.
pub fn histogram(samples: &[u16], levels: u32) -> Option<Vec<u64>> {
    let mut counts = vec![0u64; levels as usize];
    for &s in samples {
        *counts.get_mut(s as usize)? += 1;
    }
    Some(counts)
}

/// Shannon entropy in bits per sample.
pub fn entropy(hist: &[u64]) -> f64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let total = total as f64;
    // abs: a single value gives -0.0, which would print as "-0.0000".
    hist.iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total;
            p * p.log2()
        })
        .sum::<f64>()
        .abs()
}

/// Chi-square statistic against the uniform distribution over all bins,
/// its degrees of freedom, and the p-value P(X >= chi2).
pub fn chi_square_uniform(hist: &[u64]) -> (f64, u32, f64) {
    let total: u64 = hist.iter().sum();
    let bins = hist.len();
    let dof = bins.saturating_sub(1) as u32;
    if total == 0 || bins < 2 {
        return (0.0, dof, 1.0);
    }
    let expected = total as f64 / bins as f64;
    let chi: f64 = hist
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    (chi, dof, chi_square_p_value(chi, dof))
}

/// P(X >= chi) for X chi-square with `dof` degrees of freedom:
/// Q(dof/2, chi/2), the regularized upper incomplete gamma function.
pub fn chi_square_p_value(chi: f64, dof: u32) -> f64 {
    gamma_q(f64::from(dof) / 2.0, chi / 2.0)
}

/// ln Gamma(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Gamma(x) Gamma(1-x) = pi / sin(pi x).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, &c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Q(a, x) = Gamma(a, x) / Gamma(a), by the series for P below a + 1 and
/// Lentz's continued fraction above (Numerical Recipes, 6.2).
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let ln_front = -x + a * x.ln() - ln_gamma(a);
    const EPS: f64 = 1e-15;
    const MAX_ITER: usize = 1_000_000;
    if x < a + 1.0 {
        let mut ap = a;
        let mut del = 1.0 / a;
        let mut sum = del;
        for _ in 0..MAX_ITER {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * EPS {
                break;
            }
        }
        (1.0 - sum * ln_front.exp()).clamp(0.0, 1.0)
    } else {
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..MAX_ITER {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < EPS {
                break;
            }
        }
        (ln_front.exp() * h).clamp(0.0, 1.0)
    }
}

/// Direction of the neighbour for [`adjacent_correlation`].
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    Horizontal,
    Vertical,
    Diagonal,
}

/// Pearson correlation of every pixel with its right, lower or lower-right
/// neighbour (all pairs, no sampling); `None` when undefined (a constant
/// image, or no pairs).
pub fn adjacent_correlation(img: &GrayImage, dir: Direction) -> Option<f64> {
    let (dx, dy) = match dir {
        Direction::Horizontal => (1, 0),
        Direction::Vertical => (0, 1),
        Direction::Diagonal => (1, 1),
    };
    if img.width <= dx || img.height <= dy {
        return None;
    }
    let (mut n, mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
    for y in 0..img.height - dy {
        for x in 0..img.width - dx {
            let a = f64::from(img.get(x, y));
            let b = f64::from(img.get(x + dx, y + dy));
            n += 1.0;
            sx += a;
            sy += b;
            sxx += a * a;
            syy += b * b;
            sxy += a * b;
        }
    }
    let cov = sxy / n - (sx / n) * (sy / n);
    let vx = sxx / n - (sx / n).powi(2);
    let vy = syy / n - (sy / n).powi(2);
    if vx <= 1e-12 || vy <= 1e-12 {
        return None;
    }
    Some(cov / (vx.sqrt() * vy.sqrt()))
}

/// NPCR (% of positions that differ) and UACI (mean absolute difference
/// as % of levels - 1) of two planes of one size.
pub fn npcr_uaci(a: &GrayImage, b: &GrayImage, levels: u32) -> Option<(f64, f64)> {
    if a.samples.len() != b.samples.len() || a.samples.is_empty() {
        return None;
    }
    let n = a.samples.len() as f64;
    let mut differ = 0u64;
    let mut abs = 0f64;
    for (&x, &y) in a.samples.iter().zip(&b.samples) {
        differ += u64::from(x != y);
        abs += f64::from(x.abs_diff(y));
    }
    Some((
        differ as f64 / n * 100.0,
        abs / n / f64::from(levels.saturating_sub(1).max(1)) * 100.0,
    ))
}

/// NPCR and UACI expected of two independent uniform planes of `levels`
/// values: (1 - 1/L) and (L + 1) / 3L, in percent.
pub fn ideal_npcr_uaci(levels: u32) -> (f64, f64) {
    let l = f64::from(levels);
    ((1.0 - 1.0 / l) * 100.0, (l + 1.0) / (3.0 * l) * 100.0)
}

/// The statistics of one plane.
#[derive(Debug, Clone, Serialize)]
pub struct PlaneStats {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub levels: u32,
    pub entropy_bits: f64,
    /// log2 of the alphabet, or of the sample count when that is smaller
    /// (a plane of N samples cannot show more than log2 N bits).
    pub max_entropy_bits: f64,
    /// Fewer than 5 samples expected per value: the chi-square
    /// approximation is rough (16-bit planes of small images).
    pub chi_square_approximate: bool,
    pub chi_square: f64,
    pub dof: u32,
    pub p_value: f64,
    pub corr_horizontal: Option<f64>,
    pub corr_vertical: Option<f64>,
    pub corr_diagonal: Option<f64>,
    #[serde(skip)]
    pub histogram: Vec<u64>,
}

impl PlaneStats {
    /// The statistics of `img` over an alphabet of `levels` values; an error names a sample outside it.
    pub fn compute(name: &str, img: &GrayImage, levels: u32) -> std::result::Result<Self, String> {
        let histogram = histogram(&img.samples, levels).ok_or_else(|| {
            format!(
                "{name} holds sample values of {levels} or more; give the right --levels \
                 (256, 257 or 65536)"
            )
        })?;
        let (chi_square, dof, p_value) = chi_square_uniform(&histogram);
        Ok(Self {
            name: name.to_string(),
            width: img.width,
            height: img.height,
            levels,
            entropy_bits: entropy(&histogram),
            max_entropy_bits: f64::from(levels)
                .log2()
                .min((img.samples.len().max(1) as f64).log2()),
            chi_square_approximate: (img.samples.len() as f64) < 5.0 * f64::from(levels),
            chi_square,
            dof,
            p_value,
            corr_horizontal: adjacent_correlation(img, Direction::Horizontal),
            corr_vertical: adjacent_correlation(img, Direction::Vertical),
            corr_diagonal: adjacent_correlation(img, Direction::Diagonal),
            histogram,
        })
    }
}

/// NPCR and UACI of one pair of shadows.
#[derive(Debug, Clone, Serialize)]
pub struct PairStats {
    pub a: String,
    pub b: String,
    pub npcr_percent: f64,
    pub uaci_percent: f64,
}

/// The statistics of an original and its shadows, or of a lone image.
#[derive(Debug, Clone, Serialize)]
pub struct SetStats {
    pub name: String,
    pub source: PathBuf,
    pub field: Option<String>,
    pub scheme: Option<String>,
    pub t: Option<usize>,
    pub n: Option<usize>,
    pub planes: Vec<PlaneStats>,
    pub pairs: Vec<PairStats>,
    pub ideal_npcr_percent: Option<f64>,
    pub ideal_uaci_percent: Option<f64>,
    pub histogram_figure: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn gamma_q_known_values() {
        for x in [0.1, 1.0, 5.0, 30.0] {
            assert!(close(gamma_q(1.0, x), (-x).exp(), 1e-12), "Q(1, {x})");
        }
        // Critical values of chi-square at p = 0.05 and 0.01.
        assert!(close(chi_square_p_value(3.841_459, 1), 0.05, 1e-5));
        assert!(close(chi_square_p_value(293.247_835, 255), 0.05, 1e-5));
        assert!(close(chi_square_p_value(310.457_388, 255), 0.01, 1e-4));
        assert!(close(chi_square_p_value(18.307_038, 10), 0.05, 1e-5));
        // Median of chi-square(65535) is about dof (1 - 2/(9 dof))^3.
        let dof = 65_535.0f64;
        let median = dof * (1.0 - 2.0 / (9.0 * dof)).powi(3);
        assert!(close(chi_square_p_value(median, 65_535), 0.5, 1e-3));
        assert_eq!(chi_square_p_value(1e6, 255), 0.0);
        assert!(close(ln_gamma(10.0), 362_880f64.ln(), 1e-13));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-13
        ));
    }

    #[test]
    fn entropy_chi_square_correlation_npcr() {
        let uniform: Vec<u16> = (0..256 * 64).map(|i| (i % 256) as u16).collect();
        let h = histogram(&uniform, 256).unwrap();
        assert!(close(entropy(&h), 8.0, 1e-12));
        assert_eq!(chi_square_uniform(&h).0, 0.0);
        let constant = GrayImage::new(16, 16, 8, vec![7; 256]);
        assert_eq!(adjacent_correlation(&constant, Direction::Horizontal), None);
        let flat = entropy(&histogram(&constant.samples, 256).unwrap());
        assert!(flat == 0.0 && flat.is_sign_positive());
        let ramp = GrayImage::new(16, 16, 8, (0..256).map(|i| (i % 16) as u16).collect());
        assert!(close(
            adjacent_correlation(&ramp, Direction::Vertical).unwrap(),
            1.0,
            1e-12
        ));
        let a = GrayImage::new(2, 1, 8, vec![0, 255]);
        let b = GrayImage::new(2, 1, 8, vec![0, 0]);
        assert_eq!(npcr_uaci(&a, &b, 256), Some((50.0, 50.0)));
        let (npcr, uaci) = ideal_npcr_uaci(256);
        assert!(close(npcr, 99.609_375, 1e-9) && close(uaci, 33.463_541_666, 1e-9));
        assert!(histogram(&[256], 256).is_none());
    }
}
