//! RED-diff (Mardani, Song, Kautz, Vahdat, ICLR 2024): variational posterior mean estimation with a diffusion
//! prior. μ starts at H⁺y and is optimised with Adam (betas 0.9, 0.99), one timestep per iteration:
//!
//! ε ~ N(0, I); x_t = √ᾱ_t μ + √(1−ᾱ_t) ε; ε̂ = ε_θ(x_t, t) (no backprop through the network);
//! loss = ½·mean((y − H(μ))²) + λ·w_t·mean(sg(ε̂ − ε) ⊙ μ), w_t = g(√(1−ᾱ_t)/√ᾱ_t),
//! so ∇μ = ∇ data term + λ·w_t·(ε̂ − ε)/N, with the means (and N) taken per image.
//!
//! Every step is recorded as GPU work (noise, x_t, ε̂, data gradient, combination, Adam) and submitted once;
//! nothing is read back except the periodic NaN check, optional losses and previews.

use std::str::FromStr;

use super::denoiser::Denoiser;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::image::{images_from_tensor, Image};
use crate::model::Schedule;
use crate::operators::{patterns::SplitMix, Operator};
use crate::ops::{self, AdamHyper, Stats};

/// g in w_t = g(√(1−ᾱ_t)/√ᾱ_t), the weighting of the denoising (regulariser) term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weighting {
    /// g(s) = s (the paper's default).
    Linear,
    /// g(s) = √s.
    Sqrt,
    /// g(s) = s².
    Square,
    /// g(s) = ln(1 + s).
    Log1p,
    /// g(s) = min(s, 1).
    ClippedLinear,
    /// g(s) = s^(2/3).
    Power23,
    /// g(s) = 1.
    Const,
}

impl Weighting {
    /// g(s).
    pub fn apply(self, s: f64) -> f64 {
        match self {
            Weighting::Linear => s,
            Weighting::Sqrt => s.sqrt(),
            Weighting::Square => s * s,
            Weighting::Log1p => s.ln_1p(),
            Weighting::ClippedLinear => s.min(1.0),
            Weighting::Power23 => s.powf(2.0 / 3.0),
            Weighting::Const => 1.0,
        }
    }
}

impl FromStr for Weighting {
    type Err = Error;
    fn from_str(s: &str) -> Result<Weighting> {
        Ok(match s {
            "linear" => Weighting::Linear,
            "sqrt" => Weighting::Sqrt,
            "square" => Weighting::Square,
            "log1p" => Weighting::Log1p,
            "clipped_linear" | "clipped-linear" => Weighting::ClippedLinear,
            "power_2_3" | "power-2-3" => Weighting::Power23,
            "const" => Weighting::Const,
            o => return Err(Error::Invalid { op: "weighting", msg: format!("'{o}': use linear, sqrt, square, log1p, clipped_linear, power_2_3 or const") }),
        })
    }
}

/// The order in which timesteps are visited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// From high t to low t (the paper's choice).
    Descending,
    /// From low to high (ablation).
    Ascending,
    /// A seeded random permutation (ablation).
    Random,
    /// The same t every step (for analysis and tests: the fixed point is then a Tikhonov solution).
    Fixed(usize),
}

impl FromStr for Order {
    type Err = Error;
    fn from_str(s: &str) -> Result<Order> {
        Ok(match s {
            "descending" => Order::Descending,
            "ascending" => Order::Ascending,
            "random" => Order::Random,
            o => match o.strip_prefix("fixed=").and_then(|t| t.parse().ok()) {
                Some(t) => Order::Fixed(t),
                None => return Err(Error::Invalid { op: "order", msg: format!("'{o}': use descending, ascending, random or fixed=T") }),
            },
        })
    }
}

/// How μ is initialised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// H⁺y (zeros for operators without a pseudo-inverse, i.e. phase retrieval).
    PseudoInverse,
    /// Zeros.
    Zeros,
    /// N(0, I) drawn from the seed.
    Random,
}

impl FromStr for Init {
    type Err = Error;
    fn from_str(s: &str) -> Result<Init> {
        Ok(match s {
            "pinv" | "pseudo-inverse" => Init::PseudoInverse,
            "zeros" => Init::Zeros,
            "random" => Init::Random,
            o => return Err(Error::Invalid { op: "init", msg: format!("'{o}': use pinv, zeros or random") }),
        })
    }
}

