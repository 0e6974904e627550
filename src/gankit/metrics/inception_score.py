"""Inception Score (Salimans et al. 2016): high when each sample's class prediction is
confident (quality) and the predictions spread over many classes (diversity).

    IS = exp( E_x KL( p(y|x) ‖ p(y) ) ),   p(y) = E_x p(y|x),   averaged over ``splits`` splits.
"""
from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def inception_score(probs: np.ndarray, splits: int = 10) -> dict[str, float]:
    """IS mean and std over ``splits`` consecutive splits of probs (N, K) (rows sum to 1)."""
    p = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(np.clip(part, 1e-300, None)) - np.log(np.clip(py, 1e-300, None)))).sum(1)
        scores.append(np.exp(kl.mean()))
    return {"is": float(np.mean(scores)), "is_std": float(np.std(scores))}
