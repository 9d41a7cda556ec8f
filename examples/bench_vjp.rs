//! UNet vector-Jacobian product benchmark — what DPS and ΠGDM run every step: a tape (the saving forward)
//! and one product per iteration, replayed from the tape's captured graphs and, interleaved in the same
//! rounds, recorded dispatch by dispatch (the path a tape takes while another tape of its shape holds the
//! graphs, and the only path before tapes were captured). Prints ms per iteration (median), the host's share
//! (recording, before the GPU is waited for), bind groups created per iteration, the dispatches of the
//! captured forward and backward, and the GPU memory those two graphs hold. `REDDIFF_PROFILE=1` adds a
//! per-kernel breakdown of the saving forward and of the product (each dispatch timed alone).
//! `cargo run --release --example bench_vjp -- [models/emoji32 ...] [--batch N] [--reps N]`

#[path = "common/bench_args.rs"]
mod bench_args;

use std::time::Instant;

use bench_args::median;
use reddiff::model::Unet;
use reddiff::{ops, Gpu, Result, Tensor};

/// One tape and one product: (ms in all, host ms, bind groups created).
fn iteration(gpu: &Gpu, m: &Unet, x: &Tensor, t: &Tensor, y: Option<&[usize]>, v: &Tensor) -> Result<(f64, f64, u64)> {
    gpu.sync()?;
    let b0 = gpu.bind_groups_created();
    let t0 = Instant::now();
    let tape = m.tape(gpu, x, t, y)?;
    let g = tape.vjp(gpu, v)?;
    let host = t0.elapsed().as_secs_f64() * 1e3;
    gpu.sync()?;
    let total = t0.elapsed().as_secs_f64() * 1e3;
    drop((g, tape));
    Ok((total, host, gpu.bind_groups_created() - b0))
}

fn main() -> Result<()> {
    let (dirs, batch, reps) = bench_args::parse();
    let gpu = Gpu::new()?;
    println!("adapter: {}\n", gpu.adapter());
    println!(
        "| model | batch | path | ms / tape + VJP (median of {reps}) | host ms | bind groups / iteration | dispatches (forward + backward) | graphs MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for dir in dirs {
        let m = Unet::load(&gpu, &dir)?;
        let s = m.info().image_size;
        let shape = [batch, m.info().in_channels, s, s];
        let x = ops::normal(&gpu, &shape, 1, 0, 0.0, 1.0)?;
        let v = ops::normal(&gpu, &shape, 2, 0, 0.0, 1.0)?;
        let t = ops::fill(&gpu, &[batch], 500.0)?;
        let y = m.info().num_classes.map(|_| vec![1usize; batch]);
        let y = y.as_deref();
        // Warm-up: the capture, every pipeline and the adjoint weights.
        iteration(&gpu, &m, &x, &t, y, &v)?;
        let mut runs: [Vec<(f64, f64, u64)>; 2] = [Vec::new(), Vec::new()];
        for round in 0..=reps {
            for (path, runs) in runs.iter_mut().enumerate() {
                // A tape held across the iteration sends it down the recorded path.
                let held = if path == 1 { Some(m.tape(&gpu, &x, &t, y)?) } else { None };
                let r = iteration(&gpu, &m, &x, &t, y, &v)?;
                drop(held);
                if round > 0 {
                    runs.push(r);
                }
            }
        }
        let (fwd, bwd, bytes) = m.tape_graph_stats().iter().find(|g| g.0 == shape).map(|g| (g.1, g.2, g.3)).unwrap_or((0, 0, 0));
        for (path, runs) in ["captured (replayed)", "recorded"].iter().zip(runs) {
            println!(
                "| {} | {batch} | {path} | {:.1} | {:.2} | {} | {fwd} + {bwd} | {:.1} |",
                dir.display(),
                median(runs.iter().map(|r| r.0).collect()),
                median(runs.iter().map(|r| r.1).collect()),
                runs.iter().map(|r| r.2).max().unwrap_or(0),
                bytes as f64 / 1048576.0,
            );
        }
        if std::env::var("REDDIFF_PROFILE").is_ok() {
            gpu.set_profiling(true);
            let tape = m.tape(&gpu, &x, &t, y)?;
            let report = |what: &str| {
                eprintln!("  {what}, batch {batch}:");
                for (op, n, s) in gpu.profile_report() {
                    eprintln!("    {op:<48} {n:>4} dispatches {:>8.2} ms", s * 1e3);
                }
            };
            report("saving forward (tape)");
            // Restarting profiling clears the counts: the product's kernels alone.
            gpu.set_profiling(false);
            gpu.set_profiling(true);
            drop(tape.vjp(&gpu, &v)?);
            report("vector-Jacobian product");
            gpu.set_profiling(false);
        }
    }
    Ok(())
}
