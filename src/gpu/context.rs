//! Adapter selection and device creation.

use std::sync::{Arc, Mutex};

use super::kernel::KernelCache;
use super::pool::BufferPool;
use super::stream::Stream;
use super::tune::{ConvKernel, TileConfig};
use crate::error::{Error, Result};

/// Which kernel variants suit the adapter: CPU rasterisers (lavapipe, SwiftShader) prefer register-blocked
/// kernels without workgroup memory; real GPUs prefer shared-memory tiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelProfile {
    /// Register-blocked, no workgroup memory (fastest measured on lavapipe).
    RegisterBlocked,
    /// Workgroup-memory tiles (for discrete and integrated GPUs).
    Tiled,
}

/// What the selected adapter is and what was requested from it.
#[derive(Clone, Debug)]
pub struct AdapterReport {
    /// Adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// Backend, e.g. "Vulkan".
    pub backend: String,
    /// Device type, e.g. "Cpu" or "DiscreteGpu".
    pub device_type: String,
    /// Driver name and version string.
    pub driver: String,
    /// Largest storage buffer binding, bytes.
    pub max_storage_binding: u64,
    /// Largest buffer, bytes.
    pub max_buffer: u64,
    /// Storage buffers per shader stage.
    pub max_storage_buffers_per_stage: u32,
    /// Workgroup memory, bytes.
    pub max_workgroup_storage: u32,
    /// Optional features enabled on the device (SHADER_F16, SUBGROUP, TIMESTAMP_QUERY).
    pub features: Vec<&'static str>,
    /// Kernel variants chosen for this adapter.
    pub profile: KernelProfile,
    /// Cooperative-matrix (tensor-core) convolution: "on (…)" with its self-check error, or "off: why".
    pub coop_matrix: String,
    /// Shader loops keep wgpu's loop counter ([`GpuOptions::loop_bounding`]; off unless asked for).
    pub loop_bounding: bool,
    /// Subgroup sizes the adapter reports (min, max); (0, 0) without SUBGROUP.
    pub subgroup_sizes: (u32, u32),
}

impl std::fmt::Display for AdapterReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {}, driver {}); max storage binding {} MiB, max buffer {} MiB, {} storage buffers/stage, \
             {} KiB workgroup memory; features [{}]; subgroups {}..{}; kernels {:?}; cooperative matrices {}; \
             shader loop bounding: {}",
            self.name,
            self.backend,
            self.device_type,
            self.driver,
            self.max_storage_binding >> 20,
            self.max_buffer >> 20,
            self.max_storage_buffers_per_stage,
            self.max_workgroup_storage >> 10,
            self.features.join(", "),
            self.subgroup_sizes.0,
            self.subgroup_sizes.1,
            self.profile,
            self.coop_matrix,
            // In a browser the WGSL goes to the browser's compiler, not through wgpu's shader checks.
            if cfg!(target_arch = "wasm32") {
                "left to the browser"
            } else if self.loop_bounding {
                "on"
            } else {
                "off"
            }
        )
    }
}

