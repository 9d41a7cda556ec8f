//! The wasm-bindgen API for the browser demo (`web/`): create the WebGPU context, load a model from bytes
//! (asynchronously, with progress), look up the settings a run will use (the model's recommended.json),
//! run a restoration with progress and preview callbacks, cancel, report memory. Every error becomes a
//! rejected promise or a thrown JS `Error` with the message; nothing panics across this boundary.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

use js_sys::{Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuOptions};
use crate::image::{Fit, Image, MAX_PIXELS};
use crate::metrics::psnr;
use crate::model::Unet;
use crate::operators::{Task, TaskKind};
use crate::ops::TileGrid;
use crate::recommended::{resolve, Choices, Recommended, Resolved};
use crate::restore::{planned_size, restore_image, Problem};
use crate::solvers::{Method, RedDiffOptions, StepInfo};

struct Inner {
    gpu: Gpu,
    model: RefCell<Option<Rc<Unet>>>,
    /// The loaded model's recommended.json, if it came with one.
    recommended: RefCell<Option<Recommended>>,
    cancel: Cell<bool>,
    /// A model load is in progress.
    loading: Cell<bool>,
    /// A restoration is in progress.
    running: Cell<bool>,
}

/// Holds one of [`Inner`]'s in-progress flags set while it lives, whichever way the work ends.
struct Busy<'a>(&'a Cell<bool>);

