#!/usr/bin/env python3
"""Train reddiff's built-in prior: a small ADM UNet (openai guided-diffusion `UNetModel`) on 32x32 emoji.

DDPM training exactly as the prior is used later: linear betas 1e-4..0.02, T = 1000, epsilon prediction,
uniform timesteps, MSE loss, Adam, EMA with warm-up (decay = min(ema, (1 + step) / (10 + step))),
random horizontal flips. Images are in [-1, 1].

Runs on CUDA when present (bf16 autocast), else on the CPU. It checkpoints every --ckpt-minutes to
`<out>/ckpt.pt` and resumes exactly from it (model, EMA, optimiser, step, RNG states). At the end it
exports the EMA weights as a reddiff model directory (`config.json` with guided-diffusion's `create_model`
argument names + `model.safetensors`) and, with --grid, a DDIM (eta 0, 50 steps) sample grid PNG.

--minutes is the wall-clock budget of one invocation from process start (imports, data upload, model set-up,
training and the final checkpoint); only the export, --raw and --grid come after it.

Fine-tuning: --init DIR starts both the model and the EMA from a reddiff model directory (its config.json must
equal CONFIG; F16 weights are upcast to f32). The optimiser state is fresh (--lr-warmup ramps the learning rate
up linearly over that many steps). The step count continues from --init-step (default: `steps` of
DIR/training_log.json, else 0), so the EMA warm-up min(ema, (1 + step) / (10 + step)) does not restart and the
exported training_log.json continues DIR's: its losses are appended to, steps and trained_minutes are totals,
and `init` records the directory and its log. An existing checkpoint in --out wins over --init (resume).

    python tools/train_prior.py --data .data/train.npy --out runs/prior --minutes 60 --export models/emoji32
    python tools/train_prior.py --data .data/train.npy --out runs/ft --init models/emoji32 --minutes 5 \\
        --batch 256 --lr 1e-4 --lr-warmup 200 --seed 1 --export runs/ft/emoji32 --fp16
"""
import time

T0 = time.time()  # the --minutes budget counts from here, imports included

import argparse
import json
import math
import os
import random

import numpy as np
import torch
import torch.nn.functional as F
from guided_diffusion.unet import UNetModel

CONFIG = {
    "image_size": 32,
    "num_channels": 64,
    "num_res_blocks": 1,
    "channel_mult": "1,1,2",
    "attention_resolutions": "16,8",
    "num_heads": 4,
    "num_head_channels": 32,
    "num_heads_upsample": -1,
    "learn_sigma": False,
    "class_cond": False,
    "use_scale_shift_norm": True,
    "resblock_updown": True,
    "use_new_attention_order": False,
    "dropout": 0.1,
    "use_fp16": False,
    "use_checkpoint": False,
}


