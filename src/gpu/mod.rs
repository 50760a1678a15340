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

pub mod shaders;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use zeroize::Zeroize;

use crate::sharing::SplitPlan;

use crate::engine::{Backend, EngineError};
use crate::keystream::ObjectKey;
use crate::sharing::Matrix;

use shaders::PipelineSource;

/// Default slice size: bytes of each stream per dispatch (before the
/// device's limits cap it).
pub const DEFAULT_MAX_SLICE_BYTES: usize = 32 << 20;

/// Pieces at least this long are copied out of the download buffer on
/// several threads, in chunks of `COPY_CHUNK_BYTES`.
const PARALLEL_COPY_BYTES: usize = 1 << 20;
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// Bytes of one keystream block; slices are whole blocks.
const BLOCK_BYTES: usize = 64;

/// Invocations per workgroup; must match `@workgroup_size` in the shaders.
const WORKGROUP_SIZE: u32 = 64;

/// Output rows per invocation of the apply pass; must match `GROUP_ROWS` in
/// `shaders/apply.wgsl`.
const GROUP_ROWS: usize = 8;

/// Slots of buffers in rotation (double buffering).
const SLOTS: usize = 2;

/// The largest matrix: 255 x 255 entries, one u32 each.
const MATRIX_BYTES: u64 = 255 * 255 * 4;

/// Bytes of the `Params` uniform (see `shaders/bindings.wgsl`).
const PARAMS_BYTES: usize = 16;

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

/// Where the time of a job went, when run phase by phase
/// ([`GpuBackend::split_timed`], [`GpuBackend::apply_timed`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    /// Host bytes into the staging buffer and across to the device.
    pub upload: Duration,
    /// The compute passes alone, with the data resident on the device.
    pub compute: Duration,
    /// Outputs across to the host staging buffer and out into host memory.
    pub download: Duration,
    /// Slices the job was cut into.
    pub slices: usize,
}

impl PhaseTimes {
    pub fn total(&self) -> Duration {
        self.upload + self.compute + self.download
    }
}

/// Faults that wgpu reports through callbacks, checked after each wait.
#[derive(Default)]
struct Faults {
    lost: Mutex<Option<String>>,
    error: Mutex<Option<GpuError>>,
}

impl Faults {
    fn check(&self) -> Result<(), GpuError> {
        if let Some(msg) = lock(&self.lost).clone() {
            return Err(GpuError::DeviceLost(msg));
        }
        if let Some(e) = lock(&self.error).take() {
            return Err(e);
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `Params` uniform of `shaders/bindings.wgsl`, little-endian.
fn params_bytes(words: u32, rows: u32, cols: u32, pieces: u32) -> [u8; PARAMS_BYTES] {
    let mut bytes = [0u8; PARAMS_BYTES];
    for (dst, w) in bytes.chunks_exact_mut(4).zip([words, rows, cols, pieces]) {
        dst.copy_from_slice(&w.to_le_bytes());
    }
    bytes
}

enum MapState {
    Mapped,
    Pending(mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>),
}

/// One rotation slot: the buffers of one slice in flight.
struct Slot {
    params: wgpu::Buffer,
    pieces: wgpu::Buffer,
    upload: wgpu::Buffer,
    inputs: wgpu::Buffer,
    outputs: wgpu::Buffer,
    download: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    upload_map: MapState,
    /// Bytes of `pieces` that may hold keys, wiped after each split.
    pieces_used: usize,
}

/// Buffer sizes in bytes of every slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Capacity {
    upload: u64,
    inputs: u64,
    outputs: u64,
}

impl Capacity {
    fn covers(&self, other: &Capacity) -> bool {
        self.upload >= other.upload && self.inputs >= other.inputs && self.outputs >= other.outputs
    }

    fn max(&self, other: &Capacity) -> Capacity {
        Capacity {
            upload: self.upload.max(other.upload),
            inputs: self.inputs.max(other.inputs),
            outputs: self.outputs.max(other.outputs),
        }
    }
}

struct Slots {
    capacity: Capacity,
    slots: Vec<Slot>,
}

/// One object of a job: a split (key, offset, secret) or an apply (inputs),
/// and where its outputs go.
struct Object<'j, 'i, 'o> {
    /// Split only.
    key: Option<&'j ObjectKey>,
    /// Byte offset of the data in the object's shared stream (split; 0 for apply).
    offset: u64,
    /// Streams that go up: the secret for split, the inputs for apply.
    uploads: &'j [&'i [u8]],
    outputs: &'j mut [&'o mut [u8]],
    len: usize,
}

impl Object<'_, '_, '_> {
    /// Bytes before the data in its first keystream block.
    fn skip(&self) -> usize {
        (self.offset % BLOCK_BYTES as u64) as usize
    }
}

