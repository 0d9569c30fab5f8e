#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (Catch2 through ctest).
# The tests read real data and models from ../shared beside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
# chromium: the browser check of report.html; python3-torchvision: the torchvision reference
# models the native backbone is tested against (tests/fixtures/backbones/), made at test time;
# libvips-tools, python3-tifffile: the whole-slide images of the wsi tests (tools/make_slides.py).
kgain_install_missing chromium python3-torchvision libvips-tools python3-tifffile python3-pil python3-numpy
kgain_build
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
