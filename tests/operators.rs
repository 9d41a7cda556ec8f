//! Operators: adjoint identity ⟨Hx, y⟩ = ⟨x, Hᵀy⟩ for every linear one, finite-difference gradient checks for
//! the nonlinear ones, and H(H⁺y) = y where the pseudo-inverse is exact.

mod common;

use common::gpu;
use reddiff::operators::patterns::{self, Matrix, SplitMix};
use reddiff::operators::{fft_pays, measure, ConvRoute, Convolution, Operator, Task, TaskKind, PINV_REL_REG};
use reddiff::{ops, Gpu, Tensor};

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

fn op(g: &Gpu, kind: TaskKind, c: usize, s: usize) -> Box<dyn Operator> {
    Task { kind, seed: 7 }.operator(g, c, s, s).unwrap()
}

const LINEAR: &[&str] = &[
    "inpaint-box",
    "inpaint-random",
    "inpaint-freeform",
    "sr2",
    "sr4",
    "sr8",
    "bicubic4",
    "deblur-gauss",
    "deblur-uniform",
    "deblur-motion",
    "color",
    "denoise",
];

#[test]
fn adjoint_identity_for_every_linear_operator() {
    let g = gpu();
    let (n, c, s) = (2, 3, 32);
    for name in LINEAR {
        let h = op(g, name.parse().unwrap(), c, s);
        let x = ops::normal(g, &[n, c, s, s], 1, 0, 0.0, 1.0).unwrap();
        let y = ops::normal(g, &h.measurement_shape(&[n, c, s, s]), 2, 0, 0.0, 1.0).unwrap();
        let hx = h.forward(g, &x).unwrap();
        assert_eq!(hx.shape(), y.shape(), "{name}: measurement shape");
        let hty = h.adjoint(g, &y).unwrap().unwrap();
        assert_eq!(hty.shape(), x.shape(), "{name}: adjoint shape");
        let (l, r) = (dot(&hx.read(g).unwrap(), &y.read(g).unwrap()), dot(&x.read(g).unwrap(), &hty.read(g).unwrap()));
        let rel = (l - r).abs() / l.abs().max(r.abs()).max(1e-9);
        eprintln!("{name}: <Hx,y> = {l:.6}, <x,H^T y> = {r:.6}, relative gap {rel:.1e}");
        assert!(rel < 1e-4, "{name}: adjoint identity fails: {l} vs {r}");
    }
}

#[test]
fn pseudo_inverse_is_exact_where_it_must_be() {
    let g = gpu();
    let (n, c, s) = (1, 3, 32);
    for name in ["inpaint-box", "inpaint-random", "sr2", "sr4", "sr8", "bicubic4", "color", "denoise"] {
        let h = op(g, name.parse().unwrap(), c, s);
        let x = ops::normal(g, &[n, c, s, s], 3, 0, 0.0, 1.0).unwrap();
        let y = h.forward(g, &x).unwrap();
        let back = h.forward(g, &h.pinv(g, &y).unwrap().unwrap()).unwrap();
        let (a, b) = (y.read(g).unwrap(), back.read(g).unwrap());
        let err = a.iter().zip(&b).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        eprintln!("{name}: max|H(H+ y) - y| = {err:.2e}");
        assert!(err < 1e-4, "{name}: H(H+ y) != y (max error {err})");
    }
}

/// P · (AAᵀ + δI) − Aᵀ (wide A) or (AᵀA + δI) · P − Aᵀ (tall A), largest entry relative to the largest of Aᵀ.
fn normal_equation_gap(a: &Matrix, p: &Matrix, rel_reg: f64) -> f64 {
    let (m, n) = (a.rows, a.cols);
    let at = |r: usize, c: usize| a.data[r * n + c];
    let pt = |r: usize, c: usize| p.data[r * m + c];
    let k = m.min(n);
    let gram = |i: usize, j: usize| if m <= n { (0..n).map(|t| at(i, t) * at(j, t)).sum::<f64>() } else { (0..m).map(|t| at(t, i) * at(t, j)).sum() };
    let delta = rel_reg * (0..k).map(|i| gram(i, i)).sum::<f64>() / k as f64;
    let g = |i: usize, j: usize| gram(i, j) + if i == j { delta } else { 0.0 };
    let scale = a.data.iter().fold(0f64, |s, v| s.max(v.abs()));
    let mut worst = 0f64;
    for r in 0..n {
        for c in 0..m {
            let lhs: f64 = if m <= n { (0..m).map(|t| pt(r, t) * g(t, c)).sum() } else { (0..n).map(|t| g(r, t) * pt(t, c)).sum() };
            worst = worst.max((lhs - at(c, r)).abs() / scale);
        }
    }
    worst
}