/// A run of whole blocks of one object's stream, placed in a slice.
#[derive(Debug, Clone, Copy)]
struct PieceSpec {
    object: usize,
    /// Data bytes `data_start..data_start + data_len` of the object's streams...
    data_start: usize,
    data_len: usize,
    /// ...sit at this byte of each slice row...
    at: usize,
    /// ...in blocks `slice_block..slice_block + blocks` of the slice,
    slice_block: u32,
    blocks: u32,
    /// which are keystream blocks `stream_block..` of the object.
    stream_block: u64,
}

/// Bytes of one `Piece` entry of `shaders/bindings.wgsl`.
const PIECE_BYTES: usize = 48;

/// Entries of the piece table; must match `MAX_PIECES` in the shader.
const MAX_PIECES: usize = 1024;

impl PieceSpec {
    /// The shader's `Piece`, little-endian; holds the key: wipe after use.
    fn table_entry(&self, key: Option<&ObjectKey>) -> [u8; PIECE_BYTES] {
        let mut bytes = [0u8; PIECE_BYTES];
        if let Some(key) = key {
            bytes[..32].copy_from_slice(key.expose());
        }
        bytes[32..36].copy_from_slice(&(self.stream_block as u32).to_le_bytes());
        bytes[36..40].copy_from_slice(&((self.stream_block >> 32) as u32).to_le_bytes());
        bytes[40..44].copy_from_slice(&self.slice_block.to_le_bytes());
        bytes
    }
}

/// The pieces of one slice.
#[derive(Debug, Default)]
struct SlicePlan {
    pieces: Vec<PieceSpec>,
    blocks: u32,
}

impl SlicePlan {
    fn words(&self) -> u32 {
        self.blocks * (BLOCK_BYTES / 4) as u32
    }

    fn row_bytes(&self) -> usize {
        self.blocks as usize * BLOCK_BYTES
    }
}

/// Cuts the objects into slices of at most `slice_blocks` blocks and
/// `MAX_PIECES` pieces: objects are packed one after the other, and one that
/// does not fit the rest of a slice continues in the next.
fn plan_slices(objects: &[Object<'_, '_, '_>], slice_blocks: u32) -> Vec<SlicePlan> {
    let mut slices = Vec::new();
    let mut current = SlicePlan::default();
    for (index, object) in objects.iter().enumerate() {
        if object.len == 0 {
            continue;
        }
        let skip = object.skip();
        let end = skip + object.len; // in the object's block-aligned stream
        let mut pos = 0usize; // a multiple of 64
        while pos < end {
            if current.blocks == slice_blocks || current.pieces.len() == MAX_PIECES {
                slices.push(std::mem::take(&mut current));
            }
            let free = (slice_blocks - current.blocks) as usize * BLOCK_BYTES;
            let piece_end = end.min(pos + free);
            let data_from = pos.max(skip);
            let blocks = (piece_end - pos).div_ceil(BLOCK_BYTES) as u32;
            current.pieces.push(PieceSpec {
                object: index,
                data_start: data_from - skip,
                data_len: piece_end - data_from,
                at: current.blocks as usize * BLOCK_BYTES + (data_from - pos),
                slice_block: current.blocks,
                blocks,
                stream_block: object.offset / BLOCK_BYTES as u64 + (pos / BLOCK_BYTES) as u64,
            });
            current.blocks += blocks;
            pos = piece_end.div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
        }
    }
    if !current.pieces.is_empty() {
        slices.push(current);
    }
    slices
}

/// A slice submitted and not yet read back.
struct InFlight {
    slot: usize,
    index: wgpu::SubmissionIndex,
    plan: SlicePlan,
    download: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

/// One object of [`GpuBackend::split_batch`] (the engine's job type, which
/// [`Backend::split_many`] takes too).
pub use crate::engine::SplitJob;

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
    faults: Arc<Faults>,
    /// One job at a time; `None` until the first job, and after a failure.
    slots: Mutex<Option<Slots>>,
}

fn backend_name(b: wgpu::Backend) -> &'static str {
    match b {
        wgpu::Backend::Noop => "no-op",
        wgpu::Backend::Vulkan => "Vulkan",
        wgpu::Backend::Metal => "Metal",
        wgpu::Backend::Dx12 => "DX12",
        wgpu::Backend::Gl => "OpenGL",
        wgpu::Backend::BrowserWebGpu => "WebGPU",
    }
}

fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Other => "other",
        wgpu::DeviceType::Cpu => "software",
    }
}

/// Preference among adapters: hardware first, software last.
fn device_type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 1,
        wgpu::DeviceType::Cpu => 0,
    }
}

fn describe_info(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{}, {}, {}",
        info.name,
        backend_name(info.backend),
        device_type_name(info.device_type)
    )
}

/// Workgroups for `items` invocations as a 2D grid inside the per-dimension
/// limit.
fn grid(items: u32, max_per_dim: u32) -> (u32, u32) {
    let groups = items.div_ceil(WORKGROUP_SIZE).max(1);
    let x = groups.min(max_per_dim.max(1));
    (x, groups.div_ceil(x))
}

