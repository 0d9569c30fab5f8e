#!/usr/bin/env bash
# Tiling speed of the wsi dataset plugin: a 21,000 x 20,240 px slide (a 2 x 2 mosaic of BreakHis
# images, repeated; JPEG tiles, pyramid, 0.5 um/px), cut into 224 px tiles at 0.5 um/px (read
# from level 0) and at 1.0 um/px (level 1). `kgain data --no-images` opens the slide, makes the
# tissue mask and lists the tiles; `kgain data` then also reads every tile through read_pixels
# (one thread). Tiles per second = tiles / (time with reading - time without).
#   bash bench/wsi_tiling.sh [BUILD_DIR]     (run on an idle machine)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=../shared/data/breakhis-samples
vips arrayjoin "$src/benign/SOB_B_A-14-22549AB-40-001.png $src/malignant/SOB_M_DC-14-2523-40-010.png $src/benign/SOB_B_F-14-9133-40-001.png $src/malignant/SOB_M_LC-14-12204-40-001.png" \
  "$work/mosaic.v" --across 2
vips replicate "$work/mosaic.v" "$work/big.v" 15 22
vips tiffsave "$work/big.v" "$work/big.tif" --tile --pyramid --tile-width 256 --tile-height 256 --compression jpeg --Q 90 --xres 2000 --yres 2000
printf 'slide,label\nbig.tif,tissue\n' > "$work/slides.csv"
echo "slide: $(vipsheader "$work/big.tif"), $(du -h "$work/big.tif" | cut -f1)"
for mpp in 0.5 1.0; do
  cat > "$work/bench.toml" <<TOML
[dataset]
plugin = "wsi"
slides = "slides.csv"
tile_size = 224
target_mpp = $mpp
tissue_threshold = 8
[backbone]
plugin = "torchscript"
file = "unused.ts.pt"
[splits]
strategy = "kfold"   # one slide: no groups to split by
TOML
  measure() {
    /usr/bin/time -f "%e %U %S %M" "$build/kgain" data "$work/bench.toml" "$@" >"$work/out.txt" 2>"$work/time.txt"
    tail -1 "$work/time.txt"
    grep -q "images, " "$work/out.txt" || { cat "$work/out.txt" "$work/time.txt" >&2; exit 1; }
  }
  read -r wall0 user0 sys0 rss0 < <(measure --no-images)
  read -r wall1 user1 sys1 rss1 < <(measure)
  tiles=$(grep -m1 -oE "^[0-9]+ images" "$work/out.txt" | cut -d' ' -f1)
  echo "target $mpp um/px: $tiles tiles; listing ${wall0} s (user $user0, sys $sys0, peak ${rss0} KB); listing + reading ${wall1} s (user $user1, sys $sys1, peak ${rss1} KB)"
  awk -v t="$tiles" -v a="$wall0" -v b="$wall1" 'BEGIN { printf "  reading: %.0f tiles/s on one thread\n", t / (b - a) }'
done
