//! The `reddiff` command-line tool.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use reddiff::image::{Fit, Image};
use reddiff::metrics::{psnr, ssim};
use reddiff::model::{weights::write_tensors, HostTensor, Schedule, TensorFile, Unet};
use reddiff::operators::{Task, TaskKind};
use reddiff::recommended::{resolve, Choices, Recommended, Setting};
use reddiff::restore::{planned_size, restore_image, restore_synthetic, Outcome, Problem};
use reddiff::solvers::{ddim_sample, DdimOptions, UnetPrior};
use reddiff::solvers::{DdrmOptions, DiffPirOptions, DpsOptions, Init, Method, Order, PgdmOptions, RedDiffOptions, StepInfo, Weighting};
use reddiff::{ops, Error, Gpu, Result};

/// Prints a line to stdout; a closed pipe (`reddiff info | head -1`) ends the program quietly.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*).and_then(|_| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// Most RED-diff or DDIM steps per run.
const MAX_STEPS: usize = 100_000;
/// Most images solved together (`eval --batch`).
const MAX_BATCH: usize = 64;
/// Most samples per `sample` run.
const MAX_SAMPLES: usize = 256;

#[derive(Parser)]
#[command(
    name = "reddiff",
    version,
    about = "Image restoration with diffusion priors (RED-diff) on any GPU through wgpu",
    after_help = "Limits: images up to 16 megapixels (checked before decoding), models up to 2048x2048, \
                  --steps up to 100000, --batch up to 64, sample --n up to 256. Outputs are checked before any \
                  work (folder exists and is writable, not an input, not a folder or device) and written atomically."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Solver options shared by `restore` and `eval`.
#[derive(Args, Clone)]
#[command(allow_negative_numbers = true)]
struct SolveArgs {
    /// Degradation: inpaint-box, inpaint-random, inpaint-freeform, inpaint-mask=FILE, sr2, sr4, sr8, bicubic4,
    /// deblur-gauss, deblur-uniform, deblur-motion, deblur-kernel=FILE, color, denoise, hdr, phase.
    #[arg(long, default_value = "inpaint-box")]
    task: String,
    /// Model directory; default: the built-in emoji prior.
    #[arg(long)]
    model: Option<PathBuf>,
    /// reddiff, or a baseline at its authors' settings: diffpir (Zhu et al. 2023; linear tasks), ddrm (Kawar
    /// et al. 2022; linear tasks with an SVD), dps (Chung et al. 2023; any task) or pgdm (Song et al. 2023;
    /// linear tasks). DPS and PiGDM differentiate the network (about 3x the cost of a step; on images larger
    /// than the model they keep up to 1 GiB of the tiles' activations and recompute the rest). Default: the
    /// model's recommended.json for the task, else reddiff.
    #[arg(long)]
    method: Option<String>,
    /// Iterations (network evaluations); default: recommended.json's, else 1000 for RED-diff, the authors'
    /// 20 (inpainting) or 100 for DiffPIR, 20 for DDRM, 1000 for DPS, 100 for PiGDM.
    #[arg(long)]
    steps: Option<usize>,
    /// Adam learning rate; default: recommended.json's, else 0.25 for inpainting, 0.5 otherwise.
    #[arg(long)]
    lr: Option<f32>,
    /// Weight λ of the denoising regulariser; default: recommended.json's, else 0.25.
    #[arg(long)]
    lambda: Option<f32>,
    /// Ignore the model's recommended.json (settings `eval --sweep` chose on held-out images) and use the
    /// paper's defaults for every option not given.
    #[arg(long)]
    paper_defaults: bool,
    /// linear, sqrt, square, log1p, clipped_linear, power_2_3 or const.
    #[arg(long, default_value = "linear")]
    weighting: String,
    /// descending, ascending, random or fixed=T.
    #[arg(long, default_value = "descending")]
    order: String,
    /// pinv, zeros or random.
    #[arg(long, default_value = "pinv")]
    init: String,
    /// Measurement noise σ_y in [0, 1] pixel units (synthetic mode).
    #[arg(long, default_value_t = 0.0)]
    sigma_y: f32,
    /// σ of q(x0|y); 0 = point estimate.
    #[arg(long, default_value_t = 0.0)]
    sigma_x0: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Class label for class-conditional models.
    #[arg(long)]
    class: Option<usize>,
    /// How to bring images to the model's resolution: tile (images are restored whole: larger than the model,
    /// the network runs on overlapping model-size tiles; a shorter side is reflected out to the model's size
    /// and cut back — eval crops such images instead), crop (centre square, resampled), resize (whole image
    /// resampled to a square) or none (must already match).
    #[arg(long, default_value = "tile")]
    fit: String,
}

/// Checks a `--lr` value: positive and finite.
fn check_lr(lr: f32) -> Result<f32> {
    if lr > 0.0 && lr.is_finite() {
        Ok(lr)
    } else {
        Err(Error::Invalid { op: "--lr", msg: format!("must be a positive number, got {lr}") })
    }
}

/// Checks a `--lambda` value: zero or positive and finite.
fn check_lambda(lambda: f32) -> Result<f32> {
    if lambda >= 0.0 && lambda.is_finite() {
        Ok(lambda)
    } else {
        Err(Error::Invalid { op: "--lambda", msg: format!("must be zero or positive, got {lambda}") })
    }
}

impl SolveArgs {
    /// The model's recommended.json (the built-in prior's when no --model), unless --paper-defaults.
    fn recommended(&self) -> Result<Option<Recommended>> {
        if self.paper_defaults {
            return Ok(None);
        }
        match &self.model {
            Some(dir) => Recommended::read_dir(dir)
                .map_err(|e| Error::Invalid { op: "recommended.json", msg: format!("{e} (fix or delete the file, or pass --paper-defaults)") }),
            None => Recommended::builtin(),
        }
    }