#[test]
fn matrix_pseudo_inverse_solves_the_normal_equations() {
    let mut rng = SplitMix::new(5);
    let dense = Matrix { rows: 9, cols: 14, data: (0..9 * 14).map(|_| rng.normal()).collect() };
    let tall = Matrix { rows: 14, cols: 9, data: (0..14 * 9).map(|_| rng.normal()).collect() };
    let gauss = patterns::gaussian_taps(13, 3.0).unwrap();
    let cases = [
        ("block average 48/4", Matrix::block_average(48, 4).unwrap(), 0.0),
        ("bicubic 48/4", Matrix::bicubic(48, 4).unwrap(), 0.0),
        ("gaussian blur 40", Matrix::convolution(40, &gauss), 1e-2),
        ("uniform blur 33", Matrix::convolution(33, &[1.0 / 7.0; 7]), 1e-2),
        ("dense random 9x14", dense, 0.0),
        ("dense random 14x9 (tall)", tall, 1e-3),
    ];
    for (name, a, reg) in &cases {
        let p = a.pinv(*reg).unwrap();
        assert_eq!((p.rows, p.cols), (a.cols, a.rows), "{name}: shape");
        let gap = normal_equation_gap(a, &p, *reg);
        eprintln!("{name}: normal-equation gap {gap:.1e}");
        assert!(gap < 1e-9, "{name}: pseudo-inverse off by {gap}");
    }
    let empty = Matrix { rows: 0, cols: 5, data: vec![] }.pinv(0.0).unwrap();
    assert_eq!((empty.rows, empty.cols), (5, 0));
    let mut singular = Matrix::block_average(16, 2).unwrap();
    singular.data[..16].fill(0.0);
    let err = singular.pinv(0.0).unwrap_err().to_string();
    assert!(err.contains("singular"), "a zero row without regularisation: {err}");
}

fn loss(g: &Gpu, h: &dyn Operator, x: &Tensor, y: &[f32]) -> f64 {
    let hx = h.forward(g, x).unwrap().read(g).unwrap();
    hx.iter().zip(y).map(|(a, b)| ((*b - *a) as f64).powi(2)).sum::<f64>() / (2.0 * y.len() as f64)
}

fn fd_check(name: &str, h: &dyn Operator, x: Vec<f32>, shape: &[usize], truth: Vec<f32>, eps: f32) {
    let g = gpu();
    let y = h.forward(g, &g.upload(shape, &truth).unwrap()).unwrap();
    let yh = y.read(g).unwrap();
    let tx = g.upload(shape, &x).unwrap();
    let grad = h.grad(g, &tx, &y).unwrap().read(g).unwrap();
    let d = ops::normal(g, shape, 11, 0, 0.0, 1.0).unwrap().read(g).unwrap();
    let plus: Vec<f32> = x.iter().zip(&d).map(|(a, b)| a + eps * b).collect();
    let minus: Vec<f32> = x.iter().zip(&d).map(|(a, b)| a - eps * b).collect();
    let fd = (loss(g, h, &g.upload(shape, &plus).unwrap(), &yh) - loss(g, h, &g.upload(shape, &minus).unwrap(), &yh)) / (2.0 * eps as f64);
    let an = dot(&grad, &d);
    let rel = (fd - an).abs() / fd.abs().max(an.abs()).max(1e-12);
    eprintln!("{name}: finite difference {fd:.6e}, analytic {an:.6e}, relative gap {rel:.1e}");
    assert!(rel < 2e-2, "{name}: gradient check fails: fd {fd} vs analytic {an}");
}

