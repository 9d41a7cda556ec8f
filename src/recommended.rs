//! Settings that fit a model: `recommended.json` in a model directory, written by `reddiff eval --sweep`,
//! holds per task the best settings found on held-out images for each method tried, and marks the best of
//! them. `restore`, `eval`, [`Restorer`] and the web page use them for whatever the user leaves unset (see
//! [`resolve`]); without the file (or with `--paper-defaults`) the paper's defaults apply (RED-diff, 1000
//! steps, λ 0.25, lr 0.25 for inpainting and 0.5 otherwise; the baselines at their authors' settings).
//!
//! The format (version 1):
//!
//! ```json
//! {
//!   "format": 1,
//!   "note": "how and on what the settings were chosen",
//!   "settings": [
//!     {"task": "inpaint-box", "sigma_y": 0.0, "method": "reddiff", "best": true, "steps": 200, "lambda": 0.25,
//!      "lr": 0.25, "images": 8, "psnr": 27.1, "ssim": 0.91, "seconds_per_image": 3.1},
//!     {"task": "inpaint-box", "sigma_y": 0.0, "method": "ddrm", "best": false, "steps": 20, "lambda": null,
//!      "lr": null, "images": 8, "psnr": 23.2, "ssim": 0.77, "seconds_per_image": 0.5}
//!   ]
//! }
//! ```
//!
//! `task` is the CLI's task name without file arguments (`inpaint-box`, `sr4`, `jpeg=10`, `inpaint-mask`);
//! `sigma_y` the measurement noise the setting was chosen at — a setting applies only to runs with that σ_y;
//! one setting per (task, σ_y, method), at most one of them `best`; `lambda` and `lr` are RED-diff's (null for
//! the baselines, which run at their authors' settings apart from `steps`); `psnr`, `ssim` and
//! `seconds_per_image` are means over `images` held-out images, for information.
//!
//! [`Restorer`]: crate::Restorer

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::operators::Task;
use crate::solvers::Method;

/// The file name inside a model directory.
pub const FILE_NAME: &str = "recommended.json";

/// How close two σ_y must be for a setting to apply (pixel units).
const SIGMA_TOLERANCE: f32 = 1e-4;

/// The chosen settings for one task at one σ_y.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    /// The task's CLI name without file arguments ([`Task::kind_name`]).
    pub task: String,
    /// Measurement noise σ_y (pixel units in [0, 1]) the setting was chosen at.
    pub sigma_y: f32,
    /// The method.
    pub method: Method,
    /// The best of the task's settings (what runs when the user names no method).
    pub best: bool,
    /// Iterations (network evaluations for RED-diff).
    pub steps: usize,
    /// RED-diff's λ (None for the baselines).
    pub lambda: Option<f32>,
    /// RED-diff's Adam learning rate (None for the baselines).
    pub lr: Option<f32>,
    /// Held-out images the means were taken over.
    pub images: usize,
    /// Mean PSNR (dB) on those images.
    pub psnr: f64,
    /// Mean SSIM on those images.
    pub ssim: f64,
    /// Wall time per image (s) on the machine that ran the sweep.
    pub seconds_per_image: f64,
}

/// A model's `recommended.json`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recommended {
    /// How and on what the settings were chosen (free text).
    pub note: String,
    /// One entry per (task, σ_y, method).
    pub settings: Vec<Setting>,
}

/// What the user gave explicitly; `None` = not given (filled from the recommendation, else the paper).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Choices {
    /// `--method`.
    pub method: Option<Method>,
    /// `--steps`.
    pub steps: Option<usize>,
    /// `--lambda`.
    pub lambda: Option<f32>,
    /// `--lr`.
    pub lr: Option<f32>,
}

/// Settings after filling the unset choices.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// The method.
    pub method: Method,
    /// Iterations, checked against the method's range.
    pub steps: usize,
    /// RED-diff's λ.
    pub lambda: f32,
    /// RED-diff's Adam learning rate.
    pub lr: f32,
    /// The recommendation used for the unset choices, if any.
    pub from: Option<Setting>,
}

