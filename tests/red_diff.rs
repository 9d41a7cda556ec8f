//! RED-diff with an analytic Gaussian prior, where the answer is known in closed form, plus the loop's
//! bookkeeping: timestep order, cancellation, divergence detection, bad options.

mod common;

use common::gpu;
use reddiff::model::Schedule;
use reddiff::operators::{Task, TaskKind};
use reddiff::solvers::{red_diff::timesteps, red_diff_blocking, GaussianPrior, Init, Order, RedDiffOptions, Weighting};
use reddiff::{ops, Error};

#[test]
fn fixed_t_stationary_point_is_the_tikhonov_solution() {
    // Prior N(m, s²I) with s = 0: ε̂(x_t) = (x_t − √ᾱ m)/√(1−ᾱ), so ε̂ − ε = √ᾱ(μ − m)/√(1−ᾱ) exactly and the
    // gradient is deterministic: Hᵀ(Hμ − y)/M + λ·w_t·√ᾱ/√(1−ᾱ)·(μ − m)/N. With linear weighting
    // w_t = √(1−ᾱ)/√ᾱ this is Hᵀ(Hμ − y)/M + (λ/N)(μ − m). For inpainting (M = N): observed pixels go to
    // (y + λ m)/(1 + λ), missing ones to m.
    let g = gpu();
    let shape = [1usize, 3, 8, 8];
    let m = ops::normal(g, &shape, 1, 0, 0.0, 0.5).unwrap();
    let truth = ops::normal(g, &shape, 2, 0, 0.0, 0.5).unwrap();
    let prior = GaussianPrior { mean: m.clone(), std: 0.0, schedule: Schedule::ddpm() };
    let h = Task { kind: TaskKind::InpaintBox, seed: 0 }.operator(g, 3, 8, 8).unwrap();
    let y = h.forward(g, &truth).unwrap();
    let lambda = 0.25f32;
    let opts = RedDiffOptions { steps: 1500, lr: 0.02, lambda, order: Order::Fixed(500), weighting: Weighting::Linear, ..Default::default() };
    let mu = red_diff_blocking(g, &prior, &*h, &y, &shape, &Schedule::ddpm(), &opts, |_| true).unwrap().read(g).unwrap();
    let (mv, yv) = (m.read(g).unwrap(), y.read(g).unwrap());
    // Observed where H keeps the pixel: H(1) = mask.
    let keep = h.forward(g, &ops::fill(g, &shape, 1.0).unwrap()).unwrap().read(g).unwrap();
    let mut worst = 0f32;
    for i in 0..mu.len() {
        let want = if keep[i] == 1.0 { (yv[i] + lambda * mv[i]) / (1.0 + lambda) } else { mv[i] };
        worst = worst.max((mu[i] - want).abs());
    }
    eprintln!("max |mu - tikhonov| = {worst:.2e}");
    assert!(worst < 1e-2, "RED-diff fixed point off by {worst}");
}

#[test]
fn timestep_orders() {
    let d = timesteps(1000, 4, Order::Descending, 0).unwrap();
    assert_eq!(d, vec![750, 500, 250, 0]);
    assert_eq!(timesteps(1000, 4, Order::Ascending, 0).unwrap(), vec![0, 250, 500, 750]);
    let mut r = timesteps(1000, 50, Order::Random, 3).unwrap();
    assert_ne!(r, timesteps(1000, 50, Order::Descending, 0).unwrap());
    r.sort();
    assert_eq!(r, timesteps(1000, 50, Order::Ascending, 0).unwrap());
    assert!(timesteps(1000, 0, Order::Descending, 0).is_err());
    assert!(timesteps(1000, 3, Order::Fixed(1000), 0).is_err());
}

