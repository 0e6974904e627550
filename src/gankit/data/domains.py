"""Built-in many-domain digit sets for image-to-image translation, made offline (for CycleGAN and StarGAN).

* ``digits-printed`` — two unpaired domains for CycleGAN: "handwritten" (scikit-learn's 1,797 digits)
  and "printed" (digits rendered from matplotlib's fonts in the same 8x8, 0..16 format, ``printed.py``).
* ``digit-fonts`` — four domains for StarGAN: the digits in DejaVu Sans, Sans Bold, Sans Oblique, Serif.

The classes of these sets are the domains; the digit of every image is kept as its *content* label
(shared by all domains), which the translation metrics use to check that a translation kept the digit.
``data.split`` = train | test: the handwritten digits are split 80/20 by a fixed permutation; printed
test digits are rendered from a different seed than the training ones.
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import DataConfig
from .base import DATASETS, TensorSource
from .images import adapt
from .printed import render

DIGITS = [str(i) for i in range(10)]
TEST_SHARE = 0.2
PER_DIGIT = {"train": 150, "test": 40}     # printed samples of each digit per style
FONT_DOMAINS = ("sans", "bold", "italic", "serif")


def handwritten(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits of ``split``: (counts float (N, 8, 8) 0..16, digits int64 (N,))."""
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.default_rng(20260).permutation(len(d.target))
    n_test = int(round(TEST_SHARE * len(order)))
    idx = np.sort(order[n_test:] if split == "train" else order[:n_test])
    return d.images[idx].astype(np.float32), d.target[idx].astype(np.int64)


def printed(style: str, split: str, salt: int) -> tuple[np.ndarray, np.ndarray]:
    """Rendered digits of ``style`` for ``split``: (counts float (N, 8, 8), digits (N,))."""
    seed = salt * 2 + (split == "test")
    x, y = render(style, PER_DIGIT[split], seed)
    return x.astype(np.float32), y


def domain_source(parts: list[tuple[np.ndarray, np.ndarray]], domains: list[str], name: str,
                  cfg: DataConfig) -> TensorSource:
    """One TensorSource from per-domain (counts, digits): classes = domains, content = digits."""
    x = torch.from_numpy(np.concatenate([p[0] for p in parts]))[:, None] / 16 * 2 - 1
    x = adapt(x, cfg.size, cfg.channels, name).clamp_(-1, 1)
    y = torch.cat([torch.full((len(p[1]),), k, dtype=torch.int64) for k, p in enumerate(parts)])
    content = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    return TensorSource(x, y, classes=domains, name=name, content=content, content_classes=DIGITS)


@DATASETS.register("digits-printed")
def load_digits_printed(cfg: DataConfig) -> TensorSource:
    """Domain 0 "handwritten" (1,437 train / 360 test), domain 1 "printed" (1,500 / 400), 8x8 grey."""
    parts = [handwritten(cfg.split), printed("printed", cfg.split, salt=1)]
    return domain_source(parts, ["handwritten", "printed"], "digits-printed", cfg)


@DATASETS.register("digit-fonts")
def load_digit_fonts(cfg: DataConfig) -> TensorSource:
    """Four printed domains (1,500 train / 400 test digits each), 8x8 grey."""
    parts = [printed(style, cfg.split, salt=10 + k) for k, style in enumerate(FONT_DOMAINS)]
    return domain_source(parts, list(FONT_DOMAINS), "digit-fonts", cfg)
