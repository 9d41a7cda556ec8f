//! 2-D convolution (`wgsl/conv.wgsl`), as `torch.nn.Conv2d` with groups 1 and dilation 1.

use super::dims;
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::{CONV, CONV3X3};

/// Stride and zero padding of a convolution (square kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Step between output pixels, in input pixels (>= 1).
    pub stride: usize,
    /// Zero padding on every side, in pixels.
    pub padding: usize,
}

impl Conv2d {
    /// "Same" convolution for an odd kernel size `k`: stride 1, padding k / 2.
    pub fn same(k: usize) -> Conv2d {
        Conv2d { stride: 1, padding: k / 2 }
    }
}

/// `x` [N, Cin, H, W] * `w` [Cout, Cin, K, K] + `bias` [Cout] → [N, Cout, Ho, Wo] with
/// Ho = (H + 2p - K) / s + 1. Kernel sizes 3 and 1 use specialised (unrolled) pipelines.
pub fn conv2d(gpu: &Gpu, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, cfg: Conv2d) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let [n, cin, h, wd] = dims::<4>(OP, "input", x)?;
    let [cout, wcin, kh, kw] = dims::<4>(OP, "weight", w)?;
    if wcin != cin || kh != kw {
        return Err(Error::Shape {
            op: OP,
            msg: format!("weight {:?} does not fit input {:?} (need [Cout, {cin}, K, K])", w.shape(), x.shape()),
        });
    }
    if let Some(b) = bias {
        if b.shape() != [cout] {
            return Err(Error::Shape { op: OP, msg: format!("bias {:?} should be [{cout}]", b.shape()) });
        }
    }
    if cfg.stride == 0 || h + 2 * cfg.padding < kh || wd + 2 * cfg.padding < kw {
        return Err(Error::Shape {
            op: OP,
            msg: format!("kernel {kh}x{kw}, stride {}, padding {} do not fit a {h}x{wd} input", cfg.stride, cfg.padding),
        });
    }
    if kh == 3 && cfg.stride == 1 && cfg.padding == 1 {
        return conv3x3_packed(gpu, x, &pack_conv3x3(gpu, w)?, bias);
    }
    let ho = (h + 2 * cfg.padding - kh) / cfg.stride + 1;
    let wo = (wd + 2 * cfg.padding - kw) / cfg.stride + 1;
    let out = gpu.empty(OP, &[n, cout, ho, wo])?;
    let threads = n * cout.div_ceil(4) * ho * wo.div_ceil(4);
    let ks = if kh == 3 || kh == 1 { kh } else { 0 };
    let kernel = Kernel::new(&CONV, "conv2d").with("KS", ks as f64);
    let params = Params::new()
        .n(n)
        .n(cin)
        .n(h)
        .n(wd)
        .n(cout)
        .n(ho)
        .n(wo)
        .n(kh)
        .n(cfg.stride)
        .n(cfg.padding)
        .u(bias.is_some() as u32)
        .n(threads);
    let b = bias.unwrap_or(w);
    gpu.launch(
        OP,
        &kernel,
        &params,
        &[(x, Access::Read), (w, Access::Read), (b, Access::Read), (&out, Access::ReadWrite)],
        (threads as u64).div_ceil(64),
    )?;
    Ok(out)
}

/// Weights of a 3×3 convolution packed for the fast path: [Cin·9, CoutP] with CoutP = Cout rounded up to 8.
#[derive(Clone, Debug)]
pub struct Packed3x3 {
    packed: Tensor,
    cin: usize,
    cout: usize,
}

/// Packs `w` [Cout, Cin, 3, 3] once (one dispatch), for repeated [`conv3x3_packed`] calls.
pub fn pack_conv3x3(gpu: &Gpu, w: &Tensor) -> Result<Packed3x3> {
    const OP: &str = "pack_conv3x3";
    let [cout, cin, kh, kw] = dims::<4>(OP, "weight", w)?;
    if kh != 3 || kw != 3 {
        return Err(Error::Shape { op: OP, msg: format!("weight {:?} is not 3x3", w.shape()) });
    }
    let coutp = cout.div_ceil(8) * 8;
    let packed = gpu.empty(OP, &[cin * 9, coutp])?;
    let threads = cin * 9 * coutp;
    let params = Params::new().n(0).n(cin).n(0).n(0).n(cout).n(0).n(0).n(coutp).n(0).n(0).n(0).n(threads);
    gpu.launch(
        OP,
        &Kernel::new(&CONV, "pack3x3"),
        &params,
        &[(gpu.dummy(), Access::Read), (w, Access::Read), (gpu.dummy(), Access::Read), (&packed, Access::ReadWrite)],
        (threads as u64).div_ceil(64),
    )?;
    Ok(Packed3x3 { packed, cin, cout })
}

/// 3×3 convolution, stride 1, padding 1, with packed weights: `x` [N, Cin, H, W] → [N, Cout, H, W].
pub fn conv3x3_packed(gpu: &Gpu, x: &Tensor, w: &Packed3x3, bias: Option<&Tensor>) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let [n, cin, h, wd] = dims::<4>(OP, "input", x)?;
    if cin != w.cin {
        return Err(Error::Shape { op: OP, msg: format!("input {:?} has {cin} channels, the packed weights {}", x.shape(), w.cin) });
    }
    if let Some(b) = bias {
        if b.shape() != [w.cout] {
            return Err(Error::Shape { op: OP, msg: format!("bias {:?} should be [{}]", b.shape(), w.cout) });
        }
    }
    let coutp = w.packed.shape()[1];
    let out = gpu.empty(OP, &[n, w.cout, h, wd])?;
    let threads = n * (coutp / 8) * h * wd.div_ceil(4);
    let params = Params::new().n(n).n(cin).n(h).n(wd).n(w.cout).n(coutp).u(bias.is_some() as u32).n(threads);
    gpu.launch(
        OP,
        &Kernel::new(&CONV3X3, "conv3x3"),
        &params,
        &[(x, Access::Read), (&w.packed, Access::Read), (bias.unwrap_or(&w.packed), Access::Read), (&out, Access::ReadWrite)],
        (threads as u64).div_ceil(64),
    )?;
    Ok(out)
}
