//! Linear operators: masking (inpainting), separable 1-D matrices (super-resolution, Gaussian / uniform blur),
//! colorization and identity (denoising); 2-D convolution (motion / user blur) is in `convolution.rs`.

use super::patterns::Matrix;
use super::svd::{sandwich, Svd};
use super::{linear_grad, Operator};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::ops::{self, Conv2d, ConvWeights, Epilogue, MatView};

pub(super) fn check_image(op: &'static str, x: &Tensor, c: Option<usize>, h: usize, w: usize) -> Result<(usize, usize)> {
    let s = x.shape();
    if s.len() != 4 || s[2] != h || s[3] != w || c.is_some_and(|c| s[1] != c) {
        return Err(Error::Shape { op, msg: format!("expected [N, {}, {h}, {w}], got {:?}", c.map(|c| c.to_string()).unwrap_or("C".into()), s) });
    }
    Ok((s[0], s[1]))
}

/// Inpainting: y = m ⊙ x with a keep-mask m [H, W] (1 observed, 0 missing) shared by all channels.
/// Hᵀ = H = H⁺ (a projection).
pub struct Masked {
    mask: Tensor,
    host: Vec<f32>,
    h: usize,
    w: usize,
    label: String,
}

impl Masked {
    /// From a host mask [h, w] (values 0 or 1).
    pub fn new(gpu: &Gpu, mask: &[f32], h: usize, w: usize, label: &str) -> Result<Masked> {
        if mask.len() != h * w {
            return Err(Error::Shape { op: "inpaint", msg: format!("mask has {} values for a {w}x{h} image", mask.len()) });
        }
        if mask.iter().all(|v| *v != 0.0) {
            return Err(Error::Invalid { op: "inpaint", msg: "the mask hides nothing".into() });
        }
        if mask.iter().all(|v| *v == 0.0) {
            return Err(Error::Invalid { op: "inpaint", msg: "the mask hides everything".into() });
        }
        Ok(Masked { mask: gpu.upload(&[h * w], mask)?, host: mask.to_vec(), h, w, label: label.to_string() })
    }
    /// The keep-mask [H·W] on the GPU.
    pub fn mask(&self) -> &Tensor {
        &self.mask
    }
    fn apply(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        check_image("inpaint", x, None, self.h, self.w)?;
        let planes = x.numel() / (self.h * self.w);
        let flat = x.reshape(&[planes, self.h * self.w])?;
        ops::mul_bcast(gpu, &flat, &self.mask).and_then(|t| t.reshape(x.shape()))
    }
}

impl Operator for Masked {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn measurement_shape(&self, x: &[usize]) -> Vec<usize> {
        x.to_vec()
    }
    fn forward(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        self.apply(gpu, x)
    }
    fn grad(&self, gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        linear_grad(gpu, self, x, y)
    }
    fn pinv(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        self.apply(gpu, y).map(Some)
    }
    fn adjoint(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        self.apply(gpu, y).map(Some)
    }
    fn svd(&self, gpu: &Gpu, x_shape: &[usize]) -> Result<Option<Svd>> {
        let c = x_shape.get(1).copied().unwrap_or(1);
        Svd::identity(gpu, [c, self.h, self.w], &self.host.repeat(c)).map(Some)
    }
}

/// A separable operator y = R_y · X · R_xᵀ on every channel plane, with dense 1-D matrices R_y [Ho, H] and
/// R_x [Wo, W]: block-average and bicubic downsampling, Gaussian and uniform blur (zero padding).
/// Hᵀ uses the transposes; H⁺ = R_y⁺ · Y · R_x⁺ᵀ (exact for full-rank R, regularised for blur).
pub struct Separable {
    host: (Matrix, Matrix),
    ry: Tensor,
    rx: Tensor,
    py: Tensor,
    px: Tensor,
    shape: [usize; 4], // ho, h, wo, w
    label: String,
}

impl Separable {
    /// From the 1-D matrices; `rel_reg` regularises the pseudo-inverse (0 for exact).
    pub fn new(gpu: &Gpu, ry: &Matrix, rx: &Matrix, rel_reg: f64, label: &str) -> Result<Separable> {
        let (py, px) = (ry.pinv(rel_reg)?, rx.pinv(rel_reg)?);
        Ok(Separable {
            host: (ry.clone(), rx.clone()),
            ry: gpu.upload(&[ry.rows, ry.cols], &ry.to_f32())?,
            rx: gpu.upload(&[rx.rows, rx.cols], &rx.to_f32())?,
            py: gpu.upload(&[py.rows, py.cols], &py.to_f32())?,
            px: gpu.upload(&[px.rows, px.cols], &px.to_f32())?,
            shape: [ry.rows, ry.cols, rx.rows, rx.cols],
            label: label.to_string(),
        })
    }
}

