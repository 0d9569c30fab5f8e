#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (Catch2 through ctest).
# The tests read real data and models from ../shared beside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
kgain_install_missing "${KGAIN_TEST_PACKAGES[@]}"
kgain_build
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
