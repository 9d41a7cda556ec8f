//! Every kernel against a plain CPU reference on random inputs, odd sizes included.

mod common;

use common::{assert_close, gpu, gpu_tiled, Rng};
use reddiff::gpu::{ConvKernel, TileConfig};
use reddiff::ops::{self, AttentionKernel, Bias, ChannelTerm, Conv2d, ConvWeights, Epilogue, GroupNorm, MatView, Matmul, MatmulKernel, ScaleShift};
use reddiff::{Gpu, Tensor};

#[test]
fn elementwise_ops_match_cpu() {
    let g = gpu();
    let mut r = Rng::new(1);
    for n in [1usize, 7, 256, 1000, 65_537] {
        let a = r.vec(n);
        let b = r.vec(n);
        let ta = g.upload(&[n], &a).unwrap();
        let tb = g.upload(&[n], &b).unwrap();
        let cpu = |f: &dyn Fn(f32, f32) -> f32| a.iter().zip(&b).map(|(x, y)| f(*x, *y)).collect::<Vec<f32>>();
        assert_close("add", &ops::add(g, &ta, &tb).unwrap().read(g).unwrap(), &cpu(&|x, y| x + y), 1e-6);
        assert_close("mul", &ops::mul(g, &ta, &tb).unwrap().read(g).unwrap(), &cpu(&|x, y| x * y), 1e-6);
        assert_close("axpby", &ops::axpby(g, 0.3, &ta, -2.0, &tb).unwrap().read(g).unwrap(), &cpu(&|x, y| 0.3 * x - 2.0 * y), 1e-6);
        assert_close("affine", &ops::affine(g, &ta, 1.5, 0.25).unwrap().read(g).unwrap(), &cpu(&|x, _| 1.5 * x + 0.25), 1e-6);
        assert_close("clamp", &ops::clamp(g, &ta, -0.5, 0.2).unwrap().read(g).unwrap(), &cpu(&|x, _| x.clamp(-0.5, 0.2)), 0.0);
        let silu_ref = cpu(&|x, _| 4.0 * x / (1.0 + (-4.0 * x).exp()));
        let a4 = ops::affine(g, &ta, 4.0, 0.0).unwrap();
        assert_close("silu", &ops::silu(g, &a4).unwrap().read(g).unwrap(), &silu_ref, 1e-6);
        assert_close("fill", &ops::fill(g, &[n], 2.5).unwrap().read(g).unwrap(), &vec![2.5; n], 0.0);
    }
}

#[test]
fn broadcast_concat_slice_match_cpu() {
    let mut r = Rng::new(2);
    // Both element grids (RUN = 16 consecutive elements per invocation on CPU adapters, 1 on GPUs). The 1x3
    // planes make one run cross planes, channels and images; the last shape spans several workgroups.
    let shapes = [(3, 2, 1, 3), (2, 5, 3, 7), (2, 5, 30, 37)];
    for (g, (n, c, h, w)) in [gpu(), gpu_tiled()].into_iter().flat_map(|g| shapes.map(|s| (g, s))) {
        let x = r.vec(n * c * h * w);
        let b = r.vec(n * c);
        let bc = r.vec(c);
        let tx = g.upload(&[n, c, h, w], &x).unwrap();
        let s = h * w;
        let want: Vec<f32> = (0..x.len()).map(|i| x[i] + b[i / s]).collect();
        assert_close("add_bcast [N,C]", &ops::add_bcast(g, &tx, &g.upload(&[n, c], &b).unwrap()).unwrap().read(g).unwrap(), &want, 1e-6);
        let want: Vec<f32> = (0..x.len()).map(|i| x[i] * bc[(i / s) % c]).collect();
        assert_close("mul_bcast [C]", &ops::mul_bcast(g, &tx, &g.upload(&[c], &bc).unwrap()).unwrap().read(g).unwrap(), &want, 1e-6);
        let c2 = 3;
        let y = r.vec(n * c2 * s);
        let ty = g.upload(&[n, c2, h, w], &y).unwrap();
        let cat = ops::concat_channels(g, &tx, &ty).unwrap();
        assert_eq!(cat.shape(), &[n, c + c2, h, w]);
        let mut want = Vec::new();
        for ni in 0..n {
            want.extend_from_slice(&x[ni * c * s..(ni + 1) * c * s]);
            want.extend_from_slice(&y[ni * c2 * s..(ni + 1) * c2 * s]);
        }
        assert_close("concat", &cat.read(g).unwrap(), &want, 0.0);
        let sl = ops::slice_channels(g, &cat, c, c2).unwrap();
        assert_close("slice", &sl.read(g).unwrap(), &y, 0.0);
        // Three at once: cat(x, y, x) equals cat(cat(x, y), x).
        let cat3 = ops::concat3_channels(g, &tx, &ty, &tx).unwrap();
        assert_eq!(cat3.shape(), &[n, 2 * c + c2, h, w]);
        let want = ops::concat_channels(g, &cat, &tx).unwrap().read(g).unwrap();
        assert_close("concat3", &cat3.read(g).unwrap(), &want, 0.0);
        // y plus channels c .. c + c2 of cat(x, y, x) (which are y): 2y, the same sums as add.
        let sum = ops::add_channel_slice(g, &cat3, c, &ty).unwrap();
        let want: Vec<f32> = y.iter().map(|v| v + v).collect();
        assert_close("add_channel_slice", &sum.read(g).unwrap(), &want, 0.0);
    }
    let g = gpu();
    let (a, b) = (g.zeros(&[2, 4, 3]).unwrap(), g.zeros(&[2, 2, 3]).unwrap());
    assert!(ops::add_channel_slice(g, &a, 3, &b).is_err(), "a slice past the last channel");
    assert!(ops::concat3_channels(g, &a, &b, &g.zeros(&[1, 2, 3]).unwrap()).is_err(), "images differ");
}

#[test]
fn dispatch_beyond_65535_workgroups() {
    let g = gpu();
    // 65_535 * 256 + 1000 elements need 65_539 workgroups: the grid folds into 2-D.
    let n = 65_535 * 256 + 1000;
    let a: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let t = g.upload(&[n], &a).unwrap();
    let out = ops::affine(g, &t, 2.0, 1.0).unwrap().read(g).unwrap();
    for i in [0, 1, 65_535 * 256 - 1, 65_535 * 256, n - 1] {
        assert_eq!(out[i], 2.0 * a[i] + 1.0, "element {i}");
    }
    let st = reddiff::ops::Stats::read(g, &ops::stats(g, &t).unwrap(), n).unwrap();
    let want: f64 = a.iter().map(|v| *v as f64).sum();
    assert!(((st.sum as f64 - want) / want).abs() < 1e-5, "sum {} vs {want}", st.sum);
}

