#!/usr/bin/env python3
"""Cross-check of reddiff's DDRM against an independent implementation, deepinv's `sampling.DDRM` (PyPI
deepinv 0.5), with the same prior (models/emoji32, run in PyTorch through guided-diffusion) and the same
measurements (noiseless centre-box and 70 % random inpainting) on held-out images; prints per task the mean
PSNR of every run of each sampler, the paired per-image differences to reddiff and their standard errors.

    /work/venv/bin/python tools/deepinv_crosscheck.py [--images assets/samples] [--limit 8] [--seeds 3]
        [--tasks inpaint-box,inpaint-random] [--batch 8]

deepinv's DDRM calls a denoiser D(x, sigma) on [0, 1] images; the prior is wrapped the way deepinv's own
`DiffUNet.forward_denoise` wraps guided-diffusion models (x -> sqrt(a)(2x - 1) with a = 1 / (1 + 4 sigma^2),
the nearest timestep to sqrt(1 - abar) = 2 sigma sqrt(a), x0 = (x - sqrt(1 - abar) eps) / sqrt(abar), clipped).
Its noise levels are DDRM's 20 timesteps (950, 900, ..., 0) as sigma = sqrt(1 - abar) / sqrt(abar) / 2 ([0, 1]
units), eta 0.85, eta_b 1, as reddiff runs. Two deepinv runs per seed:
  * "deepinv": as shipped, x0 clipped to [-1, 1] by the wrapper;
  * "deepinv, paper noise": the DDRM authors' loop (bahjat-kawar/ddrm, efficient_generalized_steps) neither
    clips x0 nor scales the fresh noise: deepinv draws it as std * randn / sqrt(2), so here its randn is
    scaled by sqrt(2) (std is already in [0, 1] units, half the authors' [-1, 1] sigma) and the wrapper does
    not clip.
reddiff's side: `target/release/reddiff eval --paper-defaults --method ddrm` on the same images and seeds (the
seed also draws the random mask: ported here from src/operators/patterns.rs, and checked by comparing the
pseudo-inverse's PSNR with reddiff's per image). The samplers differ in their noise draws, so individual
images differ; the means (and the paired differences over images) are what is compared.
"""
import argparse
import contextlib
import csv
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reddiff_models as rm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MASK64 = (1 << 64) - 1


def load_rgb(path):
    im = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    rgb = np.asarray(Image.alpha_composite(white, im).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)


def psnr(a, b):
    """Per image of a batch, on [0, 1] images."""
    return (10 * torch.log10(1.0 / ((a - b) ** 2).flatten(1).mean(1))).tolist()


def random_mask(h, w, fraction, seed):
    """reddiff's `patterns::random_mask`: SplitMix64 keyed by the task seed, one uniform per pixel in row order."""
    state = (seed ^ 0x5DEECE66D1CE4E5B) & MASK64
    out = np.ones(h * w, dtype=np.float32)
    for i in range(h * w):
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        if (z >> 11) / float(1 << 53) < fraction:
            out[i] = 0.0
    return torch.from_numpy(out).view(1, 1, h, w).expand(1, 3, h, w).clone()


def task_mask(task, h, w, seed):
    if task == "inpaint-box":
        m = torch.ones(1, 3, h, w)
        m[:, :, h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = 0
        return m
    if task == "inpaint-random":
        return random_mask(h, w, 0.7, seed)
    raise SystemExit(f"task {task}: only inpaint-box and inpaint-random are cross-checked")


class Denoiser(torch.nn.Module):
    """guided-diffusion eps model as deepinv's D(x, sigma) on [0, 1] images (DiffUNet's conventions)."""

    def __init__(self, model, clip=True):
        super().__init__()
        self.model = model
        self.clip = clip
        betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
        ab = torch.from_numpy(np.cumprod(1 - betas)).float()
        self.sqrt_ab, self.sqrt_1mab = ab.sqrt(), (1 - ab).sqrt()

    def forward(self, x, sigma):
        sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1)
        sigma = sigma.expand(x.shape[0]) if sigma.numel() == 1 else sigma
        a = 1 / (1 + 4 * sigma**2)
        xs = a.sqrt().view(-1, 1, 1, 1) * (2 * x - 1)
        level = 2 * sigma * a.sqrt()
        t = (self.sqrt_1mab.view(1, -1) - level.view(-1, 1)).abs().argmin(dim=1)
        with torch.no_grad():
            eps = self.model(xs, t)[:, :3]
        x0 = (xs - self.sqrt_1mab[t].view(-1, 1, 1, 1) * eps) / self.sqrt_ab[t].view(-1, 1, 1, 1)
        if self.clip:
            x0 = x0.clamp(-1, 1)
        return (x0 + 1) / 2


