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
//! - The compact scheme (docs/DESIGN.md section 8): each block is an object
//!   of t stripe rows; a split uploads the plaintext stripes, encrypts them
//!   in place with keystream 0 (`shaders/compact.wgsl`), then disperses them
//!   with the apply pass; a combine runs the inverse first and decrypts
//!   after. Many small objects' blocks share one dispatch
//!   ([`GpuBackend::disperse_batch`]).
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

use crate::engine::contract::{compact_blocks, disperse_via_apply, undisperse_via_apply};
use crate::engine::{Backend, DisperseJob, EngineError, UndisperseJob};
use crate::keystream::ObjectKey;
use crate::sharing::{Matrix, SplitPlan};
use device::Device;
use plan::{
    BLOCK_BYTES, MAX_CIPHER_BLOCK, Object, apply_object, disperse_object, split_object,
    undisperse_object,
};
use shaders::PipelineSource;
use slots::Slots;

pub use crate::engine::SplitJob;
pub use device::{AdapterChoice, gpu_device_node};
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

/// One block of a compact batch: key, stream offset, block length, and its
/// stream views going up and coming down (stripes or share segments).
type CompactBlock<'a> = (&'a ObjectKey, u64, usize, Vec<&'a [u8]>, Vec<&'a mut [u8]>);

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

    /// The compact split of many streams (docs/DESIGN.md section 8), packed
    /// into shared dispatches: each block's t plaintext stripes go up, are
    /// encrypted on the device (`shaders/compact.wgsl`) and dispersed by the
    /// apply pass; only the n share segments come back. The same bytes as
    /// [`crate::engine::contract::disperse_via_apply`] block by block.
    pub fn disperse_batch(
        &self,
        plan: &SplitPlan,
        segment: usize,
        jobs: &mut [DisperseJob<'_>],
    ) -> Result<(), GpuError> {
        let t = plan.threshold().t();
        // Per block: its stripes (views of the stream) and share segments.
        let mut blocks: Vec<CompactBlock<'_>> = Vec::new();
        for job in jobs.iter_mut() {
            let mut rows: Vec<&mut [u8]> = job.shares.iter_mut().map(|s| &mut **s).collect();
            for (at, len, _, stripe) in compact_blocks(job.stream.len(), t, segment) {
                let block = &job.stream[at..at + len];
                let stripes = (0..t)
                    .map(|k| &block[(k * stripe).min(len)..((k + 1) * stripe).min(len)])
                    .collect();
                let segments = rows
                    .iter_mut()
                    .map(|row| {
                        let (mine, rest) = std::mem::take(row).split_at_mut(stripe);
                        *row = rest;
                        mine
                    })
                    .collect();
                blocks.push((job.key, job.offset + at as u64, len, stripes, segments));
            }
        }
        let mut objects: Vec<Object<'_, '_, '_>> = blocks
            .iter_mut()
            .map(|(key, offset, len, stripes, segments)| {
                disperse_object(plan, key, *offset, *len, stripes, segments)
            })
            .collect();
        self.run_job(plan.matrix(), &mut objects, None)
    }

    /// The inverse of [`GpuBackend::disperse_batch`]: t share segments of
    /// each block go up, the inverse matrix and then the cipher pass run on
    /// the device, and only the plaintext comes back.
    pub fn undisperse_batch(
        &self,
        inverse: &Matrix,
        segment: usize,
        jobs: &mut [UndisperseJob<'_>],
    ) -> Result<(), GpuError> {
        let t = inverse.rows();
        let mut blocks: Vec<CompactBlock<'_>> = Vec::new();
        for job in jobs.iter_mut() {
            let mut rest: &mut [u8] = job.stream;
            for (at, len, in_at, stripe) in compact_blocks(rest.len(), t, segment) {
                let segments = job
                    .shares
                    .iter()
                    .map(|s| &s[in_at..in_at + stripe])
                    .collect();
                let (mut block, after) = std::mem::take(&mut rest).split_at_mut(len);
                rest = after;
                let mut stripes = Vec::with_capacity(t);
                for _ in 0..t {
                    let take = stripe.min(block.len());
                    let (mine, more) = std::mem::take(&mut block).split_at_mut(take);
                    stripes.push(mine);
                    block = more;
                }
                blocks.push((job.key, job.offset + at as u64, len, segments, stripes));
            }
        }
        let mut objects: Vec<Object<'_, '_, '_>> = blocks
            .iter_mut()
            .map(|(key, offset, len, segments, stripes)| {
                undisperse_object(inverse, key, *offset, *len, segments, stripes)
            })
            .collect();
        self.run_job(inverse, &mut objects, None)
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

    /// One block, keystream and dispersal on the device: a batch of one
    /// job whose segment is the block's stripe.
    fn disperse(
        &self,
        plan: &SplitPlan,
        key: &ObjectKey,
        offset: u64,
        block: &[u8],
        shares: &mut [&mut [u8]],
    ) -> Result<(), EngineError> {
        let stripe = shares.first().map_or(0, |s| s.len());
        crate::engine::contract::check_block(plan.threshold().t(), block.len(), stripe);
        if block.len() > MAX_CIPHER_BLOCK {
            return disperse_via_apply(self, plan, key, offset, block, shares);
        }
        let job = DisperseJob {
            key,
            offset,
            stream: block,
            shares: shares.iter_mut().map(|s| &mut **s).collect(),
        };
        Ok(self.disperse_batch(plan, stripe, &mut [job])?)
    }

    /// One block, the inverse and the keystream on the device, as
    /// [`Backend::disperse`] above.
    fn undisperse(
        &self,
        inverse: &Matrix,
        key: &ObjectKey,
        offset: u64,
        shares: &[&[u8]],
        block: &mut [u8],
    ) -> Result<(), EngineError> {
        let stripe = shares.first().map_or(0, |s| s.len());
        crate::engine::contract::check_block(inverse.rows(), block.len(), stripe);
        if block.len() > MAX_CIPHER_BLOCK {
            return undisperse_via_apply(self, inverse, key, offset, shares, block);
        }
        let job = UndisperseJob {
            key,
            offset,
            shares: shares.to_vec(),
            stream: block,
        };
        Ok(self.undisperse_batch(inverse, stripe, &mut [job])?)
    }

    /// Many streams, few dispatches: see [`GpuBackend::disperse_batch`].
    fn disperse_many(
        &self,
        plan: &SplitPlan,
        segment: usize,
        jobs: &mut [DisperseJob<'_>],
    ) -> Result<(), EngineError> {
        if segment.saturating_mul(plan.threshold().t()) > MAX_CIPHER_BLOCK {
            return crate::engine::contract::disperse_many_by_block(self, plan, segment, jobs);
        }
        Ok(self.disperse_batch(plan, segment, jobs)?)
    }

    /// See [`GpuBackend::undisperse_batch`].
    fn undisperse_many(
        &self,
        inverse: &Matrix,
        segment: usize,
        jobs: &mut [UndisperseJob<'_>],
    ) -> Result<(), EngineError> {
        if segment.saturating_mul(inverse.rows()) > MAX_CIPHER_BLOCK {
            return crate::engine::contract::undisperse_many_by_block(self, inverse, segment, jobs);
        }
        Ok(self.undisperse_batch(inverse, segment, jobs)?)
    }
}
