//! reddiff: image restoration with diffusion priors (RED-diff, Mardani et al., ICLR 2024), with every
//! pixel-touching step as a WGSL compute shader run through wgpu (Vulkan, Metal, DX12, GL and WebGPU).
//!
//! - [`gpu`]: the device context, tensors, buffer pool, pipeline cache and command stream.
//! - [`ops`]: one function per kernel family (convolution, normalisation, attention, FFT, RNG, Adam, ...).

pub mod error;
pub mod gpu;
pub mod image;
pub mod metrics;
pub mod model;
pub mod operators;
pub mod ops;
pub mod restore;
pub mod shaders;
pub mod solvers;

pub use error::{Error, Result};
pub use gpu::{Gpu, GpuOptions, Tensor};

#[cfg(target_arch = "wasm32")]
pub mod web;
