//! What is built once per backend: the adapter chosen, the device and its
//! fault reports, the bind group layout, the pipelines and the matrix
//! buffer.

use std::sync::{Arc, Mutex, mpsc};

use super::error::GpuError;
use super::plan::{BLOCK_BYTES, MAX_PIECES, PIECE_BYTES};
use super::shaders::{self, PipelineSource};
use crate::sharing::Matrix;

/// Which adapters [`GpuBackend::new`](super::GpuBackend::new) may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdapterChoice {
    /// A hardware GPU only; software rasterisers (device type Cpu, such as
    /// Mesa's llvmpipe) are refused.
    HardwareOnly,
    /// The best adapter there is, hardware preferred, software accepted.
    Any,
}

/// A lock that a panic elsewhere does not poison for good.
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An opened adapter with everything built once: device and queue, fault
/// reports, the bind group layout, the pipelines and the matrix buffer.
pub(super) struct Device {
    pub(super) info: wgpu::AdapterInfo,
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub(super) layout: wgpu::BindGroupLayout,
    pub(super) split_pipeline: wgpu::ComputePipeline,
    pub(super) apply_pipeline: wgpu::ComputePipeline,
    /// The compact scheme's cipher pass on the input rows (split) and on
    /// the output rows (combine).
    pub(super) cipher_inputs_pipeline: wgpu::ComputePipeline,
    pub(super) cipher_outputs_pipeline: wgpu::ComputePipeline,
    pub(super) matrix: wgpu::Buffer,
    pub(super) limits: wgpu::Limits,
    pub(super) faults: Arc<Faults>,
}

/// The largest matrix: 255 x 255 entries, one u32 each.
const MATRIX_BYTES: u64 = 255 * 255 * 4;

/// Faults that wgpu reports through callbacks, checked after each wait.
#[derive(Default)]
pub(super) struct Faults {
    lost: Mutex<Option<String>>,
    error: Mutex<Option<GpuError>>,
}

impl Faults {
    pub(super) fn check(&self) -> Result<(), GpuError> {
        if let Some(msg) = lock(&self.lost).clone() {
            return Err(GpuError::DeviceLost(msg));
        }
        if let Some(e) = lock(&self.error).take() {
            return Err(e);
        }
        Ok(())
    }
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

pub(super) fn describe_info(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{}, {}, {}",
        info.name,
        backend_name(info.backend),
        device_type_name(info.device_type)
    )
}

/// The first device node in `dev` (normally `/dev`) through which a Linux
/// hardware GPU driver is reached: a DRM node (`dri/renderD*`, `dri/card*`:
/// AMD, Intel, Arm, virtio and the rest of Mesa), NVIDIA's own (`nvidia*`),
/// WSL's (`dxg`), or the proprietary Adreno and Mali ones (`kgsl-3d0`,
/// `mali*`). With none there is no hardware GPU for Vulkan to find, and the
/// `auto` policy need not start Vulkan to learn it: creating an instance
/// loads every installed driver (tens of milliseconds, and most of a small
/// job's time when the only one is a software rasteriser it would refuse).
pub fn gpu_device_node(dev: &std::path::Path) -> Option<std::path::PathBuf> {
    let named = |dir: &std::path::Path, wanted: &dyn Fn(&str) -> bool| {
        std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
            let name = e.file_name();
            wanted(name.to_str()?).then(|| e.path())
        })
    };
    named(&dev.join("dri"), &|n| {
        n.starts_with("renderD") || n.starts_with("card")
    })
    .or_else(|| {
        named(dev, &|n| {
            n.starts_with("nvidia") || n == "dxg" || n == "kgsl-3d0" || n.starts_with("mali")
        })
    })
}

/// The best adapter that `choice` allows, and a description of every
/// adapter seen for the error when there is none.
fn pick_adapter(choice: AdapterChoice) -> Result<wgpu::Adapter, GpuError> {
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
    adapters
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
        })
}

/// Routes wgpu's fault callbacks into `faults`, checked after each wait.
fn watch_faults(device: &wgpu::Device) -> Arc<Faults> {
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
    faults
}

