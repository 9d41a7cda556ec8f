//! Kernel launch: shader modules and compute pipelines cached by (shader, entry point, override constants,
//! binding access), explicit bind-group layouts (binding 0: the parameter block; 1..: storage buffers), and
//! 1-D grids folded into 2-D when they exceed the adapter's per-dimension limit. Shaders recover the linear
//! workgroup index as `wid.x + wid.y * nwg.x` and return early past the end. Keys and parameter blocks are
//! fixed-size values. The parameter block is bound at a dynamic offset, so a bind group depends only on the
//! pipeline and the buffers: dispatches recorded outside a [`Graph`](super::Graph) reuse the bind group of an
//! earlier dispatch of the same pipeline on the same pool buffers (a loop's steps take the same buffers from
//! the pool in the same order), and a replayed graph creates none.

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Access {
    /// `var<storage, read>`.
    #[default]
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// Most override constants a kernel sets.
const MAX_CONSTANTS: usize = 4;
/// Most storage bindings a kernel takes.
pub(crate) const MAX_BINDINGS: usize = 8;

/// One pipeline: a shader, its entry point and up to four override constants.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    /// The shader file.
    pub shader: &'static Shader,
    /// Entry point name.
    pub entry: &'static str,
    constants: [(&'static str, f64); MAX_CONSTANTS],
    n_constants: usize,
}

impl Kernel {
    /// A kernel without override constants.
    pub fn new(shader: &'static Shader, entry: &'static str) -> Kernel {
        Kernel { shader, entry, constants: [("", 0.0); MAX_CONSTANTS], n_constants: 0 }
    }

    /// Adds an override constant (at most four; a fifth is ignored and reported at launch).
    pub fn with(mut self, name: &'static str, value: f64) -> Kernel {
        if self.n_constants < MAX_CONSTANTS {
            self.constants[self.n_constants] = (name, value);
        }
        self.n_constants += 1;
        self
    }

    /// The override constants set so far.
    pub fn constants(&self) -> &[(&'static str, f64)] {
        &self.constants[..self.n_constants.min(MAX_CONSTANTS)]
    }

    fn key(&self, access: &[Access]) -> KernelKey {
        let mut constants = [("", 0u64); MAX_CONSTANTS];
        for (slot, (name, v)) in constants.iter_mut().zip(self.constants()) {
            *slot = (*name, v.to_bits());
        }
        let mut acc = [Access::Read; MAX_BINDINGS];
        acc[..access.len()].copy_from_slice(access);
        KernelKey { shader: self.shader.name, entry: self.entry, constants, access: acc, n_access: access.len() }
    }
}

/// Pipeline cache key (no heap allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct KernelKey {
    shader: &'static str,
    entry: &'static str,
    constants: [(&'static str, u64); MAX_CONSTANTS],
    access: [Access; MAX_BINDINGS],
    n_access: usize,
}

pub(crate) struct Pipeline {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
}

/// A bind group's identity outside graphs: the pipeline (its address in the kernel cache, which keeps it)
/// and every bound buffer with its size.
#[derive(PartialEq, Eq, Hash)]
pub(crate) struct BindKey {
    pipe: usize,
    buffers: [Option<(wgpu::Buffer, u64)>; MAX_BINDINGS],
}

/// Bind groups kept for reuse; emptied when it reaches this many (a loop needs a few dozen).
const MAX_BIND_GROUPS: usize = 4096;

/// Compiled shader modules and pipelines, and the parameter layout each pipeline was first launched with.
#[derive(Default)]
pub(crate) struct KernelCache {
    modules: HashMap<&'static str, wgpu::ShaderModule>,
    pipelines: HashMap<KernelKey, Arc<Pipeline>>,
    layouts: Vec<ParamLayout>,
}

/// The scalar type of one parameter word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// `u32` (also shapes given as usize).
    U32,
    /// `i32`.
    I32,
    /// `f32`.
    F32,
}

/// The parameter block a kernel was launched with: shader file, entry point and the type of every word,
/// recorded when its pipeline is created (so a test can check them against the WGSL `struct` by naga
/// reflection: word i must be a member of that type at byte offset 4·i).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    /// Shader name (the `wgsl/` file without `.wgsl`).
    pub shader: &'static str,
    /// Entry point.
    pub entry: &'static str,
    /// Word types in order.
    pub kinds: Vec<ParamKind>,
}

/// A kernel's parameter block: up to 64 32-bit words (u32, i32 or f32 bit patterns), in the order of the
/// WGSL parameter struct's fields.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub(crate) words: [u32; 64],
    kinds: [ParamKind; 64],
    pub(crate) len: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params { words: [0; 64], kinds: [ParamKind::U32; 64], len: 0 }
    }
}

