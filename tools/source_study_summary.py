#!/usr/bin/python3
"""Markdown tables of the source-domain study (docs/source-domains.md) from the files that
tools/source_study.sh writes: each source's gain per tap with its interval (gain.csv of each
run) and the paired differences between sources (sources-SET.csv).

    /usr/bin/python3 tools/source_study_summary.py RUNS_DIR [METRIC] [--charts DIR]

METRIC defaults to accuracy. --charts DIR also copies the first three charts of each comparison
page (score, gain, score difference per tap; the page's first metric) to DIR as SVG files.
"""
import csv, re, sys

args = sys.argv[1:]
charts = None
if "--charts" in args:
    charts = args[args.index("--charts") + 1]
    del args[args.index("--charts"):args.index("--charts") + 2]
runs, metric = args[0], (args[1] if len(args) > 1 else "accuracy")

if charts:
    for study in ("pcam", "lc25000"):
        html = open(f"{runs}/sources-{study}.html").read()
        svgs = re.findall(r'<svg class="kgain-chart".*?</svg>', html, re.S)
        for name, svg in zip(("score", "gain", "difference"), svgs):
            open(f"{charts}/sources-{study}-{name}.svg", "w").write(svg + "\n")
sources = [("imagenet", "ImageNet"), ("inat-bird", "iNat birds"), ("inat-insect", "iNat insects")]


def rows(path):
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if r["metric"] == metric]


def fmt(x, digits=3):
    return f"{float(x):+.{digits}f}" if x != "" else "–"


for study in ("pcam", "lc25000"):
    gains = {key: rows(f"{runs}/{study}-{key}/gain.csv") for key, _ in sources}
    paired = rows(f"{runs}/sources-{study}.csv")
    print(f"\n### {study}: {metric}, gain over random weights per source (95% interval)\n")
    print("| # | tap | random mean | " + " | ".join(f"{name}: score, gain [interval]" for _, name in sources) + " |")
    print("|---|---|---|" + "---|" * len(sources))
    for i, base in enumerate(gains["imagenet"]):
        cells = []
        for key, _ in sources:
            g = gains[key][i]
            cells.append(f"{float(g['pretrained']):.3f}, {fmt(g['gain'])} [{fmt(g['gain_low'])}, {fmt(g['gain_high'])}]")
        print(f"| {base['tap_index']} | {base['tap']} | {float(base['random_mean']):.3f} | " + " | ".join(cells) + " |")
    print(f"\n### {study}: {metric}, paired score differences between sources (95% interval, q)\n")
    pairs = sorted({(r["run_a"], r["run_b"]) for r in paired}, key=lambda p: [r["run_a"] + r["run_b"] for r in paired].index(p[0] + p[1]))
    print("| # | tap | " + " | ".join(f"{a.split('-', 1)[1]} − {b.split('-', 1)[1]}" for a, b in pairs) + " |")
    print("|---|---|" + "---|" * len(pairs))
    for tap in sorted({int(r["tap_index"]) for r in paired}):
        cells = []
        for a, b in pairs:
            r = next(r for r in paired if int(r["tap_index"]) == tap and r["run_a"] == a and r["run_b"] == b)
            mark = " **" if float(r["score_q"]) < 0.05 else ""
            cells.append(f"{mark}{fmt(r['score_difference'])} [{fmt(r['score_low'])}, {fmt(r['score_high'])}] q={float(r['score_q']):.2f}{mark.strip() and '**'}")
        print(f"| {tap} | {r['tap']} | " + " | ".join(cells) + " |")
