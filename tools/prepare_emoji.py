#!/usr/bin/env python3
"""Build the built-in prior's 32x32 emoji data set from the npm packages.

Input: the tarballs of npm `emoji-datasource-twitter@16.0.0` and `emoji-datasource-google@16.0.0`
(`npm pack` them). Every `img/<set>/64/*.png` is composited on white, downsampled to 32x32 with a box
filter and split by a hash of the file name (so the same emoji is held out in both sets):
about 6 % is the test split, which is never trained on.

Output (default `.data/`): `train.npy` and `test.npy`, uint8 [N, 32, 32, 3], plus `test_names.txt`.
With --samples DIR, the first --n-samples held-out images (in a fixed order, after --sample-offset) are written
there as PNGs.
"""
import argparse
import hashlib
import io
import os
import tarfile

import numpy as np
from PIL import Image

SETS = {"twitter": "emoji-datasource-twitter-16.0.0.tgz", "google": "emoji-datasource-google-16.0.0.tgz"}
TEST_PERCENT = 6


def is_test(name: str) -> bool:
    """Held-out split: a stable hash of the bare file name, independent of the image set."""
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    return h % 100 < TEST_PERCENT


def load(tgz: str, set_name: str, size: int):
    out = []
    with tarfile.open(tgz) as tar:
        for m in sorted(tar.getmembers(), key=lambda m: m.name):
            prefix = f"package/img/{set_name}/64/"
            if not (m.isfile() and m.name.startswith(prefix) and m.name.endswith(".png")):
                continue
            name = m.name[len(prefix):]
            rgba = Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(white, rgba).convert("RGB").resize((size, size), Image.BOX)
            out.append((name, set_name, np.asarray(rgb, dtype=np.uint8)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packs", default=".", help="folder holding the two npm tarballs")
    ap.add_argument("--out", default=".data")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--samples", help="write held-out PNGs here (e.g. assets/samples)")
    ap.add_argument("--n-samples", type=int, default=32)
    ap.add_argument("--sample-offset", type=int, default=0,
                    help="skip this many held-out images of the fixed order first (assets/samples holds the first 32; "
                         "--sample-offset 32 gives held-out images for tuning that are not among them)")
    args = ap.parse_args()
    items = []
    for set_name, tgz in SETS.items():
        items += load(os.path.join(args.packs, tgz), set_name, args.size)
    train = np.stack([a for n, s, a in items if not is_test(n)])
    test_items = [(n, s, a) for n, s, a in items if is_test(n)]
    test = np.stack([a for _, _, a in test_items])
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "train.npy"), train)
    np.save(os.path.join(args.out, "test.npy"), test)
    with open(os.path.join(args.out, "test_names.txt"), "w") as f:
        f.writelines(f"{s}/{n}\n" for n, s, _ in test_items)
    print(f"train {train.shape}, test {test.shape} ({100 * len(test) / len(items):.1f} % held out)")
    if args.samples:
        os.makedirs(args.samples, exist_ok=True)
        # A fixed, deterministic pick that skips near-blank images (flags and symbols on white are dull tests).
        picked = [t for t in sorted(test_items, key=lambda t: hashlib.sha256((t[1] + t[0]).encode()).hexdigest())
                  if (t[2] < 200).mean() > 0.25][args.sample_offset: args.sample_offset + args.n_samples]
        for n, s, a in picked:
            Image.fromarray(a).save(os.path.join(args.samples, f"{s}-{n}"))
        print(f"wrote {len(picked)} samples to {args.samples}")


if __name__ == "__main__":
    main()
