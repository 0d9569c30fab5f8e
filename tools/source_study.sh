#!/usr/bin/env bash
# The source-domain study of docs/source-domains.md: MobileNetV2 1.0 pretrained on ImageNet,
# iNaturalist birds and iNaturalist insects, on pcam-mini (96 px) and lc25000-lung-mini (224 px),
# then a paired comparison of the three sources on each set.
#   tools/source_study.sh [KGAIN] [OUT]     (defaults: ./build/kgain, runs/)
# Reruns reuse every finished feature chunk; the comparison pages are
# OUT/sources-pcam.html and OUT/sources-lc25000.html, with .csv and .json beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
kgain=${1:-./build/kgain}
out=${2:-runs}
for set in pcam lc25000; do
  dirs=()
  for source in imagenet inat_bird inat_insect; do
    dir="$out/$set-${source//_/-}"
    "$kgain" run "configs/sources/${set}_${source}.toml" --out "$dir" --quiet
    dirs+=("$dir")
  done
  "$kgain" compare --paired "${dirs[@]}" --out "$out/sources-$set.html"
done
