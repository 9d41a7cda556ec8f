//! DPS's element-wise steps (`wgsl/dps.wgsl`): the normalised, clip-masked measurement gradient and the
//! DDPM ancestral step with guidance.

use super::{groups256, same_shape};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::DPS;

/// The scalars of one DPS step (see `wgsl/dps.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DpsStep {
    /// Posterior-mean coefficient of x̂₀: β_t √ᾱ_{t−1} / (1 − ᾱ_t).
    pub c0: f32,
    /// Posterior-mean coefficient of x_t: (1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t).
    pub ct: f32,
    /// The guidance scale ζ.
    pub zeta: f32,
    /// √(variance) for a fixed variance (unused with learned variance).
    pub sqrt_var: f32,
    /// ln β_t (learned variance).
    pub log_beta: f32,
    /// ln β̃_t, the clipped posterior log variance (learned variance).
    pub log_post: f32,
    /// Add noise (every step but the last).
    pub noise: bool,
}

fn params(n: usize, d: usize, m_scale: f32, s: &DpsStep, learned: bool) -> Params {
    Params::new().n(n).n(d).f(m_scale).f(s.c0).f(s.ct).f(s.zeta).f(s.sqrt_var).f(s.log_beta).f(s.log_post).u(learned as u32).u(s.noise as u32)
}

/// ∇ of ‖y − H(clip(x̂₀))‖ per image with respect to the unclipped x̂₀ [N, ...]: from `grad` = ∇ ½·mean((y −
/// H(x))²) at the clipped x̂₀ (over `m` measurement values in all), the unclipped `x0_raw` and the per-image
/// squared residual norms `rr` (one per image).
pub fn dps_grad(gpu: &Gpu, grad: &Tensor, x0_raw: &Tensor, rr: &Tensor, m: usize) -> Result<Tensor> {
    const OP: &str = "dps_grad";
    same_shape(OP, grad, x0_raw)?;
    let n = grad.numel();
    let imgs = grad.shape().first().copied().unwrap_or(0);
    if imgs == 0 || rr.numel() != imgs {
        return Err(Error::Shape { op: OP, msg: format!("{} residual norms for a batch of {imgs}", rr.numel()) });
    }
    let out = gpu.empty(OP, grad.shape())?;
    let s = DpsStep { c0: 0.0, ct: 0.0, zeta: 0.0, sqrt_var: 0.0, log_beta: 0.0, log_post: 0.0, noise: false };
    let args = [(grad, Access::Read), (x0_raw, Access::Read), (rr, Access::Read), (grad, Access::Read), (grad, Access::Read), (&out, Access::ReadWrite)];
    gpu.launch(OP, &Kernel::new(&DPS, "dps_grad"), &params(n, n / imgs, m as f32, &s, false), &args, groups256(n))?;
    Ok(out)
}

/// One DPS update: `c0·x̂₀ + ct·x_t + σ·z − ζ·g`, σ fixed or from the learned-variance outputs `var_values`.
pub fn dps_step(gpu: &Gpu, x0: &Tensor, x_t: &Tensor, var_values: Option<&Tensor>, z: &Tensor, g: &Tensor, s: &DpsStep) -> Result<Tensor> {
    const OP: &str = "dps_step";
    for t in [x_t, z, g] {
        same_shape(OP, x0, t)?;
    }
    if let Some(v) = var_values {
        same_shape(OP, x0, v)?;
    }
    let n = x0.numel();
    let out = gpu.empty(OP, x0.shape())?;
    let args =
        [(x0, Access::Read), (x_t, Access::Read), (var_values.unwrap_or(x0), Access::Read), (z, Access::Read), (g, Access::Read), (&out, Access::ReadWrite)];
    gpu.launch(OP, &Kernel::new(&DPS, "dps_step"), &params(n, n, 0.0, s, var_values.is_some()), &args, groups256(n))?;
    Ok(out)
}
