//! The UNet: time embedding, a down path whose every entry leaves a skip tensor, a middle, and an up path
//! whose every entry first concatenates the latest skip. Both layouts (ADM, diffusers) build into this.

use super::backward::TapeGraph;
use super::blocks::{Block, Conv, EmbOut, EmbProj, Linear, Norm};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Graph, Tensor};
use crate::ops;

/// Which checkpoint family a model directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    /// openai guided-diffusion `UNetModel` (config.json with `create_model` names + model.safetensors).
    Adm,
    /// diffusers `UNet2DModel` (config.json + diffusion_pytorch_model.safetensors).
    Diffusers,
}

/// What a loaded model is: shapes, sizes and a one-line architecture summary.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// Checkpoint family.
    pub format: ModelFormat,
    /// Square image size the model was trained at (pixels).
    pub image_size: usize,
    /// Input channels (3 for RGB).
    pub in_channels: usize,
    /// Output channels of the raw network (6 with learned sigma).
    pub out_channels: usize,
    /// Number of class labels for class-conditional models.
    pub num_classes: Option<usize>,
    /// Parameter count.
    pub params: usize,
    /// Storage dtypes of the weight file, e.g. ["F16"].
    pub weight_dtypes: Vec<String>,
    /// Largest intermediate per image, elements (drives batch splitting).
    pub max_activation: usize,
    /// Human-readable architecture summary.
    pub summary: String,
}

impl ModelInfo {
    /// Rough GPU memory for a forward pass of `batch` images: f32 weights plus the live activations
    /// (skip tensors and a few working tensors of the largest size), bytes.
    pub fn estimated_bytes(&self, batch: usize) -> u64 {
        let skips: usize = self.max_activation * 6;
        4 * (self.params + batch * skips) as u64
    }
}

impl std::fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "format:        {:?}", self.format)?;
        writeln!(f, "image:         {0}x{0}, {1} -> {2} channels", self.image_size, self.in_channels, self.out_channels)?;
        if let Some(c) = self.num_classes {
            writeln!(f, "classes:       {c}")?;
        }
        writeln!(f, "parameters:    {} ({:.2}M)", self.params, self.params as f64 / 1e6)?;
        writeln!(f, "weight dtype:  {}", self.weight_dtypes.join(", "))?;
        writeln!(f, "GPU memory:    ~{:.0} MiB for batch 1 (f32)", self.estimated_bytes(1) as f64 / 1048576.0)?;
        write!(f, "architecture:  {}", self.summary)
    }
}

/// Graphs kept per model (one per input shape); the oldest is dropped beyond this.
const MAX_GRAPHS: usize = 4;

/// A captured forward for one input shape, with its input and output tensors.
pub(crate) struct ForwardGraph {
    graph: Graph,
    x: Tensor,
    t: Tensor,
    onehot: Option<Tensor>,
    out: Tensor,
}

/// A UNet noise predictor ε_θ(x_t, t[, y]) on the GPU. The first forward for an input shape captures the
/// network's dispatches into a [`Graph`]; later forwards of that shape replay it.
pub struct Unet {
    pub(crate) info: ModelInfo,
    pub(crate) freqs: Tensor,
    pub(crate) emb_dim: usize,
    pub(crate) flip_sin_to_cos: bool,
    pub(crate) time1: Linear,
    pub(crate) time2: Linear,
    /// Every ResBlock's time-embedding projection, stacked: [Σ out, E] (in parts where that passes one
    /// storage binding).
    pub(crate) emb_proj: EmbProj,
    /// Σ out of `emb_proj`.
    pub(crate) emb_total: usize,
    /// Label embedding table [classes, E] kept on the CPU rows are gathered per call.
    pub(crate) label: Option<(Tensor, usize)>,
    pub(crate) center_input: bool,
    pub(crate) down: Vec<Vec<Block>>,
    pub(crate) mid: Vec<Block>,
    pub(crate) up: Vec<Vec<Block>>,
    pub(crate) out_norm: Norm,
    pub(crate) out_conv: Conv,
    /// Captured forwards by input shape.
    pub(crate) graphs: std::sync::Mutex<Vec<ForwardGraph>>,
    /// Captured saving forwards and backwards (vector-Jacobian products) by input shape.
    pub(crate) tape_graphs: std::sync::Mutex<Vec<std::sync::Arc<TapeGraph>>>,
}

