//! The wasm-bindgen API for the browser demo (`web/`): create the WebGPU context, load a model from bytes,
//! run a restoration with progress and preview callbacks, cancel. Every error becomes a rejected promise or
//! a thrown JS `Error` with the message; nothing panics across this boundary.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

use js_sys::{Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuOptions};
use crate::image::Image;
use crate::metrics::psnr;
use crate::model::Unet;
use crate::operators::{Task, TaskKind};
use crate::restore::{restore_synthetic, Problem};
use crate::solvers::{RedDiffOptions, StepInfo};

struct Inner {
    gpu: Gpu,
    model: RefCell<Option<Rc<Unet>>>,
    cancel: Cell<bool>,
}

/// The reddiff engine in a web page.
#[wasm_bindgen]
pub struct Reddiff {
    inner: Rc<Inner>,
}

fn js_err(e: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&e.to_string()).into()
}

/// RGBA bytes (size×size×4) → RGB image in [-1, 1], alpha composited on white.
fn from_rgba(bytes: &[u8], size: usize, what: &str) -> Result<Image> {
    if bytes.len() != size * size * 4 {
        return Err(Error::Invalid { op: "restore", msg: format!("{what} must be {size}x{size} RGBA ({} bytes), got {} bytes", size * size * 4, bytes.len()) });
    }
    let hw = size * size;
    let mut data = vec![0f32; 3 * hw];
    for p in 0..hw {
        let a = bytes[4 * p + 3] as f32 / 255.0;
        for c in 0..3 {
            data[c * hw + p] = (bytes[4 * p + c] as f32 / 255.0 * a + 1.0 - a) * 2.0 - 1.0;
        }
    }
    Image::new(3, size, size, data)
}

