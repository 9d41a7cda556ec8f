//! ×4 super-resolution of a low-resolution photo with the built-in prior: the input is the measurement
//! itself (a real low-res image), resized to 8×8 if needed. `cargo run --release --example superres
//! [-- LOWRES.png]` writes superres.png (32×32). Without an argument it makes an 8×8 input from a sample.

use std::path::{Path, PathBuf};

use reddiff::image::{Fit, Image};
use reddiff::model::Unet;
use reddiff::operators::{Task, TaskKind};
use reddiff::restore::{restore_measured, Problem};
use reddiff::solvers::RedDiffOptions;
use reddiff::{Gpu, Result};

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gpu = Gpu::new()?;
    let unet = Unet::load(&gpu, &root.join("models/emoji32"))?;
    let size = unet.info().image_size;
    let low = match std::env::args().nth(1).map(PathBuf::from) {
        Some(p) => Image::read(&p)?.fit(size / 4, Fit::Resize, 1)?,
        None => Image::read(&root.join("assets/samples/twitter-1f467-1f3fc.png"))?.resize(size / 4, size / 4),
    };
    let task = Task { kind: TaskKind::Sr(4), seed: 0 };
    let problem = Problem {
        opts: RedDiffOptions { steps: 100, lr: task.default_lr(), ..Default::default() },
        task,
        sigma_y: 0.0,
        class: None,
        method: reddiff::solvers::Method::RedDiff,
    };
    let out = reddiff::gpu::block_on(restore_measured(&gpu, &unet, &problem, &[low.clone()], |s| {
        if s.step % 25 == 0 {
            println!("step {}/{} (t = {})", s.step, s.steps, s.t);
        }
        true
    }))?;
    Image::strip(&[&low.upscale_nearest(4), out.pinv[0].as_ref().unwrap_or(&out.result[0]), &out.result[0]]).write(Path::new("superres-compare.png"))?;
    out.result[0].write(Path::new("superres.png"))?;
    println!("wrote superres.png and superres-compare.png (low-res | H+y | RED-diff)");
    Ok(())
}
