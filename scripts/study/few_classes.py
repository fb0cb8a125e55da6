#!/usr/bin/env python3
"""Few classes through `zerolabel run` (docs/naming-study.md, "Few classes: chance fits").

Random class vectors in 30-D; features a noisy, rotated copy of them in 128-D (noise 0.3, 300
samples a class; the construction of unbalanced_classes.py) for 4 to 8 classes, two seeds, names
voted. Prints the voted names' accuracy, the verdict and each judge's support. Names of fewer
than five classes are never trusted (`MIN_CLASSES_TO_TRUST`).
Needs numpy and a release build. Usage: scripts/study/few_classes.py [DRAWS] [WORKDIR]
"""
import json, os, re, subprocess, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unbalanced_classes import ZEROLABEL, write_problem  # noqa: E402


def run(folder):
    result = subprocess.run([ZEROLABEL, "run", "--config", f"{folder}/run.toml", "--out", f"{folder}/out", "--quiet"], capture_output=True, text=True, check=True)
    metrics = json.load(open(f"{folder}/out/metrics.json"))
    verdict = "trusted" if "Names trusted" in result.stdout else "not trusted"
    judges = re.search(r"(centred-cosine [0-9.]+, centred-rank [0-9.]+, centred-blind-match [0-9.]+, euclidean [0-9.]+)", result.stdout)
    return f"names {100 * metrics['accuracy']['mean']:.1f} %, {verdict} ({judges.group(1) if judges else '-'}), clusters {100 * metrics['summary']['cluster_hungarian_accuracy']['mean']:.1f} %"


def main():
    draws = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    workdir = sys.argv[2] if len(sys.argv) > 2 else "/tmp/zerolabel-few-classes"
    for c in range(4, 9):
        for draw in range(draws):
            class_vectors = np.random.default_rng(500 + draw).normal(size=(c, 30))
            folder = f"{workdir}/c{c}-draw{draw}"
            write_problem(folder, class_vectors, [300] * c, seed=draw, name="few-classes")
            print(f"{c} classes, draw {draw}: {run(folder)}", flush=True)


if __name__ == "__main__":
    main()