    /// The problem with every unset option filled from `rec`, else the paper's defaults.
    fn problem(&self, rec: Option<&Recommended>) -> Result<(Problem, Fit, Option<Setting>)> {
        let kind: TaskKind = self.task.parse()?;
        let task = Task { kind, seed: self.seed };
        let fit: Fit = self.fit.parse()?;
        if !(0.0..=1.0).contains(&self.sigma_y) {
            return Err(Error::Invalid { op: "--sigma-y", msg: format!("must be in [0, 1], got {}", self.sigma_y) });
        }
        let choices = Choices {
            method: self.method.as_deref().map(str::parse).transpose()?,
            steps: self.steps,
            lambda: self.lambda.map(check_lambda).transpose()?,
            lr: self.lr.map(check_lr).transpose()?,
        };
        let r = resolve(choices, &task, self.sigma_y, rec)?;
        if !(1..=MAX_STEPS).contains(&r.steps) {
            return Err(Error::Invalid { op: "--steps", msg: format!("must be 1 to {MAX_STEPS}, got {}", r.steps) });
        }
        if !(self.sigma_x0 >= 0.0 && self.sigma_x0.is_finite()) {
            return Err(Error::Invalid { op: "--sigma-x0", msg: format!("must be zero or positive, got {}", self.sigma_x0) });
        }
        let method = r.method;
        let opts = RedDiffOptions {
            steps: r.steps,
            lr: r.lr,
            lambda: r.lambda,
            weighting: self.weighting.parse::<Weighting>()?,
            order: self.order.parse::<Order>()?,
            init: self.init.parse::<Init>()?,
            sigma_x0: self.sigma_x0,
            seed: self.seed,
            ..RedDiffOptions::default()
        };
        Ok((Problem { task, sigma_y: self.sigma_y, opts, class: self.class, method }, fit, r.from))
    }
}

/// The method and its settings, for the first line of `restore`; `from` names the recommendation used.
fn method_label(p: &Problem, from: Option<&Setting>) -> String {
    let label = method_settings(p);
    match from {
        Some(s) if s.images > 0 => format!("{label} (recommended.json: {:.2} dB mean on {} held-out images)", s.psnr, s.images),
        Some(_) => format!("{label} (recommended.json)"),
        None => label,
    }
}

/// The method and its settings.
fn method_settings(p: &Problem) -> String {
    match p.method {
        Method::RedDiff => format!("RED-diff, {} steps, lr {}, lambda {}", p.opts.steps, p.opts.lr, p.opts.lambda),
        Method::DiffPir => match DiffPirOptions::for_task(&p.task, p.sigma_y) {
            Ok(o) => format!("DiffPIR, {} steps, lambda {}, zeta {}", p.opts.steps, o.lambda, o.zeta),
            Err(_) => "DiffPIR".into(),
        },
        Method::Ddrm => match DdrmOptions::for_task(&p.task, p.sigma_y) {
            Ok(o) => format!("DDRM, {} steps, eta {}, eta_b {}", p.opts.steps, o.eta, o.eta_b),
            Err(_) => "DDRM".into(),
        },
        Method::Dps => format!("DPS, {} steps, zeta {}", p.opts.steps, DpsOptions::for_task(&p.task).zeta),
        Method::Pgdm => match PgdmOptions::for_task(&p.task) {
            Ok(o) => format!("PiGDM, {} steps, eta {}, weight {}", p.opts.steps, o.eta, o.weight),
            Err(_) => "PiGDM".into(),
        },
    }
}

/// Network evaluations (progress-bar length).
fn evaluations(p: &Problem) -> usize {
    p.method.evaluations(p.opts.steps)
}

