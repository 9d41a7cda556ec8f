#!/usr/bin/env python3
"""Cross-check of reddiff's DDRM against an independent implementation, deepinv's `sampling.DDRM` (PyPI
deepinv 0.5), with the same prior (models/emoji32, run in PyTorch through guided-diffusion) and the same
measurement (centre-box inpainting, noiseless) on held-out images; prints both PSNRs per image and the means.

    /work/venv/bin/python tools/deepinv_crosscheck.py [--images assets/samples] [--limit 8]

deepinv's DDRM calls a denoiser D(x, sigma) on [0, 1] images; the prior is wrapped the way deepinv's own
`DiffUNet.forward_denoise` wraps guided-diffusion models (x -> sqrt(a)(2x - 1) with a = 1 / (1 + 4 sigma^2),
the nearest timestep to sqrt(1 - abar) = 2 sigma sqrt(a), x0 = (x - sqrt(1 - abar) eps) / sqrt(abar), clipped).
Its noise levels are DDRM's 20 timesteps (950, 900, ..., 0) as sigma = sqrt(1 - abar) / sqrt(abar) / 2 ([0, 1]
units), eta 0.85, eta_b 1, as reddiff runs. The two samplers differ in their noise draws (and deepinv scales
its fresh noise by 1/sqrt(2)), so individual images differ; the means are what is compared.
reddiff's side: `target/release/reddiff eval --method ddrm --task inpaint-box` on the same images.
"""
import argparse
import csv
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


def load_rgb(path):
    im = Image.open(path).convert("RGBA")
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    rgb = np.asarray(Image.alpha_composite(white, im).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb).permute(2, 0, 1)


def psnr(a, b):
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


class Denoiser(torch.nn.Module):
    """guided-diffusion eps model as deepinv's D(x, sigma) on [0, 1] images (DiffUNet's conventions)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
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
        return (x0.clamp(-1, 1) + 1) / 2


def main():
    import deepinv as dinv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default=os.path.join(ROOT, "assets/samples"))
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=3, help="independent runs of each sampler (the spread is sampling noise)")
    args = ap.parse_args()
    names = sorted(f for f in os.listdir(args.images) if f.endswith(".png"))[:args.limit]
    _, _, model = rm.load_model(os.path.join(ROOT, "models/emoji32"), torch.float32)
    den = Denoiser(model.eval())
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    ab = np.cumprod(1 - betas)
    sigmas = [float(np.sqrt(1 - ab[t]) / np.sqrt(ab[t]) / 2) for t in range(950, -1, -50)]
    mask = torch.ones(1, 3, 32, 32)
    mask[:, :, 8:24, 8:24] = 0
    physics = dinv.physics.Inpainting(img_size=(3, 32, 32), mask=mask, noise_model=dinv.physics.GaussianNoise(sigma=0.0))
    sampler = dinv.sampling.DDRM(denoiser=den, sigmas=np.array(sigmas), eta=0.85, etab=1.0)
    ours = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            out = os.path.join(tmp, f"ddrm{seed}.csv")
            subprocess.run([os.path.join(ROOT, "target/release/reddiff"), "eval", "--task", "inpaint-box", "--method", "ddrm", "--seed", str(seed),
                            "--images", args.images, "--limit", str(args.limit), "--out", out], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ours.append({r["image"]: float(r["psnr"]) for r in csv.DictReader(open(out))})
    theirs = []
    ys = []
    for seed in range(args.seeds):
        run = {}
        for i, name in enumerate(names):
            x = load_rgb(os.path.join(args.images, name)).unsqueeze(0)
            y = physics(x)
            if seed == 0:
                ys.append(psnr(y, x))
            run[name] = psnr(sampler(y, physics, seed=1000 * (seed + 1) + i).clamp(0, 1), x)
        theirs.append(run)
    for i, name in enumerate(names):
        a = [r[name] for r in theirs]
        b = [r[name] for r in ours]
        print(f"{name}: y {ys[i]:.2f} dB | deepinv DDRM {' '.join(f'{v:.2f}' for v in a)} | reddiff DDRM {' '.join(f'{v:.2f}' for v in b)}")
    mt = [np.mean(list(r.values())) for r in theirs]
    mo = [np.mean([r[n] for n in names]) for r in ours]
    print(f"means over {len(names)} images, per run: deepinv DDRM {' '.join(f'{v:.2f}' for v in mt)} dB (mean {np.mean(mt):.2f}); "
          f"reddiff DDRM {' '.join(f'{v:.2f}' for v in mo)} dB (mean {np.mean(mo):.2f}); y {np.mean(ys):.2f} dB")


if __name__ == "__main__":
    main()