/// RED-diff settings. Defaults are the reference implementation's (lr 0.5; use 0.25 for inpainting).
#[derive(Clone, Debug)]
pub struct RedDiffOptions {
    /// Iterations (one timestep each), >= 1.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f32,
    /// λ, the weight of the denoising regulariser.
    pub lambda: f32,
    /// g in w_t.
    pub weighting: Weighting,
    /// Timestep order.
    pub order: Order,
    /// σ of the variational distribution q(x0|y) = N(μ, σ²I); 0 = point estimate.
    pub sigma_x0: f32,
    /// Seed of every random draw (noise per step, random init, random order).
    pub seed: u64,
    /// Initialisation of μ.
    pub init: Init,
    /// Adam β1, β2, ε (the learning rate above takes precedence over `adam.lr`).
    pub adam: AdamHyper,
    /// Read back a NaN/Inf check of μ every this many steps (0 = only at the end).
    pub check_every: usize,
    /// Report the data loss every this many steps (0 = never; each report reads back 4 floats).
    pub loss_every: usize,
    /// Hand μ to the callback every this many steps for previews (0 = never).
    pub preview_every: usize,
    /// One key per image of the batch (e.g. [`ops::image_key`] of its file name): every random draw for
    /// image k depends only on (seed, key k, step, position inside the image), never on k's place in the
    /// batch. Empty = keys 0, 1, …, N−1 (then a single image gets key 0).
    pub image_keys: Vec<u32>,
}

impl Default for RedDiffOptions {
    fn default() -> Self {
        RedDiffOptions {
            steps: crate::recommended::PAPER_STEPS,
            lr: 0.5,
            lambda: crate::recommended::PAPER_LAMBDA,
            weighting: Weighting::Linear,
            order: Order::Descending,
            sigma_x0: 0.0,
            seed: 0,
            init: Init::PseudoInverse,
            adam: AdamHyper { lr: 0.5, beta1: 0.9, beta2: 0.99, eps: 1e-8 },
            check_every: 25,
            loss_every: 0,
            preview_every: 0,
            image_keys: Vec::new(),
        }
    }
}

/// What the callback sees after each step.
pub struct StepInfo<'a> {
    /// 1-based step number.
    pub step: usize,
    /// Total steps.
    pub steps: usize,
    /// The timestep used in this step.
    pub t: usize,
    /// ½·mean((y − H(μ))²), on the steps where it was computed.
    pub loss: Option<f32>,
    /// The current μ as images (clamped to [-1, 1]), on preview steps.
    pub preview: Option<&'a [Image]>,
}

/// The timesteps visited by each iteration.
pub fn timesteps(t_total: usize, steps: usize, order: Order, seed: u64) -> Result<Vec<usize>> {
    if steps == 0 {
        return Err(Error::Invalid { op: "red_diff", msg: "steps must be at least 1".into() });
    }
    if let Order::Fixed(t) = order {
        if t >= t_total {
            return Err(Error::Invalid { op: "red_diff", msg: format!("fixed timestep {t} >= T = {t_total}") });
        }
        return Ok(vec![t; steps]);
    }
    // `steps` evenly spaced timesteps over [0, T); more steps than T repeat timesteps.
    let mut ts: Vec<usize> = (0..steps).map(|i| i * t_total / steps).collect();
    match order {
        Order::Descending => ts.reverse(),
        Order::Random => {
            let mut r = SplitMix::new(seed ^ 0x7153);
            for i in (1..ts.len()).rev() {
                ts.swap(i, (r.next_u64() % (i as u64 + 1)) as usize);
            }
        }
        Order::Ascending | Order::Fixed(_) => {}
    }
    Ok(ts)
}

/// The per-image keys of a batch of `n` as a GPU tensor: `keys` (one per image), or 0..n when empty.
pub fn image_keys(gpu: &Gpu, keys: &[u32], n: usize) -> Result<Tensor> {
    if keys.is_empty() {
        let k: Vec<u32> = (0..n as u32).collect();
        return gpu.upload_u32(&[n], &k);
    }
    if keys.len() != n {
        return Err(Error::Invalid { op: "red_diff", msg: format!("{} image keys for a batch of {n} images", keys.len()) });
    }
    gpu.upload_u32(&[n], keys)
}

/// [`red_diff`], blocking until done (native only).
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments)]
pub fn red_diff_blocking(
    gpu: &Gpu,
    den: &dyn Denoiser,
    op: &dyn Operator,
    y: &Tensor,
    x_shape: &[usize],
    schedule: &Schedule,
    opts: &RedDiffOptions,
    callback: impl FnMut(&StepInfo) -> bool,
) -> Result<Tensor> {
    crate::gpu::block_on(red_diff(gpu, den, op, y, x_shape, schedule, opts, callback))
}

