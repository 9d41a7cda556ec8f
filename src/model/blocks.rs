//! UNet building blocks shared by the ADM and diffusers layouts: convolution, GroupNorm, linear, pointwise
//! (1×1) projections, residual blocks with time embedding, and self-attention. Additions are fused into the
//! convolutions' epilogues (time-embedding terms, residual connections and their rescaling), and every
//! ResBlock's time-embedding projection runs as one batched product per forward ([`EmbStack`]).

use super::loader::Loader;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::ops::{self, ChannelTerm, Conv2d, ConvWeights, Epilogue, GroupNorm, MatView, ScaleShift};

/// A 2-D convolution layer with packed weights (f16 when the file stored them as F16, else f32).
pub(crate) struct Conv {
    /// `None` only in the validating (dry) load pass.
    w: Option<ConvWeights>,
    b: Option<Tensor>,
    cfg: Conv2d,
    /// The adjoint's packed weights (f32), made on the first input gradient and kept.
    wt: std::sync::Mutex<Option<ConvWeights>>,
}

impl Conv {
    pub(crate) fn load(l: &mut Loader, key: &str, cin: usize, cout: usize, k: usize, stride: usize) -> Result<Conv> {
        let wkey = format!("{key}.weight");
        let raw = l.take(&wkey, &[cout, cin, k, k])?;
        Self::from_raw(l, &wkey, &raw, &format!("{key}.bias"), cout, Conv2d { stride, padding: k / 2 })
    }

    fn from_raw(l: &mut Loader, wkey: &str, raw: &Tensor, bkey: &str, cout: usize, cfg: Conv2d) -> Result<Conv> {
        // The raw tensor is dropped after packing (back to the pool, reused by the next upload).
        let w = if l.is_dry() { None } else { Some(ops::pack_conv(l.gpu, raw, l.is_f16(wkey))?) };
        Ok(Conv { w, b: Some(l.take(bkey, &[cout])?), cfg, wt: std::sync::Mutex::new(None) })
    }

    /// The convolution plus bias, then `alpha · (· + term) + beta · residual`.
    pub(crate) fn run_with(&self, gpu: &Gpu, x: &Tensor, term: Option<ChannelTerm>, residual: Option<&Tensor>, alpha: f32, beta: f32) -> Result<Tensor> {
        let w = self.w.as_ref().ok_or_else(|| Error::Invalid { op: "conv2d", msg: "layer was loaded without weights".into() })?;
        ops::conv2d_packed(gpu, x, w, self.cfg, &Epilogue { bias: self.b.as_ref(), term, residual, alpha, beta })
    }

    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        self.run_with(gpu, x, None, None, 1.0, 1.0)
    }

    /// `alpha · Convᵀ(dy) (+ beta · residual)`: the input gradient for an input of `in_hw` (bias, channel
    /// terms and residuals of the forward do not depend on the input).
    pub(crate) fn input_grad(&self, gpu: &Gpu, dy: &Tensor, in_hw: (usize, usize), alpha: f32, residual: Option<(&Tensor, f32)>) -> Result<Tensor> {
        ops::conv2d_input_grad(gpu, dy, &self.transposed(gpu)?, self.cfg, in_hw, alpha, residual)
    }

    /// The adjoint's packed weights, made on first use and kept. Not inside a graph capture: there the
    /// transposition would only be recorded, not run ([`crate::model::Unet::tape`] makes them first).
    pub(crate) fn transposed(&self, gpu: &Gpu) -> Result<ConvWeights> {
        let w = self.w.as_ref().ok_or_else(|| Error::Invalid { op: "conv2d", msg: "layer was loaded without weights".into() })?;
        let mut cached = self.wt.lock().map_err(|_| Error::Gpu("transposed weights poisoned".into()))?;
        if let Some(t) = cached.as_ref() {
            return Ok(t.clone());
        }
        if gpu.capturing() {
            return Err(Error::Invalid { op: "conv2d", msg: "the adjoint's weights must be made before a graph capture".into() });
        }
        let t = ops::transpose_conv_weights(gpu, w)?;
        *cached = Some(t.clone());
        Ok(t)
    }
}

