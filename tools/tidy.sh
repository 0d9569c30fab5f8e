#!/usr/bin/env bash
# Runs clang-tidy 14 with the repository's .clang-tidy on the given sources (default: the core's),
# using build/compile_commands.json. A LibTorch translation unit takes about a minute to check.
#   tools/tidy.sh [FILE.cpp ...]
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
kgain_install_missing clang-tidy-14
if [ ! -f build/compile_commands.json ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >&2
fi
if [ $# -eq 0 ]; then mapfile -t files < <(git ls-files 'core/*.cpp'); else files=("$@"); fi
clang-tidy-14 -p build --quiet "${files[@]}"
