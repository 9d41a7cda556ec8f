#!/usr/bin/env python3
"""Reference vector-Jacobian products of the fixture UNets, for reddiff's `Unet::vjp` test:

    /work/venv/bin/python tools/vjp_fixtures.py

For every model fixture in tests/fixtures (ADM and diffusers, see tests/fixtures/README.md) writes
vjp.safetensors beside its io.safetensors:
    v    f32 [N,C,H,W]  N(0,1), seeded (SEED below + the fixture's index)
    vjp  f32 [N,C,H,W]  (∂ε/∂x)ᵀ v by torch autograd in float64, ε = the output's first C channels (the
                        learned-sigma channels get no weight), at io.safetensors' x, t (and y)
computed from exactly the stored weights with reddiff_models.exact_f64 (the float32 casts inside
guided-diffusion / diffusers lifted), like the forward references.
"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reddiff_models as rm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = ["adm_ss_updown", "adm_plain_newattn", "adm_default_mult", "diffusers_ddpm", "diffusers_resnet_ss"]
SEED = 20261130


def main():
    for i, name in enumerate(FIXTURES):
        d = os.path.join(ROOT, "tests/fixtures", name)
        io = load_file(os.path.join(d, "io.safetensors"))
        kind, _, model = rm.load_model(d, torch.float64)
        x = io["x"].double().requires_grad_(True)
        c = x.shape[1]
        v = torch.randn(x.shape, generator=torch.Generator().manual_seed(SEED + i), dtype=torch.float64)
        with rm.exact_f64():
            if kind == "adm":
                out = model(x, io["t"], y=io["y"]) if "y" in io else model(x, io["t"])
            else:
                out = model(x, io["t"], class_labels=io.get("y")).sample
        (g,) = torch.autograd.grad((out[:, :c] * v).sum(), x)
        save_file({"v": v.float().contiguous(), "vjp": g.float().contiguous()}, os.path.join(d, "vjp.safetensors"),
                  metadata={"seed": str(SEED + i)})
        print(f"{name}: max |vjp| {g.abs().max():.3e}")


if __name__ == "__main__":
    main()