fn conv_cpu(
    x: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    n: usize,
    cin: usize,
    h: usize,
    wd: usize,
    cout: usize,
    k: usize,
    s: usize,
    p: usize,
) -> (Vec<f32>, usize, usize) {
    let ho = (h + 2 * p - k) / s + 1;
    let wo = (wd + 2 * p - k) / s + 1;
    let mut out = vec![0f32; n * cout * ho * wo];
    for ni in 0..n {
        for o in 0..cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = b.map(|b| b[o] as f64).unwrap_or(0.0);
                    for c in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as isize - p as isize;
                                let ix = (ox * s + kx) as isize - p as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                acc += x[((ni * cin + c) * h + iy as usize) * wd + ix as usize] as f64 * w[((o * cin + c) * k + ky) * k + kx] as f64;
                            }
                        }
                    }
                    out[((ni * cout + o) * ho + oy) * wo + ox] = acc as f32;
                }
            }
        }
    }
    (out, ho, wo)
}

/// f16 rounding on the CPU (what the GPU's f16 weight packing stores).
fn to_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| half::f16::from_f32(*x).to_f32()).collect()
}

/// One convolution case's random inputs, on the CPU and uploaded: x, bias, a channel term (offset 3, stride
/// Cout + 5) and a residual, drawn in that order.
struct ConvInputs {
    x: Vec<f32>,
    b: Vec<f32>,
    term: Vec<f32>,
    res: Vec<f32>,
    cout: usize,
    ho: usize,
    wo: usize,
    tx: reddiff::gpu::Tensor,
    tb: reddiff::gpu::Tensor,
    tterm: reddiff::gpu::Tensor,
    tres: reddiff::gpu::Tensor,
}

impl ConvInputs {
    fn new(g: &reddiff::Gpu, r: &mut Rng, (n, cin, h, w, cout, k, s, p): (usize, usize, usize, usize, usize, usize, usize, usize)) -> ConvInputs {
        let x = r.vec(n * cin * h * w);
        let b = r.vec(cout);
        let ho = (h + 2 * p - k) / s + 1;
        let wo = (w + 2 * p - k) / s + 1;
        let term = r.vec(3 + n * (cout + 5));
        let res = r.vec(n * cout * ho * wo);
        let tx = g.upload(&[n, cin, h, w], &x).unwrap();
        let tb = g.upload(&[cout], &b).unwrap();
        let tterm = g.upload(&[term.len()], &term).unwrap();
        let tres = g.upload(&[n, cout, ho, wo], &res).unwrap();
        ConvInputs { x, b, term, res, cout, ho, wo, tx, tb, tterm, tres }
    }

    /// Every epilogue part: 0.7 · (sum + bias + term) − 1.3 · residual.
    fn full_epilogue(&self) -> Epilogue<'_> {
        Epilogue {
            bias: Some(&self.tb),
            term: Some(ChannelTerm { t: &self.tterm, offset: 3, stride: self.cout + 5 }),
            residual: Some(&self.tres),
            alpha: 0.7,
            beta: -1.3,
        }
    }

    /// [`ConvInputs::full_epilogue`] on the CPU, applied to the convolution sums `base`.
    fn full_want(&self, base: &[f32]) -> Vec<f32> {
        let (cout, hw) = (self.cout, self.ho * self.wo);
        base.iter()
            .enumerate()
            .map(|(i, v)| {
                let (m, ni) = ((i / hw) % cout, i / (cout * hw));
                0.7 * (v + self.b[m] + self.term[3 + ni * (cout + 5) + m]) - 1.3 * self.res[i]
            })
            .collect()
    }
}

#[test]
fn conv2d_every_kernel_and_epilogue_matches_cpu() {
    let g = gpu();
    let mut r = Rng::new(3);
    // (n, cin, h, w, cout, k, stride, pad)
    let cases = [
        (2, 3, 7, 9, 5, 3, 1, 1),
        (1, 8, 16, 16, 8, 3, 2, 1),
        (2, 6, 5, 11, 7, 1, 1, 0),
        (1, 4, 9, 9, 3, 5, 2, 2),
        (1, 2, 6, 6, 1, 2, 1, 0),
        (1, 33, 13, 13, 17, 3, 1, 1),
        // conv3x3.wgsl and conv_sg.wgsl's conv3x3 with two workgroups of pixels per (image, channel block) and a partial last one
        (2, 5, 20, 18, 9, 3, 1, 1),
        // conv_sg.wgsl's conv1x1 with two workgroups of pixels per channel block
        (1, 3, 20, 18, 10, 1, 1, 0),
        // conv_sg.wgsl's conv3x3 with rows of whole subgroups: one row per subgroup over three workgroups
        // (W = 32), and one row per lane (W = 3); (1, 33, 13, 13, ...) above has two rows per subgroup and a
        // partial one; W = 9 and 18 above have rows across subgroup ends (ROW_EDGES, no vec4 loads)
        (2, 3, 20, 32, 5, 3, 1, 1),
        (1, 2, 5, 3, 4, 3, 1, 1),
        (2, 20, 1, 37, 70, 1, 1, 0),
        // conv_sg.wgsl's conv3x3 reading rows as vec4s (VEC4_X: W % 4 == 0) on rows across subgroup ends
        // (ROW_EDGES: W = 40, and W = 64, two whole subgroups per row, over two workgroups), and on rows of two
        // blocks (W = 8), four rows per subgroup and a partial last subgroup
        (1, 4, 6, 40, 9, 3, 1, 1),
        (1, 3, 9, 64, 10, 3, 1, 1),
        (2, 3, 7, 8, 6, 3, 1, 1),
        // conv_sg.wgsl's conv3x3 on one row (its second row of the pair lies outside the image)
        (2, 3, 1, 8, 5, 3, 1, 1),
        // inputs of fewer than 4 floats: conv_sg.wgsl's vec4 view is bound to a stand-in and not read
        (1, 2, 1, 1, 3, 1, 1, 0),
        (1, 1, 1, 3, 2, 3, 1, 1),
        // Winograd at the channel counts where it is chosen by default: partial tiles in both directions,
        // Cout not a multiple of 16 (the 1x1 products' channel blocks), an odd tile count (no vec4 loads)
        (2, 100, 10, 13, 97, 3, 1, 1),
    ];
    // Cooperative matrices only where the device has them (never on lavapipe); f16 operands, so their
    // tolerance is 2e-3 of the output's scale instead of 1e-5. Winograd on every shape (other than 3x3 with
    // stride 1 and padding 1 it runs the direct subgroup-shared kernels).
    let families: Vec<ConvKernel> = std::iter::once(ConvKernel::RegisterBlocked)
        .chain(Some(ConvKernel::SharedWeights).filter(|_| g.shared_weights()))
        .chain(Some(ConvKernel::Winograd).filter(|_| g.shared_weights()))
        .chain(TileConfig::CANDIDATES.iter().map(|t| ConvKernel::Tiled(*t)))
        .chain(reddiff::gpu::COOP_BM.iter().filter(|_| g.coop_matrix()).flat_map(|&bm| [1, 4].map(|splits| ConvKernel::CoopMatrix { bm, splits })))
        .collect();
    for (ci, (n, cin, h, w, cout, k, s, p)) in cases.into_iter().enumerate() {
        let c = ConvInputs::new(g, &mut r, (n, cin, h, w, cout, k, s, p));
        let (x, b, ho, wo, tx, tb) = (&c.x, &c.b, c.ho, c.wo, &c.tx, &c.tb);
        for f16 in [false, true] {
            let raw = r.vec(cout * cin * k * k);
            let wt = if f16 { to_f16(&raw) } else { raw.clone() };
            let packed = ops::pack_conv(g, &g.upload(&[cout, cin, k, k], &raw).unwrap(), f16).unwrap();
            assert_eq!(packed.is_f16(), f16);
            let (base, bho, bwo) = conv_cpu(x, &wt, None, n, cin, h, w, cout, k, s, p);
            assert_eq!((bho, bwo), (ho, wo));
            // Epilogue variants: plain; bias; bias + channel term + scaled residual.
            for epi_kind in 0..3 {
                let epi = match epi_kind {
                    0 => Epilogue::bias(None),
                    1 => Epilogue::bias(Some(&tb)),
                    _ => c.full_epilogue(),
                };
                let want: Vec<f32> = match epi_kind {
                    0 => base.clone(),
                    1 => base.iter().enumerate().map(|(i, v)| v + b[(i / (ho * wo)) % cout]).collect(),
                    _ => c.full_want(&base),
                };
                for fam in &families {
                    // Every tile on the first and last case (and the vec4 tiles on the second, stride 2); the
                    // default tile elsewhere (lavapipe compiles are slow).
                    let every = ci == 0 || ci == cases.len() - 1 || (ci == 1 && matches!(fam, ConvKernel::Tiled(t) if t.vec4));
                    if matches!(fam, ConvKernel::Tiled(t) if *t != TileConfig::DEFAULT) && !every {
                        continue;
                    }
                    let out = ops::conv2d_with(g, tx, &packed, Conv2d { stride: s, padding: p }, &epi, Some(*fam)).unwrap();
                    assert_eq!(out.shape(), &[n, cout, ho, wo]);
                    let what = format!("conv2d {fam:?} f16={f16} epilogue {epi_kind} {:?}", (n, cin, h, w, cout, k, s, p));
                    // Winograd F(4x4, 3x3) rounds in its transforms: ~1e-6 of the scale at these sizes, 1e-5 at
                    // 256 channels.
                    let tol = match fam {
                        ConvKernel::CoopMatrix { .. } => 2e-3,
                        ConvKernel::Winograd => 2e-5,
                        _ => 1e-5,
                    };
                    assert_close(&what, &out.read(g).unwrap(), &want, tol);
                }
            }
        }
    }
}

