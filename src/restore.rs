//! Whole restorations for the CLI, the web page and [`Restorer`](crate::Restorer): images in, degrade (or take
//! the measurement as given), RED-diff with a UNet prior, images out with the H⁺y baseline and a view of the
//! measurement. Images of the model's size go straight through the network; larger ones are restored whole,
//! with the network applied on overlapping tiles ([`TiledDenoiser`]).

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::image::{Fit, Image};
use crate::model::{Schedule, Unet};
use crate::operators::{measure_keyed, Operator, Task, TaskKind};
use crate::solvers::{
    ddrm, diffpir, dps, pgdm, red_diff, DdrmOptions, Denoiser, DiffPirOptions, DpsOptions, Method, PgdmOptions, RedDiffOptions, StepInfo, TiledDenoiser,
    UnetPrior,
};

/// What to solve and how.
#[derive(Clone, Debug)]
pub struct Problem {
    /// The degradation.
    pub task: Task,
    /// Measurement noise σ_y (pixel units in [0, 1]), added when degrading synthetically.
    pub sigma_y: f32,
    /// Solver settings (`lr` should already reflect the task: see [`Task::default_lr`]).
    pub opts: RedDiffOptions,
    /// Class label for class-conditional models.
    pub class: Option<usize>,
    /// The solver: RED-diff with `opts`, or a baseline (DiffPIR, DDRM, DPS, ΠGDM) at its authors' settings
    /// for the task (`opts.steps`, `opts.seed` and `opts.image_keys` apply to all).
    pub method: Method,
}

/// Results, one entry per image.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// RED-diff's estimate, clamped to [-1, 1].
    pub result: Vec<Image>,
    /// The H⁺y baseline (None for phase retrieval).
    pub pinv: Vec<Option<Image>>,
    /// The measurement as a picture (upsampled for SR, gray for colorization, log-magnitude for phase).
    pub measurement: Vec<Image>,
}

/// Stacks equally sized images into a [N, C, H, W] tensor.
pub fn to_tensor(gpu: &Gpu, images: &[Image]) -> Result<Tensor> {
    let first = images.first().ok_or(Error::Empty { op: "images", shape: vec![0] })?;
    let mut data = Vec::with_capacity(images.len() * first.data.len());
    for im in images {
        if (im.channels, im.height, im.width) != (first.channels, first.height, first.width) {
            return Err(Error::Shape { op: "images", msg: "images in one batch must have the same size".into() });
        }
        data.extend_from_slice(&im.data);
    }
    gpu.upload(&[images.len(), first.channels, first.height, first.width], &data)
}

/// Reads a [N, C, H, W] tensor back as N images.
pub async fn to_images(gpu: &Gpu, t: &Tensor, clamp: bool) -> Result<Vec<Image>> {
    crate::image::images_from_tensor(gpu, t, clamp).await
}

fn measurement_view(task: &Task, y: &Image) -> Image {
    if task.kind == TaskKind::Phase {
        let logs: Vec<f32> = y.data.iter().map(|v| v.abs().ln_1p()).collect();
        let max = logs.iter().cloned().fold(1e-6f32, f32::max);
        return Image { data: logs.iter().map(|v| 2.0 * v / max - 1.0).collect(), ..y.clone() };
    }
    y.clone()
}

/// Checks the model fits the task and the images before any GPU work.
fn check(unet: &Unet, problem: &Problem, images: &[Image]) -> Result<()> {
    if images.is_empty() {
        return Err(Error::Invalid { op: "restore", msg: "no images".into() });
    }
    if problem.opts.steps == 0 {
        return Err(Error::Invalid { op: "restore", msg: "steps must be at least 1".into() });
    }
    if let Some(need) = problem.task.needs_channels() {
        if unet.info().in_channels != need {
            return Err(Error::Invalid {
                op: "restore",
                msg: format!("{} needs an RGB model; this one has {} channel(s)", problem.task.kind_name(), unet.info().in_channels),
            });
        }
    }
    Ok(())
}

