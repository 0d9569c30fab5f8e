#!/usr/bin/env bash
# Formats kgain's C++ sources with clang-format 14 and the repository's .clang-format, or, with
# --check, lists the files that differ from it and fails (CI runs the check).
#   tools/format.sh           rewrite every tracked .cpp and .hpp in place
#   tools/format.sh --check   change nothing; exit 1 when a file is not formatted
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
kgain_install_missing clang-format-14
mapfile -t files < <(git ls-files '*.cpp' '*.hpp')
if [ "${1:-}" = "--check" ]; then
  bad=()
  for f in "${files[@]}"; do
    clang-format-14 --dry-run --Werror "$f" > /dev/null 2>&1 || bad+=("$f")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    printf 'not formatted (run tools/format.sh): %s\n' "${bad[@]}" >&2
    exit 1
  fi
  echo "format: ${#files[@]} files formatted as .clang-format says"
else
  clang-format-14 -i "${files[@]}"
fi
