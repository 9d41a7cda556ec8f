//! GPU plumbing: adapter selection and limits ([`Gpu`]), tensors and their pool, the pipeline cache and
//! kernel launch, and the command stream (one encoder per batch of dispatches).

#[cfg(not(target_arch = "wasm32"))]
mod block;
mod context;
mod graph;
mod kernel;
mod pool;
mod stream;
mod tensor;
mod tune;

#[cfg(not(target_arch = "wasm32"))]
pub use block::block_on;
pub use context::{AdapterReport, Gpu, GpuOptions, KernelProfile};
pub use graph::Graph;
pub use kernel::{Access, Kernel, ParamKind, ParamLayout, Params, Shader};
pub use tensor::{numel, Tensor};
pub use tune::{ConvKernel, ConvProblem, SizeClass, TileConfig, COOP_BM, COOP_SPLITS};
