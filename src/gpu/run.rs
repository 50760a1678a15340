//! What runs per job: slices planned, uploaded, computed and read back, two
//! slots in rotation so that the host fills slice k+1 and reads back slice
//! k-1 while the device works on slice k.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Instant;

use rayon::prelude::*;
use zeroize::Zeroize;

use super::device::Device;
use super::error::GpuError;
use super::plan::{
    BLOCK_BYTES, CipherRows, GROUP_ROWS, Object, PIECE_BYTES, SlicePlan, grid, params_bytes,
    plan_slices,
};
use super::slots::{Capacity, MapState, Runner, SLOTS, Slot, Slots};
use super::timing::PhaseTimes;
use crate::sharing::Matrix;

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

/// The shape of one job: what every slice of it uploads, computes and
/// downloads.
#[derive(Clone, Copy)]
struct Shape {
    rows: usize,
    cols: usize,
    /// A split: the secret goes up and the coefficients are made on the
    /// device; otherwise (combine, repair) all `cols` inputs go up.
    split: bool,
    /// The compact scheme: the rows its cipher pass runs on.
    cipher: Option<CipherRows>,
    upload_rows: usize,
}

/// Runs `matrix` over `objects`; with `timing`, phase by phase (each waited
/// for) and timed. Keys are wiped from the device after a split, and the
/// slots are rebuilt after a failure.
pub(super) fn run(
    runner: Runner<'_>,
    matrix: &Matrix,
    objects: &mut [Object<'_, '_, '_>],
    timing: Option<&mut PhaseTimes>,
) -> Result<(), GpuError> {
    let Runner {
        device,
        slots,
        max_slice_bytes,
    } = runner;
    if matrix.rows() > 255 || matrix.cols() > 255 {
        return Err(GpuError::MatrixTooLarge {
            rows: matrix.rows(),
            cols: matrix.cols(),
        });
    }
    if matrix.rows() == 0 || objects.iter().all(|o| o.len == 0) {
        return Ok(());
    }
    let mut slots = match slots.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            // A job panicked half way: wipe any key it left, and rebuild.
            let mut guard = poisoned.into_inner();
            Slots::wipe_keys(device, &mut guard);
            *guard = None;
            guard
        }
    };
    let result = run_locked(device, &mut slots, max_slice_bytes, matrix, objects, timing);
    if objects
        .iter()
        .any(|o| o.key.is_some() || o.cipher.is_some())
    {
        Slots::wipe_keys(device, &mut slots);
    }
    if result.is_err() {
        // Buffers may be left mapped or half written: start afresh.
        *slots = None;
    }
    result
}

