//! DDRM (Kawar et al., NeurIPS 2022): the CPU Jacobi SVD, each operator's SVD on the GPU, refusals for
//! operators without one, and trajectory parity with the float64 PyTorch reference `tools/ddrm_torch.py`,
//! which builds its own dense SVDs and replays reddiff's keyed noise. (Restoration quality with the
//! built-in prior: tests/e2e.rs.)

mod common;

use std::path::PathBuf;

use common::{gpu, Rng};
use reddiff::model::{Schedule, TensorFile, Unet};
use reddiff::operators::patterns::{gaussian_taps, Matrix};
use reddiff::operators::{matrix_svd, wide_svd, Task, TaskKind};
use reddiff::solvers::{ddrm, ddrm_timesteps, DdrmOptions, Method, UnetPrior};

fn random(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut r = Rng::new(seed);
    Matrix { rows, cols, data: r.vec(rows * cols).into_iter().map(|v| v as f64).collect() }
}

/// A random symmetric matrix (eigenvalues of both signs) of rank `rank`: B Bᵀ − C Cᵀ with B, C n×(rank/2).
fn symmetric(n: usize, rank: usize, seed: u64) -> Matrix {
    let (b, c) = (random(n, rank / 2, seed), random(n, rank - rank / 2, seed + 1));
    let outer = |m: &Matrix, i: usize, j: usize| (0..m.cols).map(|k| m.data[i * m.cols + k] * m.data[j * m.cols + k]).sum::<f64>();
    Matrix { rows: n, cols: n, data: (0..n * n).map(|p| outer(&b, p / n, p % n) - outer(&c, p / n, p % n)).collect() }
}

/// A random 6×14 matrix with one row nearly a combination of two others (a singular value ~1e-7 of the
/// largest).
fn ill_conditioned_wide() -> Matrix {
    let mut a = random(6, 14, 7);
    for j in 0..14 {
        a.data[5 * 14 + j] = a.data[j] - 0.5 * a.data[14 + j] + 1e-7 * a.data[5 * 14 + j];
    }
    a
}

/// The SR matrix's singular values are known: each row averages f pixels, so every one of them is 1/√f;
/// bicubic ×2 has none below 1e-3 of its largest (both take the A·Aᵀ route; an ill-conditioned matrix does
/// not). Both agree with Jacobi sweeps on a copy made tall (Aᵀ
/// takes the Jacobi route, and has A's singular values).
#[test]
fn wide_svds_match_the_known_and_the_jacobi_values() {
    for a in [Matrix::block_average(48, 4).unwrap(), Matrix::bicubic(96, 2).unwrap(), Matrix::bicubic(64, 4).unwrap()] {
        assert!(wide_svd(&a).unwrap().is_some(), "{}x{}: the A·Aᵀ route refused a well-conditioned matrix", a.rows, a.cols);
    }
    assert!(wide_svd(&ill_conditioned_wide()).unwrap().is_none(), "a singular value of 1e-7: Jacobi's");
    assert!(wide_svd(&random(5, 3, 1)).is_err(), "tall");
    let sr = matrix_svd(&Matrix::block_average(48, 4).unwrap()).unwrap();
    assert!(sr.s[..12].iter().all(|v| (v - 0.5).abs() < 1e-13), "{:?}", &sr.s[..12]);
    assert!(sr.s[12..].iter().all(|&v| v == 0.0));
    for a in [Matrix::bicubic(96, 2).unwrap(), Matrix::bicubic(64, 4).unwrap(), Matrix::block_average(60, 3).unwrap()] {
        let t = Matrix { rows: a.cols, cols: a.rows, data: (0..a.cols * a.rows).map(|p| a.data[(p % a.rows) * a.cols + p / a.rows]).collect() };
        let (wide, tall) = (matrix_svd(&a).unwrap(), matrix_svd(&t).unwrap());
        for k in 0..a.rows {
            assert!((wide.s[k] - tall.s[k]).abs() < 1e-12, "{}x{}: value {k}: {} vs Jacobi {}", a.rows, a.cols, wide.s[k], tall.s[k]);
        }
    }
}

