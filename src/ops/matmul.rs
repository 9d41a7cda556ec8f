//! Batched strided matrix products (`wgsl/matmul.wgsl`, `wgsl/matmul_sg.wgsl`) and `linear`.

use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, KernelProfile, Params, Tensor};
use crate::shaders::{MATMUL, MATMUL_SG};

/// Where matrix element (b, i, j) of an operand lives in its tensor (element offsets):
/// `offset + (b / inner) * batch_hi + (b % inner) * batch_lo + i * row + j * col`.
/// A plain batch has `inner = 1` and `batch_hi` = the matrix stride; head-interleaved attention layouts
/// use `inner = heads`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatView {
    /// First element.
    pub offset: usize,
    /// Batch elements per outer batch index (>= 1).
    pub inner: usize,
    /// Stride of the outer batch index `b / inner`.
    pub batch_hi: usize,
    /// Stride of the inner batch index `b % inner`.
    pub batch_lo: usize,
    /// Stride between rows.
    pub row: usize,
    /// Stride between columns.
    pub col: usize,
}

impl MatView {
    /// A contiguous row-major [batch, rows, cols] operand.
    pub fn rows(rows: usize, cols: usize) -> MatView {
        MatView { offset: 0, inner: 1, batch_hi: rows * cols, batch_lo: 0, row: cols, col: 1 }
    }
    /// The transpose of a contiguous row-major [batch, cols, rows] operand, seen as [batch, rows, cols].
    pub fn transposed(rows: usize, cols: usize) -> MatView {
        MatView { offset: 0, inner: 1, batch_hi: rows * cols, batch_lo: 0, row: 1, col: rows }
    }
    /// The same matrix for every batch element.
    pub fn shared(mut self) -> MatView {
        self.batch_hi = 0;
        self.batch_lo = 0;
        self
    }
    pub(crate) fn max_index(&self, batch: usize, rows: usize, cols: usize) -> usize {
        let inner = self.inner;
        // Strides are non-negative, so the largest index is at the last batch element or at the last inner
        // element of the previous outer index.
        let at = |b: usize| (b / inner) * self.batch_hi + (b % inner) * self.batch_lo;
        let last = batch - 1;
        let prev = (last / inner * inner).checked_sub(1).map(at).unwrap_or(0);
        self.offset + at(last).max(prev) + (rows - 1) * self.row + (cols - 1) * self.col
    }
}

/// Bias added after the product.
#[derive(Clone, Copy, Debug)]
pub enum Bias<'a> {
    /// No bias.
    None,
    /// `bias[i]`, one per output row (length M).
    Row(&'a Tensor),
    /// `bias[j]`, one per output column (length N).
    Col(&'a Tensor),
}

/// out[b, i, j] = alpha * Σ_k A[b, i, k] · B[b, k, j] + bias, for b < batch, i < m, j < n, k < k.
/// `out` is a new contiguous [batch, m, n] tensor.
#[derive(Clone, Copy, Debug)]
pub struct Matmul {
    /// Number of matrices.
    pub batch: usize,
    /// Rows of A and out.
    pub m: usize,
    /// Columns of B and out.
    pub n: usize,
    /// Shared dimension.
    pub k: usize,
    /// Layout of A [m, k].
    pub a: MatView,
    /// Layout of B [k, n].
    pub b: MatView,
    /// Output scale.
    pub alpha: f32,
}

/// Which matrix-product kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulKernel {
    /// One invocation per output column computing all rows (M <= 8: linear layers on a few vectors).
    Rows,
    /// 8 rows x 4 columns per invocation, no workgroup memory (CPU adapters).
    RegisterBlocked,
    /// As `RegisterBlocked`, with each A value loaded by one lane and broadcast over the subgroup (CPU
    /// adapters with subgroups of at least 8 lanes, see [`Gpu::shared_weights`]).
    SharedA,
    /// 64x64 tiles through workgroup memory (GPUs).
    Tiled,
}

/// Runs `desc` on `a` and `b` (the tensors holding the operands described by the views). The kernel
/// variant follows [`Gpu::profile`] (products with at most 8 rows use a row-vector kernel; CPU adapters
/// with subgroups share A over them); `force` picks the register-blocked (subgroup-shared where
/// [`Gpu::shared_weights`]) or tiled family explicitly (tests and benchmarks compare them).
pub fn matmul(gpu: &Gpu, a: &Tensor, b: &Tensor, bias: Bias, desc: &Matmul, force: Option<KernelProfile>) -> Result<Tensor> {
    let kernel = match force.unwrap_or(gpu.profile()) {
        _ if desc.m <= 8 && force.is_none() => MatmulKernel::Rows,
        KernelProfile::RegisterBlocked if gpu.shared_weights() => MatmulKernel::SharedA,
        KernelProfile::RegisterBlocked => MatmulKernel::RegisterBlocked,
        KernelProfile::Tiled => MatmulKernel::Tiled,
    };
    matmul_with(gpu, a, b, bias, desc, kernel)
}

