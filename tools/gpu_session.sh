#!/usr/bin/env bash
# One device-machine session (NVIDIA GPU, no internet), in one call of at most ~9.5 minutes:
#   1. tools/gpu_bench.sh: the real-GPU benchmark of issue 9 (bounded to BENCH_BUDGET seconds, default 270;
#      0 skips it);
#   2. with PLAN=train (the default): fine-tuning of the built-in prior (tools/train_prior.py --init
#      models/emoji32) for the time left before TOTAL_BUDGET seconds (default 565), then the held-out
#      denoising loss of the old and the new prior (tools/prior_loss.py on .data/test.npy) and a DDIM sample
#      grid; with PLAN=compare: issue 10's comparison (tools/compare_methods.sh, every method at its
#      published steps) on the 64 held-out emoji in .data/compare64, 64 per batch, cheapest rows first,
#      stopped at TOTAL_BUDGET (unfinished rows say so).
# Prepare here: `bash tools/gpu_bench.sh --prepare` (binaries, .gl, .whl), `tools/prepare_emoji.py` (.data/;
# for PLAN=compare also `--samples .data/compare64 --n-samples 64 --sample-offset 48`: held-out images
# neither in assets/samples nor among those recommended.json was tuned on), then `bash tools/gpu_session.sh
# --pack` (strips the binaries, compresses the data to fit the 64 MiB carry).
# Carry: .gl .whl target/release/reddiff target/release/examples/bench_model target/release/examples/bench_vjp,
# and .data/train.npy.gz .data/test.npy (PLAN=train) or .data/compare64 (PLAN=compare).
# Results in $OUT (8 files at most): log table.md parity.txt tune.json, then train.log prior/{model.safetensors,
# training_log.json,grid.png} (train) or COMPARISON.md compare.log (compare).
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
OUT="${OUT:-$PWD/gpu-session-out}"
mkdir -p "$OUT/prior"

if [ "${1:-}" = "--pack" ]; then
    set -e
    strip target/release/reddiff target/release/examples/bench_model target/release/examples/bench_vjp
    [ -f .data/train.npy ] && gzip -kf .data/train.npy
    ls -la target/release/reddiff target/release/examples/bench_model target/release/examples/bench_vjp
    ls -la .data/train.npy.gz .data/test.npy .data/compare64 2>&1 | head -5
    exit 0
fi

elapsed() { echo $(( $(date +%s) - T0 )); }
BENCH_BUDGET="${BENCH_BUDGET:-270}" TOTAL_BUDGET="${TOTAL_BUDGET:-565}"

# 1. benchmark, in its own process group so that everything it started ends at the deadline
if [ "$BENCH_BUDGET" -gt 0 ]; then
    BENCH_SECONDS="${BENCH_SECONDS:-150}" setsid bash tools/gpu_bench.sh &
    bpid=$!
    while kill -0 "$bpid" 2>/dev/null && [ "$(elapsed)" -lt "$BENCH_BUDGET" ]; do sleep 1; done
    kill -- -"$bpid" 2>/dev/null && echo "[session] benchmark stopped at its deadline" | tee -a "$OUT/log"
    wait "$bpid"
    echo "[session] benchmark finished (rc $?) at $(elapsed) s" | tee -a "$OUT/log"
fi

# 2b. the comparison of issue 10 instead of training
if [ "${PLAN:-train}" = compare ]; then
    # gpu_bench.sh installed the Vulkan loader; its environment is not inherited.
    if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
        export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    fi
    export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
    echo "[session] comparison from $(elapsed) s" | tee -a "$OUT/log"
    IMAGES="${COMPARE_IMAGES:-.data/compare64}" LIMIT="${COMPARE_LIMIT:-64}" BATCH="${COMPARE_BATCH:-64}" \
        OUT="$OUT/COMPARISON.md" CACHE="${TMPDIR:-/tmp}/compare-cache" DEADLINE=$(( T0 + TOTAL_BUDGET - 10 )) \
        bash tools/compare_methods.sh 2>&1 | tee "$OUT/compare.log"
    echo "[session] comparison finished at $(elapsed) s" | tee -a "$OUT/log"
    exit 0
fi

# 2. prior fine-tuning
{
    [ -f .data/train.npy ] || gunzip -kf .data/train.npy.gz
    if ls .whl/*.whl >/dev/null 2>&1 && [ ! -d /tmp/site/guided_diffusion ]; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    fi
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    export PYTHONUNBUFFERED=1
    left=$(( TOTAL_BUDGET - $(elapsed) - 70 ))
    [ "$left" -lt 60 ] && left=60
    minutes=$(python3 -c "print($left / 60)")
    echo "[session] training for $minutes min from $(elapsed) s"
    rm -rf /tmp/ft
    timeout $(( left + 90 )) python3 tools/train_prior.py --data .data/train.npy --init models/emoji32 --out /tmp/ft \
        --minutes "$minutes" --batch "${TRAIN_BATCH:-512}" --lr "${TRAIN_LR:-1.5e-4}" --lr-warmup 200 --seed 1 \
        --export /tmp/ft/emoji32 --fp16 --grid "$OUT/prior/grid.png"
    echo "[session] training finished (rc $?) at $(elapsed) s"
    cp /tmp/ft/emoji32/model.safetensors /tmp/ft/emoji32/training_log.json "$OUT/prior/" 2>/dev/null
    timeout 90 python3 tools/prior_loss.py models/emoji32 /tmp/ft/emoji32 --data .data/test.npy
    echo "[session] done at $(elapsed) s"
} 2>&1 | tee "$OUT/train.log"
