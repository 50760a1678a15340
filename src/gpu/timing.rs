//! Where a job's time goes: the phases of a job timed one by one, and the
//! kernel alone with its data resident on the device. For benchmarks.

use std::time::{Duration, Instant};

use super::plan::{GROUP_ROWS, PieceSpec, apply_object, grid, params_bytes, split_object};
use super::slots::Capacity;
use super::{BLOCK_BYTES, GpuBackend, GpuError, lock};
use crate::keystream::ObjectKey;
use crate::sharing::{Matrix, SplitPlan};

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

impl GpuBackend {
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
}
