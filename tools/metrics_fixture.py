#!/usr/bin/env python3
"""Regenerate tests/fixtures/metrics/: PSNR / SSIM reference values for reddiff's Rust metric tests.

    /work/venv/bin/python tools/metrics_fixture.py [--out tests/fixtures/metrics]

For each of three held-out sample images (assets/samples) it copies the clean PNG and writes one degraded PNG
(all RGB, uint8):
  * <name>_noise.png  Gaussian noise sigma 0.1 in [0,1] units (numpy PCG64 seeded with SEED), clipped,
                      rounded to uint8;
  * <name>_blur.png   separable Gaussian blur (size 9, sigma 2 px, normalised, zero padding), rounded to uint8;
  * <name>_box.png    black box over the centre rows/cols [H/4, H/4 + H/2).
values.json lists {"clean", "degraded", "psnr", "ssim"} computed by scikit-image on the uint8 PNGs read back and
converted to float64 [0,1]:
  peak_signal_noise_ratio(clean, degraded, data_range=1.0)
  structural_similarity(clean, degraded, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                        use_sample_covariance=False)
Deterministic: reruns write byte-identical files.
"""
import argparse
import json
import os
import shutil

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 20240611
CASES = [  # (sample file, degradation)
    ("google-1f309.png", "noise"),
    ("twitter-1f469-1f3fb-200d-1f9b0.png", "blur"),
    ("google-1f4f1.png", "box"),
]


def read01(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0


def to_u8(a):
    return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)


def gauss_blur(a, size=9, sigma=2.0):
    d = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-d * d / (2 * sigma * sigma))
    k /= k.sum()
    r = size // 2
    h, w, _ = a.shape
    p = np.pad(a, ((r, r), (0, 0), (0, 0)))
    a = sum(k[i] * p[i:i + h] for i in range(size))
    p = np.pad(a, ((0, 0), (r, r), (0, 0)))
    return sum(k[i] * p[:, i:i + w] for i in range(size))


def degrade(a, how, rng):
    h, w, _ = a.shape
    if how == "noise":
        return to_u8(np.clip(a + 0.1 * rng.standard_normal(a.shape), 0.0, 1.0))
    if how == "blur":
        return to_u8(gauss_blur(a))
    if how == "box":
        b = a.copy()
        b[h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = 0.0
        return to_u8(b)
    raise ValueError(how)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", default=os.path.join(ROOT, "assets", "samples"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "metrics"))
    args = ap.parse_args()
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    os.makedirs(args.out, exist_ok=True)
    rng = np.random.Generator(np.random.PCG64(SEED))
    entries = []
    for fname, how in CASES:
        stem = os.path.splitext(fname)[0]
        clean_name = fname
        deg_name = f"{stem}_{how}.png"
        shutil.copyfile(os.path.join(args.samples, fname), os.path.join(args.out, clean_name))
        clean = read01(os.path.join(args.out, clean_name))
        Image.fromarray(degrade(clean, how, rng), "RGB").save(os.path.join(args.out, deg_name), optimize=False)
        a = read01(os.path.join(args.out, clean_name))
        b = read01(os.path.join(args.out, deg_name))
        p = float(peak_signal_noise_ratio(a, b, data_range=1.0))
        s = float(structural_similarity(a, b, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False))
        entries.append({"clean": clean_name, "degraded": deg_name, "psnr": p, "ssim": s})
        print(f"{deg_name:48s} PSNR {p:.6f} dB  SSIM {s:.6f}")
    with open(os.path.join(args.out, "values.json"), "w") as f:
        json.dump(entries, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
