//! Counter-based Gaussian noise (`wgsl/rng.wgsl`): Philox4x32-10 + Box–Muller.

use super::groups256;
use crate::error::Result;
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::RNG;

/// A new tensor of `shape` filled with N(mean, std²) samples. Element i is a pure function of
/// (`seed`, `offset`, i): the same arguments give the same numbers on every backend. Use a different
/// `offset` (e.g. the iteration number) for each fresh draw with one seed.
pub fn normal(gpu: &Gpu, shape: &[usize], seed: u64, offset: u64, mean: f32, std: f32) -> Result<Tensor> {
    let out = gpu.empty("normal", shape)?;
    let n = out.numel();
    let params = Params::new()
        .n(n)
        .u(seed as u32)
        .u((seed >> 32) as u32)
        .u(offset as u32)
        .u((offset >> 32) as u32)
        .f(mean)
        .f(std);
    gpu.launch("normal", &Kernel::new(&RNG, "normal"), &params, &[(&out, Access::ReadWrite)], groups256(n.div_ceil(4)))?;
    Ok(out)
}