/// The layout of `shaders/bindings.wgsl`: params (uniform), matrix, inputs,
/// outputs (storage) and the piece table (uniform).
fn bind_group_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    let buffer = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let storage = |read_only| wgpu::BufferBindingType::Storage { read_only };
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("umbra streams"),
        entries: &[
            buffer(0, wgpu::BufferBindingType::Uniform),
            buffer(1, storage(true)),
            buffer(2, storage(false)),
            buffer(3, storage(false)),
            buffer(4, wgpu::BufferBindingType::Uniform),
        ],
    })
}

impl Device {
    /// Opens the best adapter that `choice` allows and builds the device,
    /// the pipelines and the matrix buffer.
    pub(super) fn open(choice: AdapterChoice) -> Result<Device, GpuError> {
        let adapter = pick_adapter(choice)?;
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
        let faults = watch_faults(&device);
        let layout = bind_group_layout(&device);
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("umbra"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let split_pipeline = build_pipeline(&device, &pipeline_layout, &shaders::SPLIT_PIPELINE)?;
        let apply_pipeline = build_pipeline(&device, &pipeline_layout, &shaders::APPLY_PIPELINE)?;
        let cipher_inputs_pipeline =
            build_pipeline(&device, &pipeline_layout, &shaders::CIPHER_INPUTS_PIPELINE)?;
        let cipher_outputs_pipeline =
            build_pipeline(&device, &pipeline_layout, &shaders::CIPHER_OUTPUTS_PIPELINE)?;
        let matrix = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("umbra matrix"),
            size: MATRIX_BYTES,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let opened = Device {
            info,
            device,
            queue,
            layout,
            split_pipeline,
            apply_pipeline,
            cipher_inputs_pipeline,
            cipher_outputs_pipeline,
            matrix,
            limits,
            faults,
        };
        opened.faults.check()?;
        Ok(opened)
    }

    /// Bytes of each stream per slice for a job with `streams` rows in its
    /// largest buffer: `max_slice_bytes`, within the device's limits.
    pub(super) fn slice_bytes(
        &self,
        max_slice_bytes: usize,
        streams: usize,
    ) -> Result<usize, GpuError> {
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
        Ok((max_slice_bytes as u64).min(by_limits) as usize)
    }

    /// Compiles a pipeline from `source` with this backend's layout, for
    /// tests of the error path; the pipeline is thrown away.
    pub(super) fn check_compiles(&self, source: &PipelineSource) -> Result<(), GpuError> {
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
    pub(super) fn destroy(&self) {
        self.device.destroy();
    }

    /// The matrix into its buffer, one u32 per entry, row by row.
    pub(super) fn write_matrix(&self, matrix: &Matrix) {
        let mut entries = Vec::with_capacity(matrix.rows() * matrix.cols() * 4);
        for r in 0..matrix.rows() {
            for &e in matrix.row(r) {
                entries.extend_from_slice(&u32::from(e).to_le_bytes());
            }
        }
        self.queue.write_buffer(&self.matrix, 0, &entries);
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
    pub(super) fn map_result(
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

#[cfg(test)]
mod tests {
    use super::gpu_device_node;

    #[test]
    fn gpu_device_nodes_are_found_by_kind() {
        let dev = tempfile::tempdir().unwrap();
        let touch = |p: &str| std::fs::write(dev.path().join(p), b"").unwrap();
        // What a GPU-less server has: no node is taken for a GPU's.
        for p in ["null", "tty0", "nvme0n1", "dxgkrnl", "cardinal"] {
            touch(p);
        }
        std::fs::create_dir(dev.path().join("dri")).unwrap();
        assert_eq!(gpu_device_node(dev.path()), None);
        touch("dri/renderD128");
        assert_eq!(
            gpu_device_node(dev.path()),
            Some(dev.path().join("dri/renderD128"))
        );
        for node in ["nvidiactl", "nvidia0", "dxg", "kgsl-3d0", "mali0"] {
            let dev = tempfile::tempdir().unwrap();
            std::fs::write(dev.path().join(node), b"").unwrap();
            assert_eq!(
                gpu_device_node(dev.path()),
                Some(dev.path().join(node)),
                "{node}"
            );
        }
        assert_eq!(gpu_device_node(&dev.path().join("absent")), None);
    }
}