/// A progress bar showing step, t and it/s; returns the solver callback and a clock that records when the
/// first step finished (the steady-state rate excludes it: it includes capturing the network's graph and
/// compiling pipelines).
fn progress(steps: usize) -> (indicatif::ProgressBar, impl FnMut(&StepInfo) -> bool, std::rc::Rc<std::cell::Cell<Option<std::time::Instant>>>) {
    let bar = indicatif::ProgressBar::new(steps as u64);
    let style = indicatif::ProgressStyle::with_template("{bar:32} step {pos}/{len}  t={msg}  {per_sec}  eta {eta}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    let b = bar.clone();
    let first = std::rc::Rc::new(std::cell::Cell::new(None));
    let f = first.clone();
    (
        bar,
        move |s: &StepInfo| {
            if s.step == 1 {
                f.set(Some(std::time::Instant::now()));
            }
            b.set_message(s.t.to_string());
            b.set_position(s.step as u64);
            true
        },
        first,
    )
}

/// The noise key of an image file: a hash of its file name (see `ops::image_key`), the same in `restore`
/// and `eval`.
fn image_key_of(path: &Path) -> u32 {
    reddiff::ops::image_key(&path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

fn compare_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    out.with_file_name(format!("{stem}-compare.png"))
}

fn restore(args: SolveArgs, input: Option<PathBuf>, output: PathBuf, measured: bool) -> Result<()> {
    let rec = args.recommended()?;
    let (mut problem, fit, from) = args.problem(rec.as_ref())?;
    // Outputs are checked before anything runs: writable, not an input, distinct, a known image format.
    reddiff::image::OutputFormat::from_path(&output)?;
    let compare = compare_path(&output);
    let mut reads: Vec<PathBuf> = problem.task.kind.files();
    reads.extend(input.iter().cloned());
    let reads: Vec<&Path> = reads.iter().map(PathBuf::as_path).collect();
    reddiff::files::check_output(&output, &reads)?;
    reddiff::files::check_output(&compare, &reads)?;
    reddiff::files::check_distinct(&[&output, &compare])?;
    let (input, img) = match input {
        Some(p) => {
            let img = Image::read(&p)?;
            (p, img)
        }
        None => default_input()?,
    };
    problem.opts.image_keys = vec![image_key_of(&input)];
    let gpu = Gpu::new()?;
    let unet = load(&gpu, args.model.clone())?;
    let size = unet.info().image_size;
    // The measurement (measured mode) or the clean image, kept whole: on tiles when larger than the model,
    // reflected out (and cut back) where a side is shorter than the model's or not in the task's blocks.
    let plan = planned_size(&problem.task, img.height, img.width, size, fit, measured)?;
    let (h, w) = plan.result;
    let (wh, ww) = plan.working;
    let tiles =
        if (wh, ww) == (size, size) { String::new() } else { format!(", {} tiles of {size}x{size}", reddiff::ops::TileGrid::for_model(wh, ww, size)?.tiles()) };
    let tiles = if plan.result == plan.working { tiles } else { format!(", reflected out to {ww}x{wh}{tiles}") };
    say!("{} | {} | {w}x{h}, model {size}x{size}{tiles} | {}", input.display(), problem.task.kind_name(), method_label(&problem, from.as_ref()));
    let (bar, cb, first_step) = progress(evaluations(&problem));
    let t0 = std::time::Instant::now();
    let (out, truth): (Outcome, Option<Image>) = reddiff::gpu::block_on(restore_image(&gpu, &unet, &problem, &img, fit, measured, cb))?;
    bar.finish();
    let secs = t0.elapsed().as_secs_f64();
    let result = &out.result[0];
    result.write(&output)?;
    let mut panels: Vec<&Image> = Vec::new();
    if let Some(t) = &truth {
        panels.push(t);
    }
    panels.push(&out.measurement[0]);
    if let Some(p) = &out.pinv[0] {
        panels.push(p);
    }
    panels.push(result);
    let h = result.height;
    let scale = (128 / h).max(1);
    let big: Vec<Image> = panels.iter().map(|p| p.upscale_nearest((scale * h / p.height.max(1)).max(1))).collect();
    Image::strip(&big.iter().collect::<Vec<_>>()).write(&compare)?;
    match first_step.get() {
        Some(t1) if evaluations(&problem) > 1 => {
            let first = t1.duration_since(t0).as_secs_f64();
            let rate = (evaluations(&problem) - 1) as f64 / (secs - first).max(1e-9);
            say!("{secs:.1} s, {rate:.3} it/s after the first step ({first:.2} s, incl. graph capture and pipeline compilation)");
        }
        _ => say!("{:.1} s, {:.3} it/s", secs, evaluations(&problem) as f64 / secs),
    }
    if let Some(t) = &truth {
        // SSIM needs an 11x11 window: smaller images get PSNR only.
        let ssim_of = |p: &Image| -> Result<String> { Ok(if t.height.min(t.width) >= 11 { format!("  SSIM {:.4}", ssim(t, p)?) } else { String::new() }) };
        if let Some(p) = &out.pinv[0] {
            say!("H+y      PSNR {:6.2} dB{}", psnr(t, p)?, ssim_of(p)?);
        }
        say!("{:8} PSNR {:6.2} dB{}", problem.method.label(), psnr(t, result)?, ssim_of(result)?);
    }
    say!("wrote {} and {}", output.display(), compare.display());
    Ok(())
}

/// File extensions `eval` picks up in a folder.
const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp", "gif"];

/// The image files in `dir`, sorted by name.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.into(), source })?;
    let is_image = |p: &Path| p.extension().is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)));
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_image(p)).collect();
    v.sort();
    if v.is_empty() {
        return Err(Error::Invalid { op: "--images", msg: format!("no image files (.png, .jpg, .webp, .tif, .bmp, .gif) in {}", dir.display()) });
    }
    Ok(v)
}

fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::Invalid { op: "--shard", msg: format!("'{s}': use i/n with 0 <= i < n") };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The first field of a CSV line (unquoted).
fn csv_first(line: &str) -> String {
    match line.strip_prefix('"') {
        Some(rest) => {
            let mut out = String::new();
            let mut chars = rest.chars().peekable();
            while let Some(c) = chars.next() {
                match (c, chars.peek()) {
                    ('"', Some('"')) => {
                        out.push('"');
                        chars.next();
                    }
                    ('"', _) => break,
                    _ => out.push(c),
                }
            }
            out
        }
        None => line.split(',').next().unwrap_or("").to_string(),
    }
}

const CSV_HEADER: &str = "image,task,method,steps,psnr_pinv,ssim_pinv,psnr,ssim";

/// The image files `eval` works on: every n-th of `images` from i (`--shard i/n`), at most `limit`.
fn selected_files(images: &Path, shard: Option<String>, limit: Option<usize>) -> Result<Vec<PathBuf>> {
    let (si, sn) = match shard {
        Some(s) => parse_shard(&s)?,
        None => (0, 1),
    };
    let mut files: Vec<PathBuf> = image_files(images)?.into_iter().enumerate().filter(|(k, _)| k % sn == si).map(|(_, p)| p).collect();
    if let Some(k) = limit {
        files.truncate(k);
    }
    if files.is_empty() {
        return Err(Error::Invalid { op: "eval", msg: "--shard and --limit select no image".into() });
    }
    Ok(files)
}

fn name_of(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Reads `files`; unreadable ones are reported, named in `failed` and skipped.
fn read_images(files: &[PathBuf], failed: &mut Vec<String>) -> Vec<(PathBuf, Image)> {
    let mut loaded = Vec::new();
    for f in files {
        match Image::read(f) {
            Ok(im) => loaded.push((f.clone(), im)),
            Err(e) => {
                eprintln!("skipping {}: {e}", f.display());
                failed.push(name_of(f));
            }
        }
    }
    loaded
}

/// Brings images to the model's size (`fit`, sides a multiple of `multiple`); failures are skipped as above.
fn fit_images(loaded: Vec<(PathBuf, Image)>, size: usize, fit: Fit, multiple: usize, failed: &mut Vec<String>) -> Vec<(PathBuf, Image)> {
    let mut truth = Vec::new();
    for (p, im) in loaded {
        match im.fit(size, fit, multiple) {
            Ok(x) => truth.push((p, x)),
            Err(e) => {
                eprintln!("skipping {}: {e}", p.display());
                failed.push(name_of(&p));
            }
        }
    }
    truth
}

/// A table cell: `v` with `digits` decimals, or "—" where there is no value (NaN: a task without H+y).
fn cell(v: f64, digits: usize) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.digits$}")
    }
}

