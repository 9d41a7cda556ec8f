#!/usr/bin/env bash
# The real-GPU check of issue 9, as ONE prepared run on a machine with an NVIDIA GPU, no internet and
# PyTorch installed (the project's device machine). Prepare here first (needs internet and cargo):
#
#   bash tools/gpu_bench.sh --prepare      # release binaries, Vulkan loader .debs (.gl/), wheel for
#                                          # guided-diffusion-sdk (.whl/); then a rehearsal on this machine
#
# then on the GPU machine, with .gl, .whl, target/release/reddiff and target/release/examples/bench_model
# carried along:
#
#   bash tools/gpu_bench.sh               # writes $OUT (or ./gpu-bench-out) : log, table.md, parity.txt
#
# What it runs: `reddiff adapter`; random-weight ADM FFHQ-256 (tools/make_fixtures.py --full, made there
# with PyTorch) -> parity of reddiff's forward against PyTorch's float32 output; then
# tools/bench_side_by_side.py: forward b1/b4 for FFHQ-256 and b1/b8 for emoji32, against PyTorch CUDA
# eager fp32 with TF32 off and with PyTorch's default (cuDNN TF32), interleaved; 100 RED-diff steps at 256².
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-bench-out}"
mkdir -p "$OUT"

if [ "${1:-}" = "--prepare" ]; then
    set -e
    cargo build --release --bin reddiff --example bench_model
    grep -qx '/.gl/' .git/info/exclude || echo /.gl/ >> .git/info/exclude
    grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >> .git/info/exclude
    mkdir -p .gl /tmp/amd64/partial .whl
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    apt-get $o update -q >/dev/null
    (cd .gl && apt-get $o download libvulkan1 >/dev/null)
    python3 -m pip wheel -q --no-deps -w .whl guided-diffusion-sdk   # an sdist on PyPI: build the wheel here
    ls -la .gl .whl
    echo "prepared; rehearsing here (lavapipe, CPU PyTorch, short)"
    REHEARSAL=1 exec bash "$0"
fi

log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/log"; }
run() { log "\$ $*"; "$@" 2>&1 | tee -a "$OUT/log"; return "${PIPESTATUS[0]}"; }

# Vulkan loader and the NVIDIA ICD (the device machine has neither loader nor internet).
if ! ldconfig -p | grep -q libvulkan.so.1 && ls .gl/*.deb >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" REDDIFF_CACHE_DIR="$OUT/cache" PYTHONUNBUFFERED=1
BIN=target/release
command -v nvidia-smi >/dev/null && run nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.total --format=csv
run $BIN/reddiff adapter || { log "no adapter: stopping"; exit 1; }

if [ "${REHEARSAL:-0}" = 1 ]; then
    DEV=cpu; ROUNDS=1; REPS=2; FULL_B=1; LOOP=5
else
    DEV=cuda; ROUNDS=3; REPS=10; FULL_B=1,4; LOOP=100
fi

# Random-weight FFHQ-256 ADM (93.6M parameters) and PyTorch's float32 output on a batch of 1.
if [ ! -f .data/full/ffhq256/io.safetensors ]; then
    run timeout 300 python3 tools/make_fixtures.py --full --full-only ffhq256 --out .data/full
fi
run timeout 300 $BIN/reddiff eps --model .data/full/ffhq256 --input .data/full/ffhq256/io.safetensors --output "$OUT/eps_ffhq256.safetensors"
run python3 - "$OUT" <<'EOF' | tee "$OUT/parity.txt"
import sys
from safetensors.torch import load_file
ref = load_file(".data/full/ffhq256/io.safetensors")["eps"]
got = load_file(sys.argv[1] + "/eps_ffhq256.safetensors")
got = next(iter(got.values()))
rel = ((got - ref).abs().max() / ref.abs().max()).item()
print(f"FFHQ-256 random weights, batch 1: max|reddiff - PyTorch| / max|PyTorch| = {rel:.3e}")
EOF

run timeout 900 python3 tools/bench_side_by_side.py --torch-device "$DEV" --rounds "$ROUNDS" --reps "$REPS" \
    --model ".data/full/ffhq256:$FULL_B" --model models/emoji32:1,8 \
    --loop-model .data/full/ffhq256 --loop-steps "$LOOP" --bin-dir "$BIN" --out "$OUT/table.md"
ls "$OUT/cache" >/dev/null 2>&1 && cp "$OUT"/cache/*.json "$OUT/" 2>/dev/null
log "done"
