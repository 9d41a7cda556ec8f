//! 3×3 convolutions (stride 1, padding 1, f16 weights, bias + residual epilogue) on the direct
//! subgroup-shared kernel against Winograd F(4×4, 3×3), per dispatch, interleaved (A B A B …): the largest
//! deviation between the two relative to the output's scale, the median milliseconds of each and their
//! ratio, and whether the default rule ([`reddiff::ops::winograd_pays`]) picks Winograd. CPU adapters
//! with subgroups of ≥ 8 lanes only (where both kernels run).
//!
//! `REDDIFF_PROFILE=1` adds each shape's Winograd passes, timed one by one.
//!
//! `cargo run --release --example bench_winograd [-- --rounds R] [-- N CIN COUT H W]`

use std::time::Instant;

use reddiff::gpu::ConvKernel;
use reddiff::ops::{self, Conv2d, Epilogue};
use reddiff::{Error, Gpu, Result};

/// Milliseconds of one call of `f`, waited for.
fn time_ms(gpu: &Gpu, f: &mut impl FnMut() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    f()?;
    gpu.sync()?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 5;
    let mut numbers = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--rounds" {
            rounds = it.next().and_then(|v| v.parse().ok()).ok_or(Error::Invalid { op: "bench_winograd", msg: "--rounds takes a count".into() })?;
        } else {
            numbers.push(a.parse::<usize>().map_err(|_| Error::Invalid { op: "bench_winograd", msg: format!("not a size: {a}") })?);
        }
    }
    // (n, cin, cout, h, w): emoji32's layers, then ADM-256's (FFHQ, ImageNet).
    let shapes: Vec<[usize; 5]> = match numbers[..] {
        [n, cin, cout, h, w] => vec![[n, cin, cout, h, w]],
        [] => vec![
            [1, 64, 64, 32, 32],
            [8, 64, 64, 32, 32],
            [1, 128, 64, 32, 32],
            [1, 128, 128, 16, 16],
            [8, 128, 128, 8, 8],
            [1, 128, 128, 32, 32],
            [1, 128, 128, 64, 64],
            [1, 256, 256, 32, 32],
            [1, 256, 256, 64, 64],
            [1, 512, 512, 16, 16],
        ],
        _ => return Err(Error::Invalid { op: "bench_winograd", msg: "give N CIN COUT H W, or nothing".into() }),
    };
    let gpu = Gpu::new()?;
    println!("adapter: {}\n", gpu.adapter());
    if !gpu.shared_weights() {
        return Err(Error::Invalid { op: "bench_winograd", msg: "needs a CPU adapter with subgroups of at least 8 lanes".into() });
    }
    println!("| N | Cin → Cout | H×W | max deviation / scale | direct ms | Winograd ms | direct / Winograd | chosen by default |");
    println!("|---|---|---|---|---|---|---|---|");
    for [n, cin, cout, h, w] in shapes {
        let x = ops::normal(&gpu, &[n, cin, h, w], 3, 0, 0.0, 1.0)?;
        let wt = ops::pack_conv(&gpu, &ops::normal(&gpu, &[cout, cin, 3, 3], 4, 0, 0.0, 0.05)?, true)?;
        let b = ops::normal(&gpu, &[cout], 5, 0, 0.0, 0.1)?;
        let r = ops::normal(&gpu, &[n, cout, h, w], 6, 0, 0.0, 1.0)?;
        let epi = Epilogue { bias: Some(&b), term: None, residual: Some(&r), alpha: 1.0, beta: 1.0 };
        let run = |k| ops::conv2d_with(&gpu, &x, &wt, Conv2d::same(3), &epi, Some(k));
        let direct = run(ConvKernel::SharedWeights)?.read(&gpu)?;
        let wino = run(ConvKernel::Winograd)?.read(&gpu)?;
        let scale = direct.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
        let dev = direct.iter().zip(&wino).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        let (mut td, mut tw) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            td.push(time_ms(&gpu, &mut || run(ConvKernel::SharedWeights).map(|_| ()))?);
            tw.push(time_ms(&gpu, &mut || run(ConvKernel::Winograd).map(|_| ()))?);
        }
        let (td, tw) = (median(td), median(tw));
        let chosen = if ops::winograd_pays(&gpu, n, cin, cout, h, w) { "yes" } else { "no" };
        println!("| {n} | {cin} → {cout} | {h}×{w} | {dev:.1e} | {td:.2} | {tw:.2} | {:.2} | {chosen} |", td / tw);
        if std::env::var("REDDIFF_PROFILE").is_ok() {
            gpu.set_profiling(true);
            for _ in 0..rounds {
                run(ConvKernel::Winograd)?;
            }
            for (op, count, s) in gpu.profile_report() {
                eprintln!("  {op:<56} {:>8.3} ms per call", s * 1e3 / rounds as f64 / (count as f64 / rounds as f64).max(1.0));
            }
            gpu.set_profiling(false);
        }
    }
    Ok(())
}
