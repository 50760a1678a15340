//! What runs per job: slices planned, uploaded, computed and read back,
//! two slots in rotation so that the host and the device overlap; and the
//! engine's [`Backend`] contract on top.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Instant;

use rayon::prelude::*;
use zeroize::Zeroize;

use super::device::describe_info;
use super::plan::{
    GROUP_ROWS, Object, PIECE_BYTES, SlicePlan, apply_object, grid, params_bytes, plan_slices,
    split_object,
};
use super::slots::{Capacity, MapState, SLOTS, Slot, Slots};
use super::timing::PhaseTimes;
use super::{ApplyJob, BLOCK_BYTES, GpuBackend, GpuError, SplitJob};
use crate::engine::{Backend, EngineError};
use crate::keystream::ObjectKey;
use crate::sharing::{Matrix, SplitPlan};

/// Pieces at least this long are copied out of the download buffer on
/// several threads, in chunks of `COPY_CHUNK_BYTES`.
const PARALLEL_COPY_BYTES: usize = 1 << 20;
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// A slice submitted and not yet read back.
struct InFlight {
    slot: usize,
    index: wgpu::SubmissionIndex,
    plan: SlicePlan,
    download: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

impl GpuBackend {
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

    pub(super) fn run(
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

    pub(super) fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Blocks until submission `index` has finished and its callbacks ran.
    pub(super) fn wait(&self, index: wgpu::SubmissionIndex) -> Result<(), GpuError> {
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