/// A random 3×3 layer with bias for the Winograd tests, `(n, cin, h, w, cout)`: the input's values, the
/// uploaded input, the bias, the packed f32 weights and the CPU result.
fn winograd_layer(g: &Gpu, r: &mut Rng, (n, cin, h, w, cout): (usize, usize, usize, usize, usize)) -> (Vec<f32>, Tensor, Tensor, ConvWeights, Vec<f32>) {
    let x = r.vec(n * cin * h * w);
    let raw = r.vec(cout * cin * 9);
    let b = r.vec(cout);
    let (want, _, _) = conv_cpu(&x, &raw, Some(&b), n, cin, h, w, cout, 3, 1, 1);
    let tx = g.upload(&[n, cin, h, w], &x).unwrap();
    let tb = g.upload(&[cout], &b).unwrap();
    let packed = ops::pack_conv(g, &g.upload(&[cout, cin, 3, 3], &raw).unwrap(), false).unwrap();
    (x, tx, tb, packed, want)
}

/// Winograd on layers whose temporaries exceed one storage binding runs in chunks of tiles: with bindings
/// capped at 8 KiB, 8 output channels take chunks of 4 tiles — across an image boundary (2 images of 6
/// tiles) and with a last chunk of one tile (9 tiles) — and still match the CPU; an image alone gives the
/// same bits as in the batch. A cap that is not a power of two (12,000 bytes) is taken as the power of two
/// below it (the temporaries have power-of-two sizes).
#[test]
fn winograd_in_chunks_matches_cpu() {
    let mut r = Rng::new(11);
    for ((n, cin, h, w, cout), cap) in [(2, 2, 12, 8, 8), (1, 2, 12, 12, 8)].into_iter().flat_map(|c| [(c, 8192), (c, 12_000)]) {
        let opts = reddiff::GpuOptions { max_binding_bytes: Some(cap), ..reddiff::GpuOptions::from_env() };
        let g = reddiff::gpu::block_on(reddiff::Gpu::with_options(opts)).expect("gpu");
        if !g.shared_weights() {
            eprintln!("skipped: Winograd runs on CPU adapters with subgroups of at least 8 lanes");
            return;
        }
        let (x, tx, tb, packed, want) = winograd_layer(&g, &mut r, (n, cin, h, w, cout));
        let out = ops::conv2d_with(&g, &tx, &packed, Conv2d::same(3), &Epilogue::bias(Some(&tb)), Some(ConvKernel::Winograd)).unwrap();
        let out = out.read(&g).unwrap();
        assert_close(&format!("winograd in chunks {:?}, bindings of {cap} bytes", (n, cin, h, w, cout)), &out, &want, 2e-5);
        // Each image alone (other chunks) gives the same bits as in the batch.
        let per = cin * h * w;
        for i in 0..n {
            let xi = g.upload(&[1, cin, h, w], &x[i * per..(i + 1) * per]).unwrap();
            let alone = ops::conv2d_with(&g, &xi, &packed, Conv2d::same(3), &Epilogue::bias(Some(&tb)), Some(ConvKernel::Winograd)).unwrap().read(&g).unwrap();
            let part = &out[i * cout * h * w..(i + 1) * cout * h * w];
            assert!(alone.iter().zip(part).all(|(a, b)| a.to_bits() == b.to_bits()), "image {i} alone differs from the batch");
        }
    }
}

/// A small layer's Winograd-transformed kernels are kept with its weights after the first call — also when
/// that call is inside a graph capture, where they are made outside the graph: after a capture that is never
/// replayed they are there and right, and the graph's replay gives the same bits as an eager call.
#[test]
fn winograd_kernels_are_kept_and_made_outside_captures() {
    let g = gpu();
    if !g.shared_weights() {
        eprintln!("skipped: Winograd runs on CPU adapters with subgroups of at least 8 lanes");
        return;
    }
    let mut r = Rng::new(12);
    let (_, tx, tb, packed, want) = winograd_layer(g, &mut r, (2, 5, 9, 10, 6));
    let run = || ops::conv2d_with(g, &tx, &packed, Conv2d::same(3), &Epilogue::bias(Some(&tb)), Some(ConvKernel::Winograd));
    assert!(!packed.has_winograd_kernels());
    let (out, graph) = g.capture(run).unwrap();
    assert!(packed.has_winograd_kernels(), "the capture's call keeps the kernels");
    drop((out, graph));
    let eager = run().unwrap().read(g).unwrap();
    assert_close("winograd with kernels made during an unreplayed capture", &eager, &want, 2e-5);
    let (out, graph) = g.capture(run).unwrap();
    g.replay(&graph).unwrap();
    let replayed = out.read(g).unwrap();
    assert!(replayed.iter().zip(&eager).all(|(a, b)| a.to_bits() == b.to_bits()), "replay differs from the eager call");
}

