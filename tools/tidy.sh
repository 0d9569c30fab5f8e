#!/usr/bin/env bash
# Runs clang-tidy 14 with the repository's .clang-tidy on the given sources (default: the core's).
# The compile commands come from build-tidy/, configured (not built) without the precompiled
# header, which is GCC's and which clang cannot read. A LibTorch translation unit takes about a
# minute to check.
#   tools/tidy.sh [FILE.cpp ...]
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
kgain_install_missing clang-tidy-14
cmake -S . -B build-tidy -G Ninja -DCMAKE_BUILD_TYPE=Release -DKGAIN_USE_PCH=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON > /dev/null
if [ $# -eq 0 ]; then mapfile -t files < <(git ls-files 'core/*.cpp'); else files=("$@"); fi
clang-tidy-14 -p build-tidy --quiet "${files[@]}"
