//! The `reddiff` command-line tool.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use reddiff::image::Image;
use reddiff::model::{weights::write_tensors, HostTensor, Schedule, TensorFile, Unet};
use reddiff::solvers::{ddim_sample, DdimOptions, UnetPrior};
use reddiff::{ops, Error, Gpu, Result};

#[derive(Parser)]
#[command(name = "reddiff", version, about = "Image restoration with diffusion priors (RED-diff) on any GPU through wgpu")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The built-in prior, relative to the crate (used when --model is not given).
fn builtin_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/emoji32")
}

#[derive(Subcommand)]
enum Command {
    /// Print the selected GPU adapter, its limits and features (REDDIFF_BACKEND / REDDIFF_ADAPTER choose).
    Adapter,
    /// Architecture summary, parameter count, weight dtype and estimated GPU memory of a model directory.
    Info {
        /// Model directory (config.json + safetensors); default: the built-in prior.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Run the network once: IN holds x [N,C,H,W] f32, t [N] and optionally y [N] class labels;
    /// OUT gets eps (f32, all output channels).
    Eps {
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
    /// Sample images from the prior with DDIM on the GPU and save them as a grid PNG.
    Sample {
        #[arg(long)]
        model: Option<PathBuf>,
        /// Number of images.
        #[arg(long, default_value_t = 16)]
        n: usize,
        /// DDIM steps.
        #[arg(long, default_value_t = 50)]
        steps: usize,
        /// 0 = deterministic DDIM.
        #[arg(long, default_value_t = 0.0)]
        eta: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Initial noise from a safetensors file (tensor `noise` or the only tensor), [N,C,H,W].
        #[arg(long)]
        noise: Option<PathBuf>,
        /// Class label for class-conditional models.
        #[arg(long)]
        class: Option<usize>,
        #[arg(long, default_value = "samples.png")]
        output: PathBuf,
    },
}

fn load(gpu: &Gpu, model: Option<PathBuf>) -> Result<Unet> {
    Unet::load(gpu, &model.unwrap_or_else(builtin_model))
}

fn eps(model: Option<PathBuf>, input: &Path, output: &Path) -> Result<()> {
    let io = TensorFile::read(input)?;
    let x = io.get("x")?;
    let t = io.get("t")?;
    let y: Option<Vec<usize>> = match io.tensors.get("y") {
        Some(y) => Some(
            y.data
                .iter()
                .map(|v| if *v >= 0.0 && v.fract() == 0.0 { Ok(*v as usize) } else { Err(Error::Format { path: input.into(), msg: format!("label {v} is not a class index") }) })
                .collect::<Result<_>>()?,
        ),
        None => None,
    };
    let gpu = Gpu::new()?;
    let m = load(&gpu, model)?;
    let out = m.forward(&gpu, &gpu.upload(&x.shape, &x.data)?, &gpu.upload(&t.shape, &t.data)?, y.as_deref())?;
    let host = HostTensor { shape: out.shape().to_vec(), data: out.read(&gpu)? };
    write_tensors(output, &[("eps", &host)])?;
    println!("wrote eps {:?} to {}", host.shape, output.display());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn sample(model: Option<PathBuf>, n: usize, steps: usize, eta: f32, seed: u64, noise: Option<PathBuf>, class: Option<usize>, output: &Path) -> Result<()> {
    let gpu = Gpu::new()?;
    let m = load(&gpu, model)?;
    let (c, s) = (m.info().in_channels, m.info().image_size);
    let x = match noise {
        Some(p) => {
            let f = TensorFile::read(&p)?;
            let t = match f.tensors.get("noise") {
                Some(t) => t,
                None if f.tensors.len() == 1 => f.tensors.values().next().ok_or(Error::Empty { op: "noise", shape: vec![] })?,
                None => return Err(Error::Format { path: p.clone(), msg: "expected a tensor named 'noise'".into() }),
            };
            if t.shape.len() != 4 || t.shape[1] != c {
                return Err(Error::Format { path: p.clone(), msg: format!("noise {:?} should be [N, {c}, H, W]", t.shape) });
            }
            gpu.upload(&t.shape, &t.data)?
        }
        None => ops::normal(&gpu, &[n, c, s, s], seed, 0, 0.0, 1.0)?,
    };
    let bar = indicatif::ProgressBar::new(steps as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} t={msg} {per_sec}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
    let prior = UnetPrior { unet: &m, class };
    let out = ddim_sample(&gpu, &prior, &x, &Schedule::ddpm(), DdimOptions { steps, eta, seed }, |i, t| {
        if i % 5 == 4 {
            let _ = gpu.flush();
        }
        bar.set_message(t.to_string());
        bar.inc(1);
    })?;
    let v = out.read(&gpu)?;
    bar.finish();
    let sh = out.shape();
    let img = sh[1] * sh[2] * sh[3];
    let images: Vec<Image> = (0..sh[0]).map(|i| Image::new(sh[1], sh[2], sh[3], v[i * img..(i + 1) * img].to_vec())).collect::<Result<_>>()?;
    let cols = (sh[0] as f64).sqrt().ceil() as usize;
    Image::grid(&images, cols)?.write_png(output)?;
    println!("wrote {} samples to {}", sh[0], output.display());
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Adapter => Gpu::new().map(|g| println!("{}", g.adapter())),
        Command::Info { model } => Gpu::new().and_then(|g| load(&g, model)).map(|m| println!("{}", m.info())),
        Command::Eps { model, input, output } => eps(model, &input, &output),
        Command::Sample { model, n, steps, eta, seed, noise, class, output } => sample(model, n, steps, eta, seed, noise, class, &output),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