fn matmul_cpu(a: &[f32], av: MatView, b: &[f32], bv: MatView, batch: usize, m: usize, n: usize, k: usize) -> Vec<f32> {
    let idx = |v: MatView, bt: usize, i: usize, j: usize| v.offset + (bt / v.inner) * v.batch_hi + (bt % v.inner) * v.batch_lo + i * v.row + j * v.col;
    let mut out = vec![0f32; batch * m * n];
    for bt in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0f64;
                for kk in 0..k {
                    acc += a[idx(av, bt, i, kk)] as f64 * b[idx(bv, bt, kk, j)] as f64;
                }
                out[(bt * m + i) * n + j] = acc as f32;
            }
        }
    }
    out
}

#[test]
fn matmul_every_variant_matches_cpu() {
    let g = gpu();
    let mut r = Rng::new(4);
    let kernels: Vec<MatmulKernel> = [MatmulKernel::RegisterBlocked, MatmulKernel::Tiled, MatmulKernel::Rows]
        .into_iter()
        .chain(Some(MatmulKernel::SharedA).filter(|_| g.shared_weights()))
        .collect();
    for kernel in kernels {
        // (batch, m, n, k); the row-vector kernel only on its shapes (m <= 8).
        let shapes: &[(usize, usize, usize, usize)] = if kernel == MatmulKernel::Rows {
            // the last two read k four at a time (VEC4_K: k % 4 == 0, everything aligned)
            &[(1, 1, 1, 1), (2, 8, 70, 9), (1, 5, 129, 17), (2, 3, 70, 36), (1, 8, 33, 64)]
        } else {
            // matmul_sg: 300 columns = two column blocks of 256, the second with a subgroup-partial last lane group.
            // (3, 64, 64, 64) and (2, 13, 300, 36) read A and B four k at a time (VEC4_K).
            &[(1, 1, 1, 1), (1, 67, 45, 33), (3, 64, 64, 64), (2, 130, 7, 70), (1, 5, 129, 17), (2, 13, 300, 9), (2, 13, 300, 36)]
        };
        for &(batch, m, n, k) in shapes {
            let a = r.vec(batch * m * k);
            let b = r.vec(batch * k * n);
            let ta = g.upload(&[a.len()], &a).unwrap();
            let tb = g.upload(&[b.len()], &b).unwrap();
            // A plain, B transposed storage.
            let av = MatView::rows(m, k);
            let bv = MatView::transposed(k, n);
            let d = Matmul { batch, m, n, k, a: av, b: bv, alpha: 0.5 };
            let got = ops::matmul_with(g, &ta, &tb, Bias::None, &d, kernel).unwrap().read(g).unwrap();
            let want: Vec<f32> = matmul_cpu(&a, av, &b, bv, batch, m, n, k).iter().map(|v| v * 0.5).collect();
            assert_close(&format!("matmul {kernel:?} {:?}", (batch, m, n, k)), &got, &want, 1e-5);
            // Biases.
            let bias_r = r.vec(m);
            let bias_c = r.vec(n);
            let d1 = Matmul { alpha: 1.0, ..d };
            let base = matmul_cpu(&a, av, &b, bv, batch, m, n, k);
            let got = ops::matmul_with(g, &ta, &tb, Bias::Row(&g.upload(&[m], &bias_r).unwrap()), &d1, kernel).unwrap().read(g).unwrap();
            let want: Vec<f32> = base.iter().enumerate().map(|(i, v)| v + bias_r[(i / n) % m]).collect();
            assert_close("matmul row bias", &got, &want, 1e-5);
            let got = ops::matmul_with(g, &ta, &tb, Bias::Col(&g.upload(&[n], &bias_c).unwrap()), &d1, kernel).unwrap().read(g).unwrap();
            let want: Vec<f32> = base.iter().enumerate().map(|(i, v)| v + bias_c[i % n]).collect();
            assert_close("matmul col bias", &got, &want, 1e-5);
        }
        // Head-interleaved views: batch = 2 outer × 3 inner, with an offset.
        let (heads, outer, m, n, k) = (3, 2, if kernel == MatmulKernel::Rows { 7 } else { 9 }, 11, 5);
        let a = r.vec(1000);
        let b = r.vec(1000);
        let av = MatView { offset: 7, inner: heads, batch_hi: 200, batch_lo: 50, row: 1, col: 9 };
        let bv = MatView { offset: 3, inner: heads, batch_hi: 300, batch_lo: 60, row: 11, col: 1 };
        let d = Matmul { batch: outer * heads, m, n, k, a: av, b: bv, alpha: 1.0 };
        let got = ops::matmul_with(g, &g.upload(&[1000], &a).unwrap(), &g.upload(&[1000], &b).unwrap(), Bias::None, &d, kernel).unwrap().read(g).unwrap();
        assert_close("matmul interleaved", &got, &matmul_cpu(&a, av, &b, bv, outer * heads, m, n, k), 1e-5);
        // A transposed storage, B plain with N % 4 == 0 (attention's scores product; matmul_sg's VEC4_N),
        // including a partial second column block (N = 300).
        for (batch, m, n, k) in [(2, 8, 36, 7), (1, 8, 300, 5)] {
            let a = r.vec(batch * m * k);
            let b = r.vec(batch * k * n);
            let (av, bv) = (MatView::transposed(m, k), MatView::rows(k, n));
            let d = Matmul { batch, m, n, k, a: av, b: bv, alpha: 1.0 };
            let got =
                ops::matmul_with(g, &g.upload(&[a.len()], &a).unwrap(), &g.upload(&[b.len()], &b).unwrap(), Bias::None, &d, kernel).unwrap().read(g).unwrap();
            assert_close(&format!("matmul {kernel:?} B rows {:?}", (batch, m, n, k)), &got, &matmul_cpu(&a, av, &b, bv, batch, m, n, k), 1e-5);
        }
    }
}

#[test]
fn linear_matches_cpu() {
    let g = gpu();
    let mut r = Rng::new(5);
    let (rows, inp, out) = (3, 37, 19);
    let x = r.vec(rows * inp);
    let w = r.vec(out * inp);
    let b = r.vec(out);
    let got = ops::linear(g, &g.upload(&[rows, inp], &x).unwrap(), &g.upload(&[out, inp], &w).unwrap(), Some(&g.upload(&[out], &b).unwrap())).unwrap();
    assert_eq!(got.shape(), &[rows, out]);
    let want: Vec<f32> = (0..rows * out).map(|i| (0..inp).map(|k| x[(i / out) * inp + k] * w[(i % out) * inp + k]).sum::<f32>() + b[i % out]).collect();
    assert_close("linear", &got.read(g).unwrap(), &want, 1e-5);
}