/// RED-diff's step count when neither the user nor a recommendation gives one (the paper's).
pub const PAPER_STEPS: usize = 1000;
/// RED-diff's λ when neither the user nor a recommendation gives one (the paper's).
pub const PAPER_LAMBDA: f32 = 0.25;

fn bad(origin: &Path, msg: impl Into<String>) -> Error {
    Error::Format { path: origin.into(), msg: msg.into() }
}

fn opt_f32(v: &Value, key: &str, origin: &Path) -> Result<Option<f32>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_f64() {
            Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as f32)),
            _ => Err(bad(origin, format!("'{key}' must be a non-negative number or null, got {x}"))),
        },
    }
}

fn num(v: &Value, key: &str, origin: &Path) -> Result<f64> {
    v.get(key).and_then(Value::as_f64).ok_or_else(|| bad(origin, format!("a setting lacks the number '{key}'")))
}

impl Setting {
    fn from_json(v: &Value, origin: &Path) -> Result<Setting> {
        let task = v.get("task").and_then(Value::as_str).ok_or_else(|| bad(origin, "a setting lacks its 'task' name"))?.to_string();
        let method: Method = v
            .get("method")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(origin, format!("the setting for {task} lacks 'method'")))?
            .parse()
            .map_err(|e: Error| bad(origin, format!("the setting for {task}: {e}")))?;
        let steps = v
            .get("steps")
            .and_then(Value::as_u64)
            .filter(|s| (1..=100_000).contains(s))
            .ok_or_else(|| bad(origin, format!("the setting for {task} needs 'steps' from 1 to 100000")))?;
        let sigma_y = opt_f32(v, "sigma_y", origin)?.unwrap_or(0.0);
        if sigma_y > 1.0 {
            return Err(bad(origin, format!("the setting for {task} has sigma_y {sigma_y} outside [0, 1]")));
        }
        let lr = opt_f32(v, "lr", origin)?;
        if lr == Some(0.0) {
            return Err(bad(origin, format!("the setting for {task} has lr 0")));
        }
        Ok(Setting {
            best: v.get("best").and_then(Value::as_bool).unwrap_or(false),
            task,
            sigma_y,
            method,
            steps: steps as usize,
            lambda: opt_f32(v, "lambda", origin)?,
            lr,
            images: v.get("images").and_then(Value::as_u64).unwrap_or(0) as usize,
            psnr: num(v, "psnr", origin).unwrap_or(f64::NAN),
            ssim: num(v, "ssim", origin).unwrap_or(f64::NAN),
            seconds_per_image: num(v, "seconds_per_image", origin).unwrap_or(f64::NAN),
        })
    }

    fn to_json(&self) -> Value {
        let finite = |f: f64| if f.is_finite() { json!((f * 10_000.0).round() / 10_000.0) } else { Value::Null };
        json!({
            "task": self.task,
            "sigma_y": self.sigma_y,
            "method": self.method.name(),
            "best": self.best,
            "steps": self.steps,
            "lambda": self.lambda,
            "lr": self.lr,
            "images": self.images,
            "psnr": finite(self.psnr),
            "ssim": finite(self.ssim),
            "seconds_per_image": finite(self.seconds_per_image),
        })
    }
}

