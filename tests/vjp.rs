//! The UNet's vector-Jacobian product (∂ε/∂x)ᵀ v against float64 torch autograd on every model fixture
//! (`tools/vjp_fixtures.py`: ADM with scale-shift, resblock up/down, legacy and new attention order, class
//! labels, learned sigma; diffusers with separate q/k/v), and against central finite differences of the
//! forward on random directions.

mod common;

use std::path::PathBuf;

use common::{gpu, gpu_tiled, Rng};
use reddiff::model::{TensorFile, Unet};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Both kernel families: CPU adapters' (GroupNorm and softmax backward one invocation per group or row) and
/// GPUs' (a workgroup per group or row), forced on this adapter.
#[test]
fn vjp_matches_torch_autograd_on_every_fixture() {
    for (family, g) in [("cpu kernels", gpu()), ("gpu kernels", gpu_tiled())] {
        eprintln!("{family}:");
        vjp_fixtures_on(g);
    }
}

fn vjp_fixtures_on(g: &reddiff::Gpu) {
    for name in ["adm_ss_updown", "adm_plain_newattn", "adm_default_mult", "diffusers_ddpm", "diffusers_resnet_ss"] {
        let dir = fixtures().join(name);
        let io = TensorFile::read(&dir.join("io.safetensors")).unwrap();
        let refs = TensorFile::read(&dir.join("vjp.safetensors")).unwrap();
        let unet = Unet::load(g, &dir).unwrap();
        let x = io.get("x").unwrap();
        let t: Vec<f32> = io.get("t").unwrap().data.clone();
        let labels: Option<Vec<usize>> = io.get("y").ok().map(|y| y.data.iter().map(|v| *v as usize).collect());
        let v = refs.get("v").unwrap();
        let xt = g.upload(&x.shape, &x.data).unwrap();
        let tt = g.upload(&[t.len()], &t).unwrap();
        let vt = g.upload(&v.shape, &v.data).unwrap();
        let (out, grad) = unet.vjp(g, &xt, &tt, labels.as_deref(), &vt).unwrap();
        let eps = &io.get("eps").unwrap().data;
        let out = out.read(g).unwrap();
        let fwd = out.iter().zip(eps).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / eps.iter().map(|v| v.abs()).fold(0f32, f32::max);
        let want = &refs.get("vjp").unwrap().data;
        let got = grad.read(g).unwrap();
        let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
        let err = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale;
        eprintln!("{name}: forward {fwd:.2e}, vjp max |reddiff - torch| / max |torch| = {err:.2e}");
        assert!(fwd < 2e-5, "{name}: the saving forward differs from torch by {fwd:.2e}");
        assert!(err <= 1e-4, "{name}: VJP differs from torch autograd by {err:.2e} (relative)");
    }
}

