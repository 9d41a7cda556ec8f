//! Diffusion models: UNets in the ADM (guided-diffusion) and diffusers `UNet2DModel` layouts, loaded from a
//! model directory (config.json + safetensors), and the noise schedule.

mod adm;
mod autotune;
mod backward;
mod blocks;
mod config;
mod diffusers;
mod loader;
pub mod schedule;
mod unet;
pub mod weights;

use std::path::Path;

pub use autotune::{candidates as autotune_candidates, TuneResult};
pub use backward::UnetTape;
pub use schedule::Schedule;
pub use unet::{ModelFormat, ModelInfo, Unet};
pub use weights::{HostTensor, TensorFile};

#[cfg(not(target_arch = "wasm32"))]
use crate::error::Error;
use crate::error::Result;
use crate::gpu::Gpu;

/// Weight file names per format.
#[cfg(not(target_arch = "wasm32"))]
const ADM_WEIGHTS: &str = "model.safetensors";
#[cfg(not(target_arch = "wasm32"))]
const DIFFUSERS_WEIGHTS: &str = "diffusion_pytorch_model.safetensors";

/// Which format a config.json describes: diffusers configs carry `_class_name` or `block_out_channels`.
fn detect(cfg: &config::Config) -> Result<ModelFormat> {
    if cfg.has("_class_name") {
        let name = cfg.string("_class_name", None)?;
        if name != "UNet2DModel" {
            return Err(cfg.err("_class_name", format!("'{name}' is not supported (only UNet2DModel)")));
        }
        return Ok(ModelFormat::Diffusers);
    }
    if cfg.has("block_out_channels") {
        return Ok(ModelFormat::Diffusers);
    }
    if cfg.has("num_channels") {
        return Ok(ModelFormat::Adm);
    }
    Err(cfg.err(
        "_class_name",
        "cannot tell the model format: expected a diffusers UNet2DModel config or guided-diffusion create_model arguments (num_channels, ...)",
    ))
}

/// The largest model resolution reddiff loads (pixels per side).
pub const MAX_IMAGE_SIZE: usize = 2048;
/// The most channels of any UNet level reddiff loads.
pub const MAX_CHANNELS: usize = 8192;
/// The most residual blocks per UNet level reddiff loads.
pub const MAX_BLOCKS: usize = 32;

/// guided-diffusion arguments that do not change the network (training, sampling and precision settings).
const ADM_IGNORED_KEYS: &[&str] = &[
    "dropout",
    "use_checkpoint",
    "use_fp16",
    "diffusion_steps",
    "noise_schedule",
    "timestep_respacing",
    "use_kl",
    "predict_xstart",
    "rescale_timesteps",
    "rescale_learned_sigmas",
];

/// diffusers UNet2DModel config entries that do not change the network at inference.
const DIFFUSERS_IGNORED_KEYS: &[&str] = &["dropout", "num_train_timesteps", "mid_block_type"];

/// Tiles are tuned at load on real GPUs running the tiled kernels (not on CPU adapters, where the tiled
/// family only runs in tests), unless `REDDIFF_AUTOTUNE=0`.
#[cfg(not(target_arch = "wasm32"))]
fn autotune_on_load(gpu: &Gpu) -> bool {
    gpu.profile() == crate::gpu::KernelProfile::Tiled
        && gpu.adapter().device_type != "Cpu"
        && std::env::var("REDDIFF_AUTOTUNE").map(|v| v != "0").unwrap_or(true)
}

