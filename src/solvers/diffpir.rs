//! DiffPIR (Zhu, Zhang, Liang, Cao, Wen, Timofte, Van Gool, "Denoising Diffusion Models for Plug-and-Play
//! Image Restoration", CVPRW 2023), as the authors' code runs it (`yuanzhi-zhu/DiffPIR`, `pred_xstart`,
//! η = 0, quadratic timestep spacing), for linear operators:
//!
//! x₀ = clip((x_t − √(1−ᾱ_t) ε_θ(x_t, t)) / √ᾱ_t, −1, 1)
//! x̂₀ = argmin ‖y − Hx‖² + ρ_t ‖x − x₀‖², ρ_t = λ σ² ᾱ_t / (1 − ᾱ_t), σ = max(0.001, σ_y)
//!      (solved by conjugate gradients on HᵀH + ρ_t I, exact in two iterations when HᵀH has two eigenvalues)
//! ε̂ = (x_t − √ᾱ_t x̂₀) / √(1−ᾱ_t);  x_s = √ᾱ_s x̂₀ + √(1−ᾱ_s) (√(1−ζ) ε̂ + √ζ z),  z ~ N(0, I)
//!
//! Published settings (the authors' `configs/`): inpainting 20 steps, λ = 1, ζ = 1; super-resolution and
//! deblurring 100 steps, λ = 1, ζ = 0.1. The result is x after the last update (t = 0); for inpainting the
//! known pixels are then copied from y, as the authors do.

use super::denoiser::Denoiser;
use super::red_diff::{image_keys, StepInfo};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::model::Schedule;
use crate::operators::{Operator, Task, TaskKind};
use crate::ops;

/// DiffPIR's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffPirOptions {
    /// Network evaluations + 1 (the authors' `iter_num`; their last evaluation is unused and skipped here).
    pub steps: usize,
    /// λ, the weight of the data proximal step.
    pub lambda: f32,
    /// ζ, the share of fresh noise in each update (1 = ancestral, 0 = deterministic).
    pub zeta: f32,
    /// Measurement noise σ_y in [0, 1] pixel units (σ = max(0.001, σ_y) sets ρ_t).
    pub sigma_y: f32,
    /// Conjugate-gradient iterations per proximal step.
    pub cg_iters: usize,
    /// Copy the known pixels from y at the end (inpainting).
    pub keep_measured: bool,
    /// Seed of every random draw.
    pub seed: u64,
    /// One noise key per image (see [`super::RedDiffOptions::image_keys`]).
    pub image_keys: Vec<u32>,
}

impl DiffPirOptions {
    /// The authors' settings for `task` with measurement noise `sigma_y`, or an error for tasks DiffPIR
    /// cannot run (nonlinear operators).
    pub fn for_task(task: &Task, sigma_y: f32) -> Result<DiffPirOptions> {
        let inpaint = task.is_inpainting();
        let cg_iters = match task.kind {
            // HᵀH has at most two distinct eigenvalues: CG is exact after two iterations.
            TaskKind::InpaintBox | TaskKind::InpaintRandom | TaskKind::InpaintFreeform | TaskKind::InpaintMask(_) | TaskKind::InpaintMaskData(_) => 2,
            TaskKind::Sr(_) | TaskKind::Color | TaskKind::Denoise => 2,
            TaskKind::Bicubic(_) | TaskKind::DeblurGauss | TaskKind::DeblurUniform | TaskKind::DeblurMotion | TaskKind::DeblurKernel(_) => 30,
            TaskKind::Hdr | TaskKind::Phase | TaskKind::Jpeg(_) | TaskKind::Jpeg444(_) => {
                return Err(Error::Invalid {
                    op: "diffpir",
                    msg: format!("DiffPIR needs a linear measurement operator; {} is nonlinear (use --method reddiff)", task.kind_name()),
                })
            }
        };
        Ok(DiffPirOptions {
            steps: if inpaint { 20 } else { 100 },
            lambda: 1.0,
            zeta: if inpaint { 1.0 } else { 0.1 },
            sigma_y,
            cg_iters,
            keep_measured: inpaint,
            seed: 0,
            image_keys: Vec::new(),
        })
    }
}

/// The authors' quadratic spacing: s_i = ⌊√(i·T²/(N−1))⌋ (the last minus 1), t_i = T − 1 − s_i; from T − 1
/// down to 0.
pub fn diffpir_timesteps(t_total: usize, steps: usize) -> Result<Vec<usize>> {
    if steps < 2 || steps > t_total {
        return Err(Error::Invalid { op: "diffpir", msg: format!("steps must be 2 to {t_total}, got {steps}") });
    }
    let tt = (t_total * t_total) as f64;
    let mut s: Vec<usize> = (0..steps).map(|i| (i as f64 * tt / (steps - 1) as f64).sqrt() as usize).collect();
    if let Some(last) = s.last_mut() {
        *last -= 1;
    }
    Ok(s.iter().map(|v| t_total - 1 - v).collect())
}

