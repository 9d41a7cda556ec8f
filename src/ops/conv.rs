//! 2-D convolution, as `torch.nn.Conv2d` with groups 1 and dilation 1: weights packed once
//! (`wgsl/conv_pack.wgsl`, f32 or f16), then a kernel by adapter profile. On CPU adapters: the
//! register-blocked 3×3 fast path (`wgsl/conv3x3.wgsl`) and generic kernel (`wgsl/conv.wgsl`), or, where
//! subgroups have ≥ 8 lanes, 3×3 and 1×1 kernels that load each weight once per subgroup
//! (`wgsl/conv_sg.wgsl`), and for 3×3 layers with enough pixels Winograd F(4×4, 3×3) (`src/ops/winograd.rs`).
//! On GPUs: the workgroup-tiled implicit GEMM
//! (`wgsl/conv_gemm.wgsl`), or the same product on cooperative matrices (tensor cores, f16 operands, f32
//! sums: `wgsl/conv_coop.wgsl`) where the adapter has them. Each fuses its epilogue (bias, a per (image,
//! channel) term, a scaled residual).

use std::sync::{Arc, Mutex};

use super::dims;
use super::winograd::{conv3x3_winograd, winograd_fits, winograd_pays};
use crate::error::{Error, Result};
use crate::gpu::{Access, ConvKernel, Gpu, Kernel, Params, Shader, Tensor};
use crate::shaders::{CONV, CONV3X3, CONV_COOP, CONV_GEMM, CONV_PACK, CONV_SG, CONV_SPLITK, CONV_TRANSPOSE};

/// Stride and zero padding of a convolution (square kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Step between output pixels, in input pixels (>= 1).
    pub stride: usize,
    /// Zero padding on every side, in pixels.
    pub padding: usize,
}

impl Conv2d {
    /// "Same" convolution for an odd kernel size `k`: stride 1, padding k / 2.
    pub fn same(k: usize) -> Conv2d {
        Conv2d { stride: 1, padding: k / 2 }
    }
}

/// Convolution weights packed for the kernels: `A[k][m]` with `k = (c·K + ky)·K + kx`, rows of `Mp` (Cout
/// rounded up to 8) entries, stored as f32 or as f16 (half the memory; exact for weights that came as F16).
/// Clones share the weights and their Winograd-transformed kernels (made on first use where small).
#[derive(Clone, Debug)]
pub struct ConvWeights {
    packed: Tensor,
    cin: usize,
    cout: usize,
    k: usize,
    mp: usize,
    f16: bool,
    winograd: Arc<Mutex<Option<Tensor>>>,
}

impl ConvWeights {
    /// [Cout, Cin, K, K] of the original weights.
    pub fn shape(&self) -> [usize; 4] {
        [self.cout, self.cin, self.k, self.k]
    }
    /// True when stored as f16.
    pub fn is_f16(&self) -> bool {
        self.f16
    }
    /// Bytes of GPU memory the packed weights take.
    pub fn bytes(&self) -> u64 {
        self.packed.bytes()
    }
    /// Entries per packed row: Cout rounded up to 8.
    pub(crate) fn mp(&self) -> usize {
        self.mp
    }
    /// The packed words.
    pub(crate) fn packed(&self) -> &Tensor {
        &self.packed
    }
    /// The Winograd-transformed kernels kept with the weights, when made (`winograd.rs`).
    pub(crate) fn winograd_kernels(&self) -> Option<Tensor> {
        self.winograd.lock().ok().and_then(|u| u.clone())
    }
    /// Keeps `u` as the Winograd-transformed kernels of these weights (and of their clones).
    pub(crate) fn keep_winograd_kernels(&self, u: &Tensor) {
        if let Ok(mut slot) = self.winograd.lock() {
            *slot = Some(u.clone());
        }
    }
    /// True when the Winograd-transformed kernels are kept with the weights.
    pub fn has_winograd_kernels(&self) -> bool {
        self.winograd.lock().map(|u| u.is_some()).unwrap_or(false)
    }
}

