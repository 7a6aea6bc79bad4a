#!/usr/bin/env bash
# Data-parallel index build throughput, measured in one run: `tda index build` of a Fashion-MNIST
# MLP (784-128-10, trained one epoch here) as one process with one thread (the baseline), one
# process with 2 threads (the same cores, threaded), and torchrun with 2 ranks of one thread
# each (c10d Gloo on loopback). Prints rows/s and the ratio to the baseline, and checks that
# every build holds the same rows bit for bit.
#   bench/distributed_build_bench.sh [ROWS]    (default 60000; needs build/client/tda)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-60000}
tda=$(pwd)/build/client/tda
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$tda" train --out "$work/model" --train-size "$rows" --epochs 1 --threads 2 > /dev/null

build() {  # NAME THREADS [RANKS]
  local name=$1 threads=$2 ranks=${3:-0} start end
  local cmd=("$tda" index build --model "$work/model" --out "$work/$name" --threads "$threads")
  if [ "$ranks" -gt 0 ]; then
    cmd=(torchrun --no_python --nproc_per_node "$ranks" --master_port 29733 --redirects 2
         --tee 2 --log_dir "$work/logs-$name" "${cmd[@]}")
  fi
  start=$(date +%s.%N)
  OMP_NUM_THREADS=$threads "${cmd[@]}" > /dev/null 2> "$work/$name.log"
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
}

rows_of() {  # every shard's bytes in manifest order
  /usr/bin/python3 -c '
import json, sys
d = sys.argv[1]
m = json.load(open(d + "/manifest.json"))
sys.stdout.buffer.write(b"".join(open(d + "/" + s["file"], "rb").read() for s in m["shards"]))' "$1"
}

one=$(build one-thread 1)
two=$(build two-threads 2)
ranks=$(build two-ranks 1 2)
for name in two-threads two-ranks; do
  if ! cmp -s <(rows_of "$work/one-thread") <(rows_of "$work/$name"); then
    echo "rows of $name differ from the one-process build" >&2
    exit 1
  fi
done
echo "index build, $rows rows, $(nproc) cores"
echo "| build | seconds | rows/s | speed-up |"
echo "|---|---|---|---|"
for entry in "1 process, 1 thread:$one" "1 process, 2 threads:$two" "torchrun, 2 ranks x 1 thread:$ranks"; do
  name=${entry%%:*}
  t=${entry##*:}
  awk -v n="$name" -v t="$t" -v r="$rows" -v b="$one" \
    'BEGIN { printf "| %s | %.1f | %.0f | %.2f |\n", n, t, r / t, b / t }'
done
echo "rows of all three builds are identical"
