#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang-14 into build-fuzz/ and runs each one
# for SECONDS (default 60) from a seed corpus made of the real files in ../shared.
#   tools/fuzz.sh [-j JOBS] [--cpu] [SECONDS] [TARGET...]
# With --cpu, SECONDS is CPU time, not wall time: each target runs until it (with the child
# processes it waited for) has used that much CPU, then is asked to stop (SIGUSR1: libFuzzer
# finishes the input at hand and prints its final statistics). That is the measure that means
# the same on a busy machine and an idle one; run it niced beside other work.
# JOBS targets run at a time (default 1; each libFuzzer run uses one core). A crash leaves its
# input in build-fuzz/findings/TARGET/ and makes the script fail. An input running longer than
# KGAIN_FUZZ_TIMEOUT seconds (default 20) is a finding too; raise it when the fuzzers share a
# busy machine (libFuzzer's timeout is wall-clock time, so a starved fuzzer reports false hangs).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/deps.sh
kgain_install_missing clang-14 libfuzzer-14-dev libclang-rt-14-dev python3-h5py
jobs=1
if [ "${1:-}" = "-j" ]; then jobs=$2; shift 2; fi
cpu_budget=0
if [ "${1:-}" = "--cpu" ]; then cpu_budget=1; shift; fi
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_config fuzz_image fuzz_manifest fuzz_state_dict fuzz_feature_store fuzz_pcam_h5 fuzz_wsi_tables fuzz_safetensors fuzz_run_files)
shared=$(cd .. && pwd)/shared

CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKGAIN_BUILD_FUZZERS=ON \
  -DKGAIN_BUILD_TESTS=OFF -DKGAIN_USE_PCH=OFF >&2
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}" >&2

