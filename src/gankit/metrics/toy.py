"""Metrics for toy distributions, where the truth is known.

* ``pacgan_modes``: the PacGAN protocol (Lin et al. 2018, Table 1): a sample is high quality when it
  lies within 3σ of its nearest mode; a mode is captured when at least one high-quality sample is
  nearest to it; reverse KL = KL(histogram of high-quality samples over modes ‖ uniform).
* ``wasserstein1``: W1 between the samples and the distribution — exact for 1-D (∫|F_n - F| dx against
  the true CDF), else the exact optimal-transport cost to an equal-sized sample of the distribution,
  stratified over the mixture's modes (an estimate of W1 whose error shrinks with n).
* ``js_binned``: Jensen–Shannon divergence (nats, at most log 2) between the distribution and the
  samples on a regular grid of bins; the distribution's bin masses are exact for Gaussian mixtures.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.special import ndtr


def pacgan_modes(x: np.ndarray, means: np.ndarray, std: float) -> dict[str, float]:
    """modes (captured count), high_quality (share of samples), reverse_kl, for samples x (N, d)."""
    x, means = np.asarray(x, np.float64), np.asarray(means, np.float64)
    d = np.sqrt(((x[:, None, :] - means[None]) ** 2).sum(-1))
    nearest, dist = d.argmin(1), d.min(1)
    hq = dist < 3 * std
    counts = np.bincount(nearest[hq], minlength=len(means))
    total = counts.sum()
    k = len(means)
    rkl = float(sum(c / total * math.log(c / total * k) for c in counts if c > 0)) if total else float("inf")
    return {"modes": float((counts > 0).sum()), "modes_total": float(k),
            "high_quality": float(hq.mean()), "reverse_kl": rkl}


def _mixture_cdf(t: np.ndarray, means: np.ndarray, std: float) -> np.ndarray:
    """CDF of an equal-weight 1-D Gaussian mixture at t."""
    return ndtr((t[:, None] - means[None, :, 0]) / std).mean(1)


def wasserstein1(x: np.ndarray, dist, n_ref: int | None = None, seed: int = 0) -> dict[str, float]:
    """W1 between samples x (N, d) and the toy distribution ``dist``; key ``w1`` (and ``w1_exact`` 1 or 0)."""
    x = np.asarray(x, np.float64)
    if x.shape[1] == 1 and getattr(dist, "means", None) is not None:
        means = dist.means.numpy().astype(np.float64)
        lo = min(x.min(), means.min() - 10 * dist.std)
        hi = max(x.max(), means.max() + 10 * dist.std)
        t = np.linspace(lo, hi, 200_001)
        emp = np.searchsorted(np.sort(x[:, 0]), t, side="right") / len(x)
        gap = np.abs(emp - _mixture_cdf(t, means, dist.std))
        return {"w1": float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(t))), "w1_exact": 1.0}
    n = n_ref or len(x)
    g = torch.Generator().manual_seed(seed)
    if getattr(dist, "means", None) is not None:  # stratified: each mode gets its exact share of points
        means = dist.means.numpy().astype(np.float64)
        comp = np.arange(n) % len(means)
        y = means[comp] + dist.std * torch.randn(n, means.shape[1], generator=g, dtype=torch.float64).numpy()
    else:
        y = dist.sample(n, g)[0].numpy().astype(np.float64)
    cost = np.sqrt(((x[:, None, :] - y[None]) ** 2).sum(-1)) if len(x) == n else None
    if cost is None:
        raise ValueError("the optimal-transport estimate needs as many reference points as samples")
    rows, cols = linear_sum_assignment(cost)
    return {"w1": float(cost[rows, cols].mean()), "w1_exact": 0.0}


def _bin_masses(dist, edges: list[np.ndarray]) -> np.ndarray:
    """Exact mass of an isotropic Gaussian mixture in each cell of the grid (product of 1-D masses)."""
    means = dist.means.numpy().astype(np.float64)
    total = 0.0
    for mu in means:
        per_axis = [np.diff(ndtr((e - m) / dist.std)) for e, m in zip(edges, mu)]
        cell = per_axis[0]
        for p in per_axis[1:]:
            cell = np.multiply.outer(cell, p)
        total = total + cell
    return total / len(means)


def js_binned(x: np.ndarray, dist, bins: int = 100, seed: int = 0) -> dict[str, float]:
    """JS(p_data ‖ p_samples) over a ``bins``-per-axis grid spanning both; key ``js`` (nats)."""
    x = np.asarray(x, np.float64)
    d = x.shape[1]
    ref = dist.sample(100_000, torch.Generator().manual_seed(seed))[0].numpy().astype(np.float64)
    lo = np.minimum(x.min(0), ref.min(0)) - 1e-9
    hi = np.maximum(x.max(0), ref.max(0)) + 1e-9
    edges = [np.linspace(lo[i], hi[i], bins + 1) for i in range(d)]
    q, _ = np.histogramdd(x, bins=edges)
    q = q / q.sum()
    if getattr(dist, "means", None) is not None:
        p = _bin_masses(dist, edges)
        p = p / p.sum()  # mass outside the grid (beyond 10σ) is negligible; renormalise
    else:
        p, _ = np.histogramdd(ref, bins=edges)
        p = p / p.sum()
    m = (p + q) / 2

    def kl(a, b):  # b ≥ a/2 > 0 wherever a > 0, except where a/2 underflows (a ≈ 1e-323): skip those
        mask = (a > 0) & (b > 0)
        return float((a[mask] * np.log(a[mask] / b[mask])).sum())

    return {"js": 0.5 * kl(p, m) + 0.5 * kl(q, m)}
