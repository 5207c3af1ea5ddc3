#!/usr/bin/env bash
# Recipes at equal wall time: each recipe trains under a time budget, is scored by
# `cdcgan eval` (10,000 digits) at each budget mark, and the figures land in one CSV.
#
#   bench/recipes.sh [OUT=bench/out/recipes]
#
# Environment (defaults in brackets):
#   BIN       the cdcgan binary          [$CARGO_TARGET_DIR/release/cdcgan, built if missing]
#   RECIPES   names from the list below  [all]
#   SEEDS     training seeds             ["0 1"]
#   BUDGETS   marks, ascending           ["2 5 10"]
#   UNIT      what the marks count: minutes of training, or steps (for
#             comparing recipes of equal step cost on a busy machine) [minutes]
#   THREADS   threads per run            [2]
#   PARALLEL  runs at once               [1: on a 2-core machine, one at a time]
#   COUNT     digits scored per mark     [10000]
#   CAS_AT    marks also scored with --cas (the classification accuracy score,
#             ~5 min each alone, ~2.5 once the real-digit ceiling is cached) [none], e.g. "10"
#
# A run is trained to the first mark, scored, resumed to the next mark, scored...
# so the marks share one run (resume is exact); a recipe with --lr-schedule gets
# one run per mark, since its schedule spans the budget.
set -euo pipefail
# Paths given relative to where the script is called from.
out="$(realpath -m "${1:-$(dirname "$0")/out/recipes}")"
[ -n "${BIN:-}" ] && BIN="$(realpath "$BIN")"
cd "$(dirname "$0")/.."
seeds="${SEEDS:-0 1}"
budgets="${BUDGETS:-2 5 10}"
threads="${THREADS:-2}"
parallel="${PARALLEL:-1}"
count="${COUNT:-10000}"
unit="${UNIT:-minutes}"
case "$unit" in minutes) limit=--max-minutes ;; steps) limit=--max-steps ;; *) echo "UNIT must be minutes or steps" >&2; exit 2 ;; esac
cas_at=" ${CAS_AT:-} "
if [ -z "${BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cdcgan-target}"
  cargo build --release --quiet
  BIN="$CARGO_TARGET_DIR/release/cdcgan"
fi

# name|train flags; flags without --recipe are on top of `--recipe original` (the row `seed` is it alone). `default`
# is whatever the default recipe is (`--recipe varied` since Dec 2026); `fast-now` is
# `--recipe fast`, the default from Nov 2026 until then, and the `default-*` rows are
# on top of it; `fast` is the default before minibatch std and EMA 0.99 (Nov 2026),
# and the `fast-*` rows name every flag they change from it. The `varied-*` rows are
# on top of `$was_varied`: `--recipe varied` until Dec 2026 (fast with D spectrally
# normalised and without its batch norm; today's varied adds class norm, EMA 0.9995,
# 30 epochs and noise 1.07).
was_varied="--recipe fast --spectral-norm --d-batch-norm false"
all_recipes=(
  "default|--recipe varied"
  "varied-fp32|--recipe varied --precision fp32"
  "varied-auto|--recipe varied --precision auto"
  "fast-now|--recipe fast"
  "fast|--recipe fast --minibatch-std false --ema 0.999"
  "fast-g128|--recipe fast --minibatch-std false --ema 0.999 --g-channels 128"
  "fast-ema99|--recipe fast --minibatch-std false --ema 0.99"
  "fast-ema0|--recipe fast --minibatch-std false --ema 0"
  "fast-ms1|--recipe fast --minibatch-std false --ema 0.999 --mode-seeking 1"
  "fast-ms1-ema0|--recipe fast --minibatch-std false --ema 0 --mode-seeking 1"
  "fast-ms3|--recipe fast --minibatch-std false --ema 0.999 --mode-seeking 3"
  "fast-mbstd|--recipe fast --ema 0.999"
  "fast-ms1-mbstd|--recipe fast --ema 0.999 --mode-seeking 1"
  "fast-mbstd-ema99|--recipe fast --ema 0.99"
  "fast-mbstd-ms03|--recipe fast --ema 0.999 --mode-seeking 0.3"
  "fast-mbstd-ema0|--recipe fast --ema 0"
  "default-lrd8|--recipe fast --lr-d 0.0008"
  "default-lrg2|--recipe fast --lr-g 0.0002"
  "default-beta1-0|--recipe fast --beta1 0"
  "default-bf16|--recipe fast --precision bf16"
  "default-g128|--recipe fast --g-channels 128"
  "default-g128-bf16|--recipe fast --g-channels 128 --precision bf16"
  "default-cbn|--recipe fast --class-norm"
  "default-g128-bf16-cbn|--recipe fast --g-channels 128 --precision bf16 --class-norm"
  "default-ema95|--recipe fast --ema 0.95"
  "default-ema0|--recipe fast --ema 0"
  "default-sn|--recipe fast --spectral-norm"
  "default-sn-hinge|--recipe fast --spectral-norm --loss hinge"
  "default-sn-nobn|--recipe fast --spectral-norm --d-batch-norm false"
  "varied|$was_varied"
  "default-sn-nobn-hinge|--recipe fast --spectral-norm --d-batch-norm false --loss hinge"
  "default-linear|--recipe fast --lr-schedule linear"
  "default-d16|--recipe fast --d-channels 16"
  "default-g128-d16|--recipe fast --g-channels 128 --d-channels 16"
  "default-g128-d16-bf16|--recipe fast --g-channels 128 --d-channels 16 --precision bf16"
  "default-nobn|--recipe fast --d-batch-norm false"
  "default-g128-sn-nobn|--recipe fast --g-channels 128 --spectral-norm --d-batch-norm false"
  "default-g128-bf16-sn-nobn|--recipe fast --g-channels 128 --precision bf16 --spectral-norm --d-batch-norm false"
  "varied-aux|$was_varied --aux-classifier"
  "varied-aux02|$was_varied --aux-classifier --aux-weight 0.2"
  "default-aux02|--recipe fast --aux-classifier --aux-weight 0.2"
  "varied-cbn|$was_varied --class-norm"
  "varied-ema999|$was_varied --ema 0.999"
  "varied-both|$was_varied --cond both"
  "varied-cbn-both|$was_varied --class-norm --cond both"
  "varied-cbn-ema999|$was_varied --class-norm --ema 0.999"
  "varied-cbn-both-ema999|$was_varied --class-norm --cond both --ema 0.999"
  "varied-g128-bf16-cbn|$was_varied --g-channels 128 --precision bf16 --class-norm"
  "varied-cbn-ema999-linear|$was_varied --class-norm --ema 0.999 --lr-schedule linear"
  "default-joint|--recipe fast --joint-batch-norm"
  "varied-joint-cbn-ema999|--recipe fast --spectral-norm --joint-batch-norm --class-norm --ema 0.999"
  "varied-cbn-ema999-d24|$was_varied --class-norm --ema 0.999 --d-channels 24"
  "varied-cbn-ema999-d16|$was_varied --class-norm --ema 0.999 --d-channels 16"
  "varied-cbn-ema9995|$was_varied --class-norm --ema 0.9995"
  "varied-cbn-ema9998|$was_varied --class-norm --ema 0.9998"
  "seed|"
  "ema|--ema 0.999"
  "ttur|--lr-d 0.0004 --lr-g 0.0001"
  "smooth|--label-smoothing 0.1"
  "hinge|--loss hinge"
  "aux|--aux-classifier"
  "projection|--cond projection --loss hinge"
  "combo|--cond projection --loss hinge --lr-d 0.0004 --lr-g 0.0001 --ema 0.999"
  "half|--g-channels 128 --d-channels 64"
  "half-hinge|--g-channels 128 --d-channels 64 --loss hinge"
  "quarter|--g-channels 64 --d-channels 32"
  "half-ema|--g-channels 128 --d-channels 64 --ema 0.999"
  "quarter-ema|--g-channels 64 --d-channels 32 --ema 0.999"
  "quarter-hinge-ema|--g-channels 64 --d-channels 32 --loss hinge --ema 0.999"
  "quarter-ema-lr4|--g-channels 64 --d-channels 32 --ema 0.999 --lr 0.0004"
  "quarter-ema-b50|--g-channels 64 --d-channels 32 --ema 0.999 --batch-size 50"
  "quarter-ema-lr4-b50|--g-channels 64 --d-channels 32 --ema 0.999 --lr 0.0004 --batch-size 50"
  "quarter-hinge-ema-lr4|--g-channels 64 --d-channels 32 --loss hinge --ema 0.999 --lr 0.0004"
  "quarter-ema-lr8|--g-channels 64 --d-channels 32 --ema 0.999 --lr 0.0008"
  "quarter-lr4-b25|--g-channels 64 --d-channels 32 --lr 0.0004 --batch-size 25"
  "quarter-ema-lr4-b25|--g-channels 64 --d-channels 32 --ema 0.999 --lr 0.0004 --batch-size 25"
  "quarter-hinge-ema-lr4-b50|--g-channels 64 --d-channels 32 --loss hinge --ema 0.999 --lr 0.0004 --batch-size 50"
  "quarter-ema-lr8-b50|--g-channels 64 --d-channels 32 --ema 0.999 --lr 0.0008 --batch-size 50"
  "combo-sched|--cond projection --loss hinge --lr-d 0.0004 --lr-g 0.0001 --ema 0.999 --lr-schedule linear"
)
wanted="${RECIPES:-$(printf '%s\n' "${all_recipes[@]}" | cut -d'|' -f1 | tr '\n' ' ')}"
sorted="$(printf '%s\n' $budgets | sort -g | tr '\n' ' ')"
[ "$sorted" = "$(printf '%s\n' $budgets | tr '\n' ' ')" ] || { echo "BUDGETS must ascend: $budgets" >&2; exit 2; }
mkdir -p "$out/runs"

# One recipe and seed through all marks; writes $out/NAME-sSEED-MIN.json (the
# evaluation) and .steps (the steps trained by then) per mark.
one() {
  local name="$1" flags="$2" seed="$3" mark run
  local shared="$out/runs/$name-s$seed"
  [[ "$flags" == *--recipe* ]] || flags="--recipe original $flags"
  rm -rf "$shared" "$shared"-m* "$out/$name-s$seed"-*
  for mark in $budgets; do
    run="$shared"
    # A schedule decays over the whole budget, so each mark is its own run.
    [[ "$flags" == *--lr-schedule* ]] && run="$shared-m$mark"
    if [ -d "$run/checkpoint" ]; then
      "$BIN" --threads "$threads" train --resume "$run" "$limit" "$mark" --quiet >>"$run.log" 2>&1
    else
      # shellcheck disable=SC2086 # flags are words
      "$BIN" --threads "$threads" train --out "$run" --seed "$seed" $flags --epochs 1000 \
        --eval-every 0 "$limit" "$mark" --quiet >"$run.log" 2>&1
    fi
    local cas=""
    [[ "$cas_at" == *" $mark "* ]] && cas="--cas"
    # shellcheck disable=SC2086 # empty or one word
    "$BIN" --threads "$threads" eval --run "$run" --count "$count" $cas --json >"$out/eval.tmp-$name-$seed"
    mv "$out/eval.tmp-$name-$seed" "$out/$name-s$seed-$mark.json"
    tail -n 1 "$run/metrics.csv" | cut -d, -f2 >"$out/$name-s$seed-$mark.steps"
    echo "$name seed $seed: scored at $mark $unit ($(cat "$out/$name-s$seed-$mark.steps") steps)"
  done
}

declare -a pids=()
for name in $wanted; do
  flags=$(printf '%s\n' "${all_recipes[@]}" | awk -F'|' -v n="$name" '$1 == n {print $2; found=1} END {exit !found}') \
    || { echo "unknown recipe: $name" >&2; exit 2; }
  for seed in $seeds; do
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do sleep 1; done
    one "$name" "$flags" "$seed" &
    pids+=("$!")
  done
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
[ "$failed" -eq 0 ] || echo "$failed recipe runs failed (see $out/runs/*.log); their marks are missing below" >&2

# The table: one row per recipe, seed and mark, with the real-data ceiling.
python3 - "$out" <<'EOF'
import csv, glob, json, os, sys
out = sys.argv[1]
rows = []
for path in sorted(glob.glob(os.path.join(out, "*-s*-*.json"))):
    stem = os.path.basename(path)[:-5]
    name, seed, minutes = stem.rsplit("-", 2)
    report = json.load(open(path))
    steps = int(open(path[:-5] + ".steps").read())
    g, c = report["generated"], report["ceiling"]
    cas = report.get("cas") or {}
    rows.append([name, seed[1:], minutes, steps, g["accuracy"], g["frechet"], g["recall"], g["precision"],
                 c["accuracy"], c["frechet"], c["recall"], cas.get("generated", ""), cas.get("real", ""),
                 min(report["diversity"])])
rows.sort(key=lambda r: (r[0], int(r[1]), float(r[2])))
header = ["recipe", "seed", "minutes", "steps", "accuracy", "frechet", "recall", "precision",
          "ceiling_accuracy", "ceiling_frechet", "ceiling_recall", "cas", "cas_real",
          "lowest_class_diversity"]
with open(os.path.join(out, "recipes.csv"), "w", newline="") as f:
    csv.writer(f).writerows([header] + rows)
fmt = lambda v: f"{v:.4f}" if v != "" else ""
print("| recipe | seed | mark | steps | accuracy | Frechet | recall | precision | CAS | lowest class diversity |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.3f} | {r[5]:.2f} | {r[6]:.3f} | {r[7]:.3f} | {fmt(r[11])} | {r[13]:.2f} |")
if rows:
    r = rows[0]
    real_cas = next((fmt(r[12]) for r in rows if r[12] != ""), "")
    print(f"| real ceiling | | | | {r[8]:.3f} | {r[9]:.2f} | {r[10]:.3f} | | {real_cas} | 1.00 |")
# Mean over the seeds, per recipe and mark.
groups = {}
for r in rows:
    groups.setdefault((r[0], float(r[2])), []).append(r)
print()
print("| recipe | mark | seeds | steps | accuracy | Frechet | recall | precision | CAS | lowest class diversity |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (name, minutes), g in sorted(groups.items()):
    mean = lambda i: sum(r[i] for r in g) / len(g)
    scored = [r[11] for r in g if r[11] != ""]
    cas = fmt(sum(scored) / len(scored)) if scored else ""
    print(f"| {name} | {g[0][2]} | {len(g)} | {mean(3):.0f} | {mean(4):.3f} | {mean(5):.2f} | {mean(6):.3f} | {mean(7):.3f} | {cas} | {mean(13):.2f} |")
EOF
