#!/usr/bin/env python3
"""reddiff (wgpu) and PyTorch on the same weights, interleaved (A B B A A B ...), with the ratios printed.

    python tools/bench_side_by_side.py [--model models/emoji32:1,8] [--model .data/full/ffhq256:1]
        [--rounds 5] [--reps 5] [--loop-steps 100] [--threads 2] [--torch-device cpu|cuda] [--out table.md]

For every --model DIR:B1,B2 and batch: the UNet forward (ms, median over --reps inside each round, median
over rounds); then the RED-diff loop (box inpainting of a held-out image, --loop-steps steps, it/s) with the
reddiff CLI against tools/reddiff_torch.py; with --vjp then the vector-Jacobian product every DPS and PiGDM
step needs (a forward keeping activations and one product; examples/bench_vjp against torch.autograd.grad). Ratio = PyTorch time / reddiff time (> 1: reddiff is faster).
reddiff runs as a subprocess (the release example `bench_model` and binary `reddiff`, built if missing);
PyTorch runs in this process with the model loaded once. On CUDA both fp32 (TF32 off, a fair fp32
baseline) and PyTorch's default (cuDNN convolutions on TF32) are timed. GPU memory: reddiff's pool + graph
peak as it reports it; PyTorch's torch.cuda.max_memory_allocated (CUDA) or process peak RSS (CPU).
Environment: REDDIFF_KERNELS=cpu|gpu forces reddiff's kernel family; cargo must be on PATH unless the
binaries exist (--bin-dir). --variant LABEL:VAR=VALUE,... (repeatable) times several reddiff configurations in
the same rounds, e.g. `--variant f32:REDDIFF_COOP=0 --variant coop:` (tensor cores off / on).
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reddiff_models as rm  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SAMPLE = "assets/samples/twitter-1f467-1f3fc.png"


def parse_variant(spec):
    """'LABEL:K=V,K=V' -> (label, {K: V})."""
    label, _, kvs = spec.partition(":")
    env = dict(kv.split("=", 1) for kv in kvs.split(",") if kv)
    return label or "default", env


def sh(cmd, env=None, timeout=300):
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout + r.stderr


def reddiff_forward(bins, model, batch, reps, env=None):
    """(median ms per forward, GPU MiB, dispatches, host µs per dispatch) from one bench_model run."""
    out = sh([os.path.join(bins, "examples", "bench_model"), model, "--batch", str(batch), "--reps", str(reps)], env)
    row = [l for l in out.splitlines() if l.startswith("| ") and "| params |" not in l][-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    mem = sum(float(v) for v in cells[8].split("+"))
    return float(cells[3]), mem, int(cells[6]), float(cells[7])


class TorchModel:
    def __init__(self, model_dir, device, threads):
        torch.set_num_threads(threads)
        self.kind, self.cfg, self.m = rm.load_model(model_dir, torch.float32)
        self.m = self.m.to(device)
        self.device = device
        self.size = self.cfg["image_size"] if self.kind == "adm" else self.cfg["sample_size"]
        self.cc = (self.kind == "adm" and self.cfg.get("class_cond"))

    def forward_ms(self, batch, reps, tf32):
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, 3, self.size, self.size, generator=g).to(self.device)
        t = torch.full((batch,), 500, dtype=torch.int64, device=self.device)
        y = torch.zeros(batch, dtype=torch.int64, device=self.device) if self.cc else None
        times = []
        with torch.no_grad():
            for i in range(reps + 1):
                if self.device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                rm.forward(self.kind, self.m, x, t, y)
                if self.device == "cuda":
                    torch.cuda.synchronize()
                if i:
                    times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    def vjp_ms(self, batch, reps, tf32):
        """Median ms of one forward with autograd on and (d eps / dx)^T v, what DPS and PiGDM do every step
        (the forward's activations kept by autograd; eps = the first 3 output channels)."""
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, 3, self.size, self.size, generator=g).to(self.device)
        v = torch.randn(batch, 3, self.size, self.size, generator=g).to(self.device)
        t = torch.full((batch,), 500, dtype=torch.int64, device=self.device)
        y = torch.zeros(batch, dtype=torch.int64, device=self.device) if self.cc else None
        times = []
        for i in range(reps + 1):
            if self.device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            xg = x.detach().requires_grad_(True)
            if self.kind == "adm":
                out = self.m(xg, t, y=y) if y is not None else self.m(xg, t)
            else:
                out = self.m(xg, t, class_labels=y).sample
            (grad,) = torch.autograd.grad((out[:, :3] * v).sum(), xg)
            if self.device == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append((time.perf_counter() - t0) * 1e3)
            del out, grad
        return statistics.median(times)

    def memory_mib(self):
        if self.device == "cuda":
            return torch.cuda.max_memory_allocated() / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reddiff_vjp(bins, model, batch, reps, env=None):
    """(median ms per tape + product, dispatches "forward + backward", graphs MiB) from one bench_vjp run (the
    captured, replayed path: what DPS and PiGDM run)."""
    out = sh([os.path.join(bins, "examples", "bench_vjp"), model, "--batch", str(batch), "--reps", str(reps)], env, timeout=900)
    row = [l for l in out.splitlines() if l.startswith("| ") and "| captured" in l][-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    return float(cells[3]), cells[6], float(cells[7])


def model_size(model):
    cfg = rm.read_config(model)
    return cfg.get("image_size") or cfg.get("sample_size")


def reddiff_loop(bins, model, steps, env=None):
    out = sh([os.path.join(bins, "reddiff"), "restore", "--model", model, "--task", "inpaint-box", "--steps",
              str(steps), "--seed", "0", "--fit", "resize", "--input", SAMPLE, "--output", "/tmp/bench-side-by-side.png"], env)
    return float(re.search(r"([\d.]+) it/s", out).group(1))


def torch_loop(model, steps, threads, device):
    out = sh([sys.executable, "tools/reddiff_torch.py", "--model", model, "--task", "inpaint-box", "--images",
              SAMPLE, "--steps", str(steps), "--threads", str(threads), "--device", device,
              "--resize", str(model_size(model))])
    return float(re.search(r"loop: ([\d.]+) it/s", out).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="DIR[:batch,batch,...] (repeatable)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--loop-steps", type=int, default=100, help="0 skips the RED-diff loop")
    ap.add_argument("--loop-model", default="models/emoji32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--out", help="also write the table here")
    ap.add_argument("--append", action="store_true", help="keep what --out already holds and write after it")
    ap.add_argument("--variant", action="append", help="LABEL:VAR=VALUE,... reddiff environment (repeatable)")
    ap.add_argument("--vjp", action="store_true",
                    help="also time the UNet's vector-Jacobian product (tape + product; bench_vjp against torch "
                         "autograd) for every model and batch, after the loop")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in (args.variant or ["default:"])]
    models = args.model or ["models/emoji32:1,8"]
    if not all(os.path.exists(os.path.join(args.bin_dir, "examples", e)) for e in ("bench_model", "bench_vjp")):
        sh(["cargo", "build", "--release", "--bin", "reddiff", "--example", "bench_model", "--example", "bench_vjp"], timeout=1800)
    adapters = [f"{label}: " + sh([os.path.join(args.bin_dir, "reddiff"), "adapter"], env).strip().splitlines()[-1]
                for label, env in variants]
    modes = [("fp32", False)] + ([("tf32", True)] if args.torch_device == "cuda" else [])
    lines = ["reddiff adapter, per variant:"] + [f"- {a}" for a in adapters] + [
             "",
             f"PyTorch {torch.__version__} on {args.torch_device}"
             + (f" ({torch.cuda.get_device_name()})" if args.torch_device == "cuda" else f", {args.threads} threads"),
             f"{args.rounds} interleaved rounds, median of {args.reps} per round", "",
             "| what | batch | reddiff variant | reddiff ms | PyTorch mode | PyTorch ms | ratio (PyTorch / reddiff) | reddiff MiB | PyTorch MiB | reddiff dispatches, host µs each |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    before = ""
    if args.append and args.out and os.path.exists(args.out):
        with open(args.out) as f:
            before = f.read() + "\n"

    def flush():
        """The table so far (a run cut short by a time limit keeps what it measured)."""
        if args.out:
            with open(args.out, "w") as f:
                f.write(before + "\n".join(lines) + "\n")

    def interleaved(what, ours_fn, theirs_fn):
        """Median ms per reddiff variant and PyTorch mode over interleaved rounds (A B B A ...): ours_fn(env)
        -> (ms, stats), theirs_fn(tf32) -> ms. Returns ({label: [ms]}, {label: stats}, {mode: [ms]})."""
        ours = {label: [] for label, _ in variants}
        stats = {}
        theirs = {m: [] for m, _ in modes}
        for r in range(args.rounds):
            for o in ([0, 1] if r % 2 == 0 else [1, 0]):
                if o == 0:
                    for label, env in variants:
                        ms, stats[label] = ours_fn(env)
                        ours[label].append(ms)
                else:
                    for m, tf32 in modes:
                        theirs[m].append(theirs_fn(tf32))
            print(f"  {what} round {r + 1}: reddiff " + ", ".join(f"{l} {v[-1]:.2f} ms" for l, v in ours.items())
                  + ", PyTorch " + ", ".join(f"{m} {v[-1]:.2f} ms" for m, v in theirs.items()), file=sys.stderr, flush=True)
        return ours, stats, theirs

    def table_rows(what, b, ours, theirs, cells):
        """One row per variant and mode; cells(label) gives the last three columns."""
        for label, _ in variants:
            for m, _ in modes:
                ratios = [t / o for t, o in zip(theirs[m], ours[label])]
                lines.append(f"| {what} | {b} | {label} | {statistics.median(ours[label]):.2f} | {m} | "
                             f"{statistics.median(theirs[m]):.2f} | {statistics.median(ratios):.3f} | {cells(label)} |")
        flush()

    def split(spec):
        d, _, bs = spec.partition(":")
        return d, os.path.basename(d.rstrip("/")), ([int(b) for b in bs.split(",")] if bs else [1])

    for spec in models:
        d, name, batches = split(spec)
        tm = TorchModel(d, args.torch_device, args.threads)
        for b in batches:
            def ours_fn(env):
                ms, mem, disp, host = reddiff_forward(args.bin_dir, d, b, args.reps, env)
                return ms, (mem, disp, host)
            ours, stats, theirs = interleaved(f"{d} b{b}", ours_fn, lambda tf32: tm.forward_ms(b, args.reps, tf32))
            table_rows(f"forward {name}", b, ours, theirs,
                       lambda l: f"{stats[l][0]:.0f} | {tm.memory_mib():.0f} | {stats[l][1]}, {stats[l][2]:.2f}")
        del tm
    if args.loop_steps:
        ours = {label: [] for label, _ in variants}
        theirs = []
        for r in range(max(1, args.rounds // 2)):
            for o in ([0, 1] if r % 2 == 0 else [1, 0]):
                if o == 0:
                    for label, env in variants:
                        ours[label].append(reddiff_loop(args.bin_dir, args.loop_model, args.loop_steps, env))
                else:
                    theirs.append(torch_loop(args.loop_model, args.loop_steps, args.threads, args.torch_device))
            print(f"  loop round {r + 1}: reddiff " + ", ".join(f"{l} {v[-1]:.1f} it/s" for l, v in ours.items())
                  + f", PyTorch {theirs[-1]:.1f} it/s", file=sys.stderr, flush=True)
        for label, _ in variants:
            ratios = [o / t for o, t in zip(ours[label], theirs)]
            lines.append(f"| RED-diff loop {os.path.basename(args.loop_model.rstrip('/'))} ({args.loop_steps} steps, it/s) | 1 | {label} | "
                         f"{statistics.median(ours[label]):.3g} it/s | fp32 | {statistics.median(theirs):.3g} it/s | "
                         f"{statistics.median(ratios):.3f} | | | |")
        flush()
    if args.vjp:
        for spec in models:
            d, name, batches = split(spec)
            tm = TorchModel(d, args.torch_device, args.threads)
            for b in batches:
                def ours_fn(env):
                    ms, disp, mem = reddiff_vjp(args.bin_dir, d, b, args.reps, env)
                    return ms, (disp, mem)
                ours, stats, theirs = interleaved(f"vjp {d} b{b}", ours_fn, lambda tf32: tm.vjp_ms(b, args.reps, tf32))
                table_rows(f"VJP (forward + backward) {name}", b, ours, theirs,
                           lambda l: f"{stats[l][1]:.0f} (graphs) | {tm.memory_mib():.0f} | {stats[l][0]}")
            del tm
    flush()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
