//! DPS (Chung, Kim, Mccann, Klasky, Ye, "Diffusion Posterior Sampling for General Noisy Inverse Problems",
//! ICLR 2023), as the authors' code runs it (`DPS2022/diffusion-posterior-sampling`: DDPM sampler,
//! `PosteriorSampling`, `clip_denoised`, `timestep_respacing` 1000), for any operator with a gradient:
//!
//! x_T ~ N(0, I);  for each kept t, high to low:
//!   x̂₀ = clip((x_t − √(1−ᾱ_t) ε_θ(x_t, t)) / √ᾱ_t, −1, 1)
//!   x' = posterior mean of q(x_{t−1} | x_t, x̂₀) + σ_t z   (no noise at the last step)
//!   x_{t−1} = x' − ζ ∇_{x_t} ‖y − H(x̂₀)‖                    (through the network: its VJP)
//!
//! σ_t: guided-diffusion's `learned_range` where the network predicts its variance, else `fixed_large`
//! (β_t), guided-diffusion's default for such models. The norm is taken per image (the authors run one image
//! per batch). ζ from the authors' `configs/`: super-resolution and Gaussian/motion blur 0.3, inpainting 0.5,
//! phase retrieval 1.0; tasks without a published value use 0.3. Fewer steps than 1000 respace the schedule
//! as guided-diffusion's `space_timesteps` does.

use super::denoiser::Denoiser;
use super::red_diff::{image_keys, StepInfo};
use super::{end_step, finite_result};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::Schedule;
use crate::operators::{Operator, Task, TaskKind};
use crate::ops::{self, DpsStep};

/// DPS's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct DpsOptions {
    /// Network evaluations (each with a vector-Jacobian product); 1000 in the paper.
    pub steps: usize,
    /// ζ, the guidance step size.
    pub zeta: f32,
    /// Seed of every random draw.
    pub seed: u64,
    /// One noise key per image (see [`super::RedDiffOptions::image_keys`]).
    pub image_keys: Vec<u32>,
}

impl DpsOptions {
    /// The authors' settings for `task`: 1000 steps, ζ from their configs.
    pub fn for_task(task: &Task) -> DpsOptions {
        let zeta = match task.kind {
            TaskKind::InpaintBox | TaskKind::InpaintRandom | TaskKind::InpaintFreeform | TaskKind::InpaintMask(_) | TaskKind::InpaintMaskData(_) => 0.5,
            TaskKind::Phase => 1.0,
            _ => 0.3,
        };
        DpsOptions { steps: 1000, zeta, seed: 0, image_keys: Vec::new() }
    }
}

/// guided-diffusion's `space_timesteps(T, [steps])`: `steps` timesteps evenly spread over 0..T−1 (rounded
/// half to even, as Python's `round`), increasing.
pub fn respaced_timesteps(t_total: usize, steps: usize) -> Result<Vec<usize>> {
    if steps == 0 || steps > t_total {
        return Err(Error::Invalid { op: "dps", msg: format!("steps must be 1 to {t_total}, got {steps}") });
    }
    if steps == 1 {
        return Ok(vec![0]);
    }
    let stride = (t_total - 1) as f64 / (steps - 1) as f64;
    Ok((0..steps).map(|i| (i as f64 * stride).round_ties_even() as usize).collect())
}

/// Runs DPS for measurement `y` of `op` on images of shape `x_shape`; returns the restored images [N, C, H,
/// W] (not clamped). The prior must provide a vector-Jacobian product ([`Denoiser::eps_tape`]).
/// `callback` runs after each step; `false` cancels ([`Error::Cancelled`]).
#[allow(clippy::too_many_arguments)]
pub async fn dps(
    gpu: &Gpu,
    den: &dyn Denoiser,
    op: &dyn Operator,
    y: &Tensor,
    x_shape: &[usize],
    schedule: &Schedule,
    opts: &DpsOptions,
    mut callback: impl FnMut(&StepInfo) -> bool,
) -> Result<Tensor> {
    const OP: &str = "dps";
    if !(opts.zeta >= 0.0 && opts.zeta.is_finite()) {
        return Err(Error::Invalid { op: OP, msg: format!("zeta must be zero or positive, got {}", opts.zeta) });
    }
    if x_shape.len() != 4 || x_shape[1] != den.channels() || op.measurement_shape(x_shape) != y.shape() {
        return Err(Error::Shape {
            op: OP,
            msg: format!("image {:?} and measurement {:?} do not fit {} with a {}-channel prior", x_shape, y.shape(), op.name(), den.channels()),
        });
    }
    let kept = respaced_timesteps(schedule.len(), opts.steps)?;
    let keys = image_keys(gpu, &opts.image_keys, x_shape[0])?;
    let mut x = ops::normal_keyed(gpu, x_shape, opts.seed, &keys, u64::MAX - 4, 0.0, 1.0)?;
    let n = kept.len();
    for (k, i) in (0..n).rev().enumerate() {
        let t = kept[i];
        let a = schedule.alpha_bar(t);
        let a_prev = if i > 0 { schedule.alpha_bar(kept[i - 1]) } else { 1.0 };
        let beta = 1.0 - a / a_prev;
        let tape = den.eps_tape(gpu, &x, t)?;
        let x0_raw = ops::axpby(gpu, (1.0 / a.sqrt()) as f32, &x, (-(1.0 - a).sqrt() / a.sqrt()) as f32, &tape.eps)?;
        let x0 = ops::clamp(gpu, &x0_raw, -1.0, 1.0)?;
        // ∇ ‖y − H(x̂₀)‖ per image, back through the clip and the network.
        let r = ops::axpby(gpu, 1.0, y, -1.0, &op.forward(gpu, &x0)?)?;
        let rr = ops::dot_rows(gpu, &r, &r)?;
        let g0 = ops::dps_grad(gpu, &op.grad(gpu, &x0, y)?, &x0_raw, &rr, y.numel())?;
        let vj = tape.vjp(gpu, &g0)?;
        let g = ops::axpby(gpu, (1.0 / a.sqrt()) as f32, &g0, (-(1.0 - a).sqrt() / a.sqrt()) as f32, &vj)?;
        let post = beta * (1.0 - a_prev) / (1.0 - a);
        let step = DpsStep {
            c0: (beta * a_prev.sqrt() / (1.0 - a)) as f32,
            ct: ((1.0 - a_prev) * (1.0 - beta).sqrt() / (1.0 - a)) as f32,
            zeta: opts.zeta,
            sqrt_var: beta.sqrt() as f32,
            log_beta: beta.ln() as f32,
            log_post: post.max(f64::MIN_POSITIVE).ln() as f32,
            noise: i > 0,
        };
        let z = ops::normal_keyed(gpu, x_shape, opts.seed, &keys, k as u64, 0.0, 1.0)?;
        x = ops::dps_step(gpu, &x0, &x, tape.var_values.as_ref(), &z, &g, &step)?;
        drop(tape);
        end_step(gpu, &mut callback, k + 1, n, t).await?;
    }
    finite_result(gpu, x, n, "lower zeta, or check the measurement for NaN/Inf values").await
}
