//! The embedding API: a [`Restorer`] holds a GPU, a loaded prior and the solver settings, and restores
//! [`Image`]s, blocking or async, with a progress callback and a cancel flag. Images of any size are restored
//! whole: larger than the model on overlapping tiles, a side shorter than the model's reflected out to it and
//! cut back.
//!
//! ```no_run
//! use reddiff::{image::Image, operators::TaskKind, Restorer};
//! let restorer = Restorer::builder().task(TaskKind::Sr(4)).steps(100).build_default_gpu()?;
//! let low = Image::read("photo-lowres.jpg".as_ref())?;
//! let restored = restorer.restore(&low, "photo-lowres.jpg")?;
//! restored.image.write("photo-x4.png".as_ref())?;
//! # Ok::<(), reddiff::Error>(())
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::image::{Fit, Image};
use crate::model::Unet;
use crate::operators::{Task, TaskKind};
use crate::recommended::{resolve, Choices, Recommended};
use crate::restore::{restore_image, Outcome, Problem};
use crate::solvers::{Method, RedDiffOptions, StepInfo, Weighting};

/// Where the prior comes from.
#[derive(Clone, Debug)]
pub enum ModelSource {
    /// The built-in emoji32 prior (cargo feature `builtin-model`).
    Builtin,
    /// A model directory: `config.json` + safetensors weights.
    Dir(PathBuf),
}

/// Progress of a running restoration, handed to the progress callback after every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// 1-based step.
    pub step: usize,
    /// Total steps.
    pub steps: usize,
    /// The diffusion timestep of this step (0 … 999).
    pub t: usize,
}

type ProgressFn = Box<dyn FnMut(Progress) + Send>;

/// Settings for a [`Restorer`]; start from [`Restorer::builder`]. Defaults: the built-in prior, box
/// inpainting, linear weighting, σ_y = 0, seed 0, [`Fit::Tile`]; method, steps, λ and learning rate from the
/// model's `recommended.json` for the task (see [`crate::recommended`]), else the paper's: RED-diff with 1000
/// steps, λ = 0.25, lr 0.25 for inpainting and 0.5 otherwise.
pub struct RestorerBuilder {
    model: ModelSource,
    task: TaskKind,
    method: Option<Method>,
    steps: Option<usize>,
    opts: RedDiffOptions,
    lr: Option<f32>,
    lambda: Option<f32>,
    paper_defaults: bool,
    sigma_y: f32,
    class: Option<usize>,
    fit: Fit,
    progress: Option<ProgressFn>,
    cancel: Option<Arc<AtomicBool>>,
}