impl<'a> Busy<'a> {
    /// Sets `flag`, or refuses with `msg` when it is already set.
    fn take(flag: &'a Cell<bool>, msg: &str) -> std::result::Result<Busy<'a>, JsValue> {
        if flag.replace(true) {
            return Err(js_err(msg));
        }
        Ok(Busy(flag))
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// The reddiff engine in a web page.
#[wasm_bindgen]
pub struct Reddiff {
    inner: Rc<Inner>,
}

fn js_err(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

/// RGBA bytes (width×height×4) → RGB image in [-1, 1], alpha composited on white.
fn from_rgba(bytes: &[u8], width: usize, height: usize, what: &str) -> Result<Image> {
    if bytes.len() != width * height * 4 {
        return Err(Error::Invalid {
            op: "restore",
            msg: format!("{what} must be {width}x{height} RGBA ({} bytes), got {} bytes", width * height * 4, bytes.len()),
        });
    }
    let hw = width * height;
    let mut data = vec![0f32; 3 * hw];
    for p in 0..hw {
        let a = bytes[4 * p + 3] as f32 / 255.0;
        for c in 0..3 {
            data[c * hw + p] = (bytes[4 * p + c] as f32 / 255.0 * a + 1.0 - a) * 2.0 - 1.0;
        }
    }
    Image::new(3, height, width, data)
}

/// `img` enlarged by nearest neighbour to `height` rows when that is a whole multiple of its own (the
/// measurement of SR shown at the result's size), as RGB (gray replicated).
fn shown_at(img: &Image, height: usize) -> Image {
    let f = if img.height > 0 && height % img.height == 0 { height / img.height } else { 1 };
    if f > 1 { img.upscale_nearest(f) } else { img.clone() }.to_rgb()
}

/// An RGB image as RGBA bytes at its own size.
fn to_rgba(img: &Image) -> Vec<u8> {
    let img = img.to_rgb();
    let hw = img.height * img.width;
    let mut out = Vec::with_capacity(hw * 4);
    for p in 0..hw {
        for c in 0..3 {
            out.push(((img.data[c * hw + p].clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8);
        }
        out.push(255);
    }
    out
}

/// The image's width and height from `opts` (absent: the model's `size`, square), checked: whole numbers,
/// at most [`MAX_PIXELS`] pixels.
fn image_dims(opts: &JsValue, size: usize) -> Result<(usize, usize)> {
    let side = |key: &str| match get_f64(opts, key) {
        None => Ok(size),
        Some(v) if v.fract() == 0.0 && (1.0..=MAX_PIXELS as f64).contains(&v) => Ok(v as usize),
        Some(v) => Err(Error::Invalid { op: "restore", msg: format!("{key} must be a whole number of pixels, got {v}") }),
    };
    let (w, h) = (side("width")?, side("height")?);
    if (w as u64) * (h as u64) > MAX_PIXELS {
        return Err(Error::Invalid { op: "restore", msg: format!("the image is {w}x{h}; the page restores images of up to {} megapixels", MAX_PIXELS >> 20) });
    }
    Ok((w, h))
}

/// Network inputs per step for a working size of `hw` with a model of `size`: 1 at the model's size, else
/// the tiles.
fn tiles(hw: (usize, usize), size: usize) -> Result<usize> {
    Ok(if hw == (size, size) { 1 } else { TileGrid::for_model(hw.0, hw.1, size)?.tiles() })
}

fn get_bool(opts: &JsValue, key: &str) -> bool {
    Reflect::get(opts, &JsValue::from_str(key)).ok().and_then(|v| v.as_bool()).unwrap_or(false)
}

fn get_f64(opts: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(opts, &JsValue::from_str(key)).ok().and_then(|v| v.as_f64())
}

fn get_string(opts: &JsValue, key: &str) -> Option<String> {
    Reflect::get(opts, &JsValue::from_str(key)).ok().and_then(|v| v.as_string())
}

/// What [`Reddiff::settings_for`] returns for `r`.
fn settings_object(r: &Resolved) -> Object {
    let o = Object::new();
    set(&o, "method", &JsValue::from_str(r.method.name()));
    set(&o, "label", &JsValue::from_str(r.method.label()));
    set(&o, "steps", &JsValue::from(r.steps as u32));
    set(&o, "lambda", &JsValue::from(r.lambda));
    set(&o, "lr", &JsValue::from(r.lr));
    set(&o, "recommended", &JsValue::from(r.from.is_some()));
    if let Some(s) = &r.from {
        set(&o, "psnr", &JsValue::from(s.psnr));
        set(&o, "images", &JsValue::from(s.images as u32));
    }
    o
}

/// The method, steps, λ and lr given in `opts` (absent, null, or method "auto": not given), checked.
fn choices(opts: &JsValue) -> Result<Choices> {
    let method = match get_string(opts, "method").as_deref() {
        None | Some("auto") | Some("") => None,
        Some(m) => Some(m.parse::<Method>()?),
    };
    let bad = |what: &str, v: f64| Error::Invalid {
        op: "restore",
        msg: format!("{what} must be {}, got {v}", if what == "steps" { "a whole number from 1 to 100000" } else { "a positive number" }),
    };
    let steps = match get_f64(opts, "steps") {
        Some(v) if v.fract() == 0.0 && (1.0..=100_000.0).contains(&v) => Some(v as usize),
        Some(v) => return Err(bad("steps", v)),
        None => None,
    };
    let lambda = match get_f64(opts, "lambda") {
        Some(v) if v >= 0.0 && v.is_finite() => Some(v as f32),
        Some(v) => return Err(bad("lambda", v)),
        None => None,
    };
    let lr = match get_f64(opts, "lr") {
        Some(v) if v > 0.0 && v.is_finite() => Some(v as f32),
        Some(v) => return Err(bad("lr", v)),
        None => None,
    };
    Ok(Choices { method, steps, lambda, lr })
}

fn set(obj: &Object, key: &str, v: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), v);
}

impl Reddiff {
    /// The settings for `task` with the choices in `opts` and the loaded model's recommendation.
    fn resolve(&self, task: &Task, opts: &JsValue) -> Result<Resolved> {
        let sigma_y = get_f64(opts, "sigmaY").unwrap_or(0.0) as f32;
        resolve(choices(opts)?, task, sigma_y, self.inner.recommended.borrow().as_ref())
    }
}

#[wasm_bindgen]
impl Reddiff {
    /// Opens the WebGPU adapter. `kernels`: "cpu" (register-blocked) or "gpu" (workgroup-tiled) forces a
    /// kernel family; anything else chooses by device type. Rejects with an explanation when WebGPU is
    /// missing.
    pub async fn create(kernels: Option<String>) -> std::result::Result<Reddiff, JsValue> {
        let profile = match kernels.as_deref() {
            Some("cpu") => Some(crate::gpu::KernelProfile::RegisterBlocked),
            Some("gpu") => Some(crate::gpu::KernelProfile::Tiled),
            _ => None,
        };
        let gpu = Gpu::with_options(GpuOptions { profile, ..GpuOptions::default() }).await.map_err(|e| match e {
            Error::NoAdapter { .. } => js_err(
                "WebGPU is not available in this browser. Use Chrome or Edge 113+ (or enable chrome://flags/#enable-unsafe-webgpu), \
                 Firefox Nightly with dom.webgpu.enabled, or Safari Technology Preview.",
            ),
            other => js_err(other),
        })?;
        Ok(Reddiff {
            inner: Rc::new(Inner {
                gpu,
                model: RefCell::new(None),
                recommended: RefCell::new(None),
                cancel: Cell::new(false),
                loading: Cell::new(false),
                running: Cell::new(false),
            }),
        })
    }

    /// The adapter's name, backend, limits and features.
    #[wasm_bindgen(js_name = adapterInfo)]
    pub fn adapter_info(&self) -> String {
        self.inner.gpu.adapter().to_string()
    }

    /// Loads a model from its config.json text, safetensors bytes and (optional) recommended.json text;
    /// resolves to its summary. Asynchronous: the weights are converted and checked one tensor at a time,
    /// yielding to the page in between and calling `on_progress(fraction)` (0 … 1); the host never holds
    /// the model in f32, and F16 convolution weights stay f16 on the GPU where the adapter has shader-f16.
    /// On error the previously loaded model stays. Rejects while another load or a restoration runs.
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(&self, config_json: String, weights: Vec<u8>, recommended_json: Option<String>, on_progress: Option<Function>) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            if inner.running.get() {
                return Err(js_err("a restoration is running: cancel it or wait for it before loading a model"));
            }
            let busy = Busy::take(&inner.loading, "a model is already loading")?;
            let loaded = async {
                let rec = recommended_json.map(|t| Recommended::parse(&t, Path::new("recommended.json"))).transpose()?;
                let progress = |f: f64| {
                    if let Some(cb) = &on_progress {
                        let _ = cb.call1(&JsValue::NULL, &JsValue::from(f));
                    }
                };
                let m =
                    Unet::from_bytes_async(&inner.gpu, Path::new("config.json"), &config_json, Path::new("weights.safetensors"), &weights, progress).await?;
                Ok::<_, Error>((m, rec))
            }
            .await;
            drop(busy);
            let (m, rec) = loaded.map_err(js_err)?;
            let info = m.info().to_string();
            *inner.model.borrow_mut() = Some(Rc::new(m));
            *inner.recommended.borrow_mut() = rec;
            // The raw f32 weights went back to the pool after packing: release them.
            inner.gpu.trim_pool();
            Ok(JsValue::from(info))
        })
    }

    /// Memory in bytes: {gpu (reddiff's buffer pool now), gpuPeak, wasm (the module's linear memory)}.
    pub fn memory(&self) -> JsValue {
        let (now, peak) = self.inner.gpu.memory();
        let o = Object::new();
        set(&o, "gpu", &JsValue::from(now as f64));
        set(&o, "gpuPeak", &JsValue::from(peak as f64));
        set(&o, "wasm", &JsValue::from((core::arch::wasm32::memory_size(0) * 65536) as f64));
        o.into()
    }

    /// The settings a run of `task` with `opts` (as for [`Reddiff::restore`]) will use: {method (CLI
    /// name), label, steps, lambda, lr, recommended (whether the model's recommended.json filled any),
    /// psnr and images (the recommendation's held-out mean, when used)}; throws when the method cannot run
    /// the task.
    #[wasm_bindgen(js_name = settingsFor)]
    pub fn settings_for(&self, task: String, opts: JsValue) -> std::result::Result<JsValue, JsValue> {
        let kind = if task == "inpaint-mask" { TaskKind::InpaintMaskData(Vec::new()) } else { task.parse::<TaskKind>().map_err(js_err)? };
        let r = self.resolve(&Task { kind, seed: 0 }, &opts).map_err(js_err)?;
        Ok(settings_object(&r).into())
    }

    /// The loaded model's resolution in pixels (0 when none is loaded).
    #[wasm_bindgen(js_name = imageSize)]
    pub fn image_size(&self) -> usize {
        self.inner.model.borrow().as_ref().map(|m| m.info().image_size).unwrap_or(0)
    }

    /// Stops a running restoration after the current step.
    pub fn cancel(&self) {
        self.inner.cancel.set(true);
    }

    /// What a run of `task` on a `width`×`height` image makes (`measured`: the image is the measurement,
    /// as for [`Reddiff::restore`]): {width, height (the restored image's), workingWidth, workingHeight
    /// (what the solver works at: larger where a side shorter than the model's is reflected out to it),
    /// tiles (network inputs per step: 1 at the model's size, else the overlapping model-size tiles)}.
    /// Throws when no model is loaded.
    pub fn plan(&self, task: String, width: usize, height: usize, measured: bool) -> std::result::Result<JsValue, JsValue> {
        let size = self.image_size();
        if size == 0 {
            return Err(js_err("no model loaded"));
        }
        let kind = if task == "inpaint-mask" { TaskKind::InpaintMaskData(Vec::new()) } else { task.parse::<TaskKind>().map_err(js_err)? };
        let plan = planned_size(&Task { kind, seed: 0 }, height, width, size, Fit::Tile, measured).map_err(js_err)?;
        let o = Object::new();
        set(&o, "width", &JsValue::from(plan.result.1 as u32));
        set(&o, "height", &JsValue::from(plan.result.0 as u32));
        set(&o, "workingWidth", &JsValue::from(plan.working.1 as u32));
        set(&o, "workingHeight", &JsValue::from(plan.working.0 as u32));
        set(&o, "tiles", &JsValue::from(tiles(plan.working, size).map_err(js_err)? as u32));
        Ok(o.into())
    }

    /// Restores `image` (RGBA, `opts.width`×`opts.height`, default the model's size): with `opts.measured`
    /// the image is the measurement y (a real low-resolution, noisy, gray or masked photo), else it is
    /// degraded with `task` first. Images are restored whole: larger than the model on overlapping tiles, a
    /// side shorter than the model's (or not a multiple of the task's block) reflected out and cut back
    /// (see [`Reddiff::plan`]). `mask` (inpaint-mask): RGBA of the image's size, black = missing. `opts`
    /// also: {method ("reddiff" | "diffpir" | "ddrm" | "dps" | "pgdm"; absent, null or "auto": the model's
    /// recommendation), steps, lambda, lr (absent or null: the recommendation's, else the paper's), seed,
    /// sigmaY, previewEvery, imageName (keys the noise, as the CLI does with the file name)}. Calls
    /// `on_progress(step, steps, t)` every step and `on_preview(rgba, width, height)` every previewEvery
    /// steps (RED-diff). Resolves to {result, width, height, input, inputWidth, inputHeight, measurement
    /// and pinv (RGBA of the result's size), psnrMeasurement and psnrResult (against the clean image; null
    /// with measured), tiles, msPerStep, settings (as [`Reddiff::settings_for`])}. Rejects while another
    /// restoration or a model load runs.
    pub fn restore(&self, task: String, image: Vec<u8>, mask: Option<Vec<u8>>, opts: JsValue, on_progress: Function, on_preview: Function) -> js_sys::Promise {
        let inner = self.inner.clone();
        if !inner.running.get() {
            inner.cancel.set(false);
        }
        wasm_bindgen_futures::future_to_promise(async move {
            let _busy = Busy::take(&inner.running, "a restoration is already running: cancel it or wait for it")?;
            if inner.loading.get() {
                return Err(js_err("a model is loading: wait for it before restoring"));
            }
            let model = inner.model.borrow().clone().ok_or_else(|| js_err("no model loaded"))?;
            let size = model.info().image_size;
            let (width, height) = image_dims(&opts, size).map_err(js_err)?;
            let measured = get_bool(&opts, "measured");
            let input = from_rgba(&image, width, height, "image").map_err(js_err)?;
            let kind = if task == "inpaint-mask" {
                let m = mask.ok_or_else(|| js_err("inpaint-mask needs a painted mask"))?;
                let keep = from_rgba(&m, width, height, "mask").map_err(js_err)?;
                let hw = width * height;
                TaskKind::InpaintMaskData((0..hw).map(|p| if keep.data[p] + keep.data[hw + p] + keep.data[2 * hw + p] > 0.0 { 1.0 } else { 0.0 }).collect())
            } else {
                task.parse::<TaskKind>().map_err(js_err)?
            };
            let seed = get_f64(&opts, "seed").unwrap_or(0.0).max(0.0) as u64;
            let task = Task { kind, seed };
            let sigma_y = get_f64(&opts, "sigmaY").unwrap_or(0.0) as f32;
            if !(0.0..=1.0).contains(&sigma_y) {
                return Err(js_err("sigmaY must be in [0, 1]"));
            }
            // A clear refusal (nonlinear task, no SVD, bad steps) before any GPU work.
            let r = choices(&opts).and_then(|c| resolve(c, &task, sigma_y, inner.recommended.borrow().as_ref())).map_err(js_err)?;
            let settings = settings_object(&r);
            let method = r.method;
            let opts = RedDiffOptions {
                steps: r.steps,
                lr: r.lr,
                lambda: r.lambda,
                seed,
                preview_every: get_f64(&opts, "previewEvery").unwrap_or(0.0).max(0.0) as usize,
                image_keys: vec![crate::ops::image_key(&get_string(&opts, "imageName").unwrap_or_default())],
                ..RedDiffOptions::default()
            };
            let problem = Problem { task, sigma_y, opts, class: None, method };
            let start = js_sys::Date::now();
            let mut last_step = 0usize;
            let cb = |s: &StepInfo| {
                last_step = s.step;
                let _ = on_progress.call3(&JsValue::NULL, &JsValue::from(s.step as u32), &JsValue::from(s.steps as u32), &JsValue::from(s.t as u32));
                if let Some(p) = s.preview.and_then(|p| p.first()) {
                    let rgba = Uint8Array::from(to_rgba(p).as_slice());
                    let _ = on_preview.call3(&JsValue::NULL, &rgba, &JsValue::from(p.width as u32), &JsValue::from(p.height as u32));
                }
                !inner.cancel.get()
            };
            let (out, truth) = restore_image(&inner.gpu, &model, &problem, &input, Fit::Tile, measured, cb).await.map_err(js_err)?;
            let plan = planned_size(&problem.task, height, width, size, Fit::Tile, measured).map_err(js_err)?;
            let ms = (js_sys::Date::now() - start) / last_step.max(1) as f64;
            let result = &out.result[0];
            let (h, w) = (result.height, result.width);
            let shown = shown_at(&out.measurement[0], h);
            let o = Object::new();
            set(&o, "result", &Uint8Array::from(to_rgba(result).as_slice()).into());
            set(&o, "width", &JsValue::from(w as u32));
            set(&o, "height", &JsValue::from(h as u32));
            // What the run started from: the clean image as fitted, or the measurement.
            let shown_input = truth.as_ref().unwrap_or(&out.measurement[0]);
            set(&o, "input", &Uint8Array::from(to_rgba(shown_input).as_slice()).into());
            set(&o, "inputWidth", &JsValue::from(shown_input.width as u32));
            set(&o, "inputHeight", &JsValue::from(shown_input.height as u32));
            set(&o, "measurement", &Uint8Array::from(to_rgba(&shown).as_slice()).into());
            let pinv = out.pinv[0].as_ref().map(|p| shown_at(p, h)).unwrap_or_else(|| shown.clone());
            set(&o, "pinv", &Uint8Array::from(to_rgba(&pinv).as_slice()).into());
            let (pm, pr) = match &truth {
                None => (JsValue::NULL, JsValue::NULL),
                // The measurement's picture is the result's size except where a side shorter than one SR
                // block was kept: no PSNR for it then.
                Some(t) => (psnr(t, &shown).map(JsValue::from).unwrap_or(JsValue::NULL), JsValue::from(psnr(t, result).map_err(js_err)?)),
            };
            set(&o, "psnrMeasurement", &pm);
            set(&o, "psnrResult", &pr);
            set(&o, "tiles", &JsValue::from(tiles(plan.working, size).map_err(js_err)? as u32));
            set(&o, "msPerStep", &JsValue::from(ms));
            set(&o, "settings", &settings);
            Ok(o.into())
        })
    }
}
