//! Element-wise kernels (`wgsl/elementwise.wgsl`): add, mul, axpby, affine, clamp, SiLU, fill, per-channel
//! broadcast, channel concat (of two or three tensors), slice, and a slice added to another tensor. All take
//! and return f32 tensors; outputs are new pooled tensors.

use super::{per_element, same_shape};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Params, Tensor};
use crate::shaders::ELEMENTWISE;

#[derive(Default, Clone, Copy)]
struct P {
    alpha: f32,
    beta: f32,
    lo: f32,
    hi: f32,
    inner: usize,
    bmod: usize,
    c1: usize,
    c2: usize,
}

fn run(gpu: &Gpu, op: &'static str, entry: &'static str, a: &Tensor, b: &Tensor, shape: &[usize], p: P) -> Result<Tensor> {
    run3(gpu, op, entry, [a, b], None, shape, p)
}

/// [`run`] with a third input `c` at binding 4 (concat3_channels).
fn run3(gpu: &Gpu, op: &'static str, entry: &'static str, [a, b]: [&Tensor; 2], c: Option<&Tensor>, shape: &[usize], p: P) -> Result<Tensor> {
    let out = gpu.empty(op, shape)?;
    let n = out.numel();
    let params = Params::new().n(n).f(p.alpha).f(p.beta).f(p.lo).f(p.hi).n(p.inner.max(1)).n(p.bmod.max(1)).n(p.c1).n(p.c2);
    let (kernel, groups) = per_element(gpu, &ELEMENTWISE, entry, n);
    let (ra, rb, w) = ((a, Access::Read), (b, Access::Read), (&out, Access::ReadWrite));
    match c {
        Some(c) => gpu.launch(op, &kernel, &params, &[ra, rb, w, (c, Access::Read)], groups)?,
        None => gpu.launch(op, &kernel, &params, &[ra, rb, w], groups)?,
    }
    Ok(out)
}

/// `a + b` (same shape).
pub fn add(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("add", a, b)?;
    run(gpu, "add", "add", a, b, a.shape(), P::default())
}

/// `a * b` element-wise (same shape).
pub fn mul(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    same_shape("mul", a, b)?;
    run(gpu, "mul", "mul", a, b, a.shape(), P::default())
}

/// `alpha * a + beta * b` (same shape).
pub fn axpby(gpu: &Gpu, alpha: f32, a: &Tensor, beta: f32, b: &Tensor) -> Result<Tensor> {
    same_shape("axpby", a, b)?;
    run(gpu, "axpby", "axpby", a, b, a.shape(), P { alpha, beta, ..P::default() })
}

/// `alpha * a + beta` (scale with `beta = 0`).
pub fn affine(gpu: &Gpu, a: &Tensor, alpha: f32, beta: f32) -> Result<Tensor> {
    run(gpu, "affine", "affine", a, a, a.shape(), P { alpha, beta, ..P::default() })
}

/// A copy of `a` in new storage.
pub fn copy(gpu: &Gpu, a: &Tensor) -> Result<Tensor> {
    affine(gpu, a, 1.0, 0.0)
}

/// `clamp(a, lo, hi)`.
pub fn clamp(gpu: &Gpu, a: &Tensor, lo: f32, hi: f32) -> Result<Tensor> {
    if !(lo <= hi) {
        return Err(Error::Invalid { op: "clamp", msg: format!("lo {lo} > hi {hi}") });
    }
    run(gpu, "clamp", "clamp_", a, a, a.shape(), P { lo, hi, ..P::default() })
}

/// `a * sigmoid(a)`.
pub fn silu(gpu: &Gpu, a: &Tensor) -> Result<Tensor> {
    run(gpu, "silu", "silu", a, a, a.shape(), P::default())
}

/// A new tensor of `shape` filled with `value`.
pub fn fill(gpu: &Gpu, shape: &[usize], value: f32) -> Result<Tensor> {
    let out = gpu.empty("fill", shape)?;
    let n = out.numel();
    let (kernel, groups) = per_element(gpu, &ELEMENTWISE, "fill", n);
    gpu.launch(
        "fill",
        &kernel,
        &Params::new().n(n).f(value).f(0.0).f(0.0).f(0.0).n(1).n(1).n(0).n(0),
        &[(gpu.dummy(), Access::Read), (gpu.dummy(), Access::Read), (&out, Access::ReadWrite)],
        groups,
    )
    .map(|_| out)
}

fn bcast_check(op: &'static str, a: &Tensor, b: &Tensor) -> Result<(usize, usize)> {
    // b's shape must be a prefix of a's (e.g. [N, C] for a [N, C, H, W]) or a's second dimension alone ([C]).
    let sa = a.shape();
    let sb = b.shape();
    if sb.len() <= sa.len() && sa[..sb.len()] == *sb {
        let inner: usize = sa[sb.len()..].iter().product();
        return Ok((inner, b.numel()));
    }
    if sb.len() == 1 && sa.len() >= 2 && sa[1] == sb[0] {
        return Ok((sa[2..].iter().product(), sb[0]));
    }
    Err(Error::Shape { op, msg: format!("cannot broadcast {:?} over {:?} (need a prefix like [N, C] or [C])", sb, sa) })
}