/// PSNR/SSIM of one image's H+y (NaN without one) and of the restoration.
#[derive(Clone, Copy)]
struct Scores {
    psnr_pinv: f64,
    ssim_pinv: f64,
    psnr: f64,
    ssim: f64,
}

/// Degrades and restores `truth` in batches of up to `batch` consecutive images of one size (every random
/// draw keyed by the file name, so the batching changes no result); `done` gets each image's scores as soon
/// as its batch finishes.
fn run_batches(
    gpu: &Gpu,
    unet: &Unet,
    problem: &Problem,
    truth: &[(PathBuf, Image)],
    batch: usize,
    mut done: impl FnMut(&Path, Scores) -> Result<()>,
) -> Result<()> {
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, (_, im)) in truth.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if g.len() < batch && (truth[g.start].1.height, truth[g.start].1.width) == (im.height, im.width) => g.end = i + 1,
            _ => groups.push(i..i + 1),
        }
    }
    for g in groups {
        let chunk = &truth[g];
        let images: Vec<Image> = chunk.iter().map(|(_, im)| im.clone()).collect();
        let (bar, cb, _) = progress(evaluations(problem));
        let mut problem = problem.clone();
        problem.opts.image_keys = chunk.iter().map(|(f, _)| image_key_of(f)).collect();
        let o = reddiff::gpu::block_on(restore_synthetic(gpu, unet, &problem, &images, cb))?;
        bar.finish_and_clear();
        for (k, (f, x)) in chunk.iter().enumerate() {
            let (psnr_pinv, ssim_pinv) = match &o.pinv[k] {
                Some(p) => (psnr(x, p)?, ssim(x, p)?),
                None => (f64::NAN, f64::NAN),
            };
            done(f, Scores { psnr_pinv, ssim_pinv, psnr: psnr(x, &o.result[k])?, ssim: ssim(x, &o.result[k])? })?;
        }
    }
    Ok(())
}

fn check_batch(batch: usize) -> Result<()> {
    if !(1..=MAX_BATCH).contains(&batch) {
        return Err(Error::Invalid { op: "--batch", msg: format!("must be 1 to {MAX_BATCH}, got {batch}") });
    }
    Ok(())
}

/// The mean of `f` over `v`.
fn mean_of<T>(v: &[T], f: impl Fn(&T) -> f64) -> f64 {
    v.iter().map(f).sum::<f64>() / v.len().max(1) as f64
}

#[allow(clippy::too_many_arguments)]
fn eval(args: SolveArgs, images: PathBuf, out: PathBuf, shard: Option<String>, limit: Option<usize>, batch: usize, resume: bool) -> Result<()> {
    let rec = args.recommended()?;
    let (problem, fit, from) = args.problem(rec.as_ref())?;
    check_batch(batch)?;
    let files = selected_files(&images, shard, limit)?;
    let mut reads: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let task_files = problem.task.kind.files();
    reads.extend(task_files.iter().map(PathBuf::as_path));
    reddiff::files::check_output(&out, &reads)?;
    // Rows already in the CSV (--resume) are skipped; every finished image is appended at once.
    let done: Vec<String> = match (resume, std::fs::read_to_string(&out)) {
        (true, Ok(text)) => {
            if text.lines().next().is_some_and(|h| h != CSV_HEADER) {
                return Err(Error::Invalid { op: "--resume", msg: format!("{} is not a reddiff eval CSV (its header differs)", out.display()) });
            }
            text.lines().skip(1).filter(|l| !l.trim().is_empty()).map(csv_first).collect()
        }
        _ => Vec::new(),
    };
    let todo: Vec<PathBuf> = files.iter().filter(|f| !done.contains(&name_of(f))).cloned().collect();
    if !done.is_empty() {
        eprintln!("--resume: {} of {} images already in {}", files.len() - todo.len(), files.len(), out.display());
    }
    let mut failed: Vec<String> = Vec::new();
    let loaded = read_images(&todo, &mut failed);
    let gpu = Gpu::new()?;
    let unet = load(&gpu, args.model.clone())?;
    let truth = fit_images(loaded, unet.info().image_size, fit, problem.task.size_multiple(), &mut failed);
    eprintln!("{}", method_label(&problem, from.as_ref()));
    let mut csv = open_csv(&out, CSV_HEADER, resume && !done.is_empty())?;
    let mut rows: Vec<Scores> = Vec::new();
    let t0 = std::time::Instant::now();
    let method = problem.method.name();
    run_batches(&gpu, &unet, &problem, &truth, batch, |f, r| {
        let line = format!(
            "{},{},{method},{},{:.4},{:.4},{:.4},{:.4}\n",
            csv_field(&name_of(f)),
            csv_field(&args.task),
            problem.opts.steps,
            r.psnr_pinv,
            r.ssim_pinv,
            r.psnr,
            r.ssim
        );
        csv.write_all(line.as_bytes()).and_then(|_| csv.flush()).map_err(|source| Error::Io { path: out.clone(), source })?;
        rows.push(r);
        eprintln!("{}/{} images", rows.len(), truth.len());
        Ok(())
    })?;
    let secs = t0.elapsed().as_secs_f64();
    if !rows.is_empty() {
        say!("| task | method | images | steps | PSNR H+y | SSIM H+y | PSNR | SSIM | s/image | peak MiB |");
        say!("|---|---|---|---|---|---|---|---|---|---|");
        say!(
            "| {} | {method} | {} | {} | {} | {} | {:.2} | {:.4} | {:.1} | {:.0} |",
            args.task,
            rows.len(),
            problem.opts.steps,
            cell(mean_of(&rows, |r| r.psnr_pinv), 2),
            cell(mean_of(&rows, |r| r.ssim_pinv), 4),
            mean_of(&rows, |r| r.psnr),
            mean_of(&rows, |r| r.ssim),
            secs / rows.len() as f64,
            gpu.memory().1 as f64 / 1048576.0
        );
        say!("wrote {}", out.display());
    }
    if !failed.is_empty() {
        return Err(Error::Invalid { op: "eval", msg: format!("{} image(s) could not be used and were skipped: {}", failed.len(), failed.join(", ")) });
    }
    if rows.is_empty() && done.is_empty() {
        return Err(Error::Invalid { op: "eval", msg: "no image was evaluated".into() });
    }
    Ok(())
}

