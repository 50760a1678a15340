//! Argument parsing and the commands. Errors are anyhow here; the library's
//! typed errors already name the file or share at fault.

mod archive;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use umbra::sharing::SplitPlan;

use umbra::engine::{Backend, CpuBackend, CrossCheck, Fallback};
use umbra::gpu::{AdapterChoice, GpuBackend};
use umbra::kernel::Level;
use umbra::keystream::ObjectKey;
use umbra::paper::reproduce::{self, ReproduceOptions};
use umbra::paper::shadows::{self, FieldKind, KeySource, Scheme, ShadowParams};
use umbra::share::format as share_file;
use umbra::sharing::{self, Threshold};
use umbra::stream::combine::{self, CombineOptions, CombineTarget};
use umbra::stream::gfshare;
use umbra::stream::split::{self, ShareNaming, SplitOptions, SplitSecrets};
use umbra::tools::bench::{self, BenchConfig, SIZES};

/// Inputs at least this large get a progress bar (on a terminal); the
/// environment variable UMBRA_PROGRESS_MIN_BYTES changes it.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

fn progress_min_bytes() -> u64 {
    std::env::var("UMBRA_PROGRESS_MIN_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PROGRESS_MIN_BYTES)
}

#[derive(Parser)]
#[command(
    name = "umbra",
    version,
    about = "Threshold secret sharing (Shamir over GF(2^8)) for medical image archives",
    long_about = "Splits files into n shares so that any t of them rebuild the file bit for bit \
                  and any t-1 reveal nothing but its length. Shares carry BLAKE3 hashes that name \
                  a bad share, and a keyed tag that proves the rebuilt object.",
    propagate_version = true
)]
struct Cli {
    /// No progress bars and no notes on stderr (errors are still printed).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Say which backend runs, and more.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// CPU SIMD level: portable, ssse3, avx2, avx2-gfni, avx512-gfni, neon.
    /// Can lower the level; asking for one the CPU lacks is an error.
    #[arg(long, global = true, env = "UMBRA_SIMD", value_name = "LEVEL")]
    simd: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, global = true, env = "UMBRA_THREADS", value_name = "N")]
    threads: Option<usize>,
    /// Where share arithmetic runs. auto: a hardware GPU for large jobs when
    /// there is one, else the CPU (never a software adapter); gpu: the best
    /// adapter there is, software included (an error if none); cpu: SIMD on
    /// all cores.
    #[arg(long, global = true, env = "UMBRA_BACKEND", value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    /// Compute with both backends (CPU and GPU; or the CPU's SIMD level and
    /// its portable path when there is no GPU) from the same key, and fail
    /// at the first differing byte.
    #[arg(long, global = true)]
    cross_check: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Split files into n share files each; any t rebuild a file.
    Split(SplitArgs),
    /// Rebuild a file from t or more of its shares.
    Combine(CombineArgs),
    /// Rebuild a lost or corrupt share from t good ones, without the source.
    Repair(RepairArgs),
    /// Print share headers and check each share's own hashes.
    Inspect(InspectArgs),
    /// Measure split and combine throughput per backend and size.
    Bench(BenchArgs),
    /// Write a synthetic CT-like volume to try umbra on large files.
    ///
    /// Raw 16-bit little-endian slices, the data `umbra bench` uses; the same
    /// arguments always give the same bytes.
    SynthVolume(SynthVolumeArgs),
    /// Shadow images of grayscale images, as in the paper.
    ///
    /// Reads PNG, TIFF, PGM and DICOM; writes n shadow PNGs per image and the
    /// image recovered from t of them, checked pixel for pixel.
    Shadows(ShadowsArgs),
    /// Statistics and histograms of images and shadows.
    ///
    /// Histograms, entropy, chi-square, adjacent-pixel correlation, NPCR and
    /// UACI of images and of `umbra shadows` directories.
    Stats(StatsArgs),
    /// Run the paper's experiment on the bundled images and write REPORT.md.
    Reproduce(ReproduceArgs),
    /// Create an archive: umbra.toml, empty catalog, site key, local stores.
    Init(archive::InitArgs),
    /// Archive configuration.
    #[command(subcommand)]
    Config(archive::ConfigCmd),
    /// Protect a source's new and changed objects: split each into the stores.
    Migrate(archive::MigrateArgs),
    /// Rebuild archived objects from any t reachable stores.
    Restore(archive::RestoreArgs),
    /// Check every share in every store (--deep: rebuild every object).
    Verify(archive::VerifyArgs),
    /// Rebuild the archive's missing or corrupt shares from t good ones.
    ArchiveRepair(archive::ArchiveRepairArgs),
    /// The archive's hash-chained audit log.
    #[command(subcommand)]
    Audit(archive::AuditCmd),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendChoice {
    Auto,
    Cpu,
    Gpu,
}