impl Unet {
    /// Shapes and sizes.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Raw network output for `x` [N, C, H, W] in [-1, 1] scale, timesteps `t` `[N]` (as f32) and, for
    /// class-conditional models, labels `y` (N values). Returns [N, out_channels, H, W], learned-sigma
    /// channels included. Batches whose activations would exceed the adapter's storage-binding limit are
    /// split into chunks automatically.
    pub fn forward(&self, gpu: &Gpu, x: &Tensor, t: &Tensor, y: Option<&[usize]>) -> Result<Tensor> {
        const OP: &str = "unet";
        let s = x.shape();
        self.check_inputs(x, t, y)?;
        let n = s[0];
        // Activations scale with H·W relative to the training size.
        let per_image = self.info.max_activation * (s[2] * s[3]) / (self.info.image_size * self.info.image_size).max(1);
        let max_elems = (gpu.max_binding_bytes() / 4) as usize;
        let chunk = (max_elems / per_image.max(1)).clamp(1, n);
        if per_image > max_elems {
            return Err(Error::TooLarge {
                op: OP,
                what: "one image's largest activation (a storage binding)",
                bytes: 4 * per_image as u64,
                limit: gpu.max_binding_bytes(),
                shape: s.to_vec(),
            });
        }
        if chunk >= n {
            return self.forward_batch(gpu, x, t, y);
        }
        let img = s[1] * s[2] * s[3];
        let mut out: Option<Tensor> = None;
        let mut start = 0;
        while start < n {
            let len = chunk.min(n - start);
            let xs = ops::copy_range(gpu, x, start * img, &[len, s[1], s[2], s[3]])?;
            let ts = ops::copy_range(gpu, t, start, &[len])?;
            let e = self.forward_batch(gpu, &xs, &ts, y.map(|y| &y[start..start + len]))?;
            let dst = match &out {
                Some(o) => o.clone(),
                None => {
                    let es = e.shape();
                    let o = gpu.empty(OP, &[n, es[1], es[2], es[3]])?;
                    out = Some(o.clone());
                    o
                }
            };
            ops::copy_into(gpu, &dst, start * e.numel() / len, &e)?;
            start += len;
            gpu.flush()?;
        }
        out.ok_or(Error::Empty { op: OP, shape: s.to_vec() })
    }

    /// One chunk through the captured graph for its shape (captured on first use): the inputs are copied
    /// into the graph's input tensors, the graph is replayed, and the output is copied to a new tensor.
    fn forward_batch(&self, gpu: &Gpu, x: &Tensor, t: &Tensor, y: Option<&[usize]>) -> Result<Tensor> {
        let n = x.shape()[0];
        let onehot = self.onehot_rows(y);
        let mut graphs = self.graphs.lock().map_err(|_| Error::Gpu("graph cache poisoned".into()))?;
        let pos = match graphs.iter().position(|g| g.x.shape() == x.shape() && g.onehot.is_some() == onehot.is_some()) {
            Some(p) => p,
            None => {
                let ((xin, tin, ohin, out), graph) = gpu.capture(|| {
                    let xin = gpu.empty("unet", x.shape())?;
                    let tin = gpu.empty("unet", &[n])?;
                    let ohin = match &onehot {
                        Some((_, classes)) => Some(gpu.empty("unet", &[n, *classes])?),
                        None => None,
                    };
                    let out = self.forward_core(gpu, &xin, &tin, ohin.as_ref())?;
                    Ok((xin, tin, ohin, out))
                })?;
                if graphs.len() >= MAX_GRAPHS {
                    graphs.remove(0);
                }
                graphs.push(ForwardGraph { graph, x: xin, t: tin, onehot: ohin, out });
                graphs.len() - 1
            }
        };
        let fg = &graphs[pos];
        gpu.copy_tensor(x, &fg.x)?;
        gpu.copy_tensor(t, &fg.t)?;
        if let (Some(oh), Some((data, _))) = (&fg.onehot, &onehot) {
            gpu.write(oh, data)?;
        }
        gpu.replay(&fg.graph)?;
        let res = gpu.empty("unet", fg.out.shape())?;
        gpu.copy_tensor(&fg.out, &res)?;
        Ok(res)
    }