@contextlib.contextmanager
def paper_noise():
    """deepinv's DDRM draws its fresh noise as std * torch.randn_like(.) / sqrt(2); inside this block
    randn_like is scaled by sqrt(2), giving the authors' noise (the denoiser draws nothing)."""
    orig = torch.randn_like
    torch.randn_like = lambda *a, **k: orig(*a, **k) * math.sqrt(2.0)
    try:
        yield
    finally:
        torch.randn_like = orig


def reddiff_run(task, seed, args, tmp):
    out = os.path.join(tmp, f"{task}-{seed}.csv")
    subprocess.run([os.path.join(ROOT, "target/release/reddiff"), "eval", "--paper-defaults", "--task", task, "--method", "ddrm",
                    "--seed", str(seed), "--images", args.images, "--limit", str(args.limit), "--batch", str(args.batch),
                    "--out", out], check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {r["image"]: r for r in csv.DictReader(open(out))}


def mean_se(v):
    v = np.asarray(v, dtype=np.float64)
    return v.mean(), (v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan"))


def main():
    import deepinv as dinv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="assets/samples", help="folder of held-out PNGs (relative to the repository root)")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=3, help="independent runs of each sampler (the spread is sampling noise)")
    ap.add_argument("--tasks", default="inpaint-box", help="comma-separated: inpaint-box, inpaint-random")
    ap.add_argument("--batch", type=int, default=8, help="images per reddiff batch")
    args = ap.parse_args()
    folder = os.path.join(ROOT, args.images)
    names = sorted(f for f in os.listdir(folder) if f.endswith(".png"))[:args.limit]
    x = torch.stack([load_rgb(os.path.join(folder, n)) for n in names])
    _, h, w = x.shape[1:]
    _, _, model = rm.load_model(os.path.join(ROOT, "models/emoji32"), torch.float32)
    model = model.eval()
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    ab = np.cumprod(1 - betas)
    sigmas = np.array([float(np.sqrt(1 - ab[t]) / np.sqrt(ab[t]) / 2) for t in range(950, -1, -50)])
    variants = [("deepinv", Denoiser(model, clip=True), contextlib.nullcontext),
                ("deepinv, paper noise", Denoiser(model, clip=False), paper_noise)]
    print(f"{len(names)} images from {args.images}, {args.seeds} seeds, DDRM 20 steps, eta 0.85, eta_b 1, noiseless")
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            runs = {name: [] for name, _, _ in variants}
            runs["reddiff"] = []
            pinv_gap = 0.0
            for seed in range(args.seeds):
                mask = task_mask(task, h, w, seed)
                physics = dinv.physics.Inpainting(img_size=(3, h, w), mask=mask, noise_model=dinv.physics.GaussianNoise(sigma=0.0))
                y = physics(x)
                # reddiff's pseudo-inverse keeps the measured pixels and sets the rest to 0 in [-1, 1].
                pinv = psnr(mask * x + (1 - mask) * 0.5, x)
                ours = reddiff_run(task, seed, args, tmp)
                pinv_gap = max(pinv_gap, max(abs(float(ours[n]["psnr_pinv"]) - p) for n, p in zip(names, pinv)))
                runs["reddiff"].append([float(ours[n]["psnr"]) for n in names])
                for i, (name, den, ctx) in enumerate(variants):
                    sampler = dinv.sampling.DDRM(denoiser=den, sigmas=sigmas, eta=0.85, etab=1.0)
                    with ctx():
                        xhat = sampler(y, physics, seed=1000 * (seed + 1) + i)
                    runs[name].append(psnr(xhat.clamp(0, 1), x))
            print(f"\n{task} (same y: the pseudo-inverse's PSNR agrees with reddiff's within {pinv_gap:.4f} dB on every image)")
            ref = np.asarray(runs["reddiff"])
            for name, r in runs.items():
                r = np.asarray(r)
                per_run = " ".join(f"{v:.2f}" for v in r.mean(1))
                line = f"  {name:<22} mean PSNR {r.mean():.2f} dB (runs {per_run})"
                if name != "reddiff":
                    d, se = mean_se((r - ref).mean(0))
                    line += f"; minus reddiff, per image over runs: {d:+.2f} ± {se:.2f} dB (standard error)"
                print(line)


if __name__ == "__main__":
    main()