/// Packs `w` [Cout, Cin, K, K] (one dispatch). With `f16` the weights are rounded to f16 (exact when they
/// were stored as F16).
pub fn pack_conv(gpu: &Gpu, w: &Tensor, f16: bool) -> Result<ConvWeights> {
    const OP: &str = "pack_conv";
    let [cout, cin, kh, kw] = dims::<4>(OP, "weight", w)?;
    if kh != kw || kh == 0 {
        return Err(Error::Shape { op: OP, msg: format!("weight {:?} is not [Cout, Cin, K, K]", w.shape()) });
    }
    let mp = cout.div_ceil(8) * 8;
    let entries = cin * kh * kh * mp;
    let words = if f16 { entries / 2 } else { entries };
    let packed = gpu.empty(OP, &[words])?;
    let params = Params::new().n(cin).n(cout).n(kh).n(mp).n(words);
    gpu.launch(
        OP,
        &Kernel::new(&CONV_PACK, if f16 { "pack_f16" } else { "pack_f32" }),
        &params,
        &[(w, Access::Read), (&packed, Access::ReadWrite)],
        (words as u64).div_ceil(64),
    )?;
    Ok(ConvWeights { packed, cin, cout, k: kh, mp, f16, winograd: Default::default() })
}

/// The packed f32 weights of the adjoint convolution: channels swapped and the kernel flipped,
/// `w'[ci][co][ky][kx] = w[co][ci][K−1−ky][K−1−kx]`, so [Cin, Cout, K, K] (one dispatch). A stride-1
/// convolution with padding K−1−p and `w'` computes the input gradient of one with `w` and padding p.
pub fn transpose_conv_weights(gpu: &Gpu, w: &ConvWeights) -> Result<ConvWeights> {
    const OP: &str = "transpose_conv_weights";
    let mpt = w.cin.div_ceil(8) * 8;
    let words = w.cout * w.k * w.k * mpt;
    let packed = gpu.empty(OP, &[words])?;
    let params = Params::new().n(w.cin).n(w.cout).n(w.k).n(w.mp).n(mpt).u(w.f16 as u32).n(words);
    gpu.launch(
        OP,
        &Kernel::new(&CONV_TRANSPOSE, "pack_transposed"),
        &params,
        &[(&w.packed, Access::Read), (&packed, Access::ReadWrite)],
        (words as u64).div_ceil(64),
    )?;
    Ok(ConvWeights { packed, cin: w.cout, cout: w.cin, k: w.k, mp: mpt, f16: false, winograd: Default::default() })
}

/// A per-(image, channel) term added before scaling: element (n, m) is `t[offset + n·stride + m]`
/// (e.g. one ResBlock's slice of the batched time-embedding projections).
#[derive(Clone, Copy, Debug)]
pub struct ChannelTerm<'a> {
    /// The tensor holding the terms.
    pub t: &'a Tensor,
    /// Element offset of (0, 0).
    pub offset: usize,
    /// Elements between images.
    pub stride: usize,
}

/// What a convolution does after the sum: `out = alpha · (acc + bias[m] + term(n, m)) + beta · residual`.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    /// Per-output-channel bias `[Cout]`.
    pub bias: Option<&'a Tensor>,
    /// Per-(image, channel) term.
    pub term: Option<ChannelTerm<'a>>,
    /// Tensor of the output's shape, added as `beta · residual`.
    pub residual: Option<&'a Tensor>,
    /// Scale of the convolution result.
    pub alpha: f32,
    /// Scale of the residual.
    pub beta: f32,
}

