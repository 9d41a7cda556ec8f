//! Multi-head self-attention: fused with an online softmax (`wgsl/attention_fused.wgsl`, the T×T scores are
//! never stored) for up to 64 channels per head, else two strided matmuls around softmax rows
//! (`wgsl/attention.wgsl`).

use super::matmul::{matmul, Bias, MatView, Matmul};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, KernelProfile, Params, Tensor};
use crate::shaders::{ATTENTION, ATTENTION_FUSED};

/// Which attention implementation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionKernel {
    /// Scores matmul, softmax rows, values matmul (stores the [BH, T, T] scores).
    Unfused,
    /// Fused, one invocation per query reading keys from memory (for CPU-like adapters; measured 2-3x slower
    /// than `Unfused` on lavapipe, so not chosen by default — kept for comparison on other adapters).
    Rows,
    /// Fused, 64 queries per workgroup with keys staged in workgroup memory (GPUs).
    Tiled,
}

/// Largest channels-per-head the fused kernels take.
pub const FUSED_MAX_CH: usize = 64;

/// In place: every row of `x` (last dimension) becomes softmax(scale · row), computed stably (one
/// workgroup per row on GPUs, one invocation per row without barriers on CPU adapters).
pub fn softmax_rows(gpu: &Gpu, x: &Tensor, scale: f32) -> Result<()> {
    let cols = *x.shape().last().unwrap_or(&0);
    if cols == 0 {
        return Err(Error::Empty { op: "softmax_rows", shape: x.shape().to_vec() });
    }
    let rows = x.numel() / cols;
    let params = Params::new().n(rows).n(cols).f(scale);
    match gpu.profile() {
        KernelProfile::RegisterBlocked => {
            gpu.launch("softmax_rows", &Kernel::new(&ATTENTION, "softmax_lanes"), &params, &[(x, Access::ReadWrite)], rows.div_ceil(64) as u64)
        }
        KernelProfile::Tiled => gpu.launch("softmax_rows", &Kernel::new(&ATTENTION, "softmax_rows"), &params, &[(x, Access::ReadWrite)], rows as u64),
    }
}

/// Self-attention over `heads` heads in channel-major layout, as guided-diffusion's QKV attention.
/// `q`, `k`, `v` are views into tensors (possibly one fused qkv tensor): for head h of batch element b,
/// channel c and position t, `q` element (b·heads + h, c, t) is at `q_view` with rows = channels and
/// columns = positions (see [`MatView`]). Returns [B·heads, ch, T] contiguous
/// = [B, heads·ch, T]: out[c, t] = Σ_s softmax_s(scale · Σ_c' q[c', t] k[c', s]) v[c, s], and the softmax
/// probabilities [B·heads, T, T] where the kernel stores them (for
/// [`attention_backward`](super::attention_backward), which otherwise recomputes them; drop them at once
/// when not needed). The kernel follows the adapter profile: fused and tiled on GPUs for `ch` <=
/// [`FUSED_MAX_CH`] (no probabilities), unfused on CPU adapters and for wider heads.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    gpu: &Gpu,
    q: (&Tensor, MatView),
    k: (&Tensor, MatView),
    v: (&Tensor, MatView),
    batch: usize,
    heads: usize,
    ch: usize,
    len: usize,
    scale: f32,
) -> Result<(Tensor, Option<Tensor>)> {
    // On lavapipe the per-query arrays of the fused kernels spill to per-lane memory, which measured 2-3x
    // slower than the unfused path; GPUs keep them in registers.
    let kind = match gpu.profile() {
        _ if ch > FUSED_MAX_CH => AttentionKernel::Unfused,
        KernelProfile::RegisterBlocked => AttentionKernel::Unfused,
        KernelProfile::Tiled => AttentionKernel::Tiled,
    };
    attend(gpu, q, k, v, batch, heads, ch, len, scale, kind)
}

