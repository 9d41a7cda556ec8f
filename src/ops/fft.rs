//! 2-D FFT over power-of-two sizes (`wgsl/fft.wgsl`): radix-4 Stockham stages (one radix-2 stage where log2
//! of the length is odd) along W, then along H; and the packing and spectrum product around it for
//! convolutions through the FFT (`wgsl/fft_conv.wgsl`).

use super::{dims, groups256};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::{FFT, FFT_CONV};

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
        // Radix-4 stages (two radix-2 stages per pass), after one radix-2 stage where log2(len) is odd.
        let mut ns = 1usize;
        while ns < len {
            let radix = if (len / ns).trailing_zeros() % 2 == 1 { 2 } else { 4 };
            let last = ns * radix == len;
            let scale = if dir == FftDirection::Inverse && last { 1.0 / len as f32 } else { 1.0 };
            let out = gpu.empty(OP, x.shape())?;
            let threads = count * len / radix;
            let entry = if radix == 2 { "fft_stage" } else { "fft_stage4" };
            let params = Params::new().n(threads).n(len).n(ns).n(inner).n(outer_stride).n(inner_stride).n(stride).f(sign).f(scale);
            gpu.launch(OP, &Kernel::new(&FFT, entry), &params, &[(&cur, Access::Read), (&out, Access::ReadWrite)], (threads as u64).div_ceil(256))?;
            cur = out;
            ns *= radix;
        }
    }
    if cur.same_storage(x) {
        // H = W = 1: nothing to transform; still return new storage.
        cur = super::elementwise::copy(gpu, x)?;
    }
    Ok(cur)
}

/// Packs real planes `first .. first + count` of `x` [B, H, W] two per complex plane into [⌈count/2⌉, PH, PW,
/// 2] (re = plane 2q, im = plane 2q + 1, the image at the top-left corner, zeros elsewhere) for [`fft2`].
/// PH ≥ H and PW ≥ W, powers of two.
pub fn fft_pack_pairs(gpu: &Gpu, x: &Tensor, first: usize, count: usize, ph: usize, pw: usize) -> Result<Tensor> {
    const OP: &str = "fft_pack_pairs";
    let [b, h, w] = dims::<3>(OP, "input", x)?;
    if !ph.is_power_of_two() || !pw.is_power_of_two() || ph < h || pw < w || count == 0 || first + count > b {
        return Err(Error::Shape { op: OP, msg: format!("planes {first}..{} of {b}, padded to {ph}x{pw} (powers of two covering {h}x{w})", first + count) });
    }
    let q = count.div_ceil(2);
    let out = gpu.empty(OP, &[q, ph, pw, 2])?;
    let n = q * ph * pw;
    let params = Params::new().n(n).n(count).n(h).n(w).n(ph).n(pw).f(1.0).n(first);
    gpu.launch(OP, &Kernel::new(&FFT_CONV, "pack_pairs"), &params, &[(x, Access::Read), (x, Access::Read), (&out, Access::ReadWrite)], groups256(n))?;
    Ok(out)
}

/// z [Q, PH, PW, 2] times the spectrum [PH, PW, 2] in every plane (complex), or times its conjugate.
pub fn fft_spectrum_mul(gpu: &Gpu, z: &Tensor, spectrum: &Tensor, conjugate: bool) -> Result<Tensor> {
    const OP: &str = "fft_spectrum_mul";
    let [q, ph, pw, two] = dims::<4>(OP, "input", z)?;
    if two != 2 || spectrum.shape() != [ph, pw, 2] || !ph.is_power_of_two() || !pw.is_power_of_two() {
        return Err(Error::Shape {
            op: OP,
            msg: format!("need [Q, PH, PW, 2] and [PH, PW, 2] with PH, PW powers of two, got {:?} and {:?}", z.shape(), spectrum.shape()),
        });
    }
    let out = gpu.empty(OP, z.shape())?;
    let n = q * ph * pw;
    let params = Params::new().n(n).n(q).n(0).n(0).n(ph).n(pw).f(if conjugate { -1.0 } else { 1.0 }).n(0);
    gpu.launch(OP, &Kernel::new(&FFT_CONV, "spectrum_mul"), &params, &[(z, Access::Read), (spectrum, Access::Read), (&out, Access::ReadWrite)], groups256(n))?;
    Ok(out)
}

/// The inverse of [`fft_pack_pairs`]: writes the top-left H×W corner of the re and im parts of z [⌈count/2⌉,
/// PH, PW, 2] into planes `first .. first + count` of `out` [B, H, W].
pub fn fft_unpack_pairs(gpu: &Gpu, z: &Tensor, out: &Tensor, first: usize, count: usize) -> Result<()> {
    const OP: &str = "fft_unpack_pairs";
    let [q, ph, pw, two] = dims::<4>(OP, "input", z)?;
    let [b, h, w] = dims::<3>(OP, "output", out)?;
    if two != 2 || count == 0 || q != count.div_ceil(2) || first + count > b || ph < h || pw < w {
        return Err(Error::Shape { op: OP, msg: format!("{:?} does not hold planes {first}..{} of {:?}", z.shape(), first + count, out.shape()) });
    }
    let n = count * h * w;
    let params = Params::new().n(n).n(count).n(h).n(w).n(ph).n(pw).f(1.0).n(first);
    gpu.launch(OP, &Kernel::new(&FFT_CONV, "unpack_pairs"), &params, &[(z, Access::Read), (z, Access::Read), (out, Access::ReadWrite)], groups256(n))
}