/// Adapter selection options. [`GpuOptions::from_env`] reads `REDDIFF_BACKEND` (vulkan|metal|dx12|gl),
/// `REDDIFF_ADAPTER` (case-insensitive substring of the adapter name), `REDDIFF_KERNELS` (cpu|gpu),
/// `REDDIFF_COOP` (0 turns the cooperative-matrix path off), `REDDIFF_SUBGROUPS` (0 turns the
/// subgroup-shared convolution weights and matrix-product operands off), `REDDIFF_WINOGRAD` (0: never, 1: every
/// 3×3 convolution it can run, see [`GpuOptions::winograd`]), `REDDIFF_LOOP_BOUNDING` (1 keeps wgpu's loop
/// counter in every shader loop, see [`GpuOptions::loop_bounding`]) and `REDDIFF_TILE` (the tiled
/// convolution's tile where nothing was autotuned, see [`GpuOptions::tile`]).
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Restrict to one backend: "vulkan", "metal", "dx12" or "gl".
    pub backend: Option<String>,
    /// Choose the first adapter whose name contains this (case-insensitive).
    pub adapter: Option<String>,
    /// Force kernel variants instead of choosing by device type.
    pub profile: Option<KernelProfile>,
    /// Cap the storage-binding size below the adapter's (bytes); models then split batches sooner.
    pub max_binding_bytes: Option<u64>,
    /// Never use cooperative matrices (tensor cores), even where the adapter has them.
    pub no_coop_matrix: bool,
    /// Never share convolution weights or matrix-product A operands over subgroups
    /// ([`ConvKernel::SharedWeights`], [`crate::ops::MatmulKernel::SharedA`]).
    pub no_shared_weights: bool,
    /// Winograd F(4×4, 3×3) for 3×3 convolutions on CPU adapters with subgroup-shared weights
    /// ([`ConvKernel::SharedWeights`]): `None` where it was measured faster (enough 4×4 tiles per product,
    /// see [`crate::ops::winograd_pays`]), `Some(false)` never, `Some(true)` wherever it can run.
    pub winograd: Option<bool>,
    /// Keep wgpu's loop bounding: a counter that naga adds to every shader loop so that an infinite loop
    /// cannot be treated as unreachable by the driver's compiler. Off by default: reddiff compiles only its
    /// own shaders, whose loops are all bounded by their parameters (counts below 2^31), and the counter
    /// costs time — ~9 % of an emoji32 forward on lavapipe; the wgpu issue 7698 reports 100× on a GPU.
    /// Browsers (WebGPU) apply their own checks either way.
    pub loop_bounding: bool,
    /// The tile of every tiled convolution that autotuning did not choose (instead of
    /// [`TileConfig::untuned`]; `REDDIFF_AUTOTUNE=0` leaves every one untuned), for benchmarks that compare
    /// kernels. From `REDDIFF_TILE` as [`TileConfig::parse`] reads it (`4x4`, `8x4v`, `4x4v16`); a value it
    /// cannot read becomes an invalid tile, which [`Gpu::with_options`] refuses.
    pub tile: Option<TileConfig>,
}

impl GpuOptions {
    /// Options from the environment variables `REDDIFF_BACKEND`, `REDDIFF_ADAPTER` and `REDDIFF_KERNELS`
    /// (`cpu` = register-blocked, `gpu` = workgroup-tiled; unset or anything else = by device type).
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let profile = match get("REDDIFF_KERNELS").map(|v| v.to_ascii_lowercase()).as_deref() {
            Some("cpu") | Some("register-blocked") => Some(KernelProfile::RegisterBlocked),
            Some("gpu") | Some("tiled") => Some(KernelProfile::Tiled),
            _ => None,
        };
        let off = |k: &str| matches!(get(k).map(|v| v.to_ascii_lowercase()).as_deref(), Some("0") | Some("off") | Some("false") | Some("no"));
        GpuOptions {
            backend: get("REDDIFF_BACKEND"),
            adapter: get("REDDIFF_ADAPTER"),
            profile,
            no_coop_matrix: off("REDDIFF_COOP"),
            no_shared_weights: off("REDDIFF_SUBGROUPS"),
            winograd: match get("REDDIFF_WINOGRAD").map(|v| v.to_ascii_lowercase()).as_deref() {
                Some("0") | Some("off") | Some("false") | Some("no") => Some(false),
                Some("1") | Some("on") | Some("true") | Some("yes") => Some(true),
                _ => None,
            },
            loop_bounding: matches!(
                get("REDDIFF_LOOP_BOUNDING").map(|v| v.to_ascii_lowercase()).as_deref(),
                Some("1") | Some("on") | Some("true") | Some("yes")
            ),
            tile: get("REDDIFF_TILE").map(|v| TileConfig::parse(&v).unwrap_or(TileConfig { tm: 0, tn: 0, vec4: false, splits: 0 })),
            ..GpuOptions::default()
        }
    }
}