/// `eval --sweep`: the grid and where its choice goes.
#[derive(Args)]
struct GridArgs {
    /// Run a grid of settings instead of one: every method in --grid-methods (RED-diff at every combination
    /// of --grid-steps, --grid-lambda and --grid-lr; the baselines at their authors' settings) on every task
    /// in --tasks, one CSV row of means per setting, and the best mean PSNR per task into recommended.json.
    #[arg(long)]
    sweep: bool,
    /// --sweep: comma-separated tasks [the --task].
    #[arg(long)]
    tasks: Option<String>,
    /// --sweep: methods to try (DPS runs 1000 steps that differentiate the network: slow on a CPU).
    #[arg(long, default_value = "reddiff,diffpir,ddrm,pgdm")]
    grid_methods: String,
    /// --sweep: RED-diff step counts.
    #[arg(long, default_value = "100,200,1000")]
    grid_steps: String,
    /// --sweep: RED-diff λ values.
    #[arg(long, default_value = "0.25,0.5")]
    grid_lambda: String,
    /// --sweep: RED-diff learning rates; "default" is the task's (0.25 inpainting, 0.5 otherwise).
    #[arg(long, default_value = "default")]
    grid_lr: String,
    /// --sweep: the recommended.json to write (settings for other tasks in it are kept) [MODEL/recommended.json;
    /// required with the built-in model].
    #[arg(long)]
    recommended: Option<PathBuf>,
}

/// The items of a comma-separated list, each parsed by `f`.
fn list<T>(s: &str, f: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    let v: Vec<T> = s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(f).collect::<Result<_>>()?;
    if v.is_empty() {
        return Err(Error::Invalid { op: "--sweep", msg: format!("empty list '{s}'") });
    }
    Ok(v)
}

const SWEEP_HEADER: &str = "task,sigma_y,method,steps,lambda,lr,images,psnr_pinv,psnr,ssim,seconds_per_image";

/// The CSV key of a setting: task, σ_y, method, steps, λ, lr.
fn sweep_key(s: &Setting) -> String {
    let opt = |v: Option<f32>| v.map(|v| v.to_string()).unwrap_or_default();
    format!("{},{},{},{},{},{}", csv_field(&s.task), s.sigma_y, s.method.name(), s.steps, opt(s.lambda), opt(s.lr))
}

/// A sweep CSV row back as a setting (for --resume).
fn sweep_row(line: &str, path: &Path) -> Result<Setting> {
    let bad = || Error::Format { path: path.into(), msg: format!("unreadable sweep row '{line}'") };
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 11 {
        return Err(bad());
    }
    let num = |i: usize| f[i].parse::<f64>().map_err(|_| bad());
    let opt = |i: usize| if f[i].is_empty() { Ok(None) } else { f[i].parse::<f32>().map(Some).map_err(|_| bad()) };
    Ok(Setting {
        best: false,
        task: f[0].to_string(),
        sigma_y: f[1].parse().map_err(|_| bad())?,
        method: f[2].parse()?,
        steps: f[3].parse().map_err(|_| bad())?,
        lambda: opt(4)?,
        lr: opt(5)?,
        images: f[6].parse().map_err(|_| bad())?,
        psnr: num(8)?,
        ssim: num(9)?,
        seconds_per_image: num(10)?,
    })
}

