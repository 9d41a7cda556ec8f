//! Sinusoidal timestep embedding (`wgsl/embedding.wgsl`).

use super::groups256;
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::EMBEDDING;

/// The frequency table [dim / 2]: exp(−ln(max_period)·i/(dim/2 − shift)) in f32, as torch computes it.
/// guided-diffusion: shift 0, max_period 10000; diffusers: `freq_shift`. Upload it once per model.
pub fn embedding_freqs(dim: usize, shift: f32, max_period: f32) -> Result<Vec<f32>> {
    let half = dim / 2;
    if half == 0 || (half as f32 - shift) <= 0.0 || max_period <= 1.0 {
        return Err(Error::Invalid { op: "timestep_embedding", msg: format!("dim {dim}, shift {shift}, max_period {max_period}") });
    }
    let neg_log = -max_period.ln();
    Ok((0..half).map(|i| (neg_log * i as f32 / (half as f32 - shift)).exp()).collect())
}

/// `t` `[N]` (timesteps as f32) and `freqs` [dim / 2] (from [`embedding_freqs`]) → [N, dim]:
/// `[cos(t·f), sin(t·f)]` when `flip` (guided-diffusion; diffusers' `flip_sin_to_cos = true`), else `[sin, cos]`;
/// an odd `dim` gets a zero last column.
pub fn timestep_embedding(gpu: &Gpu, t: &Tensor, freqs: &Tensor, dim: usize, flip: bool) -> Result<Tensor> {
    const OP: &str = "timestep_embedding";
    if t.shape().len() != 1 {
        return Err(Error::Shape { op: OP, msg: format!("timesteps must be [N], got {:?}", t.shape()) });
    }
    let half = dim / 2;
    if freqs.shape() != [half] {
        return Err(Error::Shape { op: OP, msg: format!("freqs {:?} should be [{half}] for dim {dim}", freqs.shape()) });
    }
    let n = t.shape()[0];
    let out = gpu.empty(OP, &[n, dim])?;
    let params = Params::new().n(n * half).n(dim).n(half).u(flip as u32);
    gpu.launch(
        OP,
        &Kernel::new(&EMBEDDING, "timestep_embedding"),
        &params,
        &[(t, Access::Read), (freqs, Access::Read), (&out, Access::ReadWrite)],
        groups256(n * half),
    )?;
    Ok(out)
}