impl Params {
    /// Empty parameter block.
    pub fn new() -> Params {
        Params::default()
    }
    fn push(mut self, v: u32, kind: ParamKind) -> Params {
        if self.len < 64 {
            self.words[self.len] = v;
            self.kinds[self.len] = kind;
        }
        self.len += 1;
        self
    }
    /// Appends a u32 (words past 64 are counted and reported at launch).
    pub fn u(self, v: u32) -> Params {
        self.push(v, ParamKind::U32)
    }
    /// Appends a usize as u32 (callers check ranges; values here are shapes below 2^32).
    pub fn n(self, v: usize) -> Params {
        self.u(v as u32)
    }
    /// Appends an i32.
    pub fn i(self, v: i32) -> Params {
        self.push(v as u32, ParamKind::I32)
    }
    /// Appends an f32.
    pub fn f(self, v: f32) -> Params {
        self.push(v.to_bits(), ParamKind::F32)
    }
    /// The word types appended so far.
    pub fn kinds(&self) -> &[ParamKind] {
        &self.kinds[..self.len.min(64)]
    }
    /// The words appended so far.
    pub fn words(&self) -> &[u32] {
        &self.words[..self.len.min(64)]
    }
}

/// A validated dispatch: pipeline, workgroup grid and bindings.
pub(crate) struct Dispatch<'a> {
    pub(crate) op: &'static str,
    pub(crate) entry: &'static str,
    pub(crate) pipe: Arc<Pipeline>,
    pub(crate) gx: u32,
    pub(crate) gy: u32,
    pub(crate) args: &'a [(&'a Tensor, Access)],
}

impl Gpu {
    /// Every parameter layout this device has created a pipeline with (see [`ParamLayout`]).
    pub fn param_layouts(&self) -> Vec<ParamLayout> {
        self.kernels.lock().map(|c| c.layouts.clone()).unwrap_or_default()
    }

