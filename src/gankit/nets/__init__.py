"""Network architectures: a generator G and a discriminator D per registered name.

    G, D = build(cfg.model, (3, 32, 32))
    x = G(torch.randn(n, G.z_dim))   # (n, 3, 32, 32), in [-1, 1]
    s = D(x)                         # (n,) raw logits

Samples are points of shape (d,) or images of shape (C, H, W). Image generators end in tanh;
point generators end linear. Discriminators return raw scores (no sigmoid).
Every builder takes ``(m: ModelConfig, shape)`` and raises a one-line ConfigError for shapes it
cannot handle. Weights are initialised from the global torch RNG, so ``torch.manual_seed`` makes
``build`` reproducible.
"""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..config import ModelConfig
from ..registry import Registry
from .layers import Packed, add_spectral_norm, is_weight_layer, norm1d, norm2d

Builder = Callable[[ModelConfig, "tuple[int, ...]"], "tuple[nn.Module, nn.Module]"]

NETS: Registry[Builder] = Registry("architecture")


def build(m: ModelConfig, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """(G, D) for samples of `shape` ((d,) for points, (C, H, W) for images).

    With ``m.pack`` = k > 1 (PacGAN), each builder makes D for k samples stacked on the channel (or
    feature) axis, and D is wrapped in ``Packed`` so it still takes (N, *shape) and returns (N / k,).
    """
    G, D = NETS.get(m.arch)(m, tuple(int(s) for s in shape))
    return G, (Packed(D, m.pack) if m.pack > 1 else D)


def num_params(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


# Imported last: each module registers itself in NETS.
from . import dcgan, mlp, resnet  # noqa: E402,F401

__all__ = ["NETS", "Packed", "build", "num_params", "add_spectral_norm", "is_weight_layer", "norm1d", "norm2d"]
