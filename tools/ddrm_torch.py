#!/usr/bin/env python3
"""DDRM (Kawar, Elad, Ermon, Song, "Denoising Diffusion Restoration Models", NeurIPS 2022) in float64
PyTorch, written from the authors' loop (bahjat-kawar/ddrm, functions/denoising.py,
efficient_generalized_steps): the trajectory reference for reddiff's `--method ddrm`.

Independent of reddiff's SVD code: each operator is built here as a dense matrix on one channel plane
(inpainting, block-average SR) or on the three channels of a pixel (colorization), and decomposed with
torch.linalg.svd. reddiff's own keyed noise (from `cargo run --example export_noise`) is replayed in image
space and rotated into this basis (the result does not depend on the basis chosen), with the small ADM fixture
tests/fixtures/adm_plain_newattn as the prior:

    python tools/ddrm_torch.py [--steps 10] [--out tests/fixtures/ddrm/io.safetensors]

With sigma_t = sqrt(1 - abar_t) / sqrt(abar_t), sigma_0 = 2 sigma_y, spectral coordinates Vᵀ(x / sqrt(abar)):
  x_T   = V(Σ⁻¹Uᵀy + sqrt(σ_T² − σ₀²/s²) z) / σ_T where s σ_T > σ₀, V(σ_T z) / σ_T elsewhere
  t     = (steps − 1) skip, ..., skip, 0 (skip = 1000 // steps), next = ..., 0, −1 (abar = 1)
  x0    = (x − sqrt(1 − abar_t) ε(x, t)) / sqrt(abar_t)
  s = 0:          v = Vᵀx0 + sqrt(σ'² − (η σ')²) Vᵀε + η σ' z
  s σ' < σ₀:      v = Vᵀx0 + sqrt(σ'² − (η σ')²) (Uᵀy − s Vᵀx0) / σ₀ + η σ' z
  s σ' > σ₀:      v = η_b Σ⁻¹Uᵀy + (1 − η_b) Vᵀx0 + sqrt(σ'² − σ₀² η_b² / s²) z
  x     = sqrt(abar_next) V v          (η = 0.85, η_b = 1)
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Z0_OFFSET = 2**64 - 4  # reddiff's counter for DDRM's starting noise (u64::MAX - 3)


def alphas_cumprod(T=1000):
    betas = np.linspace(1e-4, 0.02, T, dtype=np.float64)
    return np.cumprod(1.0 - betas)


class Dense:
    """H as a dense matrix on blocks of D values: the flattened channel planes (per_plane) or whole images."""

    def __init__(self, H, per_plane):
        self.H, self.per_plane = H, per_plane
        U, S, Vh = torch.linalg.svd(H, full_matrices=True)
        self.U, self.V = U, Vh.T
        self.dy, self.d = H.shape
        self.s = torch.zeros(self.d, dtype=torch.float64)
        self.s[:S.numel()] = torch.where(S > 1e-10 * S.max(), S, torch.zeros_like(S))

    def forward(self, x):
        n, c, h, w = x.shape
        flat = x.reshape(n * c, h * w) if self.per_plane else x.reshape(n, -1)
        out = flat @ self.H.T
        if self.per_plane:
            side = int(round(np.sqrt(self.dy)))
            return out.reshape(n, c, side, side)
        return out.reshape(n, 1, h, w)

    def vt(self, x):
        return x.reshape(-1, self.d) @ self.V

    def v(self, z, shape):
        return (z @ self.V.T).reshape(shape)

    def ut(self, y):
        out = torch.zeros(y.numel() // self.dy, self.d, dtype=torch.float64)
        out[:, :self.dy] = y.reshape(-1, self.dy) @ self.U
        return out


def ddrm(model_fn, op, y, shape, z0, zs, steps, sigma_y, eta=0.85, eta_b=1.0):
    ab = alphas_cumprod()
    skip = 1000 // steps
    seq = list(range(0, 1000, skip))[:steps]
    nxt = [-1] + seq[:-1]
    abar = lambda t: 1.0 if t < 0 else float(ab[t])  # noqa: E731
    sig = lambda a: np.sqrt(1 - a) / np.sqrt(a)  # noqa: E731
    s = op.s.view(1, -1)
    sigma0 = 2 * sigma_y
    uty = op.ut(y)
    ybar = torch.where(s > 0, uty / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(uty))
    sT = sig(abar(seq[-1]))
    large = s * sT > sigma0
    inv = torch.where(large, sigma0 / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(s))
    init = torch.where(large, ybar, torch.zeros_like(ybar)) + (sT**2 - inv**2).clamp_min(0).sqrt() * op.vt(z0)
    x = op.v(init / sT, shape)
    for k, (i, j) in enumerate(zip(reversed(seq), reversed(nxt))):
        at, an = abar(i), abar(j)
        e = model_fn(x, i)
        x0 = (x - e * np.sqrt(1 - at)) / np.sqrt(at)
        sn = sig(an)
        vx0, vet, z = op.vt(x0), op.vt(e), op.vt(zs[k])
        before = (s * sn > sigma0) & (s > 0)
        after = (s * sn < sigma0) & (s > 0)
        sc = sn * eta
        out = vx0 + np.sqrt(sn**2 - sc**2) * vet + sc * z
        if sigma0 > 0:
            out = torch.where(after, vx0 + np.sqrt(sn**2 - sc**2) * (uty - s * vx0) / sigma0 + sc * z, out)
        safe_s = torch.where(s > 0, s, torch.ones_like(s))
        diff_b = (sn**2 - sigma0**2 / safe_s**2 * eta_b**2).clamp_min(0).sqrt()
        out = torch.where(before, ybar * eta_b + (1 - eta_b) * vx0 + diff_b * z, out)
        x = np.sqrt(an) * op.v(out, shape)
    return x


def block_average_1d(n, f):
    r = torch.zeros(n // f, n, dtype=torch.float64)
    for i in range(n // f):
        r[i, i * f:(i + 1) * f] = 1.0 / f
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/fixtures/ddrm/io.safetensors"))
    args = ap.parse_args()
    kind, cfg, model = rm.load_model(os.path.join(ROOT, "tests/fixtures/adm_plain_newattn"), torch.float64)
    shape = [2, 3, 16, 16]
    keys = [7, 11]
    noise_file = os.path.join(ROOT, "target/ddrm-noise.safetensors")
    offsets = list(range(args.steps)) + [Z0_OFFSET]
    subprocess.run(["cargo", "run", "--quiet", "--release", "--example", "export_noise", "--", "--shape", ",".join(map(str, shape)),
                    "--seed", str(args.seed), "--keys", ",".join(map(str, keys)), "--offsets", ",".join(map(str, offsets)),
                    "--out", noise_file], check=True, cwd=ROOT)
    noise = load_file(noise_file)
    z0 = noise[f"noise_{Z0_OFFSET}"].double()
    zs = [noise[f"noise_{i}"].double() for i in range(args.steps)]
    gen = torch.Generator().manual_seed(1234)
    x = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1).clamp(-1, 1)

    def model_fn(v, t):
        with rm.exact_f64():
            return rm.forward(kind, model, v, torch.full((v.shape[0],), float(t), dtype=torch.float64))[:, :3]

    h = w = 16
    m = torch.ones(h, w, dtype=torch.float64)
    m[h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = 0.0
    r = block_average_1d(16, 2)
    ops = {
        "box": Dense(torch.diag(m.flatten()), True),
        "sr2": Dense(torch.kron(r, r), True),
        "color": Dense(torch.cat([torch.eye(h * w, dtype=torch.float64) / 3.0] * 3, dim=1), False),
    }
    tensors = {"x": x}
    for name, op, sigma_y in (("box", ops["box"], 0.0), ("sr2", ops["sr2"], 0.0), ("sr2_noisy", ops["sr2"], 0.05), ("color", ops["color"], 0.0)):
        y = op.forward(x)
        if sigma_y > 0:
            y = y + 2 * sigma_y * torch.randn(y.shape, generator=gen, dtype=torch.float64)
        out = ddrm(model_fn, op, y, shape, z0, zs, args.steps, sigma_y)
        tensors[f"y_{name}"], tensors[f"out_{name}"] = y, out
        print(f"{name}: sigma_y {sigma_y}, out range [{out.min():.3f}, {out.max():.3f}], |out - x| rms {((out - x)**2).mean().sqrt():.3f}")
    tensors.update({f"z_{i}": z for i, z in enumerate(zs)})
    tensors["z0"] = z0
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    save_file({k: v.to(torch.float32).contiguous() for k, v in tensors.items()}, args.out,
              metadata={"steps": str(args.steps), "seed": str(args.seed), "keys": ",".join(map(str, keys)),
                        "model": "tests/fixtures/adm_plain_newattn", "sigma_y_sr2_noisy": "0.05"})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
