"""The device a run trains on, and seeding every RNG a run draws from."""
from __future__ import annotations

import random

import numpy as np
import torch

from ..errors import GankitError


def pick_device(name: str) -> torch.device:
    """train.device: auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GankitError(f"train.device={name}: CUDA is not available here; valid: auto, cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise GankitError("train.device=mps: MPS is not available here; valid: auto, cpu")
    return torch.device(name)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
