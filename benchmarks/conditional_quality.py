"""Does a class-conditional digits run draw the class it is asked for, with variety inside each class?

    python benchmarks/conditional_quality.py RUN_DIR [RUN_DIR ...] [--n 500]

For each class k, draws n samples with ``label = k`` (EMA generator, latent seed 123) and classifies them
with an independent classifier (scikit-learn SVC on the real 8×8 digits, as in digits_quality.py).
Prints per run: the agreement with the requested class for every class and its minimum, and the
within-class diversity — the mean pairwise distance between samples of a class divided by the same for
the real digits of that class (1 = as varied as the data; near 0 = one image per class).
"""
import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from digits_quality import classifier


def mean_pairwise(x: np.ndarray) -> float:
    """Mean Euclidean distance between distinct rows of x (N, D)."""
    d = np.sqrt(np.maximum(((x[:, None] - x[None]) ** 2).sum(-1), 0))
    n = len(x)
    return float(d.sum() / (n * (n - 1)))


def score_run(run: Path, n: int, clf) -> dict:
    from gankit.run import draw, open_run

    loaded = open_run(run)
    real = load_digits()
    agree, diversity = [], []
    for k in range(10):
        x = draw(loaded, n, seed=123, labels=torch.full((n,), k))
        imgs = ((x[:, 0].numpy() + 1) * 8).reshape(n, -1)
        agree.append(float((clf.predict(imgs) == k).mean()))
        ref = real.images[real.target == k].reshape(-1, 64)
        diversity.append(mean_pairwise(imgs[:200]) / mean_pairwise(ref[:200]))
    return {"agreement": agree, "min_agreement": min(agree), "mean_agreement": float(np.mean(agree)),
            "diversity": diversity, "min_diversity": min(diversity)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--n", type=int, default=500, help="samples per class")
    a = ap.parse_args()
    clf = classifier()
    for run in a.runs:
        s = score_run(run, a.n, clf)
        print(f"{run}: agreement min {s['min_agreement']:.3f} mean {s['mean_agreement']:.3f} "
              f"per class {[round(v, 3) for v in s['agreement']]}; within-class diversity vs real: "
              f"min {s['min_diversity']:.2f} per class {[round(v, 2) for v in s['diversity']]}")


if __name__ == "__main__":
    main()
