#!/usr/bin/env bash
# Installs kgain into a temporary prefix, builds examples/ out of tree against it (as a plugin
# author would, with find_package(kgain)), and runs a real study with both example plugins:
# the filename dataset on BreakHis (patients from file names) and the top-k metric.
# Usage: examples_test.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -euo pipefail
build=$1 source=$2 shared=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/install" > "$work/install.log"
test -x "$work/install/bin/kgain"
test -f "$work/install/include/kgain/plugin.hpp"
test -f "$work/install/lib/cmake/kgain/kgainConfig.cmake"

cmake -S "$source/examples" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/install" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"

# The installed kgain finds its own plugins and, through --plugin-dir, the examples.
"$work/install/bin/kgain" list --plugin-dir "$work/build/plugins" > "$work/list.txt"
grep -E "^metric +top_k_accuracy +1.0.0" "$work/list.txt"
grep -E "^dataset +filename +1.0.0" "$work/list.txt"
grep -E "^backbone +torchscript .*$work/install/lib/kgain/plugins" "$work/list.txt"

cat > "$work/breakhis.toml" <<TOML
[run]
plugin_paths = ["$work/build/plugins"]
threads = 2
[dataset]
plugin = "filename"
root = "$shared/data/breakhis-samples"
pattern = '^SOB_([BM])_[A-Z]+-(\d+-[0-9A-Z]+)-\d+-\d+\.png$'
label_group = 1
group_group = 2
[backbone]
plugin = "torchscript"
file = "$shared/models/mobilenet_v1_0.25_128_quant.ts.pt"
native_input_size = 128
[variants]
random_seeds = [0]
[splits]
folds = 2
[metrics]
names = ["accuracy", "top_k_accuracy"]
[metrics.top_k_accuracy]
k = 2
[transferability]
names = []
[analysis]
bootstrap = 0
TOML
"$work/install/bin/kgain" run "$work/breakhis.toml" --out "$work/run" --quiet > "$work/run.txt"
# Two classes: the true class is always among the top 2, so top-2 accuracy is exactly 1.
awk -F, '$6 == "top_k_accuracy" { if ($7 != 1) { print "top_k_accuracy is " $7 " at tap " $5; exit 1 } ; n++ } END { if (n != 14) { print n " rows"; exit 1 } }' "$work/run/gain.csv"
# BreakHis patients stay on one side of each fold.
grep -q "group_kfold" "$work/run/run.json"
echo "examples: installed, built out of tree, loaded, and run on BreakHis"
