//! Nearest 2× upsampling, 2×2 average pooling and 2× zero insertion (`wgsl/resample.wgsl`).

use super::{dims, per_element};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Params, Tensor};
use crate::shaders::RESAMPLE;

fn run(gpu: &Gpu, op: &'static str, x: &Tensor, out_hw: (usize, usize)) -> Result<Tensor> {
    let [n, c, h, w] = dims::<4>(op, "input", x)?;
    let out = gpu.empty(op, &[n, c, out_hw.0, out_hw.1])?;
    let (kernel, groups) = per_element(gpu, &RESAMPLE, op, out.numel());
    gpu.launch(op, &kernel, &Params::new().n(out.numel()).n(h).n(w), &[(x, Access::Read), (&out, Access::ReadWrite)], groups)?;
    Ok(out)
}

/// [N, C, H, W] → [N, C, 2H, 2W], each pixel repeated 2×2 (`F.interpolate(scale_factor=2, mode="nearest")`).
pub fn upsample_nearest2(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    let [_, _, h, w] = dims::<4>("upsample_nearest2", "input", x)?;
    run(gpu, "upsample_nearest2", x, (2 * h, 2 * w))
}

/// [N, C, H, W] → [N, C, H/2, W/2] (floor), the mean of each 2×2 block (`F.avg_pool2d(x, 2)`).
pub fn avg_pool2(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    let [_, _, h, w] = dims::<4>("avg_pool2", "input", x)?;
    if h < 2 || w < 2 {
        return Err(Error::Shape { op: "avg_pool2", msg: format!("input {:?} is smaller than 2x2", x.shape()) });
    }
    run(gpu, "avg_pool2", x, (h / 2, w / 2))
}

/// [N, C, H, W] → [N, C, 2H, 2W] with x at the even positions and zeros elsewhere (the adjoint of taking
/// every second pixel: the first step of a stride-2 convolution's input gradient).
pub fn zero_insert2(gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
    let [_, _, h, w] = dims::<4>("zero_insert2", "input", x)?;
    run(gpu, "zero_insert2", x, (2 * h, 2 * w))
}