/// The GPU context: device, queue, kernel cache, buffer pool and the open command stream.
/// Cheap to share (`&Gpu` everywhere); all interior state is behind mutexes.
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) limits: wgpu::Limits,
    pub(crate) report: AdapterReport,
    pub(crate) kernels: Mutex<KernelCache>,
    pub(crate) pool: Arc<Mutex<BufferPool>>,
    pub(crate) stream: Mutex<Stream>,
    pub(crate) errors: Arc<Mutex<Vec<String>>>,
    /// Per-op wall time when profiling is on (each dispatch is then submitted and waited for alone).
    pub(crate) profile: Mutex<Option<std::collections::BTreeMap<String, (u64, f64)>>>,
    /// Graph captures in progress, one per capturing thread (see [`Gpu::capture`]).
    pub(crate) capture: Mutex<Vec<super::graph::Capture>>,
    /// Completion flag of the work marked by the last [`Gpu::yield_now`] (browser).
    #[cfg(target_arch = "wasm32")]
    #[allow(clippy::type_complexity)]
    pub(crate) in_flight: Mutex<Option<Arc<Mutex<(bool, Option<std::task::Waker>)>>>>,
    /// Bind groups created so far.
    pub(crate) bind_groups: std::sync::atomic::AtomicU64,
    /// Bind groups of dispatches outside graphs, for reuse (see [`super::kernel`]).
    pub(crate) binds: Mutex<std::collections::HashMap<super::kernel::BindKey, wgpu::BindGroup>>,
    /// Tile choices of the tiled kernels (autotuned per model load on GPUs).
    pub(crate) tune: Mutex<super::tune::TuneTable>,
    /// A 4-element tensor bound where a kernel's binding is unused.
    pub(crate) dummy: super::tensor::Tensor,
    /// The cooperative-matrix convolution is enabled and passed its self-check.
    pub(crate) coop: bool,
    /// [`ConvKernel::SharedWeights`] can run (see [`Gpu::shared_weights`]).
    pub(crate) shared_weights: bool,
    /// [`GpuOptions::winograd`].
    pub(crate) winograd: Option<bool>,
    /// [`GpuOptions::tile`].
    pub(crate) tile: Option<TileConfig>,
}

const NO_ADAPTER_HINT: &str = "Install a Vulkan, Metal or DX12 driver. On CPU-only Linux: \
    `apt-get install mesa-vulkan-drivers libvulkan1` (lavapipe). In a browser, enable WebGPU.";

fn parse_backend(name: &str) -> Result<wgpu::Backends> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "vulkan" | "vk" => wgpu::Backends::VULKAN,
        "metal" | "mtl" => wgpu::Backends::METAL,
        "dx12" | "d3d12" => wgpu::Backends::DX12,
        "gl" | "gles" | "opengl" => wgpu::Backends::GL,
        "webgpu" | "browser" => wgpu::Backends::BROWSER_WEBGPU,
        other => return Err(Error::Invalid { op: "REDDIFF_BACKEND", msg: format!("unknown backend '{other}' (use vulkan, metal, dx12 or gl)") }),
    })
}

/// Largest difference between the cooperative-matrix and the f32 tiled convolution on two odd-shaped
/// problems, relative to the largest output magnitude.
async fn coop_error(gpu: &Gpu) -> Result<f32> {
    use crate::ops::{self, Conv2d, Epilogue};
    let mut worst = 0f32;
    for (i, (shape, cout, stride, f16)) in [([2usize, 40, 9, 11], 136usize, 1usize, false), ([1, 24, 13, 10], 20, 2, true)].into_iter().enumerate() {
        let x = ops::normal(gpu, &shape, 11, i as u64, 0.0, 1.0)?;
        let w = ops::normal(gpu, &[cout, shape[1], 3, 3], 12, i as u64, 0.0, 0.2)?;
        let b = ops::normal(gpu, &[cout], 13, i as u64, 0.0, 1.0)?;
        let packed = ops::pack_conv(gpu, &w, f16)?;
        let cfg = Conv2d { stride, padding: 1 };
        let epi = Epilogue::bias(Some(&b));
        let want = ops::conv2d_with(gpu, &x, &packed, cfg, &epi, Some(ConvKernel::Tiled(TileConfig::DEFAULT)))?.read_async(gpu).await?;
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
        for bm in super::tune::COOP_BM {
            let splits = if i == 0 { 1 } else { 4 };
            let got = ops::conv2d_with(gpu, &x, &packed, cfg, &epi, Some(ConvKernel::CoopMatrix { bm, splits }))?.read_async(gpu).await?;
            let err = want.iter().zip(&got).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            worst = worst.max(if err.is_finite() { err / scale } else { f32::INFINITY });
        }
    }
    Ok(worst)
}

