//! `umbra reproduce`: the paper's experiment, end to end, as one Markdown
//! report with its figures.
//!
//! 1. The six 256x256 8-bit images of `datasets/paper256` with (t, n) =
//!    (4, 8) in every field and scheme: p257 Shamir (the paper's), gf256
//!    Shamir (umbra's), and Thien-Lin in both fields. For each: the shadows,
//!    the image recovered from t shadow files read back from disk, every
//!    t-subset of shadows checked, the "2 shares on each of 4 clouds"
//!    placement checked, statistics, histograms and a montage.
//! 2. The leak of Thien-Lin on a constant image, against Shamir.
//! 3. Unless `quick`: every image in `datasets/dicom` at full resolution,
//!    gf256 Shamir; files that are not grayscale images are listed with the
//!    error umbra gives.
//!
//! Times are wall-clock on the CPU backend of the machine that ran it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::figures::{self, Tile};
use super::image_io::GrayImage;
use super::shadows::{
    self, FieldKind, KeySource, Scheme, ShadowOutput, ShadowParams, StepTimes, recover,
};
use super::stats::{self, PlaneStats, SetStats, show_p};
use super::{AtPath, PaperError, Result};
use crate::engine::Backend;
use crate::keystream::ObjectKey;

pub struct ReproduceOptions {
    pub output: PathBuf,
    /// A directory holding `paper256/` and `dicom/`.
    pub data: PathBuf,
    /// Skip the full-resolution images.
    pub quick: bool,
    pub t: usize,
    pub n: usize,
}

/// The four configurations, the paper's first.
pub const CONFIGS: [(FieldKind, Scheme); 4] = [
    (FieldKind::P257, Scheme::Shamir),
    (FieldKind::Gf256, Scheme::Shamir),
    (FieldKind::P257, Scheme::ThienLin),
    (FieldKind::Gf256, Scheme::ThienLin),
];

/// One image shared in one configuration.
#[derive(Debug, Serialize)]
pub struct Run {
    pub field: FieldKind,
    pub scheme: Scheme,
    pub image: String,
    pub dir: String,
    pub width: u32,
    pub height: u32,
    pub bits: u8,
    pub shadow_width: u32,
    pub shadow_height: u32,
    pub shadow_bits: u8,
    pub original_bytes: u64,
    pub shadow_bytes: u64,
    pub recovered_from: Vec<u8>,
    pub subsets_checked: usize,
    pub subsets_total: usize,
    pub cloud_sets_checked: usize,
    /// Largest |Pearson correlation| between one shadow and the image it
    /// hides (the image's bytes, or for Thien-Lin the mean of each group of
    /// t bytes): what a single shadow shows of the image.
    pub max_corr_with_image: Option<f64>,
    pub times: StepTimes,
    #[serde(serialize_with = "secs")]
    pub stats_time: Duration,
    #[serde(serialize_with = "secs")]
    pub figure_time: Duration,
    pub stats: SetStats,
    pub montage: String,
    pub histograms: String,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A full-resolution file that could not be shared, and why.
#[derive(Debug, Serialize)]
pub struct Skipped {
    pub file: String,
    pub error: String,
}

/// All k-element subsets of 0..n, in lexicographic order.
pub fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    fn go(start: usize, n: usize, k: usize, cur: &mut Vec<usize>, all: &mut Vec<Vec<usize>>) {
        if cur.len() == k {
            all.push(cur.clone());
            return;
        }
        for i in start..n {
            if n - i < k - cur.len() {
                break;
            }
            cur.push(i);
            go(i + 1, n, k, cur, all);
            cur.pop();
        }
    }
    let mut all = Vec::new();
    go(0, n, k, &mut Vec::new(), &mut all);
    all
}

