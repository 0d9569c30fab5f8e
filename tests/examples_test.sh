#!/usr/bin/env bash
# Installs kgain into a temporary prefix, builds examples/ out of tree against it (as a plugin
# author would, with find_package(kgain)), and runs real studies with the example plugins: the
# filename dataset on BreakHis (patients from file names) with the top-k metric, and the tiny
# backbone on PCam.
# Usage: examples_test.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -euo pipefail
build=$1 source=$2 shared=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/install" > "$work/install.log"
test -x "$work/install/bin/kgain"
test -f "$work/install/include/kgain/plugin.hpp"
test -f "$work/install/lib/cmake/kgain/kgainConfig.cmake"
test -f "$work/install/include/kgain/pooling.hpp"
test ! -e "$work/install/include/kgain/torchscript_trunk.hpp"   # the bundled backbones' private helper

# Built without optimization: what this checks is that they build against the installed package
# and load; optimizing five LibTorch translation units was most of this test's time (issue 33).
cmake -S "$source/examples" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_PREFIX_PATH="$work/install" > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log"

# docs/plugins.md's metric and its CMake file, and a bundled plugin's folder as it is, build out
# of tree against the installed package.
docs=$work/docs_example
mkdir -p "$docs"
awk '/^## A metric in 20 lines/ { on = 1 } on && /^```cpp/ { grab = 1; next } grab && /^```/ { exit } grab' "$source/docs/plugins.md" > "$docs/my_metrics.cpp"
awk '/^## Building out of tree/ { on = 1 } on && /^```cmake/ { grab = 1; next } grab && /^```/ { exit } grab' "$source/docs/plugins.md" > "$docs/CMakeLists.txt"
grep -q "KGAIN_LIBRARY" "$docs/my_metrics.cpp"
grep -q "kgain_add_plugin(my_metrics" "$docs/CMakeLists.txt"
cp -r "$source/plugins/metrics/classification_metrics" "$docs/"
echo "add_subdirectory(classification_metrics)" >> "$docs/CMakeLists.txt"
cmake -S "$docs" -B "$work/docs_build" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_PREFIX_PATH="$work/install" > "$work/docs_configure.log"
cmake --build "$work/docs_build" > "$work/docs_build.log"
"$work/install/bin/kgain" list --plugin-dir "$work/docs_build/plugins" > "$work/docs_list.txt" 2> /dev/null
grep -E "^metric +top2_accuracy +1.0.0 .*kgain_my_metrics.so" "$work/docs_list.txt"
grep -E "^metric +macro_f1 .*$work/docs_build/plugins/kgain_classification_metrics.so" "$work/docs_list.txt"

# The installed kgain finds its own plugins and, through --plugin-dir, the examples.
"$work/install/bin/kgain" list --plugin-dir "$work/build/plugins" > "$work/list.txt"
grep -E "^metric +top_k_accuracy +1.0.0" "$work/list.txt"
grep -E "^dataset +filename +1.0.0" "$work/list.txt"
grep -E "^backbone +tiny +1.0.0" "$work/list.txt"
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

# The example backbone: a random-only study on PCam patches (no pretrained weights, so no gain).
cat > "$work/tiny.toml" <<TOML
[run]
plugin_paths = ["$work/build/plugins"]
threads = 2
[dataset]
plugin = "folder"
root = "$shared/data/pcam-mini"
limit_per_class = 20
[backbone]
plugin = "tiny"
channels = [8, 16, 24]
[features]
input_size = 64
pooling = "avgmax"
[variants]
random_seeds = [0, 1]
[splits]
folds = 2
[transferability]
names = []
cka = false
[analysis]
bootstrap = 0
TOML
"$work/install/bin/kgain" inspect "$work/tiny.toml" --plugin-dir "$work/build/plugins" > "$work/tiny_inspect.txt"
grep -E "^2 +block3 +24x8x8 +24 " "$work/tiny_inspect.txt"   # 64 px halved three times
"$work/install/bin/kgain" run "$work/tiny.toml" --out "$work/tiny_run" --quiet > "$work/tiny_run.txt"
# Three taps, each scored for both seeds; avgmax doubles each block's channels.
awk -F, 'NR > 1 && $6 == "accuracy" { n++; if ($12 != 2) { print "seeds " $12; exit 1 }; dims[$5] = $NF }
         END { if (n != 3 || dims["block1"] != 16 || dims["block2"] != 32 || dims["block3"] != 48) { print n " rows"; exit 1 } }' "$work/tiny_run/gain.csv"
echo "examples: installed, built out of tree, loaded, and run on BreakHis and PCam"
