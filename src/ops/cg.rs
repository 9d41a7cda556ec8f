//! Conjugate gradients for a batch of independent symmetric positive-definite systems A x = b, one per image
//! (`wgsl/cg.wgsl`): every scalar stays on the GPU, so an iteration records work and reads nothing back.

use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::CG;

fn launch(gpu: &Gpu, entry: &'static str, n: usize, m: usize, args: [&Tensor; 6], groups: u64) -> Result<()> {
    let [a, b, s1, s2, u, v] = args;
    gpu.launch(
        "conjugate_gradients",
        &Kernel::new(&CG, entry),
        &Params::new().n(n).n(m),
        &[(a, Access::Read), (b, Access::Read), (s1, Access::Read), (s2, Access::Read), (u, Access::ReadWrite), (v, Access::ReadWrite)],
        groups,
    )
}

/// Per-image dot products of `a` and `b` ([N, ...], equal shapes) → `[N]`.
pub fn dot_rows(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.shape() != b.shape() || a.shape().is_empty() {
        return Err(Error::Shape { op: "dot_rows", msg: format!("shapes {:?} and {:?} must be equal [N, ...]", a.shape(), b.shape()) });
    }
    let n = a.shape()[0];
    let out = gpu.empty("dot_rows", &[n])?;
    // Unused bindings: read-only ones repeat `a`; the unused writable one gets its own scratch buffer (a
    // buffer may not be bound both read-only and writable in one dispatch).
    let scratch = gpu.empty("dot_rows", &[1])?;
    launch(gpu, "dot_rows", a.numel(), a.numel() / n.max(1), [a, b, a, a, &out, &scratch], n as u64)?;
    Ok(out)
}

/// Solves `apply(x) = b` for each image by `iters` conjugate-gradient iterations from `x0` (A symmetric
/// positive definite per image, e.g. HᵀH + ρI). An image whose residual has fallen to 1e-6 of its first
/// one stops moving (further iterations at f32 round-off only amplify it). Returns x [same shape as b].
pub fn conjugate_gradients(gpu: &Gpu, apply: impl Fn(&Tensor) -> Result<Tensor>, b: &Tensor, x0: &Tensor, iters: usize) -> Result<Tensor> {
    if b.shape() != x0.shape() || b.shape().is_empty() {
        return Err(Error::Shape { op: "conjugate_gradients", msg: format!("b {:?} and x0 {:?} must be equal [N, ...]", b.shape(), x0.shape()) });
    }
    let (numel, n) = (b.numel(), b.shape()[0]);
    let m = numel / n.max(1);
    let groups = (numel as u64).div_ceil(256);
    let x = crate::ops::copy(gpu, x0)?;
    let r = crate::ops::axpby(gpu, 1.0, b, -1.0, &apply(x0)?)?;
    let p = crate::ops::copy(gpu, &r)?;
    let mut rr = dot_rows(gpu, &r, &r)?;
    let rr0 = rr.clone();
    let scratch = gpu.empty("conjugate_gradients", &[1])?;
    for _ in 0..iters {
        let ap = apply(&p)?;
        let pap = dot_rows(gpu, &p, &ap)?;
        launch(gpu, "cg_step", numel, m, [&p, &ap, &rr, &pap, &x, &r], groups)?;
        let rr_new = dot_rows(gpu, &r, &r)?;
        launch(gpu, "cg_direction", numel, m, [&r, &rr0, &rr_new, &rr, &p, &scratch], groups)?;
        rr = rr_new;
    }
    Ok(x)
}