fn rel(base: &Path, p: &Path) -> String {
    p.strip_prefix(base)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Recovers from `pick` (indexes into the shadows) and compares.
fn check_subset(
    backend: &dyn Backend,
    params: &ShadowParams,
    out: &ShadowOutput,
    pick: &[usize],
) -> Result<()> {
    let img = &out.original;
    let sel: Vec<(u8, &GrayImage)> = pick
        .iter()
        .map(|&i| (params.xs[i], &out.shadows[i]))
        .collect();
    let xs: Vec<u8> = sel.iter().map(|(x, _)| *x).collect();
    let got =
        recover(backend, params, (img.width, img.height, img.bits), &sel).map_err(|error| {
            PaperError::Recover {
                path: out.dir.clone(),
                error,
            }
        })?;
    shadows::check_identical(&out.manifest.source, img, &got, &xs)
}

/// Shares one image, checks subsets and the cloud placement, and draws it.
fn run_one(
    backend: &dyn Backend,
    opts: &ReproduceOptions,
    input: &Path,
    dir: &Path,
    params: &ShadowParams,
    all_subsets: bool,
) -> Result<Run> {
    let out = shadows::shadow_image(backend, input, dir, params, &KeySource::Os)?;
    let (t, n) = (params.t(), params.n());
    let mut checked = 0;
    let total = subsets(n, t).len();
    if all_subsets {
        for pick in subsets(n, t) {
            check_subset(backend, params, &out, &pick)?;
            checked += 1;
        }
    }
    // 2 shares on each of n/2 clouds: any ceil(t/2) clouds hold t shares.
    let clouds = n / 2;
    let need = t.div_ceil(2);
    let mut cloud_sets = 0;
    if clouds >= need {
        for set in subsets(clouds, need) {
            let pick: Vec<usize> = set
                .iter()
                .flat_map(|&c| [2 * c, 2 * c + 1])
                .take(t)
                .collect();
            check_subset(backend, params, &out, &pick)?;
            cloud_sets += 1;
        }
    }
    let name = shadows::stem_of(input);
    let clock = Instant::now();
    let set = stats::set_stats(dir, &name)?;
    let stats_time = clock.elapsed();

    let clock = Instant::now();
    let hist = dir.join("histograms.png");
    figures::histogram_figure(&hist, &set)?;
    let montage = dir.join("montage.png");
    let mut recovered = super::image_io::read_gray(&dir.join("recovered.png"))?;
    // A PNG has no MONOCHROME1 or sign: show it as the original is shown.
    recovered.monochrome1 = out.original.monochrome1;
    recovered.signed = out.original.signed;
    let mut tiles = vec![Tile {
        caption: format!("original {}x{}", out.original.width, out.original.height),
        image: &out.original,
        levels: out.original.levels(),
    }];
    for (s, &x) in out.shadows.iter().zip(&params.xs) {
        tiles.push(Tile {
            caption: format!("shadow {x}"),
            image: s,
            levels: out.manifest.shadow_levels,
        });
    }
    tiles.push(Tile {
        caption: format!("recovered ({t} of {n})"),
        image: &recovered,
        levels: recovered.levels(),
    });
    figures::montage(&montage, &tiles, 5, 200)?;
    let figure_time = clock.elapsed();

    let max_corr_with_image = out
        .shadows
        .iter()
        .filter_map(|sh| shadow_image_correlation(&out.original, sh, params))
        .map(f64::abs)
        .reduce(f64::max);
    let s0 = &out.shadows[0];
    Ok(Run {
        field: params.field,
        scheme: params.scheme,
        image: name,
        dir: rel(&opts.output, dir),
        width: out.original.width,
        height: out.original.height,
        bits: out.original.bits,
        shadow_width: s0.width,
        shadow_height: s0.height,
        shadow_bits: s0.bits,
        original_bytes: out.original.samples.len() as u64 * u64::from(out.original.bits / 8),
        shadow_bytes: s0.samples.len() as u64 * u64::from(s0.bits / 8),
        recovered_from: out.manifest.recovered_from.clone(),
        subsets_checked: checked,
        subsets_total: total,
        cloud_sets_checked: cloud_sets,
        max_corr_with_image,
        times: out.times,
        stats_time,
        figure_time,
        stats: set,
        montage: rel(&opts.output, &montage),
        histograms: rel(&opts.output, &hist),
    })
}

/// Pearson correlation of two equally long series; `None` if either is
/// constant.
fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len() as f64;
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa <= 1e-12 || sbb <= 1e-12 {
        return None;
    }
    Some(sab / (saa.sqrt() * sbb.sqrt()))
}

