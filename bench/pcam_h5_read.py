#!/usr/bin/python3
"""PatchCamelyon HDF5 reading with h5py (libhdf5): the peer of build/bench/kgain_bench_pcam_h5.
Reads every patch one at a time, as kgain does, and prints the same lines (patches, tumour
labels, pixel checksum per split; then times), so equal lines mean the readers agree.

    /usr/bin/python3 bench/pcam_h5_read.py DIR
"""
import sys, time

import h5py
import numpy as np

root = sys.argv[1]
opened = time.perf_counter()
files = {}
for split in ("train", "valid", "test"):
    try:
        x = h5py.File(f"{root}/camelyonpatch_level_2_split_{split}_x.h5", "r")["x"]
        y = h5py.File(f"{root}/camelyonpatch_level_2_split_{split}_y.h5", "r")["y"][...].ravel()
    except FileNotFoundError:
        continue
    files[split] = (x, y)
open_seconds = time.perf_counter() - opened
reading = time.perf_counter()
lines = []
patches = 0
for split, (x, y) in files.items():
    w = None
    total = 0
    for p in range(x.shape[0]):
        pixels = x[p].reshape(-1).astype(np.uint64)
        if w is None:
            w = np.arange(pixels.size, dtype=np.uint64) % 65521 + 1
        total = (total + int((pixels * w).sum()) % (1 << 61) * (p + 1)) % (1 << 61)
    patches += x.shape[0]
    lines.append(f"{split} {x.shape[0]} {int(y.sum())} {total}")
read_seconds = time.perf_counter() - reading
print("\n".join(lines))
print(f"open {open_seconds:g} s, read {read_seconds:g} s, {patches / read_seconds:g} patches/s")
