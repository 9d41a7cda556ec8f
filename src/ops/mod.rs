//! One thin Rust function per WGSL kernel family. Every op validates shapes first (returning
//! [`Error::Shape`] naming the op), allocates its output from the pool and records one or
//! more dispatches into the open command stream; nothing runs until [`Gpu::flush`](crate::Gpu::flush) or a
//! readback.

mod adam;
mod attention;
mod backward;
mod cg;
mod conv;
mod ddrm;
mod dps;
mod elementwise;
mod embedding;
mod fft;
mod matmul;
mod norm;
mod reduce;
mod resample;
mod rng;
mod tiles;
mod winograd;

pub use adam::{adam_step, AdamHyper};
pub use attention::{attention, attention_with, softmax_rows, AttentionKernel, FUSED_MAX_CH};
pub use backward::{attention_backward, conv2d_input_grad, group_norm_backward, softmax_rows_backward};
pub use cg::{conjugate_gradients, dot_rows};
pub use conv::{conv2d, conv2d_coop_with_shader, conv2d_packed, conv2d_with, pack_conv, transpose_conv_weights, ChannelTerm, Conv2d, ConvWeights, Epilogue};
pub use ddrm::{ddrm_step, DdrmCoefficients};
pub use dps::{dps_grad, dps_step, DpsStep};
pub use elementwise::{
    add, add_bcast, add_channel_slice, affine, axpby, clamp, concat3_channels, concat_channels, copy, copy_into, copy_range, fill, mul, mul_bcast, silu,
    slice_channels,
};
pub use embedding::{embedding_freqs, timestep_embedding};
pub use fft::{fft2, fft_pack_pairs, fft_spectrum_mul, fft_unpack_pairs, FftDirection};
pub use matmul::{linear, matmul, matmul_with, Bias, MatView, Matmul, MatmulKernel};
pub use norm::{group_norm, GroupNorm, ScaleShift};
pub use reduce::{stats, Stats};
pub use resample::{avg_pool2, avg_pool2_adjoint, upsample_nearest2, upsample_nearest2_adjoint, zero_insert2};
pub use rng::{image_key, normal, normal_keyed};
pub use tiles::{add_tiles, blend_tiles, extract_tiles, extract_tiles_weighted, TileGrid};
pub use winograd::{winograd_pays, KEEP_KERNELS_BYTES, WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_TILES};

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel, KernelProfile, Shader, Tensor};

/// Workgroups for `n` elements at 256 per group.
pub(crate) fn groups256(n: usize) -> u64 {
    (n as u64).div_ceil(256)
}

/// Elements per invocation of the element-wise and resampling kernels (their `RUN` constant): 16 on CPU
/// adapters, where each invocation and workgroup has a fixed cost (a copy of 64k floats on lavapipe:
/// 0.9 ms at 1, 0.2 ms at 16), 1 on GPUs. Returns the kernel with `RUN` set and its workgroup count for
/// `n` elements.
pub(crate) fn per_element(gpu: &Gpu, shader: &'static Shader, entry: &'static str, n: usize) -> (Kernel, u64) {
    let run = if gpu.profile() == KernelProfile::Tiled { 1 } else { 16 };
    (Kernel::new(shader, entry).with("RUN", run as f64), groups256(n.div_ceil(run)))
}

/// Errors unless `t` has exactly `rank` dimensions; returns them.
pub(crate) fn dims<const R: usize>(op: &'static str, name: &str, t: &Tensor) -> Result<[usize; R]> {
    t.shape().try_into().map_err(|_| Error::Shape { op, msg: format!("{name} must have {R} dimensions, got shape {:?}", t.shape()) })
}

/// Errors unless the shapes are equal.
pub(crate) fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::Shape { op, msg: format!("shapes differ: {:?} vs {:?}", a.shape(), b.shape()) });
    }
    Ok(())
}
