#!/usr/bin/env python3
"""Random-weight reference models + reference outputs for reddiff's Rust parity tests.

    /work/venv/bin/python tools/make_fixtures.py                 # tests/fixtures/* (seconds, ~10 MB)
    /work/venv/bin/python tools/make_fixtures.py --only ddim     # just some fixtures
    /work/venv/bin/python tools/make_fixtures.py --full [--out .data/full]   # full-size models (minutes, GBs)

Every fixture directory holds a reddiff model directory (ADM: config.json + model.safetensors; diffusers:
config.json + diffusion_pytorch_model.safetensors, as UNet2DModel.save_pretrained writes them) and
io.safetensors with
    x   f32 [N,C,H,W]  N(0,1) input
    t   i64 [N]        one timestep per batch element (they differ)
    y   i64 [N]        class labels (class-conditional models only)
    eps f32 [N,C',H,W] raw network output (all channels, learned-sigma ones included)
eps is computed in float64 from exactly the stored (possibly f16/bf16-rounded) weights, with the f32 casts
inside guided-diffusion / diffusers lifted (reddiff_models.exact_f64), then stored as f32.
The `ddim` fixture runs diffusers' DDIMScheduler (10 steps, eta 0) with the built-in models/emoji32 prior.

Everything is seeded (SEED below, plus a per-fixture offset), so reruns give identical files.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reddiff_models as rm  # noqa: E402

SEED = 20240611
T_PAIR = [17, 803]
Y_PAIR = [3, 917]

# ---- small fixtures (tests/fixtures/<name>) ----------------------------------------------------------------
# Sizes had to come down from the first plan to keep tests/fixtures near 10 MB (random weights do not
# compress): see README.md for what each one covers.
ADM_FIXTURES = {
    # scale-shift norm + resblock up/down + class labels + learned sigma + num_head_channels + 3 levels,
    # attention at two resolutions, 2 res blocks per level. channel_mult 1,1,1 (not 1,2,2: 8.5 MB in f32).
    "adm_ss_updown": dict(
        dtype="f32", cfg=dict(
            image_size=32, num_channels=32, num_res_blocks=2, channel_mult="1,1,1",
            attention_resolutions="16,8", num_heads=4, num_head_channels=16, num_heads_upsample=-1,
            learn_sigma=True, class_cond=True, use_scale_shift_norm=True, resblock_updown=True,
            use_new_attention_order=False)),
    # plain (additive) time embedding, conv Downsample / nearest+conv Upsample, QKVAttention (new order),
    # num_heads (not head channels), channel change 32 -> 64 inside the input blocks. F16 weights.
    "adm_plain_newattn": dict(
        dtype="f16", cfg=dict(
            image_size=16, num_channels=32, num_res_blocks=1, channel_mult="1,2",
            attention_resolutions="8", num_heads=2, num_head_channels=-1, num_heads_upsample=-1,
            learn_sigma=False, class_cond=False, use_scale_shift_norm=False, resblock_updown=False,
            use_new_attention_order=True)),
    # channel_mult "" -> create_model's table. This guided-diffusion only has entries for 64/128/256/512, so
    # image 64 -> (1,2,3,4): 32/64/96/128 channels, 96/4 = 24-channel heads. num_res_blocks 0 keeps it at
    # 2 MB (with 1 it is 7.2 MB in bf16): input levels are then just (conv) Downsamples, each output level one
    # ResBlock (+ attention at 16x16). Scale-shift norm with conv up/down. BF16 weights.
    "adm_default_mult": dict(
        dtype="bf16", cfg=dict(
            image_size=64, num_channels=32, num_res_blocks=0, channel_mult="",
            attention_resolutions="16", num_heads=4, num_head_channels=-1, num_heads_upsample=-1,
            learn_sigma=False, class_cond=False, use_scale_shift_norm=True, resblock_updown=False,
            use_new_attention_order=False)),
}

DIFFUSERS_FIXTURES = {
    # google/ddpm-* style: DownBlock2D/AttnDownBlock2D, additive time embedding, cos-first sinusoid, shift 0.
    "diffusers_ddpm": dict(
        dtype="f32", cfg=dict(
            sample_size=16, in_channels=3, out_channels=3, block_out_channels=(32, 64),
            down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
            layers_per_block=1, attention_head_dim=16, norm_num_groups=8, resnet_time_scale_shift="default",
            flip_sin_to_cos=True, freq_shift=0, time_embedding_type="positional")),
    # resnet (avg-pool / nearest) down- and up-samplers, scale-shift time embedding (mid-block attention then
    # has NO group norm), sin-first sinusoid with freq_shift 1, 8-channel heads, 2 layers per block.
    # Up blocks are (ResnetUpsampleBlock2D, AttnUpBlock2D), not (AttnUp, ResnetUp): the last up block never
    # gets an upsampler, so the brief's order would not exercise ResnetUpsampleBlock2D's resnet upsampler.
    "diffusers_resnet_ss": dict(
        dtype="f16", cfg=dict(
            sample_size=16, in_channels=3, out_channels=3, block_out_channels=(32, 32),
            down_block_types=("ResnetDownsampleBlock2D", "AttnDownBlock2D"),
            up_block_types=("ResnetUpsampleBlock2D", "AttnUpBlock2D"),
            layers_per_block=2, attention_head_dim=8, norm_num_groups=16, resnet_time_scale_shift="scale_shift",
            flip_sin_to_cos=False, freq_shift=1, add_attention=True, time_embedding_type="positional")),
}

# The trained built-in prior: with random weights the 10-step chain is chaotic (one-step f32 differences of
# ~5e-6 grow to ~1e-3), with trained weights DDIM is contractive and a tight tolerance is meaningful.
DDIM = dict(model="models/emoji32", steps=10, scheduler=dict(
    num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear", clip_sample=True,
    clip_sample_range=1.0, set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading",
    prediction_type="epsilon"))

# ---- full-size models (--full) ------------------------------------------------------------------------------
FULL = {
    "ffhq256": dict(batches=[1], cfg=dict(
        image_size=256, num_channels=128, num_res_blocks=1, channel_mult="", attention_resolutions="16",
        num_heads=4, num_head_channels=64, num_heads_upsample=-1, learn_sigma=True, class_cond=False,
        use_scale_shift_norm=True, resblock_updown=True, use_new_attention_order=False)),
    "imagenet256_uncond": dict(batches=[1, 2], cfg=dict(
        image_size=256, num_channels=256, num_res_blocks=2, channel_mult="", attention_resolutions="32,16,8",
        num_heads=4, num_head_channels=64, num_heads_upsample=-1, learn_sigma=True, class_cond=False,
        use_scale_shift_norm=True, resblock_updown=True, use_new_attention_order=False, use_fp16=False)),
}


def gen(offset):
    return torch.Generator().manual_seed(SEED + offset)


def make_io(g, n, c, size, class_cond):
    io = {"x": torch.randn(n, c, size, size, generator=g, dtype=torch.float64).float(),
          "t": torch.tensor((T_PAIR * n)[:n] if n > 1 else [T_PAIR[1]], dtype=torch.int64)}
    if class_cond:
        io["y"] = torch.tensor((Y_PAIR * n)[:n], dtype=torch.int64)
    return io


def reference_eps(model_dir, io):
    """float64 forward of the stored weights; also checks the patched f64 path against the untouched f32
    code (they must agree to f32 accuracy, which validates the exact_f64 patches)."""
    kind, _, m64 = rm.load_model(model_dir, torch.float64)
    with rm.exact_f64():
        eps = rm.forward(kind, m64, io["x"].double(), io["t"], io.get("y"))
    _, _, m32 = rm.load_model(model_dir, torch.float32)
    eps32 = rm.forward(kind, m32, io["x"], io["t"], io.get("y"))
    rel = ((eps32.double() - eps).abs().max() / eps.abs().max()).item()
    if rel > 1e-4:
        raise RuntimeError(f"{model_dir}: f32 vs f64 forward differ by {rel:.2e} (relative to max|eps|)")
    return eps.float(), rel


def save_io(path, io, meta=None):
    from safetensors.torch import save_file
    # one metadata entry (JSON, sorted keys): safetensors writes several in hash order, which would make
    # reruns differ byte-wise
    save_file({k: v.contiguous() for k, v in io.items()}, path,
              metadata={"info": json.dumps(meta, sort_keys=True)} if meta else None)


def dir_size(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def make_adm(root, name, spec, offset):
    out = os.path.join(root, name)
    cfg = rm.adm_config(**spec["cfg"])
    model = rm.build_adm(cfg)
    rm.randomize_(model, gen(offset))
    dtype = rm.DTYPES[spec["dtype"]]
    rm.save_adm_dir(out, cfg, model.state_dict(), dtype)
    io = make_io(gen(offset + 1), 2, 3, cfg["image_size"], cfg["class_cond"])
    io["eps"], rel = reference_eps(out, io)
    save_io(os.path.join(out, "io.safetensors"), io, {"seed": SEED + offset, "weights": spec["dtype"]})
    return io, rel


def make_diffusers(root, name, spec, offset):
    from diffusers import UNet2DModel
    out = os.path.join(root, name)
    model = UNet2DModel(**spec["cfg"]).eval()
    rm.randomize_(model, gen(offset))
    rm.save_diffusers_dir(out, model, rm.DTYPES[spec["dtype"]])
    io = make_io(gen(offset + 1), 2, spec["cfg"]["in_channels"], spec["cfg"]["sample_size"], False)
    io["eps"], rel = reference_eps(out, io)
    save_io(os.path.join(out, "io.safetensors"), io, {"seed": SEED + offset, "weights": spec["dtype"]})
    return io, rel


def ddim_manual(model_fn, noise, timesteps, ac, final=1.0):
    """The update written out (what the README states); must match DDIMScheduler.step."""
    x = noise
    for i, t in enumerate(timesteps):
        a = ac[t]
        a_prev = ac[timesteps[i + 1]] if i + 1 < len(timesteps) else final
        eps = model_fn(x, t)
        x0 = ((x - (1 - a) ** 0.5 * eps) / a ** 0.5).clamp(-1, 1)
        x = a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps
    return x


def make_ddim(root, offset):
    from diffusers import DDIMScheduler
    out = os.path.join(root, "ddim")
    os.makedirs(out, exist_ok=True)
    model_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), DDIM["model"])
    kind, _, m = rm.load_model(model_dir, torch.float64)
    # rounded to f32 first: the stored f32 noise is exactly what the f64 run starts from
    size = json.load(open(os.path.join(model_dir, "config.json")))["image_size"]
    noise = torch.randn(2, 3, size, size, generator=gen(offset), dtype=torch.float64).float().double()

    def model_fn(x, t):
        tt = torch.full((x.shape[0],), int(t), dtype=torch.int64)
        return rm.forward(kind, m, x, tt)[:, :3]

    def run(sched, traj=None):
        x = noise.clone()
        for t in sched.timesteps:
            x = sched.step(model_fn(x, t), t, x, eta=0.0).prev_sample
            if traj is not None:
                traj.append(x)
        return x

    with rm.exact_f64():
        sched = DDIMScheduler(**DDIM["scheduler"])
        sched.set_timesteps(DDIM["steps"])
        timesteps = sched.timesteps.clone()
        x_f32ac = run(sched)  # diffusers as is: alphas_cumprod computed in f32 (linspace/cumprod in f32)
        # reference: the same scheduler with alphas_cumprod computed in float64
        betas = torch.linspace(DDIM["scheduler"]["beta_start"], DDIM["scheduler"]["beta_end"],
                               DDIM["scheduler"]["num_train_timesteps"], dtype=torch.float64)
        ac = torch.cumprod(1 - betas, 0)
        sched.alphas_cumprod = ac
        sched.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
        traj = []
        x0 = run(sched, traj)
        x_manual = ddim_manual(model_fn, noise, [int(t) for t in timesteps], ac)
    d_manual = (x_manual - x0).abs().max().item()
    d_f32ac = (x_f32ac - x0).abs().max().item()
    if d_manual > 1e-12:
        raise RuntimeError(f"written-out DDIM update differs from DDIMScheduler.step by {d_manual:.3e}")
    save_io(os.path.join(out, "io.safetensors"),
            {"noise": noise.float(), "timesteps": timesteps.to(torch.int64), "x0": x0.float()},
            {"model": DDIM["model"], "seed": SEED + offset, "steps": DDIM["steps"], "eta": 0.0,
             "scheduler": DDIM["scheduler"], "alphas_cumprod": "float64"})
    return timesteps, x0, d_manual, d_f32ac


def main_small(args):
    root = args.root
    os.makedirs(root, exist_ok=True)
    names = list(ADM_FIXTURES) + list(DIFFUSERS_FIXTURES) + ["ddim"]
    only = set(args.only.split(",")) if args.only else set(names)
    bad = only - set(names)
    if bad:
        sys.exit(f"unknown fixtures {sorted(bad)}; have {names}")
    rows = []
    for i, name in enumerate(names):
        if name not in only:
            continue
        t0 = time.time()
        offset = 100 * (i + 1)
        if name in ADM_FIXTURES:
            io, rel = make_adm(root, name, ADM_FIXTURES[name], offset)
            info = f"max|eps| {io['eps'].abs().max():8.3f}  f32-vs-f64 rel {rel:.1e}"
        elif name in DIFFUSERS_FIXTURES:
            io, rel = make_diffusers(root, name, DIFFUSERS_FIXTURES[name], offset)
            info = f"max|eps| {io['eps'].abs().max():8.3f}  f32-vs-f64 rel {rel:.1e}"
        else:
            ts, x0, dm, df = make_ddim(root, offset)
            info = (f"timesteps {ts.tolist()}  max|x0| {x0.abs().max():.3f}  manual-vs-step {dm:.1e}  "
                    f"f32-alphas-vs-f64 {df:.1e}")
        d = os.path.join(root, name)
        rows.append((name, dir_size(d), info, time.time() - t0))
    for name, size, info, dt in rows:
        print(f"{name:22s} {size / 1e6:6.2f} MB  {info}  ({dt:.1f} s)")
    total = sum(dir_size(os.path.join(root, n)) for n in names if os.path.isdir(os.path.join(root, n)))
    print(f"total {total / 1e6:.2f} MB")


def main_full(args):
    """Full-size random-weight models; reference in float32 (a float64 forward of these takes far longer)."""
    dtype = rm.DTYPES[args.full_dtype]
    names = args.full_only.split(",") if args.full_only else list(FULL)
    for i, name in enumerate(names):
        spec = FULL[name]
        out = os.path.join(args.out, name)
        offset = 10_000 + 100 * list(FULL).index(name)
        t0 = time.time()
        cfg = rm.adm_config(**spec["cfg"])
        model = rm.build_adm(cfg)
        rm.randomize_(model, gen(offset))
        rm.save_adm_dir(out, cfg, model.state_dict(), dtype)
        del model
        kind, _, m = rm.load_model(out, torch.float32)
        print(f"{name}: {sum(p.numel() for p in m.parameters()) / 1e6:.1f}M params, written in "
              f"{time.time() - t0:.0f} s", flush=True)
        for n in spec["batches"]:
            io = make_io(gen(offset + n), n, 3, cfg["image_size"], cfg["class_cond"])
            t1 = time.time()
            io["eps"] = rm.forward(kind, m, io["x"], io["t"], io.get("y"))
            fn = "io.safetensors" if n == 1 else f"io_b{n}.safetensors"
            save_io(os.path.join(out, fn), io, {"seed": SEED + offset + n, "weights": args.full_dtype,
                                                "reference": "float32"})
            print(f"  batch {n}: t {io['t'].tolist()}  max|eps| {io['eps'].abs().max():.3f}  "
                  f"forward {time.time() - t1:.1f} s -> {fn}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                                   "fixtures"))
    ap.add_argument("--only", help="comma-separated fixture names")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--full", action="store_true", help="write the full-size models instead (to --out)")
    ap.add_argument("--out", default=".data/full")
    ap.add_argument("--full-only", help="comma-separated: " + ",".join(FULL))
    ap.add_argument("--full-dtype", default="f16", choices=["f32", "f16", "bf16"],
                    help="weight dtype of the --full models (reference eps uses these rounded weights)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.root = os.path.normpath(args.root)
    if args.full:
        main_full(args)
    else:
        main_small(args)


if __name__ == "__main__":
    main()
