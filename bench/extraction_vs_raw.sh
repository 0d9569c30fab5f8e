#!/usr/bin/env bash
# kgain's extraction against the raw forward limit, in pairs run back to back so that both
# sides see the same machine: each round runs a study (fresh run directory, so nothing comes
# from a feature store) and then the raw forward limit of the same extraction module at the
# study's batch size over as many forward passes as the study makes (images x 4 variants;
# `kgain_bench_backbones --model`, one network on one random tensor): this machine runs short
# bursts faster than sustained work (16 batches of 64 at 96 px: 472-536 images/s in seven
# runs; 250 batches: 458-460 in three), so a limit measured on a few batches is not the limit of a study.
# Prints each pair, the median ratio, and the study's user and system time (/usr/bin/time).
#
#   bench/extraction_vs_raw.sh DATASET MODEL LIMIT_PER_CLASS INPUT_SIZE BATCH_SIZE [ROUNDS]
#   e.g. bench/extraction_vs_raw.sh pcam-mini mobilenet_v2_tf1_quant.ts.pt 10000 96 64 5
# DATASET may also be a folder of PatchCamelyon HDF5 files (bench/make_pcam_scaled.py makes
# them at study size: 4 -> 16,000 train and test patches); LIMIT_PER_CLASS is then ignored.
#
# The study's rate counts image x variant pairs (pretrained + 3 random seeds) per second of
# extraction (run.json's extraction_seconds): decoding, the four networks, the taps' pooling,
# copies and finiteness check, and the feature store's writes. "steady" is the same rate over
# the median chunk (kgain.log's chunk lines): what is left once the networks are built and have
# run their first batch, which the raw limit leaves out. Needs an otherwise idle machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$1 model=$2 limit=$3 size=$4 batch=$5 rounds=${6:-5}
shared=$(cd "$root/../shared" && pwd)
work=$(mktemp -d /tmp/kgain-extraction-XXXXXX)
source "$root/bench/study_config.sh"
if [ -f "$data/camelyonpatch_level_2_split_train_x.h5" ]; then
  data=$(cd "$data" && pwd)
  kgain_bench_config "$work/study.toml" pcam-mini "$model" "$limit" "$size" "$batch"
  sed -i -e 's|^plugin = "manifest"|plugin = "pcam_h5"|' -e "s|^root = .*|root = \"$data\"\nsplits = [\"train\", \"test\"]|" \
    -e '/^limit_per_class/d' "$work/study.toml"
else
  kgain_bench_config "$work/study.toml" "$data" "$model" "$limit" "$size" "$batch"
  data="$shared/data/$data"
fi
find "$data" -type f -exec cat {} + > /dev/null  # no side pays for a cold file cache
echo "work directory: $work"
echo "| round | study extraction (pairs/s) | raw limit (images/s) | ratio | steady (pairs/s) | steady ratio | study user s | study system s |"
echo "|---|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  rm -rf "$work/run"
  /usr/bin/time -v "$root/build/kgain" run "$work/study.toml" --out "$work/run" --log-level debug 2> "$work/time.txt" > /dev/null
  read -r images extraction < <(/usr/bin/python3 -c "import json,sys; j=json.load(open(sys.argv[1])); \
print(j['dataset']['images'], j['extraction_seconds'])" "$work/run/run.json")
  "$root/build/bench/kgain_bench_backbones" --model "$shared/models/$model" --size "$size" --batch "$batch" \
    --batches $((4 * ((images + batch - 1) / batch))) > "$work/raw.txt"
  raw=$(sed -n 's/^best \([0-9.]*\) images.*/\1/p' "$work/raw.txt")
  user=$(sed -n 's/.*User time (seconds): //p' "$work/time.txt")
  system=$(sed -n 's/.*System time (seconds): //p' "$work/time.txt")
  # seconds between chunk lines, median (chunks hold 256 images x 4 variants; the last one fewer)
  chunk=$(grep 'features: chunk' "$work/run/kgain.log" | awk '{ split($2, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3];
    if (NR > 1) print s - last; last = s }' | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }')
  echo "$round $images $extraction $raw $user $system" >> "$work/rounds.txt"
  awk -v r="$round" -v n="$images" -v e="$extraction" -v raw="$raw" -v u="$user" -v s="$system" -v c="$chunk" \
    'BEGIN { steady = c > 0 ? 1024 / c : 0; printf "| %d | %.1f | %.1f | %.0f%% | %.1f | %.0f%% | %.1f | %.1f |\n",
             r, 4 * n / e, raw, 400 * n / e / raw, steady, 100 * steady / raw, u, s }'
done
awk '{ print 4 * $2 / $3 / $4 }' "$work/rounds.txt" | sort -n |
  awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
         printf "median ratio over %d rounds: %.0f%% (range %.0f%%-%.0f%%)\n", NR, 100 * m, 100 * v[1], 100 * v[NR] }'
