//! Box inpainting of a bundled sample with the built-in prior, through the library API.
//! `cargo run --release --example inpaint [-- IMAGE.png]` writes inpainted.png.

use std::path::{Path, PathBuf};

use reddiff::image::{Fit, Image};
use reddiff::metrics::psnr;
use reddiff::model::{Schedule, Unet};
use reddiff::operators::{measure, Task, TaskKind};
use reddiff::restore::{to_images, to_tensor};
use reddiff::solvers::{red_diff_blocking, RedDiffOptions, UnetPrior};
use reddiff::{Gpu, Result};

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let input = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| root.join("assets/samples/twitter-1f467-1f3fc.png"));
    let gpu = Gpu::new()?;
    let unet = Unet::load(&gpu, &root.join("models/emoji32"))?;
    let size = unet.info().image_size;
    let truth = Image::read(&input)?.fit(size, Fit::Crop, 1)?;

    // The degradation: the centre half of the image is hidden.
    let x = to_tensor(&gpu, std::slice::from_ref(&truth))?;
    let task = Task { kind: TaskKind::InpaintBox, seed: 0 };
    let h = task.operator(&gpu, 3, size, size)?;
    let y = measure(&gpu, &*h, &x, 0.0, 1)?;

    // RED-diff: Adam on the posterior mean, 100 timesteps from t = 990 down to 0.
    let opts = RedDiffOptions { steps: 100, lr: task.default_lr(), ..Default::default() };
    let prior = UnetPrior { unet: &unet, class: None };
    let mu = red_diff_blocking(&gpu, &prior, &*h, &y, x.shape(), &Schedule::ddpm(), &opts, |s| {
        if s.step % 25 == 0 {
            println!("step {}/{} (t = {})", s.step, s.steps, s.t);
        }
        true
    })?;

    let pinv = h.pinv(&gpu, &y)?.expect("inpainting has a pseudo-inverse");
    let baseline = reddiff::gpu::block_on(to_images(&gpu, &pinv, true))?.remove(0);
    let result = reddiff::gpu::block_on(to_images(&gpu, &mu, true))?.remove(0);
    println!("PSNR: masked input {:.2} dB, RED-diff {:.2} dB", psnr(&truth, &baseline)?, psnr(&truth, &result)?);
    result.write(Path::new("inpainted.png"))
}
