//! Kernel benchmark: GFLOP/s of matmul 1024³ (both variants) and conv3×3 128→128 on 64×64, and ms for
//! GroupNorm and attention at UNet-like sizes. `cargo run --release --example bench_kernels`.
//! Each figure is the median of several timed runs after a warm-up; every run is flushed and waited for.

use std::time::Instant;

use reddiff::gpu::KernelProfile;
use reddiff::ops::{self, Bias, Conv2d, GroupNorm, MatView, Matmul};
use reddiff::{Gpu, Result};

fn time_ms(gpu: &Gpu, reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    gpu.sync()?;
    let mut v = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        gpu.sync()?;
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v[v.len() / 2])
}

fn main() -> Result<()> {
    let gpu = Gpu::new()?;
    println!("adapter: {}\n", gpu.adapter());
    println!("| kernel | size | ms | GFLOP/s |\n|---|---|---|---|");
    let n = 1024;
    let a = ops::normal(&gpu, &[n, n], 1, 0, 0.0, 1.0)?;
    let b = ops::normal(&gpu, &[n, n], 2, 0, 0.0, 1.0)?;
    let d = Matmul { batch: 1, m: n, n, k: n, a: MatView::rows(n, n), b: MatView::rows(n, n), alpha: 1.0 };
    for p in [KernelProfile::RegisterBlocked, KernelProfile::Tiled] {
        let ms = time_ms(&gpu, 3, || ops::matmul(&gpu, &a, &b, Bias::None, &d, Some(p)).map(|_| ()))?;
        println!("| matmul {p:?} | 1024³ | {ms:.1} | {:.2} |", 2.0 * (n as f64).powi(3) / ms / 1e6);
    }
    let x = ops::normal(&gpu, &[1, 128, 64, 64], 3, 0, 0.0, 1.0)?;
    let w = ops::normal(&gpu, &[128, 128, 3, 3], 4, 0, 0.0, 0.05)?;
    let bias = ops::fill(&gpu, &[128], 0.1)?;
    let ms = time_ms(&gpu, 3, || ops::conv2d(&gpu, &x, &w, Some(&bias), Conv2d::same(3)).map(|_| ()))?;
    let flops = 2.0 * 128.0 * 128.0 * 9.0 * 64.0 * 64.0;
    println!("| conv2d 3x3 | 128→128, 64×64 | {ms:.1} | {:.2} |", flops / ms / 1e6);
    for (c, hw) in [(128usize, 64usize), (256, 32)] {
        let x = ops::normal(&gpu, &[1, c, hw, hw], 5, 0, 0.0, 1.0)?;
        let g = ops::fill(&gpu, &[c], 1.0)?;
        let ss = ops::normal(&gpu, &[1, 2 * c], 6, 0, 0.0, 0.1)?;
        let ms = time_ms(&gpu, 5, || {
            ops::group_norm(&gpu, &x, &g, &g, Some(ops::ScaleShift::rows(&ss)), GroupNorm { groups: 32, eps: 1e-5, silu: true }).map(|_| ())
        })?;
        println!("| group_norm+ss+silu | {c}×{hw}×{hw} | {ms:.2} | |");
    }
    for (c, hw, heads) in [(256usize, 16usize, 4usize), (128, 32, 2)] {
        let t = hw * hw;
        let ch = c / heads;
        let qkv = ops::normal(&gpu, &[1, 3 * c, t], 7, 0, 0.0, 1.0)?;
        let view = |part: usize| MatView { offset: part * ch * t, inner: 1, batch_hi: 3 * ch * t, batch_lo: 0, row: t, col: 1 };
        let scale = 1.0 / (ch as f32).sqrt();
        let ms = time_ms(&gpu, 3, || ops::attention(&gpu, (&qkv, view(0)), (&qkv, view(1)), (&qkv, view(2)), 1, heads, ch, t, scale).map(|_| ()))?;
        let flops = 4.0 * (heads * t * t * ch) as f64;
        println!("| attention | {c} ch, {heads} heads, T={t} | {ms:.1} | {:.2} |", flops / ms / 1e6);
    }
    Ok(())
}
