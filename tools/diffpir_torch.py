#!/usr/bin/env python3
"""DiffPIR (Zhu et al., "Denoising Diffusion Models for Plug-and-Play Image Restoration", CVPRW 2023) in
PyTorch, written from the authors' loop (yuanzhi-zhu/DiffPIR, main_ddpir_*.py: model_out_type pred_xstart,
eta 0, skip_type quad, sub_1_analytic): the reference for reddiff's `--method diffpir`.

Writes the trajectory-parity fixture tests/fixtures/diffpir/io.safetensors (DiffPIR, and RED-diff through
tools/reddiff_torch.py's loop): reddiff's own keyed noise (from
`cargo run --example export_noise`) is replayed here in float64, with the small ADM fixture
tests/fixtures/adm_plain_newattn as the prior, for box inpainting and x2 block-average super-resolution:

    python tools/diffpir_torch.py [--steps 11] [--out tests/fixtures/diffpir/io.safetensors]

Per image batch (σ = max(0.001, σ_y) = 0.001, λ = 1, ζ = 1 for inpainting and 0.1 for SR):
  t_i    = 999 - s_i, s_i = int(sqrt(linspace(0, 1000², N)))_i, s_{N-1} -= 1
  x      = sae·H⁺y + sqrt(1 - ᾱ_{t_0} - sae²(1 - ᾱ_{t_y})) z0,  sae = sqrt(ᾱ_{t_0}/ᾱ_{t_y}), t_y = argmin |σ̄_t - 2σ_y|
  for i < N-1:  x0 = clamp((x - sqrt(1-ᾱ) ε(x, t_i)) / sqrt(ᾱ), -1, 1)
                x0 = argmin ‖y - Hx‖² + ρ‖x - x0‖², ρ = λσ²ᾱ/(1-ᾱ)   (exact: float64 CG to convergence)
                ε̂ = (x - sqrt(ᾱ) x0) / sqrt(1-ᾱ);  x = sqrt(ᾱ_s) x0 + sqrt(1-ᾱ_s)(sqrt(1-ζ) ε̂ + sqrt(ζ) z_i)
  inpainting: finally x = m y + (1-m) x (the authors copy the known pixels).
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
import reddiff_torch as rt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Z0_OFFSET = 2**64 - 3  # reddiff's counter for the starting noise (u64::MAX - 2)


def alphas_cumprod(T=1000):
    betas = np.linspace(1e-4, 0.02, T, dtype=np.float64)
    return np.cumprod(1.0 - betas)


def timesteps(steps, T=1000):
    seq = [int(s) for s in np.sqrt(np.linspace(0, T**2, steps))]
    seq[-1] -= 1
    return [T - 1 - s for s in seq]


class BoxInpaint:
    def __init__(self, shape):
        n, c, h, w = shape
        self.m = torch.ones(1, c, h, w, dtype=torch.float64)
        self.m[:, :, h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = 0.0

    def H(self, x):
        return self.m * x

    def Ht(self, y):
        return self.m * y

    def pinv(self, y):
        return y.clone()


class BlockAverage:
    def __init__(self, f):
        self.f = f

    def H(self, x):
        return torch.nn.functional.avg_pool2d(x, self.f)

    def Ht(self, y):
        return torch.nn.functional.interpolate(y, scale_factor=self.f, mode="nearest") / self.f**2

    def pinv(self, y):
        return torch.nn.functional.interpolate(y, scale_factor=self.f, mode="nearest")


class RedDiffOp:
    """The H / H_pinv interface tools/reddiff_torch.py's loop expects."""

    def __init__(self, task, op):
        self.task, self.op = task, op

    def H(self, x):
        return self.op.H(x) if self.task != "inpaint-box" else self.op.m * x

    def H_pinv(self, y):
        return self.op.pinv(y)


def prox(op, y, x0, rho, iters=200):
    """argmin ‖y - Hx‖² + ρ‖x - x0‖², per image, by float64 conjugate gradients to convergence."""
    A = lambda v: op.Ht(op.H(v)) + rho * v  # noqa: E731
    b = op.Ht(y) + rho * x0
    x = x0.clone()
    r = b - A(x)
    p = r.clone()
    rr = (r * r).flatten(1).sum(1)
    for _ in range(iters):
        if rr.max() < 1e-28:
            break
        Ap = A(p)
        alpha = rr / (p * Ap).flatten(1).sum(1).clamp_min(1e-300)
        x = x + alpha.view(-1, 1, 1, 1) * p
        r = r - alpha.view(-1, 1, 1, 1) * Ap
        rr_new = (r * r).flatten(1).sum(1)
        p = r + (rr_new / rr.clamp_min(1e-300)).view(-1, 1, 1, 1) * p
        rr = rr_new
    return x


