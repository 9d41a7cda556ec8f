//! DDRM (Kawar, Elad, Ermon, Song, "Denoising Diffusion Restoration Models", NeurIPS 2022), as the authors'
//! code runs it (`bahjat-kawar/ddrm`, `functions/denoising.py`, `efficient_generalized_steps`), for linear
//! operators with an SVD H = U Σ Vᵀ ([`Operator::svd`]). In spectral coordinates x̄ = Vᵀx/√ᾱ, with
//! σ_t = √(1−ᾱ_t)/√ᾱ_t and σ₀ = 2σ_y:
//!
//! x̂₀ = (x_t − √(1−ᾱ_t) ε_θ(x_t, t)) / √ᾱ_t  (not clipped)
//! x̄_s = per coordinate of singular value s (see `wgsl/ddrm.wgsl`): unobserved → a DDIM step with η;
//!       y noisier than σ_s → pulled towards y with η; y cleaner than σ_s → η_b·Σ⁻¹Uᵀy + (1 − η_b)·Vᵀx̂₀
//!       plus the missing noise;  x_s = √ᾱ_s · V x̄_s.
//!
//! Start: x̄_T = Σ⁻¹Uᵀy + √(σ_T² − σ₀²/s²)·z where s·σ_T > σ₀, σ_T·z elsewhere, x_T = V x̄_T / σ_T (the
//! authors' scaling). Timesteps: skip = T / steps, t = (steps − 1)·skip, …, skip, 0, then "−1" (ᾱ = 1):
//! the result is x after the last update. Published settings: 20 steps, η = 0.85, η_b = 1 (the paper's
//! experiments and the repository's README).

use super::denoiser::Denoiser;
use super::red_diff::{image_keys, StepInfo};
use super::{end_step, finite_result};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::Schedule;
use crate::operators::{Operator, Task, TaskKind};
use crate::ops::{self, DdrmCoefficients};

/// DDRM's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct DdrmOptions {
    /// Network evaluations (the authors' `timesteps`).
    pub steps: usize,
    /// η for unobserved coordinates and where y is noisier than the current step (`--eta`).
    pub eta: f32,
    /// η_b, the weight of y where it is cleaner than the current step (`--etaB`).
    pub eta_b: f32,
    /// Measurement noise σ_y in [0, 1] pixel units (σ₀ = 2σ_y in image units).
    pub sigma_y: f32,
    /// Seed of every random draw.
    pub seed: u64,
    /// One noise key per image (see [`super::RedDiffOptions::image_keys`]).
    pub image_keys: Vec<u32>,
}

impl DdrmOptions {
    /// The authors' settings (20 steps, η = 0.85, η_b = 1) with measurement noise `sigma_y`, or an error for
    /// tasks whose operator has no SVD here (nonlinear tasks, motion blur and user kernels).
    pub fn for_task(task: &Task, sigma_y: f32) -> Result<DdrmOptions> {
        match task.kind {
            TaskKind::Hdr | TaskKind::Phase | TaskKind::Jpeg(_) | TaskKind::Jpeg444(_) => Err(Error::Invalid {
                op: "ddrm",
                msg: format!("DDRM needs a linear operator with an SVD; {} is nonlinear (use --method reddiff)", task.kind_name()),
            }),
            TaskKind::DeblurMotion | TaskKind::DeblurKernel(_) => Err(Error::Invalid {
                op: "ddrm",
                msg: format!(
                    "DDRM needs the operator's SVD; {} is a non-separable 2-D blur without one here (use --method reddiff or diffpir)",
                    task.kind_name()
                ),
            }),
            _ => Ok(DdrmOptions { steps: 20, eta: 0.85, eta_b: 1.0, sigma_y, seed: 0, image_keys: Vec::new() }),
        }
    }
}

/// The authors' uniform spacing from high to low: skip = ⌊T / steps⌋, t_i = (steps − 1 − i)·skip (also
/// ΠGDM's, in the RED-diff authors' code).
pub fn ddrm_timesteps(t_total: usize, steps: usize) -> Result<Vec<usize>> {
    if steps == 0 || steps > t_total {
        return Err(Error::Invalid { op: "timesteps", msg: format!("steps must be 1 to {t_total}, got {steps}") });
    }
    let skip = t_total / steps;
    Ok((0..steps).rev().map(|i| i * skip).collect())
}

