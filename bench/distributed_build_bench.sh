#!/usr/bin/env bash
# Data-parallel index build throughput, measured in one run: `tda index build` of a Fashion-MNIST
# MLP (784-128-10, trained one epoch here) as one process with one thread (the baseline), one
# process with 2 threads (the same cores, threaded), and torchrun with 2 ranks of one thread
# each (c10d Gloo on loopback). Prints rows/s and the ratio to the baseline, and checks that
# the 2-rank build holds the rows of the 1-thread build bit for bit (a 2-thread build rounds
# differently: its GEMMs sum in another order).
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
    cmd=(torchrun --no_python --nproc_per_node "$ranks" --master_port 29733 --monitor_interval 0.1 --redirects 2
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

# torchrun's own start-up (Python, the agent, the store), measured on ranks that do nothing
# (--monitor_interval 0.1: the agent notices exited ranks within 0.1 s, not its default 5 s).
launch_start=$(date +%s.%N)
torchrun --no_python --nproc_per_node 2 --master_port 29734 --monitor_interval 0.1 \
  --redirects 2 --tee 2 \
  --log_dir "$work/logs-true" /bin/true > /dev/null 2>&1
launcher=$(awk -v a="$launch_start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
one=$(build one-thread 1)
two=$(build two-threads 2)
ranks=$(build two-ranks 1 2)
if ! cmp -s <(rows_of "$work/one-thread") <(rows_of "$work/two-ranks"); then
  echo "rows of the 2-rank build differ from the one-process, one-thread build" >&2
  exit 1
fi
echo "index build, $rows rows, $(nproc) cores"
echo "| build | seconds | rows/s | speed-up |"
echo "|---|---|---|---|"
ranks_only=$(awk -v t="$ranks" -v l="$launcher" 'BEGIN { print t - l }')
for entry in "1 process, 1 thread:$one" "1 process, 2 threads:$two" \
    "torchrun, 2 ranks x 1 thread:$ranks" "the same less torchrun's start-up ($launcher s):$ranks_only"; do
  name=${entry%%:*}
  t=${entry##*:}
  awk -v n="$name" -v t="$t" -v r="$rows" -v b="$one" \
    'BEGIN { printf "| %s | %.1f | %.0f | %.2f |\n", n, t, r / t, b / t }'
done
echo "the 2-rank build's rows equal the 1-thread build's bit for bit"
