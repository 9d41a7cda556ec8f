//! Input gradients (vector-Jacobian products) of the forward ops, for the UNet's VJP: convolution
//! (through [`transpose_conv_weights`](super::transpose_conv_weights) and, for stride 2, zero insertion),
//! GroupNorm with scale-shift and SiLU (`wgsl/norm_backward.wgsl`), and attention (the scores recomputed,
//! softmax backward in `wgsl/softmax_backward.wgsl`, the rest as strided matmuls). No weight gradients.

use super::attention::softmax_rows;
use super::conv::{conv2d_packed, Conv2d, ConvWeights, Epilogue};
use super::matmul::{matmul, Bias, MatView, Matmul};
use super::norm::{GroupNorm, ScaleShift};
use super::{dims, groups256};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, KernelProfile, Params, Tensor};
use crate::shaders::{NORM_BACKWARD, SOFTMAX_BACKWARD};

/// The input gradient of a convolution with padding `cfg.padding` and stride 1 or 2 on inputs of
/// `in_hw`: `wt` are its weights transposed by [`transpose_conv_weights`](super::transpose_conv_weights)
/// ([Cin, Cout, K, K]), `dy` [N, Cout, Ho, Wo] the output gradient. Returns
/// `alpha · Convᵀ(dy) + beta · residual` [N, Cin, H, W] (the residual, if any, of that shape). Stride 2
/// needs H = 2·Ho and W = 2·Wo.
pub fn conv2d_input_grad(
    gpu: &Gpu,
    dy: &Tensor,
    wt: &ConvWeights,
    cfg: Conv2d,
    in_hw: (usize, usize),
    alpha: f32,
    residual: Option<(&Tensor, f32)>,
) -> Result<Tensor> {
    const OP: &str = "conv2d_input_grad";
    let [_, _, ho, wo] = dims::<4>(OP, "output gradient", dy)?;
    let k = wt.shape()[2];
    if cfg.padding >= k {
        return Err(Error::Invalid { op: OP, msg: format!("padding {} with a {k}x{k} kernel", cfg.padding) });
    }
    let back = Conv2d { stride: 1, padding: k - 1 - cfg.padding };
    let u = match cfg.stride {
        1 => dy.clone(),
        2 if in_hw == (2 * ho, 2 * wo) => super::zero_insert2(gpu, dy)?,
        s => return Err(Error::Invalid { op: OP, msg: format!("stride {s} from {in_hw:?} to {ho}x{wo} (stride 1, or 2 on even sides)") }),
    };
    let epi = Epilogue { bias: None, term: None, residual: residual.map(|r| r.0), alpha, beta: residual.map(|r| r.1).unwrap_or(1.0) };
    let dx = conv2d_packed(gpu, &u, wt, back, &epi)?;
    let s = dx.shape();
    if (s[2], s[3]) != in_hw {
        return Err(Error::Shape { op: OP, msg: format!("input gradient {s:?} does not match the input's {in_hw:?}") });
    }
    Ok(dx)
}

/// The input gradient of [`group_norm`](super::group_norm)`(x, gamma, beta, scale_shift, cfg)` for the
/// output gradient `dy` (same shape as `x`, [N, C, ...]), plus `s · a` for `addend = Some((a, s))` (`a` the
/// shape of `x`: the gradient of a residual branch that also starts at `x`, added in the same pass). The
/// scale-shift terms are treated as constants.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_backward(
    gpu: &Gpu,
    x: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    scale_shift: Option<ScaleShift>,
    cfg: GroupNorm,
    addend: Option<(&Tensor, f32)>,
) -> Result<Tensor> {
    const OP: &str = "group_norm_backward";
    let xs = x.shape();
    if dy.shape() != xs {
        return Err(Error::Shape { op: OP, msg: format!("input {xs:?} and gradient {:?} must match", dy.shape()) });
    }
    let (n, c, s) = super::norm::check_args(OP, xs, gamma, beta, scale_shift.as_ref(), &cfg)?;
    if let Some((a, _)) = addend {
        if a.shape() != xs {
            return Err(Error::Shape { op: OP, msg: format!("addend {:?} must match the input {xs:?}", a.shape()) });
        }
    }
    // Without an addend its binding holds gamma, unread (not the dummy, which may be bound read-write below).
    let (add, add_scale) = match addend {
        Some((a, s)) if s != 0.0 => (a, s),
        _ => (gamma, 0.0),
    };
    let (sst, ss_off, ss_stride) = match &scale_shift {
        Some(ss) => (ss.t, ss.offset, ss.stride),
        None => (gamma, 0, 0),
    };
    let count = (c / cfg.groups) * s;
    let fused = gpu.profile() != KernelProfile::Tiled && count <= super::norm::FUSED_MAX;
    // The one-pass kernel leaves the statistics binding unused.
    let stats = if fused { gpu.dummy().clone() } else { gpu.empty(OP, &[n * cfg.groups, 4])? };
    let dx = gpu.empty(OP, xs)?;
    let params = super::norm::params_head(n, c, s, &cfg, scale_shift.is_some()).n(ss_off).n(ss_stride).n(x.numel()).f(add_scale);
    let args = [
        (x, Access::Read),
        (dy, Access::Read),
        (gamma, Access::Read),
        (beta, Access::Read),
        (sst, Access::Read),
        (&stats, Access::ReadWrite),
        (&dx, Access::ReadWrite),
        (add, Access::Read),
    ];
    if fused {
        // CPU adapters, groups of at most FUSED_MAX elements (as the forward's gn_fused): one pass, an
        // invocation per group.
        gpu.launch(OP, &Kernel::new(&NORM_BACKWARD, "gn_back_fused_lanes"), &params, &args, (n * cfg.groups).div_ceil(8) as u64)?;
    } else if gpu.profile() == KernelProfile::Tiled {
        // GPUs: a workgroup per group, then an invocation per element.
        gpu.launch(OP, &Kernel::new(&NORM_BACKWARD, "gn_back_stats"), &params, &args, (n * cfg.groups) as u64)?;
        gpu.launch(OP, &Kernel::new(&NORM_BACKWARD, "gn_back_apply"), &params, &args, groups256(x.numel()))?;
    } else {
        // CPU adapters: an invocation per group (no barriers), then one per run inside one channel.
        gpu.launch(OP, &Kernel::new(&NORM_BACKWARD, "gn_back_stats_lanes"), &params, &args, (n * cfg.groups).div_ceil(8) as u64)?;
        let run = super::norm::channel_run(s, false);
        let apply = Kernel::new(&NORM_BACKWARD, "gn_back_apply_runs").with("RUN", run as f64);
        gpu.launch(OP, &apply, &params, &args, (x.numel() / run).div_ceil(64) as u64)?;
    }
    Ok(dx)
}

