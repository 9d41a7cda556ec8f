//! The UNet's vector-Jacobian product: `vjp(x, t, v) = (∂ε_θ(x, t)/∂x)ᵀ v`, input gradients only (no weight
//! gradients, t and labels held fixed). One forward ([`Unet::tape`]) keeps what the backward needs — each
//! ResBlock's input and conv1 output, each attention block's input and q/k/v projections (and its softmax
//! probabilities where the attention kernel stores them: CPU adapters, heads over 64 channels), the output
//! norm's input (convolutions and resampling need only sizes) — and the backward walks the blocks in reverse
//! with the ops of `ops::backward`. Activations are kept, not recomputed: about two tensors per ResBlock and
//! four or five per attention block stay alive (for ADM FFHQ-256 at batch 1 on the order of 1–2 GiB; the built-in prior
//! needs a few MiB). The first tape of an input shape captures the saving forward and the backward into two
//! graphs of their own ([`TapeGraph`]); later tapes of that shape replay them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::blocks::{Attention, Block, EmbOut, Qkv, ResBlock, Resample};
use super::unet::Unet;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Graph, Tensor};
use crate::ops;

const OP: &str = "unet vjp";

/// What a block's forward keeps for its backward.
enum Saved {
    /// The input's height and width (all convolutions and resampling need).
    Size(usize, usize),
    /// A ResBlock's input and conv1 output.
    Res { x: Tensor, c1: Tensor },
    /// An attention block's input, q/k/v projections and, where the forward stored them, its softmax
    /// probabilities.
    Attn { x: Tensor, qkv: Vec<Tensor>, probs: Option<Tensor> },
}

fn hw(t: &Tensor) -> (usize, usize) {
    let s = t.shape();
    (s[2], s[3])
}

impl ResBlock {
    /// The input gradient for output gradient `d`, from the saved input `x` and conv1 output `c1`.
    fn backward(&self, gpu: &Gpu, x: &Tensor, c1: &Tensor, emb: EmbOut, d: &Tensor) -> Result<Tensor> {
        let s = 1.0 / self.out_scale;
        // out = s · (conv2(h) + b) + s · skip(x'),  h = silu(norm2(c1 [, scale-shift])),  x' = resample(x).
        let dh = self.conv2.input_grad(gpu, d, hw(c1), s, None)?;
        let ss = if self.scale_shift { Some(self.scale_shift_of(emb)) } else { None };
        let dc1 = self.norm2.backward(gpu, c1, &dh, ss, true, None)?;
        let da = self.conv1.input_grad(gpu, &dc1, hw(c1), 1.0, None)?;
        let back = |t: &Tensor| match self.resample {
            Resample::None => Ok(t.clone()),
            Resample::Up => ops::upsample_nearest2_adjoint(gpu, t),
            Resample::Down => ops::avg_pool2_adjoint(gpu, t),
        };
        // The skip path's gradient and its factor: an identity skip without resampling passes (d, s) on as
        // it is, so that norm1's backward adds s · d in its own pass.
        let (dskip, ds) = match (&self.skip, self.resample) {
            (Some(c), _) => (back(&c.input_grad(gpu, d, hw(c1), s, None)?)?, 1.0),
            (None, Resample::None) => (d.clone(), s),
            (None, _) if s == 1.0 => (back(d)?, 1.0),
            (None, _) => (back(&ops::affine(gpu, d, s, 0.0)?)?, 1.0),
        };
        // The norm1 path and the skip path both start at x.
        self.norm1.backward(gpu, x, &back(&da)?, None, true, Some((&dskip, ds)))
    }
}