/// `a + b` with `b` broadcast over `a`'s trailing dimensions: `b` is [N, C] (or `[C]`) for `a` [N, C, H, W].
pub fn add_bcast(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (inner, bmod) = bcast_check("add_bcast", a, b)?;
    run(gpu, "add_bcast", "add_bcast", a, b, a.shape(), P { inner, bmod, ..P::default() })
}

/// `a * b` with `b` broadcast as in [`add_bcast`].
pub fn mul_bcast(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (inner, bmod) = bcast_check("mul_bcast", a, b)?;
    run(gpu, "mul_bcast", "mul_bcast", a, b, a.shape(), P { inner, bmod, ..P::default() })
}

/// Concatenates [N, Ca, ...] and [N, Cb, ...] along dimension 1 (trailing dimensions must match).
pub fn concat_channels(gpu: &Gpu, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() < 2 || sa.len() != sb.len() || sa[0] != sb[0] || sa[2..] != sb[2..] {
        return Err(Error::Shape { op: "concat_channels", msg: format!("cannot concatenate {:?} and {:?} along dim 1", sa, sb) });
    }
    let mut shape = sa.to_vec();
    shape[1] = sa[1] + sb[1];
    let inner = sa[2..].iter().product();
    run(gpu, "concat_channels", "concat_channels", a, b, &shape, P { inner, bmod: sa[1], c1: sb[1], ..P::default() })
}

/// `cat(a, b, c)` along dim 1 in one pass (all [N, C_i, ...] with equal N and trailing dims).
pub fn concat3_channels(gpu: &Gpu, a: &Tensor, b: &Tensor, c: &Tensor) -> Result<Tensor> {
    const OP: &str = "concat3_channels";
    let (sa, sb, sc) = (a.shape(), b.shape(), c.shape());
    let fits = |s: &[usize]| s.len() == sa.len() && s[0] == sa[0] && s[2..] == sa[2..];
    if sa.len() < 2 || !fits(sb) || !fits(sc) {
        return Err(Error::Shape { op: OP, msg: format!("cannot concatenate {sa:?}, {sb:?} and {sc:?} along dim 1") });
    }
    let mut shape = sa.to_vec();
    shape[1] = sa[1] + sb[1] + sc[1];
    let inner = sa[2..].iter().product();
    run3(gpu, OP, OP, [a, b], Some(c), &shape, P { inner, bmod: sa[1], c1: sb[1], c2: sc[1], ..P::default() })
}

/// `b + a[:, start .. start + C_b]` for `a` [N, C, ...] and `b` [N, C_b, ...] in one pass (a slice of one
/// tensor's channels added to another, e.g. a skip connection's gradient joining the running one).
pub fn add_channel_slice(gpu: &Gpu, a: &Tensor, start: usize, b: &Tensor) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() < 2 || sa.len() != sb.len() || sa[0] != sb[0] || sa[2..] != sb[2..] || start + sb[1] > sa[1] {
        return Err(Error::Shape {
            op: "add_channel_slice",
            msg: format!("channels {start}..{} of {sa:?} do not fit {sb:?}", start + sb.get(1).copied().unwrap_or(0)),
        });
    }
    let inner = sa[2..].iter().product();
    run(gpu, "add_channel_slice", "add_slice", a, b, sb, P { inner, bmod: sa[1], c1: start, c2: sb[1], ..P::default() })
}

/// Channels `start .. start + count` of [N, C, ...] (e.g. dropping learned-sigma channels).
pub fn slice_channels(gpu: &Gpu, a: &Tensor, start: usize, count: usize) -> Result<Tensor> {
    let sa = a.shape();
    if sa.len() < 2 || count == 0 || start + count > sa[1] {
        return Err(Error::Shape { op: "slice_channels", msg: format!("channels {start}..{} out of range for {:?}", start + count, sa) });
    }
    let mut shape = sa.to_vec();
    shape[1] = count;
    let inner = sa[2..].iter().product();
    run(gpu, "slice_channels", "slice_channels", a, a, &shape, P { inner, bmod: sa[1], c1: start, c2: count, ..P::default() })
}

/// A new tensor of `shape` holding `a`'s elements `offset .. offset + numel(shape)` (flat, row-major).
pub fn copy_range(gpu: &Gpu, a: &Tensor, offset: usize, shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    if offset + n > a.numel() {
        return Err(Error::Shape { op: "copy_range", msg: format!("elements {offset}..{} out of range for {:?}", offset + n, a.shape()) });
    }
    run(gpu, "copy_range", "copy_range", a, a, shape, P { c1: offset, ..P::default() })
}

/// Writes all of `src` into `dst` at flat element `offset` (in stream order; `dst` must not be `src`).
pub fn copy_into(gpu: &Gpu, dst: &Tensor, offset: usize, src: &Tensor) -> Result<()> {
    let n = src.numel();
    if offset + n > dst.numel() || dst.same_storage(src) {
        return Err(Error::Shape { op: "copy_into", msg: format!("cannot write {:?} at element {offset} of {:?}", src.shape(), dst.shape()) });
    }
    let params = Params::new().n(n).f(0.0).f(0.0).f(0.0).f(0.0).n(1).n(1).n(offset).n(0);
    let (kernel, groups) = per_element(gpu, &ELEMENTWISE, "copy_into", n);
    gpu.launch("copy_into", &kernel, &params, &[(src, Access::Read), (gpu.dummy(), Access::Read), (dst, Access::ReadWrite)], groups)
}
