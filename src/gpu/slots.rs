//! The rotating buffer slots: one slice's buffers each, built when a job
//! first needs them and grown (never shrunk) when a later job needs more.

use std::sync::{Mutex, mpsc};

use super::device::Device;
use super::error::GpuError;
use super::plan::{MAX_PIECES, PARAMS_BYTES, PIECE_BYTES};

/// Slots of buffers in rotation (double buffering).
pub(super) const SLOTS: usize = 2;

pub(super) enum MapState {
    Mapped,
    Pending(mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>),
}

/// One rotation slot: the buffers of one slice in flight.
pub(super) struct Slot {
    pub(super) params: wgpu::Buffer,
    pub(super) pieces: wgpu::Buffer,
    pub(super) upload: wgpu::Buffer,
    pub(super) inputs: wgpu::Buffer,
    pub(super) outputs: wgpu::Buffer,
    pub(super) download: wgpu::Buffer,
    pub(super) bind_group: wgpu::BindGroup,
    pub(super) upload_map: MapState,
    /// Bytes of `pieces` that may hold keys, wiped after each split.
    pub(super) pieces_used: usize,
}

impl Slot {
    /// Waits until the upload staging buffer is mapped again.
    pub(super) fn wait_upload_mapped(&mut self, device: &Device) -> Result<(), GpuError> {
        if let MapState::Pending(rx) = &self.upload_map {
            device.map_result(rx, "upload staging buffer")?;
            self.upload_map = MapState::Mapped;
        }
        Ok(())
    }
}

/// Buffer sizes in bytes of every slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Capacity {
    pub(super) upload: u64,
    pub(super) inputs: u64,
    pub(super) outputs: u64,
}

impl Capacity {
    pub(super) fn covers(&self, other: &Capacity) -> bool {
        self.upload >= other.upload && self.inputs >= other.inputs && self.outputs >= other.outputs
    }

    pub(super) fn max(&self, other: &Capacity) -> Capacity {
        Capacity {
            upload: self.upload.max(other.upload),
            inputs: self.inputs.max(other.inputs),
            outputs: self.outputs.max(other.outputs),
        }
    }
}

pub(super) struct Slots {
    pub(super) capacity: Capacity,
    pub(super) slots: Vec<Slot>,
}

impl Slots {
    /// Overwrites the piece tables (which held keys) with zeros.
    pub(super) fn wipe_keys(device: &Device, slots: &mut Option<Slots>) {
        if let Some(slots) = slots {
            let zeros = vec![0u8; MAX_PIECES * PIECE_BYTES];
            for slot in &mut slots.slots {
                if slot.pieces_used > 0 {
                    device
                        .queue
                        .write_buffer(&slot.pieces, 0, &zeros[..slot.pieces_used]);
                    slot.pieces_used = 0;
                }
            }
            device.queue.submit([]);
            let _ = device.device.poll(wgpu::PollType::wait_indefinitely());
        }
    }

    /// Builds (or grows) the rotation slots to at least `need`.
    pub(super) fn ensure(
        device: &Device,
        slots: &mut Option<Slots>,
        need: Capacity,
    ) -> Result<(), GpuError> {
        if let Some(s) = slots.as_ref()
            && s.capacity.covers(&need)
        {
            return Ok(());
        }
        let capacity = slots.as_ref().map_or(need, |s| s.capacity.max(&need));
        // Drop the old buffers first, so that peak memory is one set.
        *slots = None;
        let scope = device
            .device
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let built: Vec<Slot> = (0..SLOTS)
            .map(|i| build_slot(device, i, capacity))
            .collect();
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
}

fn build_slot(device: &Device, i: usize, cap: Capacity) -> Slot {
    let buffer = |what: &str, size: u64, usage: wgpu::BufferUsages, mapped: bool| {
        device.device.create_buffer(&wgpu::BufferDescriptor {
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
    let bind_group = device.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("umbra streams"),
        layout: &device.layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: params.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: device.matrix.as_entire_binding(),
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

/// What a job runs on: the device, its rotation slots (one job at a time
/// holds them), and the cap on bytes per stream per slice.
#[derive(Clone, Copy)]
pub(super) struct Runner<'a> {
    pub(super) device: &'a Device,
    pub(super) slots: &'a Mutex<Option<Slots>>,
    pub(super) max_slice_bytes: usize,
}