impl Attention {
    /// The input gradient for output gradient `d` [N, C, H, W], from the saved input, q/k/v projections and
    /// softmax probabilities (recomputed when not saved).
    fn backward(&self, gpu: &Gpu, x: &Tensor, qkv: &[Tensor], probs: Option<&Tensor>, d: &Tensor) -> Result<Tensor> {
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
        let (dq, dk, dv) = ops::attention_backward(gpu, q, k, v, probs, &da, n, self.heads, ch, t, self.scale(c))?;
        let dh = match &self.qkv {
            // Per head [q; k; v] channel blocks: concatenate per (image, head).
            Qkv::AdmLegacy(p) => {
                let per_head = |g: &Tensor| g.reshape(&[n * self.heads, ch, t]);
                let cat = ops::concat3_channels(gpu, &per_head(&dq)?, &per_head(&dk)?, &per_head(&dv)?)?;
                p.backward(gpu, &cat.reshape(&[n, 3 * c, t])?, 1.0, None)?
            }
            // [q (all heads); k; v].
            Qkv::AdmNew(p) => {
                let whole = |g: &Tensor| g.reshape(&[n, c, t]);
                let cat = ops::concat3_channels(gpu, &whole(&dq)?, &whole(&dk)?, &whole(&dv)?)?;
                p.backward(gpu, &cat, 1.0, None)?
            }
            Qkv::Separate(pq, pk, pv) => {
                let g = pq.backward(gpu, &dq.reshape(&[n, c, t])?, 1.0, None)?;
                let g = pk.backward(gpu, &dk.reshape(&[n, c, t])?, 1.0, Some((&g, 1.0)))?;
                pv.backward(gpu, &dv.reshape(&[n, c, t])?, 1.0, Some((&g, 1.0)))?
            }
        };
        // out's residual term r · x joins the norm's backward pass (or, without a norm, one axpby).
        match &self.norm {
            Some(norm) => norm.backward(gpu, &x3, &dh, None, false, Some((&d3, r)))?.reshape(s),
            None => ops::axpby(gpu, 1.0, &dh, r, &d3)?.reshape(s),
        }
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
                let (out, qkv, probs) = a.run_keeping(gpu, x, true)?;
                (out, Saved::Attn { x: x.clone(), qkv, probs })
            }
            _ => (self.run(gpu, x, emb)?, Saved::Size(hw(x).0, hw(x).1)),
        })
    }

    /// The input gradient for output gradient `d`.
    fn backward(&self, gpu: &Gpu, saved: &Saved, emb: EmbOut, d: &Tensor) -> Result<Tensor> {
        match (self, saved) {
            (Block::Conv(c), Saved::Size(h, w)) => c.input_grad(gpu, d, (*h, *w), 1.0, None),
            (Block::Res(r), Saved::Res { x, c1 }) => r.backward(gpu, x, c1, emb, d),
            (Block::Attn(a), Saved::Attn { x, qkv, probs }) => a.backward(gpu, x, qkv, probs.as_ref(), d),
            (Block::Up(conv), Saved::Size(h, w)) => {
                let du = match conv {
                    Some(c) => c.input_grad(gpu, d, (2 * h, 2 * w), 1.0, None)?,
                    None => d.clone(),
                };
                ops::upsample_nearest2_adjoint(gpu, &du)
            }
            (Block::Down(Some(c)), Saved::Size(h, w)) => c.input_grad(gpu, d, (*h, *w), 1.0, None),
            (Block::Down(None), Saved::Size(..)) => ops::avg_pool2_adjoint(gpu, d),
            _ => Err(Error::Invalid { op: "unet vjp", msg: "saved activations do not match the block".into() }),
        }
    }
}

/// What the backward needs from one saving forward: the time embedding, every block's [`Saved`], and the
/// output norm's input.
struct Saves {
    emb_all: Tensor,
    down: Vec<Vec<Saved>>,
    mid: Vec<Saved>,
    /// Per up entry: channels before the concatenation, the blocks' state.
    up: Vec<(usize, Vec<Saved>)>,
    pre_out: Tensor,
}

