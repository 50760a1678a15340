//! The GPU backend: split, combine and repair as WGSL compute shaders on
//! wgpu, bit for bit the same as [`CpuBackend`](crate::engine::CpuBackend).
//!
//! - Split uploads only the secret: the coefficient streams come from the
//!   ChaCha20 keystream computed on the GPU (`shaders/split.wgsl`, twin of
//!   `src/keystream.rs`) from the key held in a uniform, then one matrix pass
//!   (`shaders/apply.wgsl`, twin of `src/kernel/`) evaluates the n shares,
//!   and only those come back.
//! - Combine and repair upload their t input streams and run the same matrix
//!   pass with Lagrange weights.
//!
//! Byte streams are packed 4 per u32, little-endian (WGSL has no u8). A job
//! is cut into slices that respect the device's limits (storage binding and
//! buffer size, 65,535 workgroups per grid dimension): all input streams of
//! a slice share one buffer, all outputs another. A slice holds pieces: runs
//! of whole 64-byte keystream blocks of one object, so an offset that is not
//! a multiple of 64 (or of 4) only moves where the data sits in its first
//! block, tails are padded with zeros, a large object spans several slices,
//! and many small objects ([`GpuBackend::split_batch`],
//! [`GpuBackend::apply_batch`]) share one dispatch.
//!
//! Two slots of buffers rotate: while the GPU works on slice k, the host
//! fills the upload staging buffer of slice k+1 and reads back slice k-1.
//! Device, pipelines and buffers are built once and reused; buffers only
//! grow when a job needs larger slices.
//!
//! Faults: a device lost, an out-of-memory or validation error reported by
//! wgpu, or a failed buffer mapping ends the job with a [`GpuError`], which
//! the [`Backend`] methods turn into [`EngineError::Gpu`]; outputs are then
//! not to be used (the error says so), and the buffers are rebuilt on the
//! next job.
//!
//! Keys: the key bytes go only into the piece table, a uniform buffer read
//! by the keystream pass; they are never logged, the host copy is wiped,
//! and the uniform is overwritten with zeros after each split. wgpu's own
//! staging copy behind `Queue::write_buffer` is freed by wgpu, not wiped.

#![forbid(unsafe_code)]

mod device;
mod plan;
mod run;
pub mod shaders;
mod slots;
mod timing;

use std::sync::{Arc, Mutex};

use crate::engine::EngineError;

pub use crate::engine::SplitJob;
pub use timing::PhaseTimes;

/// Default slice size: bytes of each stream per dispatch (before the
/// device's limits cap it).
pub const DEFAULT_MAX_SLICE_BYTES: usize = 32 << 20;

/// Bytes of one keystream block; slices are whole blocks.
const BLOCK_BYTES: usize = 64;

/// Which adapters [`GpuBackend::new`] may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdapterChoice {
    /// A hardware GPU only; software rasterisers (device type Cpu, such as
    /// Mesa's llvmpipe) are refused.
    HardwareOnly,
    /// The best adapter there is, hardware preferred, software accepted.
    Any,
}

/// Why the GPU backend could not start or finish a job.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no {wanted} GPU adapter with compute shaders found (adapters seen: {seen}); \
         for software Vulkan install mesa-vulkan-drivers and libvulkan1"
    )]
    NoAdapter { wanted: &'static str, seen: String },
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

/// One object of [`GpuBackend::apply_batch`].
pub struct ApplyJob<'a> {
    /// One stream per matrix column, all of one length.
    pub inputs: Vec<&'a [u8]>,
    /// One stream per matrix row, as long as the inputs.
    pub outputs: Vec<&'a mut [u8]>,
}

/// The GPU backend: one device, its pipelines and reusable buffers.
pub struct GpuBackend {
    info: wgpu::AdapterInfo,
    device: wgpu::Device,
    queue: wgpu::Queue,
    layout: wgpu::BindGroupLayout,
    split_pipeline: wgpu::ComputePipeline,
    apply_pipeline: wgpu::ComputePipeline,
    matrix: wgpu::Buffer,
    limits: wgpu::Limits,
    max_slice_bytes: usize,
    faults: Arc<device::Faults>,
    /// One job at a time; `None` until the first job, and after a failure.
    slots: Mutex<Option<slots::Slots>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