impl GpuBackend {
    /// Opens the best adapter that `choice` allows and builds the device,
    /// the pipelines and the matrix buffer.
    pub fn new(choice: AdapterChoice) -> Result<GpuBackend, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let seen = if adapters.is_empty() {
            "none".to_string()
        } else {
            adapters
                .iter()
                .map(|a| describe_info(&a.get_info()))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let adapter = adapters
            .into_iter()
            .filter(|a| {
                a.get_downlevel_capabilities()
                    .flags
                    .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
            })
            .filter(|a| {
                choice == AdapterChoice::Any || a.get_info().device_type != wgpu::DeviceType::Cpu
            })
            .max_by_key(|a| device_type_rank(a.get_info().device_type))
            .ok_or(GpuError::NoAdapter {
                wanted: match choice {
                    AdapterChoice::HardwareOnly => "hardware",
                    AdapterChoice::Any => "hardware or software",
                },
                seen,
            })?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        if limits.max_uniform_buffer_binding_size < (MAX_PIECES * PIECE_BYTES) as u64 {
            return Err(GpuError::RequestDevice {
                adapter: describe_info(&info),
                message: format!(
                    "uniform bindings of {} bytes are too small for the {}-byte piece table",
                    limits.max_uniform_buffer_binding_size,
                    MAX_PIECES * PIECE_BYTES
                ),
            });
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("umbra"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::RequestDevice {
            adapter: describe_info(&info),
            message: e.to_string(),
        })?;

        let faults = Arc::new(Faults::default());
        {
            let faults = faults.clone();
            device.set_device_lost_callback(move |reason, message| {
                *lock(&faults.lost) = Some(format!("{reason:?}: {message}"));
            });
        }
        {
            let faults = faults.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let mut slot = lock(&faults.error);
                if slot.is_none() {
                    *slot = Some(match e {
                        wgpu::Error::OutOfMemory { .. } => GpuError::OutOfMemory(e.to_string()),
                        other => GpuError::Job(other.to_string()),
                    });
                }
            }));
        }

        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("umbra streams"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                storage(1, true),
                storage(2, false),
                storage(3, false),
                wgpu::BindGroupLayoutEntry {
                    binding: 4,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("umbra"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let split_pipeline = build_pipeline(&device, &pipeline_layout, &shaders::SPLIT_PIPELINE)?;
        let apply_pipeline = build_pipeline(&device, &pipeline_layout, &shaders::APPLY_PIPELINE)?;
        let matrix = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("umbra matrix"),
            size: MATRIX_BYTES,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let backend = GpuBackend {
            info,
            device,
            queue,
            layout,
            split_pipeline,
            apply_pipeline,
            matrix,
            limits,
            max_slice_bytes: DEFAULT_MAX_SLICE_BYTES,
            faults,
            slots: Mutex::new(None),
        };
        backend.faults.check()?;
        Ok(backend)
    }

    /// Caps the bytes of each stream per slice (rounded down to whole 64-byte
    /// blocks, at least one). Smaller slices use less memory; tests use them
    /// to cross slice boundaries cheaply.
    pub fn with_max_slice_bytes(mut self, bytes: usize) -> GpuBackend {
        self.max_slice_bytes = (bytes / BLOCK_BYTES).max(1) * BLOCK_BYTES;
        self
    }

    /// The adapter this backend runs on.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Whether the adapter is a software rasteriser (llvmpipe and the like).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Bytes of each stream per slice for a job with `streams` rows in its
    /// largest buffer: the configured cap, within the device's limits.
    pub fn slice_bytes(&self, streams: usize) -> Result<usize, GpuError> {
        let binding = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        let by_limits = binding / streams.max(1) as u64 / BLOCK_BYTES as u64 * BLOCK_BYTES as u64;
        if by_limits == 0 {
            return Err(GpuError::TooManyStreams {
                streams,
                binding_bytes: binding,
            });
        }
        Ok((self.max_slice_bytes as u64).min(by_limits) as usize)
    }

    /// Compiles a pipeline from `source` with this backend's layout, for
    /// tests of the error path; the pipeline is thrown away.
    #[doc(hidden)]
    pub fn check_compiles(&self, source: &PipelineSource) -> Result<(), GpuError> {
        let layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("umbra check"),
                bind_group_layouts: &[Some(&self.layout)],
                immediate_size: 0,
            });
        build_pipeline(&self.device, &layout, source).map(drop)
    }

    /// Destroys the device, as a lost device would be, for tests of the
    /// fault path: every later job must fail, never return partial output.
    #[doc(hidden)]
    pub fn simulate_device_loss(&self) {
        self.device.destroy();
    }

    /// Time of the compute passes of a split of `len` bytes with `plan`, the
    /// data resident on the device: one slice's passes run `reps` times in
    /// one submission (after a warm-up), scaled to `len`. For benchmarks of
    /// the kernel alone; the key is a fixed dummy.
    pub fn kernel_time_split(
        &self,
        plan: &SplitPlan,
        len: usize,
        reps: u32,
    ) -> Result<Duration, GpuError> {
        self.kernel_time(plan.matrix(), true, len, reps)
    }

    /// As [`GpuBackend::kernel_time_split`], for the apply pass alone
    /// (combine, repair).
    pub fn kernel_time_apply(
        &self,
        matrix: &Matrix,
        len: usize,
        reps: u32,
    ) -> Result<Duration, GpuError> {
        self.kernel_time(matrix, false, len, reps)
    }

    fn kernel_time(
        &self,
        matrix: &Matrix,
        split: bool,
        len: usize,
        reps: u32,
    ) -> Result<Duration, GpuError> {
        let rows = matrix.rows();
        let cols = matrix.cols();
        if rows == 0 || rows > 255 || cols > 255 {
            return Err(GpuError::MatrixTooLarge { rows, cols });
        }
        let slice_bytes = self.slice_bytes(rows.max(cols))?;
        let bytes = len.clamp(BLOCK_BYTES, slice_bytes).div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
        let blocks = (bytes / BLOCK_BYTES) as u32;
        let words = blocks * (BLOCK_BYTES / 4) as u32;
        let mut guard = lock(&self.slots);
        let need = Capacity {
            upload: (cols * bytes) as u64,
            inputs: (cols * bytes) as u64,
            outputs: (rows * bytes) as u64,
        };
        let result = (|| {
            self.ensure_slots(&mut guard, need)?;
            let slot = &guard.as_ref().expect("slots built above").slots[0];
            let mut entries = Vec::with_capacity(rows * cols * 4);
            for r in 0..rows {
                for &e in matrix.row(r) {
                    entries.extend_from_slice(&u32::from(e).to_le_bytes());
                }
            }
            self.queue.write_buffer(&self.matrix, 0, &entries);
            self.queue.write_buffer(
                &slot.params,
                0,
                &params_bytes(words, rows as u32, cols as u32, 1),
            );
            let piece = PieceSpec {
                object: 0,
                data_start: 0,
                data_len: bytes,
                at: 0,
                slice_block: 0,
                blocks,
                stream_block: 0,
            };
            self.queue
                .write_buffer(&slot.pieces, 0, &piece.table_entry(None));
            let max_dim = self.limits.max_compute_workgroups_per_dimension;
            let passes = |n: u32| {
                let mut encoder = self.encoder("umbra kernel timing");
                {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("umbra kernel timing"),
                        timestamp_writes: None,
                    });
                    pass.set_bind_group(0, &slot.bind_group, &[]);
                    for _ in 0..n {
                        if split && cols > 1 {
                            let (x, y) = grid(blocks, max_dim);
                            pass.set_pipeline(&self.split_pipeline);
                            pass.dispatch_workgroups(x, y, cols as u32 - 1);
                        }
                        let (x, y) = grid(words, max_dim);
                        pass.set_pipeline(&self.apply_pipeline);
                        pass.dispatch_workgroups(x, y, rows.div_ceil(GROUP_ROWS) as u32);
                    }
                }
                encoder.finish()
            };
            let warm = self.queue.submit([passes(1)]);
            self.wait(warm)?;
            let reps = reps.max(1);
            let started = Instant::now();
            let timed = self.queue.submit([passes(reps)]);
            self.wait(timed)?;
            let per_slice = started.elapsed() / reps;
            Ok(per_slice.mul_f64(len as f64 / bytes as f64))
        })();
        if result.is_err() {
            *guard = None;
        }
        result
    }

    /// [`Backend::split`], run phase by phase (upload, compute, download, each
    /// waited for) so that the time of each can be measured. Slower than
    /// `split`, which overlaps them; for benchmarks.
    pub fn split_timed(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        secret: &[u8],
        shares: &mut [&mut [u8]],
    ) -> Result<PhaseTimes, GpuError> {
        let mut times = PhaseTimes::default();
        let uploads = [secret];
        let mut objects = [split_object(plan, key, offset, &uploads, shares)];
        self.run(plan.matrix(), &mut objects, Some(&mut times))?;
        Ok(times)
    }

    /// [`Backend::apply`], run phase by phase; see [`GpuBackend::split_timed`].
    pub fn apply_timed(
        &self,
        matrix: &Matrix,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> Result<PhaseTimes, GpuError> {
        let mut times = PhaseTimes::default();
        let mut objects = [apply_object(matrix, inputs, outputs)];
        self.run(matrix, &mut objects, Some(&mut times))?;
        Ok(times)
    }

    /// Splits many objects with one plan, packed into shared dispatches: a
    /// series of small files costs a few dispatches, not one per file. Each
    /// job has its own key and offset; the shares are the same as
    /// [`Backend::split`] of each job alone.
    pub fn split_batch(&self, plan: &SplitPlan, jobs: &mut [SplitJob<'_>]) -> Result<(), GpuError> {
        let uploads: Vec<[&[u8]; 1]> = jobs.iter().map(|j| [j.secret]).collect();
        let mut objects: Vec<Object<'_, '_, '_>> = jobs
            .iter_mut()
            .zip(&uploads)
            .map(|(job, up)| split_object(plan, job.key, job.offset, up, &mut job.shares))
            .collect();
        self.run(plan.matrix(), &mut objects, None)
    }

    /// Applies one matrix to many objects (combine or repair of a series),
    /// packed into shared dispatches.
    pub fn apply_batch(&self, matrix: &Matrix, jobs: &mut [ApplyJob<'_>]) -> Result<(), GpuError> {
        let mut objects: Vec<Object<'_, '_, '_>> = jobs
            .iter_mut()
            .map(|job| apply_object(matrix, &job.inputs, &mut job.outputs))
            .collect();
        self.run(matrix, &mut objects, None)
    }

    fn run(
        &self,
        matrix: &Matrix,
        objects: &mut [Object<'_, '_, '_>],
        timing: Option<&mut PhaseTimes>,
    ) -> Result<(), GpuError> {
        if matrix.rows() > 255 || matrix.cols() > 255 {
            return Err(GpuError::MatrixTooLarge {
                rows: matrix.rows(),
                cols: matrix.cols(),
            });
        }
        if matrix.rows() == 0 || objects.iter().all(|o| o.len == 0) {
            return Ok(());
        }
        let mut slots = match self.slots.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                // A job panicked half way: wipe any key it left, and rebuild.
                let mut guard = poisoned.into_inner();
                self.wipe_keys(&mut guard);
                *guard = None;
                guard
            }
        };
        let result = self.run_locked(&mut slots, matrix, objects, timing);
        if objects.iter().any(|o| o.key.is_some()) {
            self.wipe_keys(&mut slots);
        }
        if result.is_err() {
            // Buffers may be left mapped or half written: start afresh.
            *slots = None;
        }
        result
    }

    /// Overwrites the piece tables (which held keys) with zeros.
    fn wipe_keys(&self, slots: &mut Option<Slots>) {
        if let Some(slots) = slots {
            let zeros = vec![0u8; MAX_PIECES * PIECE_BYTES];
            for slot in &mut slots.slots {
                if slot.pieces_used > 0 {
                    self.queue
                        .write_buffer(&slot.pieces, 0, &zeros[..slot.pieces_used]);
                    slot.pieces_used = 0;
                }
            }
            self.queue.submit([]);
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        }
    }

    fn run_locked(
        &self,
        slots: &mut Option<Slots>,
        matrix: &Matrix,
        objects: &mut [Object<'_, '_, '_>],
        mut timing: Option<&mut PhaseTimes>,
    ) -> Result<(), GpuError> {
        self.faults.check()?;
        let rows = matrix.rows();
        let cols = matrix.cols();
        let split = objects.iter().any(|o| o.key.is_some());
        let upload_rows = if split { 1 } else { cols };
        let slice_bytes = self.slice_bytes(rows.max(cols))?;
        let plans = plan_slices(objects, (slice_bytes / BLOCK_BYTES) as u32);
        let largest = plans.iter().map(SlicePlan::row_bytes).max().unwrap_or(0);
        let need = Capacity {
            upload: (upload_rows * largest) as u64,
            inputs: (cols * largest) as u64,
            outputs: (rows * largest) as u64,
        };
        self.ensure_slots(slots, need)?;
        let slots = &mut slots.as_mut().expect("slots built above").slots;

        let mut entries = Vec::with_capacity(rows * cols * 4);
        for r in 0..rows {
            for &e in matrix.row(r) {
                entries.extend_from_slice(&u32::from(e).to_le_bytes());
            }
        }
        self.queue.write_buffer(&self.matrix, 0, &entries);

        if let Some(t) = timing.as_deref_mut() {
            t.slices += plans.len();
        }
        let max_dim = self.limits.max_compute_workgroups_per_dimension;
        let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(SLOTS);
        for (k, plan) in plans.into_iter().enumerate() {
            let s = k % SLOTS;
            if in_flight.len() == SLOTS {
                let done = in_flight.pop_front().expect("a slice in flight");
                self.read_back(&slots[done.slot], done, objects)?;
            }
            let row_bytes = plan.row_bytes();
            let words = plan.words();
            let slot = &mut slots[s];

            let started = Instant::now();
            self.wait_upload_mapped(slot)?;
            {
                let up_bytes = (upload_rows * row_bytes) as u64;
                let mut view = slot
                    .upload
                    .get_mapped_range_mut(0..up_bytes)
                    .map_err(|e| GpuError::Job(format!("upload buffer: {e}")))?;
                // Mapped memory is write-only (wgpu's `WriteOnly`): every
                // byte of each row is written, padding with zeros.
                for r in 0..upload_rows {
                    let row = r * row_bytes;
                    for p in &plan.pieces {
                        let start = row + p.slice_block as usize * BLOCK_BYTES;
                        let end = start + p.blocks as usize * BLOCK_BYTES;
                        let data_at = row + p.at;
                        let data_end = data_at + p.data_len;
                        let src = objects[p.object].uploads[r];
                        view.slice(start..data_at).fill(0);
                        view.slice(data_at..data_end)
                            .copy_from_slice(&src[p.data_start..p.data_start + p.data_len]);
                        view.slice(data_end..end).fill(0);
                    }
                }
            }
            slot.upload.unmap();

            let pieces = plan.pieces.len() as u32;
            self.queue.write_buffer(
                &slot.params,
                0,
                &params_bytes(words, rows as u32, cols as u32, pieces),
            );
            if split {
                let mut table = zeroize::Zeroizing::new(vec![0u8; plan.pieces.len() * PIECE_BYTES]);
                for (entry, p) in table.chunks_exact_mut(PIECE_BYTES).zip(&plan.pieces) {
                    let mut bytes = p.table_entry(objects[p.object].key);
                    entry.copy_from_slice(&bytes);
                    bytes.zeroize();
                }
                self.queue.write_buffer(&slot.pieces, 0, &table);
                slot.pieces_used = slot.pieces_used.max(table.len());
            }

            let mut upload = self.encoder("umbra upload");
            upload.copy_buffer_to_buffer(
                &slot.upload,
                0,
                &slot.inputs,
                0,
                (upload_rows * row_bytes) as u64,
            );
            let mut compute = self.encoder("umbra compute");
            {
                let mut pass = compute.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("umbra"),
                    timestamp_writes: None,
                });
                pass.set_bind_group(0, &slot.bind_group, &[]);
                if split && cols > 1 {
                    let (x, y) = grid(plan.blocks, max_dim);
                    pass.set_pipeline(&self.split_pipeline);
                    pass.dispatch_workgroups(x, y, cols as u32 - 1);
                }
                let (x, y) = grid(words, max_dim);
                pass.set_pipeline(&self.apply_pipeline);
                pass.dispatch_workgroups(x, y, rows.div_ceil(GROUP_ROWS) as u32);
            }
            let mut download = self.encoder("umbra download");
            download.copy_buffer_to_buffer(
                &slot.outputs,
                0,
                &slot.download,
                0,
                (rows * row_bytes) as u64,
            );

            let mut download_started = started;
            let index = match timing.as_deref_mut() {
                None => self
                    .queue
                    .submit([upload.finish(), compute.finish(), download.finish()]),
                Some(t) => {
                    let i = self.queue.submit([upload.finish()]);
                    self.wait(i)?;
                    let uploaded = Instant::now();
                    t.upload += uploaded - started;
                    let i = self.queue.submit([compute.finish()]);
                    self.wait(i)?;
                    download_started = Instant::now();
                    t.compute += download_started - uploaded;
                    self.queue.submit([download.finish()])
                }
            };
            let (tx, rx) = mpsc::channel();
            slot.download.slice(0..(rows * row_bytes) as u64).map_async(
                wgpu::MapMode::Read,
                move |r| {
                    let _ = tx.send(r);
                },
            );
            let (tx, upload_rx) = mpsc::channel();
            slot.upload
                .slice(..)
                .map_async(wgpu::MapMode::Write, move |r| {
                    let _ = tx.send(r);
                });
            slot.upload_map = MapState::Pending(upload_rx);
            let flight = InFlight {
                slot: s,
                index,
                plan,
                download: rx,
            };
            match timing.as_deref_mut() {
                None => in_flight.push_back(flight),
                Some(t) => {
                    self.read_back(&slots[s], flight, objects)?;
                    t.download += download_started.elapsed();
                }
            }
        }
        while let Some(done) = in_flight.pop_front() {
            self.read_back(&slots[done.slot], done, objects)?;
        }
        self.faults.check()
    }

    fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Blocks until submission `index` has finished and its callbacks ran.
    fn wait(&self, index: wgpu::SubmissionIndex) -> Result<(), GpuError> {
        let polled = self.device.poll(wgpu::PollType::Wait {
            submission_index: Some(index),
            timeout: None,
        });
        // A lost device or an error report explains a failed wait best.
        self.faults.check()?;
        polled.map_err(|e| GpuError::Job(format!("waiting for the device: {e}")))?;
        Ok(())
    }

    /// The result of a map request whose submission has finished.
    fn map_result(
        &self,
        rx: &mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
        what: &str,
    ) -> Result<(), GpuError> {
        let result = match rx.try_recv() {
            Ok(r) => r,
            Err(_) => {
                self.device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .map_err(|e| GpuError::Job(format!("waiting for the device: {e}")))?;
                self.faults.check()?;
                rx.recv()
                    .map_err(|_| GpuError::Job(format!("{what}: mapping never completed")))?
            }
        };
        result.map_err(|e| GpuError::Job(format!("{what}: mapping failed: {e}")))
    }

    fn wait_upload_mapped(&self, slot: &mut Slot) -> Result<(), GpuError> {
        if let MapState::Pending(rx) = &slot.upload_map {
            self.map_result(rx, "upload staging buffer")?;
            slot.upload_map = MapState::Mapped;
        }
        Ok(())
    }

    /// Waits for a slice and copies its outputs into place.
    fn read_back(
        &self,
        slot: &Slot,
        done: InFlight,
        objects: &mut [Object<'_, '_, '_>],
    ) -> Result<(), GpuError> {
        self.wait(done.index)?;
        self.map_result(&done.download, "download staging buffer")?;
        let row_bytes = done.plan.row_bytes();
        {
            let rows = objects.first().map_or(0, |o| o.outputs.len());
            let view = slot
                .download
                .get_mapped_range(0..(rows * row_bytes) as u64)
                .map_err(|e| GpuError::Job(format!("download buffer: {e}")))?;
            let view: &[u8] = &view;
            for p in &done.plan.pieces {
                let outputs = &mut objects[p.object].outputs;
                let copy = |(out, row): (&mut &mut [u8], &[u8])| {
                    let dst = &mut out[p.data_start..p.data_start + p.data_len];
                    let src = &row[p.at..p.at + p.data_len];
                    if p.data_len >= PARALLEL_COPY_BYTES {
                        dst.par_chunks_mut(COPY_CHUNK_BYTES)
                            .zip(src.par_chunks(COPY_CHUNK_BYTES))
                            .for_each(|(d, s)| d.copy_from_slice(s));
                    } else {
                        dst.copy_from_slice(src);
                    }
                };
                // n share rows of a large slice are n times the secret: one
                // core cannot copy them out as fast as the link brings them.
                if p.data_len >= PARALLEL_COPY_BYTES {
                    outputs
                        .par_iter_mut()
                        .zip(view.par_chunks_exact(row_bytes))
                        .for_each(copy);
                } else {
                    outputs
                        .iter_mut()
                        .zip(view.chunks_exact(row_bytes))
                        .for_each(copy);
                }
            }
        }
        slot.download.unmap();
        Ok(())
    }

    /// Builds (or grows) the rotation slots to at least `need`.
    fn ensure_slots(&self, slots: &mut Option<Slots>, need: Capacity) -> Result<(), GpuError> {
        if let Some(s) = slots.as_ref()
            && s.capacity.covers(&need)
        {
            return Ok(());
        }
        let capacity = slots.as_ref().map_or(need, |s| s.capacity.max(&need));
        // Drop the old buffers first, so that peak memory is one set.
        *slots = None;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let built: Vec<Slot> = (0..SLOTS).map(|i| self.build_slot(i, capacity)).collect();
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::OutOfMemory(format!(
                "allocating {} bytes of buffers: {e}",
                SLOTS as u64 * (capacity.upload + capacity.inputs + 2 * capacity.outputs)
            )));
        }
        *slots = Some(Slots {
            capacity,
            slots: built,
        });
        Ok(())
    }

    fn build_slot(&self, i: usize, cap: Capacity) -> Slot {
        let buffer = |what: &str, size: u64, usage: wgpu::BufferUsages, mapped: bool| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&format!("umbra slot {i} {what}")),
                size,
                usage,
                mapped_at_creation: mapped,
            })
        };
        use wgpu::BufferUsages as U;
        let params = buffer(
            "params",
            PARAMS_BYTES as u64,
            U::UNIFORM | U::COPY_DST,
            false,
        );
        let pieces = buffer(
            "pieces",
            (MAX_PIECES * PIECE_BYTES) as u64,
            U::UNIFORM | U::COPY_DST,
            false,
        );
        let upload = buffer("upload", cap.upload, U::MAP_WRITE | U::COPY_SRC, true);
        let inputs = buffer("inputs", cap.inputs, U::STORAGE | U::COPY_DST, false);
        let outputs = buffer("outputs", cap.outputs, U::STORAGE | U::COPY_SRC, false);
        let download = buffer("download", cap.outputs, U::MAP_READ | U::COPY_DST, false);
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("umbra streams"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: self.matrix.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: inputs.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: outputs.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: pieces.as_entire_binding(),
                },
            ],
        });
        Slot {
            params,
            pieces,
            pieces_used: 0,
            upload,
            inputs,
            outputs,
            download,
            bind_group,
            upload_map: MapState::Mapped,
        }
    }
}