#[test]
fn group_norm_variants_match_cpu_on_both_kernel_families() {
    let mut r = Rng::new(6);
    // The fifth and sixth cases have groups of 4608 and 9216 elements: several statistics chunks on both
    // families, and on CPU adapters one case of each path (one pass up to 8192 elements per group, three
    // beyond); the last has 66 groups of 16562 elements, more than one workgroup of the merge pass.
    let cases = [
        (2, 8, 5, 3, 4, false, false),
        (1, 32, 9, 9, 32, true, false),
        (2, 64, 4, 4, 32, true, true),
        (1, 6, 1, 1, 1, false, true),
        (1, 64, 24, 24, 8, true, true),
        (2, 16, 24, 24, 1, false, false),
        (2, 66, 91, 91, 33, true, true),
    ];
    for g in [gpu(), gpu_tiled()] {
        for (n, c, h, w, groups, silu, ss) in cases {
            let x: Vec<f32> = r.vec(n * c * h * w).iter().map(|v| 3.0 * v + 1.5).collect();
            let gamma = r.vec(c);
            let beta = r.vec(c);
            // Scale-shift rows of 2C + 5 entries starting at element 2 (a slice of a stacked projection).
            let stride = 2 * c + 5;
            let sst = r.vec(2 + n * stride);
            let s = h * w;
            let cpg = c / groups;
            let mut want = vec![0f32; x.len()];
            for ni in 0..n {
                for gi in 0..groups {
                    let base = (ni * c + gi * cpg) * s;
                    let vals = &x[base..base + cpg * s];
                    let mean = vals.iter().map(|v| *v as f64).sum::<f64>() / vals.len() as f64;
                    let var = vals.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / vals.len() as f64;
                    for (i, v) in vals.iter().enumerate() {
                        let ch = gi * cpg + i / s;
                        let mut y = (*v as f64 - mean) / (var + 1e-5).sqrt() * gamma[ch] as f64 + beta[ch] as f64;
                        if ss {
                            y = y * (1.0 + sst[2 + ni * stride + ch] as f64) + sst[2 + ni * stride + c + ch] as f64;
                        }
                        if silu {
                            y = y / (1.0 + (-y).exp());
                        }
                        want[base + i] = y as f32;
                    }
                }
            }
            let tss = g.upload(&[sst.len()], &sst).unwrap();
            let got = ops::group_norm(
                g,
                &g.upload(&[n, c, h, w], &x).unwrap(),
                &g.upload(&[c], &gamma).unwrap(),
                &g.upload(&[c], &beta).unwrap(),
                if ss { Some(ScaleShift { t: &tss, offset: 2, stride }) } else { None },
                GroupNorm { groups, eps: 1e-5, silu },
            )
            .unwrap();
            let what = format!("group_norm {:?} {:?}", g.profile(), (n, c, h, w, groups, silu, ss));
            assert_close(&what, &got.read(g).unwrap(), &want, 2e-5);
        }
    }
}

