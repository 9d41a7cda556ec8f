#!/usr/bin/env python3
"""PyTorch CPU forward-pass timings for reddiff model directories (ADM or diffusers, from config.json).

    python tools/bench_torch.py --model models/emoji32 --model .data/full/ffhq256 [--threads 2] [--iters 10]

Weights are loaded from the directory's safetensors file and run in f32 (--dtype to change), batch 1 (--batch)
with torch.no_grad(); reported: median (and min / max) ms per forward over --iters timed runs after --warmup
untimed ones. A baseline for reddiff's own (wgpu) timings.
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reddiff_models as rm  # noqa: E402


def describe(kind, cfg):
    if kind == "adm":
        return (f"ADM {cfg['image_size']}px ch{cfg['num_channels']} mult[{cfg['channel_mult'] or 'default'}] "
                f"rb{cfg['num_res_blocks']} attn[{cfg['attention_resolutions']}]")
    return (f"diffusers {cfg['sample_size']}px ch{tuple(cfg['block_out_channels'])} "
            f"lpb{cfg['layers_per_block']}")


def bench(model_dir, args, dtype):
    kind, cfg, model = rm.load_model(model_dir, dtype)
    n_params = sum(p.numel() for p in model.parameters())
    size = cfg["image_size"] if kind == "adm" else cfg["sample_size"]
    chans = 3 if kind == "adm" else cfg["in_channels"]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, chans, size, size, generator=g).to(dtype)
    t = torch.full((args.batch,), 500, dtype=torch.int64)
    y = None
    if (kind == "adm" and cfg["class_cond"]) or (kind == "diffusers" and cfg.get("num_class_embeds")):
        y = torch.zeros(args.batch, dtype=torch.int64)
    for _ in range(args.warmup):
        rm.forward(kind, model, x, t, y)
    times = []
    deadline = time.perf_counter() + args.max_seconds
    for i in range(args.iters):
        t0 = time.perf_counter()
        rm.forward(kind, model, x, t, y)
        times.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() > deadline and i >= 2:
            break
    return dict(model=model_dir, desc=describe(kind, cfg), params=n_params, n=len(times),
                median=statistics.median(times), min=min(times), max=max(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="model directory (repeatable)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10, help="timed forwards (fewer if --max-seconds runs out)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=120.0, help="per model; stops early (>= 3 timed runs)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f64"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = rm.DTYPES[args.dtype]

    rows = []
    for d in args.model:
        r = bench(d, args, dtype)
        rows.append(r)
        print(f"  {d}: {r['median']:.1f} ms", file=sys.stderr, flush=True)
    print(f"torch {torch.__version__}, CPU, {args.threads} thread(s), batch {args.batch}, {args.dtype}")
    w = max(len(r["model"]) for r in rows)
    print(f"{'model':{w}s}  {'params':>8s}  {'median ms':>10s}  {'min':>9s}  {'max':>9s}  {'n':>3s}  what")
    for r in rows:
        print(f"{r['model']:{w}s}  {r['params'] / 1e6:7.2f}M  {r['median']:10.2f}  {r['min']:9.2f}  "
              f"{r['max']:9.2f}  {r['n']:3d}  {r['desc']}")


if __name__ == "__main__":
    main()
