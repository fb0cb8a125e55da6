#!/usr/bin/env python3
"""The verdict where the clusters' geometry is only partly the names' (docs/naming-study.md,
"Trust under structural noise").

Random 30-D class vectors name the classes; the features are drawn (as in
`unbalanced_classes.py`: a rotated 128-D copy, noise 0.3, 200 samples a class) around the class
vectors plus sigma times N(0, 1) per coordinate, so the clusters stay pure and only the names can
go wrong. Prints each case's naming accuracy and verdict through `zerolabel run` with the
defaults: a trusted naming should be right.
Needs numpy and a release build. Usage: scripts/study/structural_noise.py [DRAWS] [WORKDIR]
"""
import os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unbalanced_classes import write_problem, run


def main():
    draws = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    workdir = sys.argv[2] if len(sys.argv) > 2 else "/tmp/zerolabel-structural-noise"
    for c in [8, 12]:
        for sigma in [0.4, 0.7, 1.0]:
            for draw in range(draws):
                rng = np.random.default_rng(1000 * c + 10 * draw + int(sigma * 10))
                class_vectors = rng.normal(size=(c, 30))
                geometry = class_vectors + sigma * rng.normal(size=class_vectors.shape)
                folder = f"{workdir}/c{c}-s{sigma}-d{draw}"
                write_problem(folder, class_vectors, [200] * c, seed=draw, noise=0.3, geometry=geometry, name="structural-noise")
                print(f"{c} classes, sigma {sigma}, draw {draw}: {run(folder, 'out')}", flush=True)


if __name__ == "__main__":
    main()