/// A saving forward and its backward captured for one input shape ([`Gpu::capture`]): the forward graph
/// writes the network output and every saved activation into its own buffers, the backward graph reads
/// them and `v`. Reused by every later tape of that shape while no other tape holds it.
pub(crate) struct TapeGraph {
    forward: Graph,
    backward: Graph,
    x: Tensor,
    t: Tensor,
    onehot: Option<Tensor>,
    v: Tensor,
    out: Tensor,
    grad: Tensor,
    /// A live [`UnetTape`] uses the graph's buffers.
    busy: AtomicBool,
}

impl TapeGraph {
    /// Input shape, dispatches of the forward and the backward, and the GPU bytes both graphs hold.
    pub(crate) fn stats(&self) -> (Vec<usize>, usize, usize, u64) {
        (self.x.shape().to_vec(), self.forward.dispatches(), self.backward.dispatches(), self.forward.bytes() + self.backward.bytes())
    }
}

/// A tape's hold on a [`TapeGraph`]; dropping it frees the graph for the next tape.
struct Lease(Arc<TapeGraph>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

/// Where a tape's activations are: recorded into tensors of its own, or in a captured graph's buffers.
enum Kept {
    Recorded(Saves),
    Captured(Lease),
}

/// One forward of a [`Unet`] that kept its activations, so that vector-Jacobian products at that input can
/// follow ([`UnetTape::vjp`], any number of times). Made by [`Unet::tape`].
pub struct UnetTape<'a> {
    unet: &'a Unet,
    x_shape: Vec<usize>,
    out: Tensor,
    kept: Kept,
}

/// Captured tapes kept per model (one per input shape); the oldest is dropped beyond this.
const MAX_TAPE_GRAPHS: usize = 2;

