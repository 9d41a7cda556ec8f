//! The UNet's vector-Jacobian product: `vjp(x, t, v) = (∂ε_θ(x, t)/∂x)ᵀ v`, input gradients only (no weight
//! gradients, t and labels held fixed). One forward ([`Unet::tape`]) keeps what the backward needs — each
//! ResBlock's input and conv1 output, each attention block's input and q/k/v projections, the output norm's
//! input (convolutions and resampling need only sizes) — and the backward walks the blocks in reverse with
//! the ops of `ops::backward`. Activations are kept, not recomputed: about two tensors per ResBlock and four
//! per attention block stay alive (for ADM FFHQ-256 at batch 1 on the order of 1–2 GiB; the built-in prior
//! needs a few MiB). Runs outside the captured forward graphs.

use super::blocks::{Attention, Block, EmbOut, Qkv, ResBlock, Resample};
use super::unet::Unet;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::ops;

/// What a block's forward keeps for its backward.
enum Saved {
    /// The input's height and width (all convolutions and resampling need).
    Size(usize, usize),
    /// A ResBlock's input and conv1 output.
    Res { x: Tensor, c1: Tensor },
    /// An attention block's input and q/k/v projections.
    Attn { x: Tensor, qkv: Vec<Tensor> },
}

fn hw(t: &Tensor) -> (usize, usize) {
    let s = t.shape();
    (s[2], s[3])
}

/// Nearest ×2 upsampling's adjoint: the sum over each 2×2 block.
fn upsample_adjoint(gpu: &Gpu, d: &Tensor) -> Result<Tensor> {
    ops::affine(gpu, &ops::avg_pool2(gpu, d)?, 4.0, 0.0)
}

/// 2×2 average pooling's adjoint: each value spread over its block, divided by 4.
fn avg_pool_adjoint(gpu: &Gpu, d: &Tensor) -> Result<Tensor> {
    ops::affine(gpu, &ops::upsample_nearest2(gpu, d)?, 0.25, 0.0)
}

impl ResBlock {
    /// The input gradient for output gradient `d`, from the saved input `x` and conv1 output `c1`.
    fn backward(&self, gpu: &Gpu, x: &Tensor, c1: &Tensor, emb: EmbOut, d: &Tensor) -> Result<Tensor> {
        let s = 1.0 / self.out_scale;
        // out = s · (conv2(h) + b) + s · skip(x'),  h = silu(norm2(c1 [, scale-shift])),  x' = resample(x).
        let dh = self.conv2.input_grad(gpu, d, hw(c1), s, None)?;
        let ss = if self.scale_shift { Some(self.scale_shift_of(emb)) } else { None };
        let dc1 = self.norm2.backward(gpu, c1, &dh, ss, true)?;
        let da = self.conv1.input_grad(gpu, &dc1, hw(c1), 1.0, None)?;
        let dskip = match &self.skip {
            Some(c) => c.input_grad(gpu, d, hw(c1), s, None)?,
            None => ops::affine(gpu, d, s, 0.0)?,
        };
        let back = |t: Tensor| match self.resample {
            Resample::None => Ok(t),
            Resample::Up => upsample_adjoint(gpu, &t),
            Resample::Down => avg_pool_adjoint(gpu, &t),
        };
        let (da, dskip) = (back(da)?, back(dskip)?);
        // The norm1 path and the skip path both start at x.
        ops::add(gpu, &self.norm1.backward(gpu, x, &da, None, true)?, &dskip)
    }
}

impl Attention {
    /// The input gradient for output gradient `d` [N, C, H, W], from the saved input and q/k/v projections.
    fn backward(&self, gpu: &Gpu, x: &Tensor, qkv: &[Tensor], d: &Tensor) -> Result<Tensor> {
        let s = x.shape();
        let (n, c) = (s[0], s[1]);
        let t: usize = s[2..].iter().product();
        let ch = c / self.heads;
        let r = 1.0 / self.rescale;
        let x3 = x.reshape(&[n, c, t])?;
        let d3 = d.reshape(&[n, c, t])?;
        // out = r · (proj(a) + b) + r · x.
        let da = self.proj.backward(gpu, &d3, r, None)?;
        let [q, k, v] = self.views(qkv, c, t)?;
        let (dq, dk, dv) = ops::attention_backward(gpu, q, k, v, &da, n, self.heads, ch, t, self.scale(c))?;
        let dh = match &self.qkv {
            // Per head [q; k; v] channel blocks: concatenate per (image, head).
            Qkv::AdmLegacy(p) => {
                let per_head = |g: &Tensor| g.reshape(&[n * self.heads, ch, t]);
                let cat = ops::concat_channels(gpu, &ops::concat_channels(gpu, &per_head(&dq)?, &per_head(&dk)?)?, &per_head(&dv)?)?;
                p.backward(gpu, &cat.reshape(&[n, 3 * c, t])?, 1.0, None)?
            }
            // [q (all heads); k; v].
            Qkv::AdmNew(p) => {
                let whole = |g: &Tensor| g.reshape(&[n, c, t]);
                let cat = ops::concat_channels(gpu, &ops::concat_channels(gpu, &whole(&dq)?, &whole(&dk)?)?, &whole(&dv)?)?;
                p.backward(gpu, &cat, 1.0, None)?
            }
            Qkv::Separate(pq, pk, pv) => {
                let g = pq.backward(gpu, &dq.reshape(&[n, c, t])?, 1.0, None)?;
                let g = pk.backward(gpu, &dk.reshape(&[n, c, t])?, 1.0, Some((&g, 1.0)))?;
                pv.backward(gpu, &dv.reshape(&[n, c, t])?, 1.0, Some((&g, 1.0)))?
            }
        };
        let dx = match &self.norm {
            Some(norm) => norm.backward(gpu, &x3, &dh, None, false)?,
            None => dh,
        };
        ops::axpby(gpu, 1.0, &dx, r, &d3)?.reshape(s)
    }
}

