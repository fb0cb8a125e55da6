#!/usr/bin/env python3
"""Unbalanced classes through `zerolabel run` (docs/naming-study.md, "Unbalanced classes").

Six random class vectors in 30-D; features a noisy, rotated, scaled copy of them in 128-D (noise
0.3), class sizes 400, 400, 400, 100, 100, 100; two seeds. Each draw is run with the defaults
(nearest-centroid assignment, k-means fallback for Sinkhorn clusters of very unequal sizes) and
again, on the same files, without the fallback (`kmeans_fallback = false`), with the paper's
assignment rule (`assign = "plan"`, no fallback) and with k-means clustering.
Needs numpy and a release build. Usage: scripts/study/unbalanced_classes.py [DRAWS] [WORKDIR]
"""
import json, os, re, shutil, subprocess, sys
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ZEROLABEL = os.path.join(ROOT, "target", "release", "zerolabel")


def write_problem(folder, class_vectors, sizes, seed, dim=128, noise=0.3, geometry=None, name="unbalanced"):
    """Features laid out as `geometry` (default: the class vectors themselves), named by the class vectors."""
    rng = np.random.default_rng(seed)
    c, d = class_vectors.shape
    layout = class_vectors if geometry is None else geometry
    centred = layout - layout.mean(0)
    centred /= np.sqrt((centred ** 2).sum(1).mean())
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    padded = np.zeros((c, dim))
    padded[:, :d] = centred
    centres = padded @ rotation.T
    x = np.concatenate([centres[k] + noise * np.sqrt(d / dim) * rng.normal(size=(n, dim)) for k, n in enumerate(sizes)]).astype(np.float32)
    y = np.concatenate([[k] * n for k, n in enumerate(sizes)]).astype(np.int64)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    n_train = len(y) * 2 // 3
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    np.save(f"{folder}/train.npy", x[:n_train])
    np.save(f"{folder}/test.npy", x[n_train:])
    np.save(f"{folder}/test_labels.npy", y[n_train:])
    np.savetxt(f"{folder}/classes.txt", class_vectors, fmt="%.6f")
    names = ", ".join(f'"class {k}"' for k in range(c))
    with open(f"{folder}/run.toml", "w") as f:
        f.write(f'name = "{name}"\ndevice = "cpu"\n[classes]\nnames = [{names}]\nencoder = "vectors"\nclass_vectors = "classes.txt"\n\n'
                f'[features]\ntrain = "train.npy"\ntest = "test.npy"\ntest_labels = "test_labels.npy"\n\n[stages]\nseeds = 2\nsteps = 300\n')


def run(folder, out, *extra):
    result = subprocess.run([ZEROLABEL, "run", "--config", f"{folder}/run.toml", "--out", f"{folder}/{out}", "--quiet", *extra], capture_output=True, text=True, check=True)
    metrics = json.load(open(f"{folder}/{out}/metrics.json"))
    support = re.search(r"probability of (?:at least |only )([0-9.]+)", result.stdout).group(1)
    trusted = "trusted" if "Names trusted" in result.stdout else "not trusted"
    fallback = re.search(r"sizes differed up to ([0-9.]+):1", result.stdout)
    fallback = f", k-means fallback (Sinkhorn clusters {fallback.group(1)}:1)" if fallback else ""
    return f"names {100 * metrics['accuracy']['mean']:.1f} %, {trusted} (support {support}), clusters {100 * metrics['summary']['cluster_hungarian_accuracy']['mean']:.1f} %{fallback}"


def main():
    draws = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    workdir = sys.argv[2] if len(sys.argv) > 2 else "/tmp/zerolabel-unbalanced"
    for draw in range(draws):
        class_vectors = np.random.default_rng(100 + draw).normal(size=(6, 30))
        folder = f"{workdir}/draw{draw}"
        write_problem(folder, class_vectors, [400, 400, 400, 100, 100, 100], seed=draw)
        no_fallback = ("--set", "stages.kmeans_fallback=false")
        arms = [("default", ()), ("nearest (no fallback)", no_fallback), ("plan (no fallback)", ("--set", 'stages.assign="plan"', *no_fallback)), ("k-means", ("--set", 'stages.clustering="kmeans"'))]
        for label, extra in arms:
            print(f"draw {draw}: {label}: {run(folder, label.split()[0], *extra)}", flush=True)


if __name__ == "__main__":
    main()