#[test]
fn nonlinear_gradients_match_finite_differences() {
    let g = gpu();
    let shape = [1usize, 3, 16, 16];
    let n: usize = shape.iter().product();
    let truth = ops::normal(g, &shape, 21, 0, 0.0, 0.4).unwrap().read(g).unwrap();
    // HDR: keep every |2x| away from the clipping kink by more than the step.
    let x: Vec<f32> = ops::normal(g, &shape, 22, 0, 0.0, 0.4)
        .unwrap()
        .read(g)
        .unwrap()
        .iter()
        .map(|v| if (2.0 * v).abs() > 0.9 && (2.0 * v).abs() < 1.1 { 0.0 } else { *v })
        .collect();
    fd_check("hdr", &*op(g, TaskKind::Hdr, 3, 16), x, &shape, truth.clone(), 1e-3);
    let x = ops::normal(g, &shape, 23, 0, 0.0, 0.5).unwrap().read(g).unwrap();
    fd_check("phase", &*op(g, TaskKind::Phase, 3, 16), x, &shape, truth, 1e-2);
    // The linear gradient too (through the adjoint), for one operator.
    let x = ops::normal(g, &shape, 24, 0, 0.0, 0.5).unwrap().read(g).unwrap();
    let t = ops::normal(g, &shape, 25, 0, 0.0, 0.5).unwrap().read(g).unwrap();
    assert_eq!(x.len(), n);
    fd_check("deblur-gauss", &*op(g, TaskKind::DeblurGauss, 3, 16), x, &shape, t, 1e-2);
}

