//! What is built once per backend: the adapter chosen, the device and its
//! fault reports, the bind group layout, the two pipelines and the matrix
//! buffer.

use std::sync::{Arc, Mutex};

use super::plan::{MAX_PIECES, PIECE_BYTES};
use super::shaders::{self, PipelineSource};
use super::{AdapterChoice, BLOCK_BYTES, DEFAULT_MAX_SLICE_BYTES, GpuBackend, GpuError, lock};

/// The largest matrix: 255 x 255 entries, one u32 each.
const MATRIX_BYTES: u64 = 255 * 255 * 4;

/// Faults that wgpu reports through callbacks, checked after each wait.
#[derive(Default)]
pub(super) struct Faults {
    pub(super) lost: Mutex<Option<String>>,
    pub(super) error: Mutex<Option<GpuError>>,
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

pub(super) fn backend_name(b: wgpu::Backend) -> &'static str {
    match b {
        wgpu::Backend::Noop => "no-op",
        wgpu::Backend::Vulkan => "Vulkan",
        wgpu::Backend::Metal => "Metal",
        wgpu::Backend::Dx12 => "DX12",
        wgpu::Backend::Gl => "OpenGL",
        wgpu::Backend::BrowserWebGpu => "WebGPU",
    }
}

pub(super) fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete",
        wgpu::DeviceType::IntegratedGpu => "integrated",
        wgpu::DeviceType::VirtualGpu => "virtual",
        wgpu::DeviceType::Other => "other",
        wgpu::DeviceType::Cpu => "software",
    }
}

/// Preference among adapters: hardware first, software last.
pub(super) fn device_type_rank(t: wgpu::DeviceType) -> u8 {
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
}

/// Compiles one pipeline's module; a failure names the shader files.
pub(super) fn build_pipeline(
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
