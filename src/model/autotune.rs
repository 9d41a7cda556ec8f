//! Autotuning of the GPU convolution for one model: every candidate register tile of the tiled kernel, and
//! the cooperative-matrix kernel where the device has it, is timed on the model's own convolution shapes
//! (grouped by size class) and the fastest per class is recorded on the [`Gpu`]. Results are cached in a JSON
//! file per adapter, driver and version of the timed kernels (`$REDDIFF_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/reddiff`, else `~/.cache/reddiff`), so later loads skip the timing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use super::unet::Unet;
use crate::error::Result;
use crate::gpu::{ConvKernel, ConvProblem, Gpu, KernelProfile, SizeClass, TileConfig, COOP_BM, COOP_SPLITS};
use crate::ops::{self, Epilogue};

/// The outcome for one size class.
#[derive(Clone, Debug)]
pub struct TuneResult {
    /// The size class (log2 buckets of M, N, K).
    pub class: SizeClass,
    /// The kernel chosen.
    pub kernel: ConvKernel,
    /// Milliseconds per convolution of each candidate timed, in [`candidates`] order (empty when the choice
    /// came from the cache).
    pub ms: Vec<f64>,
}

/// The kernels autotuning times on this device: every [`TileConfig::CANDIDATES`] tile, then
/// [`ConvKernel::CoopMatrix`] with each of [`COOP_BM`] × [`COOP_SPLITS`] when [`Gpu::coop_matrix`] is on.
pub fn candidates(gpu: &Gpu) -> Vec<ConvKernel> {
    let mut v: Vec<ConvKernel> = TileConfig::CANDIDATES.iter().map(|t| ConvKernel::Tiled(*t)).collect();
    if gpu.coop_matrix() {
        for bm in COOP_BM {
            v.extend(COOP_SPLITS.iter().map(|&splits| ConvKernel::CoopMatrix { bm, splits }));
        }
    }
    v
}

fn cache_file(gpu: &Gpu) -> Option<PathBuf> {
    let dir = std::env::var_os("REDDIFF_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("reddiff")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/reddiff")))?;
    let a = gpu.adapter();
    // The candidates differ with cooperative matrices on or off: one cache each.
    let coop = if gpu.coop_matrix() { "-coop" } else { "" };
    let name: String = format!("{}-{}", a.name, a.driver).chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    Some(dir.join(format!("tune-{}{coop}-{:016x}.json", &name[..name.len().min(120)], kernels_fingerprint(gpu))))
}

