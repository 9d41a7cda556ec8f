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
/// size: the model's, or larger in both sides (restored on tiles); [`restore_image`] takes one image of any
/// size.
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

/// The input fitting of [`fit_input`]: the side the input must reach (the model's size for a clean image,
/// 1/f of it for the measurement of ×f SR), the multiple its sides must be, and the factor from its size
/// to the restored size.
fn input_geometry(task: &Task, size: usize, measured: bool) -> (usize, usize, usize) {
    let f = match task.kind {
        TaskKind::Sr(f) | TaskKind::Bicubic(f) => f,
        _ => 1,
    };
    if measured && f > 1 {
        (size / f, 1, f)
    } else {
        (size, task.size_multiple(), 1)
    }
}

/// Where a user's image lies inside the larger image a restoration ran on when a side was shorter than the
/// model's or not a multiple of the task's block (the rest is the image reflected at its borders), in
/// restored pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Rows above the image.
    pub top: usize,
    /// Columns left of the image.
    pub left: usize,
    /// The image's height.
    pub height: usize,
    /// The image's width.
    pub width: usize,
    /// The height and width of the image the restoration ran on.
    pub outer: (usize, usize),
}

impl Window {
    /// `img` cut to the window: an image of the outer size (a result, H⁺y), or one 1/f of it (the
    /// measurement of ×f SR).
    pub fn cut(&self, img: &Image) -> Image {
        let s = (self.outer.0 / img.height.max(1)).max(1);
        img.crop(self.top / s, self.left / s, self.height.div_ceil(s), self.width.div_ceil(s))
    }
}

/// A user's image as a restoration takes it.
#[derive(Clone, Debug)]
pub struct Fitted {
    /// The clean image or the measurement, at a size the restoration takes.
    pub image: Image,
    /// Set when the image was reflected out (a side shorter than the model's or not a multiple of the
    /// task's block): what to cut the results back to.
    pub window: Option<Window>,
}

/// The sides of the fitted input for an `h`×`w` input: (kept part's height and width, outer height and
/// width, top and left of the kept part in the outer image), all in input pixels.
type Dims = ((usize, usize), (usize, usize), (usize, usize));

fn fitted_dims(task: &Task, h: usize, w: usize, size: usize, fit: Fit, measured: bool) -> Result<Dims> {
    let (side, multiple, _) = input_geometry(task, size, measured);
    if fit != Fit::Tile {
        let d = fit.size(h, w, side, multiple)?;
        return Ok((d, d, (0, 0)));
    }
    // Whole: each side out to the model's and to a multiple of the block. A short side is centred, at an
    // offset that is a multiple of the block (the measurement of synthetic SR is then cut back exactly and
    // JPEG's blocks stay on the image's grid); a long one is extended at its end only.
    let m = multiple.max(1);
    let outer = |n: usize| n.div_ceil(m).max(side.div_ceil(m)) * m;
    let (oh, ow) = (outer(h), outer(w));
    Ok(((h, w), (oh, ow), ((oh - h) / 2 / m * m, (ow - w) / 2 / m * m)))
}

/// Brings a user's image to what [`restore_synthetic`] (the clean image) or, with `measured`,
/// [`restore_measured`] (the measurement) takes for `task` on a model of `size`×`size`. With [`Fit::Tile`]
/// the image is kept whole — larger than the model it is restored on tiles —, reflected out where a side is
/// shorter than the model's or not a multiple of the task's block (the SR factor of a clean image, 16 for
/// JPEG), and the results are cut back to it afterwards ([`Fitted::window`]). Other fits as [`Image::fit`]
/// says.
pub fn fit_input(task: &Task, img: &Image, size: usize, fit: Fit, measured: bool) -> Result<Fitted> {
    let ((kh, kw), (oh, ow), (top, left)) = fitted_dims(task, img.height, img.width, size, fit, measured)?;
    let (side, multiple, f) = input_geometry(task, size, measured);
    if (kh, kw) == (oh, ow) {
        return Ok(Fitted { image: img.fit(side, fit, multiple)?, window: None });
    }
    let window = Window { top: top * f, left: left * f, height: kh * f, width: kw * f, outer: (oh * f, ow * f) };
    Ok(Fitted { image: img.pad_reflect(top, left, oh, ow), window: Some(window) })
}