/// GroupNorm with affine parameters.
pub(crate) struct Norm {
    g: Tensor,
    b: Tensor,
    groups: usize,
    eps: f32,
}

impl Norm {
    pub(crate) fn load(l: &mut Loader, key: &str, c: usize, groups: usize, eps: f32) -> Result<Norm> {
        Ok(Norm { g: l.take(&format!("{key}.weight"), &[c])?, b: l.take(&format!("{key}.bias"), &[c])?, groups, eps })
    }
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor, ss: Option<ScaleShift>, silu: bool) -> Result<Tensor> {
        ops::group_norm(gpu, x, &self.g, &self.b, ss, GroupNorm { groups: self.groups, eps: self.eps, silu })
    }
    /// The input gradient of [`Norm::run`] at input `x` for the output gradient `dy`, plus `s · a` for
    /// `addend = Some((a, s))` (a residual branch's gradient, added in the same pass).
    pub(crate) fn backward(&self, gpu: &Gpu, x: &Tensor, dy: &Tensor, ss: Option<ScaleShift>, silu: bool, addend: Option<(&Tensor, f32)>) -> Result<Tensor> {
        ops::group_norm_backward(gpu, x, dy, &self.g, &self.b, ss, GroupNorm { groups: self.groups, eps: self.eps, silu }, addend)
    }
}

/// A dense layer `x Wᵀ + b` with `W` [out, in].
pub(crate) struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    pub(crate) fn load(l: &mut Loader, key: &str, cin: usize, cout: usize) -> Result<Linear> {
        Ok(Linear { w: l.take(&format!("{key}.weight"), &[cout, cin])?, b: l.take(&format!("{key}.bias"), &[cout])? })
    }
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        ops::linear(gpu, x, &self.w, Some(&self.b))
    }
}

/// The time-embedding projections of all ResBlocks, stacked into one [Σ out, E] layer at load time so a
/// forward computes them in one product; each block keeps the offset of its slice.
pub(crate) struct EmbStack {
    emb: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

/// The stacked projections' output for one forward: [N, total] and the row length.
#[derive(Clone, Copy)]
pub(crate) struct EmbOut<'a> {
    pub(crate) t: &'a Tensor,
    pub(crate) total: usize,
}

impl EmbStack {
    pub(crate) fn new(emb: usize) -> EmbStack {
        EmbStack { emb, w: Vec::new(), b: Vec::new() }
    }

    /// Appends the projection `key` (weight [out, E], bias [out]); returns its slice offset.
    pub(crate) fn push(&mut self, l: &mut Loader, key: &str, out: usize) -> Result<usize> {
        let offset = self.b.len();
        let w = l.take_host(&format!("{key}.weight"), &[out, self.emb])?;
        let b = l.take_host(&format!("{key}.bias"), &[out])?;
        if !l.is_dry() {
            self.w.extend_from_slice(&w);
        }
        self.b.extend_from_slice(&b);
        Ok(offset)
    }

    /// Uploads the stack as one layer — or as several of consecutive rows where one would pass a storage
    /// binding (ADM ImageNet-256: 51,712 × 1024 f32, 212 MB) — and returns it and the total output width.
    pub(crate) fn finish(self, l: &mut Loader) -> Result<(EmbProj, usize)> {
        let total = self.b.len();
        if total == 0 {
            return Err(Error::Invalid { op: "unet", msg: "the model has no residual blocks".into() });
        }
        let rows = (l.gpu.max_binding_bytes() / (4 * self.emb.max(1)) as u64).max(1) as usize;
        let mut parts = Vec::new();
        for start in (0..total).step_by(rows) {
            let end = (start + rows).min(total);
            let w = if l.is_dry() { &[][..] } else { &self.w[start * self.emb..end * self.emb] };
            parts.push(Linear { w: l.upload(&[end - start, self.emb], w)?, b: l.upload(&[end - start], &self.b[start..end])? });
        }
        Ok((EmbProj { parts }, total))
    }
}

