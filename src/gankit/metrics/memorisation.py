"""Memorisation check: a generator that reproduces its training images (or their mirror images) has
learnt nothing. For every sample, its distances (in pixels) to the training images, flipped copies
included, sorted: d_1 ≤ d_2 ≤ ... A sample is flagged as a copy when its nearest training image is far
closer than the ones after it,

    d_1 < ratio · mean(d_2, ..., d_{k+1})        (ratio = 1/3, k = 50)

— the relative distance of Carlini et al. (2023). A copy sits next to one image and away from the rest;
a blob or a flat image that sits about as far from every training image as from its nearest is not a
copy, however small d_1 is next to the distances between training images (where the mean image of a
varied set always is). ``nn_ratio`` = d_1 / the median distance of a training image to its nearest other
one, as before, describes how close samples come.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .knn import knn_radii

RATIO, NEIGHBOURS = 1 / 3, 50


def nearest_distances(query: torch.Tensor, bank: torch.Tensor, k: int, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest Euclidean distances (N, k), ascending, from each row of ``query`` to the rows of
    ``bank``, and their indices; float64, in chunks of ``chunk`` queries."""
    q, b = query.double(), bank.double()
    b_sq = (b * b).sum(1)
    dists, idxs = [], []
    for part in q.split(chunk):
        d2 = ((part * part).sum(1)[:, None] - 2 * part @ b.t() + b_sq[None, :]).clamp_min(0)
        d, i = d2.topk(min(k, len(b)), dim=1, largest=False)
        dists.append(d.sqrt())
        idxs.append(i)
    return torch.cat(dists), torch.cat(idxs)


def memorisation(samples: torch.Tensor, train: torch.Tensor, flips: bool = True, ratio: float = RATIO,
                 neighbours: int = NEIGHBOURS) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """Samples (N, C, H, W) or (N, D) vs training data (M, ...), compared in pixel space.

    Returns (metrics, nearest-train index (N,), relative distance d_1 / mean(d_2..d_{k+1}) (N,)).
    Metrics: ``memorised_share`` (relative distance < ``ratio``), ``nn_ratio_median``, ``nn_ratio_min``.
    """
    s = samples.reshape(len(samples), -1).float()
    t = train.reshape(len(train), -1).float()
    real_nn = knn_radii(t, k=1).double().numpy()   # each training image to its nearest other one
    bank = t
    if flips and train.dim() == 4:
        bank = torch.cat([t, train.flip(-1).reshape(len(train), -1).float()])
    with torch.inference_mode():
        dist, idx = nearest_distances(s, bank, neighbours + 1)
    first = dist[:, 0].numpy()
    relative = (dist[:, 0] / dist[:, 1:].mean(1).clamp_min(1e-12)).numpy()
    nn_ratio = first / max(np.median(real_nn), 1e-12)
    return ({"memorised_share": float((relative < ratio).mean()), "nn_ratio_median": float(np.median(nn_ratio)),
             "nn_ratio_min": float(nn_ratio.min())}, idx[:, 0].numpy() % len(train), relative)


def nearest_pairs(samples: torch.Tensor, train: torch.Tensor, idx: np.ndarray, ratio: np.ndarray,
                  rows: int = 16) -> torch.Tensor:
    """The ``rows`` samples most like a copy (lowest relative distance), each followed by its nearest training
    image: (2 · rows, ...)."""
    order = np.argsort(ratio)[:rows]
    return torch.stack([t for i in order for t in (samples[i], train[idx[i]])])


def save_nearest_picture(samples: torch.Tensor, train: torch.Tensor, idx: np.ndarray, ratio: np.ndarray,
                         path: Path, rows: int = 16) -> None:
    """``nearest_pairs`` as a picture, eight images a row."""
    from ..images import default_scale, save_grid

    pairs = nearest_pairs(samples, train, idx, ratio, rows)
    save_grid(pairs, path, nrow=8 if len(pairs) >= 8 else len(pairs), scale=default_scale(samples.shape[-1]))
