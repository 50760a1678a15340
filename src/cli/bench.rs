//! `bench` and `synth-volume`: throughput figures and the data behind them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use umbra::engine::{Backend, CpuBackend};
use umbra::gpu::AdapterChoice;
use umbra::kernel::Level;
use umbra::sharing::Threshold;
use umbra::tools::bench::{self, BenchConfig, SIZES};

use super::backend::BackendChoice;
use super::ui::Ui;

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    #[arg(short, long, default_value_t = 4)]
    pub(crate) t: usize,
    #[arg(short, long, default_value_t = 8)]
    pub(crate) n: usize,
    /// Every SIMD level this CPU has, not only the chosen one.
    #[arg(long)]
    pub(crate) all_levels: bool,
    /// Only sizes whose name contains this text (e.g. "256x256").
    #[arg(long, value_name = "TEXT")]
    pub(crate) size: Option<String>,
    /// Least seconds of timing per figure.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub(crate) min_time: f64,
    /// Also the 2 GiB volume (512x512x4096 16-bit; needs about 20 GiB of memory).
    #[arg(long)]
    pub(crate) large: bool,
    /// Instead, stream this much synthetic CT volume (e.g. 10GiB) through the
    /// whole file-split pipeline (split, segment hashes, tag) into discarding
    /// sinks, and report GB/s and peak memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) stream: Option<u64>,
}

#[derive(Args)]
pub(crate) struct SynthVolumeArgs {
    /// Output file (refused if it exists, unless --force).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: PathBuf,
    /// Number of slices (512x512 16-bit slices are 512 KiB each).
    #[arg(long, default_value_t = 300)]
    pub(crate) slices: usize,
    /// Slice width in pixels.
    #[arg(long, default_value_t = 512)]
    pub(crate) width: usize,
    /// Slice height in pixels.
    #[arg(long, default_value_t = 512)]
    pub(crate) height: usize,
    /// Replace the output if it is a regular file (anything else is refused).
    #[arg(long)]
    pub(crate) force: bool,
}

pub(crate) fn bench_cmd(ui: &Ui, a: &BenchArgs) -> anyhow::Result<ExitCode> {
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
        BackendChoice::Gpu => {
            Some(super::backend::open_gpu(AdapterChoice::Any).context("--backend gpu")?)
        }
        BackendChoice::Auto => super::backend::open_gpu(AdapterChoice::HardwareOnly).ok(),
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

pub(crate) fn synth_volume_cmd(a: &SynthVolumeArgs) -> anyhow::Result<ExitCode> {
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

/// "10GiB", "256MiB", "5GB", "4096" -> bytes.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
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