/// FNV-1a over the timed kernels' WGSL and the shader checks: choices timed with other kernel code (an older
/// reddiff) or other checks (`REDDIFF_LOOP_BOUNDING`) are not reused.
fn kernels_fingerprint(gpu: &Gpu) -> u64 {
    use crate::shaders::{CONV_COOP, CONV_GEMM, CONV_SPLITK};
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bounding: &[u8] = if gpu.adapter().loop_bounding { b"loop-bounding" } else { b"" };
    for bytes in [CONV_GEMM.source.as_bytes(), CONV_COOP.source.as_bytes(), CONV_SPLITK.source.as_bytes(), bounding] {
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn read_cache(gpu: &Gpu) -> BTreeMap<SizeClass, ConvKernel> {
    let mut out = BTreeMap::new();
    let Some(text) = cache_file(gpu).and_then(|p| std::fs::read_to_string(p).ok()) else {
        return out;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return out;
    };
    for e in v.get("conv").and_then(|c| c.as_array()).into_iter().flatten() {
        let num = |k: &str| e.get(k).and_then(|v| v.as_u64());
        let (Some(m), Some(n), Some(k)) = (num("m"), num("n"), num("k")) else { continue };
        let kernel = match (e.get("kernel").and_then(|v| v.as_str()), num("tm"), num("tn")) {
            (Some("coop"), _, _) => ConvKernel::CoopMatrix { bm: num("bm").unwrap_or(64) as usize, splits: num("splits").unwrap_or(1) as usize },
            (_, Some(tm), Some(tn)) => ConvKernel::Tiled(TileConfig {
                tm: tm as usize,
                tn: tn as usize,
                vec4: e.get("vec4").and_then(|v| v.as_bool()).unwrap_or(false),
                splits: num("splits").unwrap_or(1) as usize,
            }),
            _ => continue,
        };
        // A cached choice the device can no longer run (another build, coop turned off) is timed again.
        if candidates(gpu).contains(&kernel) {
            out.insert(SizeClass::from_buckets([m as u8, n as u8, k as u8]), kernel);
        }
    }
    out
}

fn write_cache(gpu: &Gpu, table: &BTreeMap<SizeClass, ConvKernel>) {
    let Some(path) = cache_file(gpu) else { return };
    let conv: Vec<serde_json::Value> = table
        .iter()
        .filter_map(|(c, k)| {
            let b = c.buckets();
            match k {
                ConvKernel::Tiled(t) => Some(serde_json::json!({"m": b[0], "n": b[1], "k": b[2], "tm": t.tm, "tn": t.tn, "vec4": t.vec4, "splits": t.splits})),
                ConvKernel::CoopMatrix { bm, splits } => {
                    Some(serde_json::json!({"m": b[0], "n": b[1], "k": b[2], "kernel": "coop", "bm": bm, "splits": splits}))
                }
                ConvKernel::RegisterBlocked | ConvKernel::SharedWeights | ConvKernel::Winograd => None,
            }
        })
        .collect();
    let a = gpu.adapter();
    let doc = serde_json::json!({"adapter": a.name, "driver": a.driver, "conv": conv});
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // A cache that cannot be written only costs a re-tune next time.
    let _ = crate::model::weights::write_atomic(&path, doc.to_string().as_bytes());
}

fn time_kernel(gpu: &Gpu, p: &ConvProblem, x: &crate::gpu::Tensor, kernel: ConvKernel, reps: usize) -> Result<f64> {
    let run = || ops::conv2d_with(gpu, x, &p.w, p.cfg, &Epilogue::bias(None), Some(kernel)).map(|_| ());
    run()?;
    gpu.sync()?;
    let t0 = Instant::now();
    for _ in 0..reps {
        run()?;
    }
    gpu.sync()?;
    Ok(t0.elapsed().as_secs_f64() * 1e3 / reps as f64)
}

impl Unet {
    /// Chooses the convolution kernel (tiled with a register tile, or cooperative matrices) for each size
    /// class of this model's convolutions at `batch` images of the native size, timing every candidate on
    /// the adapter (blocking; a second or so on a GPU). Cached per adapter and driver. A no-op returning nothing on the register-blocked
    /// (CPU) kernel family.
    pub fn autotune(&self, gpu: &Gpu, batch: usize) -> Result<Vec<TuneResult>> {
        if gpu.profile() != KernelProfile::Tiled {
            return Ok(Vec::new());
        }
        let s = self.info.image_size;
        gpu.start_conv_log();
        // A capture issues every convolution of a forward without running anything.
        let captured = gpu.capture(|| {
            let x = gpu.empty("autotune", &[batch.max(1), self.info.in_channels, s, s])?;
            let t = gpu.empty("autotune", &[batch.max(1)])?;
            let oh = match self.info.num_classes {
                Some(c) => Some(gpu.empty("autotune", &[batch.max(1), c])?),
                None => None,
            };
            self.forward_core(gpu, &x, &t, oh.as_ref())
        });
        let problems = gpu.take_conv_log();
        drop(captured?);
        let mut classes: BTreeMap<SizeClass, ConvProblem> = BTreeMap::new();
        for p in problems {
            classes.entry(p.class()).or_insert(p);
        }
        let mut table = read_cache(gpu);
        let mut results = Vec::new();
        let mut tuned = false;
        for (class, p) in &classes {
            if let Some(kernel) = table.get(class) {
                gpu.set_conv_kernel(*class, *kernel);
                results.push(TuneResult { class: *class, kernel: *kernel, ms: Vec::new() });
                continue;
            }
            let x = ops::normal(gpu, &p.x_shape, 7, 0, 0.0, 1.0)?;
            let kernels = candidates(gpu);
            let mut ms = Vec::new();
            for kernel in &kernels {
                ms.push(time_kernel(gpu, p, &x, *kernel, 5)?);
            }
            let best = ms.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
            let kernel = kernels[best];
            gpu.set_conv_kernel(*class, kernel);
            table.insert(*class, kernel);
            results.push(TuneResult { class: *class, kernel, ms });
            tuned = true;
        }
        if tuned {
            write_cache(gpu, &table);
        }
        Ok(results)
    }
}