/// Correlation between a shadow's elements (bytes in GF(2^8), values in
/// Z_257) and what they stand for in the image: the byte at the same place
/// for Shamir, the mean of the t bytes of the group for Thien-Lin.
fn shadow_image_correlation(
    original: &GrayImage,
    shadow: &GrayImage,
    params: &ShadowParams,
) -> Option<f64> {
    let elements: Vec<f64> = match params.field {
        FieldKind::Gf256 => shadow.to_bytes().into_iter().map(f64::from).collect(),
        FieldKind::P257 => shadow.samples.iter().map(|&v| f64::from(v)).collect(),
    };
    let bytes = original.to_bytes();
    let image: Vec<f64> = match params.scheme {
        Scheme::Shamir => bytes.into_iter().map(f64::from).collect(),
        Scheme::ThienLin => {
            let row = original.width as usize * original.bytes_per_sample();
            bytes
                .chunks(row.max(1))
                .flat_map(|r| {
                    r.chunks(params.t())
                        .map(|g| g.iter().map(|&b| f64::from(b)).sum::<f64>() / g.len() as f64)
                })
                .collect()
        }
    };
    pearson(&elements, &image)
}

fn images_in(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .at(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext)))
        .collect();
    v.sort();
    Ok(v)
}

/// The leak of Thien-Lin, shown on a constant 256x256 image: statistics of
/// shadow 1 in each configuration.
#[derive(Debug, Serialize)]
pub struct LeakRow {
    pub field: FieldKind,
    pub scheme: Scheme,
    pub shadow: PlaneStats,
    pub distinct_values: usize,
}

fn constant_image_leak(backend: &dyn Backend, t: usize, n: usize) -> Result<Vec<LeakRow>> {
    let img = GrayImage::new(256, 256, 8, vec![100; 256 * 256]);
    let mut rows = Vec::new();
    for (field, scheme) in CONFIGS {
        let params = ShadowParams::new(t, n, field, scheme)?;
        let key = ObjectKey::generate().map_err(|e| PaperError::Random(e.to_string()))?;
        let shadows = shadows::make_shadows(backend, &img, &params, &key).map_err(|error| {
            PaperError::Engine {
                path: PathBuf::from("constant image"),
                error,
            }
        })?;
        let s = &shadows[0];
        let levels = params.shadow_levels(8);
        let plane = PlaneStats::compute("shadow 1", s, levels).map_err(PaperError::Usage)?;
        let distinct = plane.histogram.iter().filter(|&&c| c > 0).count();
        rows.push(LeakRow {
            field,
            scheme,
            shadow: plane,
            distinct_values: distinct,
        });
    }
    Ok(rows)
}

/// Everything the report is made of, also written as report.json.
#[derive(Debug, Serialize)]
pub struct Report {
    pub t: usize,
    pub n: usize,
    pub backend: String,
    pub threads: usize,
    pub debug_build: bool,
    pub paper256: Vec<Run>,
    pub leak: Vec<LeakRow>,
    pub full_resolution: Vec<Run>,
    pub skipped: Vec<Skipped>,
    #[serde(serialize_with = "secs")]
    pub total_time: Duration,
}