/// Most tiles per network call when restoring images larger than the model: as many as keep the largest
/// activation inside one storage binding, at most 16.
pub fn tile_batch(gpu: &Gpu, unet: &Unet) -> usize {
    let per_image = 4 * unet.info().max_activation.max(1) as u64;
    (gpu.max_binding_bytes() / per_image).clamp(1, 16) as usize
}

async fn solve(
    gpu: &Gpu,
    unet: &Unet,
    problem: &Problem,
    op: &dyn Operator,
    y: &Tensor,
    shape: &[usize],
    cb: impl FnMut(&StepInfo) -> bool,
) -> Result<Outcome> {
    let net = UnetPrior { unet, class: problem.class };
    let size = unet.info().image_size;
    let tiled;
    let prior: &dyn Denoiser = if (shape[2], shape[3]) == (size, size) {
        &net
    } else {
        tiled = TiledDenoiser::new(&net, tile_batch(gpu, unet))?;
        &tiled
    };
    let pinv = match op.pinv(gpu, y)? {
        Some(p) => to_images(gpu, &p, true).await?.into_iter().map(Some).collect(),
        None => vec![None; shape[0]],
    };
    let mu = match problem.method {
        Method::RedDiff => red_diff(gpu, prior, op, y, shape, &Schedule::ddpm(), &problem.opts, cb).await?,
        Method::DiffPir => {
            let o = DiffPirOptions {
                steps: problem.opts.steps,
                seed: problem.opts.seed,
                image_keys: problem.opts.image_keys.clone(),
                ..DiffPirOptions::for_task(&problem.task, problem.sigma_y)?
            };
            diffpir(gpu, prior, op, y, shape, &Schedule::ddpm(), &o, cb).await?
        }
        Method::Ddrm => {
            let o = DdrmOptions {
                steps: problem.opts.steps,
                seed: problem.opts.seed,
                image_keys: problem.opts.image_keys.clone(),
                ..DdrmOptions::for_task(&problem.task, problem.sigma_y)?
            };
            ddrm(gpu, prior, op, y, shape, &Schedule::ddpm(), &o, cb).await?
        }
        Method::Dps => {
            let o = DpsOptions {
                steps: problem.opts.steps,
                seed: problem.opts.seed,
                image_keys: problem.opts.image_keys.clone(),
                ..DpsOptions::for_task(&problem.task)
            };
            dps(gpu, prior, op, y, shape, &Schedule::ddpm(), &o, cb).await?
        }
        Method::Pgdm => {
            let o = PgdmOptions {
                steps: problem.opts.steps,
                seed: problem.opts.seed,
                image_keys: problem.opts.image_keys.clone(),
                ..PgdmOptions::for_task(&problem.task)?
            };
            pgdm(gpu, prior, op, y, shape, &Schedule::ddpm(), &o, cb).await?
        }
    };
    let measurement = to_images(gpu, y, false).await?.iter().map(|m| measurement_view(&problem.task, m)).collect();
    Ok(Outcome { result: to_images(gpu, &mu, true).await?, pinv, measurement })
}

/// Degrades clean images with the task's operator and noise σ_y, then restores. Images of one call share a
/// size: the model's, or larger in both sides (restored on tiles).
pub async fn restore_synthetic(gpu: &Gpu, unet: &Unet, problem: &Problem, truth: &[Image], cb: impl FnMut(&StepInfo) -> bool) -> Result<Outcome> {
    check(unet, problem, truth)?;
    let x = to_tensor(gpu, truth)?;
    let s = x.shape().to_vec();
    let op = problem.task.operator(gpu, s[1], s[2], s[3])?;
    let y = measure_keyed(gpu, &*op, &x, problem.sigma_y, problem.opts.seed ^ 0xA5A5, &problem.opts.image_keys)?;
    solve(gpu, unet, problem, &*op, &y, &s, cb).await
}

