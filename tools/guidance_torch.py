#!/usr/bin/env python3
"""DPS and PiGDM in float64 PyTorch with autograd through the network: the trajectory references for
reddiff's `--method dps` and `--method pgdm`, written from the authors' code:

  DPS   (Chung et al., ICLR 2023; DPS2022/diffusion-posterior-sampling: DDPM sampler, PosteriorSampling,
        clip_denoised, learned_range variance or guided-diffusion's fixed_large, space_timesteps):
        x_T ~ N(0, I); for respaced t high to low:
          x0 = clip((x - sqrt(1 - abar) eps(x)) / sqrt(abar));  x' = c0 x0 + ct x + sigma z (no z at the end)
          x = x' - zeta * d/dx sum_k ||y_k - H x0_k||
  PiGDM (Song et al., ICLR 2023, as NVlabs/RED-diff algos/pgdm.py runs it: awd, eta 0, weight 1):
        x = sqrt(abar_T) H+y + sqrt(1 - abar_T) z0; for t = (n-1) skip .. 0, s the next (abar_s = 1 after 0):
          x0 = (x - sqrt(1 - abar_t) eps(x)) / sqrt(abar_t);  g = d/dx <sg(H+y - H+H x0), x0>
          x = sqrt(abar_s) x0 + sqrt(1 - abar_s) eps + sqrt(abar_s) sqrt(abar_t) g

reddiff's own keyed noise (`cargo run --example export_noise`) is replayed; the priors are the small fixture
models (adm_plain_newattn, 16x16: box inpainting and x2 SR; adm_ss_updown, 32x32 with learned sigma and class
labels: x2 SR, DPS only):

    python tools/guidance_torch.py [--steps 10] [--out tests/fixtures/guidance/io.safetensors]
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reddiff_models as rm  # noqa: E402
from diffpir_torch import BlockAverage, BoxInpaint, alphas_cumprod  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DPS_Z0 = 2**64 - 5   # reddiff's counters: u64::MAX - 4 (DPS start), u64::MAX - 5 (PiGDM start)
PGDM_Z0 = 2**64 - 6


def space_timesteps(T, n):
    if n == 1:
        return [0]
    stride = (T - 1) / (n - 1)
    return sorted({round(i * stride) for i in range(n)})


def dps(model_fn, op, y, zT, zs, steps, zeta):
    ab = alphas_cumprod()
    kept = space_timesteps(1000, steps)
    x = zT.clone()
    for k, i in enumerate(reversed(range(len(kept)))):
        t = kept[i]
        a = ab[t]
        a_prev = ab[kept[i - 1]] if i > 0 else 1.0
        beta = 1 - a / a_prev
        x = x.detach().requires_grad_(True)
        out = model_fn(x, t)
        eps = out[:, :3]
        x0 = ((x - np.sqrt(1 - a) * eps) / np.sqrt(a)).clamp(-1, 1)
        c0 = beta * np.sqrt(a_prev) / (1 - a)
        ct = (1 - a_prev) * np.sqrt(1 - beta) / (1 - a)
        sample = c0 * x0 + ct * x
        if i > 0:
            if out.shape[1] == 6:
                frac = (out[:, 3:6] + 1) / 2
                post = beta * (1 - a_prev) / (1 - a)
                sigma = torch.exp(0.5 * (frac * np.log(beta) + (1 - frac) * np.log(post)))
            else:
                sigma = np.sqrt(beta)
            sample = sample + sigma * zs[k]
        norm = (y - op.H(x0)).flatten(1).norm(dim=1).sum()
        (g,) = torch.autograd.grad(norm, x)
        x = (sample - zeta * g).detach()
    return x


def pgdm(model_fn, op, y, z0, steps):
    ab = alphas_cumprod()
    skip = 1000 // steps
    ts = list(range(0, 1000, skip))[:steps]
    nxt = [-1] + ts[:-1]
    abar = lambda t: 1.0 if t < 0 else float(ab[t])  # noqa: E731
    x = np.sqrt(abar(ts[-1])) * op.pinv(y) + np.sqrt(1 - abar(ts[-1])) * z0
    for t, s in zip(reversed(ts), reversed(nxt)):
        a, a_s = abar(t), abar(s)
        x = x.detach().requires_grad_(True)
        eps = model_fn(x, t)[:, :3]
        x0 = (x - np.sqrt(1 - a) * eps) / np.sqrt(a)
        mat = (op.pinv(y) - op.pinv(op.H(x0))).detach()
        (g,) = torch.autograd.grad((mat * x0).sum(), x)
        x = (np.sqrt(a_s) * x0 + np.sqrt(1 - a_s) * eps + np.sqrt(a_s) * np.sqrt(a) * g).detach()
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/fixtures/guidance/io.safetensors"))
    args = ap.parse_args()
    keys = [7, 11]
    tensors = {}
    gen = torch.Generator().manual_seed(4321)
    for fixture, size, label in (("adm_plain_newattn", 16, None), ("adm_ss_updown", 32, 3)):
        kind, _, model = rm.load_model(os.path.join(ROOT, "tests/fixtures", fixture), torch.float64)
        shape = [2, 3, size, size]
        noise_file = os.path.join(ROOT, f"target/guidance-noise-{size}.safetensors")
        offsets = list(range(args.steps)) + [DPS_Z0, PGDM_Z0]
        subprocess.run(["cargo", "run", "--quiet", "--release", "--example", "export_noise", "--", "--shape", ",".join(map(str, shape)),
                        "--seed", "0", "--keys", ",".join(map(str, keys)), "--offsets", ",".join(map(str, offsets)), "--out", noise_file],
                       check=True, cwd=ROOT)
        noise = {k: v.double() for k, v in load_file(noise_file).items()}
        zs = [noise[f"noise_{i}"] for i in range(args.steps)]
        x = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1)

        def model_fn(v, t):
            tt = torch.full((v.shape[0],), float(t), dtype=torch.float64)
            with rm.exact_f64():
                if kind == "adm" and label is not None:
                    return model(v, tt, y=torch.full((v.shape[0],), label, dtype=torch.int64))
                return model(v, tt)

        tensors[f"x_{fixture}"] = x
        for task, op in (("box", BoxInpaint(shape)), ("sr2", BlockAverage(2))):
            if fixture == "adm_ss_updown" and task == "box":
                # Chaotic with these random weights: the same loop with only the network in float32 ends
                # 9e-2 (relative) away from the float64 run, so it cannot check anything.
                continue
            y = op.H(x)
            tensors[f"y_{fixture}_{task}"] = y
            tensors[f"dps_{fixture}_{task}"] = dps(model_fn, op, y, noise[f"noise_{DPS_Z0}"], zs, args.steps, 0.5 if task == "box" else 0.3)
            if fixture == "adm_plain_newattn":
                tensors[f"pgdm_{fixture}_{task}"] = pgdm(model_fn, op, y, noise[f"noise_{PGDM_Z0}"], args.steps)
        for k in list(tensors):
            if k.startswith(("dps_", "pgdm_")) and fixture in k:
                print(f"{k}: range [{tensors[k].min():.3f}, {tensors[k].max():.3f}]")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, args.out,
              metadata={"steps": str(args.steps), "keys": ",".join(map(str, keys)), "seed": "0", "class_adm_ss_updown": "3"})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
