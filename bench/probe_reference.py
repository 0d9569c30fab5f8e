#!/usr/bin/python3
"""scikit-learn's probes on saved features: the reference side of bench/probe_speed.sh.

    probe_reference.py DIR --probe logistic|knn|ridge [--C 1 --tol 1e-4 --max-iter 100]
                       [--k 5] [--alpha 1] --out accuracy.csv

DIR is what `python_reference.py --save-features DIR` wrote: V_T.npy (float32 [n, d]),
labels.npy, roles.npy ([folds, n]: 0 unused, 1 train, 2 test), variants.txt. For every variant,
tap and fold: StandardScaler fitted on the training images, then the model (kgain's probes
standardize the same way), accuracy on the test images. Timed: standardization, fit and
prediction, not loading. One process, fits one after another; numpy's BLAS uses the threads it
is given (OPENBLAS_NUM_THREADS). Prints fits, seconds, fits/s and, for logistic, the mean number
of L-BFGS iterations; writes variant,tap_index,accuracy (mean over folds).
"""
import argparse
import os
import time

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler


def model(args):
    if args.probe == "logistic":
        return LogisticRegression(C=args.C, tol=args.tol, max_iter=args.max_iter)
    if args.probe == "knn":
        return KNeighborsClassifier(n_neighbors=args.k)
    return RidgeClassifier(alpha=args.alpha)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--probe", choices=["logistic", "knn", "ridge"], required=True)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    variants = open(os.path.join(args.dir, "variants.txt")).read().split()
    y = np.load(os.path.join(args.dir, "labels.npy"))
    roles = np.load(os.path.join(args.dir, "roles.npy"))
    taps = 0
    while os.path.exists(os.path.join(args.dir, "%s_%d.npy" % (variants[0], taps))):
        taps += 1
    seconds, fits, iterations, rows = 0.0, 0, [], []
    for v in variants:
        for t in range(taps):
            X = np.load(os.path.join(args.dir, "%s_%d.npy" % (v, t)))
            scores = []
            for fold in roles:
                tr, te = fold == 1, fold == 2
                start = time.perf_counter()
                scaler = StandardScaler().fit(X[tr])
                clf = model(args).fit(scaler.transform(X[tr]), y[tr])
                predicted = clf.predict(scaler.transform(X[te]))
                seconds += time.perf_counter() - start
                fits += 1
                if args.probe == "logistic":
                    iterations.append(int(np.max(clf.n_iter_)))
                scores.append(float((predicted == y[te]).mean()))
            rows.append((v, t, float(np.mean(scores))))
    with open(args.out, "w") as f:
        f.write("variant,tap_index,accuracy\n")
        for r in rows:
            f.write("%s,%d,%.6f\n" % r)
    extra = ", mean iterations %.1f" % np.mean(iterations) if iterations else ""
    print("scikit-learn %s: %d fits in %.2f s, %.2f fits/s%s" % (args.probe, fits, seconds, fits / seconds, extra))


if __name__ == "__main__":
    main()