#[test]
fn measurement_noise_has_the_stated_level() {
    let g = gpu();
    let h = op(g, TaskKind::Denoise, 3, 32);
    let x = g.zeros(&[4, 3, 32, 32]).unwrap();
    let y = measure(g, &*h, &x, 0.05, 9).unwrap().read(g).unwrap();
    let sd = (y.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
    assert!((sd - 0.1).abs() < 0.005, "noise sd {sd}, expected 2 * 0.05");
}

#[test]
fn task_names_and_bad_task_input() {
    let g = gpu();
    for name in reddiff::operators::TASK_NAMES {
        if !name.ends_with("=FILE") {
            let kind: TaskKind = name.replace("=QF", "=50").parse().unwrap();
            assert!(Task { kind, seed: 0 }.operator(g, 3, 32, 32).is_ok(), "{name}");
        }
    }
    assert!("nope".parse::<TaskKind>().is_err());
    assert!("inpaint-mask".parse::<TaskKind>().is_err(), "file required");
    assert!(Task { kind: TaskKind::Color, seed: 0 }.operator(g, 1, 32, 32).is_err(), "color on a 1-channel model");
    assert!(Task { kind: TaskKind::Sr(8), seed: 0 }.operator(g, 3, 36, 36).is_err(), "36 is not a multiple of 8");
    assert!(Task { kind: TaskKind::Phase, seed: 0 }.operator(g, 3, 48, 48).is_err(), "48 is not a power of two");
    for bad in ["jpeg", "jpeg=0", "jpeg=101", "jpeg=x", "jpeg444="] {
        assert!(bad.parse::<TaskKind>().is_err(), "{bad}");
    }
    let missing = Task { kind: TaskKind::InpaintMask("/nonexistent/mask.png".into()), seed: 0 }.operator(g, 3, 32, 32);
    assert!(matches!(missing, Err(reddiff::Error::Io { .. })));
}

/// "Same" correlation of every [H, W] plane with a k×k kernel and zero padding (flipped: convolution, the
/// adjoint), in f64.
fn correlate_cpu(x: &[f32], planes: usize, h: usize, w: usize, kern: &[f32], k: usize, flipped: bool) -> Vec<f32> {
    let r = k as isize / 2;
    let mut out = vec![0f32; x.len()];
    for p in 0..planes {
        for i in 0..h as isize {
            for j in 0..w as isize {
                let mut s = 0f64;
                for a in 0..k as isize {
                    for b in 0..k as isize {
                        let (y, xx) = if flipped { (i - a + r, j - b + r) } else { (i + a - r, j + b - r) };
                        if y >= 0 && y < h as isize && xx >= 0 && xx < w as isize {
                            s += kern[(a * k as isize + b) as usize] as f64 * x[p * h * w + (y * w as isize + xx) as usize] as f64;
                        }
                    }
                }
                out[p * h * w + (i * w as isize + j) as usize] = s as f32;
            }
        }
    }
    out
}

#[test]
fn blur_convolution_through_the_fft_matches_the_direct_one() {
    let g = gpu();
    let mut rng = common::Rng::new(5);
    // (n, c, h, w, k): odd plane counts (one plane of a pair unused), non-square, h + k/2 exactly a power of
    // two (the tightest padding: the wrap-around must land on zeros only) and one more (the padding must grow),
    // a kernel wider than half the image.
    for (n, c, h, w, k) in [(2, 3, 17, 16, 9), (1, 3, 33, 70, 31), (1, 1, 28, 28, 9), (1, 1, 29, 20, 9), (1, 2, 40, 24, 45), (3, 1, 5, 12, 3)] {
        let kern = rng.vec(k * k);
        let x = rng.vec(n * c * h * w);
        let xt = g.upload(&[n, c, h, w], &x).unwrap();
        let want = correlate_cpu(&x, n * c, h, w, &kern, k, false);
        let want_t = correlate_cpu(&x, n * c, h, w, &kern, k, true);
        for route in [ConvRoute::Direct, ConvRoute::Fft] {
            let op = Convolution::with_route(g, &kern, k, h, w, route, "test").unwrap();
            assert_eq!(op.route(), route);
            let what = format!("{route:?} n={n} c={c} {h}x{w} k={k}");
            common::assert_close(&format!("{what} forward"), &op.forward(g, &xt).unwrap().read(g).unwrap(), &want, 1e-5);
            common::assert_close(&format!("{what} adjoint"), &op.adjoint(g, &xt).unwrap().unwrap().read(g).unwrap(), &want_t, 1e-5);
        }
    }
    // The automatic choice: small kernels stay direct, large ones go through the FFT.
    assert_eq!(Convolution::new(g, &[1.0; 81], 9, 32, 32, "t").unwrap().route(), ConvRoute::Direct);
    assert_eq!(Convolution::new(g, &vec![1.0; 61 * 61], 61, 256, 256, "t").unwrap().route(), ConvRoute::Fft);
    assert!(fft_pays(121, 512, 512) && !fft_pays(3, 512, 512));
    // Wrong kernels and images are refused, not computed.
    assert!(Convolution::new(g, &[1.0; 4], 2, 32, 32, "t").is_err());
    assert!(Convolution::new(g, &[f32::NAN; 9], 3, 32, 32, "t").is_err());
    assert!(Convolution::new(g, &[1.0; 81], 9, 3, 32, "t").is_err());
    let op = Convolution::with_route(g, &[1.0; 9], 3, 8, 8, ConvRoute::Fft, "t").unwrap();
    assert!(op.forward(g, &g.zeros(&[1, 3, 8, 9]).unwrap()).is_err());
}

/// The Tikhonov pseudo-inverse (HᵀH + δI)⁻¹Hᵀy of the "same" correlation, plane by plane in f64 from the
/// dense matrix of H, δ = rel · Σ K²: the reference for `Convolution::pinv`. `Matrix::pinv` (checked against
/// the normal equations above) gives Hᵀ(HHᵀ + δ'I)⁻¹, the same matrix, with δ' relative to HHᵀ's mean diagonal.
fn tikhonov_cpu(y: &[f32], planes: usize, h: usize, w: usize, kern: &[f32], k: usize, rel: f64) -> Vec<f32> {
    let n = h * w;
    let mut hm = Matrix { rows: n, cols: n, data: vec![0.0; n * n] };
    for i in 0..n {
        let mut e = vec![0f32; n];
        e[i] = 1.0;
        for (r, v) in correlate_cpu(&e, 1, h, w, kern, k, false).iter().enumerate() {
            hm.data[r * n + i] = *v as f64;
        }
    }
    let delta = rel * kern.iter().map(|&v| v as f64 * v as f64).sum::<f64>();
    let mean_diag = hm.data.iter().map(|v| v * v).sum::<f64>() / n as f64;
    let p = hm.pinv(delta / mean_diag).unwrap();
    let mut out = vec![0f32; planes * n];
    for (o, yp) in out.chunks_mut(n).zip(y.chunks(n)) {
        for (i, v) in o.iter_mut().enumerate() {
            *v = (0..n).map(|j| p.data[i * n + j] * yp[j] as f64).sum::<f64>() as f32;
        }
    }
    out
}

#[test]
fn blur_convolution_pseudo_inverse_is_the_tikhonov_solution() {
    let g = gpu();
    let mut rng = common::Rng::new(8);
    // Odd plane counts, non-square, both routes; enough iterations to converge, against the dense solve.
    for (n, c, h, w, k) in [(1, 3, 13, 9, 5), (2, 1, 12, 20, 9)] {
        let kern = rng.vec(k * k);
        let y = rng.vec(n * c * h * w);
        let want = tikhonov_cpu(&y, n * c, h, w, &kern, k, PINV_REL_REG);
        let yt = g.upload(&[n, c, h, w], &y).unwrap();
        for route in [ConvRoute::Direct, ConvRoute::Fft] {
            let op = Convolution::with_route(g, &kern, k, h, w, route, "test").unwrap().with_pinv_iters(400).unwrap();
            let got = op.pinv(g, &yt).unwrap().unwrap();
            assert_eq!(got.shape(), &[n, c, h, w]);
            common::assert_close(&format!("{route:?} n={n} c={c} {h}x{w} k={k} pinv"), &got.read(g).unwrap(), &want, 1e-4);
        }
    }
    // The default iteration count on the task's own motion blur at 32² (k = 9): H⁺y within a few per cent of
    // the exact solution, and far closer to it than y is.
    let (h, w) = (32, 32);
    let op = Task { kind: TaskKind::DeblurMotion, seed: 7 }.operator(g, 1, h, w).unwrap();
    let kern = reddiff::operators::patterns::motion_kernel(9, 7).unwrap();
    let x = rng.vec(h * w);
    let y = op.forward(g, &g.upload(&[1, 1, h, w], &x).unwrap()).unwrap();
    let yv = y.read(g).unwrap();
    let want = tikhonov_cpu(&yv, 1, h, w, &kern, 9, PINV_REL_REG);
    let got = op.pinv(g, &y).unwrap().unwrap().read(g).unwrap();
    let dist = |a: &[f32]| a.iter().zip(&want).map(|(p, q)| (*p as f64 - *q as f64).powi(2)).sum::<f64>().sqrt();
    let norm = dist(&vec![0.0; h * w]);
    assert!(dist(&got) < 0.1 * norm && dist(&got) < 0.25 * dist(&yv), "|H⁺y − exact| {} vs |y − exact| {} (|exact| {norm})", dist(&got), dist(&yv));
    // Refused: a zero kernel, zero iterations, a wrong image size.
    assert!(Convolution::new(g, &[0.0; 9], 3, 8, 8, "t").is_err());
    assert!(Convolution::new(g, &[1.0; 9], 3, 8, 8, "t").unwrap().with_pinv_iters(0).is_err());
    assert!(op.pinv(g, &g.zeros(&[1, 1, 32, 31]).unwrap()).is_err(), "wrong image size");
}

#[test]
fn fft_convolution_splits_planes_over_small_bindings() {
    // A 40000-byte binding holds one padded 64x64 complex plane (32 KiB), so six planes go two at a time.
    let small = reddiff::GpuOptions { max_binding_bytes: Some(40_000), ..reddiff::GpuOptions::from_env() };
    let g = reddiff::gpu::block_on(Gpu::with_options(small)).expect("gpu");
    let mut rng = common::Rng::new(6);
    let (n, c, h, w, k) = (2, 3, 40, 40, 45);
    let kern = rng.vec(k * k);
    let x = rng.vec(n * c * h * w);
    let op = Convolution::new(&g, &kern, k, h, w, "t").unwrap();
    assert_eq!(op.route(), ConvRoute::Fft);
    let got = op.forward(&g, &g.upload(&[n, c, h, w], &x).unwrap()).unwrap().read(&g).unwrap();
    common::assert_close("chunked fft convolution", &got, &correlate_cpu(&x, n * c, h, w, &kern, k, false), 1e-5);
}
