//! Kernel launch: shader modules and compute pipelines cached by (shader, entry point, override constants),
//! explicit bind-group layouts (binding 0: the parameter block; 1..: storage buffers), and 1-D grids folded
//! into 2-D when they exceed the adapter's per-dimension limit. Shaders recover the linear workgroup index as
//! `wid.x + wid.y * nwg.x` and return early past the end.

use std::collections::HashMap;
use std::sync::Arc;

use super::stream::{PARAM_SLOT, SLOTS};
use super::tensor::Tensor;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// A WGSL source file.
#[derive(Debug)]
pub struct Shader {
    /// File name without extension, e.g. "conv".
    pub name: &'static str,
    /// The WGSL text.
    pub source: &'static str,
}

/// How a kernel uses a storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// One pipeline: a shader, its entry point and override constants.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The shader file.
    pub shader: &'static Shader,
    /// Entry point name.
    pub entry: &'static str,
    /// Pipeline-overridable constants (`override` declarations in WGSL).
    pub constants: Vec<(&'static str, f64)>,
}

impl Kernel {
    /// A kernel without override constants.
    pub fn new(shader: &'static Shader, entry: &'static str) -> Kernel {
        Kernel { shader, entry, constants: Vec::new() }
    }

    /// Adds an override constant.
    pub fn with(mut self, name: &'static str, value: f64) -> Kernel {
        self.constants.push((name, value));
        self
    }

    fn key(&self, access: &[Access]) -> String {
        format!("{}:{}:{:?}:{:?}", self.shader.name, self.entry, self.constants, access)
    }
}

struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// Compiled shader modules and pipelines.
#[derive(Default)]
pub(crate) struct KernelCache {
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    pipelines: HashMap<String, Arc<Pipeline>>,
}

/// A kernel's parameter block: up to 64 32-bit words (u32, i32 or f32 bit patterns).
#[derive(Clone, Debug, Default)]
pub struct Params(pub(crate) Vec<u32>);

impl Params {
    /// Empty parameter block.
    pub fn new() -> Params {
        Params(Vec::with_capacity(16))
    }
    /// Appends a u32.
    pub fn u(mut self, v: u32) -> Params {
        self.0.push(v);
        self
    }
    /// Appends a usize as u32 (callers check ranges; values here are shapes below 2^32).
    pub fn n(self, v: usize) -> Params {
        self.u(v as u32)
    }
    /// Appends an i32.
    pub fn i(self, v: i32) -> Params {
        self.u(v as u32)
    }
    /// Appends an f32.
    pub fn f(self, v: f32) -> Params {
        self.u(v.to_bits())
    }
}

impl Gpu {
    fn pipeline(&self, k: &Kernel, access: &[Access]) -> Result<Arc<Pipeline>> {
        let key = k.key(access);
        let mut cache = self.kernels.lock().map_err(|_| Error::Gpu("kernel cache poisoned".into()))?;
        if let Some(p) = cache.pipelines.get(&key) {
            return Ok(p.clone());
        }
        let device = &self.device;
        let module = cache
            .modules
            .entry(k.shader.name)
            .or_insert_with(|| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(k.shader.name),
                    source: wgpu::ShaderSource::Wgsl(k.shader.source.into()),
                })
            })
            .clone();
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        for (i, a) in access.iter().enumerate() {
            entries.push(wgpu::BindGroupLayoutEntry {
                binding: i as u32 + 1,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: *a == Access::Read },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            });
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(k.entry),
            entries: &entries,
        });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(k.entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(k.entry),
            layout: Some(&pl),
            module: &module,
            entry_point: Some(k.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &k.constants,
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        self.take_errors()?;
        let p = Arc::new(Pipeline { pipeline, layout });
        cache.pipelines.insert(key, p.clone());
        Ok(p)
    }

    /// Records one dispatch of `groups` workgroups (a 1-D count, folded to 2-D past the per-dimension limit).
    /// `args` are bound at bindings 1.. in order. `op` names the operation in errors.
    pub(crate) fn launch(
        &self,
        op: &'static str,
        k: &Kernel,
        params: &Params,
        args: &[(&Tensor, Access)],
        groups: u64,
    ) -> Result<()> {
        if params.0.len() * 4 > PARAM_SLOT as usize {
            return Err(Error::Invalid { op, msg: format!("{} parameter words (max 64)", params.0.len()) });
        }
        let max_bind = self.limits.max_storage_buffer_binding_size;
        for (t, _) in args {
            if t.bytes() > max_bind {
                return Err(Error::TooLarge {
                    op,
                    what: "a storage binding",
                    bytes: t.bytes(),
                    limit: max_bind,
                    shape: t.shape().to_vec(),
                });
            }
        }
        if groups == 0 {
            return Ok(());
        }
        let max_dim = self.limits.max_compute_workgroups_per_dimension as u64;
        let gx = groups.min(max_dim);
        let gy = groups.div_ceil(gx);
        if gy > max_dim {
            return Err(Error::TooLarge {
                op,
                what: "a dispatch (workgroups)",
                bytes: groups,
                limit: max_dim * max_dim,
                shape: vec![],
            });
        }
        let access: Vec<Access> = args.iter().map(|a| a.1).collect();
        let pipe = self.pipeline(k, &access)?;
        // Reserve a parameter slot and record under one lock, so concurrent callers cannot interleave a flush.
        let mut s = self.stream.lock().map_err(|_| Error::Gpu("stream poisoned".into()))?;
        if s.slots_used() >= SLOTS {
            s.submit(&self.queue);
        }
        let offset = s.params.len() as u64;
        s.params.extend_from_slice(bytemuck::cast_slice(&params.0));
        s.params.resize((offset + PARAM_SLOT) as usize, 0);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &s.params_buf,
                offset,
                size: wgpu::BufferSize::new(PARAM_SLOT),
            }),
        }];
        for (i, (t, _)) in args.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: t.buffer(),
                    offset: 0,
                    size: wgpu::BufferSize::new(t.bytes()),
                }),
            });
        }
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(k.entry),
            layout: &pipe.layout,
            entries: &entries,
        });
        let device = &self.device;
        let enc = s
            .encoder
            .get_or_insert_with(|| device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()));
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(op), timestamp_writes: None });
        pass.set_pipeline(&pipe.pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(gx as u32, gy as u32, 1);
        drop(pass);
        #[cfg(not(target_arch = "wasm32"))]
        if self.profile.lock().map(|p| p.is_some()).unwrap_or(false) {
            s.submit(&self.queue);
            drop(s);
            let t0 = std::time::Instant::now();
            let _ = self.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None });
            if let Ok(mut p) = self.profile.lock() {
                if let Some(m) = p.as_mut() {
                    // Profiling only: keyed by op, entry point and output shape.
                    let shape = args.iter().rev().find(|a| a.1 == Access::ReadWrite).map(|a| a.0.shape().to_vec()).unwrap_or_default();
                    let e = m.entry(format!("{op} {} {shape:?}", k.entry)).or_insert((0, 0.0));
                    e.0 += 1;
                    e.1 += t0.elapsed().as_secs_f64();
                }
            }
        }
        Ok(())
    }
}
