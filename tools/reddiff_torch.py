#!/usr/bin/env python3
"""RED-diff (Mardani et al., "A Variational Perspective on Solving Inverse Problems with Diffusion Models") in
PyTorch on the CPU: the reference for reddiff's Rust/WGSL loop. Follows NVlabs/RED-diff `algos/reddiff.py`
(sigma_x0 = 0, obs_weight = 1, no awd).

    python tools/reddiff_torch.py --model models/emoji32 --task inpaint-box --images assets/samples \
        --steps 100 --seed 0 [--limit K] [--out results.csv] [--lr 0.5] [--lam 0.25] [--sigma-y 0] [--threads 1]

Images in [-1, 1], NCHW, batch 1. Per image (index i in sorted file order, generator seeded with seed + i):
  y  = H(x) + 2 sigma_y n                      (n ~ N(0, I), drawn first; sigma_y in [0,1] pixel units)
  mu = H+(y);  Adam(mu; lr, betas (0.9, 0.99), eps 1e-8, no weight decay)
  ts = list(range(0, 1000, 1000 // steps))[:steps][::-1]            (high -> low)
  for t in ts:
      eps_n  = randn;  x_t = sqrt(ab_t) mu + sqrt(1 - ab_t) eps_n
      e_hat  = model(x_t, t)[:, :3]                                  (no grad)
      loss   = lam sqrt(1 - ab_t)/sqrt(ab_t) * ((e_hat - eps_n).detach() * mu).mean()
               + ((y - H(mu))**2).mean() / 2
      backward; Adam step
  output mu (clamped to [-1, 1] only for saving / metrics).
ab_t: linear betas 1e-4..0.02 over 1000 steps, cumprod in float64, then float32.

Operators (the Rust side implements the same):
  inpaint-box   m = 0 on the centre box rows/cols [H/4, H/4 + H/2) (all channels), 1 elsewhere; H(x) = m x;
                H+(y) = y.
  sr4           4x4 block average (y is [C, H/4, W/4]); H+(y) = nearest-neighbour x4 upsampling.
  deblur-gauss  separable Gaussian, size 9, sigma 2 px, normalised, "same" size with zero padding; H+(y) = y.
Metrics on x01 = clamp((x + 1)/2, 0, 1): PSNR with data_range 1 over all pixels and channels; SSIM =
skimage structural_similarity(channel_axis=-1, data_range=1, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False) on HWC float64.
"""
import argparse
import csv
import glob
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reddiff_models as rm  # noqa: E402

TASKS = ["inpaint-box", "sr4", "deblur-gauss"]
T_DIFF = 1000


# ------------------------------------------------------------------------------------------------ schedule

def alphas_cumprod(T=T_DIFF, beta_start=1e-4, beta_end=0.02):
    betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
    return torch.from_numpy(np.cumprod(1.0 - betas)).to(torch.float32)


def timesteps(steps, T=T_DIFF):
    skip = T // steps
    return list(range(0, T, skip))[:steps][::-1]


# ------------------------------------------------------------------------------------------------ operators

def box_mask(h, w, c=3):
    m = torch.ones(1, c, h, w)
    m[:, :, h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = 0.0
    return m


def gauss_kernel1d(size=9, sigma=2.0):
    d = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-d * d / (2 * sigma * sigma))
    return (k / k.sum()).to(torch.float32)


class Operator:
    def __init__(self, task, shape):
        self.task = task
        n, c, h, w = shape
        self.c = c
        if task == "inpaint-box":
            self.mask = box_mask(h, w, c)
        elif task == "sr4":
            assert h % 4 == 0 and w % 4 == 0
        elif task == "deblur-gauss":
            k1 = gauss_kernel1d()
            self.k1 = k1
            self.k2 = (k1[:, None] * k1[None, :]).expand(c, 1, 9, 9).contiguous()
        else:
            raise ValueError(task)

    def H(self, x):
        if self.task == "inpaint-box":
            return x * self.mask
        if self.task == "sr4":
            return F.avg_pool2d(x, 4)
        return F.conv2d(x, self.k2, padding=4, groups=self.c)

    def H_pinv(self, y):
        if self.task == "inpaint-box":
            return y.clone()
        if self.task == "sr4":
            return F.interpolate(y, scale_factor=4, mode="nearest")
        return y.clone()


# ------------------------------------------------------------------------------------------------ io + metrics

def load_image(path, size=0):
    from PIL import Image
    im = Image.open(path).convert("RGB")
    if size and im.size != (size, size):
        im = im.resize((size, size), Image.BICUBIC)
    a = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1)[None] * 2 - 1


