//! Degradation operators H, all on the GPU: forward H(x), the gradient of ½·mean((y − H(x))²) (through the
//! adjoint for linear operators), and a pseudo-inverse H⁺ where one exists. Images are [N, C, H, W] in
//! [-1, 1]. [`Task`] parses task names (`inpaint-box`, `sr4`, ...) into operators.

mod convolution;
mod jpeg;
mod linear;
mod nonlinear;
pub mod patterns;
mod svd;
mod task;

pub use convolution::{fft_pays, ConvRoute, Convolution, PINV_CG_ITERS, PINV_REL_REG};
pub use jpeg::{quantisation_tables, Jpeg};
pub use linear::{Colorize, Identity, Masked, Separable};
pub use nonlinear::{Hdr, PhaseRetrieval};
pub use svd::{matrix_svd, symmetric_svd, wide_svd, MatrixSvd, Svd, SVD_ZERO};
pub use task::{Task, TaskKind, TASK_NAMES};

use crate::error::Result;
use crate::gpu::{Gpu, Tensor};
use crate::ops;

/// A measurement operator y = H(x).
pub trait Operator {
    /// Short description, e.g. "sr4 (block average)".
    fn name(&self) -> String;
    /// Shape of H(x) for an image batch of shape `x` [N, C, H, W] (other ranks are returned unchanged).
    fn measurement_shape(&self, x: &[usize]) -> Vec<usize>;
    /// H(x).
    fn forward(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor>;
    /// ∇ₓ ½·mean((y − H(x))²), the mean over all elements of y.
    fn grad(&self, gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Tensor>;
    /// H⁺(y) in new storage, or `None` where the operator has no pseudo-inverse (phase retrieval).
    fn pinv(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>>;
    /// Hᵀ(y) for linear operators, `None` for nonlinear ones.
    fn adjoint(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>>;
    /// The operator's SVD for images of shape `x_shape` [N, C, H, W] (built on each call: keep it), or `None`
    /// where there is no cheap one (nonlinear operators, non-separable blur). DDRM needs it.
    fn svd(&self, _gpu: &Gpu, _x_shape: &[usize]) -> Result<Option<Svd>> {
        Ok(None)
    }
}

/// ∇ₓ ½·mean((y − Hx)²) = Hᵀ(Hx − y) / M for a linear H.
pub(crate) fn linear_grad(gpu: &Gpu, h: &dyn Operator, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let hx = h.forward(gpu, x)?;
    let inv_m = 1.0 / y.numel() as f32;
    let r = ops::axpby(gpu, inv_m, &hx, -inv_m, y)?;
    h.adjoint(gpu, &r)?.ok_or(crate::Error::Invalid { op: "grad", msg: format!("{} has no adjoint", h.name()) })
}

/// y = H(x) + 2·σ_y·n with n ~ N(0, I) drawn from `seed` (σ_y in [0, 1] pixel units; images span 2).
pub fn measure(gpu: &Gpu, h: &dyn Operator, x: &Tensor, sigma_y: f32, seed: u64) -> Result<Tensor> {
    measure_keyed(gpu, h, x, sigma_y, seed, &[])
}

/// [`measure`] with the noise of image k keyed by `keys[k]` (see [`ops::normal_keyed`]; empty = 0..N), so
/// an image's measurement does not depend on its place in a batch.
pub fn measure_keyed(gpu: &Gpu, h: &dyn Operator, x: &Tensor, sigma_y: f32, seed: u64, keys: &[u32]) -> Result<Tensor> {
    let y = h.forward(gpu, x)?;
    if sigma_y <= 0.0 {
        return Ok(y);
    }
    let k = crate::solvers::image_keys(gpu, keys, y.shape()[0])?;
    let n = ops::normal_keyed(gpu, y.shape(), seed, &k, u64::MAX, 0.0, 2.0 * sigma_y)?;
    ops::add(gpu, &y, &n)
}