/// Runs DiffPIR for measurement `y` of the linear operator `op` on images of shape `x_shape`; returns the
/// restored images [N, C, H, W] (not clamped). `callback` runs after each network evaluation; `false`
/// cancels ([`Error::Cancelled`]).
#[allow(clippy::too_many_arguments)]
pub async fn diffpir(
    gpu: &Gpu,
    den: &dyn Denoiser,
    op: &dyn Operator,
    y: &Tensor,
    x_shape: &[usize],
    schedule: &Schedule,
    opts: &DiffPirOptions,
    mut callback: impl FnMut(&StepInfo) -> bool,
) -> Result<Tensor> {
    const OP: &str = "diffpir";
    if !(opts.lambda > 0.0) || !(0.0..=1.0).contains(&opts.zeta) || !(0.0..=1.0).contains(&opts.sigma_y) {
        return Err(Error::Invalid {
            op: OP,
            msg: format!("need lambda > 0, zeta and sigma_y in [0, 1] (got {}, {}, {})", opts.lambda, opts.zeta, opts.sigma_y),
        });
    }
    if x_shape.len() != 4 || x_shape[1] != den.channels() || op.measurement_shape(x_shape) != y.shape() {
        return Err(Error::Shape {
            op: OP,
            msg: format!("image {:?} and measurement {:?} do not fit {} with a {}-channel prior", x_shape, y.shape(), op.name(), den.channels()),
        });
    }
    let aty = op
        .adjoint(gpu, y)?
        .ok_or_else(|| Error::Invalid { op: OP, msg: format!("DiffPIR needs a linear operator; {} is nonlinear (use --method reddiff)", op.name()) })?;
    let ts = diffpir_timesteps(schedule.len(), opts.steps)?;
    let keys = image_keys(gpu, &opts.image_keys, x_shape[0])?;
    let sigma = opts.sigma_y.max(0.001) as f64;
    let hth = |v: &Tensor| -> Result<Tensor> { op.adjoint(gpu, &op.forward(gpu, v)?)?.ok_or(Error::Invalid { op: OP, msg: "no adjoint".into() }) };
    let prox = |x0: &Tensor, rho: f64| -> Result<Tensor> {
        let b = ops::axpby(gpu, 1.0, &aty, rho as f32, x0)?;
        ops::conjugate_gradients(gpu, |v| ops::axpby(gpu, 1.0, &hth(v)?, rho as f32, v), &b, x0, opts.cg_iters)
    };
    // x_T from H⁺y as the authors start from y: the signal share √(ᾱ_T/ᾱ_{t_y}) is ~0.006.
    let reduced = |t: usize| ((1.0 - schedule.alpha_bar(t)) / schedule.alpha_bar(t)).sqrt();
    let t_y = (0..schedule.len())
        .min_by(|&a, &b| (reduced(a) - 2.0 * opts.sigma_y as f64).abs().total_cmp(&(reduced(b) - 2.0 * opts.sigma_y as f64).abs()))
        .unwrap_or(0);
    let (a_start, a_y) = (schedule.alpha_bar(ts[0]), schedule.alpha_bar(t_y));
    let sae = (a_start / a_y).sqrt();
    let start = match op.pinv(gpu, y)? {
        Some(p) => p,
        None => gpu.zeros(x_shape)?,
    };
    let z0 = ops::normal_keyed(gpu, x_shape, opts.seed, &keys, u64::MAX - 2, 0.0, 1.0)?;
    let mut x = ops::axpby(gpu, sae as f32, &start, ((1.0 - a_start) - sae * sae * (1.0 - a_y)).max(0.0).sqrt() as f32, &z0)?;
    let n = ts.len() - 1;
    for i in 0..n {
        let (t, s) = (ts[i], ts[i + 1]);
        let (a, a_s) = (schedule.alpha_bar(t), schedule.alpha_bar(s));
        let e = den.eps(gpu, &x, t)?;
        let x0 = ops::clamp(gpu, &ops::axpby(gpu, (1.0 / a.sqrt()) as f32, &x, (-(1.0 - a).sqrt() / a.sqrt()) as f32, &e)?, -1.0, 1.0)?;
        let rho = opts.lambda as f64 * sigma * sigma * a / (1.0 - a);
        let x0 = prox(&x0, rho)?;
        let eps_hat = ops::axpby(gpu, (1.0 / (1.0 - a).sqrt()) as f32, &x, (-a.sqrt() / (1.0 - a).sqrt()) as f32, &x0)?;
        let z = ops::normal_keyed(gpu, x_shape, opts.seed, &keys, i as u64, 0.0, 1.0)?;
        let c = (1.0 - a_s).sqrt();
        let noise = ops::axpby(gpu, ((1.0 - opts.zeta as f64).sqrt() * c) as f32, &eps_hat, ((opts.zeta as f64).sqrt() * c) as f32, &z)?;
        x = ops::axpby(gpu, a_s.sqrt() as f32, &x0, 1.0, &noise)?;
        gpu.flush()?;
        gpu.yield_now().await;
        if !callback(&StepInfo { step: i + 1, steps: n, t, loss: None, preview: None }) {
            return Err(Error::Cancelled { step: i + 1 });
        }
    }
    if opts.keep_measured {
        x = prox(&x, 1e-6)?;
    }
    let st = ops::Stats::from_raw(&ops::stats(gpu, &x)?.read_async(gpu).await?, x.numel());
    if st.nonfinite > 0 {
        return Err(Error::Diverged { step: n, count: st.nonfinite, hint: "check the measurement for NaN/Inf values" });
    }
    Ok(x)
}