#[test]
fn dense_svds_reconstruct_wide_tall_square_symmetric_and_blur_matrices() {
    let cases = [
        random(5, 12, 1),
        random(12, 5, 2),
        random(9, 9, 3),
        Matrix::block_average(32, 4).unwrap(),
        Matrix::bicubic(32, 4).unwrap(),
        // Wide and well-conditioned: through A·Aᵀ and a QR completion of V.
        Matrix::bicubic(96, 2).unwrap(),
        Matrix::block_average(60, 3).unwrap(),
        // Wide with a tiny singular value: Jacobi sweeps.
        ill_conditioned_wide(),
        // Symmetric: through the eigendecomposition.
        Matrix::convolution(32, &gaussian_taps(9, 2.0).unwrap()),
        Matrix::convolution(45, &[1.0 / 7.0; 7]),
        symmetric(20, 20, 4),
        symmetric(20, 11, 6),
    ];
    for a in &cases {
        let (m, n) = (a.rows, a.cols);
        let svd = matrix_svd(a).unwrap();
        assert!(svd.s.windows(2).all(|p| p[0] >= p[1]), "{m}x{n}: singular values not sorted");
        assert!(svd.s[m.min(n)..].iter().all(|&v| v == 0.0), "{m}x{n}: values past the rank");
        for i in 0..m {
            for j in 0..n {
                let r: f64 = (0..m.min(n)).map(|k| svd.u.data[i * m + k] * svd.s[k] * svd.v.data[j * n + k]).sum();
                assert!((r - a.data[i * n + j]).abs() < 1e-10, "{m}x{n}: U S Vt differs at ({i}, {j}) by {}", r - a.data[i * n + j]);
            }
        }
        for i in 0..n {
            for j in 0..n {
                let d: f64 = (0..n).map(|k| svd.v.data[k * n + i] * svd.v.data[k * n + j]).sum();
                assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-10, "{m}x{n}: V is not orthogonal at ({i}, {j})");
            }
        }
        // The columns of U with a non-zero value are orthonormal; a rank-deficient matrix has zero values.
        let kept = svd.s.iter().filter(|&&v| v > 0.0).count();
        for i in 0..kept {
            for j in 0..kept {
                let d: f64 = (0..m).map(|k| svd.u.data[k * m + i] * svd.u.data[k * m + j]).sum();
                assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-10, "{m}x{n}: U is not orthonormal at ({i}, {j})");
            }
        }
        if m == n && m == 20 {
            let expected = if a.data == symmetric(20, 11, 6).data { 11 } else { 20 };
            assert_eq!(kept, expected, "{m}x{n}: rank");
        }
    }
    assert!(matrix_svd(&Matrix { rows: 2, cols: 2, data: vec![1.0, f64::NAN, 0.0, 1.0] }).is_err());
}

/// For every operator with an SVD: V is orthogonal (V Vᵀx = x, ‖Vᵀx‖ = ‖x‖) and Uᵀ(Hx) = Σ Vᵀx on every
/// observed coordinate.
#[test]
fn operator_svds_diagonalise_the_operators() {
    let g = gpu();
    let shape = [2usize, 3, 32, 32];
    let n: usize = shape.iter().product();
    let mut r = Rng::new(9);
    let x = g.upload(&shape, &r.vec(n)).unwrap();
    let xs = x.read(g).unwrap();
    let kinds =
        [TaskKind::InpaintRandom, TaskKind::Sr(4), TaskKind::Bicubic(2), TaskKind::DeblurGauss, TaskKind::DeblurUniform, TaskKind::Color, TaskKind::Denoise];
    for kind in kinds {
        let op = Task { kind: kind.clone(), seed: 0 }.operator(g, 3, 32, 32).unwrap();
        let svd = op.svd(g, &shape).unwrap().unwrap();
        let vx = svd.vt(g, &x).unwrap();
        let back = svd.v(g, &vx).unwrap().read(g).unwrap();
        let err = back.iter().zip(&xs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 1e-4, "{kind:?}: V Vt x differs from x by {err}");
        let vxs = vx.read(g).unwrap();
        let (nx, nv) = (xs.iter().map(|v| v * v).sum::<f32>(), vxs.iter().map(|v| v * v).sum::<f32>());
        assert!((nx - nv).abs() < 1e-4 * nx, "{kind:?}: |Vt x|^2 = {nv}, |x|^2 = {nx}");
        let uty = svd.ut(g, &op.forward(g, &x).unwrap()).unwrap().read(g).unwrap();
        let s = svd.singulars().read(g).unwrap();
        let d = s.len();
        let (mut worst, mut observed) = (0f32, 0usize);
        for (i, (u, v)) in uty.iter().zip(&vxs).enumerate() {
            if s[i % d] > 0.0 {
                observed += 1;
                worst = worst.max((u - s[i % d] * v).abs());
            }
        }
        eprintln!("{kind:?}: {observed} of {n} coordinates observed, max |Ut H x - S Vt x| = {worst:.2e}");
        assert!(observed > 0 && worst < 1e-4, "{kind:?}: Ut H x differs from S Vt x by {worst}");
    }
}

