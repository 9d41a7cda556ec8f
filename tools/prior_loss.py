#!/usr/bin/env python3
"""Held-out denoising loss of one or more diffusion priors, computed identically for each so they compare fairly.

For every test image x0 (uint8 [N, H, W, 3] .npy, mapped to [-1, 1], no flips) and each of --n-t evenly spaced
timesteps (the midpoints of equal bands of [0, 1000): 25, 75, ..., 975 for 20), x_t = sqrt(a_t) x0 +
sqrt(1 - a_t) eps with the linear-beta schedule (1e-4..0.02, T = 1000) that training and reddiff use; the loss is
the MSE between eps and the network's epsilon prediction (first 3 output channels; eval mode, so no dropout).
eps is drawn once per timestep from a CPU generator seeded with (--seed, timestep index), so every model, batch
size and device sees exactly the same noise for each (image, t). Weights are upcast to f32 (TF32 off on CUDA).

Prints, per model: the mean over all (image, t) pairs, the mean per band of timesteps and per timestep; with
two or more models also the difference to the first one with a paired standard error over images.

    python tools/prior_loss.py models/emoji32 runs/ft/emoji32 --data .data/test.npy
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reddiff_models  # noqa: E402


def alphas_cumprod():
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


def eval_timesteps(n_t):
    return [int((k + 0.5) * 1000 / n_t) for k in range(n_t)]


@torch.no_grad()
def per_image_losses(model_dir, x0, ts, seed, batch, device):
    """[len(ts), N] f64 array: MSE over pixels of the eps prediction for each (timestep, image)."""
    kind, cfg, model = reddiff_models.load_model(model_dir, torch.float32)
    size = cfg.get("image_size", cfg.get("sample_size"))
    if size != x0.shape[-1]:
        raise SystemExit(f"{model_dir}: model image size {size} but the data is {x0.shape[-1]}x{x0.shape[-2]}")
    model = model.to(device).eval()
    ac = alphas_cumprod()
    out = np.zeros((len(ts), len(x0)))
    for k, t in enumerate(ts):
        g = torch.Generator(device="cpu").manual_seed(seed * 100003 + k)
        eps = torch.randn(x0.shape, generator=g, dtype=torch.float32)
        a = ac[t]
        xt = (a.sqrt() * x0.double() + (1 - a).sqrt() * eps.double()).float()
        for i in range(0, len(x0), batch):
            xb = xt[i:i + batch].to(device)
            tb = torch.full((len(xb),), t, device=device, dtype=torch.long)
            pred = reddiff_models.forward(kind, model, xb, tb)[:, :3].float()
            err = (pred - eps[i:i + batch].to(device)).pow(2).mean(dim=(1, 2, 3))
            out[k, i:i + len(xb)] = err.double().cpu().numpy()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="reddiff model directories (config.json + weights)")
    ap.add_argument("--data", default=".data/test.npy", help="uint8 [N, H, W, 3] images (the held-out split)")
    ap.add_argument("--n-t", type=int, default=20, help="number of evenly spaced timesteps")
    ap.add_argument("--bands", type=int, default=5, help="timestep bands in the summary")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave default)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    data = np.load(args.data)
    if args.limit:
        data = data[: args.limit]
    x0 = torch.from_numpy(data).permute(0, 3, 1, 2).float() / 127.5 - 1
    ts = eval_timesteps(args.n_t)
    print(f"{len(x0)} images from {args.data}, {len(ts)} timesteps {ts[0]}..{ts[-1]}, seed {args.seed}, {device}")

    results, per = {}, {}
    for m in args.models:
        t0 = time.time()
        per[m] = per_image_losses(m, x0, ts, args.seed, args.batch, device)
        if device == "cuda":
            torch.cuda.synchronize()
        print(f"{m}: mean {per[m].mean():.5f} ({time.time() - t0:.1f} s)", flush=True)

    names = [os.path.basename(os.path.normpath(m)) for m in args.models]
    if len(set(names)) < len(names):
        names = [os.path.normpath(m) for m in args.models]
    width = max(12, *(len(n) + 2 for n in names))
    print("\n" + "".ljust(16) + "".join(n.rjust(width) for n in names))

    def row(label, sel):
        print(label.ljust(16) + "".join(f"{per[m][sel].mean():.5f}".rjust(width) for m in args.models))

    row("all t", slice(None))
    nb = max(1, min(args.bands, len(ts)))
    edges = [round(b * len(ts) / nb) for b in range(nb + 1)]
    band_rows = []
    for b in range(nb):
        sel = slice(edges[b], edges[b + 1])
        lo, hi = b * 1000 // nb, (b + 1) * 1000 // nb - 1
        row(f"t {lo}-{hi}", sel)
        band_rows.append(((lo, hi), sel))
    for k, t in enumerate(ts):
        row(f"  t = {t}", slice(k, k + 1))
    for m in args.models[1:]:
        d = (per[m] - per[args.models[0]]).mean(axis=0)  # per image, averaged over t
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        print(f"{m} - {args.models[0]}: {d.mean():+.3e} +- {se:.1e} (1 s.e. over images, paired); "
              f"lower on {(d < 0).mean() * 100:.0f} % of images")

    if args.json:
        for m in args.models:
            results[m] = {"mean": float(per[m].mean()),
                          "per_t": {str(t): float(per[m][k].mean()) for k, t in enumerate(ts)},
                          "bands": {f"{lo}-{hi}": float(per[m][sel].mean()) for (lo, hi), sel in band_rows}}
        with open(args.json, "w") as f:
            json.dump({"data": args.data, "n_images": len(x0), "timesteps": ts, "seed": args.seed,
                       "device": device, "models": results}, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
