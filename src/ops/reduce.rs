//! Reductions (`wgsl/reduce.wgsl`): sum, sum of squares, max |x| and the count of non-finite values, in one
//! pass. The result stays on the GPU as a [4] tensor until read, so loops can check for NaN every few steps.

use crate::error::Result;
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::REDUCE;

/// Summary of a tensor, over its finite elements.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Number of elements (finite or not).
    pub n: usize,
    /// Sum of finite elements.
    pub sum: f32,
    /// Sum of squares of finite elements.
    pub sum_sq: f32,
    /// Largest |x| among finite elements.
    pub max_abs: f32,
    /// Count of NaN and ±Inf elements.
    pub nonfinite: usize,
}

impl Stats {
    /// Mean of the finite elements.
    pub fn mean(&self) -> f32 {
        self.sum / (self.n - self.nonfinite).max(1) as f32
    }
    /// Mean of squares of the finite elements.
    pub fn mean_sq(&self) -> f32 {
        self.sum_sq / (self.n - self.nonfinite).max(1) as f32
    }
    /// Reads a `[4]` stats tensor produced by [`stats`] for a tensor of `n` elements (flushes; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(gpu: &Gpu, t: &Tensor, n: usize) -> Result<Stats> {
        Ok(Self::from_raw(&t.read(gpu)?, n))
    }
    /// Builds stats from the 4 values of a stats tensor.
    pub fn from_raw(v: &[f32], n: usize) -> Stats {
        let g = |i: usize| v.get(i).copied().unwrap_or(f32::NAN);
        Stats { n, sum: g(0), sum_sq: g(1), max_abs: g(2), nonfinite: g(3) as usize }
    }
}

/// Records the reduction of `x` into a new `[4]` tensor: [sum, sum of squares, max |x|, non-finite count].
pub fn stats(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    let n = x.numel();
    let groups = n.div_ceil(256).clamp(1, 1024);
    let partial = gpu.empty("stats", &[groups, 4])?;
    gpu.launch(
        "stats",
        &Kernel::new(&REDUCE, "stats_partial"),
        &Params::new().n(n).n(groups),
        &[(x, Access::Read), (&partial, Access::ReadWrite)],
        groups as u64,
    )?;
    let out = gpu.empty("stats", &[4])?;
    gpu.launch("stats", &Kernel::new(&REDUCE, "stats_final"), &Params::new().n(groups).n(1), &[(&partial, Access::Read), (&out, Access::ReadWrite)], 1)?;
    Ok(out)
}
