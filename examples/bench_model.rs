//! UNet forward benchmark for model directories given as arguments (default: the built-in prior): ms per
//! forward (median), the host's share (recording a replay of the captured graph), dispatches per forward and
//! GPU memory. Compare with `tools/bench_torch.py --model DIR` on the same weights, or run both interleaved
//! with `tools/bench_side_by_side.py`. `REDDIFF_KERNELS=gpu|cpu` forces a kernel family, `REDDIFF_COOP=0`
//! turns tensor cores off, `REDDIFF_PROFILE=1` adds a per-kernel breakdown and the convolution autotuning
//! table (every candidate's ms per size class; with `REDDIFF_AUTOTUNE=0` the table is timed afresh here).
//! `cargo run --release --example bench_model -- models/emoji32 .data/full/ffhq256 [--batch N] [--reps N]`

#[path = "common/bench_args.rs"]
mod bench_args;

use std::time::Instant;

use bench_args::median;
use reddiff::model::Unet;
use reddiff::{ops, Gpu, Result};

fn main() -> Result<()> {
    let (dirs, batch, reps) = bench_args::parse();
    let gpu = Gpu::new()?;
    println!("adapter: {}\n", gpu.adapter());
    println!(
        "| model | params | batch | ms / forward (median of {reps}) | first forward ms (capture) | host ms / forward | dispatches | host µs / dispatch | GPU MiB (pool + graph) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for dir in dirs {
        let t0 = Instant::now();
        let m = Unet::load(&gpu, &dir)?;
        let load_s = t0.elapsed().as_secs_f64();
        let s = m.info().image_size;
        let x = ops::normal(&gpu, &[batch, m.info().in_channels, s, s], 1, 0, 0.0, 1.0)?;
        let t = ops::fill(&gpu, &[batch], 500.0)?;
        let y = m.info().num_classes.map(|_| vec![1usize; batch]);
        gpu.sync()?;
        let t1 = Instant::now();
        m.forward(&gpu, &x, &t, y.as_deref())?;
        gpu.sync()?;
        let first = t1.elapsed().as_secs_f64() * 1e3;
        let (mut total, mut host) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let t1 = Instant::now();
            m.forward(&gpu, &x, &t, y.as_deref())?;
            host.push(t1.elapsed().as_secs_f64() * 1e3);
            gpu.sync()?;
            total.push(t1.elapsed().as_secs_f64() * 1e3);
        }
        let dispatches: usize = m.graph_stats().iter().map(|g| g.1).sum();
        let graph_bytes: u64 = m.graph_stats().iter().map(|g| g.2).sum();
        let host_ms = median(host);
        println!(
            "| {} | {:.2}M | {batch} | {:.2} | {:.1} | {:.3} | {dispatches} | {:.2} | {:.0} + {:.0} |",
            dir.display(),
            m.info().params as f64 / 1e6,
            median(total),
            first,
            host_ms,
            host_ms * 1e3 / dispatches.max(1) as f64,
            // memory() counts the graphs' buffers too.
            gpu.memory().1.saturating_sub(graph_bytes) as f64 / 1048576.0,
            graph_bytes as f64 / 1048576.0,
        );
        eprintln!("(load {load_s:.1} s)");
        if std::env::var("REDDIFF_PROFILE").is_ok() {
            let names: Vec<String> = reddiff::model::autotune_candidates(&gpu).iter().map(|k| k.label()).collect();
            eprintln!("  autotune, batch {batch} (M, N, K log2 buckets: chosen kernel; ms of {})", names.join(", "));
            for r in m.autotune(&gpu, batch)? {
                let ms: Vec<String> = r.ms.iter().map(|v| format!("{v:.3}")).collect();
                eprintln!("    {:?}: {} [{}]", r.class.buckets(), r.kernel.label(), ms.join(", "));
            }
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