#[test]
fn softmax_is_stable_and_matches_cpu() {
    let mut r = Rng::new(7);
    // Both kernels: one invocation per row (CPU profile; 130 rows = three workgroups) and one workgroup per row.
    for (g, (rows, cols)) in [gpu(), gpu_tiled()].into_iter().flat_map(|g| [(3, 1), (5, 17), (2, 1000), (130, 33)].map(|s| (g, s))) {
        let x: Vec<f32> = r.vec(rows * cols).iter().map(|v| 500.0 * v + 1000.0).collect();
        let t = g.upload(&[rows, cols], &x).unwrap();
        ops::softmax_rows(g, &t, 0.1).unwrap();
        let mut want = Vec::new();
        for row in x.chunks(cols) {
            let m = row.iter().fold(f64::MIN, |m, v| m.max(0.1 * *v as f64));
            let e: Vec<f64> = row.iter().map(|v| (0.1 * *v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            want.extend(e.iter().map(|v| (v / s) as f32));
        }
        let got = t.read(g).unwrap();
        assert!(got.iter().all(|v| v.is_finite()));
        assert_close(&format!("softmax {:?} {rows}x{cols}", g.profile()), &got, &want, 1e-5);
    }
}

#[test]
fn attention_on_fused_qkv_matches_cpu() {
    let g = gpu();
    let mut r = Rng::new(8);
    // T = 70 > 64 queries and > 32 keys: several query blocks and key tiles in the tiled kernel.
    let (b, heads, ch, t) = (2, 3, 12, 70);
    // guided-diffusion's legacy layout: qkv [B, heads * 3 * ch, T]; head h holds q, k, v channel blocks.
    let qkv = r.vec(b * heads * 3 * ch * t);
    let tq = g.upload(&[b, heads * 3 * ch, t], &qkv).unwrap();
    let view = |part: usize| MatView { offset: part * ch * t, inner: 1, batch_hi: 3 * ch * t, batch_lo: 0, row: t, col: 1 };
    let scale = 1.0 / (ch as f32).sqrt();
    let mut want = vec![0f32; b * heads * ch * t];
    for bh in 0..b * heads {
        let at = |part: usize, c: usize, pos: usize| qkv[bh * 3 * ch * t + part * ch * t + c * t + pos] as f64;
        for ti in 0..t {
            let sc: Vec<f64> = (0..t).map(|s| (0..ch).map(|c| at(0, c, ti) * at(1, c, s)).sum::<f64>() * scale as f64).collect();
            let m = sc.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = sc.iter().map(|v| (v - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for c in 0..ch {
                want[(bh * ch + c) * t + ti] = ((0..t).map(|s| e[s] * at(2, c, s)).sum::<f64>() / z) as f32;
            }
        }
    }
    for kind in [AttentionKernel::Unfused, AttentionKernel::Rows, AttentionKernel::Tiled] {
        let out = ops::attention_with(g, (&tq, view(0)), (&tq, view(1)), (&tq, view(2)), b, heads, ch, t, scale, kind).unwrap();
        assert_close(&format!("attention {kind:?}"), &out.read(g).unwrap(), &want, 1e-5);
    }
}

#[test]
fn resampling_matches_cpu() {
    let mut r = Rng::new(9);
    // Both element grids, as in broadcast_concat_slice_match_cpu: 2x3 planes pool to 1x1 (every output
    // starts a new plane), the last shape spans several workgroups.
    let shapes = [(5, 3, 2, 3), (2, 3, 5, 7), (3, 4, 41, 53)];
    for (g, (n, c, h, w)) in [gpu(), gpu_tiled()].into_iter().flat_map(|g| shapes.map(|s| (g, s))) {
        let x = r.vec(n * c * h * w);
        let tx = g.upload(&[n, c, h, w], &x).unwrap();
        let up = ops::upsample_nearest2(g, &tx).unwrap();
        assert_eq!(up.shape(), &[n, c, 2 * h, 2 * w]);
        let want: Vec<f32> = (0..n * c * 4 * h * w)
            .map(|i| {
                let (ox, oy, pl) = (i % (2 * w), (i / (2 * w)) % (2 * h), i / (4 * h * w));
                x[(pl * h + oy / 2) * w + ox / 2]
            })
            .collect();
        assert_close("upsample", &up.read(g).unwrap(), &want, 0.0);
        let zi = ops::zero_insert2(g, &tx).unwrap();
        assert_eq!(zi.shape(), &[n, c, 2 * h, 2 * w]);
        let want: Vec<f32> = (0..n * c * 4 * h * w)
            .map(|i| {
                let (ox, oy, pl) = (i % (2 * w), (i / (2 * w)) % (2 * h), i / (4 * h * w));
                if ox % 2 == 0 && oy % 2 == 0 {
                    x[(pl * h + oy / 2) * w + ox / 2]
                } else {
                    0.0
                }
            })
            .collect();
        assert_close("zero_insert", &zi.read(g).unwrap(), &want, 0.0);
        let dn = ops::avg_pool2(g, &tx).unwrap();
        assert_eq!(dn.shape(), &[n, c, h / 2, w / 2]);
        let (ho, wo) = (h / 2, w / 2);
        let want: Vec<f32> = (0..n * c * ho * wo)
            .map(|i| {
                let (ox, oy, pl) = (i % wo, (i / wo) % ho, i / (ho * wo));
                let at = |y: usize, xx: usize| x[(pl * h + y) * w + xx];
                0.25 * (at(2 * oy, 2 * ox) + at(2 * oy, 2 * ox + 1) + at(2 * oy + 1, 2 * ox) + at(2 * oy + 1, 2 * ox + 1))
            })
            .collect();
        assert_close("avg_pool", &dn.read(g).unwrap(), &want, 1e-6);
    }
}

#[test]
fn timestep_embedding_matches_cpu_both_conventions() {
    let g = gpu();
    let ts = [0.0f32, 1.0, 17.0, 500.0, 803.0, 999.0];
    let t = g.upload(&[ts.len()], &ts).unwrap();
    for (dim, shift, flip) in [(64usize, 0.0f32, true), (33, 1.0, false), (128, 0.0, false)] {
        let freqs = ops::embedding_freqs(dim, shift, 10000.0).unwrap();
        let tf = g.upload(&[freqs.len()], &freqs).unwrap();
        let got = ops::timestep_embedding(g, &t, &tf, dim, flip).unwrap().read(g).unwrap();
        let half = dim / 2;
        let mut want = vec![0f32; ts.len() * dim];
        for (n, tv) in ts.iter().enumerate() {
            for i in 0..half {
                // As torch: f32 frequencies and f32 arguments, then sin / cos of that f32 argument.
                let freq = (-(10000f32.ln()) * i as f32 / (half as f32 - shift)).exp();
                let arg = (tv * freq) as f64;
                let (a, b) = if flip { (arg.cos(), arg.sin()) } else { (arg.sin(), arg.cos()) };
                want[n * dim + i] = a as f32;
                want[n * dim + half + i] = b as f32;
            }
        }
        assert_close(&format!("embedding dim {dim}"), &got, &want, 1e-5);
    }
}

#[test]
fn stats_count_nonfinite_and_reduce() {
    let g = gpu();
    let mut r = Rng::new(10);
    for n in [1usize, 255, 257, 300_001] {
        let mut x = r.vec(n);
        if n > 10 {
            x[3] = f32::NAN;
            x[n - 1] = f32::INFINITY;
        }
        let st = reddiff::ops::Stats::read(g, &ops::stats(g, &g.upload(&[n], &x).unwrap()).unwrap(), n).unwrap();
        let fin: Vec<f64> = x.iter().filter(|v| v.is_finite()).map(|v| *v as f64).collect();
        assert_eq!(st.nonfinite, n - fin.len());
        let sum: f64 = fin.iter().sum();
        let sq: f64 = fin.iter().map(|v| v * v).sum();
        let mx = fin.iter().fold(0f64, |m, v| m.max(v.abs()));
        assert!((st.sum as f64 - sum).abs() <= 1e-5 * sq.sqrt().max(1.0) * (n as f64).sqrt(), "sum {} vs {sum}", st.sum);
        assert!((st.sum_sq as f64 - sq).abs() <= 1e-5 * sq.max(1.0), "sum_sq {} vs {sq}", st.sum_sq);
        assert_eq!(st.max_abs as f64, mx);
    }
}

/// CPU Philox4x32-10 + Box–Muller exactly as wgsl/rng.wgsl specifies.
fn normal_cpu(n: usize, seed: u64, offset: u64) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    let mut t = 0u32;
    while out.len() < n {
        let mut c = [t, 0, offset as u32, (offset >> 32) as u32];
        let mut k = [seed as u32, (seed >> 32) as u32];
        for _ in 0..10 {
            let p0 = 0xD2511F53u64 * c[0] as u64;
            let p1 = 0xCD9E8D57u64 * c[2] as u64;
            c = [((p1 >> 32) as u32) ^ c[1] ^ k[0], p1 as u32, ((p0 >> 32) as u32) ^ c[3] ^ k[1], p0 as u32];
            k = [k[0].wrapping_add(0x9E3779B9), k[1].wrapping_add(0xBB67AE85)];
        }
        let u = |b: u32| ((b >> 8) as f64 + 0.5) / 16_777_216.0;
        for (a, b) in [(c[0], c[1]), (c[2], c[3])] {
            let rad = (-2.0 * u(a).ln()).sqrt();
            let ang = std::f64::consts::TAU * (u(b) - 0.5);
            out.push((-rad * ang.cos()) as f32);
            out.push((-rad * ang.sin()) as f32);
        }
        t += 1;
    }
    out.truncate(n);
    out
}

#[test]
fn rng_is_reproducible_gaussian_and_independent() {
    let g = gpu();
    let n = 1 << 20;
    let a = ops::normal(g, &[n], 42, 0, 0.0, 1.0).unwrap().read(g).unwrap();
    let a2 = ops::normal(g, &[n], 42, 0, 0.0, 1.0).unwrap().read(g).unwrap();
    assert_eq!(a, a2, "same seed and offset must give identical numbers");
    // Same numbers as the CPU definition (integer path exact; floats within transcendental error).
    let cpu = normal_cpu(4099, 42, 0);
    assert_close("rng vs cpu philox", &a[..4099], &cpu, 2e-5);
    let mean = a.iter().map(|v| *v as f64).sum::<f64>() / n as f64;
    let var = a.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    // 5 standard errors: sd(mean) = 1/sqrt(n) ≈ 0.001, sd(var) = sqrt(2/n) ≈ 0.0014.
    assert!(mean.abs() < 0.005, "mean {mean}");
    assert!((var - 1.0).abs() < 0.007, "variance {var}");
    let kurt = a.iter().map(|v| (*v as f64 - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
    assert!((kurt - 3.0).abs() < 0.05, "kurtosis {kurt}");
    for (other, what) in [(ops::normal(g, &[n], 43, 0, 0.0, 1.0).unwrap(), "seed"), (ops::normal(g, &[n], 42, 1, 0.0, 1.0).unwrap(), "offset")] {
        let b = other.read(g).unwrap();
        let corr = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum::<f64>() / n as f64;
        assert!(corr.abs() < 0.005, "correlation across {what}: {corr}");
    }
    // Neighbouring elements are uncorrelated too.
    let lag = a.windows(2).map(|w| w[0] as f64 * w[1] as f64).sum::<f64>() / n as f64;
    assert!(lag.abs() < 0.005, "lag-1 correlation {lag}");
    let shifted = ops::normal(g, &[1001], 7, 3, 2.0, 0.5).unwrap().read(g).unwrap();
    let base = normal_cpu(1001, 7, 3);
    assert_close("mean/std", &shifted, &base.iter().map(|v| 2.0 + 0.5 * v).collect::<Vec<_>>(), 2e-5);
}

#[test]
fn adam_matches_cpu_over_steps() {
    let g = gpu();
    let mut r = Rng::new(11);
    let n = 1234;
    let mut x = r.vec(n);
    let h = ops::AdamHyper { lr: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-8 };
    let tx = g.upload(&[n], &x).unwrap();
    let tm = g.zeros(&[n]).unwrap();
    let tv = g.zeros(&[n]).unwrap();
    let (mut m, mut v) = (vec![0f64; n], vec![0f64; n]);
    for step in 1..=6u32 {
        let grad = r.vec(n);
        ops::adam_step(g, &tx, &g.upload(&[n], &grad).unwrap(), &tm, &tv, h, step).unwrap();
        let bc1 = 1.0 - 0.9f64.powi(step as i32);
        let bc2 = 1.0 - 0.99f64.powi(step as i32);
        for i in 0..n {
            m[i] = 0.9 * m[i] + 0.1 * grad[i] as f64;
            v[i] = 0.99 * v[i] + 0.01 * (grad[i] as f64).powi(2);
            x[i] = (x[i] as f64 - 0.05 / bc1 * m[i] / (v[i].sqrt() / bc2.sqrt() + 1e-8)) as f32;
        }
    }
    assert_close("adam x", &tx.read(g).unwrap(), &x, 1e-5);
    assert_close("adam v", &tv.read(g).unwrap(), &v.iter().map(|v| *v as f32).collect::<Vec<_>>(), 1e-5);
}

fn dft2(x: &[f32], b: usize, h: usize, w: usize, inverse: bool) -> Vec<f32> {
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut out = vec![0f32; x.len()];
    for bi in 0..b {
        for ky in 0..h {
            for kx in 0..w {
                let (mut re, mut im) = (0f64, 0f64);
                for y in 0..h {
                    for xx in 0..w {
                        let i = ((bi * h + y) * w + xx) * 2;
                        let ang = sign * std::f64::consts::TAU * ((ky * y) as f64 / h as f64 + (kx * xx) as f64 / w as f64);
                        let (c, s) = (ang.cos(), ang.sin());
                        re += x[i] as f64 * c - x[i + 1] as f64 * s;
                        im += x[i] as f64 * s + x[i + 1] as f64 * c;
                    }
                }
                let scale = if inverse { 1.0 / (h * w) as f64 } else { 1.0 };
                let o = ((bi * h + ky) * w + kx) * 2;
                out[o] = (re * scale) as f32;
                out[o + 1] = (im * scale) as f32;
            }
        }
    }
    out
}

#[test]
fn fft_matches_naive_dft_and_round_trips() {
    let g = gpu();
    let mut r = Rng::new(12);
    for (b, h, w) in [(2, 8, 16), (1, 1, 4), (1, 32, 2), (3, 4, 4), (1, 16, 128), (2, 256, 8)] {
        let x = r.vec(b * h * w * 2);
        let t = g.upload(&[b, h, w, 2], &x).unwrap();
        let f = ops::fft2(g, &t, ops::FftDirection::Forward).unwrap();
        assert_close(&format!("fft {:?}", (b, h, w)), &f.read(g).unwrap(), &dft2(&x, b, h, w, false), 1e-5);
        let inv = ops::fft2(g, &t, ops::FftDirection::Inverse).unwrap();
        assert_close(&format!("ifft {:?}", (b, h, w)), &inv.read(g).unwrap(), &dft2(&x, b, h, w, true), 1e-5);
    }
    let x = r.vec(64 * 64 * 2);
    let t = g.upload(&[1, 64, 64, 2], &x).unwrap();
    let back = ops::fft2(g, &ops::fft2(g, &t, ops::FftDirection::Forward).unwrap(), ops::FftDirection::Inverse).unwrap();
    assert_close("fft round trip 64x64", &back.read(g).unwrap(), &x, 1e-5);
}

/// `wgsl/conv_coop.wgsl` with its cooperative-matrix lines (between the `coop:` markers) replaced by scalar
/// code that reads and writes the same workgroup-memory layouts: lane `l` of a subgroup holds elements
/// `l + 32 j` (row-major in the 16 × 16 fragment); A fragments are column-major with stride `bm`, B
/// fragments row-major with stride 64, and accumulators are stored row-major with stride 16.
fn coop_emulated() -> &'static reddiff::gpu::Shader {
    static S: std::sync::OnceLock<&'static reddiff::gpu::Shader> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let src = reddiff::shaders::CONV_COOP.source;
        let swap = |s: &str, tag: &str, with: &str| -> String {
            let (b, e) = (format!("// coop:{tag}-begin"), format!("// coop:{tag}-end"));
            let (i, j) = (s.find(&b).expect("begin marker"), s.find(&e).expect("end marker"));
            format!("{}{}{}", &s[..i], with, &s[j + e.len()..])
        };
        let acc = "var c00: array<f32, 8>;\n    var c01: array<f32, 8>;\n    var c10: array<f32, 8>;\n    var c11: array<f32, 8>;";
        let mma = "for (var kf = 0u; kf < BK; kf += 16u) {
            for (var j = 0u; j < 8u; j++) {
                let r = (lane + 32u * j) / 16u;
                let c = (lane + 32u * j) % 16u;
                var s = vec4<f32>(0.0);
                for (var q = 0u; q < 16u; q++) {
                    let a0 = f32(sa[kf * bm + fm + q * bm + r]);
                    let a1 = f32(sa[kf * bm + fm + 16u + q * bm + r]);
                    let b0 = f32(sb[kf * BN + fp + q * BN + c]);
                    let b1 = f32(sb[kf * BN + fp + 16u + q * BN + c]);
                    s += vec4<f32>(a0 * b0, a0 * b1, a1 * b0, a1 * b1);
                }
                c00[j] += s.x; c01[j] += s.y; c10[j] += s.z; c11[j] += s.w;
            }
        }";
        let store = "for (var j = 0u; j < 8u; j++) {
            let e = lane + 32u * j;
            switch f {
                case 0u: { stage[so + e] = c00[j]; }
                case 1u: { stage[so + e] = c01[j]; }
                case 2u: { stage[so + e] = c10[j]; }
                default: { stage[so + e] = c11[j]; }
            }
        }";
        let s = swap(&swap(&swap(src, "acc", acc), "mma", mma), "store", store).replace("enable wgpu_cooperative_matrix;\n", "");
        let code: String = s.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
        assert!(
            ["coop_mat", "coopLoad", "coopStore", "coopMultiplyAdd", "wgpu_cooperative_matrix"].iter().all(|w| !code.contains(w)),
            "cooperative-matrix code left in the emulation"
        );
        Box::leak(Box::new(reddiff::gpu::Shader { name: "conv_coop_emulated", source: Box::leak(s.into_boxed_str()) }))
    })
}

