//! GroupNorm with fused scale-shift and SiLU (`wgsl/norm.wgsl`): chunk statistics spread over many
//! invocations (one per chunk on CPU adapters, one workgroup per chunk on GPUs), merged once per group, then
//! one normalising pass; on CPU adapters small groups take one pass, an invocation per group.

use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, KernelProfile, Params, Tensor};
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

/// Scale-shift terms for a GroupNorm: for image n, `scale[c]` is at `t[offset + n·stride + c]` and
/// `shift[c]` C entries later (a plain [N, 2C] tensor has offset 0 and stride 2C).
#[derive(Clone, Copy, Debug)]
pub struct ScaleShift<'a> {
    /// The tensor holding the terms.
    pub t: &'a Tensor,
    /// Element offset of image 0's `scale[0]`.
    pub offset: usize,
    /// Elements between images.
    pub stride: usize,
}

impl<'a> ScaleShift<'a> {
    /// A contiguous [N, 2C] tensor (scale in the first C columns, shift in the last C).
    pub fn rows(t: &'a Tensor) -> ScaleShift<'a> {
        let stride = t.shape().last().copied().unwrap_or(0);
        ScaleShift { t, offset: 0, stride }
    }
}

/// Largest group (elements) that CPU adapters normalise in one pass (`gn_fused`, one invocation per group):
/// every emoji32 GroupNorm and FFHQ-256's up to 32x32. On lavapipe (2 threads) one pass took a 64-channel
/// 16x16 GroupNorm from 0.16-0.17 to 0.09-0.12 ms; larger groups keep separate passes, which spread over more
/// threads.
pub(super) const FUSED_MAX: usize = 8192;

/// Elements per invocation of a pass that walks the channels of [N, C, S] in runs: runs stay inside one
/// channel (S % run == 0); long runs amortise the per-invocation set-up on CPU adapters, short ones keep GPU
/// threads' accesses adjacent (`tiled`).
pub(super) fn channel_run(s: usize, tiled: bool) -> usize {
    let runs: &[usize] = if tiled { &[4, 1] } else { &[64, 16, 4, 1] };
    runs.iter().copied().find(|r| s % r == 0).unwrap_or(1)
}

/// Checks GroupNorm's operands for input shape `xs` [N, C, ...]; returns (N, C, spatial size).
pub(super) fn check_args(
    op: &'static str,
    xs: &[usize],
    gamma: &Tensor,
    beta: &Tensor,
    ss: Option<&ScaleShift>,
    cfg: &GroupNorm,
) -> Result<(usize, usize, usize)> {
    if xs.len() < 2 {
        return Err(Error::Shape { op, msg: format!("input must be [N, C, ...], got {xs:?}") });
    }
    let (n, c) = (xs[0], xs[1]);
    if cfg.groups == 0 || c % cfg.groups != 0 {
        return Err(Error::Shape { op, msg: format!("{} groups do not divide {c} channels", cfg.groups) });
    }
    if gamma.shape() != [c] || beta.shape() != [c] {
        return Err(Error::Shape { op, msg: format!("gamma {:?} / beta {:?} should be [{c}]", gamma.shape(), beta.shape()) });
    }
    if let Some(ss) = ss {
        if ss.stride < 2 * c || ss.offset + (n - 1) * ss.stride + 2 * c > ss.t.numel() {
            return Err(Error::Shape {
                op,
                msg: format!("scale-shift at offset {} stride {} does not hold [{n}, {}] in {:?}", ss.offset, ss.stride, 2 * c, ss.t.shape()),
            });
        }
    }
    Ok((n, c, xs[2..].iter().product()))
}

/// The parameter block's fields every GroupNorm kernel (norm.wgsl, norm_backward.wgsl) starts with.
pub(super) fn params_head(n: usize, c: usize, s: usize, cfg: &GroupNorm, scale_shift: bool) -> Params {
    Params::new().n(n).n(c).n(s).n(cfg.groups).f(cfg.eps).u(cfg.silu as u32).u(scale_shift as u32)
}

/// `x` [N, C, ...] normalised per (n, group) over C/G channels × spatial, then `* gamma[c] + beta[c]`; with
/// scale-shift then `y * (1 + scale) + shift`; then optional SiLU.
pub fn group_norm(gpu: &Gpu, x: &Tensor, gamma: &Tensor, beta: &Tensor, scale_shift: Option<ScaleShift>, cfg: GroupNorm) -> Result<Tensor> {
    const OP: &str = "group_norm";
    let xs = x.shape();
    let (n, c, s) = check_args(OP, xs, gamma, beta, scale_shift.as_ref(), &cfg)?;
    let count = (c / cfg.groups) * s;
    let tiled = gpu.profile() == KernelProfile::Tiled;
    let chunk = if tiled { 4096 } else { 512 }.min(count);
    let chunks = count.div_ceil(chunk);
    let nchunks = n * cfg.groups * chunks;
    let out = gpu.empty(OP, xs)?;
    let (sst, ss_off, ss_stride) = match &scale_shift {
        Some(ss) => (ss.t, ss.offset, ss.stride),
        None => (gamma, 0, 0),
    };
    let params = |threads: usize| params_head(n, c, s, &cfg, scale_shift.is_some()).n(chunks).n(chunk).n(threads).n(ss_off).n(ss_stride);
    if !tiled && count <= FUSED_MAX {
        // One pass: an invocation per (n, group) (the chunk statistics binding is unused).
        let args =
            [(x, Access::Read), (gamma, Access::Read), (beta, Access::Read), (sst, Access::Read), (gpu.dummy(), Access::ReadWrite), (&out, Access::ReadWrite)];
        let groups = n * cfg.groups;
        gpu.launch(OP, &Kernel::new(&NORM, "gn_fused"), &params(groups), &args, groups.div_ceil(8) as u64)?;
        return Ok(out);
    }
    // Chunk statistics, then each group's merged (mean, rstd).
    let stats = gpu.empty(OP, &[nchunks + n * cfg.groups, 2])?;
    let args = [(x, Access::Read), (gamma, Access::Read), (beta, Access::Read), (sst, Access::Read), (&stats, Access::ReadWrite), (&out, Access::ReadWrite)];
    if tiled {
        gpu.launch(OP, &Kernel::new(&NORM, "gn_stats_wg"), &params(nchunks), &args, nchunks as u64)?;
    } else {
        gpu.launch(OP, &Kernel::new(&NORM, "gn_stats"), &params(nchunks), &args, (nchunks as u64).div_ceil(64))?;
    }
    let groups = n * cfg.groups;
    gpu.launch(OP, &Kernel::new(&NORM, "gn_merge"), &params(groups), &args, groups.div_ceil(64) as u64)?;
    let run = channel_run(s, tiled);
    let threads = x.numel() / run;
    let kernel = Kernel::new(&NORM, "gn_apply").with("RUN", run as f64);
    gpu.launch(OP, &kernel, &params(threads), &args, (threads as u64).div_ceil(64))?;
    Ok(out)
}
