//! The noise predictor interface and its implementations: a UNet, and the exact ε for a Gaussian data prior.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::{Schedule, Unet};
use crate::ops;

/// A noise predictor ε(x_t, t): given x_t [N, C, H, W] at integer timestep t (0-based, < T), returns the
/// predicted noise [N, C, H, W] (learned-sigma channels dropped). Records GPU work; reads nothing back.
pub trait Denoiser {
    /// ε̂(x_t, t).
    fn eps(&self, gpu: &Gpu, x_t: &Tensor, t: usize) -> Result<Tensor>;
    /// Image channels the predictor works on.
    fn channels(&self) -> usize;
    /// Native square resolution in pixels, if it has one.
    fn image_size(&self) -> Option<usize>;
    /// ε̂(x_t, t) with what a vector-Jacobian product at x_t needs (DPS and ΠGDM), or an error for
    /// predictors without one.
    fn eps_tape<'a>(&'a self, _gpu: &Gpu, _x_t: &Tensor, _t: usize) -> Result<EpsTape<'a>> {
        Err(Error::Invalid { op: "vjp", msg: "this prior has no vector-Jacobian product (DPS and PiGDM need one)".into() })
    }
}

/// A noise prediction that can differentiate itself: ε̂ at x_t, the learned-variance channels where the
/// network has them, and (∂ε̂/∂x_t)ᵀ v for any v.
pub struct EpsTape<'a> {
    /// ε̂(x_t, t) [N, C, H, W].
    pub eps: Tensor,
    /// The network's learned-variance outputs [N, C, H, W] in [-1, 1] (guided-diffusion's
    /// `learned_range`), if it has them.
    pub var_values: Option<Tensor>,
    backward: Box<dyn Fn(&Gpu, &Tensor) -> Result<Tensor> + 'a>,
}

impl<'a> EpsTape<'a> {
    /// A tape from ε̂, the learned-variance outputs and the function computing (∂ε̂/∂x_t)ᵀ v.
    pub fn new(eps: Tensor, var_values: Option<Tensor>, backward: Box<dyn Fn(&Gpu, &Tensor) -> Result<Tensor> + 'a>) -> EpsTape<'a> {
        EpsTape { eps, var_values, backward }
    }

    /// (∂ε̂/∂x_t)ᵀ v for `v` [N, C, H, W].
    pub fn vjp(&self, gpu: &Gpu, v: &Tensor) -> Result<Tensor> {
        (self.backward)(gpu, v)
    }
}

/// A UNet as a denoiser, with an optional class label for class-conditional models.
pub struct UnetPrior<'a> {
    /// The network.
    pub unet: &'a Unet,
    /// Class label given to every image (class-conditional models only).
    pub class: Option<usize>,
}

impl Denoiser for UnetPrior<'_> {
    fn eps(&self, gpu: &Gpu, x_t: &Tensor, t: usize) -> Result<Tensor> {
        let n = x_t.shape().first().copied().unwrap_or(0);
        let tt = ops::fill(gpu, &[n], t as f32)?;
        let labels = self.class.map(|c| vec![c; n]);
        let out = self.unet.forward(gpu, x_t, &tt, labels.as_deref())?;
        let c = self.unet.info().in_channels;
        if out.shape()[1] == c {
            Ok(out)
        } else {
            ops::slice_channels(gpu, &out, 0, c)
        }
    }
    fn channels(&self) -> usize {
        self.unet.info().in_channels
    }
    fn image_size(&self) -> Option<usize> {
        Some(self.unet.info().image_size)
    }
    fn eps_tape<'a>(&'a self, gpu: &Gpu, x_t: &Tensor, t: usize) -> Result<EpsTape<'a>> {
        let n = x_t.shape().first().copied().unwrap_or(0);
        let tt = ops::fill(gpu, &[n], t as f32)?;
        let labels = self.class.map(|c| vec![c; n]);
        let tape = self.unet.tape(gpu, x_t, &tt, labels.as_deref())?;
        let c = self.unet.info().in_channels;
        let out = tape.output();
        let (eps, var_values) = if out.shape()[1] == c {
            (out.clone(), None)
        } else {
            (ops::slice_channels(gpu, out, 0, c)?, (out.shape()[1] >= 2 * c).then(|| ops::slice_channels(gpu, out, c, c)).transpose()?)
        };
        Ok(EpsTape { eps, var_values, backward: Box::new(move |gpu, v| tape.vjp(gpu, v)) })
    }
}

/// The optimal denoiser for data x0 ~ N(m, s²I): with x_t = √ᾱ x0 + √(1−ᾱ) ε,
/// E[ε | x_t] = √(1−ᾱ) (x_t − √ᾱ m) / (ᾱ s² + 1 − ᾱ). Closed form, for tests with known answers.
pub struct GaussianPrior {
    /// Prior mean image [1, C, H, W] (broadcast over the batch by shape equality).
    pub mean: Tensor,
    /// Prior standard deviation s.
    pub std: f32,
    /// The noise schedule.
    pub schedule: Schedule,
}

impl Denoiser for GaussianPrior {
    fn eps(&self, gpu: &Gpu, x_t: &Tensor, t: usize) -> Result<Tensor> {
        if x_t.shape() != self.mean.shape() {
            return Err(Error::Shape { op: "gaussian_prior", msg: format!("x_t {:?} vs mean {:?}", x_t.shape(), self.mean.shape()) });
        }
        let a = self.schedule.alpha_bar(t);
        let s2 = (self.std as f64).powi(2);
        let k = (1.0 - a).sqrt() / (a * s2 + 1.0 - a);
        ops::axpby(gpu, k as f32, x_t, (-k * a.sqrt()) as f32, &self.mean)
    }
    fn channels(&self) -> usize {
        self.mean.shape().get(1).copied().unwrap_or(0)
    }
    fn image_size(&self) -> Option<usize> {
        None
    }
    /// ε is linear in x_t: the VJP is k·v.
    fn eps_tape<'a>(&'a self, gpu: &Gpu, x_t: &Tensor, t: usize) -> Result<EpsTape<'a>> {
        let a = self.schedule.alpha_bar(t);
        let k = ((1.0 - a).sqrt() / (a * (self.std as f64).powi(2) + 1.0 - a)) as f32;
        Ok(EpsTape { eps: self.eps(gpu, x_t, t)?, var_values: None, backward: Box::new(move |gpu, v| ops::affine(gpu, v, k, 0.0)) })
    }
}
