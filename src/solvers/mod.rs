//! Solvers: RED-diff (`red_diff`), DiffPIR (`diffpir`, a baseline of the RED-diff paper), and prior sampling
//! with DDIM (`ddim`). All use the network only through
//! the [`Denoiser`] trait, so a UNet or an analytic prior plugs in.

pub mod ddim;
pub mod denoiser;
pub mod diffpir;
pub mod red_diff;
pub mod tiled;

pub use ddim::{ddim_sample, ddim_timesteps, DdimOptions};
pub use denoiser::{Denoiser, GaussianPrior, UnetPrior};
pub use diffpir::{diffpir, diffpir_timesteps, DiffPirOptions};
#[cfg(not(target_arch = "wasm32"))]
pub use red_diff::red_diff_blocking;
pub use red_diff::{image_keys, red_diff, Init, Order, RedDiffOptions, StepInfo, Weighting};
pub use tiled::TiledDenoiser;

/// The restoration methods, by the names the CLI and the web page use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// RED-diff (Mardani et al., ICLR 2024), the default.
    RedDiff,
    /// DiffPIR (Zhu et al., CVPRW 2023), for linear operators.
    DiffPir,
}

/// Every method name accepted by [`Method::from_str`](std::str::FromStr).
pub const METHOD_NAMES: &[&str] = &["reddiff", "diffpir"];

impl std::str::FromStr for Method {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Method> {
        Ok(match s {
            "reddiff" => Method::RedDiff,
            "diffpir" => Method::DiffPir,
            o => return Err(crate::Error::Invalid { op: "--method", msg: format!("unknown method '{o}'; one of: {}", METHOD_NAMES.join(", ")) }),
        })
    }
}