/// The cooperative-matrix convolution's staging, bounds and epilogue, on any adapter: its emulation (see
/// [`coop_emulated`]) against the CPU, both workgroup tiles, split-K, f32 and f16 weights, ragged M, N and K.
/// Operands are rounded to f16, hence the 2e-3 tolerance (relative to the output's scale).
#[test]
fn conv2d_coop_matrix_emulated_matches_cpu() {
    let g = gpu();
    if !g.adapter().features.contains(&"SHADER_F16") {
        // The kernel's operands are f16: such an adapter gets a typed error, and nothing else to test.
        let c = ConvInputs::new(g, &mut Rng::new(5), (1, 3, 4, 4, 4, 3, 1, 1));
        let packed = ops::pack_conv(g, &g.upload(&[4, 3, 3, 3], &[0.0; 108]).unwrap(), false).unwrap();
        let got = ops::conv2d_coop_with_shader(g, &c.tx, &packed, Conv2d { stride: 1, padding: 1 }, &c.full_epilogue(), 64, 1, coop_emulated());
        assert!(matches!(got, Err(reddiff::Error::Invalid { .. })), "expected a typed error without SHADER_F16");
        eprintln!("adapter without SHADER_F16: the emulated cooperative-matrix convolution is refused, as it should be");
        return;
    }
    let mut r = Rng::new(5);
    // (n, cin, h, w, cout, k, stride, pad): K = cin k² below, at and above BK = 32; cout below, at and above
    // the 64/128-channel tiles; pixels not a multiple of 64.
    let cases =
        [(2, 3, 7, 9, 5, 3, 1, 1), (1, 40, 9, 11, 136, 3, 1, 1), (1, 24, 13, 10, 20, 3, 2, 1), (2, 64, 8, 8, 64, 1, 1, 0), (1, 7, 12, 12, 130, 3, 1, 1)];
    for (n, cin, h, w, cout, k, s, p) in cases {
        let c = ConvInputs::new(g, &mut r, (n, cin, h, w, cout, k, s, p));
        let (x, ho, wo, tx) = (&c.x, c.ho, c.wo, &c.tx);
        let epi = c.full_epilogue();
        for f16 in [false, true] {
            let raw = r.vec(cout * cin * k * k);
            let packed = ops::pack_conv(g, &g.upload(&[cout, cin, k, k], &raw).unwrap(), f16).unwrap();
            let (base, _, _) = conv_cpu(&to_f16(x), &to_f16(&raw), None, n, cin, h, w, cout, k, s, p);
            let want = c.full_want(&base);
            for bm in reddiff::gpu::COOP_BM {
                // Split-K: 3 slices of k where K allows (ragged last slice), and more slices than steps of 32.
                for splits in [1, 3, 1000] {
                    let out = ops::conv2d_coop_with_shader(g, tx, &packed, Conv2d { stride: s, padding: p }, &epi, bm, splits, coop_emulated()).unwrap();
                    assert_eq!(out.shape(), &[n, cout, ho, wo]);
                    let what = format!("emulated coop conv bm={bm} splits={splits} f16={f16} {:?}", (n, cin, h, w, cout, k, s, p));
                    assert_close(&what, &out.read(g).unwrap(), &want, 1e-4);
                }
            }
        }
    }
}