/// The stacked time-embedding projections on the GPU: one [Σ out, E] layer, or several of consecutive rows
/// whose outputs are joined (where one layer would pass a storage binding).
pub(crate) struct EmbProj {
    parts: Vec<Linear>,
}

impl EmbProj {
    /// `x` [N, E] → [N, Σ out].
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        let n = x.shape()[0];
        let mut out: Option<Tensor> = None;
        for part in &self.parts {
            let y = part.run(gpu, x)?;
            out = Some(match out {
                None => y,
                // Joined along the last axis: [N, a] and [N, b] as channels of [N, ·, 1, 1] images.
                Some(o) => {
                    let (a, b) = (o.shape()[1], y.shape()[1]);
                    ops::concat_channels(gpu, &o.reshape(&[n, a, 1, 1])?, &y.reshape(&[n, b, 1, 1])?)?.reshape(&[n, a + b])?
                }
            });
        }
        out.ok_or(Error::Invalid { op: "unet", msg: "no time-embedding projection".into() })
    }
}

/// A 1×1 projection on channel-major [N, Cin, T] → [N, Cout, T] (ADM's conv1d k=1, diffusers' to_q etc.),
/// run as a 1×1 convolution (so it shares the convolution kernels and their residual epilogue).
pub(crate) struct Pointwise {
    conv: Conv,
    cout: usize,
}

impl Pointwise {
    /// `conv1d`: the weight is stored as [out, in, 1] (conv1d) rather than [out, in] (linear).
    pub(crate) fn load(l: &mut Loader, key: &str, cin: usize, cout: usize, conv1d: bool) -> Result<Pointwise> {
        let stored: Vec<usize> = if conv1d { vec![cout, cin, 1] } else { vec![cout, cin] };
        let wkey = format!("{key}.weight");
        let raw = l.take_as(&wkey, &stored, &[cout, cin, 1, 1])?;
        Ok(Pointwise { conv: Conv::from_raw(l, &wkey, &raw, &format!("{key}.bias"), cout, Conv2d::same(1))?, cout })
    }
    /// `x` [N, Cin, T] → [N, Cout, T], plus `scale · (· + residual)` when a residual is given.
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor, residual: Option<(&Tensor, f32)>) -> Result<Tensor> {
        let s = x.shape();
        let (n, t) = (s[0], s[2..].iter().product::<usize>());
        // [N, C, 1, T]: the convolution kernels block along the last (width) axis.
        let x4 = x.reshape(&[n, s[1], 1, t])?;
        let out = match residual {
            Some((r, scale)) => {
                let r4 = r.reshape(&[n, self.cout, 1, t])?;
                self.conv.run_with(gpu, &x4, None, Some(&r4), scale, scale)?
            }
            None => self.conv.run(gpu, &x4)?,
        };
        out.reshape(&[n, self.cout, t])
    }
    /// The input gradient `alpha · Wᵀ dout` [N, Cin, T] (+ `beta · residual`) for `dout` [N, Cout, T].
    pub(crate) fn backward(&self, gpu: &Gpu, dout: &Tensor, alpha: f32, residual: Option<(&Tensor, f32)>) -> Result<Tensor> {
        let s = dout.shape();
        let (n, t) = (s[0], s[2..].iter().product::<usize>());
        let cin = self.conv.w.as_ref().map(|w| w.shape()[1]).unwrap_or(0);
        let r4 = match residual {
            Some((r, beta)) => Some((r.reshape(&[n, cin, 1, t])?, beta)),
            None => None,
        };
        let dx = self.conv.input_grad(gpu, &dout.reshape(&[n, self.cout, 1, t])?, (1, t), alpha, r4.as_ref().map(|(r, b)| (r, *b)))?;
        dx.reshape(&[n, cin, t])
    }
}

/// Resampling inside a residual block (applied to both the hidden path and the skip input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resample {
    None,
    Up,
    Down,
}

/// A residual block with time-embedding injection (ADM `ResBlock`, diffusers `ResnetBlock2D`).
pub(crate) struct ResBlock {
    pub(crate) norm1: Norm,
    pub(crate) conv1: Conv,
    /// Offset of this block's slice in the stacked time-embedding projections (C, or 2C with scale-shift).
    pub(crate) emb_off: usize,
    pub(crate) norm2: Norm,
    pub(crate) conv2: Conv,
    pub(crate) skip: Option<Conv>,
    pub(crate) resample: Resample,
    pub(crate) scale_shift: bool,
    pub(crate) out_scale: f32,
}

