//! reddiff: image restoration with diffusion priors (RED-diff, Mardani et al., ICLR 2024), with every
//! pixel-touching step as a WGSL compute shader run through wgpu (Vulkan, Metal, DX12, GL and WebGPU).
//!
//! - [`gpu`]: the device context, tensors, buffer pool, pipeline cache and command stream.
//! - [`ops`]: one function per kernel family (convolution, normalisation, attention, FFT, RNG, Adam, ...).
//! - [`Restorer`]: the embedding API — load a prior once, restore images (blocking or async).

#[cfg(feature = "builtin-model")]
pub mod builtin;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod files;
pub mod gpu;
pub mod image;
pub mod metrics;
pub mod model;
pub mod operators;
pub mod ops;
pub mod recommended;
pub mod restore;
#[cfg(not(target_arch = "wasm32"))]
pub mod restorer;
pub mod shaders;
pub mod solvers;

pub use error::{Error, Result};
pub use gpu::{Gpu, GpuOptions, Tensor};
#[cfg(not(target_arch = "wasm32"))]
pub use restorer::{ModelSource, Progress, Restored, Restorer, RestorerBuilder};
/// The wgpu this crate is built against (for [`Gpu::from_wgpu`]).
pub use wgpu;

#[cfg(target_arch = "wasm32")]
pub mod web;
