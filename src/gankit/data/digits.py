"""scikit-learn's 8x8 handwritten digits: 1,797 images shipped with the library, no download."""
from __future__ import annotations

import torch

from ..config import DataConfig
from .base import DATASETS, TensorSource
from .images import adapt


@DATASETS.register("digits")
def load_digits(cfg: DataConfig) -> TensorSource:
    """1,797 digits as float (N, C, S, S) in [-1, 1]; S = data.size (8 native), C = data.channels (1 native)."""
    from sklearn.datasets import load_digits as sk_load_digits

    d = sk_load_digits()
    x = torch.as_tensor(d.images, dtype=torch.float32).unsqueeze(1)   # (1797, 1, 8, 8), values 0..16
    x = x / 16 * 2 - 1
    x = adapt(x, cfg.size, cfg.channels, "digits").clamp_(-1, 1)
    y = torch.as_tensor(d.target, dtype=torch.int64)
    return TensorSource(x, y, classes=[str(i) for i in range(10)], name="digits")
