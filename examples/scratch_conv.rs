use reddiff::gpu::ConvKernel;
use reddiff::ops::{self, Conv2d, Epilogue};
use reddiff::{Gpu, Result};
use std::time::Instant;
fn main() -> Result<()> {
    let gpu = Gpu::new()?;
    let reps: usize = std::env::var("REPS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    for &(c, o, s, f16) in &[(64usize, 64usize, 32usize, true), (128, 128, 16, true), (128, 128, 8, true), (64, 64, 64, true), (64, 64, 30, true)] {
        let x = ops::normal(&gpu, &[1, c, s, s], 1, 0, 0.0, 1.0)?;
        let w = ops::normal(&gpu, &[o, c, 3, 3], 2, 0, 0.0, 0.1)?;
        let wp = ops::pack_conv(&gpu, &w, f16)?;
        let epi = Epilogue::bias(None);
        let run = || ops::conv2d_with(&gpu, &x, &wp, Conv2d::same(3), &epi, Some(ConvKernel::SharedWeights));
        run()?;
        gpu.sync()?;
        let mut v = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                run()?;
            }
            gpu.sync()?;
            v.push(t.elapsed().as_secs_f64() * 1e3 / reps as f64);
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let fl = 2.0 * (o * c * 9 * s * s) as f64;
        println!("{c}->{o} {s}x{s}: {:.3} ms  {:.2} GFLOP/s", v[2], fl / v[2] / 1e6);
    }
    Ok(())
}
