//! The numbers behind the paper's security argument, and more: Shannon
//! entropy, chi-square uniformity with its p-value, correlation of adjacent
//! pixels, and NPCR / UACI between shadows; and `umbra stats`, which writes
//! them as Markdown and JSON with histogram figures.
//!
//! Every statistic is over the plane's alphabet of `levels` sample values:
//! 256 for 8-bit images and GF(2^8) shadows, 257 for p257 shadows, 65,536
//! for 16-bit planes.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::image_io::{self, GrayImage};
use super::shadows::ShadowManifest;
use super::{AtPath, PaperError, Result, figures};

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

/// Statistics of the original and every shadow in a `umbra shadows`
/// directory, with NPCR / UACI for every pair of shadows.
pub fn set_stats(dir: &Path, name: &str) -> Result<SetStats> {
    let manifest = ShadowManifest::read(dir)?;
    let bad = |path: PathBuf| move |reason: String| PaperError::BadShadow { path, reason };
    let original_path = dir.join(&manifest.original);
    let original = image_io::read_gray(&original_path)?;
    let mut planes = vec![
        PlaneStats::compute("original", &original, original.levels())
            .map_err(bad(original_path))?,
    ];
    let mut shadows = Vec::new();
    for e in &manifest.shadows {
        let path = dir.join(&e.file);
        let img = image_io::read_gray(&path)?;
        planes.push(
            PlaneStats::compute(&format!("shadow {}", e.x), &img, manifest.shadow_levels)
                .map_err(bad(path))?,
        );
        shadows.push((e.x, img));
    }
    let mut pairs = Vec::new();
    for i in 0..shadows.len() {
        for j in i + 1..shadows.len() {
            if let Some((npcr, uaci)) =
                npcr_uaci(&shadows[i].1, &shadows[j].1, manifest.shadow_levels)
            {
                pairs.push(PairStats {
                    a: format!("shadow {}", shadows[i].0),
                    b: format!("shadow {}", shadows[j].0),
                    npcr_percent: npcr,
                    uaci_percent: uaci,
                });
            }
        }
    }
    let (npcr, uaci) = ideal_npcr_uaci(manifest.shadow_levels);
    Ok(SetStats {
        name: name.to_string(),
        source: manifest.source.clone(),
        field: Some(manifest.field.to_string()),
        scheme: Some(manifest.scheme.to_string()),
        t: Some(manifest.t),
        n: Some(manifest.n),
        planes,
        pairs,
        ideal_npcr_percent: Some(npcr),
        ideal_uaci_percent: Some(uaci),
        histogram_figure: String::new(),
    })
}

/// Statistics of a lone image file.
pub fn image_stats(path: &Path, name: &str, levels: Option<u32>) -> Result<SetStats> {
    let img = image_io::read_gray(path)?;
    let levels = levels.unwrap_or_else(|| img.levels());
    let plane =
        PlaneStats::compute(name, &img, levels).map_err(|reason| PaperError::BadShadow {
            path: path.to_path_buf(),
            reason,
        })?;
    Ok(SetStats {
        name: name.to_string(),
        source: path.to_path_buf(),
        field: None,
        scheme: None,
        t: None,
        n: None,
        planes: vec![plane],
        pairs: Vec::new(),
        ideal_npcr_percent: None,
        ideal_uaci_percent: None,
        histogram_figure: String::new(),
    })
}

fn opt(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.4}"))
}

