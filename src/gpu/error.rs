//! Why the GPU backend could not start or finish a job, and how that reads

//! to the engine: as [`EngineError::Gpu`].

use crate::engine::EngineError;

/// Why the GPU backend could not start or finish a job.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no {wanted} GPU adapter with compute shaders found (adapters seen: {seen}); \
         for software Vulkan install mesa-vulkan-drivers and libvulkan1"
    )]
    NoAdapter { wanted: &'static str, seen: String },
    #[error("no GPU device node in {dev} (dri/renderD*, dri/card*, nvidia*, dxg, kgsl-3d0, mali*)")]
    NoDeviceNode { dev: String },
    #[error("requesting a device on {adapter} failed: {message}")]
    RequestDevice { adapter: String, message: String },
    #[error("shader {shader} failed to compile: {message}")]
    ShaderCompile { shader: String, message: String },
    #[error("GPU device lost during a job ({0}); the job's outputs are incomplete")]
    DeviceLost(String),
    #[error("GPU out of memory during a job ({0}); the job's outputs are incomplete")]
    OutOfMemory(String),
    #[error("GPU job failed ({0}); the job's outputs are incomplete")]
    Job(String),
    #[error("a {rows} x {cols} matrix is larger than 255 x 255")]
    MatrixTooLarge { rows: usize, cols: usize },
    #[error(
        "{streams} streams of one 64-byte block do not fit the device's \
         {binding_bytes}-byte storage binding"
    )]
    TooManyStreams { streams: usize, binding_bytes: u64 },
}

impl From<GpuError> for EngineError {
    fn from(e: GpuError) -> Self {
        EngineError::Gpu(e.to_string())
    }
}
