#!/usr/bin/env bash
# A measured lower bound on the naive Python form's wall time, for studies where the whole form
# runs longer than anyone waits here (LC25000 at 224 px: hours on 2 cores). The naive form runs,
# for every variant and every tap, the network truncated after that tap over all images,
# decoding them again each time, then fits the probes. This script runs a part of that work
# only: the pretrained variant, the taps given, no probes. The whole form does all of it and
# more, so its time is at least this part's, and kgain's speed-up over it at least the ratio
# printed.
#
#   bench/naive_lower_bound.sh WORK MODEL SIZE TAP...
#   e.g. bench/naive_lower_bound.sh /tmp/kgain-bench-XXXXXX mobilenet_v2_tf1_quant.ts.pt 224 14 15 16 17 18
#
# WORK is the work directory bench/compare_with_python.sh printed (its run/splits.csv gives the
# images, its kgain.time kgain's wall time): run the two back to back, nothing else running.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$1 model=$2 size=$3
shift 3
shared=$(cd "$root/../shared" && pwd)
py=/usr/bin/python3

/usr/bin/time -v $py "$root/bench/python_reference.py" --splits "$work/run/splits.csv" \
  --model "$shared/models/$model" --size "$size" --mode naive --seeds --naive-taps "$@" --out /dev/null \
  2> "$work/naive-part.time" | tee "$work/naive-part.log"

seconds() { grep "Elapsed (wall clock)" "$1" | awk '{print $NF}' | awk -F: '{ if (NF == 3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }
part=$(seconds "$work/naive-part.time")
kgain=$(seconds "$work/kgain.time")
awk -v part="$part" -v kgain="$kgain" -v taps="$*" 'BEGIN {
  printf "naive form, pretrained variant, taps %s only: %.1f s wall; kgain (whole study) %.1f s\n", taps, part, kgain
  printf "kgain is at least %.1fx faster than the whole naive form\n", part / kgain }'
