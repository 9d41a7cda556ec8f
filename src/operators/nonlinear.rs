//! Nonlinear operators: HDR (clip(2x, −1, 1)) and Fourier phase retrieval (|FFT| of the zero-padded image,
//! 2× oversampling), with analytic gradients computed on the GPU (`wgsl/measure.wgsl`).

use super::Operator;
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::ops::{self, FftDirection};
use crate::shaders::MEASURE;

fn run(
    gpu: &Gpu,
    op: &'static str,
    entry: &'static str,
    a: &Tensor,
    b: &Tensor,
    out_shape: &[usize],
    n: usize,
    h: usize,
    w: usize,
    scale: f32,
) -> Result<Tensor> {
    let out = gpu.empty(op, out_shape)?;
    gpu.launch(
        op,
        &Kernel::new(&MEASURE, entry),
        &Params::new().n(n).n(h).n(w).f(scale),
        &[(a, Access::Read), (b, Access::Read), (&out, Access::ReadWrite)],
        (n as u64).div_ceil(256),
    )?;
    Ok(out)
}

/// HDR reconstruction from a clipped, over-exposed image: y = clip(2x, −1, 1). H⁺y = y / 2.
pub struct Hdr;

impl Operator for Hdr {
    fn name(&self) -> String {
        "hdr (clip(2x, -1, 1))".into()
    }
    fn measurement_shape(&self, x: &[usize]) -> Vec<usize> {
        x.to_vec()
    }
    fn forward(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        run(gpu, "hdr", "hdr_forward", x, x, x.shape(), x.numel(), 0, 0, 0.0)
    }
    fn grad(&self, gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        if x.shape() != y.shape() {
            return Err(Error::Shape { op: "hdr", msg: format!("x {:?} vs y {:?}", x.shape(), y.shape()) });
        }
        run(gpu, "hdr", "hdr_grad", x, y, x.shape(), x.numel(), 0, 0, 1.0 / y.numel() as f32)
    }
    fn pinv(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        ops::affine(gpu, y, 0.5, 0.0).map(Some)
    }
    fn adjoint(&self, _gpu: &Gpu, _y: &Tensor) -> Result<Option<Tensor>> {
        Ok(None)
    }
}

/// Phase retrieval: y = |F(pad(x))| per channel, where pad centres the H×W image in a 2H×2W zero canvas and
/// F is the unnormalised 2-D DFT. H and W must be powers of two. No pseudo-inverse exists.
pub struct PhaseRetrieval;

impl PhaseRetrieval {
    fn spectrum(&self, gpu: &Gpu, x: &Tensor) -> Result<(Tensor, [usize; 4])> {
        let s = x.shape();
        if s.len() != 4 || !s[2].is_power_of_two() || !s[3].is_power_of_two() {
            return Err(Error::Shape { op: "phase", msg: format!("phase retrieval needs [N, C, H, W] with H, W powers of two, got {:?}", s) });
        }
        let (p, h, w) = (s[0] * s[1], s[2], s[3]);
        let z = run(gpu, "phase", "pad_complex", x, x, &[p, 2 * h, 2 * w, 2], p * 4 * h * w, h, w, 1.0)?;
        Ok((ops::fft2(gpu, &z, FftDirection::Forward)?, [s[0], s[1], h, w]))
    }
}

impl Operator for PhaseRetrieval {
    fn name(&self) -> String {
        "phase retrieval (|FFT|, 2x oversampling)".into()
    }
    fn measurement_shape(&self, x: &[usize]) -> Vec<usize> {
        if x.len() != 4 {
            return x.to_vec();
        }
        vec![x[0], x[1], 2 * x[2], 2 * x[3]]
    }
    fn forward(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        let (z, [n, c, h, w]) = self.spectrum(gpu, x)?;
        run(gpu, "phase", "magnitude", &z, &z, &[n, c, 2 * h, 2 * w], n * c * 4 * h * w, 0, 0, 1.0)
    }
    /// ∇ = Re(N_F · ifft(−(y − |Z|)/M · Z/|Z|)) cropped to the image window, Z = F(pad x), N_F = 4HW.
    fn grad(&self, gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let (z, [n, c, h, w]) = self.spectrum(gpu, x)?;
        if y.shape() != [n, c, 2 * h, 2 * w] {
            return Err(Error::Shape { op: "phase", msg: format!("measurement {:?} should be [{n}, {c}, {}, {}]", y.shape(), 2 * h, 2 * w) });
        }
        let m = y.numel();
        let v = run(gpu, "phase", "phase_residual", &z, y, z.shape(), m, 0, 0, 1.0 / m as f32)?;
        let back = ops::fft2(gpu, &v, FftDirection::Inverse)?;
        run(gpu, "phase", "crop_real", &back, &back, x.shape(), x.numel(), h, w, (4 * h * w) as f32)
    }
    fn pinv(&self, _gpu: &Gpu, _y: &Tensor) -> Result<Option<Tensor>> {
        Ok(None)
    }
    fn adjoint(&self, _gpu: &Gpu, _y: &Tensor) -> Result<Option<Tensor>> {
        Ok(None)
    }
}