/// Whether to request cooperative matrices: `Ok` when the adapter offers a 16×16×16 f16 × f16 → f32
/// configuration, f16 shaders, and subgroups of exactly 32 (the kernel's layout), and the options allow it.
fn coop_matrix_support(adapter: &wgpu::Adapter, opts: &GpuOptions) -> std::result::Result<(), String> {
    if opts.no_coop_matrix {
        return Err("turned off (REDDIFF_COOP=0)".into());
    }
    let info = adapter.get_info();
    let f = adapter.features();
    if !f.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
        return Err("the adapter has none".into());
    }
    if !f.contains(wgpu::Features::SHADER_F16) {
        return Err("no SHADER_F16".into());
    }
    if info.subgroup_min_size != 32 || info.subgroup_max_size != 32 {
        return Err(format!("subgroups of {}..{} (the kernel needs exactly 32)", info.subgroup_min_size, info.subgroup_max_size));
    }
    use wgpu::CooperativeScalarType as S;
    let fits = adapter
        .cooperative_matrix_properties()
        .iter()
        .any(|p| p.m_size == 16 && p.n_size == 16 && p.k_size == 16 && p.ab_type == S::F16 && p.cr_type == S::F32);
    if !fits {
        return Err("no 16x16x16 f16 x f16 -> f32 configuration".into());
    }
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

