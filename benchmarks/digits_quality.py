"""Score a digits run with an independent classifier (scikit-learn SVC trained on the real digits).

    python benchmarks/digits_quality.py RUN_DIR [--n 2000]

Prints the share of samples per predicted class, the mean max-probability (confidence) and the share
of samples classified with probability > 0.9. Real digits score about 0.98 / 0.95 here.
"""
import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.svm import SVC

from gankit.run import draw, open_run


def classifier() -> SVC:
    d = load_digits()
    return SVC(gamma=0.001, C=10, probability=True, random_state=0).fit(d.data, d.target)  # noqa


def score(images: np.ndarray, clf: SVC) -> dict:
    """images: (N, 8, 8) in [0, 16]."""
    p = clf.predict_proba(images.reshape(len(images), -1))
    pred = p.argmax(1)
    return {"counts": np.bincount(pred, minlength=10).tolist(), "confidence": float(p.max(1).mean()),
            "confident_share": float((p.max(1) > 0.9).mean())}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    clf = classifier()
    x = draw(open_run(args.run), args.n, seed=123)[:, 0].numpy()
    print("generated", score((x + 1) * 8, clf))
    d = load_digits()
    print("real     ", score(d.images, clf))
