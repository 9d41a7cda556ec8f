//! 2-D FFT over power-of-two sizes (`wgsl/fft.wgsl`): radix-2 Stockham stages along W, then along H.

use super::dims;
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::FFT;

/// Transform direction; both follow numpy.fft conventions (inverse divides by H·W).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FftDirection {
    /// Σ x · exp(−2πi (ky·y/H + kx·x/W)).
    Forward,
    /// (1/HW) Σ X · exp(+2πi ...).
    Inverse,
}

/// FFT of every [H, W] complex plane of `x` [B, H, W, 2] (last dimension = re, im). H and W must be powers of
/// two. Returns a new [B, H, W, 2] tensor.
pub fn fft2(gpu: &Gpu, x: &Tensor, dir: FftDirection) -> Result<Tensor> {
    const OP: &str = "fft2";
    let [b, h, w, two] = dims::<4>(OP, "input", x)?;
    if two != 2 || !h.is_power_of_two() || !w.is_power_of_two() {
        return Err(Error::Shape { op: OP, msg: format!("need [B, H, W, 2] with H, W powers of two, got {:?}", x.shape()) });
    }
    let sign = if dir == FftDirection::Forward { -1.0 } else { 1.0 };
    let mut cur = x.clone();
    // (length, transforms, inner, outer_stride, inner_stride, stride): rows then columns.
    let axes = [(w, b * h, 1, w, 0, 1), (h, b * w, w, h * w, 1, w)];
    for (len, count, inner, outer_stride, inner_stride, stride) in axes {
        let stages = len.trailing_zeros();
        for s in 0..stages {
            let ns = 1usize << s;
            let last = s + 1 == stages;
            let scale = if dir == FftDirection::Inverse && last { 1.0 / len as f32 } else { 1.0 };
            let out = gpu.empty(OP, x.shape())?;
            let threads = count * len / 2;
            let params = Params::new().n(threads).n(len).n(ns).n(inner).n(outer_stride).n(inner_stride).n(stride).f(sign).f(scale);
            gpu.launch(OP, &Kernel::new(&FFT, "fft_stage"), &params, &[(&cur, Access::Read), (&out, Access::ReadWrite)], (threads as u64).div_ceil(256))?;
            cur = out;
        }
    }
    if cur.same_storage(x) {
        // H = W = 1: nothing to transform; still return new storage.
        cur = super::elementwise::copy(gpu, x)?;
    }
    Ok(cur)
}
