//! ΠGDM (Song, Vahdat, Mardani, Kautz, "Pseudoinverse-Guided Diffusion Models for Inverse Problems", ICLR
//! 2023), as the RED-diff authors' code runs it for their comparison (`NVlabs/RED-diff`, `algos/pgdm.py`,
//! `_configs/algo/pgdm.yaml`: awd, η = 0, guidance weight 1), for linear operators with a pseudo-inverse:
//!
//! x_T = √ᾱ_T H⁺y + √(1−ᾱ_T) z;  for t = (steps−1)·skip, …, skip, 0 with s the next (ᾱ_s = 1 after 0):
//!   ε̂ = ε_θ(x_t, t),  x̂₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t
//!   g = (∂x̂₀/∂x_t)ᵀ H⁺(y − H x̂₀)                  (= H⁺y − H⁺H x̂₀; through the network: its VJP)
//!   x_s = √ᾱ_s x̂₀ + c₁ z + c₂ ε̂ + w √ᾱ_s √ᾱ_t g,  c₁ = η √((1 − ᾱ_t/ᾱ_s)(1 − ᾱ_s)/(1 − ᾱ_t)), c₂ = √(1 − ᾱ_s − c₁²)
//!
//! The result is x after the last update. 100 steps, as in the RED-diff paper's comparison.

use super::ddrm::ddrm_timesteps;
use super::denoiser::Denoiser;
use super::red_diff::{image_keys, StepInfo};
use super::{end_step, finite_result};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::Schedule;
use crate::operators::{Operator, Task, TaskKind};
use crate::ops;

/// ΠGDM's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PgdmOptions {
    /// Network evaluations (each with a vector-Jacobian product).
    pub steps: usize,
    /// η, the share of fresh noise (0: deterministic DDIM).
    pub eta: f32,
    /// w, the weight of the guidance term.
    pub weight: f32,
    /// Seed of every random draw.
    pub seed: u64,
    /// One noise key per image (see [`super::RedDiffOptions::image_keys`]).
    pub image_keys: Vec<u32>,
}

impl PgdmOptions {
    /// The RED-diff authors' settings (100 steps, η = 0, w = 1), or an error for nonlinear tasks.
    pub fn for_task(task: &Task) -> Result<PgdmOptions> {
        match task.kind {
            TaskKind::Hdr | TaskKind::Phase | TaskKind::Jpeg(_) | TaskKind::Jpeg444(_) => Err(Error::Invalid {
                op: "pgdm",
                msg: format!("PiGDM needs a linear operator with a pseudo-inverse; {} is nonlinear (use --method reddiff or dps)", task.kind_name()),
            }),
            _ => Ok(PgdmOptions { steps: 100, eta: 0.0, weight: 1.0, seed: 0, image_keys: Vec::new() }),
        }
    }
}

/// Runs ΠGDM for measurement `y` of the linear operator `op` on images of shape `x_shape`; returns the
/// restored images [N, C, H, W] (not clamped). The prior must provide a vector-Jacobian product
/// ([`Denoiser::eps_tape`]). `callback` runs after each step; `false` cancels ([`Error::Cancelled`]).
#[allow(clippy::too_many_arguments)]
pub async fn pgdm(
    gpu: &Gpu,
    den: &dyn Denoiser,
    op: &dyn Operator,
    y: &Tensor,
    x_shape: &[usize],
    schedule: &Schedule,
    opts: &PgdmOptions,
    mut callback: impl FnMut(&StepInfo) -> bool,
) -> Result<Tensor> {
    const OP: &str = "pgdm";
    if !(0.0..=1.0).contains(&opts.eta) || !(opts.weight >= 0.0 && opts.weight.is_finite()) {
        return Err(Error::Invalid { op: OP, msg: format!("need eta in [0, 1] and weight >= 0 (got {}, {})", opts.eta, opts.weight) });
    }
    if x_shape.len() != 4 || x_shape[1] != den.channels() || op.measurement_shape(x_shape) != y.shape() {
        return Err(Error::Shape {
            op: OP,
            msg: format!("image {:?} and measurement {:?} do not fit {} with a {}-channel prior", x_shape, y.shape(), op.name(), den.channels()),
        });
    }
    let no_pinv = || Error::Invalid { op: OP, msg: format!("PiGDM needs a linear operator with a pseudo-inverse; {} has none", op.name()) };
    if op.adjoint(gpu, y)?.is_none() {
        return Err(no_pinv());
    }
    let pinv_y = op.pinv(gpu, y)?.ok_or_else(no_pinv)?;
    let ts = ddrm_timesteps(schedule.len(), opts.steps)?;
    let keys = image_keys(gpu, &opts.image_keys, x_shape[0])?;
    let a_top = schedule.alpha_bar(ts[0]);
    let z0 = ops::normal_keyed(gpu, x_shape, opts.seed, &keys, u64::MAX - 5, 0.0, 1.0)?;
    let mut x = ops::axpby(gpu, a_top.sqrt() as f32, &pinv_y, (1.0 - a_top).sqrt() as f32, &z0)?;
    let n = ts.len();
    for (i, &t) in ts.iter().enumerate() {
        let a = schedule.alpha_bar(t);
        let a_s = if i + 1 < n { schedule.alpha_bar(ts[i + 1]) } else { 1.0 };
        let tape = den.eps_tape(gpu, &x, t)?;
        let x0 = ops::axpby(gpu, (1.0 / a.sqrt()) as f32, &x, (-(1.0 - a).sqrt() / a.sqrt()) as f32, &tape.eps)?;
        // H⁺y − H⁺Hx̂₀ as one H⁺(y − Hx̂₀): the same for an exact pseudo-inverse, and for an iterative one
        // (motion blur's conjugate gradients) one solve on the residual instead of two that differ.
        let m = op.pinv(gpu, &ops::axpby(gpu, 1.0, y, -1.0, &op.forward(gpu, &x0)?)?)?.ok_or_else(no_pinv)?;
        let vj = tape.vjp(gpu, &m)?;
        let g = ops::axpby(gpu, (1.0 / a.sqrt()) as f32, &m, (-(1.0 - a).sqrt() / a.sqrt()) as f32, &vj)?;
        let c1 = opts.eta as f64 * ((1.0 - a / a_s) * (1.0 - a_s) / (1.0 - a)).max(0.0).sqrt();
        let c2 = ((1.0 - a_s) - c1 * c1).max(0.0).sqrt();
        let mut next = ops::axpby(gpu, a_s.sqrt() as f32, &x0, c2 as f32, &tape.eps)?;
        if c1 > 0.0 {
            let z = ops::normal_keyed(gpu, x_shape, opts.seed, &keys, i as u64, 0.0, 1.0)?;
            next = ops::axpby(gpu, 1.0, &next, c1 as f32, &z)?;
        }
        x = ops::axpby(gpu, 1.0, &next, (opts.weight as f64 * a_s.sqrt() * a.sqrt()) as f32, &g)?;
        drop(tape);
        end_step(gpu, &mut callback, i + 1, n, t).await?;
    }
    finite_result(gpu, x, n, "check the measurement for NaN/Inf values").await
}
