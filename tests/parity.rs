//! The UNets against PyTorch: every committed fixture (random-weight guided-diffusion and diffusers models,
//! reference outputs from tools/make_fixtures.py) within max|Δ| ≤ 2e-5 · max|ref|, on both kernel families
//! (register-blocked for CPU adapters, workgroup-tiled for GPUs).

mod common;

use std::path::PathBuf;

use common::{assert_close, gpu, gpu_tiled};
use reddiff::model::{TensorFile, Unet};
use reddiff::Gpu;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn check(name: &str) {
    check_on(gpu(), name);
    check_on(gpu_tiled(), name);
}

fn check_on(g: &Gpu, name: &str) {
    let dir = fixture(name);
    let model = Unet::load(g, &dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    let io = TensorFile::read(&dir.join("io.safetensors")).unwrap();
    let x = io.get("x").unwrap();
    let t = io.get("t").unwrap();
    let want = io.get("eps").unwrap();
    let y: Option<Vec<usize>> = io.tensors.get("y").map(|y| y.data.iter().map(|v| *v as usize).collect());
    let tx = g.upload(&x.shape, &x.data).unwrap();
    let tt = g.upload(&t.shape, &t.data).unwrap();
    let out = model.forward(g, &tx, &tt, y.as_deref()).unwrap();
    assert_eq!(out.shape(), want.shape.as_slice(), "{name}: output shape");
    let got = out.read(g).unwrap();
    let scale = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = got.iter().zip(&want.data).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("{name} ({:?}): max|Δ| = {worst:.3e}, max|ref| = {scale:.3}, relative {:.2e}", g.profile(), worst / scale);
    assert_close(name, &got, &want.data, 2e-5);
}

#[test]
fn adm_scale_shift_updown_class_cond_learned_sigma() {
    check("adm_ss_updown");
}

#[test]
fn adm_plain_new_attention_order_f16() {
    check("adm_plain_newattn");
}

#[test]
fn adm_default_channel_mult_bf16() {
    check("adm_default_mult");
}

#[test]
fn diffusers_ddpm_blocks() {
    check("diffusers_ddpm");
}

#[test]
fn diffusers_resnet_updown_scale_shift_f16() {
    check("diffusers_resnet_ss");
}

#[test]
fn batches_split_when_activations_exceed_the_binding_limit() {
    // A second device whose storage bindings are capped at 1.5 MiB: one 16x16 image's largest activation
    // (attention scores, 4 heads x 256 x 256 x 4 B = 1 MiB) fits, two do not, so the forward runs in two chunks.
    let opts = reddiff::GpuOptions { max_binding_bytes: Some(3 << 19), ..reddiff::GpuOptions::from_env() };
    let g = reddiff::gpu::block_on(reddiff::Gpu::with_options(opts)).unwrap();
    let dir = fixture("diffusers_resnet_ss");
    let model = Unet::load(&g, &dir).unwrap();
    let io = TensorFile::read(&dir.join("io.safetensors")).unwrap();
    let (x, t, want) = (io.get("x").unwrap(), io.get("t").unwrap(), io.get("eps").unwrap());
    let submits = g.submits();
    let out = model.forward(&g, &g.upload(&x.shape, &x.data).unwrap(), &g.upload(&t.shape, &t.data).unwrap(), None).unwrap();
    assert!(g.submits() >= submits + 2, "expected one submit per chunk");
    assert_close("chunked forward", &out.read(&g).unwrap(), &want.data, 1e-4);
}

#[test]
fn autotuned_tiles_come_from_the_tested_candidates_are_cached_and_keep_parity() {
    let g = gpu_tiled();
    let dir = fixture("diffusers_ddpm");
    let cache = std::env::temp_dir().join(format!("reddiff-tune-test-{}", std::process::id()));
    std::env::set_var("REDDIFF_CACHE_DIR", &cache);
    let model = Unet::load(g, &dir).unwrap();
    let tuned = model.autotune(g, 1).unwrap();
    assert!(!tuned.is_empty(), "no convolution size classes found");
    let candidates = reddiff::model::autotune_candidates(g);
    for r in &tuned {
        assert!(candidates.contains(&r.kernel));
        assert_eq!(r.ms.len(), candidates.len(), "every candidate timed");
        assert!(r.ms.iter().all(|ms| ms.is_finite() && *ms > 0.0));
    }
    // A second tuning reads the cache: same choices, nothing timed.
    let again = model.autotune(g, 1).unwrap();
    assert_eq!(again.len(), tuned.len());
    for (a, b) in again.iter().zip(&tuned) {
        assert_eq!((a.class, a.kernel), (b.class, b.kernel));
        assert!(a.ms.is_empty());
    }
    let _ = std::fs::remove_dir_all(&cache);
    check_on(g, "diffusers_ddpm");
}

#[test]
fn a_replayed_graph_creates_no_bind_groups_and_tracks_new_inputs() {
    // A device of its own: the bind-group counter is per device, and other tests share `gpu()`.
    let own = reddiff::Gpu::new().unwrap();
    let g = &own;
    let dir = fixture("adm_ss_updown");
    let model = Unet::load(g, &dir).unwrap();
    let io = TensorFile::read(&dir.join("io.safetensors")).unwrap();
    let (x, t, want) = (io.get("x").unwrap(), io.get("t").unwrap(), io.get("eps").unwrap());
    let y: Vec<usize> = io.get("y").unwrap().data.iter().map(|v| *v as usize).collect();
    let tx = g.upload(&x.shape, &x.data).unwrap();
    let tt = g.upload(&t.shape, &t.data).unwrap();
    // First call captures; a call on other inputs must give other outputs (the inputs are copied in).
    let first = model.forward(g, &tx, &tt, Some(&y)).unwrap().read(g).unwrap();
    let other_x: Vec<f32> = x.data.iter().map(|v| -v).collect();
    let other = model.forward(g, &g.upload(&x.shape, &other_x).unwrap(), &tt, Some(&y)).unwrap().read(g).unwrap();
    assert!(first.iter().zip(&other).any(|(a, b)| (a - b).abs() > 1e-3), "new input ignored");
    let before = g.bind_groups_created();
    let again = model.forward(g, &tx, &tt, Some(&y)).unwrap().read(g).unwrap();
    assert_eq!(g.bind_groups_created(), before, "a replay created bind groups");
    assert_eq!(first, again, "replays of the same input differ");
    assert_close("replayed forward", &again, &want.data, 2e-5);
    let stats = model.graph_stats();
    assert_eq!(stats.len(), 1);
    assert!(stats[0].1 > 20 && stats[0].2 > 0);
    // The device's memory count includes the graph's buffers (all of the graph's bytes but its parameter
    // block, 256 bytes per dispatch) and gives them back with the model.
    let held = g.memory().0;
    drop(model);
    let freed = held - g.memory().0;
    assert_eq!(freed + 256 * stats[0].1 as u64, stats[0].2, "Gpu::memory does not count the graph's buffers");
}

#[test]
fn wgpu_loop_bounding_changes_no_output() {
    // reddiff leaves wgpu's loop counter out of its shaders (GpuOptions::loop_bounding); a device that keeps
    // it must compute the same forward to the bit, since only the loops' exit test differs — on both kernel
    // families (no autotuning on a CPU adapter, so both devices use the same tiles).
    let dir = fixture("adm_ss_updown");
    let io = TensorFile::read(&dir.join("io.safetensors")).unwrap();
    let (x, t) = (io.get("x").unwrap(), io.get("t").unwrap());
    let y: Vec<usize> = io.get("y").unwrap().data.iter().map(|v| *v as usize).collect();
    let run = |g: &Gpu| {
        let model = Unet::load(g, &dir).unwrap();
        model.forward(g, &g.upload(&x.shape, &x.data).unwrap(), &g.upload(&t.shape, &t.data).unwrap(), Some(&y)).unwrap().read(g).unwrap()
    };
    let device = |profile, loop_bounding| {
        let opts = reddiff::GpuOptions { loop_bounding, profile, ..reddiff::GpuOptions::from_env() };
        reddiff::gpu::block_on(reddiff::Gpu::with_options(opts)).unwrap()
    };
    for profile in [None, Some(reddiff::gpu::KernelProfile::Tiled)] {
        let (plain, bounded) = (device(profile, false), device(profile, true));
        assert!(bounded.adapter().loop_bounding && !plain.adapter().loop_bounding);
        let (a, b) = (run(&plain), run(&bounded));
        assert_eq!(a, b, "the forward differs with wgpu's loop bounding ({:?} kernels)", plain.profile());
    }
}

/// Where the stacked time-embedding projections of all ResBlocks would pass one storage binding they are
/// uploaded in parts and their outputs joined (ADM ImageNet-256's stack is 51,712 × 1024 f32, 212 MB, over
/// lavapipe's 128 MiB): with bindings capped at 1.25 MiB the built-in prior's 2688 × 256 stack (2.75 MB)
/// takes three parts, and its forward equals the uncapped one.
#[test]
fn time_embedding_projections_split_at_the_binding_limit() {
    let opts = reddiff::GpuOptions { max_binding_bytes: Some(5 << 18), ..reddiff::GpuOptions::from_env() };
    let capped = reddiff::gpu::block_on(Gpu::with_options(opts)).unwrap();
    let mut outs = Vec::new();
    for g in [gpu(), &capped] {
        let model = Unet::builtin(g).unwrap();
        let x = reddiff::ops::normal(g, &[1, 3, 32, 32], 5, 0, 0.0, 1.0).unwrap();
        let t = g.upload(&[1], &[417.0]).unwrap();
        outs.push(model.forward(g, &x, &t, None).unwrap().read(g).unwrap());
    }
    assert_close("forward with the projections in parts", &outs[1], &outs[0], 1e-6);
}