impl Block {
    /// The forward, keeping what [`Block::backward`] needs.
    fn run_saving(&self, gpu: &Gpu, x: &Tensor, emb: EmbOut) -> Result<(Tensor, Saved)> {
        Ok(match self {
            Block::Res(r) => {
                let (out, c1) = r.run(gpu, x, emb)?;
                (out, Saved::Res { x: x.clone(), c1 })
            }
            Block::Attn(a) => {
                let (out, qkv) = a.run(gpu, x)?;
                (out, Saved::Attn { x: x.clone(), qkv })
            }
            _ => (self.run(gpu, x, emb)?, Saved::Size(hw(x).0, hw(x).1)),
        })
    }

    /// The input gradient for output gradient `d`.
    fn backward(&self, gpu: &Gpu, saved: &Saved, emb: EmbOut, d: &Tensor) -> Result<Tensor> {
        match (self, saved) {
            (Block::Conv(c), Saved::Size(h, w)) => c.input_grad(gpu, d, (*h, *w), 1.0, None),
            (Block::Res(r), Saved::Res { x, c1 }) => r.backward(gpu, x, c1, emb, d),
            (Block::Attn(a), Saved::Attn { x, qkv }) => a.backward(gpu, x, qkv, d),
            (Block::Up(conv), Saved::Size(h, w)) => {
                let du = match conv {
                    Some(c) => c.input_grad(gpu, d, (2 * h, 2 * w), 1.0, None)?,
                    None => d.clone(),
                };
                upsample_adjoint(gpu, &du)
            }
            (Block::Down(Some(c)), Saved::Size(h, w)) => c.input_grad(gpu, d, (*h, *w), 1.0, None),
            (Block::Down(None), Saved::Size(..)) => avg_pool_adjoint(gpu, d),
            _ => Err(Error::Invalid { op: "unet vjp", msg: "saved activations do not match the block".into() }),
        }
    }
}

/// One forward of a [`Unet`] that kept its activations, so that vector-Jacobian products at that input can
/// follow ([`UnetTape::vjp`], any number of times). Made by [`Unet::tape`].
pub struct UnetTape<'a> {
    unet: &'a Unet,
    x_shape: Vec<usize>,
    emb_all: Tensor,
    down_saved: Vec<Vec<Saved>>,
    mid_saved: Vec<Saved>,
    /// Per up entry: channels before the concatenation, the skip's channels, the blocks' state.
    up_saved: Vec<(usize, usize, Vec<Saved>)>,
    pre_out: Tensor,
    out: Tensor,
}

