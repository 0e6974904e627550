"""Kernel Inception Distance (Bińkowski et al. 2018): the unbiased estimate of MMD² with the cubic
polynomial kernel k(x, y) = (x·y / d + 1)³, averaged over random subsets.

    MMD²_u = 1/(m(m-1)) Σ_{i≠j} k(x_i, x_j) + 1/(n(n-1)) Σ_{i≠j} k(y_i, y_j) - 2/(mn) Σ_{i,j} k(x_i, y_j)
"""
from __future__ import annotations

import numpy as np


def polynomial_kernel(a: np.ndarray, b: np.ndarray, degree: int = 3, gamma: float | None = None,
                      coef0: float = 1.0) -> np.ndarray:
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    return (a @ b.T * gamma + coef0) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between x (m, d) and y (n, d) with the cubic polynomial kernel."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> dict[str, float]:
    """KID mean and std over ``subsets`` random subsets of ``subset_size`` (clipped to the set sizes),
    as torch-fidelity does (its defaults: 100 subsets of 1,000)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    rng = np.random.default_rng(seed)
    vals = [mmd2_unbiased(real[rng.choice(len(real), size, replace=False)],
                          fake[rng.choice(len(fake), size, replace=False)]) for _ in range(subsets)]
    return {"kid": float(np.mean(vals)), "kid_std": float(np.std(vals))}