/// [`matmul`] with the kernel chosen by the caller. [`MatmulKernel::SharedA`] is an error where
/// [`Gpu::shared_weights`] is false.
pub fn matmul_with(gpu: &Gpu, a: &Tensor, b: &Tensor, bias: Bias, desc: &Matmul, kernel: MatmulKernel) -> Result<Tensor> {
    const OP: &str = "matmul";
    if kernel == MatmulKernel::SharedA && !gpu.shared_weights() {
        return Err(Error::Invalid {
            op: OP,
            msg: "the subgroup-shared kernel needs subgroups of at least 8 lanes on a native adapter (and REDDIFF_SUBGROUPS not 0)".into(),
        });
    }
    if kernel == MatmulKernel::Rows && desc.m > 8 {
        return Err(Error::Invalid { op: OP, msg: format!("the row-vector kernel takes at most 8 rows, got {}", desc.m) });
    }
    let d = desc;
    if d.batch == 0 || d.m == 0 || d.n == 0 || d.k == 0 {
        return Err(Error::Empty { op: OP, shape: vec![d.batch, d.m, d.n, d.k] });
    }
    for (name, t, v, r, c) in [("A", a, &d.a, d.m, d.k), ("B", b, &d.b, d.k, d.n)] {
        if v.inner == 0 {
            return Err(Error::Invalid { op: OP, msg: format!("{name} view has inner = 0") });
        }
        let need = v.max_index(d.batch, r, c);
        if need >= t.numel() {
            return Err(Error::Shape {
                op: OP,
                msg: format!("{name} view {:?} of a [{}, {r}, {c}] operand reaches element {need}, tensor {:?} has {}", v, d.batch, t.shape(), t.numel()),
            });
        }
    }
    let (mode, bt) = match bias {
        Bias::None => (0u32, a),
        Bias::Row(t) => (1, t),
        Bias::Col(t) => (2, t),
    };
    let want = match bias {
        Bias::Row(_) => d.m,
        Bias::Col(_) => d.n,
        Bias::None => bt.numel(),
    };
    if bt.numel() != want {
        return Err(Error::Shape { op: OP, msg: format!("bias has {} elements, expected {want}", bt.numel()) });
    }
    let out = gpu.empty(OP, &[d.batch, d.m, d.n])?;
    let params = Params::new()
        .n(d.m)
        .n(d.n)
        .n(d.k)
        .n(d.batch)
        .n(d.a.inner)
        .n(d.a.offset)
        .n(d.a.batch_hi)
        .n(d.a.batch_lo)
        .n(d.a.row)
        .n(d.a.col)
        .n(d.b.inner)
        .n(d.b.offset)
        .n(d.b.batch_hi)
        .n(d.b.batch_lo)
        .n(d.b.row)
        .n(d.b.col)
        .u(mode)
        .f(d.alpha);
    let (shader, entry, groups) = match kernel {
        MatmulKernel::Rows => (&MATMUL, "matmul_rows", (d.batch * d.n).div_ceil(64)),
        MatmulKernel::RegisterBlocked => (&MATMUL, "matmul_rb", d.batch * d.m.div_ceil(64) * d.n.div_ceil(32)),
        MatmulKernel::SharedA => (&MATMUL_SG, "matmul_sg", d.batch * d.m.div_ceil(8) * d.n.div_ceil(256)),
        MatmulKernel::Tiled => (&MATMUL, "matmul_tiled", d.batch * d.m.div_ceil(64) * d.n.div_ceil(64)),
    };
    let mut launch = Kernel::new(shader, entry);
    // Vec4 views of A and B (bindings 5, 6) for the layouts where a lane's elements are four adjacent,
    // aligned floats: a view whose stride along one axis is 1 and whose other stride and offsets are
    // multiples of 4.
    let aligned = |v: &MatView, unit: usize, other: usize| unit == 1 && [v.offset, v.batch_hi, v.batch_lo, other].iter().all(|x| x % 4 == 0);
    let vec4_k = d.k % 4 == 0 && aligned(&d.a, d.a.col, d.a.row) && aligned(&d.b, d.b.row, d.b.col);
    let all_args = [
        (a, Access::Read),
        (b, Access::Read),
        (bt, Access::Read),
        (&out, Access::ReadWrite),
        (gpu.vec4_view(a), Access::Read),
        (gpu.vec4_view(b), Access::Read),
    ];
    let mut args = &all_args[..4];
    if kernel == MatmulKernel::Rows || kernel == MatmulKernel::SharedA {
        args = &all_args[..];
        launch = launch.with("VEC4_K", vec4_k as u32 as f64);
    }
    if kernel == MatmulKernel::Rows {
        // Rows fixed per pipeline, so the row loops unroll.
        launch = launch.with("M_ROWS", d.m as f64);
    }
    if kernel == MatmulKernel::SharedA {
        let vec4_n = !vec4_k && d.n % 4 == 0 && aligned(&d.b, d.b.col, d.b.row);
        launch = launch.with("VEC4_N", vec4_n as u32 as f64);
    }
    gpu.launch(OP, &launch, &params, args, groups as u64)?;
    Ok(out)
}

/// `x` [..., in] · `w`ᵀ + `b`, with `w` [out, in] and `b` `[out]` (torch.nn.Linear). Returns [..., out].
pub fn linear(gpu: &Gpu, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let xs = x.shape();
    let ws = w.shape();
    if ws.len() != 2 || xs.is_empty() || xs[xs.len() - 1] != ws[1] {
        return Err(Error::Shape { op: "linear", msg: format!("input {:?} does not fit weight {:?} ([out, in])", xs, ws) });
    }
    let (k, n) = (ws[1], ws[0]);
    let m = x.numel() / k;
    let desc = Matmul { batch: 1, m, n, k, a: MatView::rows(m, k), b: MatView::transposed(k, n), alpha: 1.0 };
    let bias = match b {
        Some(t) => Bias::Col(t),
        None => Bias::None,
    };
    let out = matmul(gpu, x, w, bias, &desc, None)?;
    let mut shape = xs.to_vec();
    let last = shape.len() - 1;
    shape[last] = n;
    out.reshape(&shape)
}
