//! DiffPIR, the plug-and-play baseline (Zhu et al., CVPRW 2023), and trajectory parity of both solvers with
//! float64 PyTorch references fed reddiff's own noise: DiffPIR's timestep sequence is the authors'
//! (numpy's), and the batched conjugate-gradient solver solves the proximal systems. (Restoration quality
//! with the built-in prior: tests/e2e.rs.)

mod common;

use std::path::PathBuf;

use common::{gpu, Rng};
use reddiff::model::Unet;
use reddiff::operators::{Operator, Task, TaskKind};
use reddiff::ops;
use reddiff::solvers::{diffpir_timesteps, DiffPirOptions, RedDiffOptions};
use reddiff::{Gpu, Tensor};

#[test]
fn timesteps_are_the_authors_quadratic_sequence() {
    // numpy: seq = [int(s) for s in np.sqrt(np.linspace(0, 1000**2, 20))]; seq[-1] -= 1; t = 999 - seq
    let want = [999, 770, 675, 602, 541, 487, 438, 393, 351, 311, 274, 239, 205, 172, 141, 111, 82, 54, 26, 0];
    assert_eq!(diffpir_timesteps(1000, 20).unwrap(), want);
    assert!(diffpir_timesteps(1000, 1).is_err());
    let nonlinear = Task { kind: TaskKind::Hdr, seed: 0 };
    assert!(DiffPirOptions::for_task(&nonlinear, 0.0).unwrap_err().to_string().contains("nonlinear"));
}

/// DiffPIR's proximal system (HᵀH + ρI) x = Hᵀy + ρ·x0 for `kind` on 32×32 images of `shape`, with x0 and
/// the clean image behind y drawn from `r`.
struct Proximal {
    op: Box<dyn Operator>,
    rho: f32,
    x0: Tensor,
    b: Tensor,
}

impl Proximal {
    fn new(g: &Gpu, shape: [usize; 4], r: &mut Rng, kind: TaskKind, rho: f32) -> Proximal {
        let n: usize = shape.iter().product();
        let x0 = g.upload(&shape, &r.vec(n)).unwrap();
        let op = Task { kind, seed: 0 }.operator(g, 3, 32, 32).unwrap();
        let y = op.forward(g, &g.upload(&shape, &r.vec(n)).unwrap()).unwrap();
        let b = ops::axpby(g, 1.0, &op.adjoint(g, &y).unwrap().unwrap(), rho, &x0).unwrap();
        Proximal { op, rho, x0, b }
    }

    /// (HᵀH + ρI) v.
    fn apply(&self, g: &Gpu, v: &Tensor) -> Tensor {
        let hth = self.op.adjoint(g, &self.op.forward(g, v).unwrap()).unwrap().unwrap();
        ops::axpby(g, 1.0, &hth, self.rho, v).unwrap()
    }

    /// `iters` conjugate-gradient iterations from x0.
    fn solve(&self, g: &Gpu, iters: usize) -> Tensor {
        ops::conjugate_gradients(g, |v| Ok(self.apply(g, v)), &self.b, &self.x0, iters).unwrap()
    }
}

#[test]
fn conjugate_gradients_solve_the_proximal_systems() {
    let g = gpu();
    let mut r = Rng::new(5);
    for kind in [TaskKind::InpaintRandom, TaskKind::Sr(4), TaskKind::DeblurGauss] {
        let p = Proximal::new(g, [2, 3, 32, 32], &mut r, kind.clone(), 0.05);
        let iters = DiffPirOptions::for_task(&Task { kind: kind.clone(), seed: 0 }, 0.0).unwrap().cg_iters;
        let x = p.solve(g, iters);
        // Residual of (HᵀH + ρI) x = b, relative to b, per the whole batch.
        let res = ops::axpby(g, 1.0, &p.apply(g, &x), -1.0, &p.b).unwrap().read(g).unwrap();
        let bv = p.b.read(g).unwrap();
        let rel = (res.iter().map(|v| v * v).sum::<f32>() / bv.iter().map(|v| v * v).sum::<f32>()).sqrt();
        eprintln!("{kind:?}: {iters} CG iterations, relative residual {rel:.2e}");
        assert!(rel < 1e-3, "{kind:?}: CG leaves a relative residual of {rel:.2e}");
    }
    // Per-image dot products.
    let a = g.upload(&[2, 3], &[1.0, 2.0, 3.0, -1.0, 0.5, 4.0]).unwrap();
    assert_eq!(ops::dot_rows(g, &a, &a).unwrap().read(g).unwrap(), vec![14.0, 17.25]);
}

/// Far more iterations than a nearly singular system needs (bicubic ×4: HᵀH has rank 1/16, ρ = 1e-8, as
/// DiffPIR's early steps have it): once the residual is at f32 round-off the iterations stop moving x
/// instead of amplifying rounding (without that, 100 iterations here end far from the 10-iteration x).
#[test]
fn conjugate_gradients_stay_put_once_converged() {
    let g = gpu();
    let p = Proximal::new(g, [1, 3, 32, 32], &mut Rng::new(8), TaskKind::Bicubic(4), 1e-8);
    let (few, many) = (p.solve(g, 10).read(g).unwrap(), p.solve(g, 100).read(g).unwrap());
    let scale = few.iter().fold(0f32, |m, v| m.max(v.abs()));
    let gap = few.iter().zip(&many).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    eprintln!("10 vs 100 iterations: largest difference {gap:.2e} (largest entry {scale:.2})");
    assert!(many.iter().all(|v| v.is_finite()) && gap < 1e-2 * scale, "100 iterations moved x by {gap} (entries up to {scale})");
}