/// The restored image's height and width for a measurement of `y_hw` (×f for super-resolution).
pub fn restored_size(task: &Task, y_hw: (usize, usize)) -> (usize, usize) {
    match task.kind {
        TaskKind::Sr(f) | TaskKind::Bicubic(f) => (y_hw.0 * f, y_hw.1 * f),
        _ => y_hw,
    }
}

/// The input fitting of [`fit_input`]: the square size the input is brought to when it is smaller than the
/// model (the model's size for a clean image, 1/f of it for the measurement of ×f SR), the multiple its sides
/// are cut to, and the factor from its size to the restored size.
fn input_geometry(task: &Task, size: usize, measured: bool) -> (usize, usize, usize) {
    let f = match task.kind {
        TaskKind::Sr(f) | TaskKind::Bicubic(f) => f,
        _ => 1,
    };
    match (measured, f) {
        (true, 1) => (size, task.size_multiple(), 1),
        (true, f) => (size / f, 1, f),
        (false, _) => (size, task.size_multiple(), 1),
    }
}

/// Brings a user's image to what [`restore_synthetic`] (the clean image) or, with `measured`,
/// [`restore_measured`] (the measurement) takes for `task` on a model of `size`×`size`: with [`Fit::Tile`]
/// an image whose restored size is at least the model's in both sides is kept whole, its sides cut (centre
/// kept) to multiples of the task's block (the SR factor, 16 for JPEG); others as `fit` says.
pub fn fit_input(task: &Task, img: &Image, size: usize, fit: Fit, measured: bool) -> Result<Image> {
    let (side, multiple, _) = input_geometry(task, size, measured);
    img.fit(side, fit, multiple)
}

/// The restored height and width for an `h`×`w` input image, fitted by [`fit_input`].
pub fn planned_size(task: &Task, h: usize, w: usize, size: usize, fit: Fit, measured: bool) -> Result<(usize, usize)> {
    let (side, multiple, f) = input_geometry(task, size, measured);
    let (fh, fw) = fit.size(h, w, side, multiple)?;
    Ok((fh * f, fw * f))
}

/// Restores from measurements given as images (e.g. a real low-resolution or masked photo), all of one size;
/// the result has [`restored_size`] (×f for SR), which must be the model's size or larger in both sides.
/// Colorization takes 1 channel (RGB input is converted to its mean).
pub async fn restore_measured(gpu: &Gpu, unet: &Unet, problem: &Problem, y: &[Image], cb: impl FnMut(&StepInfo) -> bool) -> Result<Outcome> {
    check(unet, problem, y)?;
    if problem.task.kind == TaskKind::Phase {
        return Err(Error::Invalid { op: "restore", msg: "phase retrieval measurements are Fourier magnitudes, not images; use synthetic mode".into() });
    }
    let c = unet.info().in_channels;
    let (h, w) = restored_size(&problem.task, (y[0].height, y[0].width));
    let op = problem.task.operator(gpu, c, h, w)?;
    let shape = [y.len(), c, h, w];
    let want = op.measurement_shape(&shape);
    let ys: Vec<Image> = y
        .iter()
        .map(|im| {
            let im = if want[1] == 1 && im.channels == 3 {
                let hw = im.height * im.width;
                let gray: Vec<f32> = (0..hw).map(|p| (im.data[p] + im.data[hw + p] + im.data[2 * hw + p]) / 3.0).collect();
                Image { channels: 1, data: gray, ..im.clone() }
            } else {
                im.clone()
            };
            if (im.channels, im.height, im.width) != (want[1], want[2], want[3]) {
                return Err(Error::Shape {
                    op: "restore",
                    msg: format!(
                        "the measurement should be {}x{} with {} channel(s) for {}, got {}x{} with {}",
                        want[3],
                        want[2],
                        want[1],
                        op.name(),
                        im.width,
                        im.height,
                        im.channels
                    ),
                });
            }
            Ok(im)
        })
        .collect::<Result<_>>()?;
    let yt = to_tensor(gpu, &ys)?;
    solve(gpu, unet, problem, &*op, &yt, &shape, cb).await
}
