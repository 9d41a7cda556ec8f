//! DDIM sampling (Song et al. 2021) on the GPU, step for step as diffusers' `DDIMScheduler` with
//! `timestep_spacing="leading"`, `clip_sample=True`, `set_alpha_to_one=True`, prediction type ε.

use super::denoiser::Denoiser;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::Schedule;
use crate::ops;

/// DDIM settings.
#[derive(Clone, Copy, Debug)]
pub struct DdimOptions {
    /// Number of denoising steps (1..=T).
    pub steps: usize,
    /// 0 = deterministic DDIM, 1 = DDPM-like ancestral noise.
    pub eta: f32,
    /// Seed for the per-step noise when eta > 0.
    pub seed: u64,
}

/// The timesteps visited, high to low: `i · (T / steps)` for i = steps−1 … 0 ("leading" spacing).
pub fn ddim_timesteps(t_total: usize, steps: usize) -> Result<Vec<usize>> {
    if steps == 0 || steps > t_total {
        return Err(Error::Invalid { op: "ddim", msg: format!("steps must be in 1..={t_total}, got {steps}") });
    }
    let ratio = t_total / steps;
    Ok((0..steps).rev().map(|i| i * ratio).collect())
}

/// Runs DDIM from `noise` [N, C, H, W] and returns x0 [N, C, H, W] (in [-1, 1]). Each step:
/// x̂0 = clip((x − √(1−ᾱ_t) ε̂)/√ᾱ_t, −1, 1); x ← √ᾱ_prev x̂0 + √(1−ᾱ_prev−σ²) ε̂ + σ z, with
/// σ = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_prev) and ᾱ_prev = 1 after the last step. `progress(i, t)` is
/// called after recording each step.
pub fn ddim_sample(
    gpu: &Gpu,
    den: &dyn Denoiser,
    noise: &Tensor,
    schedule: &Schedule,
    opts: DdimOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&opts.eta) {
        return Err(Error::Invalid { op: "ddim", msg: format!("eta must be in [0, 1], got {}", opts.eta) });
    }
    let ts = ddim_timesteps(schedule.len(), opts.steps)?;
    let ratio = schedule.len() / opts.steps;
    let mut x = noise.clone();
    for (i, &t) in ts.iter().enumerate() {
        let a = schedule.alpha_bar(t);
        let a_prev = if t >= ratio { schedule.alpha_bar(t - ratio) } else { 1.0 };
        let eps = den.eps(gpu, &x, t)?;
        let x0 = ops::axpby(gpu, (1.0 / a.sqrt()) as f32, &x, (-(1.0 - a).sqrt() / a.sqrt()) as f32, &eps)?;
        let x0 = ops::clamp(gpu, &x0, -1.0, 1.0)?;
        let sigma = opts.eta as f64 * ((1.0 - a_prev) / (1.0 - a)).sqrt() * (1.0 - a / a_prev).max(0.0).sqrt();
        let dir = (1.0 - a_prev - sigma * sigma).max(0.0).sqrt();
        x = ops::axpby(gpu, a_prev.sqrt() as f32, &x0, dir as f32, &eps)?;
        if sigma > 0.0 {
            let z = ops::normal(gpu, x.shape(), opts.seed, i as u64 + 1, 0.0, sigma as f32)?;
            x = ops::add(gpu, &x, &z)?;
        }
        progress(i, t);
    }
    Ok(x)
}
