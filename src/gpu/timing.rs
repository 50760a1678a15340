//! Where a job's time goes: the phases of a job timed one by one, and the
//! kernel alone with its data resident on the device. For benchmarks.

use std::time::{Duration, Instant};

use super::device::lock;
use super::error::GpuError;
use super::plan::{BLOCK_BYTES, GROUP_ROWS, Object, PieceSpec, grid, params_bytes};
use super::slots::{Capacity, Runner, Slots};
use crate::sharing::Matrix;

/// Where the time of a job went, when run phase by phase
/// ([`GpuBackend::split_timed`](super::GpuBackend::split_timed),
/// [`GpuBackend::apply_timed`](super::GpuBackend::apply_timed)).
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
    /// Upload, compute and download together.
    pub fn total(&self) -> Duration {
        self.upload + self.compute + self.download
    }
}

/// Time of the compute passes of `matrix` over `len` bytes, the data
/// resident on the device: one slice's passes run `reps` times in one
/// submission (after a warm-up), scaled to `len`. With `split`, the keystream
/// pass too, from a dummy key.
pub(super) fn kernel_time(
    runner: Runner<'_>,
    matrix: &Matrix,
    split: bool,
    len: usize,
    reps: u32,
) -> Result<Duration, GpuError> {
    let device = runner.device;
    let rows = matrix.rows();
    let cols = matrix.cols();
    if rows == 0 || rows > 255 || cols > 255 {
        return Err(GpuError::MatrixTooLarge { rows, cols });
    }
    let slice_bytes = device.slice_bytes(runner.max_slice_bytes, rows.max(cols))?;
    let bytes = len.clamp(BLOCK_BYTES, slice_bytes).div_ceil(BLOCK_BYTES) * BLOCK_BYTES;
    let blocks = (bytes / BLOCK_BYTES) as u32;
    let words = blocks * (BLOCK_BYTES / 4) as u32;
    let mut guard = lock(runner.slots);
    let need = Capacity {
        upload: (cols * bytes) as u64,
        inputs: (cols * bytes) as u64,
        outputs: (rows * bytes) as u64,
    };
    let result = (|| {
        Slots::ensure(device, &mut guard, need)?;
        let slot = &guard.as_ref().expect("slots built above").slots[0];
        device.write_matrix(matrix);
        device.queue.write_buffer(
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
        let dummy = Object {
            key: None,
            offset: 0,
            uploads: &[],
            outputs: &mut [],
            len: bytes,
            cipher: None,
        };
        device
            .queue
            .write_buffer(&slot.pieces, 0, &piece.table_entry(&dummy));
        let max_dim = device.limits.max_compute_workgroups_per_dimension;
        let passes = |n: u32| {
            let mut encoder = device.encoder("umbra kernel timing");
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("umbra kernel timing"),
                    timestamp_writes: None,
                });
                pass.set_bind_group(0, &slot.bind_group, &[]);
                for _ in 0..n {
                    if split && cols > 1 {
                        let (x, y) = grid(blocks, max_dim);
                        pass.set_pipeline(&device.split_pipeline);
                        pass.dispatch_workgroups(x, y, cols as u32 - 1);
                    }
                    let (x, y) = grid(words, max_dim);
                    pass.set_pipeline(&device.apply_pipeline);
                    pass.dispatch_workgroups(x, y, rows.div_ceil(GROUP_ROWS) as u32);
                }
            }
            encoder.finish()
        };
        let warm = device.queue.submit([passes(1)]);
        device.wait(warm)?;
        let reps = reps.max(1);
        let started = Instant::now();
        let timed = device.queue.submit([passes(reps)]);
        device.wait(timed)?;
        let per_slice = started.elapsed() / reps;
        Ok(per_slice.mul_f64(len as f64 / bytes as f64))
    })();
    if result.is_err() {
        *guard = None;
    }
    result
}
