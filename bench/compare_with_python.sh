#!/usr/bin/env bash
# The same layer-wise study run by kgain and by a straightforward Python implementation
# (bench/python_reference.py, PyTorch + scikit-learn) in its two usual forms, on the same
# images, folds, backbone, taps and variants (pretrained + 3 random seeds), logistic probe.
# Prints wall times, the ratios, kgain's extraction as a fraction of the raw forward limit
# (the best batch size over 1,024-image bursts, which this machine runs faster than sustained
# work: bench/extraction_vs_raw.sh measures that ratio fairly),
# and per-tap accuracy from both sides.
#
#   bench/compare_with_python.sh DATASET MODEL LIMIT_PER_CLASS [INPUT_SIZE] [--memory]
#   e.g. bench/compare_with_python.sh pcam-mini mobilenet_v1_0.5_160_quant.ts.pt 250 96
#
# DATASET is a folder of ../shared/data with a manifest.csv, MODEL a file of ../shared/models.
# --memory also runs kgain on 4x the images and prints both peak resident sizes.
# KGAIN_BENCH_MODES="onepass" leaves the naive form out (hours at study size on 2 cores);
# bench/naive_lower_bound.sh then times a part of it on the same work directory, a lower bound.
# Needs an otherwise idle machine (two LibTorch processes at once slow each other down), and
# Debian's python3-torch, python3-sklearn and python3-pil (apt-get install; never a kgain dependency).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$1 model=$2 limit=$3 size=${4:-96} memory=${5:-}
shared=$(cd "$root/../shared" && pwd)
work=$(mktemp -d /tmp/kgain-bench-XXXXXX)
py=/usr/bin/python3

source "$root/bench/study_config.sh"
write_config() { kgain_bench_config "$1" "$data" "$model" "$2" "$size"; }

seconds() { grep "Elapsed (wall clock)" "$1" | awk '{print $NF}' | awk -F: '{ if (NF == 3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }
rss_mb() { grep "Maximum resident" "$1" | awk '{printf "%.0f", $NF/1024}'; }

write_config "$work/study.toml" "$limit"
echo "work directory: $work"
# Every image read once first, so that no side pays for a cold file cache (kgain runs first).
find "$shared/data/$data" -type f -exec cat {} + > /dev/null
/usr/bin/time -v "$root/build/kgain" run "$work/study.toml" --out "$work/run" --quiet 2> "$work/kgain.time" > /dev/null
modes=${KGAIN_BENCH_MODES:-onepass naive}
for mode in $modes; do
  /usr/bin/time -v $py "$root/bench/python_reference.py" --splits "$work/run/splits.csv" --model "$shared/models/$model" \
    --size "$size" --mode $mode --out "$work/python-$mode.csv" 2> "$work/python-$mode.time" | tee "$work/python-$mode.log"
done
"$root/build/bench/kgain_bench_backbones" --model "$shared/models/$model" --size "$size" > "$work/raw.txt"

naive_seconds=nan
if [ -f "$work/python-naive.time" ]; then naive_seconds=$(seconds "$work/python-naive.time"); fi
$py - "$work" "$(seconds "$work/kgain.time")" "$(seconds "$work/python-onepass.time")" "$naive_seconds" <<'EOF'
import csv, json, os, re, sys
work, t_kgain, t_one, t_naive = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
run = json.load(open(work + "/run/run.json"))
images = run["dataset"]["images"]
extraction = run["extraction_seconds"]
raw = float(re.search(r"best ([0-9.]+) images/s", open(work + "/raw.txt").read()).group(1))
rate = images * 4 / extraction
print("\nimages %d, 4 variants; wall seconds: kgain %.1f, python onepass %.1f, python naive %.1f" % (images, t_kgain, t_one, t_naive))
print("speed-up of kgain: %.1fx over naive, %.1fx over onepass" % (t_naive / t_kgain, t_one / t_kgain))
print("kgain extraction: %.1f s = %.1f images/s over all variants; raw forward limit (burst) %.1f images/s: %.0f%%" % (extraction, rate, raw, 100 * rate / raw))
for mode in ["onepass", "naive"]:
    if not os.path.exists(work + "/python-%s.log" % mode):
        print("python %s: not run" % mode)
        continue
    m = re.search(r"extraction ([0-9.]+) s, probes ([0-9.]+) s", open(work + "/python-%s.log" % mode).read())
    print("python %s: extraction %s s, probes %s s" % (mode, m.group(1), m.group(2)))
print("kgain probes (run time after extraction): %.1f s" % (run["seconds"] - extraction))
k = {}
for r in csv.DictReader(open(work + "/run/gain.csv")):
    k[int(r["tap_index"])] = (float(r["pretrained"]), float(r["random_mean"]), r["tap"])
p = {}
for r in csv.DictReader(open(work + "/python-onepass.csv")):
    p.setdefault(int(r["tap_index"]), {})[r["variant"]] = float(r["accuracy"])
print("\n| tap | kgain pretrained | python pretrained | kgain random mean | python random mean |\n|---|---|---|---|---|")
worst = 0
for t in sorted(k):
    pp = p[t]["pretrained"]
    pr = sum(v for n, v in p[t].items() if n != "pretrained") / (len(p[t]) - 1)
    worst = max(worst, abs(pp - k[t][0]), abs(pr - k[t][1]))
    print("| %s | %.4f | %.4f | %.4f | %.4f |" % (k[t][2], k[t][0], pp, k[t][1], pr))
print("largest per-tap accuracy difference: %.4f (%.2f points)" % (worst, 100 * worst))
EOF

if [ "$memory" = "--memory" ]; then
  write_config "$work/study4.toml" $((limit * 4))
  /usr/bin/time -v "$root/build/kgain" run "$work/study4.toml" --out "$work/run4" --quiet 2> "$work/kgain4.time" > /dev/null
  echo "peak resident memory: $(rss_mb "$work/kgain.time") MB with limit_per_class $limit, $(rss_mb "$work/kgain4.time") MB with $((limit * 4))"
fi