/// Runs DDRM for measurement `y` of the linear operator `op` (which must have an SVD) on images of shape
/// `x_shape`; returns the restored images [N, C, H, W] (not clamped). `callback` runs after each network
/// evaluation; `false` cancels ([`Error::Cancelled`]).
#[allow(clippy::too_many_arguments)]
pub async fn ddrm(
    gpu: &Gpu,
    den: &dyn Denoiser,
    op: &dyn Operator,
    y: &Tensor,
    x_shape: &[usize],
    schedule: &Schedule,
    opts: &DdrmOptions,
    mut callback: impl FnMut(&StepInfo) -> bool,
) -> Result<Tensor> {
    const OP: &str = "ddrm";
    if !(0.0..=1.0).contains(&opts.eta) || !(0.0..=1.0).contains(&opts.eta_b) || !(0.0..=1.0).contains(&opts.sigma_y) {
        return Err(Error::Invalid { op: OP, msg: format!("need eta, eta_b and sigma_y in [0, 1] (got {}, {}, {})", opts.eta, opts.eta_b, opts.sigma_y) });
    }
    if x_shape.len() != 4 || x_shape[1] != den.channels() || op.measurement_shape(x_shape) != y.shape() {
        return Err(Error::Shape {
            op: OP,
            msg: format!("image {:?} and measurement {:?} do not fit {} with a {}-channel prior", x_shape, y.shape(), op.name(), den.channels()),
        });
    }
    let svd = op.svd(gpu, x_shape)?.ok_or_else(|| Error::Invalid {
        op: OP,
        msg: format!("DDRM needs the operator's SVD; {} has none here (use --method reddiff or diffpir)", op.name()),
    })?;
    let ts = ddrm_timesteps(schedule.len(), opts.steps)?;
    let keys = image_keys(gpu, &opts.image_keys, x_shape[0])?;
    let sigma0 = 2.0 * opts.sigma_y;
    let sigma_of = |a: f64| ((1.0 - a).sqrt() / a.sqrt()) as f32;
    let uty = svd.ut(gpu, y)?;
    let zeros = gpu.zeros(x_shape)?;
    // x_T: the update with x̂₀ = ε̂ = 0 and every η = 1 draws exactly the authors' initialisation.
    let sigma_t = sigma_of(schedule.alpha_bar(ts[0]));
    // Noise is drawn in image space and rotated into spectral coordinates (Vᵀz ~ N(0, I) too), so the
    // trajectory does not depend on which SVD basis was chosen where singular values repeat.
    let z0 = svd.vt(gpu, &ops::normal_keyed(gpu, x_shape, opts.seed, &keys, u64::MAX - 3, 0.0, 1.0)?)?;
    let init = DdrmCoefficients { sigma_next: sigma_t, sigma0, eta_a: 1.0, eta_b: 1.0, eta_c: 1.0, scale: 1.0 / sigma_t };
    let mut x = svd.v(gpu, &ops::ddrm_step(gpu, svd.singulars(), &uty, &zeros, &zeros, &z0, init)?)?;
    let n = ts.len();
    for (i, &t) in ts.iter().enumerate() {
        let a = schedule.alpha_bar(t);
        let a_next = if i + 1 < n { schedule.alpha_bar(ts[i + 1]) } else { 1.0 };
        let e = den.eps(gpu, &x, t)?;
        let x0 = ops::axpby(gpu, (1.0 / a.sqrt()) as f32, &x, (-(1.0 - a).sqrt() / a.sqrt()) as f32, &e)?;
        let z = svd.vt(gpu, &ops::normal_keyed(gpu, x_shape, opts.seed, &keys, i as u64, 0.0, 1.0)?)?;
        let c = DdrmCoefficients { sigma_next: sigma_of(a_next), sigma0, eta_a: opts.eta, eta_b: opts.eta_b, eta_c: opts.eta, scale: a_next.sqrt() as f32 };
        let next = ops::ddrm_step(gpu, svd.singulars(), &uty, &svd.vt(gpu, &x0)?, &svd.vt(gpu, &e)?, &z, c)?;
        x = svd.v(gpu, &next)?;
        end_step(gpu, &mut callback, i + 1, n, t).await?;
    }
    finite_result(gpu, x, n, "check the measurement for NaN/Inf values").await
}
