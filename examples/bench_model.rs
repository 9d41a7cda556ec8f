//! ms per UNet forward (batch 1 by default) for model directories given as arguments (default: the
//! built-in prior). Compare with `tools/bench_torch.py --model DIR` on the same weights.
//! `cargo run --release --example bench_model -- models/emoji32 .data/full/ffhq256 [--batch N] [--reps N]`

use std::path::PathBuf;
use std::time::Instant;

use reddiff::model::Unet;
use reddiff::{ops, Gpu, Result};

fn main() -> Result<()> {
    let mut dirs = Vec::new();
    let (mut batch, mut reps) = (1usize, 5usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--batch" => batch = args.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            "--reps" => reps = args.next().and_then(|v| v.parse().ok()).unwrap_or(5),
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    if dirs.is_empty() {
        dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/emoji32"));
    }
    let gpu = Gpu::new()?;
    println!("adapter: {}\n", gpu.adapter().name);
    println!("| model | params | batch | ms / forward (median of {reps}) | peak pool MiB |\n|---|---|---|---|---|");
    for dir in dirs {
        let t0 = Instant::now();
        let m = Unet::load(&gpu, &dir)?;
        let load_s = t0.elapsed().as_secs_f64();
        let s = m.info().image_size;
        let x = ops::normal(&gpu, &[batch, m.info().in_channels, s, s], 1, 0, 0.0, 1.0)?;
        let t = ops::fill(&gpu, &[batch], 500.0)?;
        let y = m.info().num_classes.map(|_| vec![1usize; batch]);
        m.forward(&gpu, &x, &t, y.as_deref())?;
        gpu.sync()?;
        let mut v = Vec::new();
        for _ in 0..reps {
            let t1 = Instant::now();
            m.forward(&gpu, &x, &t, y.as_deref())?;
            gpu.sync()?;
            v.push(t1.elapsed().as_secs_f64() * 1e3);
        }
        v.sort_by(|a, b| a.total_cmp(b));
        println!(
            "| {} | {:.2}M | {batch} | {:.1} | {:.0} |",
            dir.display(),
            m.info().params as f64 / 1e6,
            v[v.len() / 2],
            gpu.memory().1 as f64 / 1048576.0
        );
        eprintln!("(load {load_s:.1} s)");
        if std::env::var("REDDIFF_PROFILE").is_ok() {
            gpu.set_profiling(true);
            m.forward(&gpu, &x, &t, y.as_deref())?;
            for (op, n, s) in gpu.profile_report() {
                eprintln!("  {op:<48} {n:>4} dispatches {:>8.2} ms", s * 1e3);
            }
            gpu.set_profiling(false);
        }
    }
    Ok(())
}