impl RestorerBuilder {
    /// Which prior to load.
    pub fn model(mut self, model: ModelSource) -> Self {
        self.model = model;
        self
    }
    /// The degradation (see [`TaskKind`]; `"sr4".parse()` gives one from its CLI name).
    pub fn task(mut self, task: TaskKind) -> Self {
        self.task = task;
        self
    }
    /// The solver: RED-diff or a baseline at its authors' settings (see [`Method`]); default: the model's
    /// recommendation for the task, else RED-diff.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }
    /// Ignore the model's `recommended.json`: every setting not given takes the paper's default.
    pub fn paper_defaults(mut self) -> Self {
        self.paper_defaults = true;
        self
    }
    /// Iterations, ≥ 1 (DiffPIR ≥ 2); default: the recommendation's, else 1000 for RED-diff and the
    /// authors' count for a baseline.
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = Some(steps);
        self
    }
    /// Adam learning rate (> 0); default: the recommendation's, else the task's.
    pub fn lr(mut self, lr: f32) -> Self {
        self.lr = Some(lr);
        self
    }
    /// λ, the weight of the denoising regulariser (≥ 0); default: the recommendation's, else 0.25.
    pub fn lambda(mut self, lambda: f32) -> Self {
        self.lambda = Some(lambda);
        self
    }
    /// g in the weight w_t = g(√(1−ᾱ_t)/√ᾱ_t).
    pub fn weighting(mut self, weighting: Weighting) -> Self {
        self.opts.weighting = weighting;
        self
    }
    /// Measurement noise σ_y in [0, 1] pixel units, added by [`Restorer::degrade_and_restore`].
    pub fn sigma_y(mut self, sigma_y: f32) -> Self {
        self.sigma_y = sigma_y;
        self
    }
    /// Seed of every random draw.
    pub fn seed(mut self, seed: u64) -> Self {
        self.opts.seed = seed;
        self
    }
    /// Class label for class-conditional models.
    pub fn class(mut self, class: usize) -> Self {
        self.class = Some(class);
        self
    }
    /// How images are brought to the model's size (default [`Fit::Tile`]: kept whole).
    pub fn fit(mut self, fit: Fit) -> Self {
        self.fit = fit;
        self
    }
    /// Called after every step (from the thread running the restoration).
    pub fn on_progress(mut self, f: impl FnMut(Progress) + Send + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }
    /// A flag that stops a running restoration after the current step when set ([`Error::Cancelled`]).
    pub fn cancel_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Loads the prior on `gpu` (see [`Gpu::new`], or [`Gpu::from_wgpu`] to share an app's device) and
    /// checks the settings.
    pub fn build(self, gpu: Arc<Gpu>) -> Result<Restorer> {
        let task = Task { kind: self.task, seed: self.opts.seed };
        let rec = match (&self.model, self.paper_defaults) {
            (_, true) => None,
            (ModelSource::Dir(dir), false) => Recommended::read_dir(dir)?,
            (ModelSource::Builtin, false) => Recommended::builtin()?,
        };
        let choices = Choices { method: self.method, steps: self.steps, lambda: self.lambda, lr: self.lr };
        let r = resolve(choices, &task, self.sigma_y, rec.as_ref())?;
        let mut opts = self.opts;
        (opts.steps, opts.lr, opts.lambda) = (r.steps, r.lr, r.lambda);
        if opts.steps == 0 || !(opts.lr > 0.0) || !(opts.lambda >= 0.0) || !(0.0..=1.0).contains(&self.sigma_y) {
            return Err(Error::Invalid {
                op: "restorer",
                msg: format!("need steps >= 1, lr > 0, lambda >= 0 and sigma_y in [0, 1] (got {}, {}, {}, {})", opts.steps, opts.lr, opts.lambda, self.sigma_y),
            });
        }
        let unet = match &self.model {
            ModelSource::Dir(dir) => Unet::load(&gpu, dir)?,
            ModelSource::Builtin => builtin(&gpu)?,
        };
        if let Some(need) = task.needs_channels() {
            if unet.info().in_channels != need {
                return Err(Error::Invalid {
                    op: "restorer",
                    msg: format!("{} needs an RGB model; this one has {} channel(s)", task.kind_name(), unet.info().in_channels),
                });
            }
        }
        let problem = Problem { task, sigma_y: self.sigma_y, opts, class: self.class, method: r.method };
        Ok(Restorer { gpu, unet, problem, fit: self.fit, progress: Mutex::new(self.progress), cancel: self.cancel })
    }

    /// [`RestorerBuilder::build`] on the default adapter ([`Gpu::new`]).
    pub fn build_default_gpu(self) -> Result<Restorer> {
        self.build(Arc::new(Gpu::new()?))
    }
}

#[cfg(feature = "builtin-model")]
fn builtin(gpu: &Gpu) -> Result<Unet> {
    Unet::builtin(gpu)
}

#[cfg(not(feature = "builtin-model"))]
fn builtin(_: &Gpu) -> Result<Unet> {
    Err(Error::Invalid { op: "restorer", msg: "built without the builtin-model feature: use ModelSource::Dir".into() })
}

/// One restored image.
#[derive(Clone, Debug)]
pub struct Restored {
    /// RED-diff's estimate, RGB in [-1, 1] (×f the measurement's size for super-resolution).
    pub image: Image,
    /// The H⁺y baseline (None for phase retrieval).
    pub pinv: Option<Image>,
    /// The measurement as a picture.
    pub measurement: Image,
    /// The clean image as fitted (only from [`Restorer::degrade_and_restore`]).
    pub truth: Option<Image>,
}

