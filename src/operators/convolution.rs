//! 2-D convolution with any odd kernel (motion blur, user kernels), directly or through the FFT.

use super::linear::{check_image, pack};
use super::{linear_grad, Operator};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::ops::{self, Conv2d, ConvWeights, Epilogue, FftDirection};

/// How a [`Convolution`] is computed; both give the same result up to f32 rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvRoute {
    /// k² multiply-adds per pixel (`wgsl/conv.wgsl`).
    Direct,
    /// Zero-padded to powers of two, multiplied by the kernel's spectrum, transformed back: O(log) per
    /// pixel whatever the kernel's size.
    Fft,
}

impl ConvRoute {
    /// The cheaper route for a k×k kernel on H×W planes, by a cost model fitted on lavapipe (see
    /// [`fft_pays`]); [`ConvRoute::Direct`] where the padded planes would not fit one storage binding.
    pub fn pick(gpu: &Gpu, k: usize, h: usize, w: usize) -> ConvRoute {
        let (ph, pw) = padded(k, h, w);
        let pair_bytes = (ph * pw * 8) as u64;
        if fft_pays(k, h, w) && pair_bytes <= gpu.max_binding_bytes() {
            ConvRoute::Fft
        } else {
            ConvRoute::Direct
        }
    }
}

/// Padded FFT size for a k×k kernel on H×W planes: powers of two ≥ H + k/2 and W + k/2, so that the
/// circular convolution's wrap-around only meets zeros and the result equals the zero-padded one.
fn padded(k: usize, h: usize, w: usize) -> (usize, usize) {
    ((h + k / 2).next_power_of_two(), (w + k / 2).next_power_of_two())
}

/// Whether the FFT route is expected to be faster: H·W·k² multiply-adds per plane directly against
/// 2.5·PH·PW·log2(PH·PW) + 450 000 through the FFT. Fitted on lavapipe (Mesa 25, 2 cores, RGB images),
/// where a direct multiply-add took 0.9–1.4 ns and the FFT route 5.2–6.7 ns per PH·PW·log2(PH·PW) for
/// two planes (one transform each way, packing and the product) plus ~1.5 ms per call: at 48² with k = 11
/// and 64² with k = 15 direct was 10–15 % faster, at 80² with k = 19 the FFT 1.5×, at 512² with k = 121
/// 47×. Not measured on a GPU.
pub fn fft_pays(k: usize, h: usize, w: usize) -> bool {
    let (ph, pw) = padded(k, h, w);
    let direct = (h * w) as f64 * (k * k) as f64;
    let fft = 2.5 * (ph * pw) as f64 * ((ph * pw) as f64).log2() + 450_000.0;
    direct > fft
}

/// Regularisation of [`Convolution`]'s pseudo-inverse relative to the mean diagonal of HᵀH, δ =
/// `PINV_REL_REG` · Σ K²: the relative regularisation the separable blurs (`deblur-gauss`,
/// `deblur-uniform`) use per axis.
pub const PINV_REL_REG: f64 = 1e-2;

/// Conjugate-gradient iterations of [`Convolution`]'s pseudo-inverse by default (each applies H and Hᵀ once).
/// Measured on motion blur of emoji mosaics at 128²–512²: y 10.5–10.8 dB, H⁺y 18.0–18.3 dB after 10
/// iterations, 21.9–22.1 after 30, 23.8 after 100, 24.0–24.3 after 300 (converged).
pub const PINV_CG_ITERS: usize = 30;

/// 2-D "same" convolution (PyTorch's conv2d: a correlation) of every channel of [N, C, H, W] images with one
/// odd k×k kernel and zero padding (motion blur, user kernels). Hᵀ correlates with the flipped kernel.
/// H⁺y is the Tikhonov-regularised pseudo-inverse (HᵀH + δI)⁻¹Hᵀy, δ = [`PINV_REL_REG`] · Σ K², as the
/// separable blurs define theirs, by [`PINV_CG_ITERS`] conjugate-gradient iterations from 0 (or
/// [`Convolution::with_pinv_iters`]'s count; an image stops moving once converged to f32 round-off). Being
/// iterative, it is linear in y only once converged.
pub struct Convolution {
    how: How,
    delta: f32,
    pinv_iters: usize,
    k: usize,
    h: usize,
    w: usize,
    label: String,
}

/// What each route keeps on the GPU.
enum How {
    /// The kernel and its flip (for Hᵀ), packed for `conv2d`.
    Direct {
        kernel: ConvWeights,
        flipped: ConvWeights,
    },
    Fft(FftFilter),
}

/// The kernel's spectrum for the FFT route: [PH, PW, 2] (re, im).
struct FftFilter {
    spectrum: Tensor,
    ph: usize,
    pw: usize,
}

impl Convolution {
    /// From a row-major k×k kernel (k odd) for H×W images, on the route [`ConvRoute::pick`] chooses.
    pub fn new(gpu: &Gpu, kernel: &[f32], k: usize, h: usize, w: usize, label: &str) -> Result<Convolution> {
        Convolution::with_route(gpu, kernel, k, h, w, ConvRoute::pick(gpu, k, h, w), label)
    }

