#!/usr/bin/env bash
# One device-machine session (NVIDIA GPU, no internet), in one call of at most ~9.5 minutes:
#   1. tools/gpu_bench.sh: the real-GPU benchmark of issue 9 (bounded to BENCH_BUDGET seconds, default 270);
#   2. fine-tuning of the built-in prior (tools/train_prior.py --init models/emoji32) for the time left
#      before TOTAL_BUDGET seconds (default 565), then the held-out denoising loss of the old and the new
#      prior (tools/prior_loss.py on .data/test.npy) and a DDIM sample grid.
# Prepare here: `bash tools/gpu_bench.sh --prepare` (binaries, .gl, .whl), `tools/prepare_emoji.py` (.data/),
# then `bash tools/gpu_session.sh --pack` (strips the binaries, compresses the data to fit the 64 MiB carry).
# Carry: .gl .whl .data/train.npy.gz .data/test.npy target/release/reddiff target/release/examples/bench_model
# target/release/examples/bench_vjp
# Results in $OUT (8 files at most): log table.md parity.txt tune.json train.log prior/{model.safetensors,
# training_log.json,grid.png}.
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
OUT="${OUT:-$PWD/gpu-session-out}"
mkdir -p "$OUT/prior"

if [ "${1:-}" = "--pack" ]; then
    set -e
    strip target/release/reddiff target/release/examples/bench_model target/release/examples/bench_vjp
    gzip -kf .data/train.npy
    ls -la target/release/reddiff target/release/examples/bench_model target/release/examples/bench_vjp .data/train.npy.gz .data/test.npy
    exit 0
fi

elapsed() { echo $(( $(date +%s) - T0 )); }
BENCH_BUDGET="${BENCH_BUDGET:-270}" TOTAL_BUDGET="${TOTAL_BUDGET:-565}"

# 1. benchmark, in its own process group so that everything it started ends at the deadline
BENCH_SECONDS="${BENCH_SECONDS:-150}" setsid bash tools/gpu_bench.sh &
bpid=$!
while kill -0 "$bpid" 2>/dev/null && [ "$(elapsed)" -lt "$BENCH_BUDGET" ]; do sleep 1; done
kill -- -"$bpid" 2>/dev/null && echo "[session] benchmark stopped at its deadline" | tee -a "$OUT/log"
wait "$bpid"
echo "[session] benchmark finished (rc $?) at $(elapsed) s" | tee -a "$OUT/log"

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
