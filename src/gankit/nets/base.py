"""The architecture registries and what a builder is given besides the shared ``[model]`` table.

* ``NETS``: noise-to-sample pairs, builders ``(m: ModelConfig, shape, wiring: Wiring, options) -> (G, D)``;
* ``TRANSLATORS``: image-to-image pairs, builders ``(m, cond_shape, shape, d_channels, d_classes, options)
  -> (G, D)``: G(a, z) -> image, D(cat(a, x)) -> logits (N, P); used by the paired, cyclegan and stargan recipes.

``options`` is the architecture's own option table (registered with it, e.g. ``[mlp] depth``), or None
for an architecture that has none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..registry import Registry

NETS: Registry[Callable] = Registry("architecture")
TRANSLATORS: Registry[Callable] = Registry("image-to-image architecture")


@dataclass(frozen=True)
class Wiring:
    """How a recipe connects G and D to the rest of a step: the condition both take (``cond_dim`` values;
    0 = unconditional), how each takes it, D's auxiliary classifier, and PacGAN packing."""

    cond_dim: int = 0
    cond_g: str = "concat"       # concat (with z) | cbn (conditional BatchNorm)
    cond_d: str = "projection"   # projection | concat | none
    aux: bool = False            # D also predicts the condition (ACGAN)
    pack: int = 1                # D judges this many samples at once (PacGAN); 1 = off
    g_act: str = "relu"          # G's hidden activation (layers.ACTIVATIONS): GON needs a smooth one


def cond_inputs(z_dim: int, w: Wiring) -> tuple[int, int]:
    """(G input size, extra D input channels/features) for a condition of ``w.cond_dim`` values:
    concatenation widens G's latent input (``cond_g=concat``) and D's input (``cond_d=concat``)."""
    if not w.cond_dim:
        return z_dim, 0
    return z_dim + (w.cond_dim if w.cond_g == "concat" else 0), (w.cond_dim if w.cond_d == "concat" else 0)