/// Runs the experiment and writes `REPORT.md`, `report.json` and the
/// figures under `opts.output`; returns the report's path.
pub fn reproduce(
    backend: &dyn Backend,
    opts: &ReproduceOptions,
    note: &mut dyn FnMut(String),
) -> Result<PathBuf> {
    let started = Instant::now();
    let (t, n) = (opts.t, opts.n);
    ShadowParams::new(t, n, FieldKind::P257, Scheme::Shamir)?;
    std::fs::create_dir_all(&opts.output).at(&opts.output)?;
    let set_dir = opts.data.join("paper256");
    let images = images_in(&set_dir, "png")?;
    if images.is_empty() {
        return Err(PaperError::Usage(format!(
            "no PNG images in {}: give --data, the directory that holds paper256/ and dicom/",
            set_dir.display()
        )));
    }
    let mut paper256 = Vec::new();
    for (field, scheme) in CONFIGS {
        let params = ShadowParams::new(t, n, field, scheme)?;
        note(format!(
            "{field} {scheme}: {} images of {}",
            images.len(),
            set_dir.display()
        ));
        for input in &images {
            let dir = opts
                .output
                .join("paper256")
                .join(format!("{field}-{scheme}"))
                .join(shadows::stem_of(input));
            // Every t-subset in GF(2^8), where the kernel makes it cheap; in
            // Z_257 the cloud placements and the check in `shadows` suffice.
            let all = field == FieldKind::Gf256 || !opts.quick;
            paper256.push(run_one(backend, opts, input, &dir, &params, all)?);
        }
    }
    let leak = constant_image_leak(backend, t, n)?;

    let mut full_resolution = Vec::new();
    let mut skipped = Vec::new();
    if !opts.quick {
        let dicom_dir = opts.data.join("dicom");
        let params = ShadowParams::new(t, n, FieldKind::Gf256, Scheme::Shamir)?;
        for input in images_in(&dicom_dir, "dcm")? {
            note(format!("full resolution: {}", input.display()));
            let dir = opts
                .output
                .join("full-resolution")
                .join(shadows::stem_of(&input));
            match run_one(backend, opts, &input, &dir, &params, false) {
                Ok(run) => full_resolution.push(run),
                Err(
                    e @ (PaperError::Colour { .. }
                    | PaperError::NotAnImage { .. }
                    | PaperError::BitDepth { .. }
                    | PaperError::Unreadable { .. }),
                ) => skipped.push(Skipped {
                    file: input
                        .file_name()
                        .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
                    error: e.to_string(),
                }),
                Err(e) => return Err(e),
            }
        }
    }

    let report = Report {
        t,
        n,
        backend: backend.describe(),
        threads: rayon::current_num_threads(),
        debug_build: cfg!(debug_assertions),
        paper256,
        leak,
        full_resolution,
        skipped,
        total_time: started.elapsed(),
    };
    let json_path = opts.output.join("report.json");
    let json = serde_json::to_string_pretty(&report).expect("report serialises");
    std::fs::write(&json_path, json + "\n").at(&json_path)?;
    let md_path = opts.output.join("REPORT.md");
    std::fs::write(&md_path, markdown(&report, opts)).at(&md_path)?;
    Ok(md_path)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, c) = v.fold((0.0, 0usize), |(s, c), x| (s + x, c + 1));
    if c == 0 { f64::NAN } else { s / c as f64 }
}

fn opt4(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.4}"))
}

/// Worst (largest) |correlation| over the three directions and all shadows.
fn max_shadow_corr(set: &SetStats) -> Option<f64> {
    set.planes
        .iter()
        .skip(1)
        .flat_map(|p| [p.corr_horizontal, p.corr_vertical, p.corr_diagonal])
        .map(|c| c.map(f64::abs))
        .try_fold(0f64, |acc, c| c.map(|c| acc.max(c)))
}

fn min_shadow_p(set: &SetStats) -> f64 {
    set.planes
        .iter()
        .skip(1)
        .map(|p| p.p_value)
        .fold(1.0, f64::min)
}

fn mean_pairs(set: &SetStats) -> (f64, f64) {
    (
        mean(set.pairs.iter().map(|p| p.npcr_percent)),
        mean(set.pairs.iter().map(|p| p.uaci_percent)),
    )
}

fn config_runs(runs: &[Run], field: FieldKind, scheme: Scheme) -> Vec<&Run> {
    runs.iter()
        .filter(|r| r.field == field && r.scheme == scheme)
        .collect()
}

