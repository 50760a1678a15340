//! The two storage schemes of umbra on the paper's files: Shamir (n times
//! the data, perfect secrecy) and the compact scheme (encrypt, disperse,
//! share the key: about n/t times, computational secrecy; docs/DESIGN.md
//! section 8). Each file is split into real share files with the same
//! pipeline as `umbra split`, combined back from t of them and compared
//! byte for byte, and each share's payload gets the statistics the paper
//! applies to its shadows. An all-zero file shows that the shares of the
//! most regular input are still uniform noise under both schemes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::{AtPath, PaperError, Result};
use super::figures;
use super::image_io::GrayImage;
use super::stats::{PlaneStats, SetStats};
use crate::engine::Backend;
use crate::share::format::SchemeKind;
use crate::share::reader::ShareSource;
use crate::sharing::{SplitPlan, Threshold, default_xs};
use crate::stream::combine::{CombineOptions, CombineTarget, combine_files};
use crate::stream::split::{SplitOptions, SplitSecrets, split_file};

/// Bytes of the all-zero file.
pub const ZERO_FILE_BYTES: usize = 1 << 20;

/// One file stored under one scheme.
#[derive(Debug, Serialize)]
pub struct SchemeRun {
    pub scheme: SchemeKind,
    /// The file's name, or "all-zero file".
    pub file: String,
    pub dir: String,
    pub source_bytes: u64,
    /// One share file (header and segment table included).
    pub share_bytes: u64,
    /// Clouds of the paper's placement: 2 shares on each of n/2.
    pub clouds: usize,
    pub bytes_per_cloud: u64,
    pub total_bytes: u64,
    /// Total stored over the source.
    pub storage_factor: f64,
    #[serde(serialize_with = "secs")]
    pub split_time: Duration,
    #[serde(serialize_with = "secs")]
    pub combine_time: Duration,
    /// The x of the t shares it was combined from (byte-identical).
    pub combined_from: Vec<u8>,
    /// The source's bytes, then each share's payload, as 8-bit planes of
    /// 256 bytes per row.
    pub stats: SetStats,
    pub histograms: String,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Bytes as an 8-bit plane of 256 bytes per row (a shorter one is one row);
/// a last partial row is left out.
fn plane(bytes: &[u8]) -> GrayImage {
    let width = bytes.len().clamp(1, 256);
    let height = (bytes.len() / width).max(1);
    let samples: Vec<u16> = bytes
        .iter()
        .take(width * height)
        .map(|&b| u16::from(b))
        .chain(std::iter::repeat(0))
        .take(width * height)
        .collect();
    GrayImage::new(width as u32, height as u32, 8, samples)
}

fn stats_of(name: &str, bytes: &[u8], path: &Path) -> Result<PlaneStats> {
    PlaneStats::compute(name, &plane(bytes), 256).map_err(|reason| PaperError::BadShadow {
        path: path.to_path_buf(),
        reason,
    })
}

/// Splits `input` into `out/rel_dir` with `scheme` and `threshold`,
/// combines it back from the last t shares, checks the bytes, and takes the
/// statistics of every share's payload. The directory must not hold shares
/// of an earlier run.
pub fn run_scheme(
    backend: &dyn Backend,
    input: &Path,
    label: &str,
    out: &Path,
    rel_dir: String,
    threshold: Threshold,
    scheme: SchemeKind,
) -> Result<SchemeRun> {
    let (t, n) = (threshold.t(), threshold.n());
    let dir = out.join(&rel_dir);
    std::fs::create_dir_all(&dir).at(&dir)?;
    let plan = SplitPlan::new(threshold, default_xs(n))?;
    let opts = SplitOptions::new(plan).with_scheme(scheme);
    let secrets = SplitSecrets::from_os().map_err(|e| PaperError::Random(e.to_string()))?;

    let clock = Instant::now();
    let split = split_file(backend, input, &dir, &opts, &secrets, &mut |_| {})?;
    let split_time = clock.elapsed();

    let pick: Vec<PathBuf> = split.shares[n - t..].to_vec();
    let recovered = dir.join("recovered");
    let clock = Instant::now();
    combine_files(
        backend,
        &pick,
        &CombineTarget::File(recovered.clone()),
        &CombineOptions::default(),
        &mut |_| {},
    )?;
    let combine_time = clock.elapsed();
    let source = std::fs::read(input).at(input)?;
    let back = std::fs::read(&recovered).at(&recovered)?;
    let xs: Vec<u8> = (n - t..n).map(|i| opts.plan.xs()[i]).collect();
    if back != source {
        let at = back.iter().zip(&source).position(|(a, b)| a != b);
        return Err(PaperError::FileMismatch {
            path: input.to_path_buf(),
            xs,
            offset: at.unwrap_or(back.len().min(source.len())),
        });
    }
    // The rebuilt copy is the patient's data again: not kept.
    std::fs::remove_file(&recovered).at(&recovered)?;

    let mut planes = vec![stats_of("source", &source, input)?];
    let mut share_bytes = 0;
    for (path, x) in split.shares.iter().zip(opts.plan.xs()) {
        let share = ShareSource::open(path)?;
        share_bytes = std::fs::metadata(path).at(path)?.len();
        let mut payload = vec![0u8; share.header.payload_len as usize];
        share
            .read_verified(0, &mut payload)
            .map_err(|reason| PaperError::BadShadow {
                path: path.clone(),
                reason,
            })?;
        planes.push(stats_of(&format!("share {x}"), &payload, path)?);
    }
    let clouds = n / 2;
    let hist = dir.join("histograms.png");
    let stats = SetStats {
        name: format!("{label} ({scheme})"),
        source: input.to_path_buf(),
        field: Some("gf256".into()),
        scheme: Some(scheme.to_string()),
        t: Some(t),
        n: Some(n),
        planes,
        pairs: Vec::new(),
        ideal_npcr_percent: None,
        ideal_uaci_percent: None,
        histogram_figure: format!("{rel_dir}/histograms.png"),
    };
    figures::histogram_figure(&hist, &stats)?;
    let total = share_bytes * n as u64;
    Ok(SchemeRun {
        scheme,
        file: label.to_string(),
        histograms: stats.histogram_figure.clone(),
        dir: rel_dir,
        source_bytes: source.len() as u64,
        share_bytes,
        clouds,
        bytes_per_cloud: share_bytes * 2,
        total_bytes: total,
        storage_factor: total as f64 / (source.len().max(1)) as f64,
        split_time,
        combine_time,
        combined_from: xs,
        stats,
    })
}

/// Both schemes on each of `inputs` and on an all-zero file of
/// [`ZERO_FILE_BYTES`], under `out/schemes/` (emptied first: it holds only
/// what this function writes).
pub fn run_all(
    backend: &dyn Backend,
    out: &Path,
    inputs: &[PathBuf],
    t: usize,
    n: usize,
) -> Result<Vec<SchemeRun>> {
    let root = out.join("schemes");
    if root.exists() {
        std::fs::remove_dir_all(&root).at(&root)?;
    }
    std::fs::create_dir_all(&root).at(&root)?;
    let zeros = root.join("all-zero.bin");
    std::fs::write(&zeros, vec![0u8; ZERO_FILE_BYTES]).at(&zeros)?;
    let mut files: Vec<(PathBuf, String)> = inputs
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
            (p.clone(), name)
        })
        .collect();
    files.push((zeros.clone(), "all-zero file".into()));
    let threshold = Threshold::new(t, n)?;
    let mut runs = Vec::new();
    for (path, label) in &files {
        for scheme in [SchemeKind::Shamir, SchemeKind::Compact] {
            let rel = format!("schemes/{scheme}/{}", label.replace(' ', "-"));
            runs.push(run_scheme(
                backend, path, label, out, rel, threshold, scheme,
            )?);
        }
    }
    std::fs::remove_file(&zeros).at(&zeros)?;
    Ok(runs)
}
