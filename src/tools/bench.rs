//! `umbra bench`: throughput of split and combine per backend and size, on
//! synthetic CT-like data in memory. Figures are GB/s of secret (10^9 bytes
//! per second); the median of the timed runs is reported.

use std::time::{Duration, Instant};

use crate::buffer::AlignedBuf;
use crate::engine::Backend;
use crate::error::Result;
use crate::keystream::ObjectKey;
use crate::sharing::{SplitPlan, Threshold, combine_matrix, default_xs};
use crate::tools::synthetic;

/// An image or volume size from the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchSize {
    pub name: &'static str,
    pub width: usize,
    pub height: usize,
    pub slices: usize,
    pub bytes_per_sample: usize,
}

impl BenchSize {
    /// Bytes of one image or volume of this size.
    pub fn bytes(&self) -> usize {
        self.width * self.height * self.slices * self.bytes_per_sample
    }
}

/// Sizes `umbra bench` runs by default; [`LARGE`] only when asked.
pub const SIZES: [BenchSize; 4] = [
    BenchSize {
        name: "256x256 8-bit",
        width: 256,
        height: 256,
        slices: 1,
        bytes_per_sample: 1,
    },
    BenchSize {
        name: "512x512 16-bit",
        width: 512,
        height: 512,
        slices: 1,
        bytes_per_sample: 2,
    },
    BenchSize {
        name: "2048x2048 16-bit",
        width: 2048,
        height: 2048,
        slices: 1,
        bytes_per_sample: 2,
    },
    BenchSize {
        name: "512x512x300 16-bit",
        width: 512,
        height: 512,
        slices: 300,
        bytes_per_sample: 2,
    },
];

/// A 2 GiB volume (512x512x4096 16-bit): with its 8 shares it needs about
/// 20 GiB of memory, so it runs only on request (`--large`).
pub const LARGE: BenchSize = BenchSize {
    name: "512x512x4096 16-bit (2 GiB)",
    width: 512,
    height: 512,
    slices: 4096,
    bytes_per_sample: 2,
};

/// One measured figure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub backend: String,
    pub operation: String,
    pub size: String,
    pub bytes: usize,
    pub runs: usize,
    pub median_seconds: f64,
    pub gb_per_s: f64,
    /// GPU end to end only: the same job run phase by phase, each waited for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phases_ms: Option<Phases>,
}

impl BenchResult {
    /// A row: `bytes` of secret through `operation` in `median_seconds`.
    pub fn new(
        backend: String,
        operation: String,
        size: &str,
        bytes: usize,
        runs: usize,
        median_seconds: f64,
    ) -> Self {
        Self {
            backend,
            operation,
            size: size.to_string(),
            bytes,
            runs,
            median_seconds,
            gb_per_s: bytes as f64 / median_seconds / 1e9,
            phases_ms: None,
        }
    }
}

/// Where a GPU job's time goes, in milliseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Phases {
    pub upload: f64,
    pub compute: f64,
    pub download: f64,
}

/// What `umbra bench` measures, and for how long.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub threshold: Threshold,
    /// Least time spent timing each (backend, operation, size).
    pub min_time: Duration,
    pub min_runs: usize,
}

/// The data for one size: 8-bit sizes take the high byte of each 16-bit sample.
pub fn bench_data(size: &BenchSize) -> Vec<u8> {
    let wide = synthetic::ct_volume(size.width, size.height, size.slices);
    if size.bytes_per_sample == 2 {
        wide
    } else {
        wide.chunks_exact(2)
            .map(|s| (u16::from_le_bytes([s[0], s[1]]) >> 4) as u8)
            .collect()
    }
}

fn time_runs(config: &BenchConfig, mut run: impl FnMut() -> Result<()>) -> Result<(usize, f64)> {
    run()?; // warm-up: page faults, kernel caches, GPU pipelines
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < config.min_runs || start.elapsed() < config.min_time {
        let t0 = Instant::now();
        run()?;
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times.len(), times[times.len() / 2]))
}

