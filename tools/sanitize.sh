#!/usr/bin/env bash
# Builds kgain, its plugins and the whole test suite with AddressSanitizer +
# UndefinedBehaviorSanitizer into build-asan/ and runs the tests (ctest). Any report fails the
# test that caused it. LibTorch, OpenCV and the other Debian libraries are not instrumented;
# what is suppressed for them, and why, is in tools/sanitizers/ and docs/trust.md.
#   tools/sanitize.sh [ctest arguments...]
# KGAIN_TEST_OBJECTS_FROM=build (a release build tree, as .ci/run sets it after tools/test.sh):
# link that tree's test units (built first if out of date) instead of compiling them here; they
# are built without sanitizers either way, and were a third of this build (docs/ci.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
kgain_install_missing "${KGAIN_TEST_PACKAGES[@]}"
# -O1 -g1 (line tables only): ASan's recommended optimization level, and reports still name
# file:line. Against RelWithDebInfo's -O2 -g it compiles a LibTorch translation unit in about half
# the time (the precompiled header and three of the heaviest units: 400 s against 754 s, one core),
# and the build is most of CI's sanitizer stage (docs/trust.md).
test_objects=
if [ -n "${KGAIN_TEST_OBJECTS_FROM:-}" ]; then
  cmake --build "$KGAIN_TEST_OBJECTS_FROM" --target kgain_tests >&2
  test_objects=$(realpath "$KGAIN_TEST_OBJECTS_FROM")
fi
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKGAIN_SANITIZE=ON -DKGAIN_USE_PCH=ON \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" "-DKGAIN_TEST_OBJECTS_FROM=$test_objects" >&2
# The test suite and what it runs (kgain_tests depends on kgain, every plugin and the fixture
# plugins); not the benchmarks, which no test runs.
cmake --build build-asan -j "$(nproc)" --target kgain_tests kgain >&2
supp="$(pwd)/tools/sanitizers"
# detect_container_overflow=0: std::vector annotations are only consistent when every library
# touching a vector is instrumented; LibTorch's are not, which gives false reports.
export ASAN_OPTIONS="detect_container_overflow=0:abort_on_error=0:halt_on_error=1:strict_string_checks=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="suppressions=$supp/ubsan.supp:print_stacktrace=1:halt_on_error=1"
cd build-asan
ctest --output-on-failure -j "$(nproc)" "$@"