/// [`attention`] with the implementation chosen by the caller (tests compare them).
#[allow(clippy::too_many_arguments)]
pub fn attention_with(
    gpu: &Gpu,
    q: (&Tensor, MatView),
    k: (&Tensor, MatView),
    v: (&Tensor, MatView),
    batch: usize,
    heads: usize,
    ch: usize,
    len: usize,
    scale: f32,
    kind: AttentionKernel,
) -> Result<Tensor> {
    Ok(attend(gpu, q, k, v, batch, heads, ch, len, scale, kind)?.0)
}

/// [`attention_with`], also returning the probabilities where `kind` stores them (unfused).
#[allow(clippy::too_many_arguments)]
fn attend(
    gpu: &Gpu,
    (q, qv): (&Tensor, MatView),
    (k, kv): (&Tensor, MatView),
    (v, vv): (&Tensor, MatView),
    batch: usize,
    heads: usize,
    ch: usize,
    len: usize,
    scale: f32,
    kind: AttentionKernel,
) -> Result<(Tensor, Option<Tensor>)> {
    const OP: &str = "attention";
    let bh = batch * heads;
    if bh == 0 || ch == 0 || len == 0 {
        return Err(Error::Empty { op: OP, shape: vec![bh, ch, len] });
    }
    if kind != AttentionKernel::Unfused {
        if ch > FUSED_MAX_CH {
            return Err(Error::Invalid { op: OP, msg: format!("{ch} channels per head; the fused kernels take at most {FUSED_MAX_CH}") });
        }
        for (name, t, view) in [("q", q, &qv), ("k", k, &kv), ("v", v, &vv)] {
            if view.inner == 0 {
                return Err(Error::Invalid { op: OP, msg: format!("{name} view has inner = 0") });
            }
            let need = view.max_index(bh, ch, len);
            if need >= t.numel() {
                return Err(Error::Shape {
                    op: OP,
                    msg: format!("{name} view {view:?} of [{bh}, {ch}, {len}] reaches element {need}, tensor {:?}", t.shape()),
                });
            }
        }
        let out = gpu.empty(OP, &[bh, ch, len])?;
        let mut params = Params::new().n(bh).n(len).f(scale).u(0);
        for view in [&qv, &kv, &vv] {
            params = params.n(view.offset).n(view.inner).n(view.batch_hi).n(view.batch_lo).n(view.row).n(view.col);
        }
        let (entry, groups) = match kind {
            AttentionKernel::Rows => ("attn_rows", (bh * len).div_ceil(64)),
            _ => ("attn_tiled", bh * len.div_ceil(64)),
        };
        let kernel = Kernel::new(&ATTENTION_FUSED, entry).with("CH", ch as f64);
        gpu.launch(OP, &kernel, &params, &[(q, Access::Read), (k, Access::Read), (v, Access::Read), (&out, Access::ReadWrite)], groups as u64)?;
        return Ok((out, None));
    }
    // scores[bh, t, s] = Σ_c q[c, t] k[c, s]: A = qᵀ (rows t, cols c), B = k (rows c, cols s).
    let qt = MatView { row: qv.col, col: qv.row, ..qv };
    let scores = matmul(gpu, q, k, Bias::None, &Matmul { batch: bh, m: len, n: len, k: ch, a: qt, b: kv, alpha: 1.0 }, None)?;
    softmax_rows(gpu, &scores, scale)?;
    // out[bh, c, t] = Σ_s v[c, s] P[t, s]: A = v (rows c, cols s), B = Pᵀ (rows s, cols t).
    let pt = MatView { offset: 0, inner: 1, batch_hi: len * len, batch_lo: 0, row: 1, col: len };
    let out = matmul(gpu, v, &scores, Bias::None, &Matmul { batch: bh, m: ch, n: len, k: len, a: vv, b: pt, alpha: 1.0 }, None).map_err(|e| match e {
        Error::Shape { msg, .. } => Error::Shape { op: "attention", msg },
        other => other,
    })?;
    Ok((out, Some(scores)))
}