/// Compiles one pipeline's module; a failure names the shader files.
fn build_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    source: &PipelineSource,
) -> Result<wgpu::ComputePipeline, GpuError> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let text = source.source();
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(source.entry_file.path),
        source: wgpu::ShaderSource::Wgsl(text.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(source.entry_file.path),
        layout: Some(layout),
        module: &module,
        entry_point: Some(source.entry_point),
        compilation_options: Default::default(),
        cache: None,
    });
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(GpuError::ShaderCompile {
            shader: source.name(),
            message: e.to_string(),
        });
    }
    Ok(pipeline)
}

/// A split job as an [`Object`], its shapes checked.
fn split_object<'j, 'i, 'o>(
    plan: &SplitPlan,
    key: &'j ObjectKey,
    offset: u64,
    uploads: &'j [&'i [u8]; 1],
    shares: &'j mut [&'o mut [u8]],
) -> Object<'j, 'i, 'o> {
    let len = uploads[0].len();
    assert_eq!(shares.len(), plan.threshold().n(), "one output per share");
    assert!(
        shares.iter().all(|s| s.len() == len),
        "shares as long as the secret"
    );
    Object {
        key: Some(key),
        offset,
        uploads,
        outputs: shares,
        len,
    }
}

/// An apply job as an [`Object`], its shapes checked.
fn apply_object<'j, 'i, 'o>(
    matrix: &Matrix,
    inputs: &'j [&'i [u8]],
    outputs: &'j mut [&'o mut [u8]],
) -> Object<'j, 'i, 'o> {
    assert_eq!(inputs.len(), matrix.cols(), "one input per matrix column");
    assert_eq!(outputs.len(), matrix.rows(), "one output per matrix row");
    let len = inputs.first().map_or(0, |i| i.len());
    assert!(
        inputs.iter().all(|i| i.len() == len),
        "inputs of equal length"
    );
    assert!(
        outputs.iter().all(|o| o.len() == len),
        "outputs as long as inputs"
    );
    Object {
        key: None,
        offset: 0,
        uploads: inputs,
        outputs,
        len,
    }
}

