"""Shared PyTorch-side helpers for reddiff's Python tools: model directories <-> torch modules.

A reddiff model directory is one of
  * ADM (openai guided-diffusion `UNetModel`): `config.json` with guided-diffusion's `create_model` argument
    names (image_size, num_channels, num_res_blocks, channel_mult, attention_resolutions, num_heads,
    num_head_channels, num_heads_upsample, learn_sigma, class_cond, use_scale_shift_norm, resblock_updown,
    use_new_attention_order, dropout, use_fp16, use_checkpoint) + `model.safetensors` (guided-diffusion's own
    state_dict key names, unchanged);
  * diffusers `UNet2DModel`: `config.json` as `save_pretrained` writes it (has `_class_name`) +
    `diffusion_pytorch_model.safetensors`.

Used by tools/make_fixtures.py, tools/convert_checkpoint.py and tools/bench_torch.py.
"""
import contextlib
import inspect
import json
import math
import os

import torch
import torch.nn as nn

ADM_WEIGHTS = "model.safetensors"
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"

# create_model's argument names, in the order config.json files list them.
ADM_KEYS = ["image_size", "num_channels", "num_res_blocks", "channel_mult", "attention_resolutions",
            "num_heads", "num_head_channels", "num_heads_upsample", "learn_sigma", "class_cond",
            "use_scale_shift_norm", "resblock_updown", "use_new_attention_order", "dropout", "use_fp16",
            "use_checkpoint"]

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f64": torch.float64}


def _quiet_guided_diffusion():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import guided_diffusion.script_util  # noqa: F401  (torch.cuda.amp deprecation warnings at import)


def read_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


def model_kind(cfg):
    """'diffusers' for a save_pretrained config (has _class_name), else 'adm'."""
    if "_class_name" in cfg:
        if cfg["_class_name"] != "UNet2DModel":
            raise ValueError(f"unsupported diffusers model class {cfg['_class_name']!r} (only UNet2DModel)")
        return "diffusers"
    return "adm"


def adm_config(**overrides):
    """A full ADM config dict: guided-diffusion create_model's defaults, then `overrides`."""
    _quiet_guided_diffusion()
    from guided_diffusion.script_util import create_model
    sig = inspect.signature(create_model)
    cfg = {}
    for k in ADM_KEYS:
        p = sig.parameters[k]
        cfg[k] = None if p.default is inspect.Parameter.empty else p.default
    cfg["dropout"] = 0.0
    unknown = set(overrides) - set(ADM_KEYS)
    if unknown:
        raise ValueError(f"not create_model arguments: {sorted(unknown)}")
    cfg.update(overrides)
    missing = [k for k in ADM_KEYS if cfg[k] is None]
    if missing:
        raise ValueError(f"ADM config lacks {missing}")
    return cfg


def build_adm(cfg, for_inference=True):
    """guided-diffusion create_model(**cfg). With for_inference, use_fp16/use_checkpoint are switched off
    (they only matter for training; use_fp16 would make forward() cast activations to f16) and the module is
    put in eval mode (dropout off)."""
    _quiet_guided_diffusion()
    from guided_diffusion.script_util import create_model
    args = {k: cfg[k] for k in ADM_KEYS if k in cfg}
    if for_inference:
        args["use_fp16"] = False
        args["use_checkpoint"] = False
    model = create_model(**args)
    return model.eval() if for_inference else model


def _quiet_diffusers():
    from diffusers.utils import logging
    logging.set_verbosity_error()  # e.g. "modules ... should be kept in float32: []" on every .to(dtype)


def build_diffusers(cfg):
    from diffusers import UNet2DModel
    _quiet_diffusers()
    return UNet2DModel.from_config(cfg).eval()


def build(cfg):
    return build_adm(cfg) if model_kind(cfg) == "adm" else build_diffusers(cfg)


def weights_path(model_dir, kind):
    return os.path.join(model_dir, ADM_WEIGHTS if kind == "adm" else DIFFUSERS_WEIGHTS)


def load_model(model_dir, dtype=torch.float32):
    """(kind, cfg, module) with the stored weights loaded (strict) and cast to `dtype`."""
    from safetensors.torch import load_file
    cfg = read_config(model_dir)
    kind = model_kind(cfg)
    model = build(cfg)
    sd = load_file(weights_path(model_dir, kind))
    sd = {k: v.to(torch.float32) for k, v in sd.items()}  # exact upcast; load_state_dict copies into f32
    load_state_dict_checked(model, sd)
    model = model.to(dtype)
    if kind == "adm":
        model.dtype = dtype  # UNetModel.forward casts its input to self.dtype
    return kind, cfg, model


