//! Writes a model directory with random weights for any architecture: `config.json` as given and a
//! safetensors file holding every tensor the config asks for (F16 by default), so large architectures can
//! be loaded and timed without a checkpoint (the browser test loads guided-diffusion's FFHQ-256 network
//! this way). Convolution and linear weights are N(0, 1/fan_in), norm scales 1, biases 0; the same seed
//! gives the same file.
//!
//! `cargo run --release --example random_model -- CONFIG.json OUT_DIR [f16|f32] [SEED]`
//!
//! CONFIG may also be `ffhq256`: guided-diffusion's FFHQ-256 arguments (as in DPS and RED-diff; the same as
//! `tools/make_fixtures.py --full`'s ffhq256, 93.6M parameters).

use std::path::{Path, PathBuf};

use reddiff::{model::Unet, Error, Gpu, Result};

/// guided-diffusion's FFHQ-256 network (`tools/make_fixtures.py`, FULL["ffhq256"]).
const FFHQ256: &str = r#"{"image_size": 256, "num_channels": 128, "num_res_blocks": 1, "channel_mult": "", "attention_resolutions": "16",
 "num_heads": 4, "num_head_channels": 64, "num_heads_upsample": -1, "learn_sigma": true, "class_cond": false,
 "use_scale_shift_norm": true, "resblock_updown": true, "use_new_attention_order": false}"#;

/// splitmix64: a small deterministic generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f32 {
        ((-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()) as f32
    }
}

/// Random values for the tensor `key` of `shape`.
fn values(rng: &mut Rng, key: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    if key.ends_with("bias") || key.ends_with("running_mean") {
        return vec![0.0; n];
    }
    if shape.len() == 1 {
        return vec![1.0; n]; // norm scales
    }
    let fan_in: usize = shape[1..].iter().product();
    let std = 1.0 / (fan_in.max(1) as f32).sqrt();
    (0..n).map(|_| std * rng.normal()).collect()
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| Error::Io { path: path.into(), source })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(cfg), Some(out)) = (args.first(), args.get(1)) else {
        return Err(Error::Invalid { op: "random_model", msg: "usage: random_model CONFIG.json|ffhq256 OUT_DIR [f16|f32] [SEED]".into() });
    };
    let f16 = match args.get(2).map(String::as_str) {
        None | Some("f16") => true,
        Some("f32") => false,
        Some(o) => return Err(Error::Invalid { op: "random_model", msg: format!("dtype '{o}': f16 or f32") }),
    };
    let seed: u64 = args.get(3).map(|s| s.parse().map_err(|_| Error::Invalid { op: "random_model", msg: format!("seed '{s}'") })).transpose()?.unwrap_or(0);
    let config = if cfg == "ffhq256" { FFHQ256.to_string() } else { std::fs::read_to_string(cfg).map_err(|source| Error::Io { path: cfg.into(), source })? };
    let gpu = Gpu::new()?;
    let shapes = Unet::parameter_shapes(&gpu, Path::new("config.json"), &config)?;
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out).map_err(|source| Error::Io { path: out.clone(), source })?;
    let mut rng = Rng(seed);
    let mut data: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
    let mut params = 0;
    for (key, shape) in &shapes {
        let v = values(&mut rng, key, shape);
        params += v.len();
        let bytes = if f16 { v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect() } else { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        data.push((key.clone(), bytes, shape.clone()));
    }
    let dtype = if f16 { safetensors::Dtype::F16 } else { safetensors::Dtype::F32 };
    let views = data
        .iter()
        .map(|(k, b, s)| safetensors::tensor::TensorView::new(dtype, s.clone(), b).map(|v| (k.clone(), v)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid { op: "random_model", msg: e.to_string() })?;
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::Invalid { op: "random_model", msg: e.to_string() })?;
    // Diffusers configs name their weight file differently.
    let wname = if config.contains("block_out_channels") { "diffusion_pytorch_model.safetensors" } else { "model.safetensors" };
    write(&out.join("config.json"), config.as_bytes())?;
    write(&out.join(wname), &bytes)?;
    println!(
        "wrote {} ({} tensors, {:.1}M parameters, {:.1} MB) and config.json",
        out.join(wname).display(),
        shapes.len(),
        params as f64 / 1e6,
        bytes.len() as f64 / 1e6
    );
    Ok(())
}