def diffpir(model_fn, op, y, z0, zs, steps, lam, zeta, sigma_y=0.0, keep=None):
    ab = alphas_cumprod()
    ts = timesteps(steps)
    sigma = max(0.001, sigma_y)
    reduced = np.sqrt((1 - ab) / ab)
    t_y = int(np.abs(reduced - 2 * sigma_y).argmin())
    sae = np.sqrt(ab[ts[0]] / ab[t_y])
    x = sae * op.pinv(y) + np.sqrt(max(0.0, (1 - ab[ts[0]]) - sae**2 * (1 - ab[t_y]))) * z0
    for i in range(len(ts) - 1):
        t, s = ts[i], ts[i + 1]
        a, a_s = ab[t], ab[s]
        e = model_fn(x, t)
        x0 = ((x - np.sqrt(1 - a) * e) / np.sqrt(a)).clamp(-1, 1)
        x0 = prox(op, y, x0, lam * sigma**2 * a / (1 - a))
        eps_hat = (x - np.sqrt(a) * x0) / np.sqrt(1 - a)
        x = np.sqrt(a_s) * x0 + np.sqrt(1 - a_s) * (np.sqrt(1 - zeta) * eps_hat + np.sqrt(zeta) * zs[i])
    if keep is not None:
        x = keep * y + (1 - keep) * x
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=11)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/fixtures/diffpir/io.safetensors"))
    args = ap.parse_args()
    model_dir = os.path.join(ROOT, "tests/fixtures/adm_plain_newattn")
    kind, cfg, model = rm.load_model(model_dir, torch.float64)
    shape = [2, 3, 16, 16]
    keys = [7, 11]
    noise_file = os.path.join(ROOT, "target/diffpir-noise.safetensors")
    # DiffPIR draws z_i at counter i; RED-diff draws step i's ε at counter 2i.
    offsets = sorted(set(range(args.steps - 1)) | {2 * i for i in range(args.steps - 1)}) + [Z0_OFFSET]
    subprocess.run(["cargo", "run", "--quiet", "--release", "--example", "export_noise", "--", "--shape", ",".join(map(str, shape)),
                    "--seed", str(args.seed), "--keys", ",".join(map(str, keys)), "--offsets", ",".join(map(str, offsets)),
                    "--out", noise_file], check=True, cwd=ROOT)
    noise = load_file(noise_file)
    z0 = noise[f"noise_{Z0_OFFSET}"].double()
    zs = [noise[f"noise_{i}"].double() for i in range(args.steps - 1)]
    gen = torch.Generator().manual_seed(1234)
    x = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1).clamp(-1, 1)

    def model_fn(v, t):
        with rm.exact_f64():
            return rm.forward(kind, model, v, torch.full((v.shape[0],), float(t), dtype=torch.float64))[:, :3]

    box = BoxInpaint(shape)
    y_box = box.H(x)
    out_box = diffpir(model_fn, box, y_box, z0, zs, args.steps, 1.0, 1.0, keep=box.m)
    sr = BlockAverage(2)
    y_sr = sr.H(x)
    out_sr = diffpir(model_fn, sr, y_sr, z0, zs, args.steps, 1.0, 0.1)
    # RED-diff, per image as the reference loop runs (batch 1), 10 steps, with reddiff's ε for each image.
    out_rd = {}
    for task, y_all in (("inpaint-box", y_box), ("sr2", y_sr)):
        outs = []
        for k in range(shape[0]):
            op = RedDiffOp(task, box if task == "inpaint-box" else sr)
            eps = [noise[f"noise_{2 * i}"][k:k + 1].double() for i in range(args.steps - 1)]
            mu = rt.red_diff(lambda v, t: model_fn(v, int(t[0])), op, y_all[k:k + 1], torch.from_numpy(alphas_cumprod()),
                             args.steps - 1, 0.25 if task == "inpaint-box" else 0.5, 0.25, None, noise=eps)
            outs.append(mu)
        out_rd[task] = torch.cat(outs)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    f32 = lambda t: t.to(torch.float32).contiguous()  # noqa: E731
    tensors = {"x": f32(x), "y_box": f32(y_box), "out_box": f32(out_box), "y_sr2": f32(y_sr), "out_sr2": f32(out_sr), "z0": f32(z0)}
    tensors.update({f"z_{i}": f32(z) for i, z in enumerate(zs)})
    tensors.update({"reddiff_box": f32(out_rd["inpaint-box"]), "reddiff_sr2": f32(out_rd["sr2"])})
    tensors.update({f"eps_{i}": f32(noise[f"noise_{2 * i}"]) for i in range(args.steps - 1)})
    save_file(tensors, args.out, metadata={"steps": str(args.steps), "seed": str(args.seed), "keys": ",".join(map(str, keys)),
                                           "model": "tests/fixtures/adm_plain_newattn"})
    print(f"wrote {args.out}: steps {args.steps}; box out range [{out_box.min():.3f}, {out_box.max():.3f}], sr2 [{out_sr.min():.3f}, {out_sr.max():.3f}]")


if __name__ == "__main__":
    main()
