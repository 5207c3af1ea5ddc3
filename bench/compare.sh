#!/usr/bin/env bash
# Side-by-side throughput: cdcgan's bench and the PyTorch peer, alternating
# A B A B on the same threads, then the ratios of the medians.
#
#   bench/compare.sh [varied|fast|original] [ROUNDS=2] [THREADS=2]
#
# Each side times a recipe's exact network: ours with `bench --recipe NAME`, the
# peer with the same options. varied (the default recipe): G 64 / D 32, batch 25,
# Adam 4e-4, class norm, D spectral norm without BN, minibatch std, EMA 0.9995;
# fast: the same widths with D's batch norm, minibatch std and EMA 0.99;
# original (`seed` is read too): G 256 / D 128, batch 100, Adam 2e-4.
# Other shapes: OURS="--g-channels N --d-channels N --batch-size B" (after
# --recipe) and PEER="--g-channels N --d-channels N --batch B --lr LR".
# PRECISION=bf16: our products in bf16 with fp32 sums (`bench --precision`)
# [default: fp32]. The peer runs in fp32 and under bf16 autocast
# (bench/torch_bf16.py), each round, and the ratios are against each and
# against the faster (PEER_PRECISIONS="fp32" for fp32 alone).
# FOLDER=DIR SIZE=28|32|64: an image folder's shape instead of MNIST's, on both
# sides (ours: `bench --data DIR --image-size S`, the network the default resolves
# for it, G 128 wide at 64 px; the peer: `--folder DIR --image-size S`, the same
# widths).
# ITERS: timed training iterations on each side [default: 30 for seed, 200 for
# fast, whose steps are short: 30 of them last a third of a second, too short
# to read a ratio from on a machine with neighbours].
#
# Needs the peer's venv (see ../shared/peers/README.md):
#   python3 -m venv "$HOME/torch-venv" && "$HOME/torch-venv/bin/pip" install torch==2.15.0 numpy pillow
set -euo pipefail
cd "$(dirname "$0")/.."
shape=varied
case "${1:-}" in varied | fast | original | seed) shape="$1"; shift ;; esac
[ "$shape" = seed ] && shape=original
rounds="${1:-2}"
threads="${2:-2}"
case "$shape" in
  varied)
    peer_default="--varied"
    iters="${ITERS:-200}" ;;
  fast)
    peer_default="--g-channels 64 --d-channels 32 --batch 25 --lr 4e-4 --minibatch-std --ema 0.99"
    iters="${ITERS:-200}" ;;
  original)
    peer_default=""
    iters="${ITERS:-30}" ;;
esac
if [ -n "${FOLDER:-}" ]; then
  size="${SIZE:-32}"
  # varied widens G at 64 px (recipe::g_width); the peer's --varied does not.
  [ "$shape" = varied ] && [ "$size" = 64 ] && peer_default="--g-channels 128 --d-channels 32 --batch 25 \
--lr 4e-4 --class-norm --no-d-batch-norm --spectral-norm --minibatch-std --ema 0.9995 --noise-scale 1.07"
  folder_ours="--data $FOLDER --image-size $size"
  folder_peer="--folder $FOLDER --image-size $size"
fi
ours_shape="--recipe $shape ${OURS:-} ${folder_ours:-}"
peer_shape="${PEER:-$peer_default} ${folder_peer:-}"
precision="${PRECISION:-fp32}"
echo "shape: $shape (cdcgan: ${ours_shape:-defaults}, $precision products; peer: ${peer_shape:-defaults}), $threads threads, $iters training iterations"
peer_dir="${PEER_DIR:-../shared/peers}"
python="${TORCH_PYTHON:-$HOME/torch-venv/bin/python}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cdcgan-target}"
cargo build --release --quiet
ours="$CARGO_TARGET_DIR/release/cdcgan"
[ -x "$python" ] || { echo "no PyTorch venv at $python (see $peer_dir/README.md)" >&2; exit 1; }

peer_precisions="${PEER_PRECISIONS:-fp32 bf16}"
value() { grep -o "$1=[0-9.]*" | tail -n 1 | cut -d= -f2; }
declare -a our_train our_gen
declare -A peer_train peer_gen
for ((r = 1; r <= rounds; r++)); do
  # shellcheck disable=SC2086 # the shape flags split on purpose
  out=$("$ours" --threads "$threads" bench --iters "$iters" --gen-iters 30 --precision "$precision" $ours_shape)
  [ "$r" = 1 ] && grep -E '^# (cpu|fp32|bf16)' <<<"$out"
  grep -E '^# (training|generation): [0-9]' <<<"$out" | sed "s/^/round $r cdcgan /"
  our_train+=("$(value train_samples_per_s <<<"$out")"); our_gen+=("$(value gen_images_per_s <<<"$out")")
  echo "round $r cdcgan:  train ${our_train[-1]} samples/s, generate ${our_gen[-1]} images/s"
  for p in $peer_precisions; do
    wrap=()
    [ "$p" = bf16 ] && wrap=(bench/torch_bf16.py)
    # shellcheck disable=SC2086
    out=$("$python" "${wrap[@]}" "$peer_dir/torch_cdcgan.py" --threads "$threads" --bench-iters "$iters" --bench-gen 30 --data-dir data/mnist $peer_shape)
    t=$(value train_samples_per_s <<<"$out"); g=$(value gen_images_per_s <<<"$out")
    peer_train[$p]+=" $t"; peer_gen[$p]+=" $g"
    echo "round $r pytorch $p: train $t samples/s, generate $g images/s"
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
ot=$(median "${our_train[@]}"); og=$(median "${our_gen[@]}")
best_t=0; best_g=0
for p in $peer_precisions; do
  # shellcheck disable=SC2086 # the values split on purpose
  pt=$(median ${peer_train[$p]}); pg=$(median ${peer_gen[$p]})
  echo "median train: cdcgan $ot vs pytorch $p $pt samples/s -> ratio $(ratio "$ot" "$pt")x"
  echo "median generate: cdcgan $og vs pytorch $p $pg images/s -> ratio $(ratio "$og" "$pg")x"
  best_t=$(awk -v a="$best_t" -v b="$pt" 'BEGIN {print (b > a) ? b : a}')
  best_g=$(awk -v a="$best_g" -v b="$pg" 'BEGIN {print (b > a) ? b : a}')
done
echo "against PyTorch's faster setting: train $(ratio "$ot" "$best_t")x, generate $(ratio "$og" "$best_g")x"