/// Times split (t, n) and combine (t shares) of `data` on `backend`.
pub fn bench_one(
    backend: &dyn Backend,
    config: &BenchConfig,
    size_name: &str,
    data: &[u8],
) -> Result<Vec<BenchResult>> {
    let threshold = config.threshold;
    let plan = SplitPlan::new(threshold, default_xs(threshold.n()))?;
    let key = ObjectKey::generate().map_err(|e| crate::Error::Random(e.to_string()))?;
    let mut shares: Vec<AlignedBuf> = (0..threshold.n())
        .map(|_| AlignedBuf::zeroed(data.len()))
        .collect();
    let (runs, secs) = time_runs(config, || {
        let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(|s| &mut s[..]).collect();
        backend.split(&plan, &key, 0, data, &mut refs)?;
        Ok(())
    })?;
    let mut results = vec![BenchResult::new(
        backend.describe(),
        format!("split ({},{})", threshold.t(), threshold.n()),
        size_name,
        data.len(),
        runs,
        secs,
    )];

    let t = threshold.t();
    let matrix = combine_matrix(&plan.xs()[..t])?;
    let inputs: Vec<&[u8]> = shares[..t].iter().map(|s| &s[..]).collect();
    let mut out = AlignedBuf::zeroed(data.len());
    let (runs, secs) = time_runs(config, || {
        backend.apply(&matrix, &inputs, &mut [&mut out])?;
        Ok(())
    })?;
    if out[..] != data[..] {
        return Err(crate::Error::Mismatch {
            detail: format!(
                "{}: combine did not give back the secret in the benchmark",
                backend.describe()
            ),
        });
    }
    results.push(BenchResult::new(
        backend.describe(),
        format!("combine (t={t})"),
        size_name,
        data.len(),
        runs,
        secs,
    ));
    results.extend(bench_compact(
        backend, config, size_name, data, &plan, &key,
    )?);
    Ok(results)
}

/// Times the compact scheme's split and combine of `data` as one stream,
/// in blocks of t segments of the default compact segment size.
fn bench_compact(
    backend: &dyn Backend,
    config: &BenchConfig,
    size_name: &str,
    data: &[u8],
    plan: &SplitPlan,
    key: &ObjectKey,
) -> Result<Vec<BenchResult>> {
    let threshold = plan.threshold();
    let (t, n) = (threshold.t(), threshold.n());
    let seg = crate::share::format::compact_segment_size(t) as usize;
    let plen = crate::share::format::compact_payload_len(data.len() as u64, t, seg as u32) as usize;
    let mut shares: Vec<AlignedBuf> = (0..n).map(|_| AlignedBuf::zeroed(plen)).collect();
    let (runs, secs) = time_runs(config, || {
        let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(|s| &mut s[..]).collect();
        crate::engine::compact::disperse_stream(backend, plan, key, seg, 0, data, &mut refs)?;
        Ok(())
    })?;
    let mut results = vec![BenchResult::new(
        backend.describe(),
        format!("split compact ({t},{n})"),
        size_name,
        data.len(),
        runs,
        secs,
    )];
    // From the last t shares: every share is a different row.
    let xs = &plan.xs()[n - t..];
    let inverse = crate::sharing::Matrix::vandermonde_inverse(xs)?;
    let mut out = AlignedBuf::zeroed(data.len());
    let ins: Vec<&[u8]> = shares[n - t..].iter().map(|s| &s[..]).collect();
    let (runs, secs) = time_runs(config, || {
        crate::engine::compact::undisperse_stream(backend, &inverse, key, seg, 0, &ins, &mut out)?;
        Ok(())
    })?;
    if out[..] != data[..] {
        return Err(crate::Error::Mismatch {
            detail: format!(
                "{}: compact combine did not give back the secret in the benchmark",
                backend.describe()
            ),
        });
    }
    results.push(BenchResult::new(
        backend.describe(),
        format!("combine compact (t={t})"),
        size_name,
        data.len(),
        runs,
        secs,
    ));
    Ok(results)
}

/// GPU figures for one size: the kernel alone with data resident on the GPU,
/// and where an end-to-end job's time goes. The end-to-end figure itself
/// comes from [`bench_one`] on the same backend.
pub fn bench_gpu_extra(
    gpu: &crate::gpu::GpuBackend,
    config: &BenchConfig,
    size_name: &str,
    data: &[u8],
) -> Result<Vec<BenchResult>> {
    let gpu_err = |e: crate::gpu::GpuError| crate::Error::Engine(e.into());
    let threshold = config.threshold;
    let t = threshold.t();
    let plan = SplitPlan::new(threshold, default_xs(threshold.n()))?;
    let matrix = combine_matrix(&plan.xs()[..t])?;
    let key = ObjectKey::generate().map_err(|e| crate::Error::Random(e.to_string()))?;
    let len = data.len();
    // About 1 GiB of resident work per figure on hardware; little on software.
    let reps = if gpu.is_software() {
        3
    } else {
        ((1usize << 30) / len.max(1)).clamp(3, 1000) as u32
    };
    let kernel_split = gpu.kernel_time_split(&plan, len, reps).map_err(gpu_err)?;
    let kernel_apply = gpu.kernel_time_apply(&matrix, len, reps).map_err(gpu_err)?;

    let mut shares: Vec<AlignedBuf> = (0..threshold.n())
        .map(|_| AlignedBuf::zeroed(len))
        .collect();
    let mut refs: Vec<&mut [u8]> = shares.iter_mut().map(|s| &mut s[..]).collect();
    let split_phases = gpu
        .split_timed(&plan, &key, 0, data, &mut refs)
        .map_err(gpu_err)?;
    let inputs: Vec<&[u8]> = shares[..t].iter().map(|s| &s[..]).collect();
    let mut out = AlignedBuf::zeroed(len);
    let apply_phases = gpu
        .apply_timed(&matrix, &inputs, &mut [&mut out])
        .map_err(gpu_err)?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let phases = |p: &crate::gpu::PhaseTimes| Phases {
        upload: ms(p.upload),
        compute: ms(p.compute),
        download: ms(p.download),
    };
    let row = |operation: String, secs: f64, runs: usize, p: Option<Phases>| BenchResult {
        phases_ms: p,
        ..BenchResult::new(gpu.describe(), operation, size_name, len, runs, secs)
    };
    Ok(vec![
        row(
            format!("split ({},{}) kernel only", t, threshold.n()),
            kernel_split.as_secs_f64() / reps as f64,
            reps as usize,
            None,
        ),
        row(
            format!("split ({},{}) phase by phase", t, threshold.n()),
            split_phases.total().as_secs_f64(),
            1,
            Some(phases(&split_phases)),
        ),
        row(
            format!("combine (t={t}) kernel only"),
            kernel_apply.as_secs_f64() / reps as f64,
            reps as usize,
            None,
        ),
        row(
            format!("combine (t={t}) phase by phase"),
            apply_phases.total().as_secs_f64(),
            1,
            Some(phases(&apply_phases)),
        ),
    ])
}