def to01_hwc(x):
    """[1,C,H,W] in [-1,1] -> HWC float64 in [0,1] (clamped)."""
    return ((x[0].detach().double().permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy()


def save_png(x, path):
    from PIL import Image
    a = np.round(to01_hwc(x) * 255).astype(np.uint8)
    Image.fromarray(a).save(path)


def psnr(a, b):
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(a, b):
    from skimage.metrics import structural_similarity
    return float(structural_similarity(a, b, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


# ------------------------------------------------------------------------------------------------ RED-diff

def red_diff(model_fn, op, y, ab, steps, lr, lam, gen, trace=None, noise=None):
    """`noise`: optional list of the steps' ε (e.g. reddiff's own draws); otherwise drawn from `gen`."""
    mu = op.H_pinv(y).detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([mu], lr=lr, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0)
    for i, t in enumerate(timesteps(steps)):
        a_t = ab[t]
        eps_n = noise[i] if noise is not None else torch.randn(mu.shape, generator=gen)
        with torch.no_grad():
            x_t = a_t.sqrt() * mu + (1 - a_t).sqrt() * eps_n
            e_hat = model_fn(x_t, torch.full((mu.shape[0],), t, dtype=torch.int64))[:, :3]
        loss_obs = ((y - op.H(mu)) ** 2).mean() / 2
        loss_noise = ((e_hat - eps_n).detach() * mu).mean()
        w_t = lam * (1 - a_t).sqrt() / a_t.sqrt()
        loss = w_t * loss_noise + loss_obs
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if trace is not None:
            trace.append((t, float(loss_obs), float(loss_noise)))
    return mu.detach()


def default_lr(task):
    return 0.25 if task == "inpaint-box" else 0.5


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/emoji32")
    ap.add_argument("--task", required=True, choices=TASKS)
    ap.add_argument("--images", default="assets/samples", help="directory of PNGs (sorted) or one PNG")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="first K images only (0 = all)")
    ap.add_argument("--lr", type=float, default=None, help="Adam lr (default 0.5; 0.25 for inpaint-box)")
    ap.add_argument("--lam", type=float, default=0.25, help="lambda (grad_term_weight)")
    ap.add_argument("--sigma-y", type=float, default=0.0, help="measurement noise std in [0,1] pixel units")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="where the network runs (cpu or cuda); the rest of the loop "
                    "stays on the CPU")
    ap.add_argument("--resize", type=int, default=0, help="resize images to N x N first (0 = as stored)")
    ap.add_argument("--out", default=None, help="CSV of per-image results")
    ap.add_argument("--save-dir", default=None, help="write <name>_{gt,pinv,reddiff}.png here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lr = default_lr(args.task) if args.lr is None else args.lr

    if os.path.isdir(args.images):
        files = sorted(glob.glob(os.path.join(args.images, "*.png")))
    else:
        files = [args.images]
    if args.limit:
        files = files[:args.limit]
    kind, cfg, model = rm.load_model(args.model, torch.float32)
    model = model.to(args.device)
    ab = alphas_cumprod()

    def model_fn(x, t):
        return rm.forward(kind, model, x.to(args.device), t.to(args.device)).cpu()

    if args.save_dir:
        os.makedirs(args.save_dir, exist_ok=True)
    print(f"task {args.task}  steps {args.steps}  lr {lr}  lam {args.lam}  sigma_y {args.sigma_y}  "
          f"seed {args.seed}  threads {args.threads}  images {len(files)}", flush=True)
    rows = []
    loop_s = 0.0
    loop_it = 0
    for i, f in enumerate(files):
        name = os.path.splitext(os.path.basename(f))[0]
        x = load_image(f, args.resize)
        op = Operator(args.task, x.shape)
        gen = torch.Generator().manual_seed(args.seed + i)
        hx = op.H(x)
        y = hx + 2 * args.sigma_y * torch.randn(hx.shape, generator=gen)
        pinv = op.H_pinv(y)
        t0 = time.perf_counter()
        mu = red_diff(model_fn, op, y, ab, args.steps, lr, args.lam, gen)
        dt = time.perf_counter() - t0
        loop_s += dt
        loop_it += len(timesteps(args.steps))
        gt = to01_hwc(x)
        r = dict(image=name, psnr_pinv=psnr(gt, to01_hwc(pinv)), ssim_pinv=ssim(gt, to01_hwc(pinv)),
                 psnr_reddiff=psnr(gt, to01_hwc(mu)), ssim_reddiff=ssim(gt, to01_hwc(mu)), seconds=dt)
        rows.append(r)
        print(f"{name[:48]:48s}  H+y {r['psnr_pinv']:6.2f} dB {r['ssim_pinv']:.4f}   "
              f"RED-diff {r['psnr_reddiff']:6.2f} dB {r['ssim_reddiff']:.4f}   ({dt:.1f} s)", flush=True)
        if args.save_dir:
            save_png(x, os.path.join(args.save_dir, f"{name}_gt.png"))
            save_png(pinv, os.path.join(args.save_dir, f"{name}_pinv.png"))
            save_png(mu, os.path.join(args.save_dir, f"{name}_reddiff.png"))

    def mean(k):
        return float(np.mean([r[k] for r in rows]))
    margins = [r["psnr_reddiff"] - r["psnr_pinv"] for r in rows]
    print(f"MEAN  H+y {mean('psnr_pinv'):.2f} dB SSIM {mean('ssim_pinv'):.4f}   "
          f"RED-diff {mean('psnr_reddiff'):.2f} dB SSIM {mean('ssim_reddiff'):.4f}   "
          f"PSNR margin mean {np.mean(margins):+.2f} min {min(margins):+.2f} dB")
    print(f"loop: {loop_it / loop_s:.4g} it/s ({args.threads} thread(s), batch 1, incl. forward + backward + Adam)")
    if args.out:
        with open(args.out, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
