#!/usr/bin/env bash
# Installs the Debian 12 packages kgain needs to build and test, if any is missing.
# Sourced by tools/quickstart.sh and tools/test.sh; runs apt-get only when something is missing.
set -euo pipefail

KGAIN_PACKAGES=(
  cmake ninja-build g++ ccache pkg-config
  libtorch-dev libopenblas0-pthread
  libboost-dev libboost-program-options-dev
  libtomlplusplus-dev libspdlog-dev nlohmann-json3-dev catch2
  libopencv-imgcodecs-dev libopencv-imgproc-dev libhdf5-dev libjpeg-dev zlib1g-dev libopenslide-dev
  libopenmpi-dev openmpi-bin
)

# What the tests need besides the build: chromium (the browser check of report.html),
# python3-torchvision (the reference models the native backbone is tested against, made at test
# time), libvips-tools and python3-tifffile/-pil/-numpy (the whole-slide images of the wsi tests,
# tools/make_slides.py).
KGAIN_TEST_PACKAGES=(chromium python3-torchvision libvips-tools python3-tifffile python3-pil python3-numpy)

kgain_install_missing() {
  local missing=()
  for p in "${KGAIN_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  echo "kgain: installing missing Debian packages: ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Configures and builds into build/ (Release, Ninja, ccache when present).
kgain_build() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >&2
  cmake --build "$root/build" -j "$(nproc)" >&2
}