/// A p-value in a few characters: small ones in scientific notation.
pub fn show_p(p: f64) -> String {
    if p == 0.0 {
        "< 1e-300".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// One Markdown table of per-plane statistics.
pub fn planes_markdown(planes: &[PlaneStats]) -> String {
    let mut s = String::new();
    if planes.iter().any(|p| p.chi_square_approximate) {
        s.push_str(
            "\\* fewer than 5 samples expected per value: the chi-square p-value is only \
             approximate. Entropy is shown against its ceiling, log2 of the alphabet or of the \
             sample count, whichever is smaller.\n\n",
        );
    }
    s.push_str(
        "| plane | size | levels | entropy (bits) | chi-square (dof) | p-value | corr. horiz. | corr. vert. | corr. diag. |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for p in planes {
        s.push_str(&format!(
            "| {} | {} x {} | {} | {:.4} / {:.2} | {:.1} ({}){} | {} | {} | {} | {} |\n",
            p.name,
            p.width,
            p.height,
            p.levels,
            p.entropy_bits,
            p.max_entropy_bits,
            p.chi_square,
            p.dof,
            if p.chi_square_approximate { " \\*" } else { "" },
            show_p(p.p_value),
            opt(p.corr_horizontal),
            opt(p.corr_vertical),
            opt(p.corr_diagonal)
        ));
    }
    s
}

/// Min, mean and max of NPCR and UACI over all pairs, as one Markdown line.
pub fn pairs_summary(set: &SetStats) -> Option<String> {
    if set.pairs.is_empty() {
        return None;
    }
    let stat = |f: fn(&PairStats) -> f64| {
        let v: Vec<f64> = set.pairs.iter().map(f).collect();
        let min = v.iter().cloned().fold(f64::MAX, f64::min);
        let max = v.iter().cloned().fold(f64::MIN, f64::max);
        (min, v.iter().sum::<f64>() / v.len() as f64, max)
    };
    let (n0, n1, n2) = stat(|p| p.npcr_percent);
    let (u0, u1, u2) = stat(|p| p.uaci_percent);
    Some(format!(
        "Between the {} pairs of shadows: NPCR {n0:.3} / {n1:.3} / {n2:.3} % (min / mean / max; \
         {:.3} % for independent uniform planes), UACI {u0:.3} / {u1:.3} / {u2:.3} % ({:.3} %).",
        set.pairs.len(),
        set.ideal_npcr_percent.unwrap_or(f64::NAN),
        set.ideal_uaci_percent.unwrap_or(f64::NAN)
    ))
}

/// `umbra stats`: for each input (a `umbra shadows` directory or an image),
/// a histogram figure in `out/histograms/`, and every table in
/// `out/stats.md` and `out/stats.json`.
pub fn run_stats(inputs: &[PathBuf], out: &Path, levels: Option<u32>) -> Result<Vec<SetStats>> {
    std::fs::create_dir_all(out.join("histograms")).at(out)?;
    let mut sets = Vec::new();
    let mut used = std::collections::HashSet::new();
    for input in inputs {
        let base = super::shadows::stem_of(input);
        let mut name = base.clone();
        let mut k = 2;
        while !used.insert(name.clone()) {
            name = format!("{base}-{k}");
            k += 1;
        }
        let mut set = if input.is_dir() {
            if !input.join(ShadowManifest::FILE).exists() {
                return Err(PaperError::NotAnImage {
                    path: input.clone(),
                    reason: format!(
                        "a directory without {}: give a directory written by `umbra shadows`, \
                         or image files",
                        ShadowManifest::FILE
                    ),
                });
            }
            set_stats(input, &name)?
        } else {
            image_stats(input, &name, levels)?
        };
        let figure = format!("histograms/{name}.png");
        figures::histogram_figure(&out.join(&figure), &set)?;
        set.histogram_figure = figure;
        sets.push(set);
    }
    let md = stats_markdown(&sets);
    std::fs::write(out.join("stats.md"), md).at(&out.join("stats.md"))?;
    let json = serde_json::to_string_pretty(&sets).expect("stats serialise");
    std::fs::write(out.join("stats.json"), json + "\n").at(&out.join("stats.json"))?;
    Ok(sets)
}

/// All sets as one Markdown document with the figures inline.
pub fn stats_markdown(sets: &[SetStats]) -> String {
    let mut md = String::from("# umbra stats\n\n");
    for set in sets {
        md.push_str(&format!(
            "## {}\n\nSource: `{}`",
            set.name,
            set.source.display()
        ));
        if let (Some(f), Some(s), Some(t), Some(n)) = (&set.field, &set.scheme, set.t, set.n) {
            md.push_str(&format!("; {f}, {s}, (t, n) = ({t}, {n})"));
        }
        md.push_str(&format!(
            ".\n\n![histograms of {}]({})\n\n",
            set.name, set.histogram_figure
        ));
        md.push_str(&planes_markdown(&set.planes));
        if let Some(line) = pairs_summary(set) {
            md.push('\n');
            md.push_str(&line);
            md.push('\n');
        }
        md.push('\n');
    }
    md
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