#[test]
fn refuses_operators_without_an_svd_and_bad_settings() {
    for (kind, word) in [(TaskKind::Phase, "nonlinear"), (TaskKind::Hdr, "nonlinear"), (TaskKind::Jpeg(10), "nonlinear"), (TaskKind::DeblurMotion, "SVD")] {
        let task = Task { kind: kind.clone(), seed: 0 };
        let e = DdrmOptions::for_task(&task, 0.0).unwrap_err().to_string();
        assert!(e.contains(word), "{kind:?}: {e}");
        assert!(Method::Ddrm.steps_for(&task, 0.0, None, 1000).is_err());
    }
    let sr = Task { kind: TaskKind::Sr(4), seed: 0 };
    assert_eq!(Method::Ddrm.steps_for(&sr, 0.0, None, 1000).unwrap(), 20);
    assert!(Method::Ddrm.steps_for(&sr, 0.0, Some(0), 1000).is_err());
    assert_eq!(ddrm_timesteps(1000, 20).unwrap(), (0..20).rev().map(|i| 50 * i).collect::<Vec<_>>());
    assert!(ddrm_timesteps(1000, 1001).is_err());
    // The operator of a motion blur has no SVD; the solver says so rather than failing later.
    let g = gpu();
    let motion = Task { kind: TaskKind::DeblurMotion, seed: 0 }.operator(g, 3, 16, 16).unwrap();
    assert!(motion.svd(g, &[1, 3, 16, 16]).unwrap().is_none());
    let unet = Unet::load(g, &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adm_plain_newattn")).unwrap();
    let y = g.zeros(&[1, 3, 16, 16]).unwrap();
    let opts = DdrmOptions { steps: 2, eta: 0.85, eta_b: 1.0, sigma_y: 0.0, seed: 0, image_keys: vec![] };
    let prior = UnetPrior { unet: &unet, class: None };
    let e = reddiff::gpu::block_on(ddrm(g, &prior, &*motion, &y, &[1, 3, 16, 16], &Schedule::ddpm(), &opts, |_| true)).unwrap_err().to_string();
    assert!(e.contains("SVD"), "{e}");
    let bad = DdrmOptions { eta: 1.5, ..opts };
    let sr2 = Task { kind: TaskKind::Sr(2), seed: 0 }.operator(g, 3, 16, 16).unwrap();
    let y2 = g.zeros(&[1, 3, 8, 8]).unwrap();
    assert!(reddiff::gpu::block_on(ddrm(g, &prior, &*sr2, &y2, &[1, 3, 16, 16], &Schedule::ddpm(), &bad, |_| true)).is_err());
}

/// `tools/ddrm_torch.py` runs the authors' loop in float64 with its own dense SVDs and reddiff's keyed noise;
/// reddiff's GPU run must end at the same images (box inpainting, ×2 SR noiseless and with σ_y = 0.05,
/// colorization; 10 steps).
#[test]
fn trajectory_matches_the_float64_torch_reference() {
    let g = gpu();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let io = TensorFile::read(&root.join("ddrm/io.safetensors")).unwrap();
    let unet = Unet::load(g, &root.join("adm_plain_newattn")).unwrap();
    let prior = UnetPrior { unet: &unet, class: None };
    let shape = [2usize, 3, 16, 16];
    let keys = vec![7u32, 11];
    let k = reddiff::solvers::image_keys(g, &keys, 2).unwrap();
    for (name, offset) in (0..10).map(|i| (format!("z_{i}"), i as u64)).chain([("z0".to_string(), u64::MAX - 3)]) {
        let ours = reddiff::ops::normal_keyed(g, &shape, 0, &k, offset, 0.0, 1.0).unwrap().read(g).unwrap();
        let err = ours.iter().zip(&io.get(&name).unwrap().data).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err < 1e-5, "{name}: reddiff's draws differ from the fixture's by {err}");
    }
    for (kind, key, sigma_y) in
        [(TaskKind::InpaintBox, "box", 0.0), (TaskKind::Sr(2), "sr2", 0.0), (TaskKind::Sr(2), "sr2_noisy", 0.05), (TaskKind::Color, "color", 0.0)]
    {
        let task = Task { kind: kind.clone(), seed: 0 };
        let op = task.operator(g, 3, 16, 16).unwrap();
        let yh = io.get(&format!("y_{key}")).unwrap();
        let y = g.upload(&yh.shape, &yh.data).unwrap();
        let opts = DdrmOptions { steps: 10, sigma_y, image_keys: keys.clone(), ..DdrmOptions::for_task(&task, sigma_y).unwrap() };
        let out = reddiff::gpu::block_on(ddrm(g, &prior, &*op, &y, &shape, &Schedule::ddpm(), &opts, |_| true)).unwrap().read(g).unwrap();
        let want = &io.get(&format!("out_{key}")).unwrap().data;
        let scale = want.iter().map(|v| v.abs()).fold(0f32, f32::max);
        let err = out.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) / scale;
        eprintln!("{key}: 10 steps, max |reddiff - torch| / max |torch| = {err:.2e}");
        assert!(err <= 1e-4, "{key}: the trajectory ends {err:.2e} (relative) away from the float64 reference");
    }
}