impl<'a> Epilogue<'a> {
    /// Only a bias (or nothing).
    pub fn bias(bias: Option<&'a Tensor>) -> Epilogue<'a> {
        Epilogue { bias, term: None, residual: None, alpha: 1.0, beta: 1.0 }
    }
}

/// `x` [N, Cin, H, W] * `w` [Cout, Cin, K, K] + `bias` `[Cout]` → [N, Cout, Ho, Wo] with
/// Ho = (H + 2p − K) / s + 1. Packs the weights on every call; layers keep a [`ConvWeights`] instead.
pub fn conv2d(gpu: &Gpu, x: &Tensor, w: &Tensor, bias: Option<&Tensor>, cfg: Conv2d) -> Result<Tensor> {
    let [_, cin, _, _] = dims::<4>("conv2d", "input", x)?;
    let [_, wcin, kh, kw] = dims::<4>("conv2d", "weight", w)?;
    if wcin != cin || kh != kw {
        return Err(Error::Shape { op: "conv2d", msg: format!("weight {:?} does not fit input {:?} (need [Cout, {cin}, K, K])", w.shape(), x.shape()) });
    }
    conv2d_packed(gpu, x, &pack_conv(gpu, w, false)?, cfg, &Epilogue::bias(bias))
}

/// `x` [N, Cin, H, W] convolved with packed weights, then the epilogue → [N, Cout, Ho, Wo]. The kernel
/// follows [`Gpu::profile`] and autotuning ([`Gpu::conv_kernel`]): register-blocked on CPU adapters, tiled
/// implicit GEMM or cooperative matrices on GPUs.
pub fn conv2d_packed(gpu: &Gpu, x: &Tensor, w: &ConvWeights, cfg: Conv2d, epi: &Epilogue) -> Result<Tensor> {
    conv2d_with(gpu, x, w, cfg, epi, None)
}

/// [`conv2d_packed`] with the kernel (and tile) forced; tests, autotuning and benchmarks compare them.
/// [`ConvKernel::CoopMatrix`] is refused unless [`Gpu::coop_matrix`] is on.
pub fn conv2d_with(gpu: &Gpu, x: &Tensor, w: &ConvWeights, cfg: Conv2d, epi: &Epilogue, force: Option<ConvKernel>) -> Result<Tensor> {
    if matches!(force, Some(ConvKernel::CoopMatrix { .. })) && !gpu.coop_matrix() {
        return Err(Error::Invalid { op: "conv2d", msg: "cooperative-matrix kernel requested, but the device has none (or it failed its self-check)".into() });
    }
    conv2d_impl(gpu, x, w, cfg, epi, force, &CONV_COOP)
}

/// Test hook, not an API: the cooperative-matrix convolution with `bm` channels per workgroup and `splits`
/// slices of k, launched with
/// `shader` in place of `wgsl/conv_coop.wgsl` — `tests/kernels.rs` passes a copy whose cooperative-matrix
/// lines are swapped for scalar code with the same memory layouts, so the kernel's staging, bounds and
/// epilogue are tested on adapters without tensor cores.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn conv2d_coop_with_shader(
    gpu: &Gpu,
    x: &Tensor,
    w: &ConvWeights,
    cfg: Conv2d,
    epi: &Epilogue,
    bm: usize,
    splits: usize,
    shader: &'static Shader,
) -> Result<Tensor> {
    conv2d_impl(gpu, x, w, cfg, epi, Some(ConvKernel::CoopMatrix { bm, splits }), shader)
}