impl Unet {
    /// The forward at `x` [N, C, H, W], timesteps `t` (N values, f32) and labels `y` (class-conditional models),
    /// keeping what [`UnetTape::vjp`] needs. The whole batch runs at once (no splitting by the binding
    /// limit) and outside the captured forward graphs.
    pub fn tape(&self, gpu: &Gpu, x: &Tensor, t: &Tensor, y: Option<&[usize]>) -> Result<UnetTape<'_>> {
        const OP: &str = "unet vjp";
        self.check_inputs(x, t, y)?;
        let onehot = self.onehot(gpu, y)?;
        let emb_all = self.embedding(gpu, t, onehot.as_ref())?;
        let emb = EmbOut { t: &emb_all, total: self.emb_total };
        let mut h = if self.center_input { ops::affine(gpu, x, 2.0, -1.0)? } else { x.clone() };
        let mut down_saved = Vec::with_capacity(self.down.len());
        let mut skips = Vec::with_capacity(self.down.len());
        for entry in &self.down {
            let mut saved = Vec::with_capacity(entry.len());
            for b in entry {
                let (out, s) = b.run_saving(gpu, &h, emb)?;
                saved.push(s);
                h = out;
            }
            down_saved.push(saved);
            skips.push(h.clone());
        }
        let mut mid_saved = Vec::with_capacity(self.mid.len());
        for b in &self.mid {
            let (out, s) = b.run_saving(gpu, &h, emb)?;
            mid_saved.push(s);
            h = out;
        }
        let mut up_saved = Vec::with_capacity(self.up.len());
        for entry in &self.up {
            let skip = skips.pop().ok_or(Error::Invalid { op: OP, msg: "more up blocks than skips".into() })?;
            let before = h.shape()[1];
            h = ops::concat_channels(gpu, &h, &skip)?;
            let mut saved = Vec::with_capacity(entry.len());
            for b in entry {
                let (out, s) = b.run_saving(gpu, &h, emb)?;
                saved.push(s);
                h = out;
            }
            up_saved.push((before, skip.shape()[1], saved));
        }
        let out = self.out_conv.run(gpu, &self.out_norm.run(gpu, &h, None, true)?)?;
        Ok(UnetTape { unet: self, x_shape: x.shape().to_vec(), emb_all, down_saved, mid_saved, up_saved, pre_out: h, out })
    }

    /// The network output and a vector-Jacobian product at one input: (raw output [N, out_channels, H, W]
    /// as [`Unet::forward`] gives it, (∂ε/∂x)ᵀ v [N, C, H, W]) for `v` [N, C, H, W] (see [`UnetTape::vjp`]).
    pub fn vjp(&self, gpu: &Gpu, x: &Tensor, t: &Tensor, y: Option<&[usize]>, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let tape = self.tape(gpu, x, t, y)?;
        let g = tape.vjp(gpu, v)?;
        Ok((tape.out, g))
    }
}

impl UnetTape<'_> {
    /// The raw network output [N, out_channels, H, W] (learned-sigma channels included).
    pub fn output(&self) -> &Tensor {
        &self.out
    }

    /// (∂ε/∂x)ᵀ v [N, C, H, W] for `v` [N, C, H, W] (C = the input channels), where ε is the output's first C
    /// channels (learned-sigma channels get no weight); t and labels are held fixed.
    pub fn vjp(&self, gpu: &Gpu, v: &Tensor) -> Result<Tensor> {
        const OP: &str = "unet vjp";
        let unet = self.unet;
        if v.shape() != self.x_shape.as_slice() {
            return Err(Error::Shape { op: OP, msg: format!("v {:?} must have the input's shape {:?}", v.shape(), self.x_shape) });
        }
        let emb = EmbOut { t: &self.emb_all, total: unet.emb_total };
        let (n, c) = (self.x_shape[0], self.x_shape[1]);
        let oc = self.out.shape()[1];
        // v on the ε channels, zero on learned-sigma ones.
        let dout = if oc > c { ops::concat_channels(gpu, v, &gpu.zeros(&[n, oc - c, self.x_shape[2], self.x_shape[3]])?)? } else { v.clone() };
        let g = unet.out_conv.input_grad(gpu, &dout, hw(&self.pre_out), 1.0, None)?;
        let mut g = unet.out_norm.backward(gpu, &self.pre_out, &g, None, true)?;
        // Up path in reverse; each entry's concatenation splits the gradient into its two inputs.
        let mut skip_grads: Vec<Tensor> = Vec::with_capacity(unet.up.len());
        for (entry, (before, skip_c, saved)) in unet.up.iter().zip(&self.up_saved).rev() {
            for (b, s) in entry.iter().zip(saved).rev() {
                g = b.backward(gpu, s, emb, &g)?;
            }
            skip_grads.push(ops::slice_channels(gpu, &g, *before, *skip_c)?);
            g = ops::slice_channels(gpu, &g, 0, *before)?;
        }
        for (b, s) in unet.mid.iter().zip(&self.mid_saved).rev() {
            g = b.backward(gpu, s, emb, &g)?;
        }
        // skip_grads[j] belongs to down entry j (the last up entry used the first skip).
        for (j, (entry, saved)) in unet.down.iter().zip(&self.down_saved).enumerate().rev() {
            let sg = skip_grads.get(j).ok_or(Error::Invalid { op: OP, msg: "fewer skips than down entries".into() })?;
            g = ops::add(gpu, &g, sg)?;
            for (b, s) in entry.iter().zip(saved).rev() {
                g = b.backward(gpu, s, emb, &g)?;
            }
        }
        if unet.center_input {
            ops::affine(gpu, &g, 2.0, 0.0)
        } else {
            Ok(g)
        }
    }
}
