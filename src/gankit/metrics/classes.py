"""What a classifier says about a set of samples (classifier-based scores: Shmelkov et al. 2018).

* quality: a good sample gets a confident prediction — ``confidence`` = mean max-probability and
  ``confident_share`` = share of samples with max-probability above a threshold;
* diversity: the mean prediction over all samples should be spread over the classes —
  ``class_entropy`` = H(mean p(y|x)), and ``class_entropy_ratio`` = that over the real data's;
* per class: the share of samples predicted as each class, against the real data's share; a class
  with (almost) no samples is *dropped* (mode dropping); a class whose samples are much closer to each
  other than real images of that class are *collapsed* (mode collapse). ``class_verdict`` says which.
"""
from __future__ import annotations

import numpy as np

from .inception_score import softmax


def entropy(p: np.ndarray) -> float:
    p = np.asarray(p, np.float64)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def classifier_scores(probs: np.ndarray, threshold: float = 0.9) -> dict[str, float]:
    """confidence, confident_share, class_entropy (nats) for probabilities (N, K)."""
    p = np.asarray(probs, np.float64)
    top = p.max(1)
    return {"confidence": float(top.mean()), "confident_share": float((top > threshold).mean()),
            "class_entropy": entropy(p.mean(0))}


def within_class_spread(features: np.ndarray, labels: np.ndarray, k: int, max_per_class: int = 500) -> np.ndarray:
    """Mean pairwise distance between features of the same class, per class (K,); NaN if < 2 samples."""
    out = np.full(k, np.nan)
    rng = np.random.default_rng(0)
    for c in range(k):
        f = features[labels == c]
        if len(f) > max_per_class:
            f = f[rng.choice(len(f), max_per_class, replace=False)]
        if len(f) >= 2:
            sq = (f * f).sum(1)
            d2 = np.clip(sq[:, None] + sq[None] - 2 * f @ f.T, 0, None)
            out[c] = np.sqrt(d2)[np.triu_indices(len(f), 1)].mean()
    return out


def class_report(fake_probs: np.ndarray, real_probs: np.ndarray, classes: list[str],
                 fake_features: np.ndarray | None = None, real_features: np.ndarray | None = None,
                 drop_below: float = 0.1, collapse_below: float = 0.5) -> tuple[dict[str, float], str]:
    """Per-class shares and a one-line verdict.

    A class is dropped when its share of samples is below ``drop_below`` × its share of real data;
    collapsed when its samples' within-class spread (in feature space) is below ``collapse_below`` ×
    the real images' spread. Returns flat floats (``class_share/<name>``, ``classes_dropped``,
    ``classes_collapsed``, ``class_entropy_ratio``) and the verdict text.
    """
    k = len(classes)
    fake_pred = np.asarray(fake_probs).argmax(1)
    real_pred = np.asarray(real_probs).argmax(1)
    fake_share = np.bincount(fake_pred, minlength=k) / len(fake_pred)
    real_share = np.bincount(real_pred, minlength=k) / len(real_pred)
    dropped = [c for c in range(k) if real_share[c] > 0 and fake_share[c] < drop_below * real_share[c]]
    collapsed = []
    if fake_features is not None and real_features is not None:
        fs = within_class_spread(np.asarray(fake_features, np.float64), fake_pred, k)
        rs = within_class_spread(np.asarray(real_features, np.float64), real_pred, k)
        collapsed = [c for c in range(k) if c not in dropped and np.isfinite(fs[c]) and np.isfinite(rs[c])
                     and fs[c] < collapse_below * rs[c]]
    out = {f"class_share/{name}": float(fake_share[i]) for i, name in enumerate(classes)}
    out["classes_dropped"] = float(len(dropped))
    out["classes_collapsed"] = float(len(collapsed))
    out["class_entropy_ratio"] = entropy(np.asarray(fake_probs).mean(0)) / max(entropy(np.asarray(real_probs).mean(0)), 1e-12)
    parts = []
    if dropped:
        parts.append(f"mode dropping: {len(dropped)} of {k} classes missing ({', '.join(classes[c] for c in dropped)})")
    if collapsed:
        parts.append(f"mode collapse: samples of {', '.join(classes[c] for c in collapsed)} are near-duplicates "
                     f"(within-class spread < {collapse_below:g}× real)")
    verdict = "; ".join(parts) if parts else f"all {k} classes present, none collapsed"
    return out, verdict


__all__ = ["classifier_scores", "class_report", "entropy", "softmax", "within_class_spread"]
