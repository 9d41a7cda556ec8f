//! Softmax rows (`wgsl/attention.wgsl`) and multi-head self-attention built from two strided matmuls.

use super::matmul::{matmul, Bias, MatView, Matmul};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::ATTENTION;

/// In place: every row of `x` (last dimension) becomes softmax(scale · row), computed stably.
pub fn softmax_rows(gpu: &Gpu, x: &Tensor, scale: f32) -> Result<()> {
    let cols = *x.shape().last().unwrap_or(&0);
    if cols == 0 {
        return Err(Error::Empty { op: "softmax_rows", shape: x.shape().to_vec() });
    }
    let rows = x.numel() / cols;
    gpu.launch(
        "softmax_rows",
        &Kernel::new(&ATTENTION, "softmax_rows"),
        &Params::new().n(rows).n(cols).f(scale),
        &[(x, Access::ReadWrite)],
        rows as u64,
    )
}

/// Self-attention over `heads` heads in channel-major layout, as guided-diffusion's QKV attention.
/// `q`, `k`, `v` are views into tensors (possibly one fused qkv tensor): for head h of batch element b,
/// channel c and position t, `q` element (b·heads + h, c, t) is at `q_view` with rows = channels and
/// columns = positions (see [`MatView`]). Returns [B·heads, ch, T] contiguous
/// = [B, heads·ch, T]: out[c, t] = Σ_s softmax_s(scale · Σ_c' q[c', t] k[c', s]) v[c, s].
#[allow(clippy::too_many_arguments)]
pub fn attention(
    gpu: &Gpu,
    (q, qv): (&Tensor, MatView),
    (k, kv): (&Tensor, MatView),
    (v, vv): (&Tensor, MatView),
    batch: usize,
    heads: usize,
    ch: usize,
    len: usize,
    scale: f32,
) -> Result<Tensor> {
    let bh = batch * heads;
    // scores[bh, t, s] = Σ_c q[c, t] k[c, s]: A = qᵀ (rows t, cols c), B = k (rows c, cols s).
    let qt = MatView { row: qv.col, col: qv.row, ..qv };
    let scores = matmul(gpu, q, k, Bias::None, &Matmul { batch: bh, m: len, n: len, k: ch, a: qt, b: kv, alpha: 1.0 }, None)?;
    softmax_rows(gpu, &scores, scale)?;
    // out[bh, c, t] = Σ_s v[c, s] P[t, s]: A = v (rows c, cols s), B = Pᵀ (rows s, cols t).
    let pt = MatView { offset: 0, inner: 1, batch_hi: len * len, batch_lo: 0, row: 1, col: len };
    matmul(gpu, v, &scores, Bias::None, &Matmul { batch: bh, m: ch, n: len, k: len, a: vv, b: pt, alpha: 1.0 }, None)
        .map_err(|e| match e {
            Error::Shape { msg, .. } => Error::Shape { op: "attention", msg },
            other => other,
        })
}
