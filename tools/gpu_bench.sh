#!/usr/bin/env bash
# The real-GPU check of issue 9, as ONE prepared run on a machine with an NVIDIA GPU, no internet and
# PyTorch installed (the project's device machine). Prepare here first (needs internet and cargo):
#
#   bash tools/gpu_bench.sh --prepare      # release binaries, Vulkan loader .debs (.gl/), wheel for
#                                          # guided-diffusion-sdk (.whl/); then a rehearsal on this machine
#
# then on the GPU machine, with .gl, .whl, target/release/reddiff and target/release/examples/{bench_model,bench_vjp}
# carried along:
#
#   bash tools/gpu_bench.sh               # writes $OUT (or ./gpu-bench-out) : log, table.md, parity.txt
#
# What it runs: `reddiff adapter`; random-weight ADM FFHQ-256 (tools/make_fixtures.py --full, made there
# with PyTorch) -> parity of reddiff's forward against PyTorch's float32 output, with the f32 tiled kernels
# (REDDIFF_COOP=0) and with the cooperative-matrix (tensor-core, f16 operand) convolution; then
# tools/bench_side_by_side.py: forward b1/b4 for FFHQ-256 and b1/b8 for emoji32 in reddiff's default
# configuration, against PyTorch CUDA eager fp32 with TF32 off and with PyTorch's default (cuDNN TF32),
# interleaved, after a batch-1 table of the f32 tiled kernels and both kernel families with wgpu's shader loop
# bounding kept (REDDIFF_LOOP_BOUNDING=1); 100 RED-diff steps at 256²; the VJP (tape + product) against torch
# autograd; a per-kernel profile of
# one FFHQ-256 forward with the autotuning table; the VJP (what DPS and PiGDM run every step) from captured graphs
# against dispatch-by-dispatch recording (examples/bench_vjp, emoji32 b1/b8 and FFHQ-256 b1; into the log).
# Files written to $OUT (at most 4: log, table.md, parity.txt, tune.json); scratch goes to $TMPDIR.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-bench-out}"
mkdir -p "$OUT"