#[test]
fn callback_order_cancel_divergence_and_bad_options() {
    let g = gpu();
    let shape = [1usize, 3, 8, 8];
    let prior = GaussianPrior { mean: g.zeros(&shape).unwrap(), std: 0.5, schedule: Schedule::ddpm() };
    let h = Task { kind: TaskKind::Sr(2), seed: 0 }.operator(g, 3, 8, 8).unwrap();
    let y = h.forward(g, &ops::normal(g, &shape, 5, 0, 0.0, 0.5).unwrap()).unwrap();
    let opts = RedDiffOptions { steps: 20, loss_every: 5, preview_every: 10, ..Default::default() };
    let mut seen = Vec::new();
    let mut previews = 0;
    let mut losses = 0;
    red_diff_blocking(g, &prior, &*h, &y, &shape, &Schedule::ddpm(), &opts, |s| {
        seen.push(s.t);
        previews += s.preview.is_some() as usize;
        losses += s.loss.is_some() as usize;
        true
    })
    .unwrap();
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "descending: {seen:?}");
    assert_eq!((previews, losses), (2, 4));
    let r = red_diff_blocking(g, &prior, &*h, &y, &shape, &Schedule::ddpm(), &opts, |s| s.step < 3);
    assert!(matches!(r, Err(Error::Cancelled { step: 3 })), "{r:?}");
    // A measurement with NaN drives μ to NaN: reported as divergence with the step.
    let bad = ops::affine(g, &y, f32::NAN, 0.0).unwrap();
    let r = red_diff_blocking(
        g,
        &prior,
        &*h,
        &bad,
        &shape,
        &Schedule::ddpm(),
        &RedDiffOptions { steps: 10, check_every: 4, init: Init::Zeros, ..Default::default() },
        |_| true,
    );
    assert!(matches!(r, Err(Error::Diverged { step: 4, .. })), "{r:?}");
    for o in [RedDiffOptions { steps: 0, ..opts.clone() }, RedDiffOptions { lr: 0.0, ..opts.clone() }, RedDiffOptions { lambda: -1.0, ..opts.clone() }] {
        assert!(red_diff_blocking(g, &prior, &*h, &y, &shape, &Schedule::ddpm(), &o, |_| true).is_err());
    }
    assert!(matches!(red_diff_blocking(g, &prior, &*h, &y, &[1, 3, 16, 16], &Schedule::ddpm(), &opts, |_| true), Err(Error::Shape { .. })));
}

#[test]
fn a_batched_restoration_equals_single_image_runs_with_the_same_keys() {
    // Every random draw (measurement noise, x_t noise) is keyed per image: restoring four images as one batch
    // gives each image exactly what restoring it alone gives, whatever its position (here: reversed order).
    use reddiff::image::Image;
    use reddiff::model::Unet;
    use reddiff::restore::{restore_synthetic, Problem};
    let g = gpu();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let unet = Unet::load(g, &root.join("models/emoji32")).unwrap();
    let names = ["google-1f466.png", "twitter-1f467-1f3fc.png", "google-1f309.png", "twitter-1f481-1f3fe.png"];
    let imgs: Vec<Image> = names.iter().map(|n| Image::read(&root.join("assets/samples").join(n)).unwrap()).collect();
    let keys: Vec<u32> = names.iter().map(|n| ops::image_key(n)).collect();
    let problem = |keys: Vec<u32>| Problem {
        task: Task { kind: TaskKind::Sr(4), seed: 0 },
        sigma_y: 0.05,
        opts: RedDiffOptions { steps: 4, image_keys: keys, ..Default::default() },
        class: None,
        method: reddiff::solvers::Method::RedDiff,
    };
    let batch = reddiff::gpu::block_on(restore_synthetic(g, &unet, &problem(keys.clone()), &imgs, |_| true)).unwrap();
    for i in 0..names.len() {
        let single = reddiff::gpu::block_on(restore_synthetic(g, &unet, &problem(vec![keys[i]]), &imgs[i..=i], |_| true)).unwrap();
        let worst = batch.result[i].data.iter().zip(&single.result[0].data).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst <= 1e-5, "{}: batched vs alone differ by {worst}", names[i]);
        let wm = batch.measurement[i].data.iter().zip(&single.measurement[0].data).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(wm == 0.0, "{}: measurement noise depends on the batch ({wm})", names[i]);
    }
    // A different key gives different noise.
    let other = reddiff::gpu::block_on(restore_synthetic(g, &unet, &problem(vec![keys[0] ^ 1]), &imgs[0..1], |_| true)).unwrap();
    assert!(other.measurement[0].data != batch.measurement[0].data);
}

#[test]
fn a_warm_loop_creates_no_bind_groups() {
    // Once its first steps have taken their buffers from the pool, a RED-diff step creates no bind group: the
    // network replays its captured graph, the solver's own kernels find theirs in the device's cache.
    use reddiff::model::Unet;
    use reddiff::solvers::UnetPrior;
    // A device of its own: the bind-group counter is per device, and other tests share `gpu()`.
    let own = reddiff::Gpu::new().unwrap();
    let g = &own;
    let unet = Unet::load(g, &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/emoji32")).unwrap();
    let shape = [1usize, 3, 32, 32];
    let task = Task { kind: TaskKind::Sr(4), seed: 0 };
    let h = task.operator(g, 3, 32, 32).unwrap();
    let y = h.forward(g, &ops::normal(g, &shape, 3, 0, 0.0, 0.5).unwrap()).unwrap();
    let prior = UnetPrior { unet: &unet, class: None };
    let opts = RedDiffOptions { steps: 12, lr: task.default_lr(), ..Default::default() };
    let mut counts = Vec::new();
    red_diff_blocking(g, &prior, &*h, &y, &shape, &Schedule::ddpm(), &opts, |_| {
        counts.push(g.bind_groups_created());
        true
    })
    .unwrap();
    let per_step: Vec<u64> = counts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(per_step.len() == 11 && per_step[4..10].iter().all(|&n| n == 0), "bind groups created per step: {per_step:?}");
}
