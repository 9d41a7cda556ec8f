#!/usr/bin/env bash
# RED-diff against the RED-diff paper's baselines (DiffPIR, DDRM, PiGDM, DPS) on held-out images the prior
# never saw, the same measurement for every method (noise keyed by file name), written as a table to
# docs/COMPARISON.md. Every method runs at its published settings; only the step counts below are knobs.
#
#   bash tools/compare_methods.sh
#
# Environment (defaults in brackets):
#   IMAGES   folder of held-out images [assets/samples]; more held-out emoji: tools/prepare_emoji.py --samples
#   LIMIT    images per row [all in IMAGES]
#   TASKS    [inpaint-box inpaint-random sr4 deblur-gauss phase]
#   METHODS  [reddiff diffpir ddrm pgdm dps]
#   RD_STEPS RED-diff steps, one row per value ["1000 200": the paper's, and what suits the emoji prior]
#   DPS_STEPS DPS steps [1000, the paper's]
#   BATCH    images per GPU batch [16]              OUT      the table [docs/COMPARISON.md]
#   DPS_TASKS the tasks DPS runs [all of TASKS]; its 1000 steps each differentiate the network, so on a CPU
#            rasterizer it may be limited to some (the others get a row saying so)
#   CACHE    finished rows are kept here and reused by later runs with the same images, limit and steps
#            [target/compare-cache]; delete it to start afresh
#   DEADLINE a time (seconds since 1970) at which to stop: rows are computed cheapest first, the run in
#            progress is stopped, and rows not finished by then are listed as not run (time limit)
# A method that cannot run a task (e.g. DDRM on phase retrieval) gets a row saying why. Uses
# target/release/reddiff (built if missing). s/image is wall time with the whole batch solved together; peak
# MiB is the most GPU memory reddiff's buffers held at once in the row's run (weights, activations, captured
# graphs).
set -uo pipefail
cd "$(dirname "$0")/.."
images="${IMAGES:-assets/samples}"
tasks="${TASKS:-inpaint-box inpaint-random sr4 deblur-gauss phase}"
methods="${METHODS:-reddiff diffpir ddrm pgdm dps}"
rd_steps="${RD_STEPS:-1000 200}"
dps_steps="${DPS_STEPS:-1000}"
batch="${BATCH:-16}"
out="${OUT:-docs/COMPARISON.md}"
dps_tasks="${DPS_TASKS:-$tasks}"
cache="${CACHE:-target/compare-cache}"
mkdir -p "$cache"
n_images="$(find "$images" -maxdepth 1 -type f | wc -l)"
limit="${LIMIT:-$n_images}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
[ -x target/release/reddiff ] || cargo build --release || exit 1
bin=target/release/reddiff
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# Every (task, run) pair; RED-diff once per value of RD_STEPS, the others at their published count.
runs=()
for method in $methods; do
    case "$method" in
        reddiff) for s in $rd_steps; do runs+=("reddiff:$s"); done ;;
        dps) runs+=("dps:$dps_steps") ;;
        *) runs+=("$method:") ;;
    esac
