#!/usr/bin/env python3
"""A common offset and scale of imported features through `zerolabel run` (docs/naming-study.md,
"A common offset of the features").

Eight random class vectors in 30-D; features a noisy, rotated copy of them in 128-D (centres of
unit root-mean-square norm, noise 0.6 sqrt(30/128) per coordinate, 300 samples a class), then
multiplied by a scale and shifted by `offset` times a random unit direction. The naming compares
member means, which follow the offset; stages II-III cluster the L2-normalised rows, which a
large offset squeezes into a small cap of the sphere. Each case runs with the defaults and
without the k-means fallback (`kmeans_fallback = false`).
Needs numpy and a release build. Usage: scripts/study/common_offset.py [DRAWS] [WORKDIR]
"""
import os, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unbalanced_classes import write_problem, run

CASES = [(1.0, 0.0), (1.0, 3.0), (1.0, 10.0), (1.0, 30.0), (1e-4, 10.0), (1e4, 10.0)]


def main():
    draws = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    workdir = sys.argv[2] if len(sys.argv) > 2 else "/tmp/zerolabel-offset"
    for draw in range(draws):
        class_vectors = np.random.default_rng(300 + draw).normal(size=(8, 30))
        folder = f"{workdir}/draw{draw}"
        write_problem(folder, class_vectors, [300] * 8, seed=draw, noise=0.6, name="offset")
        train, test = np.load(f"{folder}/train.npy"), np.load(f"{folder}/test.npy")
        direction = np.random.default_rng(7 + draw).normal(size=train.shape[1])
        direction /= np.linalg.norm(direction)
        for scale, offset in CASES:
            np.save(f"{folder}/train.npy", (scale * (train + offset * direction)).astype(np.float32))
            np.save(f"{folder}/test.npy", (scale * (test + offset * direction)).astype(np.float32))
            for label, extra in [("default", ()), ("no fallback", ("--set", "stages.kmeans_fallback=false"))]:
                out = f"s{scale:g}-o{offset:g}-{label.split()[0]}"
                print(f"draw {draw}: scale {scale:g}, offset {offset:g}, {label}: {run(folder, out, *extra)}", flush=True)


if __name__ == "__main__":
    main()