    fn pipeline(&self, k: &Kernel, access: &[Access], params: &Params) -> Result<Arc<Pipeline>> {
        let key = k.key(access);
        let mut cache = self.kernels.lock().map_err(|_| Error::Gpu("kernel cache poisoned".into()))?;
        if let Some(p) = cache.pipelines.get(&key) {
            return Ok(p.clone());
        }
        let device = &self.device;
        let loop_bounding = self.report.loop_bounding;
        let module = cache
            .modules
            .entry(k.shader.name)
            .or_insert_with(|| {
                let desc = wgpu::ShaderModuleDescriptor { label: Some(k.shader.name), source: wgpu::ShaderSource::Wgsl(k.shader.source.into()) };
                let mut checks = wgpu::ShaderRuntimeChecks::checked();
                checks.force_loop_bounding = loop_bounding;
                // SAFETY: only the loop counter may be left out, never the bounds or division checks. The
                // shaders are reddiff's own (`wgsl/`, compiled in), and every loop in them ends: each counts
                // up by a positive step (a constant, or a count the host makes at least 1) or halves a
                // positive value, towards a bound from the parameter block; those bounds (element, channel
                // and step counts of tensors that fit one storage binding) stay below 2^31, so no counter wraps.
                unsafe { device.create_shader_module_trusted(desc, checks) }
            })
            .clone();
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Uniform, has_dynamic_offset: true, min_binding_size: None },
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
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(k.entry), entries: &entries });
        let pl =
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor { label: Some(k.entry), bind_group_layouts: &[Some(&layout)], immediate_size: 0 });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(k.entry),
            layout: Some(&pl),
            module: &module,
            entry_point: Some(k.entry),
            compilation_options: wgpu::PipelineCompilationOptions { constants: k.constants(), zero_initialize_workgroup_memory: false },
            cache: None,
        });
        self.take_errors()?;
        let p = Arc::new(Pipeline { pipeline, layout });
        cache.pipelines.insert(key, p.clone());
        let kinds = params.kinds().to_vec();
        if !cache.layouts.iter().any(|l| l.shader == k.shader.name && l.entry == k.entry && l.kinds == kinds) {
            cache.layouts.push(ParamLayout { shader: k.shader.name, entry: k.entry, kinds });
        }
        Ok(p)
    }

    /// A bind group: a parameter block of `params` (at the dynamic offset given when it is set), then `args`
    /// at bindings 1.. in order.
    pub(crate) fn bind_group(&self, pipe: &Pipeline, params: &wgpu::Buffer, args: &[(&wgpu::Buffer, u64)]) -> wgpu::BindGroup {
        let mut entries: [Option<wgpu::BindGroupEntry>; MAX_BINDINGS + 1] = Default::default();
        entries[0] = Some(wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: params, offset: 0, size: wgpu::BufferSize::new(PARAM_SLOT) }),
        });
        for (i, (buffer, bytes)) in args.iter().enumerate() {
            entries[i + 1] = Some(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer, offset: 0, size: wgpu::BufferSize::new(*bytes) }),
            });
        }
        let list: Vec<wgpu::BindGroupEntry> = entries.into_iter().flatten().collect();
        self.count_bind_group();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &pipe.layout, entries: &list })
    }

    /// Records one dispatch of `groups` workgroups (a 1-D count, folded to 2-D past the per-dimension limit).
    /// `args` are bound at bindings 1.. in order. `op` names the operation in errors. While this thread is
    /// capturing a [`Graph`](super::Graph), the dispatch goes into the graph instead of the stream.
    pub(crate) fn launch(&self, op: &'static str, k: &Kernel, params: &Params, args: &[(&Tensor, Access)], groups: u64) -> Result<()> {
        if params.len > 64 {
            return Err(Error::Invalid { op, msg: format!("{} parameter words (max 64)", params.len) });
        }
        if k.n_constants > MAX_CONSTANTS || args.len() > MAX_BINDINGS {
            return Err(Error::Invalid {
                op,
                msg: format!("{} override constants and {} bindings (max {MAX_CONSTANTS}, {MAX_BINDINGS})", k.n_constants, args.len()),
            });
        }
        let max_bind = self.limits.max_storage_buffer_binding_size;
        for (t, _) in args {
            if t.bytes() > max_bind {
                return Err(Error::TooLarge { op, what: "a storage binding", bytes: t.bytes(), limit: max_bind, shape: t.shape().to_vec() });
            }
        }
        if groups == 0 {
            return Ok(());
        }
        let max_dim = self.limits.max_compute_workgroups_per_dimension as u64;
        let gx = groups.min(max_dim);
        let gy = groups.div_ceil(gx);
        if gy > max_dim {
            return Err(Error::TooLarge { op, what: "a dispatch (workgroups)", bytes: groups, limit: max_dim * max_dim, shape: vec![] });
        }
        let mut access = [Access::Read; MAX_BINDINGS];
        for (slot, a) in access.iter_mut().zip(args) {
            *slot = a.1;
        }
        let pipe = self.pipeline(k, &access[..args.len()], params)?;
        let d = Dispatch { op, entry: k.entry, pipe, gx: gx as u32, gy: gy as u32, args };
        if self.capture_dispatch(&d, params)? {
            return Ok(());
        }
        // Reserve a parameter slot and record under one lock, so concurrent callers cannot interleave a flush.
        let mut s = self.stream.lock().map_err(|_| Error::Gpu("stream poisoned".into()))?;
        if s.slots_used() >= SLOTS {
            s.submit(&self.queue);
        }
        let offset = s.params.len() as u64;
        s.params.extend_from_slice(bytemuck::cast_slice(params.words()));
        s.params.resize((offset + PARAM_SLOT) as usize, 0);
        let bind = self.reusable_bind_group(&d.pipe, &s.params_buf, args)?;
        let pass = s.pass(&self.device);
        pass.set_pipeline(&d.pipe.pipeline);
        pass.set_bind_group(0, &bind, &[offset as u32]);
        pass.dispatch_workgroups(d.gx, d.gy, 1);
        drop(s);
        self.profile_wait(|| profile_label(&d))?;
        Ok(())
    }

    /// The bind group for `pipe` on `args` (and the stream's parameter buffer): reused when every argument
    /// lives in the device's main pool (which keeps its buffers until [`Gpu::trim_pool`], which empties the
    /// cache), made afresh otherwise.
    fn reusable_bind_group(&self, pipe: &Arc<Pipeline>, params: &wgpu::Buffer, args: &[(&Tensor, Access)]) -> Result<wgpu::BindGroup> {
        let list = || args.iter().map(|(t, _)| (t.buffer(), t.bytes())).collect::<Vec<_>>();
        if !args.iter().all(|(t, _)| t.in_pool(&self.pool)) {
            return Ok(self.bind_group(pipe, params, &list()));
        }
        let mut buffers: [Option<(wgpu::Buffer, u64)>; MAX_BINDINGS] = Default::default();
        for (slot, (t, _)) in buffers.iter_mut().zip(args) {
            *slot = Some((t.buffer().clone(), t.bytes()));
        }
        let key = BindKey { pipe: Arc::as_ptr(pipe) as usize, buffers };
        let mut cache = self.binds.lock().map_err(|_| Error::Gpu("bind group cache poisoned".into()))?;
        if let Some(b) = cache.get(&key) {
            return Ok(b.clone());
        }
        if cache.len() >= MAX_BIND_GROUPS {
            cache.clear();
        }
        let b = self.bind_group(pipe, params, &list());
        cache.insert(key, b.clone());
        Ok(b)
    }

    /// When profiling: submits what is recorded, waits for it, and adds the time under `label()`.
    pub(crate) fn profile_wait(&self, label: impl FnOnce() -> String) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        if self.profile.lock().map(|p| p.is_some()).unwrap_or(false) {
            self.flush()?;
            let t0 = std::time::Instant::now();
            let _ = self.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None });
            if let Ok(mut p) = self.profile.lock() {
                if let Some(m) = p.as_mut() {
                    let e = m.entry(label()).or_insert((0, 0.0));
                    e.0 += 1;
                    e.1 += t0.elapsed().as_secs_f64();
                }
            }
        }
        #[cfg(target_arch = "wasm32")]
        let _ = label;
        Ok(())
    }
}

/// Profiling only: op, entry point and output shape.
pub(crate) fn profile_label(d: &Dispatch) -> String {
    let shape = d.args.iter().rev().find(|a| a.1 == Access::ReadWrite).map(|a| a.0.shape().to_vec()).unwrap_or_default();
    format!("{} {} {shape:?}", d.op, d.entry)
}
