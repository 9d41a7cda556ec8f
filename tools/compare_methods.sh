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
#   CACHE    every row's per-image scores (KEY.csv, `reddiff eval --resume`) and the timing of each finished
#            run (KEY.runs) are kept here: a row stopped part-way (DEADLINE, or the machine went away) continues
#            where it stopped in a later run with the same images, limit and steps, so a long table can be
#            computed over several sessions [target/compare-cache]; delete it to start afresh
#   RETIME   1: every finished row without one gets a timing run of its first BATCH images (their scores are
#            not kept; the timing joins KEY.runs, marked "retime"), for a table whose s/image comes from a quiet
#            machine although its rows were computed over sessions on a shared one [unset]
#   DEADLINE a time (seconds since 1970) at which to stop: rows are computed cheapest first, the run in
#            progress is stopped (the images it finished are kept), and rows not finished are listed with
#            how many images they have so far
# A method that cannot run a task (e.g. DDRM on phase retrieval) gets a row saying why. Uses
# target/release/reddiff (built if missing). PSNR/SSIM are means over the images in KEY.csv; s/image is the
# wall time per image of the fastest run that finished (whole batches solved together, the model load
# excluded); peak MiB is the most GPU memory reddiff's buffers held at once in any of the row's runs
# (weights, activations, captured graphs).
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
declare -A csv_of
resumed=0
unfinished=0
# The table row of a cached row: means of the per-image CSV's last four columns (the file name, first, may
# hold commas), the steps the images ran, the fastest finished run's s/image and the largest peak.
row_of() { # task method key
    local n
    n=$(( $(wc -l < "$3.csv") - 1 ))
    awk -F, -v task="$1" -v method="$2" -v want="$limit" -v n="$n" -v runs="$3.runs" '
        NR > 1 { a += $(NF-3); b += $(NF-2); c += $(NF-1); cc += $(NF-1) * $(NF-1); d += $NF; steps = $(NF-4) }
        END {
            best = ""; peak = ""
            while ((getline line < runs) > 0) {
                split(line, f, " ")
                if (best == "" || f[2] + 0 < best + 0) best = f[2]
                if (peak == "" || f[3] + 0 > peak + 0) peak = f[3]
            }
            images = (n < want) ? n " of " want " (unfinished)" : n
            # The standard error of the mean PSNR over the images (their spread, not the sampling noise).
            se = (n > 1) ? sqrt((cc - c * c / n) / (n - 1) / n) : 0
            printf "| %s | %s | %s | %s | %.2f | %.4f | %.2f ± %.2f | %.4f | %s | %s |\n", task, method, images, steps,
                a / n, b / n, c / n, se, d / n, (best == "" ? "—" : best), (peak == "" ? "—" : peak)
        }' "$3.csv"
}
for run in "${order[@]}"; do
    for task in $tasks; do
        method="${run%%:*}"
        st="${run#*:}"
        steps=()
        [ -n "${run#*:}" ] && steps=(--steps "${run#*:}")
        key="$cache/$(echo "$images|$limit|$task|$method|${steps[*]:-}" | sha256sum | cut -c1-16)"
        left=$(( ${DEADLINE:-0} - $(date +%s) ))
        have=0
        [ -s "$key.csv" ] && have=$(( $(wc -l < "$key.csv") - 1 ))
        if [ -s "$key.row" ]; then
            line="$(cat "$key.row")"
        elif [ "$method" = dps ] && ! [[ " $dps_tasks " == *" $task "* ]]; then
            line="| $task | $method | not run (DPS_TASKS=$dps_tasks) | ${st:-—} | — | — | — | — | — | — |"
        elif [ "$have" -ge "$limit" ]; then
            if [ "${RETIME:-}" = 1 ] && ! grep -q retime "$key.runs" 2>/dev/null \
                && { [ -z "${DEADLINE:-}" ] || [ "$left" -gt 5 ]; }; then
                limit_run=()
                [ -n "${DEADLINE:-}" ] && limit_run=(timeout "$left")
                if "${limit_run[@]}" "$bin" eval --paper-defaults --task "$task" --method "$method" "${steps[@]}" --images "$images" \
                    --limit "$batch" --batch "$batch" --out "$tmp/retime.csv" > "$tmp/log" 2> "$tmp/err"; then
                    grep "^| $task |" "$tmp/log" | awk -F'|' '{ gsub(/ /, ""); print $4, $10, $11, "retime" }' >> "$key.runs"
                fi
            fi
            line="$(row_of "$task" "$method" "$key")"
        elif [ -n "${DEADLINE:-}" ] && [ "$left" -le 5 ]; then
            line="| $task | $method | not run (time limit) | ${st:-—} | — | — | — | — | — | — |"
            [ "$have" -gt 0 ] && line="$(row_of "$task" "$method" "$key")"
            unfinished=$((unfinished + 1))
        else
            [ "$have" -gt 0 ] && resumed=$((resumed + 1))
            limit_run=()
            [ -n "${DEADLINE:-}" ] && limit_run=(timeout "$left")
            "${limit_run[@]}" "$bin" eval --paper-defaults --task "$task" --method "$method" "${steps[@]}" --images "$images" --limit "$limit" --batch "$batch" \
                --resume --out "$key.csv" > "$tmp/log" 2> "$tmp/err"
            rc=$?
            # The run's own table line: images, steps, ..., s/image, peak MiB.
            done_line="$(grep "^| $task |" "$tmp/log")"
            if [ "$rc" = 0 ] && [ -n "$done_line" ]; then
                echo "$done_line" | awk -F'|' '{ gsub(/ /, ""); print $4, $10, $11 }' >> "$key.runs"
            fi
            have=0
            [ -s "$key.csv" ] && have=$(( $(wc -l < "$key.csv") - 1 ))
            if [ "$rc" = 0 ] || { [ "$rc" = 124 ] && [ "$have" -gt 0 ]; }; then
                line="$(row_of "$task" "$method" "$key")"
                [ "$have" -lt "$limit" ] && unfinished=$((unfinished + 1))
            elif [ "$rc" = 124 ]; then
                line="| $task | $method | not run (time limit) | ${st:-—} | — | — | — | — | — | — |"
                unfinished=$((unfinished + 1))
            else
                why="$(grep -m1 -i "error" "$tmp/err" | sed 's/^error: //; s/|/\//g')"
                line="| $task | $method | refused: ${why:-failed} | — | — | — | — | — | — | — |"
                echo "$line" > "$key.row"
            fi
        fi
        echo "$line"
        row["$task|$run"]="$line"
        [ -s "$key.csv" ] && csv_of["$task|$run"]="$key.csv"
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
    echo "Rows accumulate over runs of this script (its cache, \`$cache\`: per-image scores and each finished run's timing),"
    echo "so a row may hold images solved in different runs; s/image is the row's fastest finished run (with RETIME=1 also a"
    echo "timing run of its first $batch images), peak MiB its largest."
    if [ "$resumed" -gt 0 ]; then echo "$resumed rows continued images an earlier run had started."; fi
    if [ "$unfinished" -gt 0 ]; then echo "$unfinished rows are unfinished (time limit): their images column says how many they hold."; fi
    echo
    echo "| task | method | images | steps | PSNR H+y | SSIM H+y | PSNR ± s.e. | SSIM | s/image | peak MiB |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}"
    # Paired differences: each method against RED-diff at the first RD_STEPS value, over the images both
    # rows hold (the spread of the per-image differences, not of the images, gives the standard error).
    ref_run="reddiff:${rd_steps%% *}"
    if [[ " $methods " == *" reddiff "* ]]; then
        echo
        echo "Paired with RED-diff at ${rd_steps%% *} steps, per image: the mean PSNR difference (method − RED-diff) ± its"
        echo "standard error, and on how many of the images in common the method scores higher."
        echo
        echo "| task | method | steps | images in common | PSNR − RED-diff | higher on |"
        echo "|---|---|---|---|---|---|"
        for task in $tasks; do
            ref="${csv_of["$task|$ref_run"]:-}"
            [ -n "$ref" ] || continue
            for run in "${runs[@]}"; do
                [ "$run" = "$ref_run" ] && continue
                other="${csv_of["$task|$run"]:-}"
                [ -n "$other" ] || continue
                # The image name is every field before the last seven (it may hold commas).
                awk -F, -v task="$task" -v method="${run%%:*}" '
                    function name() { k = $1; for (i = 2; i <= NF - 7; i++) k = k "," $i; return k }
                    FNR == 1 { next }
                    NR == FNR { ref[name()] = $(NF-1); next }
                    (name() in ref) { steps = $(NF-4); d = $(NF-1) - ref[name()]; n++; s += d; ss += d * d; if (d > 0) up++ }
                    END {
                        if (n == 0) exit
                        se = (n > 1) ? sqrt((ss - s * s / n) / (n - 1) / n) : 0
                        printf "| %s | %s | %s | %d | %+.2f ± %.2f dB | %d of %d |\n", task, method, steps, n, s / n, se, up + 0, n
                    }' "$ref" "$other"
            done
        done
    fi
} > "$out"
echo "wrote $out"