/// `eval --sweep`: see [`GridArgs`].
fn sweep(args: SolveArgs, grid: GridArgs, images: PathBuf, out: PathBuf, limit: Option<usize>, batch: usize, resume: bool) -> Result<()> {
    if args.method.is_some() || args.steps.is_some() || args.lambda.is_some() || args.lr.is_some() {
        return Err(Error::Invalid {
            op: "--sweep",
            msg: "give the grid with --grid-methods, --grid-steps, --grid-lambda and --grid-lr, not --method/--steps/--lambda/--lr".into(),
        });
    }
    check_batch(batch)?;
    let (base, fit, _) = args.problem(None)?;
    let tasks = list(grid.tasks.as_deref().unwrap_or(&args.task), |t| Ok(Task { kind: t.parse()?, seed: args.seed }))?;
    let methods = list(&grid.grid_methods, |m| m.parse::<Method>())?;
    let steps = list(&grid.grid_steps, |v| match v.parse::<usize>() {
        Ok(n) if (1..=MAX_STEPS).contains(&n) => Ok(n),
        _ => Err(Error::Invalid { op: "--grid-steps", msg: format!("'{v}' is not a step count from 1 to {MAX_STEPS}") }),
    })?;
    let number = |op: &'static str, v: &str| v.parse::<f32>().map_err(|_| Error::Invalid { op, msg: format!("'{v}' is not a number") });
    let lambdas = list(&grid.grid_lambda, |v| check_lambda(number("--grid-lambda", v)?))?;
    let lrs = list(&grid.grid_lr, |v| if v == "default" { Ok(None) } else { check_lr(number("--grid-lr", v)?).map(Some) })?;
    let target = match (&grid.recommended, &args.model) {
        (Some(p), _) => p.clone(),
        (None, Some(dir)) => dir.join(reddiff::recommended::FILE_NAME),
        (None, None) => return Err(Error::Invalid { op: "--sweep", msg: "the built-in model has no directory: give --recommended PATH".into() }),
    };
    let files = selected_files(&images, None, limit)?;
    let mut reads: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let task_files: Vec<PathBuf> = tasks.iter().flat_map(|t| t.kind.files()).collect();
    reads.extend(task_files.iter().map(PathBuf::as_path));
    reddiff::files::check_output(&out, &reads)?;
    reddiff::files::check_output(&target, &reads)?;
    reddiff::files::check_distinct(&[&out, &target])?;
    let mut rec = match std::fs::read_to_string(&target) {
        Ok(text) => Recommended::parse(&text, &target)?,
        Err(_) => Recommended::default(),
    };
    // Settings already in the CSV (--resume) are not run again.
    let previous: Vec<Setting> = match (resume, std::fs::read_to_string(&out)) {
        (true, Ok(text)) => {
            if text.lines().next().is_some_and(|h| h != SWEEP_HEADER) {
                return Err(Error::Invalid { op: "--resume", msg: format!("{} is not a reddiff sweep CSV (its header differs)", out.display()) });
            }
            text.lines().skip(1).filter(|l| !l.trim().is_empty()).map(|l| sweep_row(l, &out)).collect::<Result<_>>()?
        }
        _ => Vec::new(),
    };
    let mut failed = Vec::new();
    let loaded = read_images(&files, &mut failed);
    if !failed.is_empty() {
        return Err(Error::Invalid { op: "--sweep", msg: format!("unreadable images: {}", failed.join(", ")) });
    }
    let gpu = Gpu::new()?;
    let unet = load(&gpu, args.model.clone())?;
    let mut csv = open_csv(&out, SWEEP_HEADER, resume && !previous.is_empty())?;
    let mut table: Vec<Setting> = Vec::new();
    for task in &tasks {
        let truth = fit_images(loaded.clone(), unet.info().image_size, fit, task.size_multiple(), &mut failed);
        if !failed.is_empty() {
            return Err(Error::Invalid { op: "--sweep", msg: format!("{}: images that do not fit: {}", task.kind_name(), failed.join(", ")) });
        }
        let mut candidates: Vec<(Method, usize, Option<f32>, Option<f32>)> = Vec::new();
        for &m in &methods {
            if m == Method::RedDiff {
                for &st in &steps {
                    for &l in &lambdas {
                        for &lr in &lrs {
                            candidates.push((m, st, Some(l), Some(lr.unwrap_or(task.default_lr()))));
                        }
                    }
                }
            } else {
                match m.steps_for(task, args.sigma_y, None, 1) {
                    Ok(st) => candidates.push((m, st, None, None)),
                    Err(e) => eprintln!("{}: {} skipped: {e}", task.kind_name(), m.label()),
                }
            }
        }
        let mut results: Vec<Setting> = Vec::new();
        for (method, st, lambda, lr) in candidates {
            let mut s = Setting {
                task: task.kind_name(),
                sigma_y: args.sigma_y,
                method,
                best: false,
                steps: st,
                lambda,
                lr,
                images: 0,
                psnr: f64::NAN,
                ssim: f64::NAN,
                seconds_per_image: f64::NAN,
            };
            if let Some(p) = previous.iter().find(|p| sweep_key(p) == sweep_key(&s)) {
                results.push(p.clone());
                continue;
            }
            let mut problem = base.clone();
            problem.task = task.clone();
            problem.method = method;
            problem.opts.steps = st;
            problem.opts.lambda = lambda.unwrap_or(reddiff::recommended::PAPER_LAMBDA);
            problem.opts.lr = lr.unwrap_or(task.default_lr());
            eprintln!("{} | {}", task.kind_name(), method_settings(&problem));
            let t0 = std::time::Instant::now();
            let mut rows: Vec<Scores> = Vec::new();
            run_batches(&gpu, &unet, &problem, &truth, batch, |_, r| {
                rows.push(r);
                Ok(())
            })?;
            s.images = rows.len();
            s.psnr = mean_of(&rows, |r| r.psnr);
            s.ssim = mean_of(&rows, |r| r.ssim);
            s.seconds_per_image = t0.elapsed().as_secs_f64() / rows.len().max(1) as f64;
            let line =
                format!("{},{},{:.4},{:.4},{:.4},{:.2}\n", sweep_key(&s), s.images, mean_of(&rows, |r| r.psnr_pinv), s.psnr, s.ssim, s.seconds_per_image);
            csv.write_all(line.as_bytes()).and_then(|_| csv.flush()).map_err(|source| Error::Io { path: out.clone(), source })?;
            eprintln!("  {:.2} dB, SSIM {:.4}, {:.1} s/image", s.psnr, s.ssim, s.seconds_per_image);
            results.push(s);
        }
        // Per method its best setting; the best of those is marked (on a tie, the first method listed).
        let mut chosen: Vec<Setting> = Vec::new();
        for r in results.iter().filter(|r| r.psnr.is_finite()) {
            match chosen.iter_mut().find(|c| c.method == r.method) {
                Some(c) if c.psnr >= r.psnr => {}
                Some(c) => *c = r.clone(),
                None => chosen.push(r.clone()),
            }
        }
        let top = chosen.iter().enumerate().max_by(|a, b| a.1.psnr.total_cmp(&b.1.psnr).then(b.0.cmp(&a.0))).map(|(i, _)| i);
        let Some(top) = top else {
            eprintln!("{}: no method could run it; recommended.json unchanged for it", task.kind_name());
            continue;
        };
        chosen[top].best = true;
        rec.replace_task(chosen);
        rec.note = format!(
            "chosen by `reddiff eval --sweep` on {} images in {} (best mean PSNR per task and method, the best of those marked; grid: methods {}, RED-diff steps {}, lambda {}, lr {})",
            files.len(),
            images.display(),
            grid.grid_methods,
            grid.grid_steps,
            grid.grid_lambda,
            grid.grid_lr
        );
        reddiff::model::weights::write_atomic(&target, rec.to_json().as_bytes())?;
        table.extend(results);
    }
    let chosen = |s: &Setting| match rec.settings.iter().find(|r| sweep_key(r) == sweep_key(s)) {
        Some(r) if r.best => "best",
        Some(_) => "kept",
        None => "",
    };
    say!("| task | method | steps | lambda | lr | PSNR | SSIM | s/image | in recommended.json |");
    say!("|---|---|---|---|---|---|---|---|---|");
    for s in &table {
        let opt = |v: Option<f32>| v.map(|v| v.to_string()).unwrap_or_else(|| "—".into());
        say!(
            "| {} | {} | {} | {} | {} | {:.2} | {:.4} | {:.1} | {} |",
            s.task,
            s.method.label(),
            s.steps,
            opt(s.lambda),
            opt(s.lr),
            s.psnr,
            s.ssim,
            s.seconds_per_image,
            chosen(s)
        );
    }
    say!("wrote {} and {}", out.display(), target.display());
    Ok(())
}

