#!/usr/bin/python3
"""The layer-wise protocol as it is usually coded in Python (PyTorch + scikit-learn): kgain's
speed reference in bench/compare_with_python.sh. Not used by kgain itself.

    python_reference.py --splits RUN/splits.csv --model MODEL.ts.pt --size 96 --mode naive|onepass
                        --seeds 0 1 2 --threads 2 --out results.csv

Images and folds come from a kgain run's splits.csv, so both sides score the same images on
the same folds. Decoding: PIL, resize of the shorter side + centre crop (bilinear), ImageNet
normalization. Variants: the pretrained TorchScript model and one random copy per seed, drawn
as kgain's torchscript backbone draws them (Kaiming normal fan-out for weights with 2+ dims,
norm weights 1, biases 0, batch-norm statistics reset, in named_parameters order from one
torch.Generator seeded with the seed). Taps: the children of `features`.
  naive:   for every tap, the network truncated after it is run over all images;
  onepass: the children run once per batch and every tap is pooled as it is produced (what
           forward hooks do; hooks cannot be attached to a scripted model).
Probe: StandardScaler + LogisticRegression(C, lbfgs) per (variant, tap, fold); accuracy.
Prints the seconds spent decoding+forwarding and probing.
"""
import argparse
import csv
import os
import time

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def load(path, size):
    image = Image.open(path).convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    if (w, h) != (max(size, round(w * scale)), max(size, round(h * scale))):
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    x = (np.asarray(image, dtype=np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(x.transpose(2, 0, 1).copy())


def reinitialise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                fan_out = p.shape[0] * int(np.prod(p.shape[2:]))
                p.normal_(0.0, (2.0 / fan_out) ** 0.5, generator=g)
            elif name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()
        for name, b in model.named_buffers():
            if name.endswith("running_mean") or name.endswith("num_batches_tracked"):
                b.zero_()
            elif name.endswith("running_var"):
                b.fill_(1.0)


def save_features(folder, features, variants, taps, y, roles, folds, paths):
    os.makedirs(folder, exist_ok=True)
    for name, _ in variants:
        for t in range(taps):
            np.save(os.path.join(folder, "%s_%d.npy" % (name, t)), np.ascontiguousarray(features[(name, t)], dtype=np.float32))
    np.save(os.path.join(folder, "labels.npy"), y.astype(np.int64))
    code = {"unused": 0, "train": 1, "test": 2}
    np.save(os.path.join(folder, "roles.npy"), np.array([[code[roles[k][p]] for p in paths] for k in folds], dtype=np.int8))
    with open(os.path.join(folder, "variants.txt"), "w") as f:
        f.write("\n".join(name for name, _ in variants) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--splits", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--mode", choices=["naive", "onepass"], required=True)
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2], help="random variants (none: pretrained only)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--save-features", metavar="DIR",
                    help="also write the features for bench/probe_speed.sh: V_T.npy (float32 [n, d] of variant V, "
                         "tap T), labels.npy (int64 [n]), roles.npy (int8 [folds, n]: 0 unused, 1 train, 2 test)")
    ap.add_argument("--skip-probes", action="store_true", help="extract (and save) only")
    ap.add_argument("--naive-taps", type=int, nargs="+", metavar="T",
                    help="naive mode: run the truncated network for these taps only, a part of the naive form's "
                         "work whose time is a lower bound on the whole (bench/naive_lower_bound.sh); "
                         "implies --skip-probes")
    args = ap.parse_args()
    if args.naive_taps and (args.mode != "naive" or args.save_features):
        ap.error("--naive-taps is for --mode naive, without --save-features (it extracts some taps only)")
    torch.set_num_threads(args.threads)

    # splits.csv: path,label,group,dataset_split,fold,role
    paths, labels, roles = [], {}, {}
    with open(args.splits) as f:
        for row in csv.DictReader(f):
            if row["path"] not in labels:
                paths.append(row["path"])
                labels[row["path"]] = row["label"]
            roles.setdefault(int(row["fold"]), {})[row["path"]] = row["role"]
    classes = sorted(set(labels.values()))
    y = np.array([classes.index(labels[p]) for p in paths])
    folds = sorted(roles)
    used = [i for i, p in enumerate(paths) if any(roles[k][p] != "unused" for k in folds)]
    paths = [paths[i] for i in used]
    y = y[used]

    start = time.time()
    images = None  # decoded once for onepass; naive decodes per tap as a per-tap script would
    variants = [("pretrained", None)] + [("random-%d" % s, s) for s in args.seeds]
    features = {}  # (variant, tap) -> [n, c]
    for name, seed in variants:
        model = torch.jit.load(args.model)
        if seed is not None:
            reinitialise(model, seed)
        model.eval()
        children = list(model.features.children())
        if any(not 0 <= t < len(children) for t in args.naive_taps or []):
            ap.error("--naive-taps: the model has taps 0 to %d" % (len(children) - 1))
        with torch.no_grad():
            if args.mode == "onepass":
                out = [[] for _ in children]
                for b in range(0, len(paths), args.batch):
                    x = torch.stack([load(p, args.size) for p in paths[b:b + args.batch]])
                    for t, child in enumerate(children):
                        x = child(x)
                        out[t].append(x.mean((2, 3)))
                for t in range(len(children)):
                    features[(name, t)] = torch.cat(out[t]).numpy()
            else:
                for t in args.naive_taps or range(len(children)):
                    out = []
                    for b in range(0, len(paths), args.batch):
                        x = torch.stack([load(p, args.size) for p in paths[b:b + args.batch]])
                        for child in children[: t + 1]:
                            x = child(x)
                        out.append(x.mean((2, 3)))
                    features[(name, t)] = torch.cat(out).numpy()
    extraction = time.time() - start
    if args.save_features:
        save_features(args.save_features, features, variants, len(children), y, roles, folds, paths)
    if args.skip_probes or args.naive_taps:
        print("python %s: images %d, extraction %.1f s" % (args.mode, len(paths), extraction))
        return

    start = time.time()
    rows = []
    taps = len(children)
    for name, _ in variants:
        for t in range(taps):
            X = features[(name, t)]
            scores = []
            for k in folds:
                tr = np.array([roles[k][p] == "train" for p in paths])
                te = np.array([roles[k][p] == "test" for p in paths])
                scaler = StandardScaler().fit(X[tr])
                clf = LogisticRegression(C=args.C, max_iter=1000).fit(scaler.transform(X[tr]), y[tr])
                scores.append(float((clf.predict(scaler.transform(X[te])) == y[te]).mean()))
            rows.append((name, t, float(np.mean(scores))))
    probing = time.time() - start
    with open(args.out, "w") as f:
        f.write("variant,tap_index,accuracy\n")
        for r in rows:
            f.write("%s,%d,%.6f\n" % r)
    print("python %s: images %d, variants %d, taps %d, extraction %.1f s, probes %.1f s, total %.1f s" %
          (args.mode, len(paths), len(variants), taps, extraction, probing, extraction + probing))


if __name__ == "__main__":
    main()