/// A loaded prior plus solver settings; restores one image per call. See the module docs for an example.
pub struct Restorer {
    gpu: Arc<Gpu>,
    unet: Unet,
    problem: Problem,
    fit: Fit,
    progress: Mutex<Option<ProgressFn>>,
    cancel: Option<Arc<AtomicBool>>,
}

impl Restorer {
    /// Settings with the defaults listed at [`RestorerBuilder`].
    pub fn builder() -> RestorerBuilder {
        RestorerBuilder {
            model: ModelSource::Builtin,
            task: TaskKind::InpaintBox,
            method: None,
            steps: None,
            opts: RedDiffOptions::default(),
            lr: None,
            lambda: None,
            paper_defaults: false,
            sigma_y: 0.0,
            class: None,
            fit: Fit::Tile,
            progress: None,
            cancel: None,
        }
    }

    /// The GPU the restorer runs on.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// The loaded prior.
    pub fn model(&self) -> &Unet {
        &self.unet
    }

    /// The method in use (the one asked for, the recommendation's, or RED-diff).
    pub fn method(&self) -> Method {
        self.problem.method
    }

    /// The solver settings in use: steps, λ and learning rate (λ and lr apply to RED-diff).
    pub fn options(&self) -> &RedDiffOptions {
        &self.problem.opts
    }

    fn callback(&self) -> impl FnMut(&StepInfo) -> bool + '_ {
        move |s: &StepInfo| {
            if let Ok(mut p) = self.progress.lock() {
                if let Some(f) = p.as_mut() {
                    f(Progress { step: s.step, steps: s.steps, t: s.t });
                }
            }
            !self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
        }
    }

    fn problem_for(&self, key: &str) -> Problem {
        let mut p = self.problem.clone();
        p.opts.image_keys = vec![crate::ops::image_key(key)];
        p
    }

    /// Restores from a real measurement `y` (a low-resolution, masked, blurred or gray photo). `key` (e.g.
    /// the file name) keys the random draws, so the same key gives the same result. The result has `y`'s
    /// size (×f for SR): see [`fit_input`](crate::restore::fit_input).
    pub async fn restore_async(&self, y: &Image, key: &str) -> Result<Restored> {
        let (out, _) = restore_image(&self.gpu, &self.unet, &self.problem_for(key), y, self.fit, true, self.callback()).await?;
        Ok(first(out, None))
    }

    /// Degrades the clean image `x` with the task's operator (and σ_y noise), then restores it; `truth` in
    /// the result is `x` as fitted, for scoring.
    pub async fn degrade_and_restore_async(&self, x: &Image, key: &str) -> Result<Restored> {
        let (out, truth) = restore_image(&self.gpu, &self.unet, &self.problem_for(key), x, self.fit, false, self.callback()).await?;
        Ok(first(out, truth))
    }

    /// Blocking [`Restorer::restore_async`].
    pub fn restore(&self, y: &Image, key: &str) -> Result<Restored> {
        crate::gpu::block_on(self.restore_async(y, key))
    }

    /// Blocking [`Restorer::degrade_and_restore_async`].
    pub fn degrade_and_restore(&self, x: &Image, key: &str) -> Result<Restored> {
        crate::gpu::block_on(self.degrade_and_restore_async(x, key))
    }
}

fn first(out: Outcome, truth: Option<Image>) -> Restored {
    let Outcome { result, pinv, measurement } = out;
    Restored {
        image: result.into_iter().next().unwrap_or_else(|| Image { channels: 3, height: 0, width: 0, data: Vec::new() }),
        pinv: pinv.into_iter().next().flatten(),
        measurement: measurement.into_iter().next().unwrap_or_else(|| Image { channels: 3, height: 0, width: 0, data: Vec::new() }),
        truth,
    }
}