/// A Markdown table of results.
pub fn markdown_table(results: &[BenchResult]) -> String {
    let mut s = String::from(
        "| backend | operation | size | bytes | runs | median s | GB/s | upload / compute / download ms |\n\
         |---|---|---|---:|---:|---:|---:|---|\n",
    );
    for r in results {
        let phases = r.phases_ms.map_or(String::new(), |p| {
            format!("{:.3} / {:.3} / {:.3}", p.upload, p.compute, p.download)
        });
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.6} | {:.2} | {} |\n",
            r.backend, r.operation, r.size, r.bytes, r.runs, r.median_seconds, r.gb_per_s, phases
        ));
    }
    s
}

/// A share sink that keeps nothing: for streaming benchmarks that measure
/// the pipeline (read, split, hash) without the disk.
#[derive(Default)]
pub struct Discard {
    pos: u64,
}

impl std::io::Write for Discard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for Discard {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        if let std::io::SeekFrom::Start(p) = to {
            self.pos = p;
        }
        Ok(self.pos)
    }
}

/// Result of a streaming split benchmark.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamResult {
    pub backend: String,
    pub bytes: u64,
    pub seconds: f64,
    pub gb_per_s: f64,
    /// Peak resident set size of the process (VmHWM), where the OS reports it.
    pub peak_rss_bytes: Option<u64>,
}

/// Streams `bytes` of synthetic CT volume through the file-split pipeline
/// (envelope, split, per-segment hashing, tag) into discarding sinks.
pub fn stream_split(
    backend: &dyn Backend,
    threshold: Threshold,
    bytes: u64,
) -> Result<StreamResult> {
    use crate::share::writer::ShareWriter;
    use crate::stream::split::{SplitOptions, SplitSecrets, split_stream};
    let plan = SplitPlan::new(threshold, default_xs(threshold.n()))?;
    let opts = SplitOptions::new(plan.clone());
    let secrets = SplitSecrets::from_os()?;
    let meta = crate::share::envelope::ObjectMeta {
        name: b"synthetic-volume.raw".to_vec(),
        content_type: "application/octet-stream".into(),
        content_len: bytes,
    };
    let prefix =
        meta.encode_prefix(&secrets.check_key)
            .map_err(|error| crate::Error::Envelope {
                path: "synthetic".into(),
                error,
            })?;
    let mut writers: Vec<ShareWriter<Discard>> = plan
        .xs()
        .iter()
        .map(|&x| {
            let header = opts.share_header(x, meta.stream_len(), &secrets);
            ShareWriter::new(Discard::default(), header).expect("discard never fails")
        })
        .collect();
    let mut reader = crate::tools::synthetic::VolumeReader::new(512, 512, bytes);
    let start = Instant::now();
    split_stream(
        backend,
        &opts,
        &secrets,
        &prefix,
        &mut reader,
        bytes,
        &mut writers,
        &mut |_| {},
    )
    .map_err(|e| {
        e.into_error(
            std::path::Path::new("<synthetic volume>"),
            std::path::Path::new("<discard>"),
        )
    })?;
    let seconds = start.elapsed().as_secs_f64();
    Ok(StreamResult {
        backend: backend.describe(),
        bytes,
        seconds,
        gb_per_s: bytes as f64 / seconds / 1e9,
        peak_rss_bytes: peak_rss(),
    })
}

/// VmHWM from /proc/self/status, in bytes.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