impl Unet {
    /// The forward at `x` [N, C, H, W], timesteps `t` (N values, f32) and labels `y` (class-conditional models),
    /// keeping what [`UnetTape::vjp`] needs. The whole batch runs at once (no splitting by the binding
    /// limit). The first tape of an input shape captures the saving forward and the backward into graphs
    /// ([`Gpu::capture`]); later tapes of that shape replay them (inputs copied in, output and products copied
    /// out), so a step records no bind group. While a tape holds its shape's graphs, another tape of that
    /// shape (the tiled denoiser keeps one per pass) records its dispatches one by one instead.
    pub fn tape(&self, gpu: &Gpu, x: &Tensor, t: &Tensor, y: Option<&[usize]>) -> Result<UnetTape<'_>> {
        self.check_inputs(x, t, y)?;
        let onehot = self.onehot_rows(y);
        let lease = if gpu.capturing() { None } else { self.lease_tape_graph(gpu, x.shape(), onehot.as_ref().map(|o| o.1))? };
        let Some(lease) = lease else {
            let oh = match &onehot {
                Some((rows, classes)) => Some(gpu.upload(&[x.shape()[0], *classes], rows)?),
                None => None,
            };
            let (saves, out) = self.saving_forward(gpu, x, t, oh.as_ref())?;
            return Ok(UnetTape { unet: self, x_shape: x.shape().to_vec(), out, kept: Kept::Recorded(saves) });
        };
        let g = &lease.0;
        gpu.copy_tensor(x, &g.x)?;
        gpu.copy_tensor(t, &g.t)?;
        if let (Some(oh), Some((data, _))) = (&g.onehot, &onehot) {
            gpu.write(oh, data)?;
        }
        gpu.replay(&g.forward)?;
        let out = gpu.empty(OP, g.out.shape())?;
        gpu.copy_tensor(&g.out, &out)?;
        Ok(UnetTape { unet: self, x_shape: x.shape().to_vec(), out, kept: Kept::Captured(lease) })
    }

    /// The network output and a vector-Jacobian product at one input: (raw output [N, out_channels, H, W]
    /// as [`Unet::forward`] gives it, (∂ε/∂x)ᵀ v [N, C, H, W]) for `v` [N, C, H, W] (see [`UnetTape::vjp`]).
    pub fn vjp(&self, gpu: &Gpu, x: &Tensor, t: &Tensor, y: Option<&[usize]>, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let tape = self.tape(gpu, x, t, y)?;
        let g = tape.vjp(gpu, v)?;
        Ok((tape.out, g))
    }

    /// Captured tapes so far: per input shape, the dispatches of the saving forward and of the backward,
    /// and the GPU bytes they hold.
    pub fn tape_graph_stats(&self) -> Vec<(Vec<usize>, usize, usize, u64)> {
        self.tape_graphs.lock().map(|g| g.iter().map(|t| t.stats()).collect()).unwrap_or_default()
    }

    /// Makes every convolution's adjoint weights before a capture (a capture would only record them; outside
    /// one, each is made on its first input gradient).
    fn transpose_conv_weights(&self, gpu: &Gpu) -> Result<()> {
        self.out_conv.transposed(gpu)?;
        for b in self.down.iter().chain(&self.up).flatten().chain(&self.mid) {
            b.each_conv(&mut |c| c.transposed(gpu).map(|_| ()))?;
        }
        Ok(())
    }

    /// The free captured tape for `shape` (captured now if there is none for it), or None while every
    /// tape of that shape is held.
    fn lease_tape_graph(&self, gpu: &Gpu, shape: &[usize], classes: Option<usize>) -> Result<Option<Lease>> {
        let mut graphs = self.tape_graphs.lock().map_err(|_| Error::Gpu("tape graph cache poisoned".into()))?;
        let fits = |g: &TapeGraph| g.x.shape() == shape && g.onehot.as_ref().map(|o| o.shape()[1]) == classes;
        if graphs.iter().any(|g| fits(g)) {
            let free = graphs.iter().find(|g| fits(g) && g.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok());
            return Ok(free.map(|g| Lease(g.clone())));
        }
        let g = Arc::new(self.capture_tape(gpu, shape, classes)?);
        g.busy.store(true, Ordering::Release);
        if graphs.len() >= MAX_TAPE_GRAPHS {
            graphs.remove(0);
        }
        graphs.push(g.clone());
        Ok(Some(Lease(g)))
    }

    /// Captures the saving forward and the backward for inputs of `shape` (and one-hot labels of `classes`).
    fn capture_tape(&self, gpu: &Gpu, shape: &[usize], classes: Option<usize>) -> Result<TapeGraph> {
        let n = shape[0];
        self.transpose_conv_weights(gpu)?;
        let ((x, t, onehot, saves, out), forward) = gpu.capture(|| {
            let x = gpu.empty(OP, shape)?;
            let t = gpu.empty(OP, &[n])?;
            let onehot = classes.map(|c| gpu.empty(OP, &[n, c])).transpose()?;
            let (saves, out) = self.saving_forward(gpu, &x, &t, onehot.as_ref())?;
            Ok((x, t, onehot, saves, out))
        })?;
        let oc = out.shape()[1];
        let ((v, grad), backward) = gpu.capture(|| {
            let v = gpu.empty(OP, shape)?;
            let grad = saves.backward(self, gpu, shape, oc, &v)?;
            Ok((v, grad))
        })?;
        Ok(TapeGraph { forward, backward, x, t, onehot, v, out, grad, busy: AtomicBool::new(false) })
    }

    /// The forward, keeping every block's [`Saved`]: what it keeps and the raw output.
    fn saving_forward(&self, gpu: &Gpu, x: &Tensor, t: &Tensor, onehot: Option<&Tensor>) -> Result<(Saves, Tensor)> {
        let emb_all = self.embedding(gpu, t, onehot)?;
        let emb = EmbOut { t: &emb_all, total: self.emb_total };
        let mut h = if self.center_input { ops::affine(gpu, x, 2.0, -1.0)? } else { x.clone() };
        let mut down = Vec::with_capacity(self.down.len());
        let mut skips = Vec::with_capacity(self.down.len());
        for entry in &self.down {
            let mut saved = Vec::with_capacity(entry.len());
            for b in entry {
                let (out, s) = b.run_saving(gpu, &h, emb)?;
                saved.push(s);
                h = out;
            }
            down.push(saved);
            skips.push(h.clone());
        }
        let mut mid = Vec::with_capacity(self.mid.len());
        for b in &self.mid {
            let (out, s) = b.run_saving(gpu, &h, emb)?;
            mid.push(s);
            h = out;
        }
        let mut up = Vec::with_capacity(self.up.len());
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
            up.push((before, saved));
        }
        let out = self.out_conv.run(gpu, &self.out_norm.run(gpu, &h, None, true)?)?;
        Ok((Saves { emb_all, down, mid, up, pre_out: h }, out))
    }
}

