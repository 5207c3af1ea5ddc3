#!/usr/bin/env bash
# Side-by-side throughput: cdcgan's bench and the PyTorch peer, alternating
# A B A B on the same threads, then the ratios of the medians.
#
#   bench/compare.sh [ROUNDS=2] [THREADS=2]
#
# Needs the peer's venv (see ../shared/peers/README.md):
#   python3 -m venv "$HOME/torch-venv" && "$HOME/torch-venv/bin/pip" install torch==2.15.0 numpy pillow
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-2}"
threads="${2:-2}"
peer_dir="${PEER_DIR:-../shared/peers}"
python="${TORCH_PYTHON:-$HOME/torch-venv/bin/python}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cdcgan-target}"
cargo build --release --quiet
ours="$CARGO_TARGET_DIR/release/cdcgan"
[ -x "$python" ] || { echo "no PyTorch venv at $python (see $peer_dir/README.md)" >&2; exit 1; }

value() { grep -o "$1=[0-9.]*" | tail -n 1 | cut -d= -f2; }
declare -a our_train our_gen peer_train peer_gen
for ((r = 1; r <= rounds; r++)); do
  out=$("$ours" --threads "$threads" bench --iters 30 --gen-iters 30)
  our_train+=("$(value train_samples_per_s <<<"$out")"); our_gen+=("$(value gen_images_per_s <<<"$out")")
  echo "round $r cdcgan:  train ${our_train[-1]} samples/s, generate ${our_gen[-1]} images/s"
  out=$("$python" "$peer_dir/torch_cdcgan.py" --threads "$threads" --bench-iters 30 --bench-gen 30 --data-dir data/mnist)
  peer_train+=("$(value train_samples_per_s <<<"$out")"); peer_gen+=("$(value gen_images_per_s <<<"$out")")
  echo "round $r pytorch: train ${peer_train[-1]} samples/s, generate ${peer_gen[-1]} images/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ot=$(median "${our_train[@]}"); og=$(median "${our_gen[@]}")
pt=$(median "${peer_train[@]}"); pg=$(median "${peer_gen[@]}")
echo "median train: cdcgan $ot vs pytorch $pt samples/s -> ratio $(awk -v a="$ot" -v b="$pt" 'BEGIN {printf "%.2f", a/b}')x"
echo "median generate: cdcgan $og vs pytorch $pg images/s -> ratio $(awk -v a="$og" -v b="$pg" 'BEGIN {printf "%.2f", a/b}')x"
