#!/usr/bin/env bash
# Probes alone: kgain's fits against scikit-learn's on the very same features, in one script run
# so that the ratios are fair (run it on an otherwise idle machine).
#
#   bench/probe_speed.sh [WORK]        (default /tmp/kgain-probes)
#
# Two feature sets, extracted once by bench/python_reference.py --save-features (kept in WORK
# for later runs) from the splits.csv of two kgain runs:
#   pcam:    configs/quickstart.toml's images (pcam-mini, 4,000 patches: 3,000 train, 1,000
#            test), MobileNetV2 at 96 px, 19 taps, pretrained + 3 random seeds: 76 fits;
#   lc25000: configs/sources/lc25000_imagenet.toml's images (1,800, group 5-fold by source
#            tile), MobileNetV2 at 224 px, 19 taps, 4 variants: 380 fits.
# (Run those two configs first, or pass splits files: PCAM_SPLITS=... LC25000_SPLITS=...)
# For each probe: kgain_bench_probes with 2 threads (as a study runs fits: side by side, one BLAS
# thread each) and with 1; scikit-learn (bench/probe_reference.py) with numpy's BLAS on 2
# threads and on 1. Then the largest per-tap accuracy difference between the two. The logistic
# probe also runs without its preconditioner, and held to plain L-BFGS (2 threads); ridge also
# one fold at a time (2 threads).
# Needs Debian's python3-torch, python3-sklearn, python3-pil (never a kgain dependency).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/kgain-probes}
py=/usr/bin/python3
mkdir -p "$work"
pcam_splits=${PCAM_SPLITS:-$root/runs/quickstart/splits.csv}
lc_splits=${LC25000_SPLITS:-$root/runs/lc25000-imagenet/splits.csv}
model=$root/../shared/models/mobilenet_v2_tf1_quant.ts.pt

extract() {  # $1 set, $2 splits, $3 size
  [ -f "$work/$1/variants.txt" ] && return
  $py "$root/bench/python_reference.py" --splits "$2" --model "$model" --size "$3" --mode onepass \
    --out "$work/$1-unused.csv" --save-features "$work/$1" --skip-probes
}
extract pcam "$pcam_splits" 96
extract lc25000 "$lc_splits" 224

compare() {  # $1 set, $2 label, $3 kgain options, $4 scikit-learn options
  local kgain2 kgain1 sk2 sk1
  kgain2=$("$root/build/bench/kgain_bench_probes" "$work/$1" $3 --threads 2 --out "$work/$1-$2-kgain.csv")
  kgain1=$("$root/build/bench/kgain_bench_probes" "$work/$1" $3 --threads 1)
  sk2=$(OPENBLAS_NUM_THREADS=2 $py "$root/bench/probe_reference.py" "$work/$1" $4 --out "$work/$1-$2-sklearn.csv")
  sk1=$(OPENBLAS_NUM_THREADS=1 $py "$root/bench/probe_reference.py" "$work/$1" $4 --out /dev/null)
  $py - "$1" "$2" "$kgain2" "$kgain1" "$sk2" "$sk1" "$work/$1-$2-kgain.csv" "$work/$1-$2-sklearn.csv" <<'EOF'
import csv, re, sys
name, label, k2, k1, s2, s1, kc, sc = sys.argv[1:]
sec = lambda line: float(re.search(r"in ([0-9.]+) s", line).group(1))
acc = lambda f: {(r["variant"], r["tap_index"]): float(r["accuracy"]) for r in csv.DictReader(open(f))}
a, b = acc(kc), acc(sc)
worst = max(abs(a[k] - b[k]) for k in a)
print("%-8s %-10s kgain %6.2f s (2 threads) %6.2f s (1) | scikit-learn %6.2f s (2 BLAS threads) %6.2f s (1) | "
      "ratio %5.1fx (2 threads) %5.1fx (1) | max accuracy difference %.4f" %
      (name, label, sec(k2), sec(k1), sec(s2), sec(s1), sec(s2) / sec(k2), sec(s1) / sec(k1), worst))
for line in (k2, s2):
    print("    " + line)
EOF
}
for set in pcam lc25000; do
  compare $set logistic "--probe logistic" "--probe logistic --max-iter 1000"
  # The logistic probe as before its curvature preconditioner (Newton's method on narrow taps,
  # plain L-BFGS on the others), and held to plain L-BFGS everywhere (as before Newton's method).
  echo "    kgain preconditioner = none: $("$root/build/bench/kgain_bench_probes" "$work/$set" --probe logistic \
    --set preconditioner=none --threads 2 --out "$work/$set-logistic-plain-kgain.csv")"
  echo "    kgain solver = lbfgs, preconditioner = none: $("$root/build/bench/kgain_bench_probes" "$work/$set" \
    --probe logistic --set solver=lbfgs --set preconditioner=none --threads 2)"
  compare $set knn "--probe knn" "--probe knn"
  compare $set ridge "--probe ridge" "--probe ridge"
  # Ridge fits a tap's folds together (kgain/numeric/fold_grams.hpp); held to one fold at a time:
  echo "    kgain ridge fold by fold: $("$root/build/bench/kgain_bench_probes" "$work/$set" --probe ridge \
    --fold-by-fold --threads 2)"
done
