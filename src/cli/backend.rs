//! The backend policy: which backend a job of a given size runs on, per
//! `--backend` and `--cross-check`, and how a GPU that fails hands over.

use std::path::Path;

use anyhow::Context;
use clap::ValueEnum;

use umbra::engine::{Backend, CpuBackend, CrossCheck, Fallback};
use umbra::gpu::{AdapterChoice, GpuBackend};
use umbra::kernel::Level;

use super::ui::Ui;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendChoice {
    Auto,
    Cpu,
    Gpu,
}

/// Under `--backend auto`, jobs at least this large go to a hardware GPU if
/// there is one: below it, starting the device costs more than it saves.
/// The environment variable UMBRA_AUTO_GPU_MIN_BYTES changes it.
pub(crate) const AUTO_GPU_MIN_BYTES: u64 = 256 << 20;

pub(crate) fn auto_gpu_min_bytes() -> u64 {
    std::env::var("UMBRA_AUTO_GPU_MIN_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(AUTO_GPU_MIN_BYTES)
}

/// Opens a GPU with the driver's own stderr lines silenced (Mesa prints
/// "XDG_RUNTIME_DIR is invalid" whenever a Vulkan instance is made, which a
/// cron job must not see); umbra's own messages about the outcome still
/// go out. Nothing else runs while a backend is chosen.
///
/// A hardware-only probe (the `auto` policy) on Linux first looks for a GPU
/// device node ([`umbra::gpu::gpu_device_node`]): on a server with none it
/// answers at once, without loading every installed Vulkan driver to find
/// only a software one it would refuse.
pub(crate) fn open_gpu(choice: AdapterChoice) -> Result<GpuBackend, umbra::gpu::GpuError> {
    #[cfg(target_os = "linux")]
    if choice == AdapterChoice::HardwareOnly
        && umbra::gpu::gpu_device_node(Path::new("/dev")).is_none()
    {
        return Err(umbra::gpu::GpuError::NoDeviceNode { dev: "/dev".into() });
    }
    #[cfg(target_os = "linux")]
    {
        let saved = rustix::io::dup(rustix::stdio::stderr()).ok();
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .ok();
        if let (Some(_), Some(null)) = (&saved, &null) {
            let _ = rustix::stdio::dup2_stderr(null);
        }
        let gpu = GpuBackend::new(choice);
        if let Some(saved) = saved {
            let _ = rustix::stdio::dup2_stderr(&saved);
        }
        gpu
    }
    #[cfg(not(target_os = "linux"))]
    {
        GpuBackend::new(choice)
    }
}

impl Ui {
    /// The backend for a job of `job_bytes`, per --backend and --cross-check.
    pub(crate) fn backend(&self, job_bytes: u64) -> anyhow::Result<Box<dyn Backend>> {
        let cpu =
            || -> anyhow::Result<Box<dyn Backend>> { Ok(Box::new(CpuBackend::new(self.level)?)) };
        let (primary, on_gpu): (Box<dyn Backend>, bool) = match self.backend {
            BackendChoice::Cpu => (cpu()?, false),
            BackendChoice::Gpu => {
                let gpu = open_gpu(AdapterChoice::Any).context("--backend gpu")?;
                (Box::new(gpu), true)
            }
            BackendChoice::Auto if job_bytes < auto_gpu_min_bytes() => (cpu()?, false),
            BackendChoice::Auto => match open_gpu(AdapterChoice::HardwareOnly) {
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
            match open_gpu(AdapterChoice::Any) {
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

/// The size of a job on one file, for the backend choice (0 if unreadable:
/// the command itself then names the file).
pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
