#!/usr/bin/python3
"""A PatchCamelyon-layout HDF5 set from ../shared/data/pcam-mini, each patch under the first
TRANSFORMS of its 8 rotations and flips (1 -> the 4,500 patches as they are, 8 -> 36,000):
the scale benchmark's data (bench/scale.sh). Needs Debian's python3-h5py, python3-pil, python3-numpy.

    /usr/bin/python3 bench/make_pcam_scaled.py OUT_DIR TRANSFORMS [SHARED_DIR]
"""
import csv, os, sys

import h5py
import numpy as np
from PIL import Image

out, transforms = sys.argv[1], int(sys.argv[2])
shared = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(__file__), "..", "..", "shared")
root = os.path.join(shared, "data", "pcam-mini")
os.makedirs(out, exist_ok=True)
rows = list(csv.DictReader(open(os.path.join(root, "manifest.csv"))))
for split in ("train", "valid", "test"):
    chosen = [r for r in rows if r["split"] == split]
    n = len(chosen) * transforms
    with h5py.File(os.path.join(out, f"camelyonpatch_level_2_split_{split}_x.h5"), "w") as fx, \
         h5py.File(os.path.join(out, f"camelyonpatch_level_2_split_{split}_y.h5"), "w") as fy:
        x = fx.create_dataset("x", (n, 96, 96, 3), dtype=np.uint8, chunks=(1, 96, 96, 3))
        y = fy.create_dataset("y", (n, 1, 1, 1), dtype=np.uint8)
        i = 0
        for r in chosen:
            patch = np.asarray(Image.open(os.path.join(root, r["path"])).convert("RGB"))
            label = 1 if r["label"] == "1_tumor" else 0
            for t in range(transforms):  # rotations by 0, 90, 180, 270 degrees, then the same mirrored
                p = np.rot90(patch, t % 4)
                x[i] = np.fliplr(p) if t >= 4 else p
                y[i] = label
                i += 1
    print(f"{split}: {n} patches")