impl Unet {
    /// Loads a model directory: `config.json` plus `model.safetensors` (ADM) or
    /// `diffusion_pytorch_model.safetensors` (diffusers). Every key and shape is validated before anything is
    /// uploaded. On GPUs the tiled convolution is then autotuned for the model's shapes ([`Unet::autotune`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(gpu: &Gpu, dir: &Path) -> Result<Unet> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|source| Error::Io { path: cfg_path.clone(), source })?;
        let cfg = config::Config::parse(&cfg_path, &text)?;
        let wname = match detect(&cfg)? {
            ModelFormat::Adm => ADM_WEIGHTS,
            ModelFormat::Diffusers => DIFFUSERS_WEIGHTS,
        };
        let wpath = dir.join(wname);
        let bytes = std::fs::read(&wpath).map_err(|source| Error::Io { path: wpath.clone(), source })?;
        Self::from_bytes(gpu, &cfg_path, &text, &wpath, &bytes)?.after_load(gpu)
    }

    /// What every native load does after building: frees the raw weights' buffers once packing ran, and on
    /// GPUs autotunes the tiled convolution.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn after_load(self, gpu: &Gpu) -> Result<Unet> {
        gpu.sync()?;
        gpu.trim_pool();
        if autotune_on_load(gpu) {
            // Tuning only picks among kernels that all pass the same tests; a failure keeps the defaults.
            let _ = self.autotune(gpu, 1);
        }
        Ok(self)
    }

    /// Loads a model from the contents of its config.json and weight file (paths only name them in errors).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_bytes(gpu: &Gpu, cfg_name: &Path, config_json: &str, weights_name: &Path, weights: &[u8]) -> Result<Unet> {
        crate::gpu::block_on(Self::from_bytes_async(gpu, cfg_name, config_json, weights_name, weights, |_| {}))
    }

    /// [`Unet::from_bytes`] that yields to the event loop while it converts and checks the weights (every
    /// [`LOAD_YIELD_VALUES`] values), calling `progress` with the fraction done (0 … 1), so a web page stays
    /// responsive. The weights are converted one tensor at a time: the host holds `weights` plus one
    /// tensor's f32 copy, never the whole model in f32; F16 convolution weights are packed as f16 on
    /// adapters with `SHADER_F16`.
    pub async fn from_bytes_async(
        gpu: &Gpu,
        cfg_name: &Path,
        config_json: &str,
        weights_name: &Path,
        weights: &[u8],
        mut progress: impl FnMut(f64),
    ) -> Result<Unet> {
        let cfg = config::Config::parse(cfg_name, config_json)?;
        let format = detect(&cfg)?;
        let file = weights::WeightFile::parse(weights_name, weights)?;
        let build = |l: &mut loader::Loader| match format {
            ModelFormat::Adm => adm::build(&cfg, l, file.dtypes.clone()),
            ModelFormat::Diffusers => diffusers::build(&cfg, l, file.dtypes.clone()),
        };
        // Pass 1 validates every key and shape without touching the GPU.
        let mut dry = loader::Loader::new(gpu, &file, true);
        let probe = build(&mut dry)?;
        dry.finish()?;
        cfg.check_unknown_keys(match format {
            ModelFormat::Adm => ADM_IGNORED_KEYS,
            ModelFormat::Diffusers => DIFFUSERS_IGNORED_KEYS,
        })?;
        drop(probe);
        // Pass 2 converts and checks every value (the bulk of the host work), yielding now and then.
        let total = dry.params.max(1);
        let (mut done, mut since) = (0usize, 0usize);
        for key in file.keys() {
            let v = file.values(&key)?;
            file.check_finite(&key, &v)?;
            done += v.len();
            since += v.len();
            if since >= LOAD_YIELD_VALUES {
                since = 0;
                progress(done as f64 / total as f64);
                gpu.yield_now().await;
            }
        }
        // Pass 3 uploads.
        let mut real = loader::Loader::new(gpu, &file, false);
        let model = build(&mut real)?;
        gpu.flush()?;
        progress(1.0);
        Ok(model)
    }
}

impl Unet {
    /// The weights a config.json asks for: (key, shape) of every tensor, in the order the network uses
    /// them — what a safetensors file for it must hold (used to write random-weight models of any
    /// architecture, e.g. `examples/random_model.rs`). Runs the builder's dry pass; nothing is uploaded.
    pub fn parameter_shapes(gpu: &Gpu, cfg_name: &Path, config_json: &str) -> Result<Vec<(String, Vec<usize>)>> {
        let cfg = config::Config::parse(cfg_name, config_json)?;
        let mut rec = loader::Loader::recorder(gpu);
        match detect(&cfg)? {
            ModelFormat::Adm => drop(adm::build(&cfg, &mut rec, vec!["F16".into()])?),
            ModelFormat::Diffusers => drop(diffusers::build(&cfg, &mut rec, vec!["F16".into()])?),
        }
        Ok(rec.taken)
    }
}

/// Weight values converted between two yields of [`Unet::from_bytes_async`].
pub const LOAD_YIELD_VALUES: usize = 4 << 20;