fn run_locked(
    device: &Device,
    slots: &mut Option<Slots>,
    max_slice_bytes: usize,
    matrix: &Matrix,
    objects: &mut [Object<'_, '_, '_>],
    mut timing: Option<&mut PhaseTimes>,
) -> Result<(), GpuError> {
    device.faults.check()?;
    let split = objects.iter().any(|o| o.key.is_some());
    let cipher = objects.first().and_then(|o| o.cipher.map(|c| c.rows));
    assert!(
        objects
            .iter()
            .all(|o| o.cipher.map(|c| c.rows) == cipher && (o.key.is_some()) == split),
        "one kind of object per job"
    );
    let shape = Shape {
        rows: matrix.rows(),
        cols: matrix.cols(),
        split,
        cipher,
        upload_rows: if split { 1 } else { matrix.cols() },
    };
    let slice_bytes = device.slice_bytes(max_slice_bytes, shape.rows.max(shape.cols))?;
    let plans = plan_slices(objects, (slice_bytes / BLOCK_BYTES) as u32);
    let largest = plans.iter().map(SlicePlan::row_bytes).max().unwrap_or(0);
    let need = Capacity {
        upload: (shape.upload_rows * largest) as u64,
        inputs: (shape.cols * largest) as u64,
        outputs: (shape.rows * largest) as u64,
    };
    Slots::ensure(device, slots, need)?;
    let slots = &mut slots.as_mut().expect("slots built above").slots;
    device.write_matrix(matrix);
    if let Some(t) = timing.as_deref_mut() {
        t.slices += plans.len();
    }
    let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(SLOTS);
    for (k, plan) in plans.into_iter().enumerate() {
        let s = k % SLOTS;
        if in_flight.len() == SLOTS {
            let done = in_flight.pop_front().expect("a slice in flight");
            read_back(device, &slots[done.slot], done, objects)?;
        }
        let slot = &mut slots[s];
        let started = Instant::now();
        slot.wait_upload_mapped(device)?;
        fill_upload(slot, &plan, objects, shape.upload_rows)?;
        let pieces = plan.pieces.len() as u32;
        device.queue.write_buffer(
            &slot.params,
            0,
            &params_bytes(plan.words(), shape.rows as u32, shape.cols as u32, pieces),
        );
        if split || cipher.is_some() {
            write_piece_table(device, slot, &plan, objects);
        }
        let [upload, compute, download] = encode(device, slot, &plan, shape);
        let mut download_started = started;
        let index = match timing.as_deref_mut() {
            None => device
                .queue
                .submit([upload.finish(), compute.finish(), download.finish()]),
            Some(t) => {
                let i = device.queue.submit([upload.finish()]);
                device.wait(i)?;
                let uploaded = Instant::now();
                t.upload += uploaded - started;
                let i = device.queue.submit([compute.finish()]);
                device.wait(i)?;
                download_started = Instant::now();
                t.compute += download_started - uploaded;
                device.queue.submit([download.finish()])
            }
        };
        let download = map_after(slot, (shape.rows * plan.row_bytes()) as u64);
        let flight = InFlight {
            slot: s,
            index,
            plan,
            download,
        };
        match timing.as_deref_mut() {
            None => in_flight.push_back(flight),
            Some(t) => {
                read_back(device, &slots[s], flight, objects)?;
                t.download += download_started.elapsed();
            }
        }
    }
    while let Some(done) = in_flight.pop_front() {
        read_back(device, &slots[done.slot], done, objects)?;
    }
    device.faults.check()
}

/// Writes a slice's upload rows into the slot's mapped staging buffer.
/// Mapped memory is write-only (wgpu's `WriteOnly`): every byte of each row
/// is written, padding with zeros (also where an upload is shorter than its
/// object: the compact scheme's last stripes).
fn fill_upload(
    slot: &mut Slot,
    plan: &SlicePlan,
    objects: &[Object<'_, '_, '_>],
    upload_rows: usize,
) -> Result<(), GpuError> {
    let row_bytes = plan.row_bytes();
    {
        let up_bytes = (upload_rows * row_bytes) as u64;
        let mut view = slot
            .upload
            .get_mapped_range_mut(0..up_bytes)
            .map_err(|e| GpuError::Job(format!("upload buffer: {e}")))?;
        for r in 0..upload_rows {
            let row = r * row_bytes;
            for p in &plan.pieces {
                let start = row + p.slice_block as usize * BLOCK_BYTES;
                let end = start + p.blocks as usize * BLOCK_BYTES;
                let src = objects[p.object].uploads[r];
                let from = p.data_start.min(src.len());
                let have = (p.data_start + p.data_len).min(src.len()) - from;
                let data_at = row + p.at;
                let data_end = data_at + have;
                view.slice(start..data_at).fill(0);
                view.slice(data_at..data_end)
                    .copy_from_slice(&src[from..from + have]);
                view.slice(data_end..end).fill(0);
            }
        }
    }
    slot.upload.unmap();
    Ok(())
}

/// The piece table of a split or compact slice: each piece's key and
/// stream position.
/// The host copy is wiped; the device copy is wiped after the job.
fn write_piece_table(
    device: &Device,
    slot: &mut Slot,
    plan: &SlicePlan,
    objects: &[Object<'_, '_, '_>],
) {
    let mut table = zeroize::Zeroizing::new(vec![0u8; plan.pieces.len() * PIECE_BYTES]);
    for (entry, p) in table.chunks_exact_mut(PIECE_BYTES).zip(&plan.pieces) {
        let mut bytes = p.table_entry(&objects[p.object]);
        entry.copy_from_slice(&bytes);
        bytes.zeroize();
    }
    device.queue.write_buffer(&slot.pieces, 0, &table);
    slot.pieces_used = slot.pieces_used.max(table.len());
}

/// The three command buffers of a slice: upload, compute passes (keystream
/// for a split, then the matrix; for the compact scheme the cipher pass
/// before the matrix or after it), download.
fn encode(
    device: &Device,
    slot: &Slot,
    plan: &SlicePlan,
    shape: Shape,
) -> [wgpu::CommandEncoder; 3] {
    let row_bytes = plan.row_bytes() as u64;
    let max_dim = device.limits.max_compute_workgroups_per_dimension;
    let mut upload = device.encoder("umbra upload");
    upload.copy_buffer_to_buffer(
        &slot.upload,
        0,
        &slot.inputs,
        0,
        shape.upload_rows as u64 * row_bytes,
    );
    let mut compute = device.encoder("umbra compute");
    {
        let mut pass = compute.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("umbra"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, &slot.bind_group, &[]);
        if shape.split && shape.cols > 1 {
            let (x, y) = grid(plan.blocks, max_dim);
            pass.set_pipeline(&device.split_pipeline);
            pass.dispatch_workgroups(x, y, shape.cols as u32 - 1);
        }
        let (bx, by) = grid(plan.blocks, max_dim);
        if shape.cipher == Some(CipherRows::Inputs) {
            pass.set_pipeline(&device.cipher_inputs_pipeline);
            pass.dispatch_workgroups(bx, by, shape.cols as u32);
        }
        let (x, y) = grid(plan.words(), max_dim);
        pass.set_pipeline(&device.apply_pipeline);
        pass.dispatch_workgroups(x, y, shape.rows.div_ceil(GROUP_ROWS) as u32);
        if shape.cipher == Some(CipherRows::Outputs) {
            pass.set_pipeline(&device.cipher_outputs_pipeline);
            pass.dispatch_workgroups(bx, by, shape.rows as u32);
        }
    }
    let mut download = device.encoder("umbra download");
    download.copy_buffer_to_buffer(
        &slot.outputs,
        0,
        &slot.download,
        0,
        shape.rows as u64 * row_bytes,
    );
    [upload, compute, download]
}

/// Asks for the slot's download buffer (its first `download_bytes`) and
/// upload buffer to be mapped once the submission just made has finished.
fn map_after(
    slot: &mut Slot,
    download_bytes: u64,
) -> mpsc::Receiver<Result<(), wgpu::BufferAsyncError>> {
    let (tx, rx) = mpsc::channel();
    slot.download
        .slice(0..download_bytes)
        .map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
    let (tx, upload_rx) = mpsc::channel();
    slot.upload
        .slice(..)
        .map_async(wgpu::MapMode::Write, move |r| {
            let _ = tx.send(r);
        });
    slot.upload_map = MapState::Pending(upload_rx);
    rx
}

/// Waits for a slice and copies its outputs into place.
fn read_back(
    device: &Device,
    slot: &Slot,
    done: InFlight,
    objects: &mut [Object<'_, '_, '_>],
) -> Result<(), GpuError> {
    device.wait(done.index)?;
    device.map_result(&done.download, "download staging buffer")?;
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
                // An output shorter than its object takes only its bytes.
                let from = p.data_start.min(out.len());
                let have = (p.data_start + p.data_len).min(out.len()) - from;
                let dst = &mut out[from..from + have];
                let src = &row[p.at..p.at + have];
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
