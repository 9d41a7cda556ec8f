//! UNet building blocks shared by the ADM and diffusers layouts: convolution, GroupNorm, linear, pointwise
//! (1×1) projections, residual blocks with time embedding, and self-attention.

use super::loader::Loader;
use crate::error::Result;
use crate::gpu::{Gpu, Tensor};
use crate::ops::{self, Bias, Conv2d, GroupNorm, MatView, Matmul};

/// Convolution weights: packed once for the 3×3 stride-1 fast path, else as stored ([Cout, Cin, K, K]).
enum ConvWeights {
    Packed(ops::Packed3x3),
    Plain(Tensor),
}

/// A 2-D convolution layer.
pub(crate) struct Conv {
    w: ConvWeights,
    b: Option<Tensor>,
    cfg: Conv2d,
}

impl Conv {
    pub(crate) fn load(l: &mut Loader, key: &str, cin: usize, cout: usize, k: usize, stride: usize) -> Result<Conv> {
        let raw = l.take(&format!("{key}.weight"), &[cout, cin, k, k])?;
        // The raw tensor is dropped after packing (back to the pool, reused by the next upload).
        let w = if k == 3 && stride == 1 && !l.is_dry() { ConvWeights::Packed(ops::pack_conv3x3(l.gpu, &raw)?) } else { ConvWeights::Plain(raw) };
        Ok(Conv { w, b: Some(l.take(&format!("{key}.bias"), &[cout])?), cfg: Conv2d { stride, padding: k / 2 } })
    }
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        match &self.w {
            ConvWeights::Packed(p) => ops::conv3x3_packed(gpu, x, p, self.b.as_ref()),
            ConvWeights::Plain(w) => ops::conv2d(gpu, x, w, self.b.as_ref(), self.cfg),
        }
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
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor, ss: Option<&Tensor>, silu: bool) -> Result<Tensor> {
        ops::group_norm(gpu, x, &self.g, &self.b, ss, GroupNorm { groups: self.groups, eps: self.eps, silu })
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

/// A 1×1 projection on channel-major [N, Cin, T] → [N, Cout, T] (ADM's conv1d k=1, diffusers' to_q etc.).
pub(crate) struct Pointwise {
    w: Tensor,
    b: Tensor,
    cin: usize,
    cout: usize,
}

impl Pointwise {
    /// `stored` is the weight's shape in the file ([out, in, 1] for conv1d, [out, in] for linear).
    pub(crate) fn load(l: &mut Loader, key: &str, cin: usize, cout: usize, conv1d: bool) -> Result<Pointwise> {
        let stored: Vec<usize> = if conv1d { vec![cout, cin, 1] } else { vec![cout, cin] };
        Ok(Pointwise {
            w: l.take_as(&format!("{key}.weight"), &stored, &[cout, cin])?,
            b: l.take(&format!("{key}.bias"), &[cout])?,
            cin,
            cout,
        })
    }
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor, n: usize, t: usize) -> Result<Tensor> {
        let d = Matmul {
            batch: n,
            m: self.cout,
            n: t,
            k: self.cin,
            a: MatView::rows(self.cout, self.cin).shared(),
            b: MatView::rows(self.cin, t),
            alpha: 1.0,
        };
        ops::matmul(gpu, &self.w, x, Bias::Row(&self.b), &d, None)
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
    pub(crate) emb: Linear,
    pub(crate) norm2: Norm,
    pub(crate) conv2: Conv,
    pub(crate) skip: Option<Conv>,
    pub(crate) resample: Resample,
    pub(crate) scale_shift: bool,
    pub(crate) out_scale: f32,
}

impl ResBlock {
    /// `x` [N, C, H, W], `emb_silu` = SiLU(time embedding) [N, E].
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor, emb_silu: &Tensor) -> Result<Tensor> {
        let h = self.norm1.run(gpu, x, None, true)?;
        let (x, h) = match self.resample {
            Resample::None => (x.clone(), h),
            Resample::Up => (ops::upsample_nearest2(gpu, x)?, ops::upsample_nearest2(gpu, &h)?),
            Resample::Down => (ops::avg_pool2(gpu, x)?, ops::avg_pool2(gpu, &h)?),
        };
        let h = self.conv1.run(gpu, &h)?;
        let e = self.emb.run(gpu, emb_silu)?;
        let h = if self.scale_shift {
            self.norm2.run(gpu, &h, Some(&e), true)?
        } else {
            self.norm2.run(gpu, &ops::add_bcast(gpu, &h, &e)?, None, true)?
        };
        let h = self.conv2.run(gpu, &h)?;
        let skip = match &self.skip {
            Some(c) => c.run(gpu, &x)?,
            None => x,
        };
        if self.out_scale == 1.0 {
            ops::add(gpu, &skip, &h)
        } else {
            ops::axpby(gpu, 1.0 / self.out_scale, &skip, 1.0 / self.out_scale, &h)
        }
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
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        let s = x.shape();
        let (n, c) = (s[0], s[1]);
        let t: usize = s[2..].iter().product();
        let ch = c / self.heads;
        let h = match &self.norm {
            Some(norm) => norm.run(gpu, x, None, false)?,
            None => x.clone(),
        };
        let scale = 1.0 / (ch as f32).sqrt();
        let bh = n * self.heads;
        let a = match &self.qkv {
            Qkv::AdmLegacy(p) => {
                let qkv = p.run(gpu, &h, n, t)?;
                let v = |part: usize| MatView { offset: part * ch * t, inner: 1, batch_hi: 3 * ch * t, batch_lo: 0, row: t, col: 1 };
                ops::attention(gpu, (&qkv, v(0)), (&qkv, v(1)), (&qkv, v(2)), n, self.heads, ch, t, scale)?
            }
            Qkv::AdmNew(p) => {
                let qkv = p.run(gpu, &h, n, t)?;
                let v = |part: usize| MatView {
                    offset: part * c * t,
                    inner: self.heads,
                    batch_hi: 3 * c * t,
                    batch_lo: ch * t,
                    row: t,
                    col: 1,
                };
                ops::attention(gpu, (&qkv, v(0)), (&qkv, v(1)), (&qkv, v(2)), n, self.heads, ch, t, scale)?
            }
            Qkv::Separate(pq, pk, pv) => {
                let (q, k, vv) = (pq.run(gpu, &h, n, t)?, pk.run(gpu, &h, n, t)?, pv.run(gpu, &h, n, t)?);
                let v = MatView { offset: 0, inner: self.heads, batch_hi: c * t, batch_lo: ch * t, row: t, col: 1 };
                ops::attention(gpu, (&q, v), (&k, v), (&vv, v), n, self.heads, ch, t, scale)?
            }
        };
        debug_assert_eq!(a.numel(), bh * ch * t);
        let out = self.proj.run(gpu, &a, n, t)?.reshape(s)?;
        if self.rescale == 1.0 {
            ops::add(gpu, x, &out)
        } else {
            ops::axpby(gpu, 1.0 / self.rescale, x, 1.0 / self.rescale, &out)
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
    pub(crate) fn run(&self, gpu: &Gpu, x: &Tensor, emb_silu: &Tensor) -> Result<Tensor> {
        match self {
            Block::Conv(c) => c.run(gpu, x),
            Block::Res(r) => r.run(gpu, x, emb_silu),
            Block::Attn(a) => a.run(gpu, x),
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
