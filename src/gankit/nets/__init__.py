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
from ..errors import ConfigError
from ..registry import Registry
from .conditional import COND_D, COND_G, ConditionalD, ConditionalG
from .layers import Packed, add_spectral_norm, is_weight_layer, norm1d, norm2d

Builder = Callable[[ModelConfig, "tuple[int, ...]"], "tuple[nn.Module, nn.Module]"]

NETS: Registry[Builder] = Registry("architecture")

# Image-to-image pairs: (ModelConfig, condition shape (Cin, H, W), image shape (C, H, W), D channels, D classes)
# -> (G, D); G(a, z) -> image, D(cat(a, x)) -> logits (N, P). Used by the paired, cyclegan and stargan recipes.
TRANSLATORS: Registry[Callable] = Registry("image-to-image architecture")


def build(m: ModelConfig, shape: tuple[int, ...], cond_dim: int = 0, aux: bool = False) -> tuple[nn.Module, nn.Module]:
    """(G, D) for samples of `shape` ((d,) for points, (C, H, W) for images).

    With ``m.pack`` = k > 1 (PacGAN), each builder makes D for k samples stacked on the channel (or
    feature) axis, and D is wrapped in ``Packed`` so it still takes (N, *shape) and returns (N / k,).
    With ``cond_dim`` > 0 the nets are conditional, ``G(z, c)`` and ``D(x, c)`` (see ``conditional.py``);
    ``aux`` adds D's auxiliary classifier (ACGAN).
    """
    if cond_dim:
        if m.cond_g not in COND_G:
            raise ConfigError(f"model.cond_g: unknown mode '{m.cond_g}'; valid: {', '.join(COND_G)}")
        if m.cond_d not in COND_D:
            raise ConfigError(f"model.cond_d: unknown mode '{m.cond_d}'; valid: {', '.join(COND_D)}")
        if m.pack > 1:
            raise ConfigError("model.pack: packing (PacGAN) is for unconditional runs; set model.pack=1")
    G, D = NETS.get(m.arch)(m, tuple(int(s) for s in shape), cond_dim)
    if not cond_dim:
        return G, (Packed(D, m.pack) if m.pack > 1 else D)
    try:
        G = ConditionalG(G, cond_dim, m.cond_g, m.z_dim)
    except ValueError as e:
        raise ConfigError(f"{e} (architecture '{m.arch}')") from None
    D = ConditionalD(D, cond_dim, m.cond_d, aux, flat_input=getattr(D, "flat_input", False))
    if m.spectral_norm:
        add_spectral_norm(D)
    return G, D


def build_translator(m: ModelConfig, cond_shape: tuple[int, ...], shape: tuple[int, ...], d_channels: int | None = None,
                     d_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """(G, D) of an image-to-image architecture (``model.arch``, e.g. unet): G(a, z) -> image; D takes
    ``d_channels`` channels (default: the pair cat(a, x)) and, with ``d_classes`` > 0, has ``classify``."""
    return TRANSLATORS.get(m.arch)(m, tuple(int(s) for s in cond_shape), tuple(int(s) for s in shape),
                                   d_channels, d_classes)


def num_params(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


# Imported last: each module registers itself in NETS.
from . import dcgan, mlp, resgen, resnet, unet  # noqa: E402,F401

__all__ = ["NETS", "TRANSLATORS", "Packed", "build", "build_translator", "num_params", "add_spectral_norm", "is_weight_layer", "norm1d", "norm2d"]
