//! Solvers: RED-diff (`red_diff`), and prior sampling with DDIM (`ddim`). Both use the network only through
//! the [`Denoiser`] trait, so a UNet or an analytic prior plugs in.

pub mod ddim;
pub mod denoiser;
pub mod red_diff;
pub mod tiled;

pub use ddim::{ddim_sample, ddim_timesteps, DdimOptions};
pub use denoiser::{Denoiser, GaussianPrior, UnetPrior};
#[cfg(not(target_arch = "wasm32"))]
pub use red_diff::red_diff_blocking;
pub use red_diff::{image_keys, red_diff, Init, Order, RedDiffOptions, StepInfo, Weighting};
pub use tiled::TiledDenoiser;
