//! The UNets against PyTorch: every committed fixture (random-weight guided-diffusion and diffusers models,
//! reference outputs from tools/make_fixtures.py) within max|Δ| ≤ 2e-5 · max|ref|, on both kernel families
//! (register-blocked for CPU adapters, workgroup-tiled for GPUs).

mod common;

use std::path::PathBuf;

use common::{assert_close, gpu, gpu_tiled};
use reddiff::Gpu;
use reddiff::model::{TensorFile, Unet};

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
    let g = pollster::block_on(reddiff::Gpu::with_options(opts)).unwrap();
    let dir = fixture("diffusers_resnet_ss");
    let model = Unet::load(&g, &dir).unwrap();
    let io = TensorFile::read(&dir.join("io.safetensors")).unwrap();
    let (x, t, want) = (io.get("x").unwrap(), io.get("t").unwrap(), io.get("eps").unwrap());
    let submits = g.submits();
    let out = model.forward(&g, &g.upload(&x.shape, &x.data).unwrap(), &g.upload(&t.shape, &t.data).unwrap(), None).unwrap();
    assert!(g.submits() >= submits + 2, "expected one submit per chunk");
    assert_close("chunked forward", &out.read(&g).unwrap(), &want.data, 1e-4);
}
