//! Counter-based Gaussian noise (`wgsl/rng.wgsl`): Philox4x32-10 + Box–Muller.

use super::groups256;
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::RNG;

/// The kernels' parameter block: n, seed, offset, mean, std, and `per` (elements per image, read by
/// `normal_keyed` only).
fn params(n: usize, seed: u64, offset: u64, mean: f32, std: f32, per: usize) -> Params {
    Params::new().n(n).u(seed as u32).u((seed >> 32) as u32).u(offset as u32).u((offset >> 32) as u32).f(mean).f(std).n(per)
}

/// A new tensor of `shape` filled with N(mean, std²) samples. Element i is a pure function of
/// (`seed`, `offset`, i): the same arguments give the same numbers on every backend. Use a different
/// `offset` (e.g. the iteration number) for each fresh draw with one seed.
pub fn normal(gpu: &Gpu, shape: &[usize], seed: u64, offset: u64, mean: f32, std: f32) -> Result<Tensor> {
    let out = gpu.empty("normal", shape)?;
    let n = out.numel();
    let params = params(n, seed, offset, mean, std, 0);
    gpu.launch("normal", &Kernel::new(&RNG, "normal"), &params, &[(&out, Access::ReadWrite)], groups256(n.div_ceil(4)))?;
    Ok(out)
}

/// Per-image keyed noise for a batch: a new tensor of `shape` = [N, ...] with N(mean, std²) samples, where
/// element j of image i is a pure function of (`seed`, `keys[i]`, `offset`, j). An image's noise thus does
/// not depend on where it sits in a batch, or on which other images share it. `keys`: N u32 values (see
/// [`Gpu::upload_u32`]), e.g. a hash of each image's name.
pub fn normal_keyed(gpu: &Gpu, shape: &[usize], seed: u64, keys: &Tensor, offset: u64, mean: f32, std: f32) -> Result<Tensor> {
    let n_img = shape.first().copied().unwrap_or(0);
    if keys.numel() != n_img {
        return Err(Error::Shape { op: "normal_keyed", msg: format!("{} keys for a batch of {n_img}", keys.numel()) });
    }
    let out = gpu.empty("normal_keyed", shape)?;
    let n = out.numel();
    let per = n / n_img;
    let params = params(n, seed, offset, mean, std, per);
    let groups = groups256(n_img * per.div_ceil(4));
    gpu.launch("normal_keyed", &Kernel::new(&RNG, "normal_keyed"), &params, &[(&out, Access::ReadWrite), (keys, Access::Read)], groups)?;
    Ok(out)
}

/// A 32-bit key for an image from its name (FNV-1a), for [`normal_keyed`].
pub fn image_key(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}