/// The sizes a restoration of an `h`×`w` input makes, fitted by [`fit_input`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// The result's height and width.
    pub result: (usize, usize),
    /// The height and width the solver works at (larger than `result` where a side was reflected out to
    /// the model's size); tiles are cut from this.
    pub working: (usize, usize),
}

/// What a restoration of an `h`×`w` input makes (see [`fit_input`]).
pub fn planned_size(task: &Task, h: usize, w: usize, size: usize, fit: Fit, measured: bool) -> Result<Planned> {
    let ((kh, kw), (oh, ow), _) = fitted_dims(task, h, w, size, fit, measured)?;
    let (_, _, f) = input_geometry(task, size, measured);
    Ok(Planned { result: (kh * f, kw * f), working: (oh * f, ow * f) })
}

/// `task` for an image reflected out to `win.outer`: a user mask (file or data, the image's size) is
/// reflected the same way; other tasks build their operator at the outer size as they are.
fn padded_task(task: &Task, win: &Window) -> Result<Task> {
    let pad = |m: Vec<f32>| -> Result<Vec<f32>> { Ok(Image::new(1, win.height, win.width, m)?.pad_reflect(win.top, win.left, win.outer.0, win.outer.1).data) };
    let kind = match &task.kind {
        TaskKind::InpaintMask(p) => TaskKind::InpaintMaskData(pad(crate::operators::patterns::mask_from_image(&Image::read(p)?, win.height, win.width)?)?),
        TaskKind::InpaintMaskData(m) if m.len() == win.height * win.width => TaskKind::InpaintMaskData(pad(m.clone())?),
        TaskKind::InpaintMaskData(m) => {
            return Err(Error::Shape { op: "inpaint-mask", msg: format!("the mask has {} pixels, the image {}x{}", m.len(), win.width, win.height) })
        }
        other => other.clone(),
    };
    Ok(Task { kind, seed: task.seed })
}

/// Restores one user image of any size: fitted by [`fit_input`], degraded with the task first unless
/// `measured` (then it is the measurement y), restored, and cut back to the image's own size (×f for
/// SR). Returns the outcome and, when not `measured`, the clean image as fitted (to score against).
pub async fn restore_image(
    gpu: &Gpu,
    unet: &Unet,
    problem: &Problem,
    img: &Image,
    fit: Fit,
    measured: bool,
    cb: impl FnMut(&StepInfo) -> bool,
) -> Result<(Outcome, Option<Image>)> {
    let fitted = fit_input(&problem.task, img, unet.info().image_size, fit, measured)?;
    let padded;
    let problem = match &fitted.window {
        Some(win) => {
            padded = Problem { task: padded_task(&problem.task, win)?, ..problem.clone() };
            &padded
        }
        None => problem,
    };
    let images = std::slice::from_ref(&fitted.image);
    let out = if measured { restore_measured(gpu, unet, problem, images, cb).await? } else { restore_synthetic(gpu, unet, problem, images, cb).await? };
    let truth = (!measured).then(|| fitted.image.clone());
    Ok(match &fitted.window {
        None => (out, truth),
        Some(win) => {
            let cut = |v: Vec<Image>| v.iter().map(|i| win.cut(i)).collect::<Vec<_>>();
            let out =
                Outcome { result: cut(out.result), pinv: out.pinv.iter().map(|p| p.as_ref().map(|i| win.cut(i))).collect(), measurement: cut(out.measurement) };
            (out, truth.map(|t| win.cut(&t)))
        }
    })
}

/// Restores from measurements given as images (e.g. a real low-resolution or masked photo), all of one size;
/// the result has [`restored_size`] (×f for SR), which must be the model's size or larger in both sides
/// ([`restore_image`] takes one image of any size).
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
