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

from .base import FEATURES, Extractor, get_extractor  # noqa: F401

# Imported last: each module registers its extractor in FEATURES.
from . import classifier, inception, torchvision_models  # noqa: E402,F401
