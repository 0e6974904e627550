"""Feature extractors for evaluation, behind one registry.

An extractor maps images (N, C, H, W) in [-1, 1] (C = 1 or 3, any size; it resizes and converts
channels itself) to a dict of float64 arrays on the CPU:

    {"features": (N, D)}                  # what FID / KID / precision-recall compare
    {"features": (N, D), "logits": (N, K)}  # extractors that also classify (IS, classifier scores)

Every extractor has ``name`` (also the cache key of reference statistics, together with
``preprocessing``), ``dim`` and ``preprocessing`` (a short string describing resize/normalisation)
and ``classes`` (class names, or [] when it has no classifier head).
Build one with ``get_extractor(name, **options)``; names are listed by ``FEATURES.names()``.
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch

from ...registry import Registry


class Extractor(Protocol):
    name: str
    dim: int
    preprocessing: str
    classes: list[str]

    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]: ...


FEATURES: Registry[Callable[..., Extractor]] = Registry("feature extractor")


def get_extractor(name: str, **options) -> Extractor:
    return FEATURES.get(name)(**options)


# Imported last: each module registers its extractor in FEATURES.
from . import classifier, inception, torchvision_models  # noqa: E402,F401
