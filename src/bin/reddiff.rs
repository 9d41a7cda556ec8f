//! The `reddiff` command-line tool.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use reddiff::image::{Fit, Image};
use reddiff::metrics::{psnr, ssim};
use reddiff::model::{weights::write_tensors, HostTensor, Schedule, TensorFile, Unet};
use reddiff::operators::{Task, TaskKind};
use reddiff::restore::{restore_measured, restore_synthetic, Outcome, Problem};
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
    /// linear tasks). DPS and PiGDM differentiate the network (about 3x the cost of a step) and need the
    /// image at the model's size.
    #[arg(long, default_value = "reddiff")]
    method: String,
    /// Iterations (network evaluations); default: 1000 for RED-diff, the authors' 20 (inpainting) or 100
    /// for DiffPIR, 20 for DDRM, 1000 for DPS, 100 for PiGDM.
    #[arg(long)]
    steps: Option<usize>,
    /// Adam learning rate; default 0.25 for inpainting, 0.5 otherwise.
    #[arg(long)]
    lr: Option<f32>,
    /// Weight λ of the denoising regulariser.
    #[arg(long, default_value_t = 0.25)]
    lambda: f32,
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
    /// How to bring images to the model's resolution: tile (images larger than the model are restored whole,
    /// the network runs on overlapping model-size tiles; smaller ones are cropped), crop (centre square,
    /// resampled), resize (whole image resampled to a square) or none (must already match).
    #[arg(long, default_value = "tile")]
    fit: String,
}

impl SolveArgs {
    fn problem(&self) -> Result<(Problem, Fit)> {
        let kind: TaskKind = self.task.parse()?;
        let task = Task { kind, seed: self.seed };
        let fit: Fit = self.fit.parse()?;
        let method: Method = self.method.parse()?;
        if !(0.0..=1.0).contains(&self.sigma_y) {
            return Err(Error::Invalid { op: "--sigma-y", msg: format!("must be in [0, 1], got {}", self.sigma_y) });
        }
        let steps = method.steps_for(&task, self.sigma_y, self.steps, 1000)?;
        if !(1..=MAX_STEPS).contains(&steps) {
            return Err(Error::Invalid { op: "--steps", msg: format!("must be 1 to {MAX_STEPS}, got {steps}") });
        }
        if let Some(lr) = self.lr {
            if !(lr > 0.0 && lr.is_finite()) {
                return Err(Error::Invalid { op: "--lr", msg: format!("must be a positive number, got {lr}") });
            }
        }
        if !(self.lambda >= 0.0 && self.lambda.is_finite()) {
            return Err(Error::Invalid { op: "--lambda", msg: format!("must be zero or positive, got {}", self.lambda) });
        }
        if !(self.sigma_x0 >= 0.0 && self.sigma_x0.is_finite()) {
            return Err(Error::Invalid { op: "--sigma-x0", msg: format!("must be zero or positive, got {}", self.sigma_x0) });
        }
        let opts = RedDiffOptions {
            steps,
            lr: self.lr.unwrap_or(task.default_lr()),
            lambda: self.lambda,
            weighting: self.weighting.parse::<Weighting>()?,
            order: self.order.parse::<Order>()?,
            init: self.init.parse::<Init>()?,
            sigma_x0: self.sigma_x0,
            seed: self.seed,
            ..RedDiffOptions::default()
        };
        Ok((Problem { task, sigma_y: self.sigma_y, opts, class: self.class, method }, fit))
    }
}