fn markdown(r: &Report, opts: &ReproduceOptions) -> String {
    let (t, n) = (r.t, r.n);
    let mut md = String::new();
    let p = |md: &mut String, s: &str| {
        md.push_str(s);
        md.push('\n');
    };
    p(&mut md, "# umbra reproduces Marwan et al. (2019)\n");
    p(
        &mut md,
        &format!(
            "\"Improving the Security of Cloud-based Medical Image Storage\" shares medical \
             images with a ({t}, {n}) threshold over p = 257, shows the shadow images and the \
             recovered image (its Fig. 8-14), and argues security from the shadows' histograms \
             (Fig. 15-16). This report runs that experiment with umbra.\n\n\
             Command: `umbra reproduce -o {}{}` (data from `{}`). Backend {}, {} thread(s), \
             {} build; total {:.1} s. Every time below is wall-clock: the GF(2^8) splits run \
             on the backend named here (`--backend gpu` for the GPU's times), the p = 257 \
             arithmetic and the statistics on the CPU.{}\n",
            opts.output.display(),
            if opts.quick { " --quick" } else { "" },
            opts.data.display(),
            r.backend,
            r.threads,
            if r.debug_build {
                "debug (unoptimised)"
            } else {
                "release"
            },
            r.total_time.as_secs_f64(),
            if r.debug_build {
                " **Debug build: times are far slower than a release build's.**"
            } else {
                ""
            }
        ),
    );
    p(
        &mut md,
        "The six 256x256 images are stand-ins built from the bundled DICOM corpus, not the \
         paper's images (there is no mammogram or spine study among them; see \
         `datasets/README.md`). No number from the paper is quoted here: the left column \
         states what the paper claims or shows, the right one what umbra measured.\n",
    );

    // Claims.
    let ps = config_runs(&r.paper256, FieldKind::P257, Scheme::Shamir);
    let gs = config_runs(&r.paper256, FieldKind::Gf256, Scheme::Shamir);
    let tl: Vec<&Run> = r
        .paper256
        .iter()
        .filter(|x| x.scheme == Scheme::ThienLin)
        .collect();
    let subsets_line = |v: &[&Run]| {
        let c: usize = v.iter().map(|x| x.subsets_checked).sum();
        let tot: usize = v.iter().map(|x| x.subsets_total).sum();
        format!("{c} of {tot}")
    };
    let clouds = n / 2;
    let need = t.div_ceil(2);
    p(&mut md, "## The paper's claims beside umbra's numbers\n");
    p(
        &mut md,
        "| the paper | umbra, on the 256x256 set |\n|---|---|",
    );
    p(
        &mut md,
        &format!(
            "| ({t}, {n}) threshold over p = 257: any {t} of the {n} shadows recover the image | \
             p257 Shamir: every image recovered pixel for pixel from shadows {:?} read back from \
             the PNG files, and from every set of {need} clouds (below); all t-subsets: {}{}. \
             gf256 Shamir: the same, all t-subsets: {}. |",
            ps.first()
                .map(|x| x.recovered_from.clone())
                .unwrap_or_default(),
            subsets_line(&ps),
            if opts.quick {
                " (in Z_257 only without --quick, where they take longer)"
            } else {
                ""
            },
            subsets_line(&gs)
        ),
    );
    p(
        &mut md,
        &format!(
            "| Shadows are images of the original's size | p257: {} shadow pixels per image, but \
             share values run 0..=256 (257 values do not fit a byte), so they are stored as \
             16-bit PNG: {} bytes of samples per shadow for a {}-byte image ({}x the storage, \
             {}x over {n} shadows). gf256: same size and depth, {} bytes per shadow. |",
            ps.first().map_or(0, |x| x.shadow_width * x.shadow_height),
            ps.first().map_or(0, |x| x.shadow_bytes),
            ps.first().map_or(0, |x| x.original_bytes),
            ps.first()
                .map_or(0, |x| x.shadow_bytes / x.original_bytes.max(1)),
            ps.first()
                .map_or(0, |x| x.shadow_bytes * n as u64 / x.original_bytes.max(1)),
            gs.first().map_or(0, |x| x.shadow_bytes)
        ),
    );
    let flat = |v: &[&Run]| {
        let min_p = v.iter().map(|x| min_shadow_p(&x.stats)).fold(1.0, f64::min);
        let ent = mean(
            v.iter()
                .flat_map(|x| x.stats.planes.iter().skip(1).map(|p| p.entropy_bits)),
        );
        let corr = v
            .iter()
            .filter_map(|x| max_shadow_corr(&x.stats))
            .fold(0.0, f64::max);
        (min_p, ent, corr)
    };
    let (pp, pe, pc) = flat(&ps);
    let (gp, ge, gc) = flat(&gs);
    let (tp, te, tc) = flat(&tl);
    let max_image_corr = |v: &[&Run]| {
        v.iter()
            .filter_map(|x| x.max_corr_with_image)
            .fold(0.0, f64::max)
    };
    let shamir: Vec<&Run> = ps.iter().chain(&gs).copied().collect();
    let (shi, tli) = (max_image_corr(&shamir), max_image_corr(&tl));
    p(
        &mut md,
        &format!(
            "| The shadows' histograms are flat, so the shadows reveal nothing (Fig. 15-16) | \
             Shamir shadows are uniform: smallest chi-square p-value over all {} shadows {} \
             (p257), {} (gf256), where {} independent uniform shadows give a smallest p-value of \
             1/{} = {:.3} on average, and one below 0.001 {:.0} % of the time; mean entropy {pe:.4} bits of log2(257) = 8.0056 (p257), \
             {ge:.4} of 8 (gf256); largest adjacent-pixel correlation {pc:.4} / {gc:.4}. A flat \
             histogram is necessary, not sufficient: Thien-Lin shadows (below) leak although \
             each looks like noise; their smallest p-value is {}, mean entropy {te:.4}, \
             largest correlation {tc:.4}. The decisive number: a single shadow's correlation \
             with the image it hides is at most {shi:.4} under Shamir, but up to {tli:.4} under \
             Thien-Lin. |",
            ps.len() * n,
            show_p(pp),
            show_p(gp),
            ps.len() * n,
            ps.len() * n + 1,
            1.0 / (ps.len() * n + 1) as f64,
            (1.0 - 0.999f64.powi((ps.len() * n) as i32)) * 100.0,
            show_p(tp)
        ),
    );
    let tl_g = config_runs(&r.paper256, FieldKind::Gf256, Scheme::ThienLin);
    p(
        &mut md,
        &format!(
            "| Section VII: t pixels as the coefficients of one polynomial (Thien-Lin) make \
             shadows 1/t the size | {}x{} shadow pixels for a 256x256 image: 1/{t} of the pixels; \
             lossless in both fields (every byte recovered, no clipping of values above 250 as \
             in the mod-251 original). What the paper does not show: any t-1 Thien-Lin shadows \
             leak (next sections). |",
            tl_g.first().map_or(0, |x| x.shadow_width),
            tl_g.first().map_or(0, |x| x.shadow_height)
        ),
    );
    let cloud_total: usize = r
        .paper256
        .iter()
        .map(|x| x.cloud_sets_checked)
        .sum::<usize>();
    p(
        &mut md,
        &format!(
            "| 2 shadows on each of {clouds} clouds; an attacker must breach {t} shadows | What \
             the paper leaves out: the threshold counts shadows, not clouds. Any {need} clouds \
             together hold {} shadows and rebuild the image: umbra checked every set of {need} \
             clouds for every image and configuration ({cloud_total} recoveries, all pixel for \
             pixel identical). With this placement the real threshold is {need} of {clouds} \
             providers, and losing {} clouds loses the image. Put one shadow per provider, or \
             count providers when you choose t. |",
            2 * need,
            clouds - need + 1
        ),
    );
    p(
        &mut md,
        &format!(
            "| Recovery is exact | {} of {} runs recovered bit for bit from PNG files on disk \
             (the command fails otherwise). |\n",
            r.paper256.len(),
            r.paper256.len()
        ),
    );

    // Per configuration.
    p(&mut md, "## The 256x256 set\n");
    for (field, scheme) in CONFIGS {
        let runs = config_runs(&r.paper256, field, scheme);
        if runs.is_empty() {
            continue;
        }
        let title = match (field, scheme) {
            (FieldKind::P257, Scheme::Shamir) => "p257, Shamir (the paper's scheme)",
            (FieldKind::Gf256, Scheme::Shamir) => "gf256, Shamir (umbra's scheme)",
            (FieldKind::P257, Scheme::ThienLin) => "p257, Thien-Lin (the paper's section VII)",
            (FieldKind::Gf256, Scheme::ThienLin) => "gf256, Thien-Lin",
        };
        p(&mut md, &format!("### {title}\n"));
        if scheme == Scheme::ThienLin {
            p(
                &mut md,
                &format!("> **Warning:** {}\n", shadows::THIEN_LIN_WARNING),
            );
        }
        p(
            &mut md,
            "| image | shadow | read ms | split ms | write PNGs ms | recover+check ms | stats ms \
             | figures ms | t-subsets | cloud sets | shadow entropy (mean) | min p-value | max \
             abs corr. | max abs corr. with image | NPCR % | UACI % |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        );
        for x in &runs {
            let (npcr, uaci) = mean_pairs(&x.stats);
            p(
                &mut md,
                &format!(
                    "| {} | {}x{}, {}-bit | {} | {} | {} | {} | {} | {} | {} / {} | {} | {:.4} | \
                     {} | {} | {} | {npcr:.3} | {uaci:.3} |",
                    x.image,
                    x.shadow_width,
                    x.shadow_height,
                    x.shadow_bits,
                    ms(x.times.read),
                    ms(x.times.split),
                    ms(x.times.write),
                    ms(x.times.recover),
                    ms(x.stats_time),
                    ms(x.figure_time),
                    x.subsets_checked,
                    x.subsets_total,
                    x.cloud_sets_checked,
                    mean(x.stats.planes.iter().skip(1).map(|p| p.entropy_bits)),
                    show_p(min_shadow_p(&x.stats)),
                    opt4(max_shadow_corr(&x.stats)),
                    opt4(x.max_corr_with_image),
                ),
            );
        }
        if let Some(first) = runs.first() {
            let (i_npcr, i_uaci) = (
                first.stats.ideal_npcr_percent.unwrap_or(f64::NAN),
                first.stats.ideal_uaci_percent.unwrap_or(f64::NAN),
            );
            p(
                &mut md,
                &format!(
                    "\nNPCR and UACI are means over the {} pairs of shadows; independent uniform \
                     planes give {i_npcr:.3} % and {i_uaci:.3} %. Full tables per shadow are in \
                     `report.json` and below each figure's directory (`shadows.json`).\n",
                    first.stats.pairs.len()
                ),
            );
        }
        for x in &runs {
            p(
                &mut md,
                &format!(
                    "#### {} ({field}, {scheme})\n\n![{} shadows]({})\n\n![{} histograms]({})\n",
                    x.image, x.image, x.montage, x.image, x.histograms
                ),
            );
            p(&mut md, &stats::planes_markdown(&x.stats.planes));
        }
    }

    // Leak.
    p(&mut md, "## Thien-Lin leaks: a constant image\n");
    p(
        &mut md,
        &format!(
            "A 256x256 image of one grey value (100), shared ({t}, {n}). Statistics of shadow 1 \
             alone: under Shamir a single shadow is uniform noise whatever the image; under \
             Thien-Lin every group of {t} equal pixels gives the same polynomial, so the shadow \
             is constant and tells its holder that the image is flat (and, with its x, which \
             values are possible). On real images the same effect keeps edges and flat areas \
             visible in the Thien-Lin montages above, and shows as high adjacent-pixel \
             correlation and as the correlation of single shadows with the image (column \
             \"max abs corr. with image\": the image's bytes for Shamir, the mean of each group \
             of t bytes for Thien-Lin).\n"
        ),
    );
    p(
        &mut md,
        "| field | scheme | distinct values in shadow 1 | entropy (bits) | chi-square p-value \
         | corr. horiz. |\n|---|---|---|---|---|---|",
    );
    for l in &r.leak {
        p(
            &mut md,
            &format!(
                "| {} | {} | {} | {:.4} | {} | {} |",
                l.field,
                l.scheme,
                l.distinct_values,
                l.shadow.entropy_bits,
                show_p(l.shadow.p_value),
                opt4(l.shadow.corr_horizontal)
            ),
        );
    }
    md.push('\n');

    // Full resolution.
    p(&mut md, "## Full-resolution DICOM images (gf256, Shamir)\n");
    if opts.quick {
        p(
            &mut md,
            "Skipped (`--quick`). Run without it for every image in `dicom/`.\n",
        );
    } else {
        p(
            &mut md,
            "Samples as stored in the file (no rescale, window or inversion; MONOCHROME1 \
             inversion and a min-max stretch only in the montage's display), 16-bit samples \
             shared as two bytes; multi-frame objects as their frames stacked top to bottom. \
             Recovered pixel for pixel from the last t shadow PNGs; cloud sets as above. \
             \"split\" is computing the shadows in memory, buffer conversions included.\n",
        );
        p(
            &mut md,
            "| image | size | read ms | split ms | write PNGs ms | recover+check ms | stats ms | \
             figures ms | split MB/s | cloud sets | min p-value | NPCR % | UACI % |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|",
        );
        for x in &r.full_resolution {
            let (npcr, uaci) = mean_pairs(&x.stats);
            let mbs = x.original_bytes as f64 / x.times.split.as_secs_f64().max(1e-9) / 1e6;
            p(
                &mut md,
                &format!(
                    "| {} | {}x{}, {}-bit | {} | {} | {} | {} | {} | {} | {mbs:.0} | {} | {} | \
                     {npcr:.3} | {uaci:.3} |",
                    x.image,
                    x.width,
                    x.height,
                    x.bits,
                    ms(x.times.read),
                    ms(x.times.split),
                    ms(x.times.write),
                    ms(x.times.recover),
                    ms(x.stats_time),
                    ms(x.figure_time),
                    x.cloud_sets_checked,
                    show_p(min_shadow_p(&x.stats)),
                ),
            );
        }
        if !r.skipped.is_empty() {
            p(&mut md, "\nNot shared as images, with umbra's error:\n");
            for s in &r.skipped {
                p(&mut md, &format!("- `{}`: {}", s.file, s.error));
            }
        }
        md.push('\n');
        for x in &r.full_resolution {
            p(
                &mut md,
                &format!(
                    "### {}\n\n![{} shadows]({})\n\n![{} histograms]({})\n",
                    x.image, x.image, x.montage, x.image, x.histograms
                ),
            );
            p(&mut md, &stats::planes_markdown(&x.stats.planes));
        }
    }

    p(&mut md, "## How to read this\n");
    p(
        &mut md,
        "- Entropy is in bits per sample over the plane's alphabet (256, 257 or 65,536 values); \
         chi-square tests uniformity over that alphabet, and its p-value is P(X >= chi-square) \
         (regularized incomplete gamma). Small p-values (below 0.001) mean \"not uniform\".\n\
         - Correlation: Pearson over every pair of horizontally, vertically or diagonally \
         adjacent pixels.\n\
         - NPCR: percentage of positions where two shadows differ; UACI: their mean absolute \
         difference as a percentage of the largest value.\n\
         - p257 shadows are 16-bit PNGs whose values run 0..=256; the montages scale them to 8 \
         bits for display only.\n\
         - `report.json` holds every number of this report.",
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_complete() {
        assert_eq!(subsets(8, 4).len(), 70);
        assert_eq!(subsets(4, 2).len(), 6);
        assert_eq!(subsets(3, 3), vec![vec![0, 1, 2]]);
    }
}
