//! Solvers: RED-diff (`red_diff`), the RED-diff paper's baselines DiffPIR (`diffpir`), DDRM (`ddrm`), DPS
//! (`dps`) and ΠGDM (`pgdm`; DPS and ΠGDM differentiate the network), and prior sampling
//! with DDIM (`ddim`). All use the network only through
//! the [`Denoiser`] trait, so a UNet or an analytic prior plugs in.

pub mod ddim;
pub mod ddrm;
pub mod denoiser;
pub mod diffpir;
pub mod dps;
pub mod pgdm;
pub mod red_diff;
pub mod tiled;

pub use ddim::{ddim_sample, ddim_timesteps, DdimOptions};
pub use ddrm::{ddrm, ddrm_timesteps, DdrmOptions};
pub use denoiser::{Denoiser, EpsTape, GaussianPrior, UnetPrior};
pub use diffpir::{diffpir, diffpir_timesteps, DiffPirOptions};
pub use dps::{dps, respaced_timesteps, DpsOptions};
pub use pgdm::{pgdm, PgdmOptions};
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
    /// DDRM (Kawar et al., NeurIPS 2022), for linear operators with an SVD.
    Ddrm,
    /// DPS (Chung et al., ICLR 2023), any operator; differentiates the network.
    Dps,
    /// ΠGDM (Song et al., ICLR 2023), linear operators; differentiates the network.
    Pgdm,
}

impl std::str::FromStr for Method {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Method> {
        Method::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            crate::Error::Invalid { op: "--method", msg: format!("unknown method '{s}'; one of: {}", names.join(", ")) }
        })
    }
}

impl Method {
    /// Every method, in the order the CLI and the page list them.
    pub const ALL: [Method; 5] = [Method::RedDiff, Method::DiffPir, Method::Ddrm, Method::Dps, Method::Pgdm];

    /// The method's name on the command line and in files: "reddiff", "diffpir", "ddrm", "dps", "pgdm".
    pub fn name(self) -> &'static str {
        match self {
            Method::RedDiff => "reddiff",
            Method::DiffPir => "diffpir",
            Method::Ddrm => "ddrm",
            Method::Dps => "dps",
            Method::Pgdm => "pgdm",
        }
    }

    /// The method's name in reports: "RED-diff", "DiffPIR", "DDRM".
    pub fn label(self) -> &'static str {
        match self {
            Method::RedDiff => "RED-diff",
            Method::DiffPir => "DiffPIR",
            Method::Ddrm => "DDRM",
            Method::Dps => "DPS",
            Method::Pgdm => "PiGDM",
        }
    }

    /// Checks that the method can restore `task` (a clear error before any GPU work otherwise) and returns
    /// the step count to use: `steps`, or the authors' count for the task (RED-diff: `reddiff_steps`).
    pub fn steps_for(self, task: &crate::operators::Task, sigma_y: f32, steps: Option<usize>, reddiff_steps: usize) -> crate::Result<usize> {
        let (default, min) = match self {
            Method::RedDiff => (reddiff_steps, 1),
            Method::DiffPir => (DiffPirOptions::for_task(task, sigma_y)?.steps, 2),
            Method::Ddrm => (DdrmOptions::for_task(task, sigma_y)?.steps, 1),
            Method::Dps => (DpsOptions::for_task(task).steps, 1),
            Method::Pgdm => (PgdmOptions::for_task(task)?.steps, 1),
        };
        let s = steps.unwrap_or(default);
        if self != Method::RedDiff && !(min..=1000).contains(&s) {
            return Err(crate::Error::Invalid { op: "--steps", msg: format!("{} takes {min} to 1000 steps, got {s}", self.label()) });
        }
        Ok(s)
    }

    /// Network evaluations for `steps` (DiffPIR's last step needs none).
    pub fn evaluations(self, steps: usize) -> usize {
        match self {
            Method::DiffPir => steps.saturating_sub(1),
            Method::RedDiff | Method::Ddrm | Method::Dps | Method::Pgdm => steps,
        }
    }
}

/// Ends one solver step: submits the recorded work, yields (so a browser page stays responsive) and reports
/// progress; [`crate::Error::Cancelled`] when the callback returns `false`.
pub(crate) async fn end_step(gpu: &crate::gpu::Gpu, callback: &mut impl FnMut(&StepInfo) -> bool, step: usize, steps: usize, t: usize) -> crate::Result<()> {
    gpu.flush()?;
    gpu.yield_now().await;
    if !callback(&StepInfo { step, steps, t, loss: None, preview: None }) {
        return Err(crate::Error::Cancelled { step });
    }
    Ok(())
}

/// Returns the result `x` after `steps` steps, or [`crate::Error::Diverged`] (with `hint`) when it holds
/// NaN/Inf values (one readback of its statistics).
pub(crate) async fn finite_result(gpu: &crate::gpu::Gpu, x: crate::gpu::Tensor, steps: usize, hint: &'static str) -> crate::Result<crate::gpu::Tensor> {
    let st = crate::ops::Stats::from_raw(&crate::ops::stats(gpu, &x)?.read_async(gpu).await?, x.numel());
    if st.nonfinite > 0 {
        return Err(crate::Error::Diverged { step: steps, count: st.nonfinite, hint });
    }
    Ok(x)
}