def load_state_dict_checked(model, sd):
    """strict load_state_dict with a readable error listing missing / unexpected / mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shape = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shape:
        lines = []
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches", shape)):
            if items:
                lines.append(f"{len(items)} {title}:")
                lines += [f"  {s}" for s in items[:40]] + ([f"  ... {len(items) - 40} more"] if len(items) > 40 else [])
        raise KeyError("state_dict does not match the config:\n" + "\n".join(lines))
    model.load_state_dict(sd, strict=True)


def forward(kind, model, x, t, y=None):
    """Raw network output (all channels, learned-sigma ones included)."""
    with torch.no_grad():
        if kind == "adm":
            return model(x, t, y=y) if y is not None else model(x, t)
        return model(x, t, class_labels=y).sample


# --------------------------------------------------------------------------------------------------------
# float64 reference mode
#
# guided-diffusion and diffusers force some steps to float32 whatever the parameter dtype: GroupNorm32 runs on
# x.float(), attention softmax on weight.float(), and both timestep embeddings are built in f32 from
# timesteps.float(). In a model.double() forward that either errors (dtype mismatch) or silently truncates to
# f32. exact_f64() swaps those few spots for versions that keep the input's dtype, so that the whole forward
# is float64 (same math otherwise). Use it only around forwards of f64 models.
# --------------------------------------------------------------------------------------------------------

def _gd_timestep_embedding(timesteps, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(0, half, dtype=torch.float64) / half)
    args = timesteps[:, None].to(torch.float64) * freqs[None].to(timesteps.device)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def _qkv_legacy_forward(self, qkv):
    bs, width, length = qkv.shape
    ch = width // (3 * self.n_heads)
    q, k, v = qkv.reshape(bs * self.n_heads, ch * 3, length).split(ch, dim=1)
    scale = 1 / math.sqrt(math.sqrt(ch))
    w = torch.einsum("bct,bcs->bts", q * scale, k * scale)
    w = torch.softmax(w, dim=-1)
    a = torch.einsum("bts,bcs->bct", w, v)
    return a.reshape(bs, -1, length)


def _qkv_forward(self, qkv):
    bs, width, length = qkv.shape
    ch = width // (3 * self.n_heads)
    q, k, v = qkv.chunk(3, dim=1)
    scale = 1 / math.sqrt(math.sqrt(ch))
    w = torch.einsum("bct,bcs->bts", (q * scale).view(bs * self.n_heads, ch, length),
                     (k * scale).view(bs * self.n_heads, ch, length))
    w = torch.softmax(w, dim=-1)
    a = torch.einsum("bts,bcs->bct", w, v.reshape(bs * self.n_heads, ch, length))
    return a.reshape(bs, -1, length)


def _groupnorm32_forward(self, x):
    return nn.GroupNorm.forward(self, x)


def _diffusers_timestep_embedding(timesteps, embedding_dim, flip_sin_to_cos=False, downscale_freq_shift=1,
                                  scale=1, max_period=10000):
    half = embedding_dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float64, device=timesteps.device)
    exponent = exponent / (half - downscale_freq_shift)
    emb = timesteps[:, None].to(torch.float64) * torch.exp(exponent)[None, :]
    emb = scale * emb
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if embedding_dim % 2 == 1:
        emb = torch.nn.functional.pad(emb, (0, 1, 0, 0))
    return emb


@contextlib.contextmanager
def exact_f64():
    _quiet_guided_diffusion()
    import guided_diffusion.nn as gnn
    import guided_diffusion.unet as gunet
    import diffusers.models.embeddings as demb
    patches = [(gunet, "timestep_embedding", _gd_timestep_embedding),
               (gnn.GroupNorm32, "forward", _groupnorm32_forward),
               (gunet.QKVAttentionLegacy, "forward", _qkv_legacy_forward),
               (gunet.QKVAttention, "forward", _qkv_forward),
               (demb, "get_timestep_embedding", _diffusers_timestep_embedding)]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    try:
        for obj, name, new in patches:
            setattr(obj, name, new)
        yield
    finally:
        for obj, name, old in saved:
            setattr(obj, name, old)


# --------------------------------------------------------------------------------------------------------
# random weights and writing model directories
# --------------------------------------------------------------------------------------------------------

def randomize_(model, gen, emb_std=1.0):
    """Overwrite EVERY parameter with seeded random values (the reference inits zero some output convs and
    attention projections, which would hide bugs): norm scales 1 + 0.1 N, norm/other biases 0.1 N,
    embeddings `emb_std` N, other weights N / sqrt(fan_in). Deterministic given `gen` and module order."""
    norm_types = (nn.GroupNorm, nn.LayerNorm, nn.BatchNorm2d)
    with torch.no_grad():
        for name, mod in model.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                r = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
                if isinstance(mod, norm_types):
                    p.copy_(1 + 0.1 * r if pname == "weight" else 0.1 * r)
                elif isinstance(mod, nn.Embedding):
                    p.copy_(emb_std * r)
                elif pname == "bias" or p.dim() == 1:
                    p.copy_(0.1 * r)
                else:
                    fan_in = p[0].numel()
                    p.copy_(r / math.sqrt(fan_in))
    return model


def round_state_dict(sd, dtype):
    """Weights as they will be stored: cast to `dtype` (contiguous, CPU)."""
    return {k: v.detach().to("cpu", dtype).contiguous() for k, v in sd.items()}


def save_adm_dir(out_dir, cfg, state_dict, dtype=torch.float32, metadata=None):
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    cfg = {k: cfg[k] for k in ADM_KEYS}
    save_file(round_state_dict(state_dict, dtype), os.path.join(out_dir, ADM_WEIGHTS),
              metadata={k: str(v) for k, v in (metadata or {}).items()} or None)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def save_diffusers_dir(out_dir, model, dtype=torch.float32):
    """save_pretrained(safe_serialization=True) of a copy of `model` cast to `dtype` (config.json exactly as
    diffusers writes it); checks the weights file ended up in `dtype`."""
    import copy
    from safetensors import safe_open
    _quiet_diffusers()
    m = copy.deepcopy(model).to(dtype)
    m.save_pretrained(out_dir, safe_serialization=True)
    with safe_open(os.path.join(out_dir, DIFFUSERS_WEIGHTS), "pt") as f:
        dts = {f.get_slice(k).get_dtype() for k in f.keys()}
    want = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}[dtype]
    if dts != {want}:
        raise RuntimeError(f"save_pretrained wrote {dts}, wanted {want}")