/// In place on `grad` [rows, cols]: dS = P ⊙ (dP − Σ_j dP_j P_j) per row, for `prob` = P = softmax rows.
pub fn softmax_rows_backward(gpu: &Gpu, prob: &Tensor, grad: &Tensor) -> Result<()> {
    const OP: &str = "softmax_rows_backward";
    let cols = *prob.shape().last().unwrap_or(&0);
    if cols == 0 || grad.shape() != prob.shape() {
        return Err(Error::Shape { op: OP, msg: format!("probabilities {:?} and gradient {:?} must match", prob.shape(), grad.shape()) });
    }
    let rows = prob.numel() / cols;
    let (entry, groups) = match gpu.profile() {
        KernelProfile::Tiled => ("softmax_rows_backward", rows),
        KernelProfile::RegisterBlocked => ("softmax_rows_backward_lanes", rows.div_ceil(64)),
    };
    gpu.launch(OP, &Kernel::new(&SOFTMAX_BACKWARD, entry), &Params::new().n(rows).n(cols), &[(prob, Access::Read), (grad, Access::ReadWrite)], groups as u64)
}

/// The gradients of [`attention`](super::attention)'s inputs for the output gradient `dout` [B·heads, ch,
/// T] (contiguous): returns (dq, dk, dv), each contiguous [B·heads, ch, T]. `probs` are the softmax
/// probabilities [B·heads, T, T] the forward returned ([`attention`](super::attention));
/// without them the scores are recomputed ([B·heads, T, T] stored while this runs). Views and arguments as
/// in `attention`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    gpu: &Gpu,
    (q, qv): (&Tensor, MatView),
    (k, kv): (&Tensor, MatView),
    (v, vv): (&Tensor, MatView),
    probs: Option<&Tensor>,
    dout: &Tensor,
    batch: usize,
    heads: usize,
    ch: usize,
    len: usize,
    scale: f32,
) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "attention_backward";
    let bh = batch * heads;
    if bh == 0 || ch == 0 || len == 0 || dout.numel() != bh * ch * len {
        return Err(Error::Shape { op: OP, msg: format!("output gradient {:?} for [{bh}, {ch}, {len}]", dout.shape()) });
    }
    let mm = |m: usize, n: usize, kk: usize, a: MatView, b: MatView, alpha: f32| Matmul { batch: bh, m, n, k: kk, a, b, alpha };
    // P[t, s] = softmax_s(scale · Σ_c q[c, t] k[c, s]).
    let p = match probs {
        Some(p) if p.numel() == bh * len * len => p.clone(),
        Some(p) => return Err(Error::Shape { op: OP, msg: format!("probabilities {:?} for [{bh}, {len}, {len}]", p.shape()) }),
        None => {
            let qt = MatView { row: qv.col, col: qv.row, ..qv };
            let p = matmul(gpu, q, k, Bias::None, &mm(len, len, ch, qt, kv, 1.0), None)?;
            softmax_rows(gpu, &p, scale)?;
            p
        }
    };
    let rows = |r: usize, c: usize| MatView::rows(r, c);
    let transposed = |r: usize, c: usize| MatView::transposed(r, c);
    // dv[c, s] = Σ_t dout[c, t] P[t, s].
    let dv = matmul(gpu, dout, &p, Bias::None, &mm(ch, len, len, rows(ch, len), rows(len, len), 1.0), None)?;
    // dP[t, s] = Σ_c dout[c, t] v[c, s], then dS = P ⊙ (dP − rowsum(dP ⊙ P)).
    let ds = matmul(gpu, dout, v, Bias::None, &mm(len, len, ch, transposed(len, ch), vv, 1.0), None)?;
    softmax_rows_backward(gpu, &p, &ds)?;
    // dq[c, t] = scale Σ_s k[c, s] dS[t, s];  dk[c, s] = scale Σ_t q[c, t] dS[t, s].
    let dq = matmul(gpu, k, &ds, Bias::None, &mm(ch, len, len, kv, transposed(len, len), scale), None)?;
    let dk = matmul(gpu, q, &ds, Bias::None, &mm(ch, len, len, qv, rows(len, len), scale), None)?;
    Ok((dq, dk, dv))
}