/// A CSV file, opened for appending (`append`) or created afresh with `header`.
fn open_csv(path: &Path, header: &str, append: bool) -> Result<std::fs::File> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    if append {
        return std::fs::OpenOptions::new().append(true).open(path).map_err(io);
    }
    let mut f = std::fs::File::create(path).map_err(io)?;
    writeln!(f, "{header}").map_err(io)?;
    Ok(f)
}

#[derive(Subcommand)]
enum Command {
    /// Print the selected GPU adapter, its limits and features (REDDIFF_BACKEND / REDDIFF_ADAPTER choose).
    Adapter,
    /// Restore an image with RED-diff. With no arguments: box inpainting of a bundled sample with the built-in
    /// prior. By default the input is a clean image that is degraded synthetically (then PSNR/SSIM are
    /// printed and OUT-compare.png shows truth | measurement | H+y | RED-diff); with --measured the input is
    /// the measurement itself.
    Restore {
        #[command(flatten)]
        solve: SolveArgs,
        /// Input image (PNG, JPEG, WebP, TIFF, BMP or GIF; at most 16 megapixels); default: a built-in held-out sample.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Output image, format by extension (.png, .jpg, .webp, .tif, .bmp); written atomically, with OUT-compare.png beside it.
        #[arg(long, default_value = "restored.png")]
        output: PathBuf,
        /// The input is already the measurement y (low-res, masked, blurred, gray photo).
        #[arg(long)]
        measured: bool,
    },
    /// Evaluate a method and the H+y baseline on a folder of clean images: per-image PSNR/SSIM to a CSV and
    /// a mean table on stdout. With --sweep: a grid of methods and settings per task, the best written to
    /// the model's recommended.json (which restore and eval then use for options not given).
    Eval {
        #[command(flatten)]
        solve: SolveArgs,
        /// Folder of images (.png, .jpg, .webp, .tif, .bmp, .gif).
        #[arg(long)]
        images: PathBuf,
        /// CSV file to write.
        #[arg(long, default_value = "results.csv")]
        out: PathBuf,
        /// i/n: take every n-th image starting at i (for array jobs).
        #[arg(long)]
        shard: Option<String>,
        /// At most K images (after sharding).
        #[arg(long)]
        limit: Option<usize>,
        /// Images solved together on the GPU. Results equal per-image `restore` runs: every random draw is
        /// keyed by the image's file name and losses are per-image means, so --batch, --shard and --limit do
        /// not change any image's result.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Continue an interrupted run: images already in the CSV are skipped and new rows appended
        /// (without it the CSV starts afresh). Every finished image is written at once either way. With
        /// --sweep: settings already in the CSV are not run again.
        #[arg(long)]
        resume: bool,
        #[command(flatten)]
        grid: GridArgs,
    },
    /// Architecture summary, parameter count, weight dtype and estimated GPU memory of a model directory.
    Info {
        /// Model directory (config.json + safetensors); default: the built-in prior.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Run the network once: IN holds x [N,C,H,W] f32, t [N] and optionally y [N] class labels;
    /// OUT gets eps (f32, all output channels).
    Eps {
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
    /// Sample images from the prior with DDIM on the GPU and save them as a grid image (format by extension).
    Sample {
        #[arg(long)]
        model: Option<PathBuf>,
        /// Number of images.
        #[arg(long, default_value_t = 16)]
        n: usize,
        /// DDIM steps.
        #[arg(long, default_value_t = 50)]
        steps: usize,
        /// 0 = deterministic DDIM.
        #[arg(long, default_value_t = 0.0)]
        eta: f32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Initial noise from a safetensors file (tensor `noise` or the only tensor), [N,C,H,W].
        #[arg(long)]
        noise: Option<PathBuf>,
        /// Class label for class-conditional models.
        #[arg(long)]
        class: Option<usize>,
        #[arg(long, default_value = "samples.png")]
        output: PathBuf,
    },
}

/// The model at `model`, or the built-in prior.
fn load(gpu: &Gpu, model: Option<PathBuf>) -> Result<Unet> {
    match model {
        Some(dir) => Unet::load(gpu, &dir),
        None => builtin_model(gpu),
    }
}

#[cfg(feature = "builtin-model")]
fn builtin_model(gpu: &Gpu) -> Result<Unet> {
    Unet::builtin(gpu)
}

#[cfg(not(feature = "builtin-model"))]
fn builtin_model(_: &Gpu) -> Result<Unet> {
    Err(Error::Invalid { op: "--model", msg: "this build has no built-in model (cargo feature builtin-model); pass --model DIR".into() })
}

/// The default input of `restore`: the built-in held-out sample, as (name, image).
#[cfg(feature = "builtin-model")]
fn default_input() -> Result<(PathBuf, Image)> {
    let name = reddiff::builtin::DEFAULT_SAMPLE;
    let bytes = reddiff::builtin::sample(name).ok_or(Error::Invalid { op: "--input", msg: format!("built-in sample {name} missing") })?;
    Ok((PathBuf::from(name), Image::decode(name.as_ref(), bytes)?))
}

#[cfg(not(feature = "builtin-model"))]
fn default_input() -> Result<(PathBuf, Image)> {
    Err(Error::Invalid { op: "--input", msg: "this build has no built-in samples (cargo feature builtin-model); pass --input FILE".into() })
}

fn eps(model: Option<PathBuf>, input: &Path, output: &Path) -> Result<()> {
    reddiff::files::check_output(output, &[input])?;
    let io = TensorFile::read(input)?;
    let x = io.get("x")?;
    let t = io.get("t")?;
    for (name, v) in [("x", &x.data), ("t", &t.data)] {
        if let Some(bad) = v.iter().find(|v| !v.is_finite()) {
            return Err(Error::Format { path: input.into(), msg: format!("tensor '{name}' holds {bad}: inputs must be finite") });
        }
    }
    let y: Option<Vec<usize>> = match io.tensors.get("y") {
        Some(y) => Some(
            y.data
                .iter()
                .map(|v| {
                    if *v >= 0.0 && v.fract() == 0.0 {
                        Ok(*v as usize)
                    } else {
                        Err(Error::Format { path: input.into(), msg: format!("label {v} is not a class index") })
                    }
                })
                .collect::<Result<_>>()?,
        ),
        None => None,
    };
    let gpu = Gpu::new()?;
    let m = load(&gpu, model)?;
    let out = m.forward(&gpu, &gpu.upload(&x.shape, &x.data)?, &gpu.upload(&t.shape, &t.data)?, y.as_deref())?;
    let host = HostTensor { shape: out.shape().to_vec(), data: out.read(&gpu)? };
    write_tensors(output, &[("eps", &host)])?;
    say!("wrote eps {:?} to {}", host.shape, output.display());
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn sample(model: Option<PathBuf>, n: usize, steps: usize, eta: f32, seed: u64, noise: Option<PathBuf>, class: Option<usize>, output: &Path) -> Result<()> {
    if !(1..=MAX_SAMPLES).contains(&n) {
        return Err(Error::Invalid { op: "--n", msg: format!("must be 1 to {MAX_SAMPLES}, got {n}") });
    }
    if !(1..=1000).contains(&steps) {
        return Err(Error::Invalid { op: "--steps", msg: format!("DDIM takes 1 to 1000 steps, got {steps}") });
    }
    if !(eta >= 0.0 && eta.is_finite()) {
        return Err(Error::Invalid { op: "--eta", msg: format!("must be zero or positive, got {eta}") });
    }
    reddiff::image::OutputFormat::from_path(output)?;
    let reads: Vec<&Path> = noise.iter().map(PathBuf::as_path).collect();
    reddiff::files::check_output(output, &reads)?;
    let gpu = Gpu::new()?;
    let m = load(&gpu, model)?;
    let (c, s) = (m.info().in_channels, m.info().image_size);
    let x = match noise {
        Some(p) => {
            let f = TensorFile::read(&p)?;
            let t = match f.tensors.get("noise") {
                Some(t) => t,
                None if f.tensors.len() == 1 => f.tensors.values().next().ok_or(Error::Empty { op: "noise", shape: vec![] })?,
                None => return Err(Error::Format { path: p.clone(), msg: "expected a tensor named 'noise'".into() }),
            };
            if t.shape.len() != 4 || t.shape[1] != c {
                return Err(Error::Format { path: p.clone(), msg: format!("noise {:?} should be [N, {c}, H, W]", t.shape) });
            }
            gpu.upload(&t.shape, &t.data)?
        }
        None => ops::normal(&gpu, &[n, c, s, s], seed, 0, 0.0, 1.0)?,
    };
    let bar = indicatif::ProgressBar::new(steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} t={msg} {per_sec}").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let prior = UnetPrior { unet: &m, class };
    let out = ddim_sample(&gpu, &prior, &x, &Schedule::ddpm(), DdimOptions { steps, eta, seed }, |i, t| {
        if i % 5 == 4 {
            let _ = gpu.flush();
        }
        bar.set_message(t.to_string());
        bar.inc(1);
    })?;
    let v = out.read(&gpu)?;
    bar.finish();
    let sh = out.shape();
    let img = sh[1] * sh[2] * sh[3];
    let images: Vec<Image> = (0..sh[0]).map(|i| Image::new(sh[1], sh[2], sh[3], v[i * img..(i + 1) * img].to_vec())).collect::<Result<_>>()?;
    let cols = (sh[0] as f64).sqrt().ceil() as usize;
    Image::grid(&images, cols)?.write(output)?;
    say!("wrote {} samples to {}", sh[0], output.display());
    Ok(())
}

fn main() {
    // Mesa's drivers complain on stderr when XDG_RUNTIME_DIR is unset (containers, fresh machines).
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    // `reddiff` alone runs the main job: restore a bundled sample with the built-in prior.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = if argv.len() == 1 { Cli::parse_from([argv[0].clone(), "restore".into()]) } else { Cli::parse_from(argv) };
    let result = match cli.command {
        Command::Adapter => Gpu::new().map(|g| say!("{}", g.adapter())),
        Command::Restore { solve, input, output, measured } => restore(solve, input, output, measured),
        Command::Eval { solve, images, out, shard, limit, batch, resume, grid } => {
            if grid.sweep {
                match shard {
                    Some(_) => Err(Error::Invalid { op: "--sweep", msg: "--shard does not apply: every setting sees the same images".into() }),
                    None => sweep(solve, grid, images, out, limit, batch, resume),
                }
            } else {
                eval(solve, images, out, shard, limit, batch, resume)
            }
        }
        Command::Info { model } => Gpu::new().and_then(|g| load(&g, model)).map(|m| say!("{}", m.info())),
        Command::Eps { model, input, output } => eps(model, &input, &output),
        Command::Sample { model, n, steps, eta, seed, noise, class, output } => sample(model, n, steps, eta, seed, noise, class, &output),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