def build_model(cfg):
    """guided-diffusion's create_model, restricted to what this script needs (same argument semantics)."""
    mult = tuple(int(c) for c in cfg["channel_mult"].split(","))
    ds = [cfg["image_size"] // int(r) for r in cfg["attention_resolutions"].split(",")]
    return UNetModel(
        image_size=cfg["image_size"], in_channels=3, model_channels=cfg["num_channels"],
        out_channels=6 if cfg["learn_sigma"] else 3, num_res_blocks=cfg["num_res_blocks"],
        attention_resolutions=tuple(ds), dropout=cfg["dropout"], channel_mult=mult, num_classes=None,
        use_checkpoint=False, use_fp16=False, num_heads=cfg["num_heads"],
        num_head_channels=cfg["num_head_channels"], num_heads_upsample=cfg["num_heads_upsample"],
        use_scale_shift_norm=cfg["use_scale_shift_norm"], resblock_updown=cfg["resblock_updown"],
        use_new_attention_order=cfg["use_new_attention_order"])


def alphas_cumprod(device):
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    return torch.cumprod(1 - betas, 0).to(device=device, dtype=torch.float32)


@torch.no_grad()
def ddim_grid(model, n, steps, seed, device):
    """DDIM eta = 0 from N(0, I) noise; returns uint8 [n, H, W, 3]."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g).to(device)
    ac = alphas_cumprod(device)
    ts = list(range(0, 1000, 1000 // steps))[::-1]
    for i, t in enumerate(ts):
        a = ac[t]
        a_prev = ac[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, device=device)
        eps = model(x, torch.full((n,), t, device=device))[:, :3]
        x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def save_grid(imgs, path, cols=8):
    from PIL import Image
    n, h, w, _ = imgs.shape
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + 2) + 2, cols * (w + 2) + 2, 3), 255, np.uint8)
    for i, im in enumerate(imgs):
        r, c = divmod(i, cols)
        grid[2 + r * (h + 2): 2 + r * (h + 2) + h, 2 + c * (w + 2): 2 + c * (w + 2) + w] = im
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(path)


def load_init(model, init_dir):
    """Copy a reddiff model directory's weights (any float dtype, upcast to f32) into `model`; the directory's
    config.json must equal CONFIG."""
    from safetensors.torch import load_file
    with open(os.path.join(init_dir, "config.json")) as f:
        cfg = json.load(f)
    diff = [f"{k}: {cfg.get(k, '<missing>')!r} (CONFIG {CONFIG.get(k, '<missing>')!r})"
            for k in sorted(set(cfg) | set(CONFIG)) if cfg.get(k, "<missing>") != CONFIG.get(k, "<missing>")]
    if diff:
        raise SystemExit(f"--init {init_dir}: config.json does not match this script's CONFIG:\n  "
                         + "\n  ".join(diff))
    sd = load_file(os.path.join(init_dir, "model.safetensors"))
    own = model.state_dict()
    bad = sorted(set(own) ^ set(sd)) + [k for k in own if k in sd and sd[k].shape != own[k].shape]
    if bad:
        raise SystemExit(f"--init {init_dir}: model.safetensors does not match the model "
                         f"({len(bad)} missing, unexpected or mis-shaped tensors, e.g. {bad[:5]})")
    model.load_state_dict({k: v.to(torch.float32) for k, v in sd.items()}, strict=True)
    log_path = os.path.join(init_dir, "training_log.json")
    log = {}
    if os.path.exists(log_path):
        with open(log_path) as f:
            log = json.load(f)
    return {k: sd[k].dtype for k in sd}, log


def export(model_state, cfg, out_dir, fp16, meta):
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    dtype = torch.float16 if fp16 else torch.float32
    save_file({k: v.detach().to("cpu", dtype).contiguous() for k, v in model_state.items()},
              os.path.join(out_dir, "model.safetensors"), metadata={k: str(v) for k, v in meta.items()})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=".data/train.npy")
    ap.add_argument("--out", default="runs/prior")
    ap.add_argument("--minutes", type=float, default=60.0,
                    help="wall-clock budget from process start to the end of training incl. the final checkpoint "
                         "(export and grid come after)")
    ap.add_argument("--max-steps", type=int, default=10**9)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--lr-warmup", type=int, default=0,
                    help="ramp the lr up linearly over this many steps of the run (0: none)")
    ap.add_argument("--ema", type=float, default=0.9995)
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", metavar="DIR", help="start model and EMA from this reddiff model directory")
    ap.add_argument("--init-step", type=int,
                    help="step count to continue from with --init (default: steps in DIR/training_log.json, else 0)")
    ap.add_argument("--export", help="write the EMA model directory here at the end")
    ap.add_argument("--fp16", action="store_true", help="store exported weights as F16")
    ap.add_argument("--grid", help="write a 64-sample DDIM grid PNG here at the end")
    ap.add_argument("--raw", help="also save the raw (non-EMA) f32 weights to this safetensors file")
    args = ap.parse_args()
    if args.init_step is not None and not args.init:
        ap.error("--init-step needs --init")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    data = torch.from_numpy(np.load(args.data)).to(device).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW
    model = build_model(CONFIG).to(device)
    ema = build_model(CONFIG).to(device).eval()
    ema.load_state_dict(model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, fused=device == "cuda")
    ac = alphas_cumprod(device)
    step, trained_s, losses = 0, 0.0, []
    start_step, init = 0, None  # start_step: the step the lr warm-up counts from; init: what --init loaded
    ckpt_path = os.path.join(args.out, "ckpt.pt")
    os.makedirs(args.out, exist_ok=True)
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"]); ema.load_state_dict(ck["ema"]); opt.load_state_dict(ck["opt"])
        step, trained_s, losses = ck["step"], ck["trained_s"], ck["losses"]
        start_step, init = ck.get("start_step", 0), ck.get("init")
        torch.set_rng_state(ck["rng_cpu"]); random.setstate(ck["rng_py"])
        if device == "cuda" and ck.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ck["rng_cuda"].cpu())
        print(f"resumed at step {step} ({trained_s / 60:.1f} min trained)"
              + ("; --init ignored, the checkpoint wins" if args.init else ""))
    else:
        torch.manual_seed(args.seed); random.seed(args.seed)
        if args.init:
            dtypes, log = load_init(model, args.init)
            ema.load_state_dict(model.state_dict())
            step = start_step = args.init_step if args.init_step is not None else int(log.get("steps", 0))
            trained_s = 60 * float(log.get("trained_minutes", 0.0))
            losses = [tuple(e) for e in log.get("losses", []) if e[0] <= step]
            init = {"dir": args.init, "continued_at_step": step,
                    **{k: v for k, v in log.items() if k != "losses"}}
            print(f"initialised model and EMA from {args.init} ({len(dtypes)} tensors, "
                  f"{sorted({str(d) for d in dtypes.values()})}); continuing at step {step}")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"device {device}, {n_params / 1e6:.2f}M parameters, {len(data)} training images")

    def save_ckpt():
        tmp = ckpt_path + ".tmp"
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "step": step, "trained_s": trained_s, "losses": losses, "start_step": start_step,
                    "init": init, "rng_cpu": torch.get_rng_state(),
                    "rng_cuda": torch.cuda.get_rng_state() if device == "cuda" else None,
                    "rng_py": random.getstate()}, tmp)
        os.replace(tmp, ckpt_path)

    model.train()
    ema_params, model_params = list(ema.parameters()), list(model.parameters())
    t_start, last_ckpt, run_loss, first = time.time(), time.time(), [], []
    run_step0 = step
    print(f"set-up took {t_start - T0:.1f} s", flush=True)
    budget = args.minutes * 60
    # Stop when one more step plus the final checkpoint would overrun the budget. Both are estimated: the step
    # as a running mean of the wall clock per step (CUDA syncs at least every 50 steps via loss.item()), the
    # checkpoint as the last save's time (2 s until one has been timed).
    step_s, save_s, t_prev = 0.0, 2.0, time.time()
    while time.time() - T0 + step_s + save_s < budget and step < args.max_steps:
        if args.lr_warmup > 0:
            for g in opt.param_groups:
                g["lr"] = args.lr * min(1.0, (step - start_step + 1) / args.lr_warmup)
        idx = torch.randint(0, len(data), (args.batch,), device=device)
        x0 = data[idx].float() / 127.5 - 1
        flip = torch.rand(args.batch, device=device) < 0.5
        x0 = torch.where(flip[:, None, None, None], x0.flip(3), x0)
        t = torch.randint(0, 1000, (args.batch,), device=device)
        noise = torch.randn_like(x0)
        a = ac[t][:, None, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            pred = model(xt, t)
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():  # one multi-tensor launch instead of one per parameter
            torch._foreach_lerp_(ema_params, model_params, 1 - d)
        run_loss.append(loss.item() if step % 50 == 0 else None)
        if step - run_step0 <= 10:  # the first steps of a run: a sanity check (about 0.02 when --init loaded)
            first.append(loss.item())
            if step - run_step0 == 10:
                print(f"first 10 steps' losses {' '.join(f'{v:.4f}' for v in first)} "
                      f"(mean {np.mean(first):.4f})", flush=True)
        if step % 500 == 0:
            vals = [v for v in run_loss if v is not None]
            losses.append((step, float(np.mean(vals))))
            run_loss = []
            el = time.time() - t_start
            print(f"step {step} loss {losses[-1][1]:.4f} {(step - run_step0) / max(el, 1e-9) * 60:.0f}/min",
                  flush=True)
        now = time.time()
        step_s += (now - t_prev - step_s) / min(step - run_step0, 20)  # mean of 20 steps, then running mean
        t_prev = now
        if now - last_ckpt > args.ckpt_minutes * 60:
            trained_s += now - last_ckpt; last_ckpt = now
            save_ckpt()
            t_prev = time.time()
            save_s = t_prev - now
    if 0 < len(first) < 10:
        print(f"first {len(first)} steps' losses {' '.join(f'{v:.4f}' for v in first)}", flush=True)
    vals = [v for v in run_loss if v is not None]
    if vals:  # the steps since the last multiple of 500 (sampled every 50 steps)
        losses.append((step, float(np.mean(vals))))
    trained_s += time.time() - last_ckpt
    save_ckpt()
    print(f"stopped at step {step} ({step - run_step0} this run) after {time.time() - T0:.1f} s of "
          f"{budget:.0f}; last losses {losses[-3:]}", flush=True)
    if args.export:
        export(ema.state_dict(), CONFIG, args.export, args.fp16,
               {"steps": step, "batch": args.batch, "final_loss": losses[-1][1] if losses else "n/a"})
        log = {"steps": step, "batch": args.batch, "lr": args.lr, "ema": args.ema,
               "trained_minutes": trained_s / 60, "device": device, "losses": losses}
        if args.lr_warmup:
            log["lr_warmup"] = args.lr_warmup
        if init is not None:
            log["init"] = init
        with open(os.path.join(args.export, "training_log.json"), "w") as f:
            json.dump(log, f)
        print(f"exported EMA weights to {args.export} ({time.time() - T0:.1f} s since start)")
    if args.raw:
        from safetensors.torch import save_file
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, args.raw)
    if args.grid:
        save_grid(ddim_grid(ema, 64, 50, 1234, device), args.grid)
        print(f"wrote {args.grid}")


if __name__ == "__main__":
    main()
