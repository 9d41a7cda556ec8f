#!/usr/bin/env python3
"""guided-diffusion checkpoint (.pt state_dict) -> reddiff model directory (config.json + model.safetensors).

    python tools/convert_checkpoint.py ffhq_10m.pt --out models/ffhq256 --fp16
    python tools/convert_checkpoint.py 256x256_diffusion_uncond.pt --preset imagenet256_uncond --out models/in256u
    python tools/convert_checkpoint.py my.pt --config my_config.json --out models/mine

The preset is picked from the file name when --preset is not given (see PRESETS). Keys are kept exactly as
guided-diffusion names them. Before anything is written the state_dict is loaded with strict=True into
guided_diffusion.script_util.create_model(**config); on missing / unexpected / mis-shaped keys the script
lists them and exits with status 2 (usually: wrong preset). --fp16 / --bf16 store the weights in that dtype
(default f32, the checkpoints' own precision). Diffusion-process flags (diffusion_steps, noise_schedule) are not
create_model arguments; they go to the safetensors metadata only.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reddiff_models as rm  # noqa: E402

# Sources:
#  * imagenet256_uncond / imagenet256_cond / imagenet512_cond: MODEL_FLAGS in openai/guided-diffusion's
#    README ("Download pre-trained models" / sampling commands) for 256x256_diffusion_uncond.pt,
#    256x256_diffusion.pt and 512x512_diffusion.pt; unlisted flags take model_and_diffusion_defaults()
#    (num_heads 4, num_heads_upsample -1, channel_mult "" -> the image-size table, dropout 0.0,
#    use_new_attention_order False). RED-diff (NVlabs/RED-diff) samples with the same ImageNet-256 uncond
#    checkpoint and flags. The README runs the 512 model with use_fp16 False, the 256 ones with True; use_fp16
#    only selects the precision of guided-diffusion's own forward and does not change the weights' keys.
#  * ffhq256: DPS (DPS2022/diffusion-posterior-sampling) configs/model_config.yaml for models/ffhq_10m.pt.
# Written from memory of those files (no network access when this was written): the strict load below is
# the real check -- a wrong channel/block/attention flag shows up as missing / unexpected / mis-shaped keys.
_IMAGENET256 = dict(
    image_size=256, num_channels=256, num_res_blocks=2, channel_mult="", attention_resolutions="32,16,8",
    num_heads=4, num_head_channels=64, num_heads_upsample=-1, learn_sigma=True, class_cond=False,
    use_scale_shift_norm=True, resblock_updown=True, use_new_attention_order=False, dropout=0.0,
    use_fp16=True, use_checkpoint=False)
_DIFFUSION = dict(diffusion_steps=1000, noise_schedule="linear")

PRESETS = {
    "imagenet256_uncond": dict(file="256x256_diffusion_uncond.pt", cfg=dict(_IMAGENET256), diffusion=_DIFFUSION),
    "imagenet256_cond": dict(file="256x256_diffusion.pt", cfg=dict(_IMAGENET256, class_cond=True),
                             diffusion=_DIFFUSION),
    # channel_mult "" at 512 -> (0.5, 1, 1, 2, 2, 4, 4): the first level has int(0.5 * 256) = 128 channels.
    "imagenet512_cond": dict(file="512x512_diffusion.pt",
                             cfg=dict(_IMAGENET256, image_size=512, class_cond=True, use_fp16=False),
                             diffusion=_DIFFUSION),
    "ffhq256": dict(file="ffhq_10m.pt", cfg=dict(
        image_size=256, num_channels=128, num_res_blocks=1, channel_mult="", attention_resolutions="16",
        num_heads=4, num_head_channels=64, num_heads_upsample=-1, learn_sigma=True, class_cond=False,
        use_scale_shift_norm=True, resblock_updown=True, use_new_attention_order=False, dropout=0.0,
        use_fp16=False, use_checkpoint=False), diffusion=_DIFFUSION),
}


def preset_for_file(path):
    base = os.path.basename(path)
    for name, p in PRESETS.items():
        if p["file"] == base:
            return name
    return None


def load_state_dict(path):
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and not all(torch.is_tensor(v) for v in obj.values()):
        for key in ("ema", "model", "state_dict"):  # common training-checkpoint wrappers
            if isinstance(obj.get(key), dict):
                print(f"using the {key!r} entry of {path}")
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise SystemExit(f"{path}: not a state_dict (a dict of tensors)")
    if obj and all(k.startswith("module.") for k in obj):  # saved from a DistributedDataParallel wrapper
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="guided-diffusion .pt (a state_dict)")
    ap.add_argument("--out", required=True, help="model directory to write")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="default: from the checkpoint's file name")
    ap.add_argument("--config", help="JSON with create_model arguments (instead of / on top of a preset)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--fp16", action="store_true", help="store F16 weights")
    g.add_argument("--bf16", action="store_true", help="store BF16 weights")
    ap.add_argument("--force", action="store_true", help="overwrite an existing model directory")
    args = ap.parse_args()

    preset = args.preset or preset_for_file(args.checkpoint)
    if preset is None and not args.config:
        raise SystemExit(f"no preset matches {os.path.basename(args.checkpoint)!r}; pass --preset "
                         f"({', '.join(sorted(PRESETS))}) or --config")
    overrides = dict(PRESETS[preset]["cfg"]) if preset else {}
    diffusion = dict(PRESETS[preset]["diffusion"]) if preset else {}
    if args.config:
        with open(args.config) as f:
            extra = json.load(f)
        for k in ("diffusion_steps", "noise_schedule"):
            if k in extra:
                diffusion[k] = extra.pop(k)
        overrides.update(extra)
    try:
        cfg = rm.adm_config(**overrides)
    except ValueError as e:
        raise SystemExit(f"bad config: {e}")

    out_w = os.path.join(args.out, rm.ADM_WEIGHTS)
    if os.path.exists(out_w) and not args.force:
        raise SystemExit(f"{out_w} exists (use --force)")

    print(f"preset {preset or '-'}; config: {json.dumps(cfg)}")
    sd = load_state_dict(args.checkpoint)
    model = rm.build_adm(cfg, for_inference=False)  # exactly create_model(**cfg)
    try:
        rm.load_state_dict_checked(model, sd)
    except KeyError as e:
        print(f"error: {args.checkpoint} does not fit this config ({preset or args.config}).", file=sys.stderr)
        print(e.args[0], file=sys.stderr)
        sys.exit(2)
    n = sum(v.numel() for v in sd.values())
    src_dtypes = sorted({str(v.dtype).replace("torch.", "") for v in sd.values()})
    dtype = torch.float16 if args.fp16 else torch.bfloat16 if args.bf16 else torch.float32
    if dtype == torch.float16:
        big = max(v.abs().max().item() for v in sd.values() if v.is_floating_point())
        if big > 65504:
            raise SystemExit(f"a weight of magnitude {big:g} does not fit F16; use --bf16 or f32")
    meta = {"source": os.path.basename(args.checkpoint), "preset": preset or "", **diffusion}
    rm.save_adm_dir(args.out, cfg, sd, dtype, metadata=meta)
    print(f"ok: {len(sd)} tensors, {n / 1e6:.1f}M parameters ({', '.join(src_dtypes)} -> "
          f"{str(dtype).replace('torch.', '')}) -> {args.out}/config.json, {out_w}")


if __name__ == "__main__":
    main()
