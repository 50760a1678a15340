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
//! 4. umbra's two storage schemes, Shamir and compact, on the files of the
//!    256x256 set (and unless `quick` every DICOM file) and on an all-zero
//!    file: bytes per share, per cloud and in total, split and combine time,
//!    and the statistics of every share ([`super::schemes`]).
//!
//! Times are wall-clock on the CPU backend of the machine that ran it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::{AtPath, PaperError, Result};
use super::figures::{self, Tile};
use super::image_io::GrayImage;
use super::shadows::{
    self, FieldKind, KeySource, Scheme, ShadowOutput, ShadowParams, StepTimes, recover,
};
use super::stats::{PlaneStats, SetStats};
use super::stats_report;
use crate::engine::Backend;
use crate::keystream::ObjectKey;
use crate::sharing::combinations;

/// What `umbra reproduce` runs: where, on which data, (t, n), how much.
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
    let total = combinations(n, t).count();
    if all_subsets {
        for pick in combinations(n, t) {
            check_subset(backend, params, &out, &pick)?;
            checked += 1;
        }
    }
    // 2 shares on each of n/2 clouds: any ceil(t/2) clouds hold t shares.
    let clouds = n / 2;
    let need = t.div_ceil(2);
    let mut cloud_sets = 0;
    if clouds >= need {
        for set in combinations(clouds, need) {
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
    let set = stats_report::set_stats(dir, &name)?;
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
    /// Shamir and compact on the same files.
    pub schemes: Vec<super::schemes::SchemeRun>,
    #[serde(serialize_with = "secs")]
    pub total_time: Duration,
}

/// Runs the experiment, writing shadows and figures under `opts.output`,
/// and returns what [`report::write`](super::report::write) makes REPORT.md
/// of.
pub fn reproduce(
    backend: &dyn Backend,
    opts: &ReproduceOptions,
    note: &mut dyn FnMut(String),
) -> Result<Report> {
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

    note("storage schemes: Shamir and compact on the same files".into());
    let mut scheme_inputs = images.clone();
    if !opts.quick {
        scheme_inputs.extend(images_in(&opts.data.join("dicom"), "dcm")?);
    }
    let schemes = super::schemes::run_all(backend, &opts.output, &scheme_inputs, t, n)?;

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
        schemes,
        total_time: started.elapsed(),
    };
    Ok(report)
}