    /// [`Convolution::new`] on a given route (tests and benchmarks compare them).
    pub fn with_route(gpu: &Gpu, kernel: &[f32], k: usize, h: usize, w: usize, route: ConvRoute, label: &str) -> Result<Convolution> {
        if k % 2 == 0 || kernel.len() != k * k || kernel.iter().any(|v| !v.is_finite()) {
            return Err(Error::Invalid { op: "deblur", msg: format!("kernel must be k x k finite values with k odd ({} values, k = {k})", kernel.len()) });
        }
        let energy = kernel.iter().map(|&v| v as f64 * v as f64).sum::<f64>();
        if energy == 0.0 {
            return Err(Error::Invalid { op: "deblur", msg: "the kernel is all zeros: every image would blur to 0".into() });
        }
        if h < k / 2 + 1 || w < k / 2 + 1 {
            return Err(Error::Shape { op: "deblur", msg: format!("a {w}x{h} image is smaller than the {k}x{k} kernel's half") });
        }
        let how = match route {
            ConvRoute::Direct => {
                let flipped: Vec<f32> = kernel.iter().rev().cloned().collect();
                How::Direct { kernel: pack(gpu, &[1, 1, k, k], kernel)?, flipped: pack(gpu, &[1, 1, k, k], &flipped)? }
            }
            ConvRoute::Fft => How::Fft(FftFilter::new(gpu, kernel, k, h, w)?),
        };
        Ok(Convolution { how, delta: (PINV_REL_REG * energy) as f32, pinv_iters: PINV_CG_ITERS, k, h, w, label: label.to_string() })
    }

    /// The same operator with `iters` conjugate-gradient iterations for H⁺ (≥ 1; more approach the exact
    /// Tikhonov solution, each costs one H and one Hᵀ).
    pub fn with_pinv_iters(self, iters: usize) -> Result<Convolution> {
        if iters == 0 {
            return Err(Error::Invalid { op: "deblur", msg: "the pseudo-inverse needs at least one iteration".into() });
        }
        Ok(Convolution { pinv_iters: iters, ..self })
    }

    /// The route this operator computes on.
    pub fn route(&self) -> ConvRoute {
        match self.how {
            How::Direct { .. } => ConvRoute::Direct,
            How::Fft(_) => ConvRoute::Fft,
        }
    }

    /// H x (or Hᵀ x with `adjoint`) for x [N, C, H, W].
    fn apply(&self, gpu: &Gpu, x: &Tensor, adjoint: bool) -> Result<Tensor> {
        check_image("deblur", x, None, self.h, self.w)?;
        let s = x.shape();
        match &self.how {
            How::Fft(f) => f.apply(gpu, &x.reshape(&[s[0] * s[1], self.h, self.w])?, adjoint)?.reshape(s),
            How::Direct { kernel, flipped } => {
                let planes = x.reshape(&[s[0] * s[1], 1, s[2], s[3]])?;
                let w = if adjoint { flipped } else { kernel };
                ops::conv2d_packed(gpu, &planes, w, Conv2d::same(self.k), &Epilogue::bias(None))?.reshape(s)
            }
        }
    }
}

impl FftFilter {
    fn new(gpu: &Gpu, kernel: &[f32], k: usize, h: usize, w: usize) -> Result<FftFilter> {
        let (ph, pw) = padded(k, h, w);
        // out[i, j] = Σ K[a, b] x[i + a − r, j + b − r] is the circular convolution of x with g, g[(r − a) mod
        // PH, (r − b) mod PW] = K[a, b] (r = k/2); its adjoint uses conj(G), the spectrum of g[−m].
        let r = k / 2;
        let mut g = vec![0.0f32; ph * pw * 2];
        for a in 0..k {
            for b in 0..k {
                let (y, x) = ((r + ph - a) % ph, (r + pw - b) % pw);
                g[(y * pw + x) * 2] = kernel[a * k + b];
            }
        }
        let spectrum = ops::fft2(gpu, &gpu.upload(&[1, ph, pw, 2], &g)?, FftDirection::Forward)?.reshape(&[ph, pw, 2])?;
        Ok(FftFilter { spectrum, ph, pw })
    }

    /// The convolution (or its adjoint) of every plane of x [B, H, W], as many planes per transform as one
    /// storage binding holds.
    fn apply(&self, gpu: &Gpu, x: &Tensor, adjoint: bool) -> Result<Tensor> {
        let b = x.shape()[0];
        let out = gpu.empty("deblur", x.shape())?;
        let pair_bytes = (self.ph * self.pw * 8) as u64;
        let chunk = ((gpu.max_binding_bytes() / pair_bytes) as usize * 2).max(2);
        let mut first = 0;
        while first < b {
            let count = chunk.min(b - first);
            let z = ops::fft_pack_pairs(gpu, x, first, count, self.ph, self.pw)?;
            let z = ops::fft2(gpu, &z, FftDirection::Forward)?;
            let z = ops::fft_spectrum_mul(gpu, &z, &self.spectrum, adjoint)?;
            let z = ops::fft2(gpu, &z, FftDirection::Inverse)?;
            ops::fft_unpack_pairs(gpu, &z, &out, first, count)?;
            first += count;
        }
        Ok(out)
    }
}

impl Operator for Convolution {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn measurement_shape(&self, x: &[usize]) -> Vec<usize> {
        x.to_vec()
    }
    fn forward(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        self.apply(gpu, x, false)
    }
    fn grad(&self, gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        linear_grad(gpu, self, x, y)
    }
    fn pinv(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        let aty = self.apply(gpu, y, true)?;
        let gram = |v: &Tensor| ops::axpby(gpu, 1.0, &self.apply(gpu, &self.apply(gpu, v, false)?, true)?, self.delta, v);
        ops::conjugate_gradients(gpu, gram, &aty, &gpu.zeros(aty.shape())?, self.pinv_iters).map(Some)
    }
    fn adjoint(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        self.apply(gpu, y, true).map(Some)
    }
}