seeds=build-fuzz/seeds
rm -rf "$seeds" && mkdir -p "$seeds"/{fuzz_config,fuzz_image,fuzz_manifest,fuzz_state_dict,fuzz_feature_store,fuzz_pcam_h5,fuzz_wsi_tables,fuzz_safetensors,fuzz_run_files}
cp configs/*.toml "$seeds/fuzz_config/"
for folder in pcam-mini/1_tumor lc25000-lung-mini/lung_aca breakhis-samples/benign; do
  find "$shared/data/$folder" -maxdepth 1 -type f | sort | sed -n "1,3p" | while read -r f; do cp "$f" "$seeds/fuzz_image/"; done
done
/usr/bin/python3 - "$seeds" <<'PY'  # Debian's Python, with python3-h5py
import sys, struct, zlib
seeds = sys.argv[1]
# A 4x3 BMP and a 4x3 TIFF (uncompressed RGB), the formats without a file in ../shared.
w, h = 4, 3
row = bytes([10, 20, 30] * w) + b"\0" * ((4 - (3 * w) % 4) % 4)
bmp_pixels = row * h
open(f"{seeds}/fuzz_image/tiny.bmp", "wb").write(b"BM" + struct.pack("<IHHI", 54 + len(bmp_pixels), 0, 0, 54)
    + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(bmp_pixels), 2835, 2835, 0, 0) + bmp_pixels)
pixels = bytes(range(w * h * 3))
entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 8),
           (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(pixels))]
ifd = 8 + len(pixels)
tiff = b"II*\0" + struct.pack("<I", ifd) + pixels + struct.pack("<H", len(entries))
for tag, typ, count, value in entries:
    tiff += struct.pack("<HHI", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value))
open(f"{seeds}/fuzz_image/tiny.tif", "wb").write(tiff + b"\0\0\0\0")
# The wsi plugin's text files: a QuPath GeoJSON (first byte odd) and a slide list (even).
import json
regions = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [100, 0], [100, 80], [0, 80], [0, 0]], [[20, 20], [40, 20], [40, 40], [20, 20]]]},
     "properties": {"objectType": "annotation", "classification": {"name": "tumor", "color": [200, 0, 0]}}},
    {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [[[[5, 5], [9, 5], [9, 9], [5, 5]]]]}, "properties": {"classification": "stroma"}},
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [3, 4]}, "properties": {}}]}
open(f"{seeds}/fuzz_wsi_tables/regions.geojson", "wb").write(b"\x01" + json.dumps(regions).encode())
open(f"{seeds}/fuzz_wsi_tables/slides.csv", "wb").write(b"\x00slide,label,patient,split,mpp\na.svs,tumor,P1,train,0.25\n\"b,c.tif\",normal,,,\n")
open(f"{seeds}/fuzz_wsi_tables/tiles.csv", "wb").write(b"\x00slide,x,y,label\na.svs,1024,2048,tumor\n")
# A safetensors file: header length, JSON header, the bytes of two F32 tensors and a BF16 one.
header = json.dumps({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [16, 20]},
                     "c": {"dtype": "BF16", "shape": [2], "data_offsets": [20, 24]}, "__metadata__": {"format": "pt"}}).encode()
open(f"{seeds}/fuzz_safetensors/small.safetensors", "wb").write(struct.pack("<Q", len(header)) + header + struct.pack("<5f", 1, 2, 3, 4, 5) + b"\x80\x3f\x00\x40")
import h5py, numpy as np
with h5py.File(f"{seeds}/fuzz_pcam_h5/pcam.h5", "w") as f:
    f.create_dataset("x", data=np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3), chunks=(1, 8, 8, 3), compression="gzip")
    f.create_dataset("y", data=np.array([0, 1], dtype=np.uint8).reshape(2, 1, 1, 1))
with h5py.File(f"{seeds}/fuzz_pcam_h5/plain.h5", "w") as f:  # x stored plainly (contiguous), as h5py's default
    f.create_dataset("x", data=np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3))
    f.create_dataset("y", data=np.array([1, 0], dtype=np.uint8).reshape(2, 1, 1, 1))
with h5py.File(f"{seeds}/fuzz_pcam_h5/unfiltered.h5", "w") as f:  # chunked without a filter
    f.create_dataset("x", data=np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3), chunks=(1, 8, 8, 3))
    f.create_dataset("y", data=np.array([1, 0], dtype=np.uint8).reshape(2, 1, 1, 1), chunks=(2, 1, 1, 1))
with h5py.File(f"{seeds}/fuzz_pcam_h5/deep.h5", "w") as f:  # 200 chunks: a chunk index with inner B-tree nodes
    f.create_dataset("x", data=np.arange(200 * 2 * 2 * 3, dtype=np.uint8).reshape(200, 2, 2, 3) % 251, chunks=(1, 2, 2, 3), compression="gzip")
    f.create_dataset("y", data=(np.arange(200, dtype=np.uint8) % 2).reshape(200, 1, 1, 1))
with h5py.File(f"{seeds}/fuzz_pcam_h5/compact.h5", "w") as f:  # x and y kept inside their object headers
    for name, value in (("x", np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)), ("y", np.array([0, 1], dtype=np.uint8).reshape(2, 1, 1, 1))):
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        h5py.h5d.create(f.id, name.encode(), h5py.h5t.STD_U8LE, h5py.h5s.create_simple(value.shape), dcpl).write(h5py.h5s.ALL, h5py.h5s.ALL, value)
PY
head -40 "$shared/data/pcam-mini/manifest.csv" > "$seeds/fuzz_manifest/pcam.csv"
head -40 "$shared/data/lc25000-lung-mini/manifest.csv" > "$seeds/fuzz_manifest/lc25000.csv"
cp "$shared/models/mobilenet_v1_0.25_128_quant.state_dict.pt" "$seeds/fuzz_state_dict/"
KGAIN_FUZZ_WRITE_SEED="$seeds/fuzz_feature_store/segment.kgseg" build-fuzz/fuzz/fuzz_feature_store -runs=0 >/dev/null 2>&1 || true
if [ -x build-fuzz/fuzz/fuzz_run_files ]; then
  KGAIN_FUZZ_WRITE_SEED="$seeds/fuzz_run_files" build-fuzz/fuzz/fuzz_run_files -runs=0 >/dev/null 2>&1 || true
  rm -f "$seeds/fuzz_run_files/predictions.kgpred"
  printf '\0' > "$seeds/fuzz_run_files/splits.seed"  # splits.csv rows as kgain writes them (the header is the target's)
  printf '%s\n' 'a/b.jpg,tumor,P1,train,0,train' '"c,d.jpg",normal,,test,0,test' 'e/../f.jpg,normal,P2,,1,unused' >> "$seeds/fuzz_run_files/splits.seed"
fi

# LibTorch is not instrumented (see docs/trust.md). allocator_may_return_null: a huge malloc
# returns NULL as glibc's does in production, instead of ASan aborting; HDF5's metadata cache
# asks for whatever size a forged file declares (378 GB seen) and reports the failure as an
# error, which kgain turns into "cannot open" (checked with `kgain data` on that input).
export ASAN_OPTIONS=detect_leaks=0:detect_container_overflow=0:allocator_may_return_null=1
# Each target runs in its own folder, so that its failing inputs are its own (and another
# fuzz.sh running other targets at the same time keeps its own).
# CPU-seconds of process $1 and of the children it waited for (utime, stime, cutime, cstime).
cpu_of() { awk -v tick="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); print int(($12 + $13 + $14 + $15) / tick)}' "/proc/$1/stat"; }
# Asks fuzzer $1 to stop once it has used $2 CPU-seconds; writes what it used to $3.
watch_cpu() {
  local used=0
  while kill -0 "$1" 2>/dev/null; do
    used=$(cpu_of "$1" 2>/dev/null) || break
    echo "$used" >"$3"
    if [ "$used" -ge "$2" ]; then kill -USR1 "$1" 2>/dev/null; break; fi
    sleep 5
  done
}
fuzz_one() {
  local t=$1 dir=build-fuzz/runs/$1
  rm -rf "$dir" "build-fuzz/findings/$t"
  mkdir -p "build-fuzz/corpus/$t" "$dir"
  echo "== $t: ${seconds} s$([ $cpu_budget = 0 ] || echo " of CPU")" >&2
  local wall=$seconds
  [ $cpu_budget = 0 ] || wall=$((seconds * 100))  # the CPU budget ends it (watch_cpu)
  (cd "$dir" && exec ../../fuzz/"$t" -max_total_time="$wall" -max_len=4194304 -timeout="${KGAIN_FUZZ_TIMEOUT:-20}" -rss_limit_mb=4096 \
      -print_final_stats=1 "../../corpus/$t" "../../seeds/$t" >log.txt 2>&1) &
  local pid=$!
  [ $cpu_budget = 0 ] || watch_cpu "$pid" "$seconds" "$dir/cpu_seconds.txt" &
  wait "$pid" || true
  rm -rf "/dev/shm/kgain-fuzz-$pid"  # its scratch folder (tests/fuzz/scratch.hpp): SIGUSR1's exit skips the target's own cleanup
  [ ! -f "$dir/cpu_seconds.txt" ] || echo "$t: $(cat "$dir/cpu_seconds.txt") CPU-seconds" >&2
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY|.*crash-)" "$dir/log.txt" |
    sed "s/^/$t: /" >&2 || true
}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  fuzz_one "$t" &
done
wait
status=0
for t in "${targets[@]}"; do
  found=$(find "build-fuzz/runs/$t" -maxdepth 1 \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
  if [ -n "$found" ]; then
    echo "kgain fuzz: $t found failing input(s): $found" >&2
    mkdir -p build-fuzz/findings/"$t" && mv $found build-fuzz/findings/"$t"/
    status=1
  fi
done
exit $status
