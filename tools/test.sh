#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (Catch2 through ctest).
# The tests read real data and models from ../shared beside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
kgain_install_missing "${KGAIN_TEST_PACKAGES[@]}"
kgain_build
cd build
# The ten slowest tests are printed after the run, and one over KGAIN_MAX_TEST_SECONDS (default
# 120) fails it: a slow test is seen when it is added (tools/slow_tests.py, docs/ci.md).
status=0
ctest --output-on-failure -j "$(nproc)" --output-junit ctest-junit.xml "$@" || status=$?
python3 ../tools/slow_tests.py ctest-junit.xml --max "${KGAIN_MAX_TEST_SECONDS:-120}" || [ "$status" -ne 0 ] || status=1
exit "$status"
