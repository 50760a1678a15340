//! The GPU backend: split, combine and repair as WGSL compute shaders on
//! wgpu, bit for bit the same as [`CpuBackend`](crate::engine::CpuBackend).
//!
//! - Split uploads only the secret: the coefficient streams come from the
//!   ChaCha20 keystream computed on the GPU (`shaders/split.wgsl`, twin of
//!   `src/keystream/`) from the key held in a uniform, then one matrix pass
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
//! Files: `device` holds what is built once (adapter, device,
//! pipelines), `plan` how a job is cut into pieces and slices, `slots` the
//! rotating buffers, `run` what runs per job, `timing` the benchmark-only
//! phase timings; this file puts them together as the [`Backend`].
//!
//! Keys: the key bytes go only into the piece table, a uniform buffer read
//! by the keystream pass; they are never logged, the host copy is wiped,
//! and the uniform is overwritten with zeros after each split. wgpu's own
//! staging copy behind `Queue::write_buffer` is freed by wgpu, not wiped.

#![forbid(unsafe_code)]

mod device;
mod error;
mod plan;
mod run;
pub mod shaders;
mod slots;
mod timing;

use std::sync::Mutex;
use std::time::Duration;

use crate::engine::{Backend, EngineError};
use crate::keystream::ObjectKey;
use crate::sharing::{Matrix, SplitPlan};
use device::Device;
use plan::{BLOCK_BYTES, Object, apply_object, split_object};
use shaders::PipelineSource;
use slots::Slots;

pub use crate::engine::SplitJob;
pub use device::AdapterChoice;
pub use error::GpuError;
pub use timing::PhaseTimes;

/// Default slice size: bytes of each stream per dispatch (before the
/// device's limits cap it).
pub const DEFAULT_MAX_SLICE_BYTES: usize = 32 << 20;

/// One object of [`GpuBackend::apply_batch`].
pub struct ApplyJob<'a> {
    /// One stream per matrix column, all of one length.
    pub inputs: Vec<&'a [u8]>,
    /// One stream per matrix row, as long as the inputs.
    pub outputs: Vec<&'a mut [u8]>,
}

/// The GPU backend: one device with its pipelines, built once, and the
/// buffers its jobs reuse.
pub struct GpuBackend {
    device: Device,
    max_slice_bytes: usize,
    /// One job at a time; `None` until the first job, and after a failure.
    slots: Mutex<Option<Slots>>,
}

impl GpuBackend {
    /// Opens the best adapter that `choice` allows and builds the device,
    /// the pipelines and the matrix buffer.
    pub fn new(choice: AdapterChoice) -> Result<GpuBackend, GpuError> {
        Ok(GpuBackend {
            device: Device::open(choice)?,
            max_slice_bytes: DEFAULT_MAX_SLICE_BYTES,
            slots: Mutex::new(None),
        })
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
        &self.device.info
    }

    /// Whether the adapter is a software rasteriser (llvmpipe and the like).
    pub fn is_software(&self) -> bool {
        self.device.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Bytes of each stream per slice for a job with `streams` rows in its
    /// largest buffer: the configured cap, within the device's limits.
    pub fn slice_bytes(&self, streams: usize) -> Result<usize, GpuError> {
        self.device.slice_bytes(self.max_slice_bytes, streams)
    }

    /// Compiles a pipeline from `source` with this backend's layout, for
    /// tests of the error path; the pipeline is thrown away.
    #[doc(hidden)]
    pub fn check_compiles(&self, source: &PipelineSource) -> Result<(), GpuError> {
        self.device.check_compiles(source)
    }

    /// Destroys the device, as a lost device would be, for tests of the
    /// fault path: every later job must fail, never return partial output.
    #[doc(hidden)]
    pub fn simulate_device_loss(&self) {
        self.device.destroy();
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
        self.run_job(plan.matrix(), &mut objects, None)
    }

    /// Applies one matrix to many objects (combine or repair of a series),
    /// packed into shared dispatches.
    pub fn apply_batch(&self, matrix: &Matrix, jobs: &mut [ApplyJob<'_>]) -> Result<(), GpuError> {
        let mut objects: Vec<Object<'_, '_, '_>> = jobs
            .iter_mut()
            .map(|job| apply_object(matrix, &job.inputs, &mut job.outputs))
            .collect();
        self.run_job(matrix, &mut objects, None)
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
        timing::kernel_time(self.runner(), plan.matrix(), true, len, reps)
    }

    /// As [`GpuBackend::kernel_time_split`], for the apply pass alone
    /// (combine, repair).
    pub fn kernel_time_apply(
        &self,
        matrix: &Matrix,
        len: usize,
        reps: u32,
    ) -> Result<Duration, GpuError> {
        timing::kernel_time(self.runner(), matrix, false, len, reps)
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
        self.run_job(plan.matrix(), &mut objects, Some(&mut times))?;
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
        self.run_job(matrix, &mut objects, Some(&mut times))?;
        Ok(times)
    }

    fn run_job(
        &self,
        matrix: &Matrix,
        objects: &mut [Object<'_, '_, '_>],
        timing: Option<&mut PhaseTimes>,
    ) -> Result<(), GpuError> {
        run::run(self.runner(), matrix, objects, timing)
    }

    fn runner(&self) -> slots::Runner<'_> {
        slots::Runner {
            device: &self.device,
            slots: &self.slots,
            max_slice_bytes: self.max_slice_bytes,
        }
    }
}

impl Backend for GpuBackend {
    /// "gpu (llvmpipe (LLVM 15, 256 bits), Vulkan, software)".
    fn describe(&self) -> String {
        format!("gpu ({})", device::describe_info(&self.device.info))
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
        Ok(self.run_job(plan.matrix(), &mut objects, None)?)
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
        Ok(self.run_job(matrix, &mut objects, None)?)
    }
}