impl Saves {
    /// (∂ε/∂x)ᵀ v for inputs of `x_shape` and a network of `oc` output channels.
    fn backward(&self, unet: &Unet, gpu: &Gpu, x_shape: &[usize], oc: usize, v: &Tensor) -> Result<Tensor> {
        let emb = EmbOut { t: &self.emb_all, total: unet.emb_total };
        let (n, c) = (x_shape[0], x_shape[1]);
        // v on the ε channels, zero on learned-sigma ones (a kernel fill: a clear cannot be captured).
        let dout = if oc > c { ops::concat_channels(gpu, v, &ops::fill(gpu, &[n, oc - c, x_shape[2], x_shape[3]], 0.0)?)? } else { v.clone() };
        let g = unet.out_conv.input_grad(gpu, &dout, hw(&self.pre_out), 1.0, None)?;
        let mut g = unet.out_norm.backward(gpu, &self.pre_out, &g, None, true, None)?;
        // Up path in reverse; each entry's concatenation splits the gradient into its two inputs: the first
        // `before` channels go on, the rest (kept with their offset) join the skip's gradient further down.
        let mut skip_grads: Vec<(Tensor, usize)> = Vec::with_capacity(unet.up.len());
        for (entry, (before, saved)) in unet.up.iter().zip(&self.up).rev() {
            for (b, s) in entry.iter().zip(saved).rev() {
                g = b.backward(gpu, s, emb, &g)?;
            }
            let rest = ops::slice_channels(gpu, &g, 0, *before)?;
            skip_grads.push((std::mem::replace(&mut g, rest), *before));
        }
        for (b, s) in unet.mid.iter().zip(&self.mid).rev() {
            g = b.backward(gpu, s, emb, &g)?;
        }
        // skip_grads[j] belongs to down entry j (the last up entry used the first skip).
        for (j, (entry, saved)) in unet.down.iter().zip(&self.down).enumerate().rev() {
            let (full, offset) = skip_grads.get(j).ok_or(Error::Invalid { op: OP, msg: "fewer skips than down entries".into() })?;
            g = ops::add_channel_slice(gpu, full, *offset, &g)?;
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

impl UnetTape<'_> {
    /// The raw network output [N, out_channels, H, W] (learned-sigma channels included).
    pub fn output(&self) -> &Tensor {
        &self.out
    }

    /// (∂ε/∂x)ᵀ v [N, C, H, W] for `v` [N, C, H, W] (C = the input channels), where ε is the output's first C
    /// channels (learned-sigma channels get no weight); t and labels are held fixed.
    pub fn vjp(&self, gpu: &Gpu, v: &Tensor) -> Result<Tensor> {
        if v.shape() != self.x_shape.as_slice() {
            return Err(Error::Shape { op: OP, msg: format!("v {:?} must have the input's shape {:?}", v.shape(), self.x_shape) });
        }
        match &self.kept {
            Kept::Recorded(saves) => saves.backward(self.unet, gpu, &self.x_shape, self.out.shape()[1], v),
            Kept::Captured(lease) => {
                let g = &lease.0;
                gpu.copy_tensor(v, &g.v)?;
                gpu.replay(&g.backward)?;
                let grad = gpu.empty(OP, &self.x_shape)?;
                gpu.copy_tensor(&g.grad, &grad)?;
                Ok(grad)
            }
        }
    }
}
