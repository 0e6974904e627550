"""The feature-extractor protocol and registry (``FEATURES``); see the package docstring."""
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
