#!/usr/bin/env bash
# Scale benchmark (docs/performance.md, "Scale"): MobileNetV2 at 96 px, pretrained + 3 random
# seeds, 19 taps, on a PatchCamelyon-layout HDF5 set made from pcam-mini: 4,500 patches, and
# 36,000 (each patch under its 8 rotations and flips). Reports peak resident memory, images/s
# and wall time with 1 rank, then with 2 MPI ranks of 1 thread each, then a second study on the
# same feature store (another probe), which must forward no image.
#   bench/scale.sh [OUT]      (default /tmp/kgain-scale; needs python3-h5py, openmpi-bin)
# Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/kgain-scale}
kgain=$(pwd)/build/kgain
shared=$(cd .. && pwd)/shared
mkdir -p "$out"
mpi=(mpirun --oversubscribe --mca btl_vader_single_copy_mechanism none)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)

config() {  # config NAME DATA PROBE THREADS STORE
  cat > "$out/$1.toml" <<TOML
[run]
name = "$1"
threads = $4
batch_size = 64
feature_store = "$5"
[dataset]
plugin = "pcam_h5"
root = "$2"
splits = ["train", "test"]
[backbone]
plugin = "torchscript"
file = "$shared/models/mobilenet_v2_tf1_quant.ts.pt"
native_input_size = 224
[features]
input_size = 96
[variants]
random_seeds = [0, 1, 2]
[probe]
$3
[transferability]
names = []
cka = false
[analysis]
bootstrap = 0
TOML
}

measure() {  # measure LABEL COMMAND...: wall, user, system, peak resident memory (of the largest process)
  local log="$out/$1.time"
  /usr/bin/time -v "${@:2}" > "$out/$1.out" 2> "$log"
  printf '%-28s wall %-9s user %7.1f s  system %6.1f s  peak %6.0f MB\n' "$1" "$(grep 'Elapsed' "$log" | awk '{print $NF}')" \
    "$(grep 'User time' "$log" | awk '{print $NF}')" "$(grep 'System time' "$log" | awk '{print $NF}')" \
    "$(grep 'Maximum resident' "$log" | awk '{print $NF / 1024}')"
}

for n in 1 8; do
  [ -f "$out/data-$n/camelyonpatch_level_2_split_test_y.h5" ] || /usr/bin/python3 bench/make_pcam_scaled.py "$out/data-$n" "$n" "$shared" > /dev/null
done
rm -rf "$out"/store-* "$out"/runs
# Ridge probes (one d x d solve per fit): the probe of the first measurements, kept so that the
# figures stay comparable (kNN sorted every test row's distances then: over five minutes on the
# first tap alone at this size).
config small "$out/data-1" 'plugin = "ridge"
alpha = 10.0' 1 "$out/store-small"
config large "$out/data-8" 'plugin = "ridge"
alpha = 10.0' 1 "$out/store-large"
config large-mpi "$out/data-8" 'plugin = "ridge"
alpha = 10.0' 1 "$out/store-large-mpi"
config large-second "$out/data-8" 'plugin = "ridge"
alpha = 1.0' 1 "$out/store-large"
measure "4,500 patches, 1 rank" "$kgain" run "$out/small.toml" --out "$out/runs/small" --quiet
measure "36,000 patches, 1 rank" "$kgain" run "$out/large.toml" --out "$out/runs/large" --quiet
measure "36,000 patches, 2 ranks" "${mpi[@]}" -np 2 "$kgain" run "$out/large-mpi.toml" --out "$out/runs/large-mpi" --quiet
measure "36,000, second study" "$kgain" run "$out/large-second.toml" --out "$out/runs/large-second" --quiet
for run in small large large-mpi large-second; do
  echo "$run: $(grep -h 'features ready' "$out/runs/$run/kgain.log" | tail -1 | sed 's/.*features ready: //')"
done
cmp "$out/runs/large/results.csv" "$out/runs/large-mpi/results.csv" && echo "1 and 2 ranks: results.csv byte-identical"