impl ResBlock {
    /// `x` [N, C, H, W]; `emb` the stacked projections of SiLU(time embedding). Returns the output and
    /// conv1's output (what the backward needs besides `x`).
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor, emb: EmbOut) -> Result<(Tensor, Tensor)> {
        let h = self.norm1.run(gpu, x, None, true)?;
        let (x, h) = match self.resample {
            Resample::None => (x.clone(), h),
            Resample::Up => (ops::upsample_nearest2(gpu, x)?, ops::upsample_nearest2(gpu, &h)?),
            Resample::Down => (ops::avg_pool2(gpu, x)?, ops::avg_pool2(gpu, &h)?),
        };
        let (c1, h) = if self.scale_shift {
            let c1 = self.conv1.run(gpu, &h)?;
            let h = self.norm2.run(gpu, &c1, Some(self.scale_shift_of(emb)), true)?;
            (c1, h)
        } else {
            let term = ChannelTerm { t: emb.t, offset: self.emb_off, stride: emb.total };
            let c1 = self.conv1.run_with(gpu, &h, Some(term), None, 1.0, 1.0)?;
            let h = self.norm2.run(gpu, &c1, None, true)?;
            (c1, h)
        };
        let skip = match &self.skip {
            Some(c) => c.run(gpu, &x)?,
            None => x,
        };
        let s = 1.0 / self.out_scale;
        Ok((self.conv2.run_with(gpu, &h, None, Some(&skip), s, s)?, c1))
    }

    /// This block's slice of the time-embedding projections as norm2's scale and shift.
    pub(crate) fn scale_shift_of<'a>(&self, emb: EmbOut<'a>) -> ScaleShift<'a> {
        ScaleShift { t: emb.t, offset: self.emb_off, stride: emb.total }
    }
}

/// How q, k and v are produced and laid out.
pub(crate) enum Qkv {
    /// ADM `QKVAttentionLegacy`: one qkv projection, per head [q; k; v] channel blocks.
    AdmLegacy(Pointwise),
    /// ADM `QKVAttention`: one qkv projection, [q (all heads); k; v].
    AdmNew(Pointwise),
    /// diffusers `Attention`: separate q, k, v projections.
    Separate(Pointwise, Pointwise, Pointwise),
}

/// Spatial self-attention with a residual connection.
pub(crate) struct Attention {
    pub(crate) norm: Option<Norm>,
    pub(crate) qkv: Qkv,
    pub(crate) proj: Pointwise,
    pub(crate) heads: usize,
    pub(crate) rescale: f32,
}

