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
//! a slice share one buffer, all outputs another. Slices are aligned on
//! 64-byte keystream blocks of the shared stream, so an offset that is not a
//! multiple of 64 (or of 4) only moves where the first slice's bytes sit in
//! its buffer, and tails are padded with zeros.
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
//! Keys: the key bytes go only into the uniform buffer of the split pass,
//! are never logged, and the uniform is overwritten with zeros after each
//! split.

#![forbid(unsafe_code)]

pub mod shaders;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use zeroize::Zeroize;

use crate::engine::{Backend, EngineError, SplitPlan};
use crate::keystream::ObjectKey;
use crate::sharing::Matrix;

use shaders::PipelineSource;

/// Default slice size: bytes of each stream per dispatch (before the
/// device's limits cap it).
pub const DEFAULT_MAX_SLICE_BYTES: usize = 32 << 20;

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
const PARAMS_BYTES: usize = 64;

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

/// The uniform of `shaders/bindings.wgsl`, written field by field in
/// little-endian, as the shaders read it.
#[derive(Default)]
struct Params {
    key: [u32; 8],
    block: u64,
    words: u32,
    rows: u32,
    cols: u32,
}

impl Params {
    fn to_bytes(&self) -> [u8; PARAMS_BYTES] {
        let mut words = [0u32; PARAMS_BYTES / 4];
        words[..8].copy_from_slice(&self.key);
        words[8] = self.block as u32;
        words[9] = (self.block >> 32) as u32;
        words[10] = self.words;
        words[11] = self.rows;
        words[12] = self.cols;
        let mut bytes = [0u8; PARAMS_BYTES];
        for (dst, w) in bytes.chunks_exact_mut(4).zip(words.iter()) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
        words.zeroize();
        bytes
    }
}

impl Drop for Params {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

enum MapState {
    Mapped,
    Pending(mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>),
}

/// One rotation slot: the buffers of one slice in flight.
struct Slot {
    params: wgpu::Buffer,
    upload: wgpu::Buffer,
    inputs: wgpu::Buffer,
    outputs: wgpu::Buffer,
    download: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    upload_map: MapState,
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

/// Where one slice's bytes are: positions in the block-aligned stream of the
/// job (the data preceded by `skip` bytes) and in its buffer rows.
#[derive(Debug, Clone, Copy)]
struct SliceInfo {
    /// First block of this slice, counted from the job's first block.
    first_block: u64,
    /// Data bytes `data_start..data_start + data_len` of each stream...
    data_start: usize,
    data_len: usize,
    /// ...sit at this byte of each row.
    lead: usize,
    /// Words per row: whole 64-byte blocks.
    words: u32,
}

impl SliceInfo {
    fn new(k: usize, slice_bytes: usize, skip: usize, len: usize) -> Self {
        let p0 = k * slice_bytes;
        let p1 = ((k + 1) * slice_bytes).min(skip + len);
        let data_start = p0.max(skip) - skip;
        let data_end = p1 - skip;
        let used = p1 - p0;
        Self {
            first_block: (p0 / BLOCK_BYTES) as u64,
            data_start,
            data_len: data_end - data_start,
            lead: p0.max(skip) - p0,
            words: (used.div_ceil(BLOCK_BYTES) * BLOCK_BYTES / 4) as u32,
        }
    }

    fn row_bytes(&self) -> usize {
        self.words as usize * 4
    }
}

/// What a job computes.
struct JobSpec<'a> {
    matrix: &'a Matrix,
    /// Split: the key, and the keystream block of the job's first byte.
    key: Option<(&'a ObjectKey, u64)>,
    /// Bytes before the data in the first block (split: offset mod 64).
    skip: usize,
    /// Streams that go up: the secret for split, the t inputs for apply.
    uploads: &'a [&'a [u8]],
    len: usize,
}

/// A slice submitted and not yet read back.
struct InFlight {
    slot: usize,
    index: wgpu::SubmissionIndex,
    info: SliceInfo,
    download: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
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
        self.split_inner(plan, key, offset, secret, shares, Some(&mut times))?;
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
        self.apply_inner(matrix, inputs, outputs, Some(&mut times))?;
        Ok(times)
    }

    fn split_inner(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        secret: &[u8],
        shares: &mut [&mut [u8]],
        timing: Option<&mut PhaseTimes>,
    ) -> Result<(), GpuError> {
        assert_eq!(shares.len(), plan.threshold().n(), "one output per share");
        assert!(
            shares.iter().all(|s| s.len() == secret.len()),
            "shares as long as the secret"
        );
        let uploads = [secret];
        let spec = JobSpec {
            matrix: plan.matrix(),
            key: Some((key, offset / BLOCK_BYTES as u64)),
            skip: (offset % BLOCK_BYTES as u64) as usize,
            uploads: &uploads,
            len: secret.len(),
        };
        self.run(&spec, shares, timing)
    }

    fn apply_inner(
        &self,
        matrix: &Matrix,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        timing: Option<&mut PhaseTimes>,
    ) -> Result<(), GpuError> {
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
        let spec = JobSpec {
            matrix,
            key: None,
            skip: 0,
            uploads: inputs,
            len,
        };
        self.run(&spec, outputs, timing)
    }

    fn run(
        &self,
        spec: &JobSpec<'_>,
        outputs: &mut [&mut [u8]],
        timing: Option<&mut PhaseTimes>,
    ) -> Result<(), GpuError> {
        if spec.len == 0 || spec.matrix.rows() == 0 {
            return Ok(());
        }
        let mut slots = lock(&self.slots);
        let result = self.run_locked(&mut slots, spec, outputs, timing);
        if spec.key.is_some() {
            self.wipe_key(&slots);
        }
        if result.is_err() {
            // Buffers may be left mapped or half written: start afresh.
            *slots = None;
        }
        result
    }

