"""Memorisation check: a generator that reproduces its training images (or their mirror
images) has learnt nothing. For every sample, the distance to its nearest training image (flipped
copies included) is compared with how close training images are to *each other*:

    ratio_i = d(sample_i, train) / median_j d(train_j, train \\ {j})

A sample is flagged as memorised when it is closer to a training image than 99% of training images
are to their nearest neighbour (d < 1st percentile of the real-to-real distances): a generator that
draws fresh samples from the data distribution is flagged about 1% of the time; copies ~100%.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .knn import knn_radii, nearest


def memorisation(samples: torch.Tensor, train: torch.Tensor, flips: bool = True,
                 percentile: float = 1.0) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Samples (N, C, H, W) or (N, D) vs training data (M, ...), compared in pixel space.

    Returns (metrics, nearest-train index (N,), ratio (N,)). Metrics: ``memorised_share``,
    ``nn_ratio_median``, ``nn_ratio_min``.
    """
    s = samples.reshape(len(samples), -1).float()
    t = train.reshape(len(train), -1).float()
    real_nn = knn_radii(t, k=1).double().numpy()   # each training image to its nearest other one
    bank = t
    if flips and train.dim() == 4:
        bank = torch.cat([t, train.flip(-1).reshape(len(train), -1).float()])
    dist, idx = nearest(s, bank)
    dist, idx = dist.double().numpy(), idx.numpy() % len(train)
    threshold = np.percentile(real_nn, percentile)
    ratio = dist / max(np.median(real_nn), 1e-12)
    return ({"memorised_share": float((dist < threshold).mean()), "nn_ratio_median": float(np.median(ratio)),
             "nn_ratio_min": float(ratio.min())}, idx, ratio)


def save_nearest_picture(samples: torch.Tensor, train: torch.Tensor, idx: np.ndarray, ratio: np.ndarray,
                         path: Path, rows: int = 16) -> None:
    """The ``rows`` samples closest to training data, each beside its nearest training image."""
    from ..images import default_scale, save_grid

    order = np.argsort(ratio)[:rows]
    pairs = torch.stack([t for i in order for t in (samples[i], train[idx[i]])])
    save_grid(pairs, path, nrow=8 if len(pairs) >= 8 else len(pairs), scale=default_scale(samples.shape[-1]))
