"""Network architectures: a generator G and a discriminator D per registered name.

    G, D = build(cfg.model, (3, 32, 32))
    x = G(torch.randn(n, G.z_dim))   # (n, 3, 32, 32), in [-1, 1]
    s = D(x)                         # (n,) raw logits

Samples are points of shape (d,) or images of shape (C, H, W). Image generators end in tanh;
point generators end linear. Discriminators return raw scores (no sigmoid).
Every builder takes ``(m: ModelConfig, shape, wiring, options)`` (``base.py``) and raises a one-line ConfigError for shapes it
cannot handle. Weights are initialised from the global torch RNG, so ``torch.manual_seed`` makes
``build`` reproducible.
"""
from __future__ import annotations

import torch.nn as nn

from ..config import ModelConfig
from ..errors import ConfigError
from .base import NETS, TRANSLATORS, Wiring
from .conditional import ConditionalD, ConditionalG
from .layers import Packed, add_spectral_norm, is_weight_layer, norm1d, norm2d


def build(m: ModelConfig, shape: tuple[int, ...], wiring: Wiring = Wiring(), options=None) -> tuple[nn.Module, nn.Module]:
    """(G, D) for samples of `shape` ((d,) for points, (C, H, W) for images); ``options``: the
    architecture's own table (its defaults when None).

    With ``wiring.pack`` = k > 1 (PacGAN), each builder makes D for k samples stacked on the channel (or
    feature) axis, and D is wrapped in ``Packed`` so it still takes (N, *shape) and returns (N / k,).
    With ``wiring.cond_dim`` > 0 the nets are conditional, ``G(z, c)`` and ``D(x, c)`` (see
    ``conditional.py``); ``wiring.aux`` adds D's auxiliary classifier (ACGAN).
    """
    if options is None and NETS.options(m.arch) is not None:
        options = NETS.options(m.arch)()
    G, D = NETS.get(m.arch)(m, tuple(int(s) for s in shape), wiring, options)
    if not wiring.cond_dim:
        return G, (Packed(D, wiring.pack) if wiring.pack > 1 else D)
    try:
        G = ConditionalG(G, wiring.cond_dim, wiring.cond_g, m.z_dim)
    except ValueError as e:
        raise ConfigError(f"{e} (architecture '{m.arch}')") from None
    D = ConditionalD(D, wiring.cond_dim, wiring.cond_d, wiring.aux, flat_input=getattr(D, "flat_input", False))
    if m.spectral_norm:
        add_spectral_norm(D)
    return G, D


def build_translator(m: ModelConfig, cond_shape: tuple[int, ...], shape: tuple[int, ...], d_channels: int | None = None,
                     d_classes: int = 0, options=None) -> tuple[nn.Module, nn.Module]:
    """(G, D) of an image-to-image architecture (``model.arch``, e.g. unet): G(a, z) -> image; D takes
    ``d_channels`` channels (default: the pair cat(a, x)) and, with ``d_classes`` > 0, has ``classify``."""
    if options is None and TRANSLATORS.options(m.arch) is not None:
        options = TRANSLATORS.options(m.arch)()
    return TRANSLATORS.get(m.arch)(m, tuple(int(s) for s in cond_shape), tuple(int(s) for s in shape),
                                   d_channels, d_classes, options)


def num_params(net: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


# Imported last: each module registers itself in NETS or TRANSLATORS.
from . import dcgan, mlp, resgen, resnet, unet  # noqa: E402,F401

__all__ = ["NETS", "TRANSLATORS", "Wiring", "Packed", "build", "build_translator", "num_params", "add_spectral_norm",
           "is_weight_layer", "norm1d", "norm2d"]
