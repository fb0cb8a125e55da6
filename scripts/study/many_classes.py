#!/usr/bin/env python3
"""Many classes through `zerolabel run` (docs/naming-study.md, "Many classes: where the judges start").

Random class vectors; features a noisy, rotated copy of them (the construction of
unbalanced_classes.py, equal sizes), two seeds: 25 classes (50-D vectors, 128-D features, noise
0.2), 40 classes (80-D, 256-D, noise 0.1 and 0.2), and 40 classes whose features copy an unrelated
geometry (the names cannot be read from it). Prints the voted names' accuracy, the verdict and
each judge's support.
Needs numpy and a release build. Usage: scripts/study/many_classes.py [DRAWS] [WORKDIR]
"""
import json, os, re, subprocess, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unbalanced_classes import ZEROLABEL, write_problem  # noqa: E402

CASES = [  # (label, classes, vector dim, feature dim, noise, per class, unrelated geometry)
    ("c = 25", 25, 50, 128, 0.2, 120, False),
    ("c = 40", 40, 80, 256, 0.1, 90, False),
    ("c = 40, noise 0.2", 40, 80, 256, 0.2, 90, False),
    ("c = 40, unrelated geometry", 40, 80, 256, 0.1, 90, True),
]


def run(folder):
    result = subprocess.run([ZEROLABEL, "run", "--config", f"{folder}/run.toml", "--out", f"{folder}/out", "--quiet"], capture_output=True, text=True, check=True)
    metrics = json.load(open(f"{folder}/out/metrics.json"))
    verdict = "trusted" if "Names trusted" in result.stdout else "not trusted"
    judges = re.search(r"threshold [0-9.]+; ([^;]*);", result.stdout).group(1)
    return f"names {100 * metrics['accuracy']['mean']:.1f} %, {verdict} ({judges}), clusters {100 * metrics['summary']['cluster_hungarian_accuracy']['mean']:.1f} %"


def main():
    draws = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    workdir = sys.argv[2] if len(sys.argv) > 2 else "/tmp/zerolabel-many-classes"
    for draw in range(draws):
        for index, (label, c, d, dim, noise, per, unrelated) in enumerate(CASES):
            rng = np.random.default_rng(200 + 10 * draw + index)
            class_vectors = rng.normal(size=(c, d))
            geometry = rng.normal(size=(c, d)) if unrelated else None
            folder = f"{workdir}/draw{draw}-case{index}"
            write_problem(folder, class_vectors, [per] * c, seed=draw, dim=dim, noise=noise, geometry=geometry, name="many-classes")
            print(f"draw {draw}, {label}: {run(folder)}", flush=True)


if __name__ == "__main__":
    main()