/// Runs RED-diff for measurement `y` of operator `op` on images of shape `x_shape`, returning μ
/// [N, C, H, W] (not clamped). `callback` runs after each step is recorded; returning `false` cancels
/// ([`Error::Cancelled`]). Async so that the same loop runs in a browser; natively use [`red_diff_blocking`].
#[allow(clippy::too_many_arguments)]
pub async fn red_diff(
    gpu: &Gpu,
    den: &dyn Denoiser,
    op: &dyn Operator,
    y: &Tensor,
    x_shape: &[usize],
    schedule: &Schedule,
    opts: &RedDiffOptions,
    mut callback: impl FnMut(&StepInfo) -> bool,
) -> Result<Tensor> {
    const OP: &str = "red_diff";
    if !(opts.lr > 0.0) || !(opts.lambda >= 0.0) || !(opts.sigma_x0 >= 0.0) {
        return Err(Error::Invalid { op: OP, msg: format!("need lr > 0, lambda >= 0, sigma_x0 >= 0 (got {}, {}, {})", opts.lr, opts.lambda, opts.sigma_x0) });
    }
    if x_shape.len() != 4 || x_shape[1] != den.channels() {
        return Err(Error::Shape { op: OP, msg: format!("image shape {:?} does not fit a {}-channel prior", x_shape, den.channels()) });
    }
    if op.measurement_shape(x_shape) != y.shape() {
        return Err(Error::Shape { op: OP, msg: format!("measurement {:?} does not match {} of {:?}", y.shape(), op.name(), x_shape) });
    }
    let ts = timesteps(schedule.len(), opts.steps, opts.order, opts.seed)?;
    let keys = image_keys(gpu, &opts.image_keys, x_shape[0])?;
    let mu = match opts.init {
        Init::PseudoInverse => match op.pinv(gpu, y)? {
            Some(p) => p,
            None => gpu.zeros(x_shape)?,
        },
        Init::Zeros => gpu.zeros(x_shape)?,
        Init::Random => ops::normal_keyed(gpu, x_shape, opts.seed, &keys, u64::MAX - 1, 0.0, 1.0)?,
    };
    let (m, v) = (gpu.zeros(x_shape)?, gpu.zeros(x_shape)?);
    let adam = AdamHyper { lr: opts.lr, ..opts.adam };
    // Losses are means over one image (not the batch), so an image's gradient — and, through Adam's ε, its
    // result — does not depend on how many images share the batch. The operator's gradient is a batch mean.
    let batch = x_shape[0] as f32;
    let n = (mu.numel() / x_shape[0]) as f64;
    for (i, &t) in ts.iter().enumerate() {
        let step = i + 1;
        let a = schedule.alpha_bar(t);
        let eps = ops::normal_keyed(gpu, x_shape, opts.seed, &keys, 2 * i as u64, 0.0, 1.0)?;
        let x0 = if opts.sigma_x0 > 0.0 {
            let z = ops::normal_keyed(gpu, x_shape, opts.seed, &keys, 2 * i as u64 + 1, 0.0, opts.sigma_x0)?;
            ops::add(gpu, &mu, &z)?
        } else {
            mu.clone()
        };
        let x_t = ops::axpby(gpu, a.sqrt() as f32, &x0, (1.0 - a).sqrt() as f32, &eps)?;
        let e_hat = den.eps(gpu, &x_t, t)?;
        let g_data = op.grad(gpu, &x0, y)?;
        let w = opts.lambda as f64 * opts.weighting.apply((1.0 - a).sqrt() / a.sqrt());
        let c = (w / n) as f32;
        let g = ops::axpby(gpu, batch, &g_data, c, &ops::axpby(gpu, 1.0, &e_hat, -1.0, &eps)?)?;
        ops::adam_step(gpu, &mu, &g, &m, &v, adam, step as u32)?;
        let loss = if opts.loss_every > 0 && (step % opts.loss_every == 0 || step == ts.len()) {
            let r = ops::axpby(gpu, 1.0, y, -1.0, &op.forward(gpu, &mu)?)?;
            let st = Stats::from_raw(&ops::stats(gpu, &r)?.read_async(gpu).await?, r.numel());
            Some(st.sum_sq / (2.0 * r.numel() as f32))
        } else {
            gpu.flush()?;
            None
        };
        if (opts.check_every > 0 && step % opts.check_every == 0) || step == ts.len() {
            let st = Stats::from_raw(&ops::stats(gpu, &mu)?.read_async(gpu).await?, mu.numel());
            if st.nonfinite > 0 {
                return Err(Error::Diverged { step, count: st.nonfinite, hint: "lower --lr or --lambda, or check the measurement for NaN/Inf values" });
            }
        }
        gpu.yield_now().await;
        let preview =
            if opts.preview_every > 0 && (step % opts.preview_every == 0 || step == ts.len()) { Some(images_from_tensor(gpu, &mu, true).await?) } else { None };
        if !callback(&StepInfo { step, steps: ts.len(), t, loss, preview: preview.as_deref() }) {
            return Err(Error::Cancelled { step });
        }
    }
    Ok(mu)
}
