//! 2-D convolution (`wgsl/conv.wgsl`), as `torch.nn.Conv2d` with groups 1 and dilation 1.

use super::dims;
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::CONV;

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