impl Operator for Separable {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn measurement_shape(&self, x: &[usize]) -> Vec<usize> {
        if x.len() != 4 {
            return x.to_vec();
        }
        vec![x[0], x[1], self.shape[0], self.shape[2]]
    }
    fn forward(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        let [ho, h, wo, w] = self.shape;
        check_image("separable", x, None, h, w)?;
        // B = R_xᵀ seen as [w, wo]: the transpose of the stored [wo, w].
        sandwich(gpu, x, (&self.ry, MatView::rows(ho, h).shared(), ho, h), (&self.rx, MatView::transposed(w, wo), wo, w))
    }
    fn grad(&self, gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        linear_grad(gpu, self, x, y)
    }
    fn pinv(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        let [ho, h, wo, w] = self.shape;
        check_image("separable pinv", y, None, ho, wo)?;
        // P_y [h, ho], P_x [w, wo]: X = P_y Y P_xᵀ.
        sandwich(gpu, y, (&self.py, MatView::rows(h, ho).shared(), h, ho), (&self.px, MatView::transposed(wo, w), w, wo)).map(Some)
    }
    fn adjoint(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        let [ho, h, wo, w] = self.shape;
        check_image("separable adjoint", y, None, ho, wo)?;
        // X = R_yᵀ Y R_x: A = R_yᵀ [h, ho] (transposed view), B = R_x [wo, w] used as Bᵀ → need [wo, w] rows.
        sandwich(gpu, y, (&self.ry, MatView::transposed(h, ho).shared(), h, ho), (&self.rx, MatView::rows(wo, w), w, wo)).map(Some)
    }
    fn svd(&self, gpu: &Gpu, x_shape: &[usize]) -> Result<Option<Svd>> {
        Svd::separable(gpu, x_shape.get(1).copied().unwrap_or(1), &self.host.0, &self.host.1).map(Some)
    }
}

/// Colorization: y = mean of the RGB channels [N, 1, H, W]. Hᵀy = y/3 in each channel; H⁺y = y in each.
pub struct Colorize {
    to_gray: ConvWeights,
    adjoint: ConvWeights,
    pinv: ConvWeights,
}

impl Colorize {
    /// The RGB → gray operator.
    pub fn new(gpu: &Gpu) -> Result<Colorize> {
        Ok(Colorize {
            to_gray: pack(gpu, &[1, 3, 1, 1], &[1.0 / 3.0; 3])?,
            adjoint: pack(gpu, &[3, 1, 1, 1], &[1.0 / 3.0; 3])?,
            pinv: pack(gpu, &[3, 1, 1, 1], &[1.0; 3])?,
        })
    }
}

impl Operator for Colorize {
    fn name(&self) -> String {
        "color (gray = mean of RGB)".into()
    }
    fn measurement_shape(&self, x: &[usize]) -> Vec<usize> {
        if x.len() != 4 {
            return x.to_vec();
        }
        vec![x[0], 1, x[2], x[3]]
    }
    fn forward(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        if x.shape().len() != 4 || x.shape()[1] != 3 {
            return Err(Error::Shape { op: "color", msg: format!("colorization needs RGB images [N, 3, H, W], got {:?}", x.shape()) });
        }
        ops::conv2d_packed(gpu, x, &self.to_gray, Conv2d::same(1), &Epilogue::bias(None))
    }
    fn grad(&self, gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        linear_grad(gpu, self, x, y)
    }
    fn pinv(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        ops::conv2d_packed(gpu, y, &self.pinv, Conv2d::same(1), &Epilogue::bias(None)).map(Some)
    }
    fn adjoint(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        ops::conv2d_packed(gpu, y, &self.adjoint, Conv2d::same(1), &Epilogue::bias(None)).map(Some)
    }
    fn svd(&self, gpu: &Gpu, x_shape: &[usize]) -> Result<Option<Svd>> {
        match x_shape {
            [_, 3, h, w] => Svd::colorize(gpu, *h, *w).map(Some),
            s => Err(Error::Shape { op: "color", msg: format!("colorization needs RGB images [N, 3, H, W], got {s:?}") }),
        }
    }
}

/// Uploads f32 convolution weights of `shape` [Cout, Cin, K, K] and packs them once for every later call.
pub(super) fn pack(gpu: &Gpu, shape: &[usize], w: &[f32]) -> Result<ConvWeights> {
    ops::pack_conv(gpu, &gpu.upload(shape, w)?, false)
}

/// Denoising: H = I.
pub struct Identity;

impl Operator for Identity {
    fn name(&self) -> String {
        "denoise (identity)".into()
    }
    fn measurement_shape(&self, x: &[usize]) -> Vec<usize> {
        x.to_vec()
    }
    fn forward(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        ops::copy(gpu, x)
    }
    fn grad(&self, gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let inv_m = 1.0 / y.numel() as f32;
        ops::axpby(gpu, inv_m, x, -inv_m, y)
    }
    fn pinv(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        ops::copy(gpu, y).map(Some)
    }
    fn adjoint(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        ops::copy(gpu, y).map(Some)
    }
    fn svd(&self, gpu: &Gpu, x_shape: &[usize]) -> Result<Option<Svd>> {
        match x_shape {
            [_, c, h, w] => Svd::identity(gpu, [*c, *h, *w], &vec![1.0; c * h * w]).map(Some),
            s => Err(Error::Shape { op: "denoise", msg: format!("expected images [N, C, H, W], got {s:?}") }),
        }
    }
}
