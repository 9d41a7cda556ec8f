//! Nearest 2× upsampling, 2×2 average pooling, their adjoints, and 2× zero insertion (`wgsl/resample.wgsl`).

use super::{dims, per_element};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Params, Tensor};
use crate::shaders::RESAMPLE;

fn run(gpu: &Gpu, op: &'static str, entry: &'static str, x: &Tensor, out_hw: (usize, usize), scale: f32) -> Result<Tensor> {
    let [n, c, h, w] = dims::<4>(op, "input", x)?;
    let out = gpu.empty(op, &[n, c, out_hw.0, out_hw.1])?;
    let (kernel, groups) = per_element(gpu, &RESAMPLE, entry, out.numel());
    gpu.launch(op, &kernel, &Params::new().n(out.numel()).n(h).n(w).f(scale), &[(x, Access::Read), (&out, Access::ReadWrite)], groups)?;
    Ok(out)
}

/// [N, C, H, W] → [N, C, 2H, 2W], each pixel repeated 2×2 (`F.interpolate(scale_factor=2, mode="nearest")`).
pub fn upsample_nearest2(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    let [_, _, h, w] = dims::<4>("upsample_nearest2", "input", x)?;
    run(gpu, "upsample_nearest2", "upsample_nearest2", x, (2 * h, 2 * w), 1.0)
}

/// The adjoint of [`avg_pool2`] on an even-sized input: [N, C, H, W] → [N, C, 2H, 2W], each value spread
/// over its 2×2 block and divided by 4 (one pass).
pub fn avg_pool2_adjoint(gpu: &Gpu, d: &Tensor) -> Result<Tensor> {
    let [_, _, h, w] = dims::<4>("avg_pool2_adjoint", "gradient", d)?;
    run(gpu, "avg_pool2_adjoint", "upsample_nearest2", d, (2 * h, 2 * w), 0.25)
}

fn pool_input(op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
    let [_, _, h, w] = dims::<4>(op, "input", x)?;
    if h < 2 || w < 2 {
        return Err(Error::Shape { op, msg: format!("input {:?} is smaller than 2x2", x.shape()) });
    }
    Ok((h / 2, w / 2))
}

/// [N, C, H, W] → [N, C, H/2, W/2] (floor), the mean of each 2×2 block (`F.avg_pool2d(x, 2)`).
pub fn avg_pool2(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    run(gpu, "avg_pool2", "pool2", x, pool_input("avg_pool2", x)?, 0.25)
}

/// The adjoint of [`upsample_nearest2`]: [N, C, 2H, 2W] → [N, C, H, W], the sum of each 2×2 block (one pass).
pub fn upsample_nearest2_adjoint(gpu: &Gpu, d: &Tensor) -> Result<Tensor> {
    run(gpu, "upsample_nearest2_adjoint", "pool2", d, pool_input("upsample_nearest2_adjoint", d)?, 1.0)
}

/// [N, C, H, W] → [N, C, 2H, 2W] with x at the even positions and zeros elsewhere (the adjoint of taking
/// every second pixel: the first step of a stride-2 convolution's input gradient).
pub fn zero_insert2(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    let [_, _, h, w] = dims::<4>("zero_insert2", "input", x)?;
    run(gpu, "zero_insert2", "zero_insert2", x, (2 * h, 2 * w), 1.0)
}