impl Gpu {
    /// Opens the best adapter allowed by the environment (see [`GpuOptions::from_env`]). Blocks (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Gpu> {
        super::block_on(Self::with_options(GpuOptions::from_env()))
    }

    /// Opens an adapter: high-performance first, filtered by backend and name.
    pub async fn with_options(opts: GpuOptions) -> Result<Gpu> {
        if let Some(t) = opts.tile.filter(|t| !t.is_valid()) {
            let env = std::env::var("REDDIFF_TILE").map(|v| format!(" (REDDIFF_TILE={v:?})")).unwrap_or_default();
            return Err(Error::Invalid {
                op: "gpu options",
                msg: format!(
                    "tile {}x{}{}{env}: the tiled kernels take TMxTN with TM, TN in 1, 2, 4, 8, or v for the vec4 kernel (4 or 8) and then the slices of k, e.g. 4x4, 8x4v, 4x4v16",
                    t.tm,
                    t.tn,
                    if t.vec4 { format!("v{}", t.splits) } else { String::new() }
                ),
            });
        }
        let backends = match &opts.backend {
            Some(b) => parse_backend(b)?,
            None => wgpu::Backends::all(),
        };
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let mut wanted = Vec::new();
        if let Some(b) = &opts.backend {
            wanted.push(format!("backend {b}"));
        }
        if let Some(a) = &opts.adapter {
            wanted.push(format!("a name containing '{a}'"));
        }
        let detail = if wanted.is_empty() { String::new() } else { format!(" with {}", wanted.join(" and ")) };
        let adapter = match Self::pick_adapter(&instance, backends, opts.adapter.as_deref()).await {
            Some(a) => a,
            None => {
                let found = Self::adapter_names(&instance, backends).await;
                let detail = if found.is_empty() { detail } else { format!("{detail}; adapters present: {}", found.join("; ")) };
                let hint = if found.is_empty() { NO_ADAPTER_HINT } else { "Unset REDDIFF_ADAPTER / REDDIFF_BACKEND or pick one of the adapters listed." };
                return Err(Error::NoAdapter { detail, hint });
            }
        };
        Self::from_adapter(adapter, &opts).await
    }

    #[cfg(not(target_arch = "wasm32"))]
    async fn pick_adapter(instance: &wgpu::Instance, backends: wgpu::Backends, name: Option<&str>) -> Option<wgpu::Adapter> {
        let mut adapters: Vec<wgpu::Adapter> = instance
            .enumerate_adapters(backends)
            .await
            .into_iter()
            .filter(|a| a.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS))
            .filter(|a| match name {
                Some(n) => a.get_info().name.to_lowercase().contains(&n.to_lowercase()),
                None => true,
            })
            .collect();
        adapters.sort_by_key(|a| type_rank(a.get_info().device_type));
        adapters.into_iter().next()
    }

    /// "name (backend, type)" of every adapter with compute shaders, for error messages.
    #[cfg(not(target_arch = "wasm32"))]
    async fn adapter_names(instance: &wgpu::Instance, backends: wgpu::Backends) -> Vec<String> {
        let _ = backends;
        let all = instance.enumerate_adapters(wgpu::Backends::all()).await;
        all.iter().map(|a| a.get_info()).map(|i| format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)).collect()
    }

    #[cfg(target_arch = "wasm32")]
    async fn adapter_names(_: &wgpu::Instance, _: wgpu::Backends) -> Vec<String> {
        Vec::new()
    }

    #[cfg(target_arch = "wasm32")]
    async fn pick_adapter(instance: &wgpu::Instance, _backends: wgpu::Backends, name: Option<&str>) -> Option<wgpu::Adapter> {
        let opts = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        };
        let a = instance.request_adapter(&opts).await.ok()?;
        match name {
            Some(n) if !a.get_info().name.to_lowercase().contains(&n.to_lowercase()) => None,
            _ => Some(a),
        }
    }

    async fn from_adapter(adapter: wgpu::Adapter, opts: &GpuOptions) -> Result<Gpu> {
        let info = adapter.get_info();
        let wanted = wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY;
        let mut features = adapter.features() & wanted;
        let coop = coop_matrix_support(&adapter, opts);
        if coop.is_ok() {
            features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        // Ask for everything the adapter offers: large storage bindings and buffers matter for 256x256 models.
        let mut limits = adapter.limits();
        if let Some(cap) = opts.max_binding_bytes {
            limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap.max(256));
        }
        if limits.max_storage_buffers_per_shader_stage < 4 || limits.max_compute_invocations_per_workgroup < 256 {
            return Err(Error::RequestDevice {
                adapter: info.name.clone(),
                reason: format!(
                    "adapter offers {} storage buffers per stage and {} invocations per workgroup; \
                     reddiff needs at least 4 and 256",
                    limits.max_storage_buffers_per_shader_stage, limits.max_compute_invocations_per_workgroup
                ),
            });
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("reddiff"),
                required_features: features,
                required_limits: limits.clone(),
                // SAFETY: the experimental feature requested is cooperative matrices; reddiff uses them in one
                // kernel, and only after that kernel matched the f32 kernel on a test problem (`check_coop`).
                experimental_features: if coop.is_ok() { unsafe { wgpu::ExperimentalFeatures::enabled() } } else { wgpu::ExperimentalFeatures::disabled() },
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::RequestDevice { adapter: info.name.clone(), reason: e.to_string() })?;
        let mut gpu = Self::from_device(device, queue, info, features, limits, opts.profile)?;
        gpu.shared_weights &= !opts.no_shared_weights;
        gpu.winograd = opts.winograd;
        gpu.tile = opts.tile;
        gpu.report.loop_bounding = opts.loop_bounding;
        gpu.report.coop_matrix = match coop {
            Ok(()) if gpu.profile() == KernelProfile::Tiled => gpu.check_coop().await,
            Ok(()) => "off: the register-blocked kernels are in use".into(),
            Err(why) => format!("off: {why}"),
        };
        Ok(gpu)
    }

    /// Turns the cooperative-matrix convolution on if both its workgroup tiles match the f32 tiled kernel on
    /// two odd-shaped test convolutions (3×3 stride 1 and stride 2, f32 and f16 weights, K not a multiple
    /// of 32; the second with split-K) within 1e-2 of the output's largest magnitude (f16 operands carry ~5e-4 relative rounding).
    /// Returns the report line.
    async fn check_coop(&mut self) -> String {
        self.coop = true;
        let outcome = coop_error(self).await;
        let _ = self.take_errors();
        match outcome {
            Ok(rel) if rel <= 1e-2 => format!("on (f16 16x16x16, f32 sums; self-check {rel:.1e} relative)"),
            Ok(rel) => {
                self.coop = false;
                format!("off: self-check failed ({rel:.1e} relative to the f32 kernel)")
            }
            Err(e) => {
                self.coop = false;
                format!("off: self-check failed ({e})")
            }
        }
    }

    /// Wraps a device an application already has (e.g. its renderer's), so reddiff's tensors live next to
    /// the app's own resources. The device should offer at least 4 storage buffers per stage and 256
    /// invocations per workgroup (default wgpu limits do); larger storage-binding limits allow larger
    /// batches. `SHADER_F16`, `SUBGROUP` and `TIMESTAMP_QUERY` are used when enabled. The kernel family
    /// follows the adapter type (see [`GpuOptions::profile`] to force one). Note: reddiff installs its own
    /// uncaptured-error handler on the device, turning validation errors into [`Error::Gpu`].
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue, profile: Option<KernelProfile>) -> Result<Gpu> {
        let info = device.adapter_info();
        let wanted = wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY;
        let features = device.features() & wanted;
        let limits = device.limits();
        if limits.max_storage_buffers_per_shader_stage < 4 || limits.max_compute_invocations_per_workgroup < 256 {
            return Err(Error::RequestDevice {
                adapter: info.name.clone(),
                reason: format!(
                    "the device allows {} storage buffers per stage and {} invocations per workgroup; reddiff needs at least 4 and 256",
                    limits.max_storage_buffers_per_shader_stage, limits.max_compute_invocations_per_workgroup
                ),
            });
        }
        Self::from_device(device, queue, info, features, limits, profile)
    }

    fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        features: wgpu::Features,
        limits: wgpu::Limits,
        profile: Option<KernelProfile>,
    ) -> Result<Gpu> {
        // Validation errors must never abort the process: collect them and surface them as Error::Gpu.
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let mut names = Vec::new();
        for (f, n) in [(wgpu::Features::SHADER_F16, "SHADER_F16"), (wgpu::Features::SUBGROUP, "SUBGROUP"), (wgpu::Features::TIMESTAMP_QUERY, "TIMESTAMP_QUERY")]
        {
            if features.contains(f) {
                names.push(n);
            }
        }
        let profile = profile.unwrap_or(match info.device_type {
            wgpu::DeviceType::Cpu => KernelProfile::RegisterBlocked,
            _ => KernelProfile::Tiled,
        });
        let subgroup_sizes = if features.contains(wgpu::Features::SUBGROUP) { (info.subgroup_min_size, info.subgroup_max_size) } else { (0, 0) };
        let subgroup_min = subgroup_sizes.0;
        let report = AdapterReport {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            max_storage_binding: limits.max_storage_buffer_binding_size,
            max_buffer: limits.max_buffer_size,
            max_storage_buffers_per_stage: limits.max_storage_buffers_per_shader_stage,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
            features: names,
            profile,
            coop_matrix: "off: not requested".into(),
            loop_bounding: false,
            subgroup_sizes,
        };
        let stream = Stream::new(&device);
        let pool = Arc::new(Mutex::new(BufferPool::new(Default::default())));
        // New buffers are zero-filled by wgpu.
        let dummy = super::tensor::Tensor::from_pooled(super::pool::take(&pool, &device, 256), vec![4]);
        Ok(Gpu {
            device,
            queue,
            limits,
            report,
            kernels: Mutex::new(KernelCache::default()),
            pool,
            stream: Mutex::new(stream),
            errors,
            dummy,
            tune: Mutex::new(Default::default()),
            capture: Mutex::new(Vec::new()),
            #[cfg(target_arch = "wasm32")]
            in_flight: Mutex::new(None),
            bind_groups: std::sync::atomic::AtomicU64::new(0),
            binds: Default::default(),
            profile: Mutex::new(None),
            coop: false,
            shared_weights: !cfg!(target_arch = "wasm32") && subgroup_min >= 8,
            winograd: None,
            tile: None,
        })
    }

    /// A small tensor to bind where a kernel ignores a binding.
    pub(crate) fn dummy(&self) -> &super::tensor::Tensor {
        &self.dummy
    }

    /// `t` for a binding declared as `array<vec4<f32>>` (which must hold at least 16 bytes), or the 4-float
    /// dummy where `t` has fewer than 4 elements (kernels read such views only when the shape is a whole
    /// number of vec4s).
    pub(crate) fn vec4_view<'a>(&'a self, t: &'a super::tensor::Tensor) -> &'a super::tensor::Tensor {
        if t.numel() >= 4 {
            t
        } else {
            &self.dummy
        }
    }

    /// The adapter's name, backend, limits and features, and the kernel variants in use.
    pub fn adapter(&self) -> &AdapterReport {
        &self.report
    }

    /// Kernel variant family used by ops (register-blocked on CPU adapters, tiled on GPUs).
    pub fn profile(&self) -> KernelProfile {
        self.report.profile
    }

    /// True when [`ConvKernel::SharedWeights`] and [`crate::ops::MatmulKernel::SharedA`] can run (and are
    /// chosen on CPU adapters): the device has subgroups of at least 8 lanes, this
    /// is not the browser (browsers want `enable subgroups;` in the WGSL, which naga does not parse yet), and
    /// `REDDIFF_SUBGROUPS=0` did not turn it off.
    pub fn shared_weights(&self) -> bool {
        self.shared_weights
    }

    /// [`GpuOptions::winograd`] as this device was opened with.
    pub fn winograd(&self) -> Option<bool> {
        self.winograd
    }

    /// True when the cooperative-matrix (tensor-core) convolution is enabled (it passed its self-check).
    pub fn coop_matrix(&self) -> bool {
        self.coop
    }

    /// The convolution kernel for an M (output channels) × N (pixels) × K (Cin·K·K) problem: register-blocked
    /// on CPU adapters; on GPUs the autotuned choice for its size class, else cooperative matrices where
    /// enabled, else the tiled kernel with [`GpuOptions::tile`] or [`TileConfig::untuned`].
    pub fn conv_kernel(&self, m: usize, n: usize, k: usize) -> ConvKernel {
        if self.profile() == KernelProfile::RegisterBlocked {
            return if self.shared_weights() { ConvKernel::SharedWeights } else { ConvKernel::RegisterBlocked };
        }
        let tuned = self.tune.lock().ok().and_then(|t| t.conv.get(&super::tune::SizeClass::of(m, n, k)).copied());
        match tuned {
            Some(ConvKernel::CoopMatrix { .. }) if !self.coop => ConvKernel::Tiled(self.tile.unwrap_or_else(|| TileConfig::untuned(m, n, k))),
            Some(k) => k,
            None if self.coop => ConvKernel::CoopMatrix { bm: 64, splits: 1 },
            None => ConvKernel::Tiled(self.tile.unwrap_or_else(|| TileConfig::untuned(m, n, k))),
        }
    }

    /// While [`Gpu::start_conv_log`] is on for this thread, remembers a convolution it issued.
    pub(crate) fn log_conv(&self, x_shape: &[usize], w: &crate::ops::ConvWeights, cfg: crate::ops::Conv2d) {
        let me = std::thread::current().id();
        if let Ok(mut t) = self.tune.lock() {
            if let Some((_, log)) = t.logs.iter_mut().find(|l| l.0 == me) {
                log.push(super::tune::ConvProblem { x_shape: x_shape.to_vec(), w: w.clone(), cfg });
            }
        }
    }

    /// Starts remembering the convolutions this thread's ops issue (for autotuning a model's shapes).
    pub fn start_conv_log(&self) {
        let me = std::thread::current().id();
        if let Ok(mut t) = self.tune.lock() {
            t.logs.retain(|l| l.0 != me);
            t.logs.push((me, Vec::new()));
        }
    }

    /// Stops remembering this thread's convolutions and returns those issued since [`Gpu::start_conv_log`].
    pub fn take_conv_log(&self) -> Vec<super::tune::ConvProblem> {
        let me = std::thread::current().id();
        let Ok(mut t) = self.tune.lock() else {
            return Vec::new();
        };
        match t.logs.iter().position(|l| l.0 == me) {
            Some(i) => t.logs.swap_remove(i).1,
            None => Vec::new(),
        }
    }

    /// Records the kernel to use for a size class (autotuning, or a caller's own choice).
    pub fn set_conv_kernel(&self, class: super::tune::SizeClass, kernel: ConvKernel) {
        if let Ok(mut t) = self.tune.lock() {
            t.conv.insert(class, kernel);
        }
    }

    /// Largest storage-buffer binding in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size
    }

    /// Turns per-op timing on or off. While on, every dispatch is submitted and waited for on its own (slow;
    /// for finding hot spots, native only). [`Gpu::profile_report`] returns the totals.
    pub fn set_profiling(&self, on: bool) {
        if let Ok(mut p) = self.profile.lock() {
            *p = if on { Some(Default::default()) } else { None };
        }
    }

    /// (op, dispatches, seconds) per op since profiling was turned on, slowest first.
    pub fn profile_report(&self) -> Vec<(String, u64, f64)> {
        let mut v: Vec<_> = match self.profile.lock() {
            Ok(p) => p.as_ref().map(|m| m.iter().map(|(k, (n, s))| (k.clone(), *n, *s)).collect()).unwrap_or_default(),
            Err(_) => vec![],
        };
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }

    /// Returns (and clears) validation errors wgpu reported since the last call.
    pub(crate) fn take_errors(&self) -> Result<()> {
        let mut v = self.errors.lock().map_err(|_| Error::Gpu("error sink poisoned".into()))?;
        if v.is_empty() {
            Ok(())
        } else {
            let msg = v.join("; ");
            v.clear();
            Err(Error::Gpu(msg))
        }
    }
}