/// Under `--backend auto`, jobs at least this large go to a hardware GPU if
/// there is one: below it, starting the device costs more than it saves.
/// The environment variable UMBRA_AUTO_GPU_MIN_BYTES changes it.
const AUTO_GPU_MIN_BYTES: u64 = 256 << 20;

fn auto_gpu_min_bytes() -> u64 {
    std::env::var("UMBRA_AUTO_GPU_MIN_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(AUTO_GPU_MIN_BYTES)
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// umbra share files (header, hashes, integrity tag; the file name travels inside).
    Umbra,
    /// Bare libgfshare files NAME.xxx, readable by gfcombine; no integrity.
    Gfshare,
}

#[derive(Args)]
struct SplitArgs {
    /// Threshold: shares needed to rebuild.
    #[arg(short, long, default_value_t = 4)]
    t: usize,
    /// Number of shares to write.
    #[arg(short, long, default_value_t = 8)]
    n: usize,
    /// Share coordinates, comma-separated (default 1..n).
    #[arg(long, value_delimiter = ',', value_name = "X,...")]
    xs: Option<Vec<u8>>,
    /// Directory for the share files (created if missing).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// Share file format.
    #[arg(long, value_enum, default_value_t = Format::Umbra)]
    format: Format,
    /// Name shares by their random split id instead of the input's name,
    /// so that a share's name reveals nothing (umbra format only).
    #[arg(long)]
    anonymous: bool,
    /// Payload bytes per hashed segment (a power of two from 4096 to 64 MiB).
    #[arg(long, default_value_t = share_file::DEFAULT_SEGMENT_SIZE, value_name = "BYTES")]
    segment_size: u32,
    /// Overwrite existing share files.
    #[arg(long)]
    force: bool,
    /// fsync each share before it is renamed into place.
    #[arg(long)]
    sync: bool,
    /// Files to split.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Args)]
struct CombineArgs {
    /// Output file, or an existing directory to restore the original name into.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Share file format.
    #[arg(long, value_enum, default_value_t = Format::Umbra)]
    format: Format,
    /// Overwrite an existing output.
    #[arg(long)]
    force: bool,
    /// fsync the output before it is renamed into place.
    #[arg(long)]
    sync: bool,
    /// Shares of one split: at least t; extra ones stand in for bad ones.
    #[arg(required = true, value_name = "SHARE")]
    shares: Vec<PathBuf>,
}

#[derive(Args)]
struct RepairArgs {
    /// The x of the share to rebuild.
    #[arg(long, value_name = "X")]
    x: u8,
    /// Output share file (default: beside the first share, named for x).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Overwrite an existing output.
    #[arg(long)]
    force: bool,
    /// At least t good shares of the same split.
    #[arg(required = true, value_name = "SHARE")]
    shares: Vec<PathBuf>,
}

#[derive(Args)]
struct InspectArgs {
    /// One JSON object per share, as a JSON array.
    #[arg(long)]
    json: bool,
    #[arg(required = true, value_name = "SHARE")]
    shares: Vec<PathBuf>,
}

#[derive(Args)]
struct SynthVolumeArgs {
    /// Output file (refused if it exists, unless --force).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Number of slices (512x512 16-bit slices are 512 KiB each).
    #[arg(long, default_value_t = 300)]
    slices: usize,
    #[arg(long, default_value_t = 512)]
    width: usize,
    #[arg(long, default_value_t = 512)]
    height: usize,
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[arg(short, long, default_value_t = 4)]
    t: usize,
    #[arg(short, long, default_value_t = 8)]
    n: usize,
    /// Every SIMD level this CPU has, not only the chosen one.
    #[arg(long)]
    all_levels: bool,
    /// Only sizes whose name contains this text (e.g. "256x256").
    #[arg(long, value_name = "TEXT")]
    size: Option<String>,
    /// Least seconds of timing per figure.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    min_time: f64,
    /// Also the 2 GiB volume (512x512x4096 16-bit; needs about 20 GiB of memory).
    #[arg(long)]
    large: bool,
    /// Instead, stream this much synthetic CT volume (e.g. 10GiB) through the
    /// whole file-split pipeline (split, segment hashes, tag) into discarding
    /// sinks, and report GB/s and peak memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    stream: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FieldArg {
    /// GF(2^8), lossless, shadows of the original's size and depth.
    Gf256,
    /// Z_257, the paper's field; shadows are 16-bit PNGs (values 0..=256).
    P257,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SchemeArg {
    /// Random coefficients: t-1 shadows reveal nothing.
    Shamir,
    /// t pixels as the coefficients: shadows 1/t the size, but t-1 of them leak.
    ThienLin,
}

#[derive(Args)]
struct ShadowsArgs {
    /// Threshold: shadows needed to recover.
    #[arg(short, long, default_value_t = 4)]
    t: usize,
    /// Number of shadows.
    #[arg(short, long, default_value_t = 8)]
    n: usize,
    /// Output directory; each image gets a subdirectory named after it with
    /// shadow-XXX.png, shadows.json, and original.png and recovered.png: the
    /// image itself, so hand out only the shadow files.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// Field of the arithmetic.
    #[arg(long, value_enum, default_value_t = FieldArg::Gf256)]
    field: FieldArg,
    /// Sharing scheme.
    #[arg(long, value_enum, default_value_t = SchemeArg::Shamir)]
    scheme: SchemeArg,
    /// 8- or 16-bit grayscale PNG, TIFF, PGM/PNM or DICOM files.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
}

#[derive(Args)]
struct StatsArgs {
    /// Output directory for stats.md, stats.json and histograms/.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// Sample values of the given image files (default 2^bits; 257 for p257
    /// shadows). Shadow directories carry their own.
    #[arg(long, value_name = "N")]
    levels: Option<u32>,
    /// Directories written by `umbra shadows`, or image files.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
}

#[derive(Args)]
struct ReproduceArgs {
    /// Output directory for REPORT.md and its figures.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// The corpus: a directory with paper256/ and dicom/.
    #[arg(long, value_name = "DIR", default_value = "datasets")]
    data: PathBuf,
    /// Only the 256x256 set, not the full-resolution DICOM images.
    #[arg(long)]
    quick: bool,
    /// Threshold (the paper's is 4).
    #[arg(short, long, default_value_t = 4)]
    t: usize,
    /// Number of shadows (the paper's is 8, two on each of four clouds).
    #[arg(short, long, default_value_t = 8)]
    n: usize,
}

/// "10GiB", "256MiB", "5GB", "4096" -> bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 10GiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s} is too large"))
}

pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(threads) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("could not start the worker threads")?;
    }
    let level = match &cli.simd {
        Some(name) => Level::parse(name)?.checked()?,
        None => Level::detect(),
    };
    let ui = Ui {
        quiet: cli.quiet,
        verbose: cli.verbose,
        level,
        backend: cli.backend,
        cross_check: cli.cross_check,
    };
    match &cli.command {
        Command::Split(a) => split_cmd(&ui, a),
        Command::Combine(a) => combine_cmd(&ui, a),
        Command::Repair(a) => repair_cmd(&ui, a),
        Command::Inspect(a) => inspect_cmd(a),
        Command::Bench(a) => bench_cmd(&ui, a),
        Command::SynthVolume(a) => synth_volume_cmd(a),
        Command::Shadows(a) => shadows_cmd(&ui, a),
        Command::Stats(a) => stats_cmd(&ui, a),
        Command::Reproduce(a) => reproduce_cmd(&ui, a),
        Command::Init(a) => archive::init_cmd(&ui, a),
        Command::Config(c) => archive::config_cmd(c),
        Command::Migrate(a) => archive::migrate_cmd(&ui, a),
        Command::Restore(a) => archive::restore_cmd(&ui, a),
        Command::Verify(a) => archive::verify_cmd(&ui, a),
        Command::ArchiveRepair(a) => archive::archive_repair_cmd(&ui, a),
        Command::Audit(c) => archive::audit_cmd(&ui, c),
    }
}

