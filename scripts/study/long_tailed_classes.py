#!/usr/bin/env python3
"""Long-tailed class sizes through `zerolabel run` (docs/naming-study.md, "k-means second opinion").

Random class vectors in 30-D; features a noisy, rotated copy of them in 128-D (noise 0.3; the
construction of unbalanced_classes.py), class sizes falling as 600 / (k + 1)^0.7 (8 classes:
600 down to 140, 4.3:1; 10 classes: down to 119, 5:1), and the 8 classes with an unrelated
geometry (names that cannot be read from the features). Two seeds, names voted. Each draw is run
with the defaults and without the k-means fallback; prints the voted names' accuracy, the
verdict, the clusters' purity and, per seed, the Sinkhorn clusters' size ratio where k-means
clusters replaced them.
Needs numpy and a release build. Usage: scripts/study/long_tailed_classes.py [DRAWS] [WORKDIR]
"""
import json, os, re, subprocess, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unbalanced_classes import ZEROLABEL, write_problem  # noqa: E402

CASES = [  # (label, classes, unrelated geometry)
    ("8 classes, 4.3:1", 8, False),
    ("10 classes, 5:1", 10, False),
    ("8 classes, 4.3:1, unrelated geometry", 8, True),
]


def run(folder, out, *extra):
    result = subprocess.run([ZEROLABEL, "run", "--config", f"{folder}/run.toml", "--out", f"{folder}/{out}", "--quiet", *extra], capture_output=True, text=True, check=True)
    metrics = json.load(open(f"{folder}/{out}/metrics.json"))
    support = re.search(r"probability of (?:at least |only )([0-9.]+)", result.stdout).group(1)
    verdict = "trusted" if "Names trusted" in result.stdout else "not trusted"
    stage = json.load(open(f"{folder}/{out}/manifest.json"))["stages"][0]["dir"]
    ratios = [json.load(open(f"{folder}/{out}/{stage}/seed-{s}/seed.json")).get("kmeans_fallback") for s in range(2)]
    replaced = ", ".join(f"seed {s}: k-means (Sinkhorn {r:.1f}:1)" for s, r in enumerate(ratios) if r is not None)
    return f"names {100 * metrics['accuracy']['mean']:.1f} %, {verdict} ({support}), clusters {100 * metrics['summary']['cluster_hungarian_accuracy']['mean']:.1f} %" + (f"; {replaced}" if replaced else "")


def main():
    draws = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    workdir = sys.argv[2] if len(sys.argv) > 2 else "/tmp/zerolabel-long-tailed"
    for label, c, unrelated in CASES:
        for draw in range(draws):
            class_vectors = np.random.default_rng(500 + draw).normal(size=(c, 30))
            geometry = np.random.default_rng(900 + draw).normal(size=(c, 30)) if unrelated else None
            sizes = [int(600 / (k + 1) ** 0.7) for k in range(c)]
            folder = f"{workdir}/{c}-{int(unrelated)}-draw{draw}"
            write_problem(folder, class_vectors, sizes, seed=draw, geometry=geometry, name="long-tailed")
            for arm, extra in [("default", ()), ("no fallback", ("--set", "stages.kmeans_fallback=false"))]:
                print(f"{label}, draw {draw}, {arm}: {run(folder, arm.split()[0], *extra)}", flush=True)


if __name__ == "__main__":
    main()