done
# Computed cheapest first (so that a DEADLINE cuts the costly rows), listed by task in the table.
cost() {
    case "$1" in ddrm:*) echo 1 ;; diffpir:*) echo 2 ;; pgdm:*) echo 3 ;; reddiff:*) echo $((4 + ${1#*:} / 100)) ;; *) echo 99 ;; esac
}
mapfile -t order < <(for run in "${runs[@]}"; do echo "$(cost "$run") $run"; done | sort -n -s -k1,1 | cut -d" " -f2)
declare -A row
reused=0
cut_short=0
for run in "${order[@]}"; do
    for task in $tasks; do
        method="${run%%:*}"
        st="${run#*:}"
        steps=()
        [ -n "${run#*:}" ] && steps=(--steps "${run#*:}")
        key="$cache/$(echo "$images|$limit|$task|$method|${steps[*]:-}" | sha256sum | cut -c1-16).row"
        left=$(( ${DEADLINE:-0} - $(date +%s) ))
        if [ -s "$key" ]; then
            line="$(cat "$key")"
            reused=$((reused + 1))
        elif [ "$method" = dps ] && ! [[ " $dps_tasks " == *" $task "* ]]; then
            line="| $task | $method | not run (DPS_TASKS=$dps_tasks) | ${st:-—} | — | — | — | — | — | — |"
        elif [ -n "${DEADLINE:-}" ] && [ "$left" -le 5 ]; then
            line="| $task | $method | not run (time limit) | ${st:-—} | — | — | — | — | — | — |"
            cut_short=$((cut_short + 1))
        else
            limit_run=()
            [ -n "${DEADLINE:-}" ] && limit_run=(timeout "$left")
            "${limit_run[@]}" "$bin" eval --paper-defaults --task "$task" --method "$method" "${steps[@]}" --images "$images" --limit "$limit" --batch "$batch" \
                --out "$tmp/$task-$method.csv" > "$tmp/log" 2> "$tmp/err"
            rc=$?
            if [ "$rc" = 0 ]; then
                line="$(grep "^| $task |" "$tmp/log")"
                echo "$line" > "$key"
            elif [ "$rc" = 124 ]; then
                line="| $task | $method | not run (time limit) | ${st:-—} | — | — | — | — | — | — |"
                cut_short=$((cut_short + 1))
            else
                why="$(grep -m1 -i "error" "$tmp/err" | sed 's/^error: //; s/|/\//g')"
                line="| $task | $method | refused: ${why:-failed} | — | — | — | — | — | — | — |"
                echo "$line" > "$key"
            fi
        fi
        echo "$line"
        row["$task|$run"]="$line"
    done
done
rows=()
for task in $tasks; do
    for run in "${runs[@]}"; do rows+=("${row["$task|$run"]}"); done
done
adapter="$("$bin" adapter | head -1 | cut -d";" -f1)"
{
    echo "# RED-diff and the baselines"
    echo
    echo "Generated by \`bash tools/compare_methods.sh\` (IMAGES=$images LIMIT=$limit RD_STEPS=\"$rd_steps\" DPS_STEPS=$dps_steps"
    echo "DPS_TASKS=\"$dps_tasks\" BATCH=$batch) on $(date -u +%Y-%m-%d): held-out emoji (32x32, never seen in training), the built-in emoji32 prior,"
    echo "noiseless measurements, seed 0, the same y for every method. Settings (src/solvers/*.rs cite their sources):"
    echo
    echo "- RED-diff: $(echo $rd_steps | sed 's/ / and /g') steps, lr 0.5 (0.25 for inpainting), lambda 0.25, linear weighting (the paper's defaults)."
    echo "- DiffPIR: the authors' configs (inpainting 20 steps, lambda 1, zeta 1; SR and deblurring 100 steps, zeta 0.1)."
    echo "- DDRM: 20 steps, eta 0.85, eta_b 1; linear tasks with an SVD."
    echo "- PiGDM: 100 steps, eta 0, guidance weight 1 (the RED-diff authors' implementation); linear tasks."
    echo "- DPS: $dps_steps steps (the paper: 1000), DDPM sampling, zeta 0.5 inpainting / 0.3 SR and blur / 1.0 phase."
    echo
    echo "PSNR/SSIM on [0, 1] images, means over the images; s/image is wall time on \`$adapter\` with $batch images"
    echo "solved as one batch; peak MiB is the most GPU memory reddiff's buffers (pool and captured graphs) held at once. The table reports; nothing was tuned on it."
    echo "$reused of the ${#rows[@]} rows were taken from earlier runs of this script (its cache, \`$cache\`: same images, limit, task,"
    echo "method and steps), with the timings and memory of those runs."
    if [ "$cut_short" -gt 0 ]; then echo "$cut_short rows were not run: the run had a time limit (DEADLINE)."; fi
    echo
    echo "| task | method | images | steps | PSNR H+y | SSIM H+y | PSNR | SSIM | s/image | peak MiB |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
} > "$out"
echo "wrote $out"