impl Backend for GpuBackend {
    /// "gpu (llvmpipe (LLVM 15, 256 bits), Vulkan, software)".
    fn describe(&self) -> String {
        format!("gpu ({})", describe_info(&self.info))
    }

    fn split(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        secret: &[u8],
        shares: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        let uploads = [secret];
        let mut objects = [split_object(plan, key, offset, &uploads, shares)];
        Ok(self.run(plan.matrix(), &mut objects, None)?)
    }

    /// Many objects, few dispatches: see [`GpuBackend::split_batch`].
    fn split_many(&self, plan: &SplitPlan, jobs: &mut [SplitJob<'_>]) -> Result<(), EngineError> {
        Ok(self.split_batch(plan, jobs)?)
    }

    fn apply(
        &self,
        matrix: &Matrix,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        let mut objects = [apply_object(matrix, inputs, outputs)];
        Ok(self.run(matrix, &mut objects, None)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces cover every data byte of every object exactly once, in order,
    /// on whole blocks, inside the slice and piece limits.
    #[test]
    fn slices_cover_objects_exactly() {
        let key = ObjectKey::from_bytes([1; 32]);
        let cases: Vec<(Vec<(u64, usize)>, u32)> = vec![
            (vec![(0, 0)], 4),
            (vec![(0, 1), (63, 1), (64, 64), (5, 300)], 4),
            (vec![(61, 1000), (0, 256), (1 << 38, 65)], 3),
            (vec![(7, 10_000)], 1),
            // More objects than one piece table holds.
            (
                (0..1500).map(|i| (i as u64 * 3, 1 + i % 5)).collect(),
                1 << 20,
            ),
        ];
        for (objects, slice_blocks) in &cases {
            let (objects, slice_blocks) = (objects.as_slice(), *slice_blocks);
            let uploads: Vec<[&[u8]; 1]> = objects.iter().map(|_| [&[][..]]).collect();
            let mut outs: Vec<Vec<&mut [u8]>> = objects.iter().map(|_| Vec::new()).collect();
            let objs: Vec<Object<'_, '_, '_>> = objects
                .iter()
                .zip(&uploads)
                .zip(outs.iter_mut())
                .map(|((&(offset, len), up), out)| Object {
                    key: Some(&key),
                    offset,
                    uploads: up,
                    outputs: out.as_mut_slice(),
                    len,
                })
                .collect();
            let slices = plan_slices(&objs, slice_blocks);
            let mut covered: Vec<usize> = vec![0; objects.len()];
            for slice in &slices {
                assert!(slice.blocks <= slice_blocks && slice.pieces.len() <= MAX_PIECES);
                let mut next_block = 0;
                for p in &slice.pieces {
                    let (offset, _) = objects[p.object];
                    assert_eq!(p.slice_block, next_block, "pieces back to back");
                    next_block += p.blocks;
                    assert_eq!(p.data_start, covered[p.object], "in order, no gap");
                    covered[p.object] += p.data_len;
                    // The data's stream position is where its block says.
                    let stream_pos = offset + p.data_start as u64;
                    let block_pos = p.at - p.slice_block as usize * BLOCK_BYTES;
                    assert_eq!(
                        stream_pos,
                        p.stream_block * BLOCK_BYTES as u64 + block_pos as u64
                    );
                    assert!(block_pos + p.data_len <= p.blocks as usize * BLOCK_BYTES);
                }
                assert_eq!(next_block, slice.blocks);
            }
            let lens: Vec<usize> = objects.iter().map(|&(_, l)| l).collect();
            assert_eq!(
                covered, lens,
                "{objects:?} in slices of {slice_blocks} blocks"
            );
        }
    }
}
