//! The DDPM noise schedule: linear betas from 1e-4 to 0.02 over T = 1000 steps, ᾱ_t = Π_{s≤t} (1 − β_s).

/// ᾱ_t for t = 0..T-1, computed in f64 (as the reference implementations' numpy / float64 code).
#[derive(Clone, Debug)]
pub struct Schedule {
    /// ᾱ_t, index t.
    pub alphas_cumprod: Vec<f64>,
}

impl Schedule {
    /// Linear betas `beta_start..=beta_end` over `steps` timesteps.
    pub fn linear(beta_start: f64, beta_end: f64, steps: usize) -> Schedule {
        let mut acc = 1.0;
        let alphas_cumprod = (0..steps)
            .map(|i| {
                let beta = if steps > 1 { beta_start + (beta_end - beta_start) * i as f64 / (steps - 1) as f64 } else { beta_start };
                acc *= 1.0 - beta;
                acc
            })
            .collect();
        Schedule { alphas_cumprod }
    }

    /// The schedule every supported checkpoint uses: linear 1e-4..0.02, T = 1000.
    pub fn ddpm() -> Schedule {
        Self::linear(1e-4, 0.02, 1000)
    }

    /// Number of timesteps T.
    pub fn len(&self) -> usize {
        self.alphas_cumprod.len()
    }

    /// True for an empty schedule.
    pub fn is_empty(&self) -> bool {
        self.alphas_cumprod.is_empty()
    }

    /// ᾱ_t (t clamped to the schedule; 1 for an empty schedule).
    pub fn alpha_bar(&self, t: usize) -> f64 {
        self.alphas_cumprod.get(t.min(self.len().saturating_sub(1))).copied().unwrap_or(1.0)
    }
}
