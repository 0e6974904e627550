"""The feature-extractor protocol and registry (``FEATURES``); see the package docstring."""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch

from ...registry import Registry
from ...runtime import map_batches


class Extractor(Protocol):
    name: str
    dim: int
    preprocessing: str
    classes: list[str]

    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]: ...


FEATURES: Registry[Callable[..., Extractor]] = Registry("feature extractor")


def extract(fn: Callable[[torch.Tensor], dict[str, torch.Tensor]], images: torch.Tensor, batch_size: int,
            empty: Callable[[], dict[str, tuple[int, ...]]], desc: str = "features") -> dict[str, np.ndarray]:
    """``fn`` on images (N, ...) in batches of ``batch_size`` — spread over the processes of an evaluation
    under torchrun (``runtime.map_batches``), with a progress bar on long runs — its outputs concatenated
    as float64 arrays; ``empty()``: the shapes (0, ...) of each output, for no images."""
    count = -(-len(images) // batch_size)
    if count == 0:
        return {k: np.zeros(shape) for k, shape in empty().items()}
    parts = map_batches(lambda b: {k: v.double().cpu() for k, v in fn(images[b * batch_size:(b + 1) * batch_size]).items()},
                        count, desc=desc, unit="batch")
    return {k: torch.cat([p[k] for p in parts]).numpy() for k in parts[0]}


def get_extractor(name: str, **options) -> Extractor:
    return FEATURES.get(name)(**options)
