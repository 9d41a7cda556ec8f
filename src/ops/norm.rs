//! GroupNorm with fused scale-shift and SiLU (`wgsl/norm.wgsl`).

use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::NORM;

/// GroupNorm settings.
#[derive(Clone, Copy, Debug)]
pub struct GroupNorm {
    /// Number of groups (divides C).
    pub groups: usize,
    /// Added to the variance (torch default 1e-5; diffusers uses 1e-5 or 1e-6).
    pub eps: f32,
    /// Apply SiLU after normalisation (and scale-shift).
    pub silu: bool,
}

/// `x` [N, C, ...] normalised per (n, group) over C/G channels × spatial, then `* gamma[c] + beta[c]`; with
/// `scale_shift` [N, 2C] (scale first, shift second) then `y * (1 + scale) + shift`; then optional SiLU.
pub fn group_norm(gpu: &Gpu, x: &Tensor, gamma: &Tensor, beta: &Tensor, scale_shift: Option<&Tensor>, cfg: GroupNorm) -> Result<Tensor> {
    const OP: &str = "group_norm";
    let xs = x.shape();
    if xs.len() < 2 {
        return Err(Error::Shape { op: OP, msg: format!("input must be [N, C, ...], got {:?}", xs) });
    }
    let (n, c) = (xs[0], xs[1]);
    let s: usize = xs[2..].iter().product();
    if cfg.groups == 0 || c % cfg.groups != 0 {
        return Err(Error::Shape { op: OP, msg: format!("{} groups do not divide {c} channels", cfg.groups) });
    }
    if gamma.shape() != [c] || beta.shape() != [c] {
        return Err(Error::Shape { op: OP, msg: format!("gamma {:?} / beta {:?} should be [{c}]", gamma.shape(), beta.shape()) });
    }
    if let Some(ss) = scale_shift {
        if ss.numel() != n * 2 * c {
            return Err(Error::Shape { op: OP, msg: format!("scale-shift {:?} should be [{n}, {}]", ss.shape(), 2 * c) });
        }
    }
    let out = gpu.empty(OP, xs)?;
    let params = Params::new()
        .n(n)
        .n(c)
        .n(s)
        .n(cfg.groups)
        .f(cfg.eps)
        .u(cfg.silu as u32)
        .u(scale_shift.is_some() as u32);
    gpu.launch(
        OP,
        &Kernel::new(&NORM, "group_norm"),
        &params,
        &[
            (x, Access::Read),
            (gamma, Access::Read),
            (beta, Access::Read),
            (scale_shift.unwrap_or(gamma), Access::Read),
            (&out, Access::ReadWrite),
        ],
        (n * cfg.groups) as u64,
    )?;
    Ok(out)
}