if [ "${1:-}" = "--prepare" ]; then
    set -e
    cargo build --release --bin reddiff --example bench_model --example bench_vjp
    grep -qx '/.gl/' .git/info/exclude || echo /.gl/ >> .git/info/exclude
    grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >> .git/info/exclude
    mkdir -p .gl /tmp/amd64/partial .whl
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    apt-get $o update -q >/dev/null
    # The NVIDIA Vulkan driver lives in libGLX_nvidia, which needs glvnd's dispatch libraries too.
    (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
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
SCRATCH="${TMPDIR:-/tmp}/gpu-bench"
mkdir -p "$SCRATCH"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" REDDIFF_CACHE_DIR="$SCRATCH/cache" PYTHONUNBUFFERED=1
BIN=target/release
command -v nvidia-smi >/dev/null && run nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.total --format=csv
if ! REDDIFF_COOP=0 run $BIN/reddiff adapter; then
    VK_LOADER_DEBUG=error,warn,driver run $BIN/reddiff adapter
    log "no adapter: stopping"
    exit 1
fi
MAIN_VARIANT=(--variant default:)
F32_TABLE=1
if ! run timeout 120 $BIN/reddiff adapter; then
    log "the default (cooperative-matrix) configuration failed: benchmarking the f32 kernels only"
    export REDDIFF_COOP=0
    MAIN_VARIANT=(--variant f32:REDDIFF_COOP=0)
    F32_TABLE=0
fi

if [ "${REHEARSAL:-0}" = 1 ]; then
    # lavapipe needs ~30 s per FFHQ-256 forward: the rehearsal times the small model only.
    DEV=cpu; ROUNDS=1; REPS=2; LOOP=5; MODELS=(--model models/emoji32:1,8); LOOP_MODEL=models/emoji32
    MODELS_B1=(--model models/emoji32:1)
    EVAL=(--paper-defaults --method reddiff --steps 5 --limit 4)
else
    DEV=cuda; ROUNDS=${ROUNDS:-3}; REPS=10; LOOP=100; MODELS=(--model .data/full/ffhq256:1,4 --model models/emoji32:1,8); LOOP_MODEL=.data/full/ffhq256
    MODELS_B1=(--model .data/full/ffhq256:1 --model models/emoji32:1)
    EVAL=(--paper-defaults --method reddiff --steps 100)
fi

# Random-weight FFHQ-256 ADM (93.6M parameters) and PyTorch's float32 output on a batch of 1.
if [ ! -f .data/full/ffhq256/io.safetensors ]; then
    run timeout 300 python3 tools/make_fixtures.py --full --full-only ffhq256 --out .data/full --threads 8
fi
for v in f32 coop; do
    [ $v = f32 ] && c=0 || c=1
    REDDIFF_COOP=$c run timeout 300 $BIN/reddiff eps --model .data/full/ffhq256 --input .data/full/ffhq256/io.safetensors --output "$SCRATCH/eps_$v.safetensors"
done
run python3 - "$SCRATCH" <<'EOF' | tee "$OUT/parity.txt"
import os, sys
from safetensors.torch import load_file
ref = load_file(".data/full/ffhq256/io.safetensors")["eps"]
for v in ("f32", "coop"):
    f = f"{sys.argv[1]}/eps_{v}.safetensors"
    if not os.path.exists(f):
        print(f"{v}: no output")
        continue
    got = next(iter(load_file(f).values()))
    rel = ((got - ref).abs().max() / ref.abs().max()).item()
    print(f"FFHQ-256 random weights, batch 1, reddiff {v}: max|reddiff - PyTorch| / max|PyTorch| = {rel:.3e}")
EOF

# Restoration quality with and without tensor cores: SR x4 and box inpainting of the 32 held-out samples,
# 100 RED-diff steps, the built-in prior (mean PSNR per variant; issue 9 asks for < 0.05 dB of movement).
for task in sr4 inpaint-box; do
    for v in f32 coop; do
        [ $v = f32 ] && c=0 || c=1
        REDDIFF_COOP=$c run timeout 120 $BIN/reddiff eval --task $task "${EVAL[@]}" --images assets/samples --batch 32 --out "$SCRATCH/eval_${task}_$v.csv" >/dev/null
    done
done
run python3 - "$SCRATCH" <<'EOF' | tee -a "$OUT/parity.txt"
import csv, os, sys
for task in ("sr4", "inpaint-box"):
    rows = {}
    for v in ("f32", "coop"):
        f = f"{sys.argv[1]}/eval_{task}_{v}.csv"
        rows[v] = {r["image"]: float(r["psnr"]) for r in csv.DictReader(open(f))} if os.path.exists(f) else {}
    common = sorted(set(rows["f32"]) & set(rows["coop"]))
    if not common:
        print(f"{task}: no paired results")
        continue
    mean = lambda v: sum(rows[v][i] for i in common) / len(common)
    diff = max(abs(rows["coop"][i] - rows["f32"][i]) for i in common)
    print(f"{task}, {len(common)} images: mean PSNR f32 {mean('f32'):.3f} dB, coop {mean('coop'):.3f} dB "
          f"(difference {mean('coop') - mean('f32'):+.3f} dB, largest per image {diff:.3f} dB)")
EOF

# First, at batch 1, what wgpu's loop counter in every shader loop costs (reddiff leaves it out by default;
# REDDIFF_LOOP_BOUNDING=1 keeps it): the f32 tiled kernels (what GPUs without cooperative matrices and
# browsers get) with and without it, and the tensor-core path with it, in the same rounds; and the f32 tiled
# kernels untuned, as the browser runs them (REDDIFF_AUTOTUNE=0: the vec4 4x4 tile with split-K for layers
# of few workgroups) against the scalar 4x4 tile that was the untuned default until stop 33. Then the default
# configuration (tensor cores where the adapter has them) on everything, the RED-diff loop and the VJP
# included, appended to the same table.
if [ "$F32_TABLE" = 1 ]; then
    LB_VARIANTS=(--variant f32:REDDIFF_COOP=0 --variant f32-loop-bounding:REDDIFF_COOP=0,REDDIFF_LOOP_BOUNDING=1
                 --variant coop-loop-bounding:REDDIFF_LOOP_BOUNDING=1)
else
    LB_VARIANTS=(--variant f32:REDDIFF_COOP=0 --variant f32-loop-bounding:REDDIFF_COOP=0,REDDIFF_LOOP_BOUNDING=1)
fi
LB_VARIANTS+=(--variant f32-untuned:REDDIFF_COOP=0,REDDIFF_AUTOTUNE=0
              --variant f32-untuned-scalar4x4:REDDIFF_COOP=0,REDDIFF_AUTOTUNE=0,REDDIFF_TILE=4x4)
run timeout 150 python3 tools/bench_side_by_side.py --torch-device "$DEV" --rounds 2 --reps 5 \
    "${MODELS_B1[@]}" "${LB_VARIANTS[@]}" --loop-steps 0 --bin-dir "$BIN" --out "$OUT/table.md"
echo "" >> "$OUT/table.md"
run timeout "${BENCH_SECONDS:-900}" python3 tools/bench_side_by_side.py --torch-device "$DEV" --rounds "$ROUNDS" --reps "$REPS" \
    "${MODELS[@]}" "${MAIN_VARIANT[@]}" \
    --loop-model "$LOOP_MODEL" --loop-steps "$LOOP" --vjp --bin-dir "$BIN" --out "$OUT/table.md" --append
run timeout 60 $BIN/examples/bench_vjp models/emoji32 --reps 5
run timeout 60 $BIN/examples/bench_vjp models/emoji32 --batch 8 --reps 3
[ "${REHEARSAL:-0}" = 1 ] || run timeout 90 $BIN/examples/bench_vjp .data/full/ffhq256 --reps 3
REDDIFF_PROFILE=1 REDDIFF_AUTOTUNE=0 REDDIFF_CACHE_DIR="$SCRATCH/fresh" run timeout 120 $BIN/examples/bench_model "$LOOP_MODEL" --batch 1 --reps 3
cat "$SCRATCH"/cache/*.json > "$OUT/tune.json" 2>/dev/null
log "done"