    /// Overwrites the params uniform (which held the key) with zeros.
    fn wipe_key(&self, slots: &Option<Slots>) {
        if let Some(slots) = slots {
            let zeros = [0u8; PARAMS_BYTES];
            for slot in &slots.slots {
                self.queue.write_buffer(&slot.params, 0, &zeros);
            }
            self.queue.submit([]);
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        }
    }

    fn run_locked(
        &self,
        slots: &mut Option<Slots>,
        spec: &JobSpec<'_>,
        outputs: &mut [&mut [u8]],
        mut timing: Option<&mut PhaseTimes>,
    ) -> Result<(), GpuError> {
        self.faults.check()?;
        let rows = spec.matrix.rows();
        let cols = spec.matrix.cols();
        let slice_bytes = self.slice_bytes(rows.max(cols))?;
        let need = Capacity {
            upload: (spec.uploads.len() * slice_bytes) as u64,
            inputs: (cols * slice_bytes) as u64,
            outputs: (rows * slice_bytes) as u64,
        };
        self.ensure_slots(slots, need)?;
        let slots = &mut slots.as_mut().expect("slots built above").slots;

        let mut entries = Vec::with_capacity(rows * cols * 4);
        for r in 0..rows {
            for &e in spec.matrix.row(r) {
                entries.extend_from_slice(&u32::from(e).to_le_bytes());
            }
        }
        self.queue.write_buffer(&self.matrix, 0, &entries);

        let slices = (spec.skip + spec.len).div_ceil(slice_bytes);
        if let Some(t) = timing.as_deref_mut() {
            t.slices += slices;
        }
        let max_dim = self.limits.max_compute_workgroups_per_dimension;
        let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(SLOTS);
        for k in 0..slices {
            let s = k % SLOTS;
            if in_flight.len() == SLOTS {
                let done = in_flight.pop_front().expect("a slice in flight");
                self.read_back(&slots[done.slot], done, outputs)?;
            }
            let info = SliceInfo::new(k, slice_bytes, spec.skip, spec.len);
            let row_bytes = info.row_bytes();
            let slot = &mut slots[s];

            let started = Instant::now();
            self.wait_upload_mapped(slot)?;
            {
                let up_bytes = (spec.uploads.len() * row_bytes) as u64;
                let mut view = slot
                    .upload
                    .get_mapped_range_mut(0..up_bytes)
                    .map_err(|e| GpuError::Job(format!("upload buffer: {e}")))?;
                // Mapped memory is write-only (wgpu's `WriteOnly`): every
                // byte of each row is written, padding with zeros.
                let data_end = info.lead + info.data_len;
                for (r, src) in spec.uploads.iter().enumerate() {
                    let base = r * row_bytes;
                    view.slice(base..base + info.lead).fill(0);
                    view.slice(base + info.lead..base + data_end)
                        .copy_from_slice(&src[info.data_start..info.data_start + info.data_len]);
                    view.slice(base + data_end..base + row_bytes).fill(0);
                }
            }
            slot.upload.unmap();

            let mut params = Params {
                words: info.words,
                rows: rows as u32,
                cols: cols as u32,
                ..Params::default()
            };
            if let Some((key, first_block)) = spec.key {
                for (w, b) in params.key.iter_mut().zip(key.expose().chunks_exact(4)) {
                    *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                params.block = first_block.wrapping_add(info.first_block);
            }
            let mut params_bytes = params.to_bytes();
            self.queue.write_buffer(&slot.params, 0, &params_bytes);
            params_bytes.zeroize();
            drop(params);

            let mut upload = self.encoder("umbra upload");
            upload.copy_buffer_to_buffer(
                &slot.upload,
                0,
                &slot.inputs,
                0,
                (spec.uploads.len() * row_bytes) as u64,
            );
            let mut compute = self.encoder("umbra compute");
            {
                let mut pass = compute.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("umbra"),
                    timestamp_writes: None,
                });
                pass.set_bind_group(0, &slot.bind_group, &[]);
                if spec.key.is_some() && cols > 1 {
                    let (x, y) = grid(info.words / 16, max_dim);
                    pass.set_pipeline(&self.split_pipeline);
                    pass.dispatch_workgroups(x, y, cols as u32 - 1);
                }
                let (x, y) = grid(info.words, max_dim);
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
                info,
                download: rx,
            };
            match timing.as_deref_mut() {
                None => in_flight.push_back(flight),
                Some(t) => {
                    self.read_back(&slots[s], flight, outputs)?;
                    t.download += download_started.elapsed();
                }
            }
        }
        while let Some(done) = in_flight.pop_front() {
            self.read_back(&slots[done.slot], done, outputs)?;
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
        outputs: &mut [&mut [u8]],
    ) -> Result<(), GpuError> {
        self.wait(done.index)?;
        self.map_result(&done.download, "download staging buffer")?;
        let info = done.info;
        let row_bytes = info.row_bytes();
        {
            let view = slot
                .download
                .get_mapped_range(0..(outputs.len() * row_bytes) as u64)
                .map_err(|e| GpuError::Job(format!("download buffer: {e}")))?;
            for (row, out) in view.chunks_exact(row_bytes).zip(outputs.iter_mut()) {
                out[info.data_start..info.data_start + info.data_len]
                    .copy_from_slice(&row[info.lead..info.lead + info.data_len]);
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
            ],
        });
        Slot {
            params,
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
        Ok(self.split_inner(plan, key, offset, secret, shares, None)?)
    }

    fn apply(
        &self,
        matrix: &Matrix,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        Ok(self.apply_inner(matrix, inputs, outputs, None)?)
    }
}