impl Recommended {
    /// Parses the text of a `recommended.json`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Recommended> {
        let v: Value = serde_json::from_str(text).map_err(|e| bad(origin, format!("not valid JSON: {e}")))?;
        match v.get("format").and_then(Value::as_u64) {
            Some(1) => {}
            other => return Err(bad(origin, format!("unknown format {other:?}; this reddiff reads format 1"))),
        }
        let list = v.get("settings").and_then(Value::as_array).ok_or_else(|| bad(origin, "no 'settings' list"))?;
        let settings = list.iter().map(|s| Setting::from_json(s, origin)).collect::<Result<Vec<_>>>()?;
        for (i, a) in settings.iter().enumerate() {
            let same = |b: &&Setting| b.task == a.task && (b.sigma_y - a.sigma_y).abs() <= SIGMA_TOLERANCE;
            if settings[..i].iter().filter(same).any(|b| b.method == a.method) {
                return Err(bad(origin, format!("two {} settings for {} at sigma_y {}", a.method.label(), a.task, a.sigma_y)));
            }
            if a.best && settings[..i].iter().filter(same).any(|b| b.best) {
                return Err(bad(origin, format!("two best settings for {} at sigma_y {}", a.task, a.sigma_y)));
            }
        }
        Ok(Recommended { note: v.get("note").and_then(Value::as_str).unwrap_or("").to_string(), settings })
    }

    /// The file's text (pretty-printed, one setting per entry, in the stored order).
    pub fn to_json(&self) -> String {
        let v = json!({
            "format": 1,
            "note": self.note,
            "settings": self.settings.iter().map(Setting::to_json).collect::<Vec<_>>(),
        });
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    }

    /// Reads `dir/recommended.json`; `Ok(None)` when the model directory has none.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_dir(dir: &Path) -> Result<Option<Recommended>> {
        let path = dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Recommended::parse(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    /// The built-in prior's recommendations (`models/emoji32/recommended.json`, embedded); `None` in builds
    /// without the cargo feature `builtin-model`.
    pub fn builtin() -> Result<Option<Recommended>> {
        #[cfg(feature = "builtin-model")]
        return Recommended::parse(crate::builtin::RECOMMENDED_JSON, "builtin/recommended.json".as_ref()).map(Some);
        #[cfg(not(feature = "builtin-model"))]
        Ok(None)
    }

    /// The best setting for `task` at noise `sigma_y`, if the sweep chose one.
    pub fn best(&self, task: &Task, sigma_y: f32) -> Option<&Setting> {
        self.of_task(task, sigma_y).find(|s| s.best)
    }

    /// The setting of `method` for `task` at noise `sigma_y`, if the sweep tried that method.
    pub fn for_method(&self, task: &Task, sigma_y: f32, method: Method) -> Option<&Setting> {
        self.of_task(task, sigma_y).find(|s| s.method == method)
    }

    fn of_task(&self, task: &Task, sigma_y: f32) -> impl Iterator<Item = &Setting> {
        let name = task.kind_name();
        self.settings.iter().filter(move |s| s.task == name && (s.sigma_y - sigma_y).abs() <= SIGMA_TOLERANCE)
    }

    /// Replaces every setting of `settings`' tasks (at their σ_y) by `settings`.
    pub fn replace_task(&mut self, settings: Vec<Setting>) {
        self.settings.retain(|o| !settings.iter().any(|s| s.task == o.task && (s.sigma_y - o.sigma_y).abs() <= SIGMA_TOLERANCE));
        self.settings.extend(settings);
    }
}

/// Fills the choices the user left unset. The method: the user's; else, when the user gave no other option
/// either, the task's best setting's; else RED-diff. Then steps, λ and lr: the user's; else that method's
/// setting for the task; else the paper's defaults. Finally checks that the method can run the task with
/// that many steps.
pub fn resolve(choices: Choices, task: &Task, sigma_y: f32, rec: Option<&Recommended>) -> Result<Resolved> {
    let nothing_else = choices.steps.is_none() && choices.lambda.is_none() && choices.lr.is_none();
    let best = rec.and_then(|r| r.best(task, sigma_y)).filter(|_| nothing_else).map(|s| s.method);
    let method = choices.method.or(best).unwrap_or(Method::RedDiff);
    let from = rec.and_then(|r| r.for_method(task, sigma_y, method)).cloned();
    let steps = method.steps_for(task, sigma_y, choices.steps.or(from.as_ref().map(|s| s.steps)), PAPER_STEPS)?;
    let lambda = choices.lambda.or(from.as_ref().and_then(|s| s.lambda)).unwrap_or(PAPER_LAMBDA);
    let lr = choices.lr.or(from.as_ref().and_then(|s| s.lr)).unwrap_or(task.default_lr());
    // A setting whose every field the user gave contributed nothing.
    let used = |s: &Setting| choices.steps.is_none() || (s.method == Method::RedDiff && (choices.lambda.is_none() || choices.lr.is_none()));
    Ok(Resolved { method, steps, lambda, lr, from: from.filter(used) })
}
