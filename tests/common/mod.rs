//! Shared test helpers: one GPU per test binary (lavapipe compiles are slow, devices are heavy), a seeded
//! CPU RNG for inputs, and tolerance checks relative to the reference's magnitude.
#![allow(dead_code)]

use std::sync::OnceLock;

use reddiff::Gpu;

/// The test binary's GPU (first adapter by the usual preference; REDDIFF_BACKEND / REDDIFF_ADAPTER apply).
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::new() {
        Ok(g) => {
            eprintln!("adapter: {}", g.adapter());
            g
        }
        Err(e) => panic!("tests need a GPU adapter: {e}"),
    })
}

/// A second device on the same adapter with the GPU (workgroup-tiled) kernel family forced, so those
/// kernels are tested on CPU adapters too.
pub fn gpu_tiled() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let opts = reddiff::GpuOptions { profile: Some(reddiff::gpu::KernelProfile::Tiled), ..reddiff::GpuOptions::from_env() };
        match reddiff::gpu::block_on(Gpu::with_options(opts)) {
            Ok(g) => g,
            Err(e) => panic!("tests need a GPU adapter: {e}"),
        }
    })
}

/// xorshift64* → uniform floats in [-1, 1), deterministic per seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform()).collect()
    }
}

/// max |got - want| / max(max |want|, floor); panics with context above `tol`.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs {}", got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let (mut worst, mut at) = (0f32, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        if !(d <= worst) {
            worst = d;
            at = i;
        }
    }
    let rel = worst / scale;
    assert!(rel <= tol, "{what}: max|Δ| = {worst:e} at {at} (got {}, want {}), relative {rel:e} > {tol:e}", got[at], want[at]);
}
