//! DDIM on the GPU against diffusers' DDIMScheduler (eta 0, 10 steps) from the same initial noise, on the
//! built-in prior (a trained model: DDIM is contractive there, so a tight tolerance is meaningful).

mod common;

use std::path::PathBuf;

use common::{assert_close, gpu};
use reddiff::model::{Schedule, TensorFile, Unet};
use reddiff::solvers::{ddim_sample, ddim_timesteps, DdimOptions, UnetPrior};

#[test]
fn ddim_matches_diffusers_from_the_same_noise() {
    let g = gpu();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = Unet::load(g, &root.join("models/emoji32")).unwrap();
    let io = TensorFile::read(&root.join("tests/fixtures/ddim/io.safetensors")).unwrap();
    let noise = io.get("noise").unwrap();
    let want = io.get("x0").unwrap();
    let ts: Vec<usize> = io.get("timesteps").unwrap().data.iter().map(|v| *v as usize).collect();
    assert_eq!(ddim_timesteps(1000, ts.len()).unwrap(), ts, "timestep schedule");
    let x = g.upload(&noise.shape, &noise.data).unwrap();
    let opts = DdimOptions { steps: ts.len(), eta: 0.0, seed: 0 };
    let out = ddim_sample(g, &UnetPrior { unet: &model, class: None }, &x, &Schedule::ddpm(), opts, |_, _| {}).unwrap();
    let got = out.read(g).unwrap();
    let worst = got.iter().zip(&want.data).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("ddim: max|Δ| = {worst:.3e}");
    assert_close("ddim x0", &got, &want.data, 1e-4);
}