impl Attention {
    /// `x` [N, C, H, W] → (output, the q/k/v projection tensors: one fused or three separate).
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor) -> Result<(Tensor, Vec<Tensor>)> {
        self.run_keeping(gpu, x, false).map(|(out, qkv, _)| (out, qkv))
    }

    /// [`Attention::run`], also returning the softmax probabilities where the attention kernel stores them
    /// and `keep_probs` asks for them (for the backward; otherwise they are dropped at once).
    pub(crate) fn run_keeping(&self, gpu: &Gpu, x: &Tensor, keep_probs: bool) -> Result<(Tensor, Vec<Tensor>, Option<Tensor>)> {
        let s = x.shape();
        let (n, c) = (s[0], s[1]);
        let t: usize = s[2..].iter().product();
        let ch = c / self.heads;
        let x3 = x.reshape(&[n, c, t])?;
        let h = match &self.norm {
            Some(norm) => norm.run(gpu, &x3, None, false)?,
            None => x3.clone(),
        };
        let qkv = match &self.qkv {
            Qkv::AdmLegacy(p) | Qkv::AdmNew(p) => vec![p.run(gpu, &h, None)?],
            Qkv::Separate(pq, pk, pv) => vec![pq.run(gpu, &h, None)?, pk.run(gpu, &h, None)?, pv.run(gpu, &h, None)?],
        };
        let [q, k, v] = self.views(&qkv, c, t)?;
        let (a, probs) = ops::attention(gpu, q, k, v, n, self.heads, ch, t, self.scale(c))?;
        // Dropped here unless kept: their buffer is free for the projection's output.
        let probs = if keep_probs { probs } else { None };
        let a = a.reshape(&[n, c, t])?;
        Ok((self.proj.run(gpu, &a, Some((&x3, 1.0 / self.rescale)))?.reshape(s)?, qkv, probs))
    }

    /// 1/√(channels per head), the scores' scale.
    pub(crate) fn scale(&self, c: usize) -> f32 {
        1.0 / ((c / self.heads) as f32).sqrt()
    }

    /// q, k and v as views into the projection tensors `qkv` (see [`ops::attention`]).
    pub(crate) fn views<'a>(&self, qkv: &'a [Tensor], c: usize, t: usize) -> Result<[(&'a Tensor, MatView); 3]> {
        let ch = c / self.heads;
        match (&self.qkv, qkv) {
            (Qkv::AdmLegacy(_), [f]) => {
                let v = |part: usize| MatView { offset: part * ch * t, inner: 1, batch_hi: 3 * ch * t, batch_lo: 0, row: t, col: 1 };
                Ok([(f, v(0)), (f, v(1)), (f, v(2))])
            }
            (Qkv::AdmNew(_), [f]) => {
                let v = |part: usize| MatView { offset: part * c * t, inner: self.heads, batch_hi: 3 * c * t, batch_lo: ch * t, row: t, col: 1 };
                Ok([(f, v(0)), (f, v(1)), (f, v(2))])
            }
            (Qkv::Separate(..), [q, k, v]) => {
                let view = MatView { offset: 0, inner: self.heads, batch_hi: c * t, batch_lo: ch * t, row: t, col: 1 };
                Ok([(q, view), (k, view), (v, view)])
            }
            _ => Err(Error::Invalid { op: "attention", msg: "q/k/v tensors do not match the projection layout".into() }),
        }
    }
}

/// One step of a UNet level.
pub(crate) enum Block {
    Conv(Conv),
    Res(ResBlock),
    Attn(Attention),
    /// Nearest ×2, then an optional 3×3 convolution.
    Up(Option<Conv>),
    /// A stride-2 3×3 convolution, or 2×2 average pooling.
    Down(Option<Conv>),
}

impl Block {
    /// Calls `f` on every convolution of the block (attention's pointwise projections included).
    pub(crate) fn each_conv(&self, f: &mut dyn FnMut(&Conv) -> Result<()>) -> Result<()> {
        match self {
            Block::Conv(c) | Block::Up(Some(c)) | Block::Down(Some(c)) => f(c),
            Block::Res(r) => [Some(&r.conv1), Some(&r.conv2), r.skip.as_ref()].into_iter().flatten().try_for_each(f),
            Block::Attn(a) => {
                let qkv: [Option<&Pointwise>; 3] = match &a.qkv {
                    Qkv::AdmLegacy(p) | Qkv::AdmNew(p) => [Some(p), None, None],
                    Qkv::Separate(q, k, v) => [Some(q), Some(k), Some(v)],
                };
                qkv.into_iter().flatten().chain([&a.proj]).try_for_each(|p| f(&p.conv))
            }
            Block::Up(None) | Block::Down(None) => Ok(()),
        }
    }

    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor, emb: EmbOut) -> Result<Tensor> {
        match self {
            Block::Conv(c) => c.run(gpu, x),
            Block::Res(r) => Ok(r.run(gpu, x, emb)?.0),
            Block::Attn(a) => Ok(a.run(gpu, x)?.0),
            Block::Up(conv) => {
                let u = ops::upsample_nearest2(gpu, x)?;
                match conv {
                    Some(c) => c.run(gpu, &u),
                    None => Ok(u),
                }
            }
            Block::Down(Some(c)) => c.run(gpu, x),
            Block::Down(None) => ops::avg_pool2(gpu, x),
        }
    }
}
