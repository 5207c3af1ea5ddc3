#!/usr/bin/env bash
# The live training page and the whole-run ETA, measured.
#
#   bench/live.sh cost [ROUNDS=4] [STEPS=2000]
#       Training speed with and without `train --serve`, alternating A B A B
#       (default recipe, 2 threads, full MNIST), a client polling the page's
#       /api/live (whole metrics file) and the newest grid once a second, as
#       an open page does. Prints each round's samples/s and the ratio of the
#       medians.
#   bench/live.sh eta [EPOCHS=6]
#       A default-recipe run of EPOCHS full epochs (about 3 minutes on 2
#       threads) with its log in a file; for each epoch line, the time left it
#       predicted against the time the command actually took to return.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cdcgan-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/cdcgan"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Polls the page at $1 once a second until the file $2 exists, from one
# process, as an open page does (POLL=0: no client).
poll() {
  [ "${POLL:-1}" = 0 ] && return
  python3 - "$1" "$2" <<'EOF'
import os, sys, time, urllib.request
base, done = sys.argv[1], sys.argv[2]
while not os.path.exists(done):
    for path in ("/api/live", "/api/epoch-grid?epoch=1"):
        try:
            urllib.request.urlopen(base + path, timeout=5).read()
        except Exception:
            pass
    time.sleep(1)
EOF
}

# One training run; prints its samples/s. $1: "serve" or "plain".
train_once() {
  local run="$work/run-$RANDOM$RANDOM" log="$work/log-$RANDOM"
  local args=(--threads 2 train --out "$run" --max-steps "$steps" --quiet)
  if [ "$1" = serve ]; then
    "$bin" "${args[@]}" --serve 127.0.0.1:0 >"$log.out" 2>"$log" &
    local pid=$!
    until grep -q http "$log.out" 2>/dev/null; do sleep 0.1; done
    local base
    base="$(grep -o 'http://[^/ ]*' "$log.out" | head -1)"
    poll "$base" "$log.done" &
    local poller=$!
    until grep -q "trained to step" "$log"; do sleep 0.2; done
    touch "$log.done"
    wait "$poller"
    kill -INT "$pid"
    wait "$pid" || true
  else
    "$bin" "${args[@]}" 2>"$log"
  fi
  grep -o '[0-9.]* samples/s' "$log" | tail -1 | cut -d' ' -f1
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

case "${1:-cost}" in
  cost)
    rounds="${2:-4}"
    steps="${3:-2000}"
    : >"$work/plain"
    : >"$work/serve"
    for round in $(seq "$rounds"); do
      for side in plain serve; do
        speed="$(train_once "$side")"
        echo "round $round $side: $speed samples/s"
        echo "$speed" >>"$work/$side"
      done
    done
    plain="$(median <"$work/plain")"
    serve="$(median <"$work/serve")"
    echo "median samples/s: plain $plain, --serve $serve; --serve/plain = $(python3 -c "print(f'{$serve / $plain:.3f}')")"
    ;;
  eta)
    epochs="${2:-6}"
    log="$work/eta.log"
    start="$(date +%s.%N)"
    "$bin" --threads 2 train --out "$work/eta-run" --epochs "$epochs" 2>"$log"
    end="$(date +%s.%N)"
    python3 - "$log" "$start" "$end" <<'EOF'
import re, sys
from datetime import datetime, timezone
log, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
def seconds(text):
    total = 0
    for value, unit in re.findall(r"(\d+) (h|min|s)\b", text):
        total += int(value) * {"h": 3600, "min": 60, "s": 1}[unit]
    return total
print(f"the command took {end - start:.1f} s")
print("| epoch line at (s) | time left it said (s) | actual (s) | predicted/actual total |")
print("|---|---|---|---|")
for line in open(log):
    m = re.match(r"(\S+Z) .*epoch (\d+)/\d+ done: .*, (.*) left;", line)
    if not m:
        continue
    at = datetime.strptime(m.group(1)[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp() - start
    said = seconds(m.group(3))
    print(f"| {at:.1f} | {said} | {end - start - at:.1f} | {(at + said) / (end - start):.3f} |")
EOF
    ;;
  *) echo "usage: bench/live.sh cost [ROUNDS] [STEPS] | eta [EPOCHS]" >&2; exit 2 ;;
esac