/// ⟨(∂ε/∂x)ᵀ v, u⟩ = d/dh ⟨v, ε(x + h u)⟩ at h = 0, by central differences in f32 on the built-in prior.
#[test]
fn vjp_agrees_with_finite_differences() {
    let g = gpu();
    let unet = Unet::load(g, &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/emoji32")).unwrap();
    let shape = [1usize, 3, 32, 32];
    let n: usize = shape.iter().product();
    let mut r = Rng::new(77);
    let x = r.vec(n);
    let v = r.vec(n);
    let tt = g.upload(&[1], &[400.0]).unwrap();
    let (_, grad) = unet.vjp(g, &g.upload(&shape, &x).unwrap(), &tt, None, &g.upload(&shape, &v).unwrap()).unwrap();
    let grad = grad.read(g).unwrap();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>();
    let h = 1e-2f32;
    for dir in 0..3 {
        let u = r.vec(n);
        let eps_at = |sign: f32| {
            let xs: Vec<f32> = x.iter().zip(&u).map(|(a, b)| a + sign * h * b).collect();
            unet.forward(g, &g.upload(&shape, &xs).unwrap(), &tt, None).unwrap().read(g).unwrap()
        };
        let fd = (dot(&v, &eps_at(1.0)) - dot(&v, &eps_at(-1.0))) / (2.0 * h as f64);
        let an = dot(&grad, &u);
        let rel = (fd - an).abs() / an.abs().max(1e-6);
        eprintln!("direction {dir}: finite difference {fd:.5}, VJP {an:.5}, relative {rel:.2e}");
        assert!(rel < 1e-2, "direction {dir}: VJP {an} vs finite difference {fd}");
    }
}

#[test]
fn vjp_rejects_mismatched_shapes() {
    let g = gpu();
    let unet = Unet::load(g, &fixtures().join("adm_plain_newattn")).unwrap();
    let x = g.zeros(&[1, 3, 16, 16]).unwrap();
    let t = g.upload(&[1], &[10.0]).unwrap();
    assert!(unet.vjp(g, &x, &t, None, &g.zeros(&[1, 3, 8, 8]).unwrap()).is_err());
    assert!(unet.vjp(g, &g.zeros(&[1, 3, 15, 15]).unwrap(), &t, None, &g.zeros(&[1, 3, 15, 15]).unwrap()).is_err());
}

/// The first tape of an input shape captures its saving forward and backward into graphs; later tapes of
/// that shape replay them without creating a bind group, and a tape made while another holds the graphs
/// records its dispatches one by one. All of them give the same output and products (learned sigma and
/// class labels: the one-hot rows are written into the graph's input).
#[test]
fn captured_tapes_replay_without_bind_groups_and_match_recorded_ones() {
    // A device of its own: the bind-group counter is per device, and other tests share `gpu()`.
    let own = reddiff::Gpu::new().unwrap();
    let g = &own;
    let dir = fixtures().join("adm_ss_updown");
    let io = TensorFile::read(&dir.join("io.safetensors")).unwrap();
    let unet = Unet::load(g, &dir).unwrap();
    let x = io.get("x").unwrap();
    let labels: Vec<usize> = io.get("y").unwrap().data.iter().map(|v| *v as usize).collect();
    let n = x.shape[0];
    let mut r = Rng::new(5);
    let x2 = g.upload(&x.shape, &r.vec(x.data.len())).unwrap();
    let v = g.upload(&x.shape, &r.vec(x.data.len())).unwrap();
    let t = g.upload(&[n], &vec![300.0; n]).unwrap();
    let other: Vec<usize> = labels.iter().map(|c| (c + 1) % 2).collect();
    // Captured (first of the shape) and held while a second tape of the shape records one by one.
    let held = unet.tape(g, &g.upload(&x.shape, &x.data).unwrap(), &t, Some(&other)).unwrap();
    let recorded = unet.tape(g, &x2, &t, Some(&labels)).unwrap();
    let want = (recorded.output().read(g).unwrap(), recorded.vjp(g, &v).unwrap().read(g).unwrap());
    drop(recorded);
    drop(held);
    let stats = unet.tape_graph_stats();
    assert_eq!(stats.len(), 1, "one captured tape per input shape");
    assert!(stats[0].1 > 0 && stats[0].2 > 0, "empty tape graphs: {stats:?}");
    let before = g.bind_groups_created();
    let replayed = unet.tape(g, &x2, &t, Some(&labels)).unwrap();
    let out = replayed.output().read(g).unwrap();
    let first = replayed.vjp(g, &v).unwrap().read(g).unwrap();
    let second = replayed.vjp(g, &v).unwrap().read(g).unwrap();
    assert_eq!(g.bind_groups_created(), before, "a replayed tape created bind groups");
    let rel =
        |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max) / b.iter().map(|q| q.abs()).fold(0f32, f32::max).max(1e-30);
    let (e_out, e_vjp, e_again) = (rel(&out, &want.0), rel(&first, &want.1), rel(&second, &want.1));
    eprintln!("replayed vs recorded: output {e_out:.1e}, vjp {e_vjp:.1e}, second vjp {e_again:.1e}");
    assert!(e_out <= 1e-6 && e_vjp <= 1e-6 && e_again <= 1e-6, "replayed tape differs from the recorded one");
    assert!(want.1.iter().any(|v| *v != 0.0), "the product is zero");
}