    /// Checks an input batch `x` [N, C, H, W], timesteps `t` [N] and labels against the model.
    pub(crate) fn check_inputs(&self, x: &Tensor, t: &Tensor, y: Option<&[usize]>) -> Result<()> {
        const OP: &str = "unet";
        let s = x.shape();
        if s.len() != 4 || s[1] != self.info.in_channels {
            return Err(Error::Shape { op: OP, msg: format!("input {:?} should be [N, {}, H, W]", s, self.info.in_channels) });
        }
        let n = s[0];
        let levels = self.down.iter().filter(|e| e.iter().any(|b| matches!(b, Block::Down(_)) || is_down_res(b))).count();
        let unit = 1usize << levels;
        if s[2] % unit != 0 || s[3] % unit != 0 {
            return Err(Error::Shape { op: OP, msg: format!("height and width {}x{} must be multiples of {unit}", s[2], s[3]) });
        }
        if t.shape() != [n] {
            return Err(Error::Shape { op: OP, msg: format!("timesteps {:?} should be [{n}]", t.shape()) });
        }
        match (&self.label, y) {
            (Some(_), None) => Err(Error::Invalid { op: OP, msg: "this model is class-conditional: give class labels".into() }),
            (None, Some(_)) => Err(Error::Invalid { op: OP, msg: "this model is not class-conditional: labels given".into() }),
            (Some((_, classes)), Some(y)) if y.len() != n || y.iter().any(|c| c >= classes) => {
                Err(Error::Invalid { op: OP, msg: format!("need {n} labels below {classes}, got {:?}", y) })
            }
            _ => Ok(()),
        }
    }

    /// One-hot rows [N, classes] of checked labels `y` for a class-conditional model (host values).
    pub(crate) fn onehot_rows(&self, y: Option<&[usize]>) -> Option<(Vec<f32>, usize)> {
        match (&self.label, y) {
            (Some((_, classes)), Some(y)) => {
                let mut v = vec![0f32; y.len() * classes];
                for (i, c) in y.iter().enumerate() {
                    v[i * classes + c] = 1.0;
                }
                Some((v, *classes))
            }
            _ => None,
        }
    }

    /// Dispatches per forward of the graphs captured so far (one entry per input shape), and the GPU
    /// memory they hold (bytes).
    pub fn graph_stats(&self) -> Vec<(Vec<usize>, usize, u64)> {
        self.graphs.lock().map(|g| g.iter().map(|f| (f.x.shape().to_vec(), f.graph.dispatches(), f.graph.bytes())).collect()).unwrap_or_default()
    }

    /// The network on one chunk (what a graph captures); `onehot` [N, classes] for class-conditional models.
    pub(crate) fn forward_core(&self, gpu: &Gpu, x: &Tensor, t: &Tensor, onehot: Option<&Tensor>) -> Result<Tensor> {
        let emb_all = self.embedding(gpu, t, onehot)?;
        let emb = EmbOut { t: &emb_all, total: self.emb_total };
        let mut h = if self.center_input { ops::affine(gpu, x, 2.0, -1.0)? } else { x.clone() };
        let mut skips = Vec::with_capacity(self.down.len());
        for entry in &self.down {
            for b in entry {
                h = b.run(gpu, &h, emb)?;
            }
            skips.push(h.clone());
        }
        for b in &self.mid {
            h = b.run(gpu, &h, emb)?;
        }
        for entry in &self.up {
            let skip = skips.pop().ok_or(Error::Invalid { op: "unet", msg: "more up blocks than skips".into() })?;
            h = ops::concat_channels(gpu, &h, &skip)?;
            for b in entry {
                h = b.run(gpu, &h, emb)?;
            }
        }
        let h = self.out_norm.run(gpu, &h, None, true)?;
        self.out_conv.run(gpu, &h)
    }

    /// Every ResBlock's time-embedding projection for timesteps `t` [N] (and one-hot labels), stacked:
    /// [N, Σ out] (see [`EmbOut`]).
    pub(crate) fn embedding(&self, gpu: &Gpu, t: &Tensor, onehot: Option<&Tensor>) -> Result<Tensor> {
        let n = t.shape()[0];
        let temb = ops::timestep_embedding(gpu, t, &self.freqs, self.emb_dim, self.flip_sin_to_cos)?;
        let e = self.time1.run(gpu, &temb)?;
        let e = self.time2.run(gpu, &ops::silu(gpu, &e)?)?;
        let e = match (&self.label, onehot) {
            (Some((table, classes)), Some(oh)) => {
                let dim = table.shape()[1];
                let d =
                    ops::Matmul { batch: 1, m: n, n: dim, k: *classes, a: ops::MatView::rows(n, *classes), b: ops::MatView::rows(*classes, dim), alpha: 1.0 };
                let lab = ops::matmul(gpu, oh, table, ops::Bias::None, &d, None)?.reshape(&[n, dim])?;
                ops::add(gpu, &e, &lab)?
            }
            _ => e,
        };
        let emb_silu = ops::silu(gpu, &e)?;
        self.emb_proj.run(gpu, &emb_silu)
    }
}

fn is_down_res(b: &Block) -> bool {
    matches!(b, Block::Res(r) if r.resample == super::blocks::Resample::Down)
}
