#!/usr/bin/env bash
# One command from a fresh clone to a layer-wise knowledge-gain table: installs what is
# missing, builds, and runs configs/quickstart.toml (MobileNetV2 on PCam, ../shared beside the
# clone). Extra arguments go to `kgain run` (e.g. --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
kgain_install_missing
kgain_build
exec ./build/kgain run configs/quickstart.toml "$@"