/// The method and its settings, for the first line of `restore`.
fn method_label(p: &Problem) -> String {
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
    let (mut problem, fit) = args.problem()?;
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
    let f = match problem.task.kind {
        TaskKind::Sr(f) | TaskKind::Bicubic(f) => f,
        _ => 1,
    };
    // Sides: multiples of the task's block (SR factor on the clean image, 16 for JPEG).
    let m = problem.task.size_multiple();
    let my = if f > 1 { 1 } else { m };
    // Fitted once: the measurement (measured mode) or the clean image; (h, w) is the restored size.
    let fitted = if measured { img.fit(size / f, fit, my)? } else { img.fit(size, fit, m)? };
    let (h, w) = if measured { (fitted.height * f, fitted.width * f) } else { (fitted.height, fitted.width) };
    let tiles =
        if (h, w) == (size, size) { String::new() } else { format!(", {} tiles of {size}x{size}", reddiff::ops::TileGrid::new(h, w, size, size / 4)?.tiles()) };
    say!("{} | {} | {w}x{h}, model {size}x{size}{tiles} | {}", input.display(), problem.task.kind_name(), method_label(&problem));
    let (bar, cb, first_step) = progress(evaluations(&problem));
    let t0 = std::time::Instant::now();
    let (truth, out): (Option<Image>, Outcome) = if measured {
        (None, reddiff::gpu::block_on(restore_measured(&gpu, &unet, &problem, std::slice::from_ref(&fitted), cb))?)
    } else {
        let out = reddiff::gpu::block_on(restore_synthetic(&gpu, &unet, &problem, std::slice::from_ref(&fitted), cb))?;
        (Some(fitted), out)
    };
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
        if let Some(p) = &out.pinv[0] {
            say!("H+y      PSNR {:6.2} dB  SSIM {:.4}", psnr(t, p)?, ssim(t, p)?);
        }
        say!("{:8} PSNR {:6.2} dB  SSIM {:.4}", problem.method.label(), psnr(t, result)?, ssim(t, result)?);
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

/// One finished image: name, then PSNR/SSIM of H+y and of RED-diff.
type Row = (String, f64, f64, f64, f64);

#[allow(clippy::too_many_arguments)]
fn eval(args: SolveArgs, images: PathBuf, out: PathBuf, shard: Option<String>, limit: Option<usize>, batch: usize, resume: bool) -> Result<()> {
    let (problem, fit) = args.problem()?;
    if !(1..=MAX_BATCH).contains(&batch) {
        return Err(Error::Invalid { op: "--batch", msg: format!("must be 1 to {MAX_BATCH}, got {batch}") });
    }
    let (si, sn) = match shard {
        Some(s) => parse_shard(&s)?,
        None => (0, 1),
    };
    let mut files: Vec<PathBuf> = image_files(&images)?.into_iter().enumerate().filter(|(k, _)| k % sn == si).map(|(_, p)| p).collect();
    if let Some(k) = limit {
        files.truncate(k);
    }
    if files.is_empty() {
        return Err(Error::Invalid { op: "eval", msg: "--shard and --limit select no image".into() });
    }
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
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let todo: Vec<PathBuf> = files.iter().filter(|f| !done.contains(&name_of(f))).cloned().collect();
    if !done.is_empty() {
        eprintln!("--resume: {} of {} images already in {}", files.len() - todo.len(), files.len(), out.display());
    }
    let mut failed: Vec<String> = Vec::new();
    let mut loaded: Vec<(PathBuf, Image)> = Vec::new();
    for f in &todo {
        match Image::read(f) {
            Ok(im) => loaded.push((f.clone(), im)),
            Err(e) => {
                eprintln!("skipping {}: {e}", f.display());
                failed.push(name_of(f));
            }
        }
    }
    let gpu = Gpu::new()?;
    let unet = load(&gpu, args.model.clone())?;
    let size = unet.info().image_size;
    let mut truth: Vec<(PathBuf, Image)> = Vec::new();
    for (p, im) in loaded {
        match im.fit(size, fit, problem.task.size_multiple()) {
            Ok(x) => truth.push((p, x)),
            Err(e) => {
                eprintln!("skipping {}: {e}", p.display());
                failed.push(name_of(&p));
            }
        }
    }
    let mut csv = open_csv(&out, resume && !done.is_empty())?;
    let mut rows: Vec<Row> = Vec::new();
    let t0 = std::time::Instant::now();
    // Batches of consecutive images of one size (all images are the model's size unless --fit tile keeps
    // larger ones whole).
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
        let (bar, cb, _) = progress(evaluations(&problem));
        // Noise keyed by file name: an image's result does not depend on --batch, --shard or --limit.
        let mut problem = problem.clone();
        problem.opts.image_keys = chunk.iter().map(|(f, _)| image_key_of(f)).collect();
        let o = reddiff::gpu::block_on(restore_synthetic(&gpu, &unet, &problem, &images, cb))?;
        bar.finish_and_clear();
        for (k, (f, x)) in chunk.iter().enumerate() {
            let (pp, ps) = match &o.pinv[k] {
                Some(p) => (psnr(x, p)?, ssim(x, p)?),
                None => (f64::NAN, f64::NAN),
            };
            let row = (name_of(f), pp, ps, psnr(x, &o.result[k])?, ssim(x, &o.result[k])?);
            let line = format!(
                "{},{},{},{},{:.4},{:.4},{:.4},{:.4}\n",
                csv_field(&row.0),
                csv_field(&args.task),
                args.method,
                problem.opts.steps,
                row.1,
                row.2,
                row.3,
                row.4
            );
            csv.write_all(line.as_bytes()).and_then(|_| csv.flush()).map_err(|source| Error::Io { path: out.clone(), source })?;
            rows.push(row);
        }
        eprintln!("{}/{} images", rows.len(), todo.len());
    }
    let secs = t0.elapsed().as_secs_f64();
    if !rows.is_empty() {
        let mean = |f: fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / rows.len() as f64;
        say!("| task | method | images | steps | PSNR H+y | SSIM H+y | PSNR | SSIM | s/image | peak MiB |");
        say!("|---|---|---|---|---|---|---|---|---|---|");
        say!(
            "| {} | {} | {} | {} | {:.2} | {:.4} | {:.2} | {:.4} | {:.1} | {:.0} |",
            args.task,
            args.method,
            rows.len(),
            problem.opts.steps,
            mean(|r| r.1),
            mean(|r| r.2),
            mean(|r| r.3),
            mean(|r| r.4),
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

/// The eval CSV, opened for appending (`append`) or created afresh with its header.
fn open_csv(path: &Path, append: bool) -> Result<std::fs::File> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    if append {
        return std::fs::OpenOptions::new().append(true).open(path).map_err(io);
    }
    let mut f = std::fs::File::create(path).map_err(io)?;
    writeln!(f, "{CSV_HEADER}").map_err(io)?;
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
    /// Evaluate RED-diff and the H+y baseline on a folder of clean images: per-image PSNR/SSIM to a CSV and
    /// a mean table on stdout.
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
        /// (without it the CSV starts afresh). Every finished image is written at once either way.
        #[arg(long)]
        resume: bool,
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
        Command::Eval { solve, images, out, shard, limit, batch, resume } => eval(solve, images, out, shard, limit, batch, resume),
        Command::Info { model } => Gpu::new().and_then(|g| load(&g, model)).map(|m| say!("{}", m.info())),
        Command::Eps { model, input, output } => eps(model, &input, &output),
        Command::Sample { model, n, steps, eta, seed, noise, class, output } => sample(model, n, steps, eta, seed, noise, class, &output),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