/// Trajectory parity: `tools/diffpir_torch.py` replays reddiff's own keyed noise through the authors' loop in
/// float64 (exact proximal steps) with the small ADM fixture; reddiff's GPU run must end at the same images.
#[test]
fn trajectory_matches_the_float64_torch_reference() {
    use reddiff::model::TensorFile;
    use reddiff::solvers::{diffpir, image_keys, UnetPrior};
    let g = gpu();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let io = TensorFile::read(&root.join("diffpir/io.safetensors")).unwrap();
    let unet = Unet::load(g, &root.join("adm_plain_newattn")).unwrap();
    let (shape, keys, steps) = ([2usize, 3, 16, 16], vec![7u32, 11], 11usize);
    // The fixture's noise is reddiff's: the same keyed draws, bit for bit on the machine that made it.
    let k = image_keys(g, &keys, 2).unwrap();
    for (name, offset) in (0..steps - 1).map(|i| (format!("z_{i}"), i as u64)).chain([("z0".to_string(), u64::MAX - 2)]) {
        let ours = ops::normal_keyed(g, &shape, 0, &k, offset, 0.0, 1.0).unwrap().read(g).unwrap();
        let want = &io.get(&name).unwrap().data;
        let err = ours.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 1e-5, "{name}: reddiff's draws differ from the fixture's by {err}");
    }
    let x = io.get("x").unwrap();
    let prior = UnetPrior { unet: &unet, class: None };
    for (kind, y_key, out_key) in [(TaskKind::InpaintBox, "y_box", "out_box"), (TaskKind::Sr(2), "y_sr2", "out_sr2")] {
        let task = Task { kind: kind.clone(), seed: 0 };
        let op = task.operator(g, 3, 16, 16).unwrap();
        let y_ref = io.get(y_key).unwrap();
        let y = op.forward(g, &g.upload(&x.shape, &x.data).unwrap()).unwrap();
        let y_err = y.read(g).unwrap().iter().zip(&y_ref.data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(y_err < 1e-5, "{kind:?}: H(x) differs from the reference's by {y_err}");
        let opts = DiffPirOptions { steps, image_keys: keys.clone(), ..DiffPirOptions::for_task(&task, 0.0).unwrap() };
        let out = reddiff::gpu::block_on(diffpir(g, &prior, &*op, &y, &shape, &reddiff::model::Schedule::ddpm(), &opts, |_| true)).unwrap().read(g).unwrap();
        let want = &io.get(out_key).unwrap().data;
        let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
        let err = out.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale;
        eprintln!("{kind:?}: {} network evaluations, max |reddiff - torch| / max |torch| = {err:.2e}", steps - 1);
        assert!(err <= 1e-4, "{kind:?}: the trajectory ends {err:.2e} (relative) away from the float64 reference");
    }
}

/// The same fixture holds RED-diff's trajectory from `tools/reddiff_torch.py`'s loop (float64, Adam, batch 1
/// per image) with reddiff's ε: reddiff's batched GPU run must end at the same μ after 10 steps.
#[test]
fn red_diff_trajectory_matches_the_torch_reference_loop() {
    use reddiff::model::TensorFile;
    use reddiff::solvers::{red_diff, UnetPrior};
    let g = gpu();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let io = TensorFile::read(&root.join("diffpir/io.safetensors")).unwrap();
    let unet = Unet::load(g, &root.join("adm_plain_newattn")).unwrap();
    let prior = UnetPrior { unet: &unet, class: None };
    let shape = [2usize, 3, 16, 16];
    let k = reddiff::solvers::image_keys(g, &[7, 11], 2).unwrap();
    for i in 0..10 {
        let ours = ops::normal_keyed(g, &shape, 0, &k, 2 * i as u64, 0.0, 1.0).unwrap().read(g).unwrap();
        let err = ours.iter().zip(&io.get(&format!("eps_{i}")).unwrap().data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 1e-5, "step {i}: reddiff's ε differs from the fixture's by {err}");
    }
    let x = io.get("x").unwrap();
    for (kind, out_key) in [(TaskKind::InpaintBox, "reddiff_box"), (TaskKind::Sr(2), "reddiff_sr2")] {
        let task = Task { kind: kind.clone(), seed: 0 };
        let op = task.operator(g, 3, 16, 16).unwrap();
        let y = op.forward(g, &g.upload(&x.shape, &x.data).unwrap()).unwrap();
        let opts = RedDiffOptions { steps: 10, lr: task.default_lr(), image_keys: vec![7, 11], ..Default::default() };
        let mu = reddiff::gpu::block_on(red_diff(g, &prior, &*op, &y, &shape, &reddiff::model::Schedule::ddpm(), &opts, |_| true)).unwrap().read(g).unwrap();
        let want = &io.get(out_key).unwrap().data;
        let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
        let err = mu.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale;
        eprintln!("RED-diff {kind:?}: 10 steps, max |reddiff - torch| / max |torch| = {err:.2e}");
        assert!(err <= 1e-4, "{kind:?}: RED-diff's μ ends {err:.2e} (relative) away from the reference loop");
    }
}