/// A register tile the tiled kernels do not implement is refused with an error, not launched: the vec4
/// kernel takes 4 or 8 channels and pixels per thread, the scalar one 1, 2, 4 or 8 and no split of k.
#[test]
fn tiles_the_kernels_do_not_implement_are_refused() {
    let g = gpu_tiled();
    let x = ops::fill(g, &[1, 2, 5, 5], 1.0).unwrap();
    let w = ops::pack_conv(g, &ops::fill(g, &[3, 2, 3, 3], 0.5).unwrap(), false).unwrap();
    for (tm, tn, vec4, splits) in [(2, 4, true, 1), (4, 1, true, 1), (3, 4, false, 1), (4, 16, false, 1), (4, 4, false, 4), (4, 4, true, 0)] {
        let tile = ConvKernel::Tiled(TileConfig { tm, tn, vec4, splits });
        let r = ops::conv2d_with(g, &x, &w, Conv2d::same(3), &Epilogue::bias(None), Some(tile));
        assert!(matches!(r, Err(reddiff::Error::Invalid { .. })), "{tile:?} was not refused");
    }
}

/// `GpuOptions::tile` (`REDDIFF_TILE`) replaces the untuned tile of every tiled convolution, so benchmarks can
/// compare kernels whole-network; a tile the kernels do not implement is refused when the device opens.
#[test]
fn a_forced_tile_replaces_the_untuned_choice_and_an_invalid_one_is_refused() {
    let open =
        |tile| reddiff::gpu::block_on(Gpu::with_options(reddiff::GpuOptions { profile: Some(reddiff::gpu::KernelProfile::Tiled), tile, ..Default::default() }));
    let scalar = TileConfig { tm: 4, tn: 4, vec4: false, splits: 1 };
    // FFHQ-256's 512-channel 8x8 layer at one image: split 4 ways untuned.
    assert_eq!(open(None).unwrap().conv_kernel(512, 64, 4608), ConvKernel::Tiled(TileConfig::untuned(512, 64, 4608)));
    assert_eq!(TileConfig::untuned(512, 64, 4608).splits, 4);
    assert_eq!(open(Some(scalar)).unwrap().conv_kernel(512, 64, 4608), ConvKernel::Tiled(scalar));
    let bad = open(Some(TileConfig { tm: 4, tn: 4, vec4: false, splits: 2 }));
    assert!(matches!(bad, Err(reddiff::Error::Invalid { .. })), "a split without the vec4 kernel was accepted");
}
