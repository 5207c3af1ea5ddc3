#!/usr/bin/env bash
# Levers on an image folder at equal time (or equal steps): each row trains the default
# recipe with its flags, is scored by `cdcgan eval` on 10,000 samples with the folder's
# own evaluator, and lands as one line of a CSV; the `peer` row trains the PyTorch peer
# (../shared/peers/torch_cdcgan.py, the default's network) for the same time and scores
# 10,000 of its PNGs in the same class mix.
#
#   bench/folder.sh DATA CLASSIFIER [OUT=bench/out/folder]
#
# DATA is an image folder (e.g. `scripts/emoji data/emoji`), CLASSIFIER its evaluator at
# SIZE (`cdcgan classifier train --data DATA --image-size SIZE --out FILE`).
#
# Environment (defaults in brackets):
#   BIN      the cdcgan binary            [$CARGO_TARGET_DIR/release/cdcgan, built if missing]
#   SIZE     image side: 28, 32 or 64     [32]
#   ROWS     names from the list below    [default]
#   SEEDS    training seeds               ["0"]
#   MINUTES  training budget              [10]
#   STEPS    train to this many steps instead of MINUTES (levers of equal step cost on a
#            busy machine); the peer row needs MINUTES
#   PYTHON   the peer's Python            [$HOME/torch-venv/bin/python]
#   EXTRA    flags added to every cdcgan row, e.g. "--g-channels 128" []
set -euo pipefail
data="$(realpath "$1")"
clf="$(realpath "$2")"
out="$(realpath -m "${3:-$(dirname "$0")/out/folder}")"
[ -n "${BIN:-}" ] && BIN="$(realpath "$BIN")"
peer="$(realpath -m "$(dirname "$0")/../../shared/peers/torch_cdcgan.py")"
cd "$(dirname "$0")/.."
size="${SIZE:-32}"
seeds="${SEEDS:-0}"
minutes="${MINUTES:-10}"
python="${PYTHON:-$HOME/torch-venv/bin/python}"
if [ -z "${BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cdcgan-target}"
  cargo build --release --quiet
  BIN="$CARGO_TARGET_DIR/release/cdcgan"
fi
if [ -n "${STEPS:-}" ]; then length=(--max-steps "$STEPS" --max-minutes 600); else length=(--max-minutes "$minutes"); fi

# name|flags on top of the default recipe (`peer`: the PyTorch peer instead).
all_rows=(
  "default|"
  "planes|--cond planes"
  "lecam|--lecam 0.3"
  "ada|--augment color,translation,cutout --augment-p adaptive"
  "ada-lecam|--augment color,translation,cutout --augment-p adaptive --lecam 0.3"
  "even|--even-classes"
  "datalabels|--fake-labels data"
  "hinge|--loss hinge"
  "beta0|--beta1 0 --beta2 0.99"
  "d64|--d-channels 64"
  "g128|--g-channels 128"
  "g256|--g-channels 256"
  "peer|"
)
rows=" ${ROWS:-default} "
mkdir -p "$out"
csv="$out/results.csv"
[ -f "$csv" ] || echo "row,seed,size,steps,wall_s,accuracy,frechet,precision,recall" > "$csv"

# The figures of an eval --json report, as CSV fields.
figures() {
  python3 -c 'import json,sys; g=json.load(open(sys.argv[1]))["generated"]
print(",".join(f"{g[k]:.4f}" for k in ("accuracy","frechet","precision","recall")))' "$1"
}

# mix SAMPLES OUT: links to 10,000 of SAMPLES' PNGs (one sub-folder per class), each class's
# first, in the proportions of DATA's classes (as `eval --run --class-mix data` draws).
mix() {
  python3 - "$data" "$1" "$2" <<'PY'
import os, sys
data, samples, out = sys.argv[1:]
classes = sorted(c for c in os.listdir(data) if os.path.isdir(os.path.join(data, c)))
counts = [len(os.listdir(os.path.join(data, c))) for c in classes]
count, total = 10_000, sum(counts)
shares = [count * n // total for n in counts]
for c in sorted(range(len(counts)), key=lambda c: -(count * counts[c] % total))[: count - sum(shares)]:
    shares[c] += 1
for c, k in zip(classes, shares):
    files = sorted(os.listdir(os.path.join(samples, c)))
    if len(files) < k:
        sys.exit(f"{samples}/{c}: {len(files)} samples, the mix needs {k}")
    os.makedirs(os.path.join(out, c))
    for f in files[:k]:
        os.symlink(os.path.join(samples, c, f), os.path.join(out, c, f))
PY
}
classes=$(find "$data" -mindepth 1 -maxdepth 1 -type d | wc -l)

for entry in "${all_rows[@]}"; do
  name="${entry%%|*}"; flags="${entry#*|}"
  [[ "$rows" == *" $name "* ]] || continue
  for seed in $seeds; do
    run="$out/$name-$size-s$seed"
    rm -rf "$run"
    if [ "$name" = peer ]; then
      [ -z "${STEPS:-}" ] || { echo "the peer row trains for MINUTES, not STEPS" >&2; exit 2; }
      # The default's network at this size: G 64 at 28/32 px, 128 at 64 px; the peer
      # tells D the class by label planes.
      g=64; [ "$size" = 64 ] && g=128
      "$python" "$peer" --threads 2 --folder "$data" --image-size "$size" --seed "$seed" \
        --g-channels "$g" --d-channels 32 --batch 25 --lr 4e-4 --class-norm --no-d-batch-norm \
        --spectral-norm --minibatch-std --ema 0.9995 --noise-scale 1.07 \
        --epochs 100000 --max-seconds "$((minutes * 60))" --export-png "$((classes * 10000))" \
        --out "$run" > "$run.log" 2>&1
      # The peer writes an equal share per class; `eval --run` draws the data's class mix,
      # so score the peer's first PNGs of each class in that mix.
      mix "$(ls -d "$run"/png_* | head -1)" "$run/mix"
      "$BIN" eval --images "$run/mix" --data "$data" --classifier "$clf" --json > "$run.eval.json"
      steps=$(grep -o 'done: [0-9]* iters' "$run.log" | tail -n 1 | awk '{print $2}')
      wall=$((minutes * 60))
    else
      # shellcheck disable=SC2086
      "$BIN" --threads 2 train --data "$data" --image-size "$size" --seed "$seed" "${length[@]}" \
        --classifier "$clf" --out "$run" --quiet $flags ${EXTRA:-} > "$run.log" 2>&1
      "$BIN" eval --run "$run" --classifier "$clf" --data "$data" --json > "$run.eval.json"
      read -r steps wall < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))
print(s["step"], round(s["wall_s"]))' "$run/status.json")
    fi
    line="$name,$seed,$size,$steps,$wall,$(figures "$run.eval.json")"
    echo "$line" >> "$csv"
    echo "$line"
  done
done