/// An image of any size shown as size×size RGBA (nearest-neighbour upscaling, gray replicated).
fn to_rgba(img: &Image, size: usize) -> Vec<u8> {
    let f = (size / img.height.max(1)).max(1);
    let big = if f > 1 { img.upscale_nearest(f) } else { img.clone() }.to_rgb();
    let hw = big.height * big.width;
    let mut out = Vec::with_capacity(hw * 4);
    for p in 0..hw {
        for c in 0..3 {
            out.push(((big.data[c * hw + p].clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8);
        }
        out.push(255);
    }
    out
}

fn get_f64(opts: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(opts, &JsValue::from_str(key)).ok().and_then(|v| v.as_f64())
}

fn get_string(opts: &JsValue, key: &str) -> Option<String> {
    Reflect::get(opts, &JsValue::from_str(key)).ok().and_then(|v| v.as_string())
}

fn set(obj: &Object, key: &str, v: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), v);
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
        Ok(Reddiff { inner: Rc::new(Inner { gpu, model: RefCell::new(None), cancel: Cell::new(false) }) })
    }

    /// The adapter's name, backend, limits and features.
    #[wasm_bindgen(js_name = adapterInfo)]
    pub fn adapter_info(&self) -> String {
        self.inner.gpu.adapter().to_string()
    }

    /// Loads a model from its config.json text and safetensors bytes; returns its summary. On error the
    /// previously loaded model stays.
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(&self, config_json: &str, weights: &[u8]) -> std::result::Result<String, JsValue> {
        let m = Unet::from_bytes(&self.inner.gpu, Path::new("config.json"), config_json, Path::new("weights.safetensors"), weights).map_err(js_err)?;
        let info = m.info().to_string();
        *self.inner.model.borrow_mut() = Some(Rc::new(m));
        Ok(info)
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

    /// Degrades `image` (size×size RGBA) with `task` and restores it with RED-diff or DiffPIR. `opts`: {method
    /// ("reddiff" | "diffpir" | "ddrm" | "dps" | "pgdm"), steps, lr (null = task default), lambda, seed, sigmaY, previewEvery, imageName
    /// (keys the noise, as the CLI does with the file name)}. Calls `on_progress(step, steps, t)` every step and
    /// `on_preview(rgba)` every previewEvery steps (RED-diff). Resolves to {result, measurement, pinv (RGBA),
    /// psnrMeasurement, psnrResult, msPerStep}.
    pub fn restore(&self, task: String, image: Vec<u8>, mask: Option<Vec<u8>>, opts: JsValue, on_progress: Function, on_preview: Function) -> js_sys::Promise {
        let inner = self.inner.clone();
        inner.cancel.set(false);
        wasm_bindgen_futures::future_to_promise(async move {
            let model = inner.model.borrow().clone().ok_or_else(|| js_err("no model loaded"))?;
            let size = model.info().image_size;
            let truth = from_rgba(&image, size, "image").map_err(js_err)?;
            let kind = if task == "inpaint-mask" {
                let m = mask.ok_or_else(|| js_err("inpaint-mask needs a painted mask"))?;
                let keep = from_rgba(&m, size, "mask").map_err(js_err)?;
                let hw = size * size;
                TaskKind::InpaintMaskData((0..hw).map(|p| if keep.data[p] + keep.data[hw + p] + keep.data[2 * hw + p] > 0.0 { 1.0 } else { 0.0 }).collect())
            } else {
                task.parse::<TaskKind>().map_err(js_err)?
            };
            let seed = get_f64(&opts, "seed").unwrap_or(0.0).max(0.0) as u64;
            let task = Task { kind, seed };
            let steps = get_f64(&opts, "steps").unwrap_or(100.0);
            if !(steps >= 1.0) {
                return Err(js_err("steps must be at least 1"));
            }
            let sigma_y = get_f64(&opts, "sigmaY").unwrap_or(0.0) as f32;
            let opts_js = opts.clone();
            let opts = RedDiffOptions {
                steps: steps as usize,
                lr: get_f64(&opts, "lr").map(|v| v as f32).unwrap_or(task.default_lr()),
                lambda: get_f64(&opts, "lambda").unwrap_or(0.25) as f32,
                seed,
                preview_every: get_f64(&opts, "previewEvery").unwrap_or(0.0).max(0.0) as usize,
                image_keys: vec![crate::ops::image_key(&get_string(&opts, "imageName").unwrap_or_default())],
                ..RedDiffOptions::default()
            };
            let method: crate::solvers::Method = get_string(&opts_js, "method").unwrap_or_else(|| "reddiff".into()).parse().map_err(js_err)?;
            // A clear refusal (nonlinear task, no SVD, too few steps) before any GPU work.
            method.steps_for(&task, sigma_y, Some(opts.steps), opts.steps).map_err(js_err)?;
            let problem = Problem { task, sigma_y, opts, class: None, method };
            let start = js_sys::Date::now();
            let mut last_step = 0usize;
            let cb = |s: &StepInfo| {
                last_step = s.step;
                let _ = on_progress.call3(&JsValue::NULL, &JsValue::from(s.step as u32), &JsValue::from(s.steps as u32), &JsValue::from(s.t as u32));
                if let Some(p) = s.preview.and_then(|p| p.first()) {
                    let _ = on_preview.call1(&JsValue::NULL, &Uint8Array::from(to_rgba(p, size).as_slice()));
                }
                !inner.cancel.get()
            };
            let out = restore_synthetic(&inner.gpu, &model, &problem, std::slice::from_ref(&truth), cb).await.map_err(js_err)?;
            let ms = (js_sys::Date::now() - start) / last_step.max(1) as f64;
            let shown = out.measurement[0].to_rgb();
            let shown = if shown.height == size { shown } else { shown.upscale_nearest(size / shown.height.max(1)) };
            let o = Object::new();
            set(&o, "result", &Uint8Array::from(to_rgba(&out.result[0], size).as_slice()).into());
            set(&o, "measurement", &Uint8Array::from(to_rgba(&shown, size).as_slice()).into());
            let pinv = out.pinv[0].as_ref().unwrap_or(&shown);
            set(&o, "pinv", &Uint8Array::from(to_rgba(pinv, size).as_slice()).into());
            set(&o, "psnrMeasurement", &JsValue::from(psnr(&truth, &shown).map_err(js_err)?));
            set(&o, "psnrResult", &JsValue::from(psnr(&truth, &out.result[0]).map_err(js_err)?));
            set(&o, "msPerStep", &JsValue::from(ms));
            Ok(o.into())
        })
    }
}