struct Ui {
    quiet: bool,
    verbose: bool,
    level: Level,
    backend: BackendChoice,
    cross_check: bool,
}

impl Ui {
    fn note(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("umbra: {msg}");
        }
    }

    fn info(&self, msg: impl std::fmt::Display) {
        if self.verbose && !self.quiet {
            eprintln!("umbra: {msg}");
        }
    }

    /// A byte progress bar for inputs worth waiting for, on a terminal only.
    fn progress(&self, total: u64, label: &str) -> ProgressBar {
        if self.quiet || total < progress_min_bytes() || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        bar
    }
}

impl Ui {
    /// The backend for a job of `job_bytes`, per --backend and --cross-check.
    fn backend(&self, job_bytes: u64) -> anyhow::Result<Box<dyn Backend>> {
        let cpu =
            || -> anyhow::Result<Box<dyn Backend>> { Ok(Box::new(CpuBackend::new(self.level)?)) };
        let (primary, on_gpu): (Box<dyn Backend>, bool) = match self.backend {
            BackendChoice::Cpu => (cpu()?, false),
            BackendChoice::Gpu => {
                let gpu = GpuBackend::new(AdapterChoice::Any).context("--backend gpu")?;
                (Box::new(gpu), true)
            }
            BackendChoice::Auto if job_bytes < auto_gpu_min_bytes() => (cpu()?, false),
            BackendChoice::Auto => match GpuBackend::new(AdapterChoice::HardwareOnly) {
                // A GPU that fails mid-job hands its work to the CPU.
                Ok(gpu) => {
                    let quiet = self.quiet;
                    let warn = move |e: &umbra::engine::EngineError| {
                        if !quiet {
                            eprintln!("umbra: warning: {e}; continuing on the CPU");
                        }
                    };
                    let fallback = Fallback::new(Box::new(gpu), cpu()?, Box::new(warn));
                    (Box::new(fallback) as Box<dyn Backend>, true)
                }
                Err(e) => {
                    self.info(format!("no hardware GPU ({e}); using the CPU"));
                    (cpu()?, false)
                }
            },
        };
        if !self.cross_check {
            // Asked-for GPUs are always named: the adapter may be a software one.
            let line = format!("backend: {}", primary.describe());
            if self.backend == BackendChoice::Gpu {
                self.note(line);
            } else {
                self.info(line);
            }
            return Ok(primary);
        }
        let second: Box<dyn Backend> = if on_gpu {
            cpu()?
        } else {
            match GpuBackend::new(AdapterChoice::Any) {
                Ok(gpu) => Box::new(gpu),
                Err(e) => {
                    self.note(format!(
                        "no GPU to cross-check with ({e}); checking against the portable CPU path"
                    ));
                    Box::new(CpuBackend::new(Level::Portable)?)
                }
            }
        };
        let checked = CrossCheck::new(primary, second);
        self.note(format!("backend: {}", checked.describe()));
        Ok(Box::new(checked))
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn split_cmd(ui: &Ui, a: &SplitArgs) -> anyhow::Result<ExitCode> {
    let threshold = Threshold::new(a.t, a.n)?;
    let xs = a.xs.clone().unwrap_or_else(|| sharing::default_xs(a.n));
    let plan = SplitPlan::new(threshold, xs)?;
    if !(share_file::MIN_SEGMENT_SIZE..=share_file::MAX_SEGMENT_SIZE).contains(&a.segment_size)
        || !a.segment_size.is_power_of_two()
    {
        bail!(
            "--segment-size {} is invalid: a power of two from {} to {}",
            a.segment_size,
            share_file::MIN_SEGMENT_SIZE,
            share_file::MAX_SEGMENT_SIZE
        );
    }
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("cannot create output directory {}", a.output.display()))?;
    let backend = ui.backend(a.files.iter().map(|f| file_len(f)).sum())?;
    let backend = backend.as_ref();
    let mut opts = SplitOptions::new(plan.clone());
    opts.segment_size = a.segment_size;
    opts.overwrite = a.force;
    opts.sync = a.sync;
    opts.naming = if a.anonymous {
        ShareNaming::SplitId
    } else {
        ShareNaming::InputName
    };
    let mut failures = 0;
    for input in &a.files {
        let bar = ui.progress(file_len(input), &input.display().to_string());
        let result = match a.format {
            Format::Umbra => SplitSecrets::from_os().and_then(|secrets| {
                split::split_file(backend, input, &a.output, &opts, &secrets, &mut |done| {
                    bar.set_position(done)
                })
                .map(|r| r.shares)
            }),
            Format::Gfshare => ObjectKey::generate()
                .map_err(|e| umbra::Error::Random(e.to_string()))
                .and_then(|key| {
                    gfshare::split_file(
                        backend,
                        &plan,
                        &key,
                        input,
                        &a.output,
                        a.force,
                        &mut |done| bar.set_position(done),
                    )
                }),
        };
        bar.finish_and_clear();
        match result {
            Ok(shares) => ui.info(format!(
                "{}: {} shares ({} of {} needed) in {}",
                input.display(),
                shares.len(),
                a.t,
                a.n,
                a.output.display()
            )),
            Err(e) => {
                eprintln!("umbra: error: {e}");
                failures += 1;
            }
        }
    }
    if a.format == Format::Gfshare {
        ui.note(
            "gfshare shares carry no integrity check: a damaged share gives wrong bytes silently",
        );
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn combine_cmd(ui: &Ui, a: &CombineArgs) -> anyhow::Result<ExitCode> {
    let total: u64 = a.shares.first().map_or(0, |s| file_len(s));
    let backend = ui.backend(total)?;
    let backend = backend.as_ref();
    let bar = ui.progress(total, "combine");
    match a.format {
        Format::Umbra => {
            let target = if a.output.is_dir() {
                CombineTarget::Dir(a.output.clone())
            } else {
                CombineTarget::File(a.output.clone())
            };
            let opts = CombineOptions {
                overwrite: a.force,
                sync: a.sync,
                ..CombineOptions::default()
            };
            let report = combine::combine_files(backend, &a.shares, &target, &opts, &mut |done| {
                bar.set_position(done)
            });
            bar.finish_and_clear();
            let report = report?;
            for w in &report.warnings {
                ui.note(format!("warning: {w}"));
            }
            ui.info(format!(
                "restored {} ({} bytes, {}) to {}",
                report.meta.name,
                report.meta.content_len,
                report.meta.content_type,
                report.output.display()
            ));
        }
        Format::Gfshare => {
            if a.output.is_dir() {
                bail!(
                    "{} is a directory: gfshare shares hold no file name, give -o FILE",
                    a.output.display()
                );
            }
            let result =
                gfshare::combine_files(backend, &a.shares, &a.output, a.force, &mut |done| {
                    bar.set_position(done)
                });
            bar.finish_and_clear();
            result?;
            ui.note("gfshare shares carry no integrity check: the output was not verified");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn repair_cmd(ui: &Ui, a: &RepairArgs) -> anyhow::Result<ExitCode> {
    let backend = ui.backend(a.shares.first().map_or(0, |s| file_len(s)))?;
    let output = match &a.output {
        Some(o) => o.clone(),
        None => default_repair_path(&a.shares[0], a.x),
    };
    let report = umbra::stream::repair::repair_share(
        backend.as_ref(),
        &a.shares,
        a.x,
        &output,
        &CombineOptions {
            overwrite: a.force,
            ..CombineOptions::default()
        },
    )?;
    for w in &report.warnings {
        ui.note(format!("warning: {w}"));
    }
    ui.info(format!(
        "rebuilt share x = {} as {}",
        report.x,
        report.output.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// `BASE.xxx.umbra` beside a share named that way; else `share-xxx.umbra`.
fn default_repair_path(first: &Path, x: u8) -> PathBuf {
    let name = first
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parts: Vec<&str> = name.rsplitn(3, '.').collect();
    let new_name = match parts.as_slice() {
        ["umbra", digits, base]
            if digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            umbra::share::writer::share_file_name(base, x)
        }
        _ => format!("share-{x:03}.umbra"),
    };
    first.with_file_name(new_name)
}

fn inspect_cmd(a: &InspectArgs) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::new();
    let mut json = Vec::new();
    let mut all_intact = true;
    for path in &a.shares {
        match umbra::share::inspect::inspect_share(path) {
            Ok(r) => {
                all_intact &= r.intact();
                json.push(serde_json::to_value(&r)?);
                reports.push(r);
            }
            Err(e) => {
                all_intact = false;
                json.push(serde_json::json!({
                    "path": path,
                    "header_ok": false,
                    "error": e.to_string(),
                }));
                eprintln!("umbra: error: {e}");
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for r in &reports {
            println!("{}", r.path.display());
            println!(
                "  format      umbra share v{}, field {}",
                r.version, r.field_polynomial
            );
            println!(
                "  threshold   t = {}, n = {}, this share x = {}",
                r.t, r.n, r.x
            );
            println!("  split id    {}", r.split_id);
            println!(
                "  payload     {} bytes in {} segment(s) of {} bytes",
                r.payload_len, r.segments, r.segment_size
            );
            println!("  tag         {}", r.tag);
            if r.corrupt_segments.is_empty() {
                println!("  hashes      ok (header and all segments)");
            } else {
                println!(
                    "  hashes      CORRUPT segment(s): {}",
                    r.corrupt_segments
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(if all_intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn bench_cmd(ui: &Ui, a: &BenchArgs) -> anyhow::Result<ExitCode> {
    let threshold = Threshold::new(a.t, a.n)?;
    let levels = if a.all_levels {
        Level::available()
    } else {
        vec![ui.level]
    };
    let mut cpus: Vec<Box<dyn Backend>> = Vec::new();
    for l in levels {
        cpus.push(Box::new(CpuBackend::new(l)?));
    }
    // CPU figures always; GPU figures beside them when asked (or, under
    // auto, when there is a hardware GPU).
    let gpu = match ui.backend {
        BackendChoice::Cpu => None,
        BackendChoice::Gpu => Some(GpuBackend::new(AdapterChoice::Any).context("--backend gpu")?),
        BackendChoice::Auto => GpuBackend::new(AdapterChoice::HardwareOnly).ok(),
    };
    if let Some(g) = &gpu {
        ui.note(format!("GPU: {}", g.describe()));
    }
    if let Some(bytes) = a.stream {
        let backend: &dyn Backend = match &gpu {
            Some(g) if ui.backend == BackendChoice::Gpu => g,
            _ => cpus[0].as_ref(),
        };
        let r = bench::stream_split(backend, threshold, bytes)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            println!(
                "streaming split ({},{}) of {} bytes on {}: {:.3} s, {:.2} GB/s, peak RSS {}",
                a.t,
                a.n,
                r.bytes,
                r.backend,
                r.seconds,
                r.gb_per_s,
                r.peak_rss_bytes.map_or("unknown".into(), |b| format!(
                    "{:.1} MiB",
                    b as f64 / 1048576.0
                ))
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let config = BenchConfig {
        threshold,
        min_time: Duration::from_secs_f64(a.min_time.max(0.0)),
        min_runs: 3,
    };
    let mut sizes: Vec<&bench::BenchSize> = SIZES.iter().collect();
    if a.large {
        sizes.push(&bench::LARGE);
    }
    let mut results = Vec::new();
    for size in sizes
        .into_iter()
        .filter(|s| a.size.as_ref().is_none_or(|f| s.name.contains(f.as_str())))
    {
        let data = bench::bench_data(size);
        for backend in &cpus {
            ui.info(format!("{} {}", backend.describe(), size.name));
            results.extend(bench::bench_one(
                backend.as_ref(),
                &config,
                size.name,
                &data,
            )?);
        }
        if let Some(g) = &gpu {
            ui.info(format!("{} {}", g.describe(), size.name));
            results.extend(bench::bench_one(g, &config, size.name, &data)?);
            results.extend(bench::bench_gpu_extra(g, &config, size.name, &data)?);
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print!("{}", bench::markdown_table(&results));
    }
    Ok(ExitCode::SUCCESS)
}

fn shadow_params(
    t: usize,
    n: usize,
    field: FieldArg,
    scheme: SchemeArg,
) -> anyhow::Result<ShadowParams> {
    let field = match field {
        FieldArg::Gf256 => FieldKind::Gf256,
        FieldArg::P257 => FieldKind::P257,
    };
    let scheme = match scheme {
        SchemeArg::Shamir => Scheme::Shamir,
        SchemeArg::ThienLin => Scheme::ThienLin,
    };
    Ok(ShadowParams::new(t, n, field, scheme)?)
}

fn shadows_cmd(ui: &Ui, a: &ShadowsArgs) -> anyhow::Result<ExitCode> {
    let params = shadow_params(a.t, a.n, a.field, a.scheme)?;
    if params.scheme == Scheme::ThienLin {
        ui.note(format!("warning: {}", shadows::THIEN_LIN_WARNING));
    }
    let backend = ui.backend(a.images.iter().map(|f| file_len(f)).sum())?;
    let mut failures = 0;
    shadows::shadow_images(
        backend.as_ref(),
        &a.images,
        &a.output,
        &params,
        &KeySource::Os,
        &mut |input, result| match result {
            Ok(out) => ui.info(format!(
                "{}: {} {} shadows in {}, recovered from shadows {:?} and checked pixel for pixel",
                input.display(),
                out.manifest.n,
                params.field,
                out.dir.display(),
                out.manifest.recovered_from
            )),
            Err(e) => {
                eprintln!("umbra: error: {e}");
                failures += 1;
            }
        },
    );
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn stats_cmd(ui: &Ui, a: &StatsArgs) -> anyhow::Result<ExitCode> {
    let sets = umbra::paper::stats_report::run_stats(&a.inputs, &a.output, a.levels)?;
    ui.info(format!(
        "statistics of {} input(s) in {}",
        sets.len(),
        a.output.join("stats.md").display()
    ));
    Ok(ExitCode::SUCCESS)
}

fn reproduce_cmd(ui: &Ui, a: &ReproduceArgs) -> anyhow::Result<ExitCode> {
    let backend = ui.backend(0)?;
    let opts = ReproduceOptions {
        output: a.output.clone(),
        data: a.data.clone(),
        quick: a.quick,
        t: a.t,
        n: a.n,
    };
    let report = reproduce::reproduce(backend.as_ref(), &opts, &mut |msg| ui.note(msg))?;
    ui.note(format!("report: {}", report.display()));
    Ok(ExitCode::SUCCESS)
}

fn synth_volume_cmd(a: &SynthVolumeArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    if a.width == 0 || a.height == 0 {
        bail!("--width and --height must be at least 1");
    }
    let mut pending = umbra::output::PendingFile::create(&a.output, a.force)?;
    let mut slice = Vec::new();
    for z in 0..a.slices {
        umbra::tools::synthetic::ct_slice(a.width, a.height, z, &mut slice);
        pending
            .file()
            .write_all(&slice)
            .with_context(|| format!("writing {}", a.output.display()))?;
    }
    pending.commit(a.force, false)?;
    Ok(ExitCode::SUCCESS)
}
