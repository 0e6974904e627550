"""scikit-learn's 8x8 handwritten digits: 1,797 images shipped with the library, no download."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import DataConfig
from ..options import option
from .base import DATASETS, TensorSource
from .images import adapt


@dataclass
class DigitsOptions:
    hold_out: bool = option(False, "keep 20% of the digits out of training (the split of the digit domains): "
                                   "data.split=train reads the other 80%, test these; false: every split is all 1,797")


@DATASETS.register("digits", options=DigitsOptions)
def load_digits(cfg: DataConfig, options: DigitsOptions) -> TensorSource:
    """1,797 digits as float (N, C, S, S) in [-1, 1]; S = data.size (8 native), C = data.channels (1 native)."""
    from sklearn.datasets import load_digits as sk_load_digits

    if options.hold_out:
        from .domains import handwritten

        images, target = handwritten(cfg.split)
    else:
        d = sk_load_digits()
        images, target = d.images, d.target
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32).unsqueeze(1)   # (N, 1, 8, 8), values 0..16
    x = x / 16 * 2 - 1
    x = adapt(x, cfg.size, cfg.channels, "digits").clamp_(-1, 1)
    y = torch.as_tensor(np.asarray(target), dtype=torch.int64)
    return TensorSource(x, y, classes=[str(i) for i in range(10)], name="digits")