fn conv2d_impl(gpu: &Gpu, x: &Tensor, w: &ConvWeights, cfg: Conv2d, epi: &Epilogue, force: Option<ConvKernel>, coop: &'static Shader) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let [n, cin, h, wd] = dims::<4>(OP, "input", x)?;
    let k = w.k;
    if cin != w.cin {
        return Err(Error::Shape { op: OP, msg: format!("weight {:?} does not fit input {:?} (need [Cout, {cin}, K, K])", w.shape(), x.shape()) });
    }
    if cfg.stride == 0 || h + 2 * cfg.padding < k || wd + 2 * cfg.padding < k {
        return Err(Error::Shape { op: OP, msg: format!("kernel {k}x{k}, stride {}, padding {} do not fit a {h}x{wd} input", cfg.stride, cfg.padding) });
    }
    let cout = w.cout;
    if let Some(b) = epi.bias {
        if b.shape() != [cout] {
            return Err(Error::Shape { op: OP, msg: format!("bias {:?} should be [{cout}]", b.shape()) });
        }
    }
    let ho = (h + 2 * cfg.padding - k) / cfg.stride + 1;
    let wo = (wd + 2 * cfg.padding - k) / cfg.stride + 1;
    if let Some(tm) = &epi.term {
        let last = tm.offset + (n - 1) * tm.stride + cout;
        if last > tm.t.numel() {
            return Err(Error::Shape {
                op: OP,
                msg: format!("channel term at offset {} stride {} reaches {last}, tensor {:?}", tm.offset, tm.stride, tm.t.shape()),
            });
        }
    }
    if let Some(r) = epi.residual {
        if r.shape() != [n, cout, ho, wo] {
            return Err(Error::Shape { op: OP, msg: format!("residual {:?} should be {:?}", r.shape(), [n, cout, ho, wo]) });
        }
    }
    let kernel = match force {
        Some(f) => f,
        None => {
            gpu.log_conv(x.shape(), w, cfg);
            gpu.conv_kernel(cout, n * ho * wo, cin * k * k)
        }
    };
    // Winograd F(4×4, 3×3) where it pays (or as forced); other shapes take the direct kernels.
    let same3 = k == 3 && cfg.stride == 1 && cfg.padding == 1;
    let winograd = match kernel {
        ConvKernel::Winograd => same3 && winograd_fits(gpu, n, cin, cout, h, wd),
        ConvKernel::SharedWeights if force.is_none() && same3 => match gpu.winograd() {
            Some(on) => on && winograd_fits(gpu, n, cin, cout, h, wd),
            None => winograd_pays(gpu, n, cin, cout, h, wd),
        },
        _ => false,
    };
    if matches!(kernel, ConvKernel::SharedWeights | ConvKernel::Winograd) && !gpu.shared_weights() {
        let (lo, hi) = gpu.adapter().subgroup_sizes;
        return Err(Error::Invalid {
            op: OP,
            msg: format!("subgroup-shared weights need subgroups of at least 8 lanes (adapter: {lo}..{hi}) and not REDDIFF_SUBGROUPS=0"),
        });
    }
    if winograd {
        return conv3x3_winograd(gpu, x, w, epi);
    }
    let out = gpu.empty(OP, &[n, cout, ho, wo])?;
    let flags = epi.bias.is_some() as u32 | (epi.term.is_some() as u32) << 1 | (epi.residual.is_some() as u32) << 2;
    let (add_t, add_off, add_stride) = match &epi.term {
        Some(t) => (t.t, t.offset, t.stride),
        None => (gpu.dummy(), 0, 0),
    };
    let dummy = gpu.dummy();
    let args = [
        (x, Access::Read),
        (&w.packed, Access::Read),
        (epi.bias.unwrap_or(dummy), Access::Read),
        (add_t, Access::Read),
        (epi.residual.unwrap_or(dummy), Access::Read),
        (&out, Access::ReadWrite),
    ];
    // conv_sg.wgsl also reads the input as vec4s (binding 7) where its rows are whole vec4s: one load per
    // lane instead of four with bounds checks.
    let sg_args = [args[0], args[1], args[2], args[3], args[4], args[5], (gpu.vec4_view(x), Access::Read)];
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    let wf16 = w.f16 as u32 as f64;
    // The parameter block of the implicit-GEMM kernels (conv_gemm.wgsl, conv_coop.wgsl): the problem, the
    // tiles, the epilogue and the slicing of k.
    let gemm_params = |tiles_m: usize, tiles: usize, (kchunk, splits): (usize, usize)| {
        Params::new()
            .n(n)
            .n(cin)
            .n(h)
            .n(wd)
            .n(cout)
            .n(ho)
            .n(wo)
            .n(cfg.stride)
            .n(cfg.padding)
            .n(w.mp)
            .n(cin * k * k)
            .n(n * ho * wo)
            .n(tiles_m)
            .n(tiles)
            .u(flags)
            .n(add_off)
            .n(add_stride)
            .f(epi.alpha)
            .f(epi.beta)
            .n(kchunk)
            .n(splits)
    };
    let kt = cin * k * k;
    let total = n * cout * ho * wo;
    // Split-K: the implicit-GEMM kernel with `tiles` workgroups (over all splits) writes the splits' raw sums
    // to a scratch tensor, and conv_splitk.wgsl adds them and applies the epilogue.
    let launch_split_k = |kernel: &Kernel, params: &Params, tiles: usize, splits: usize| -> Result<()> {
        if splits == 1 {
            return gpu.launch(OP, kernel, params, &args, tiles as u64);
        }
        let part = gpu.empty(OP, &[splits, total])?;
        let mut split_args = args;
        split_args[5] = (&part, Access::ReadWrite);
        gpu.launch(OP, kernel, params, &split_args, tiles as u64)?;
        let params = Params::new().n(total).n(cout).n(ho * wo).n(splits).u(flags).n(add_off).n(add_stride).f(epi.alpha).f(epi.beta);
        let reduce_args = [(&part, Access::Read), args[2], args[3], args[4], (&out, Access::ReadWrite)];
        gpu.launch(OP, &Kernel::new(&CONV_SPLITK, "reduce"), &params, &reduce_args, (total as u64).div_ceil(256))
    };
    // The parameter block of conv3x3.wgsl and conv_sg.wgsl.
    let blocked_params = Params::new().n(n).n(cin).n(h).n(wd).n(cout).n(w.mp).u(flags).n(add_off).n(add_stride).f(epi.alpha).f(epi.beta);
    // A forced Winograd kernel on another shape runs the direct subgroup-shared kernels.
    let kernel = if kernel == ConvKernel::Winograd { ConvKernel::SharedWeights } else { kernel };
    match kernel {
        ConvKernel::RegisterBlocked | ConvKernel::SharedWeights if k == 3 && cfg.stride == 1 && cfg.padding == 1 => {
            // conv_sg.wgsl's lanes cover two output rows, conv3x3.wgsl's one.
            let rows = if kernel == ConvKernel::SharedWeights { 2 } else { 1 };
            let groups = n * (w.mp / 8) * (h.div_ceil(rows) * wd.div_ceil(4)).div_ceil(64);
            let launch = if kernel == ConvKernel::SharedWeights {
                // The edge columns of a lane's block come from the neighbouring lanes instead of two more
                // loads; where rows are not whole 8-lane subgroups (more than 8 blocks, or a count that does
                // not divide 8), the lanes at subgroup ends load theirs.
                let row_edges = 8 % wd.div_ceil(4) != 0;
                Kernel::new(&CONV_SG, "conv3x3").with("WF16", wf16).with("ROW_EDGES", flag(row_edges)).with("VEC4_X", flag(wd % 4 == 0))
            } else {
                Kernel::new(&CONV3X3, "conv3x3").with("WF16", wf16)
            };
            let args = if kernel == ConvKernel::SharedWeights { &sg_args[..] } else { &args[..] };
            gpu.launch(OP, &launch, &blocked_params, args, groups as u64)?;
        }
        ConvKernel::SharedWeights if k == 1 && cfg.stride == 1 && cfg.padding == 0 => {
            let groups = n * w.mp.div_ceil(16) * (h * wd).div_ceil(4).div_ceil(64);
            let launch = Kernel::new(&CONV_SG, "conv1x1").with("WF16", wf16).with("VEC4_X", flag((h * wd) % 4 == 0));
            gpu.launch(OP, &launch, &blocked_params, &sg_args, groups as u64)?;
        }
        ConvKernel::RegisterBlocked | ConvKernel::SharedWeights | ConvKernel::Winograd => {
            let threads = n * cout.div_ceil(4) * ho * wo.div_ceil(4);
            let ks = if k == 3 || k == 1 { k } else { 0 };
            let params = Params::new()
                .n(n)
                .n(cin)
                .n(h)
                .n(wd)
                .n(cout)
                .n(ho)
                .n(wo)
                .n(k)
                .n(cfg.stride)
                .n(cfg.padding)
                .n(w.mp)
                .n(threads)
                .u(flags)
                .n(add_off)
                .n(add_stride)
                .f(epi.alpha)
                .f(epi.beta);
            let kernel = Kernel::new(&CONV, "conv2d").with("KS", ks as f64).with("WF16", wf16);
            gpu.launch(OP, &kernel, &params, &args, (threads as u64).div_ceil(64))?;
        }
        ConvKernel::Tiled(tile) => {
            if !tile.is_valid() {
                return Err(Error::Invalid {
                    op: OP,
                    msg: format!("register tile {tile:?} (tm, tn in 1, 2, 4, 8; 4 or 8 with vec4; splits of k only with vec4)"),
                });
            }
            let npix = n * ho * wo;
            let (bm, bn) = (16 * tile.tm, 16 * tile.tn);
            let tiles_m = w.mp.div_ceil(bm);
            // conv_gemm4 steps k by 16.
            let (kchunk, splits) = split_k(gpu, kt, total, tile.splits, 16);
            let tiles = tiles_m * npix.div_ceil(bn) * splits;
            let params = gemm_params(tiles_m, tiles, (kchunk, splits));
            let entry = if tile.vec4 { "conv_gemm4" } else { "conv_gemm" };
            let kernel = Kernel::new(&CONV_GEMM, entry).with("KS", k as f64).with("TM", tile.tm as f64).with("TN", tile.tn as f64).with("WF16", wf16);
            launch_split_k(&kernel, &params, tiles, splits)?;
        }
        ConvKernel::CoopMatrix { bm, splits } => {
            if !crate::gpu::COOP_BM.contains(&bm) || splits == 0 {
                return Err(Error::Invalid {
                    op: OP,
                    msg: format!("cooperative-matrix tile of {bm} channels, {splits} splits (use one of {:?})", crate::gpu::COOP_BM),
                });
            }
            // Its operands are f16 (`enable f16;`): without the feature the shader would not compile, and the
            // device would record the failure against whatever runs next.
            if !gpu.adapter().features.contains(&"SHADER_F16") {
                return Err(Error::Invalid { op: OP, msg: "the cooperative-matrix convolution needs an adapter with SHADER_F16".into() });
            }
            let npix = n * ho * wo;
            // conv_coop.wgsl steps k by 32.
            let (kchunk, splits) = split_k(gpu, kt, total, splits, 32);
            let tiles_m = w.mp.div_ceil(bm);
            let tiles = tiles_m * npix.div_ceil(64) * splits;
            let params = gemm_params(tiles_m, tiles, (kchunk, splits));
            let kernel = Kernel::new(coop, "conv_coop").with("KS", k as f64).with("WF16", wf16).with("SGM", (bm / 32) as f64);
            launch_split_k(&kernel, &params, tiles, splits)?;
        }
    }
    Ok(out)
}

/// Slices of k for split-K: at most `want` slices of whole `step`s each (the kernel's k step) for a `kt`-long
/// sum over an output of `total` floats, with the slices' partial sums within one storage binding (and
/// 256 MiB). Returns (k per slice, slices); (kt rounded up to `step`, 1) when no split is wanted or possible.
fn split_k(gpu: &Gpu, kt: usize, total: usize, want: usize, step: usize) -> (usize, usize) {
    let cap = (gpu.max_binding_bytes().min(256 << 20) / (4 * total as u64).max(1)) as usize;
    let want = want.min(kt.div_ceil(step)).min(cap).max(1);
    let kchunk = kt.div_ceil(step).div_ceil(want) * step;
    (kchunk, kt.div_ceil(kchunk))
}
