#!/usr/bin/env bash
# The noise dial on trained runs: `cdcgan eval` (10,000 digits) of each run at each
# --noise-scale, into one CSV and a table (docs/experiments/2026-12-01-noise-dial.md).
#
#   bench/sampling.sh RUN... [> table]
#
# Environment (defaults in brackets):
#   BIN     the cdcgan binary           [$CARGO_TARGET_DIR/release/cdcgan, built if missing]
#   NOISES  --noise-scale values        ["1 1.05 1.1"]
#   COUNT   digits scored per setting   [10000]
#   CAS     "1": also --cas at each setting (~7 min each on 2 cores) [off]
#   OUT     the CSV                     [bench/out/sampling.csv]
#
# eval writes each run's eval.json; the last setting's is left there.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: bench/sampling.sh RUN..." >&2; exit 2; }
runs=()
for run in "$@"; do runs+=("$(realpath "$run")"); done
[ -n "${BIN:-}" ] && BIN="$(realpath "$BIN")"
out="$(realpath -m "${OUT:-$(dirname "$0")/out/sampling.csv}")"
cd "$(dirname "$0")/.."
if [ -z "${BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cdcgan-target}"
  cargo build --release --quiet
  BIN="$CARGO_TARGET_DIR/release/cdcgan"
fi
cas=""
[ "${CAS:-}" = 1 ] && cas="--cas"
mkdir -p "$(dirname "$out")"
echo "run,noise,accuracy,frechet,precision,recall,lowest_diversity,cas,seconds" >"$out"
for run in "${runs[@]}"; do
  for noise in ${NOISES:-1 1.05 1.1}; do
    # shellcheck disable=SC2086 # empty or one word
    "$BIN" eval --run "$run" --count "${COUNT:-10000}" --noise-scale "$noise" $cas --json >"$out.json"
    python3 - "$out.json" "$run" "$noise" >>"$out" <<'EOF'
import json, sys
path, run, noise = sys.argv[1:]
r = json.load(open(path))
g = r["generated"]
cas = (r.get("cas") or {}).get("generated", "")
print(f"{run},{noise},{g['accuracy']:.4f},{g['frechet']:.3f},{g['precision']:.3f},"
      f"{g['recall']:.3f},{min(r['diversity']):.2f},{cas},{r['seconds']:.0f}")
EOF
    tail -n 1 "$out" >&2
  done
done
rm -f "$out.json"
python3 - "$out" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("| run | noise | accuracy | Frechet | precision | recall | lowest diversity | CAS |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['run'].rsplit('/', 1)[-1]} | {r['noise']} | {r['accuracy']} | {r['frechet']} | "
          f"{r['precision']} | {r['recall']} | {r['lowest_diversity']} | {r['cas']} |")
EOF
