//! DDRM's element-wise update in spectral coordinates (`wgsl/ddrm.wgsl`).

use super::{groups256, same_shape};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::DDRM;

/// The scalars of one DDRM update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DdrmCoefficients {
    /// σ of the next step, √(1 − ᾱ)/√ᾱ (the noise level of x/√ᾱ).
    pub sigma_next: f32,
    /// Measurement noise in image units, 2·σ_y (images span [-1, 1]).
    pub sigma0: f32,
    /// η for coordinates where y is noisier than the next step (the authors' `etaA`).
    pub eta_a: f32,
    /// η_b, the weight of y where y is less noisy than the next step.
    pub eta_b: f32,
    /// η for unobserved coordinates (`etaC`).
    pub eta_c: f32,
    /// Factor applied to the result (√ᾱ of the next step).
    pub scale: f32,
}

/// One DDRM update: from the singular values `s` (D per image, D = C·H·W) and, in spectral coordinates
/// [N, C, H, W], Uᵀy `uty`, Vᵀx̂₀ `vx0`, Vᵀε̂ `vet` and fresh noise `z`, returns the next spectral iterate
/// scaled by `c.scale` (see `wgsl/ddrm.wgsl` for the three cases).
pub fn ddrm_step(gpu: &Gpu, s: &Tensor, uty: &Tensor, vx0: &Tensor, vet: &Tensor, z: &Tensor, c: DdrmCoefficients) -> Result<Tensor> {
    const OP: &str = "ddrm_step";
    same_shape(OP, uty, vx0)?;
    same_shape(OP, uty, vet)?;
    same_shape(OP, uty, z)?;
    let n = uty.numel();
    let d = s.numel();
    if d == 0 || n % d != 0 {
        return Err(Error::Shape { op: OP, msg: format!("{d} singular values do not divide a batch of {n} values") });
    }
    let out = gpu.empty(OP, uty.shape())?;
    let params = Params::new().n(n).n(d).f(c.sigma_next).f(c.sigma0).f(c.eta_a).f(c.eta_b).f(c.eta_c).f(c.scale);
    let args = [(s, Access::Read), (uty, Access::Read), (vx0, Access::Read), (vet, Access::Read), (z, Access::Read), (&out, Access::ReadWrite)];
    gpu.launch(OP, &Kernel::new(&DDRM, "ddrm_step"), &params, &args, groups256(n))?;
    Ok(out)
}
