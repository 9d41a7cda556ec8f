//! The Adam update (`wgsl/adam.wgsl`), in place on the GPU, matching `torch.optim.Adam`.

use super::{groups256, same_shape};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::ADAM;

/// Adam hyper-parameters.
#[derive(Clone, Copy, Debug)]
pub struct AdamHyper {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Denominator epsilon.
    pub eps: f32,
}

impl Default for AdamHyper {
    /// torch defaults except betas = (0.9, 0.99), RED-diff's choice.
    fn default() -> Self {
        AdamHyper { lr: 0.5, beta1: 0.9, beta2: 0.99, eps: 1e-8 }
    }
}

/// One Adam step at step number `step` (1-based) on parameters `x` with gradient `g`, moments `m`, `v`
/// (same shape, zero-initialised before step 1). Updates `x`, `m`, `v` in place.
pub fn adam_step(gpu: &Gpu, x: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor, h: AdamHyper, step: u32) -> Result<()> {
    const OP: &str = "adam_step";
    same_shape(OP, x, g)?;
    same_shape(OP, x, m)?;
    same_shape(OP, x, v)?;
    if step == 0 {
        return Err(Error::Invalid { op: OP, msg: "step numbers start at 1".into() });
    }
    let ts = [x, g, m, v];
    for i in 0..4 {
        for j in i + 1..4 {
            if ts[i].same_storage(ts[j]) {
                return Err(Error::Invalid { op: OP, msg: "x, g, m and v must be distinct tensors".into() });
            }
        }
    }
    let bc1 = 1.0 - (h.beta1 as f64).powi(step as i32);
    let bc2 = 1.0 - (h.beta2 as f64).powi(step as i32);
    let n = x.numel();
    let params = Params::new().n(n).f(h.lr).f(h.beta1).f(h.beta2).f(h.eps).f(bc1 as f32).f(bc2.sqrt() as f32);
    gpu.launch(
        OP,
        &Kernel::new(&ADAM, "adam_step"),
        &params,
        &[(g, Access::Read), (x, Access::ReadWrite), (m, Access::ReadWrite), (v, Access::ReadWrite)],
        groups256(n),
    )
}
