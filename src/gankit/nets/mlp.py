"""`mlp`: fully-connected G and D in the spirit of the original GAN (Goodfellow et al., 2014).

For 1-D/2-D toy points (shape (d,)) and flattened images (shape (C, H, W)).

G: z -> [Linear, ReLU (or Wiring.g_act)] x depth (width g_width) -> Linear to prod(shape) [-> tanh for images] -> reshape.
D: flatten -> [Linear, (LayerNorm), LeakyReLU(0.2)] x depth (width d_width) -> Linear -> (N,) logits.

Choices:
- D normalisation: only ``d_norm="layer"`` adds a LayerNorm; ``"batch"`` is treated as none, because
  batch statistics in a small fully-connected critic couple the samples of a batch (and break
  per-sample gradient penalties), and the original GAN used no normalisation in D.
- The original maxout units and dropout are replaced by (Leaky)ReLU; weights keep PyTorch's default
  (Kaiming-uniform) initialisation, drawn from the global RNG.
- Both are ``LayerStack``s (``layers.py``): they list their layers (``layers()``) and inherit the forward that
  applies them, which ``train.fast``'s fused stack computes too — one definition of the layers for both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..config import ModelConfig
from ..errors import ConfigError
from ..options import option
from .base import NETS, Wiring, cond_inputs
from .layers import LayerStack, MinibatchStd, activation, add_spectral_norm, check_norm


class MLPGenerator(LayerStack):
    """z: (N, z_dim) -> samples (N, *shape); tanh output for images, linear for points."""

    def __init__(self,
                 z_dim: int,                 # latent size
                 width: int,                 # hidden units per layer
                 depth: int,                 # number of hidden layers
                 shape: tuple[int, ...],     # sample shape: (d,) or (C, H, W)
                 batch_norm: bool = False,   # BatchNorm1d after each hidden Linear (for conditional BN)
                 act: str = "relu",          # hidden activation (layers.ACTIVATIONS)
                 ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.shape = tuple(shape)
        layers: list[nn.Module] = []
        fan_in = z_dim
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), *([nn.BatchNorm1d(width)] if batch_norm else []), activation(act)]
            fan_in = width
        layers.append(nn.Linear(fan_in, math.prod(shape)))
        if len(shape) == 3:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.out_shape = self.shape

    def layers(self) -> list[nn.Module]:
        """``net``'s layers: (N, z_dim) -> (N, prod(shape)), reshaped to (N, *shape) by ``LayerStack.forward``."""
        return list(self.net)


class MLPDiscriminator(LayerStack):
    """x: (N, *shape) -> logits (N,)."""

    flat_input = True   # a conditional D appends the condition to the flattened sample

    def __init__(self,
                 shape: tuple[int, ...],     # sample shape: (d,) or (C, H, W)
                 width: int,                 # hidden units per layer
                 depth: int,                 # number of hidden layers
                 layer_norm: bool,           # LayerNorm before each LeakyReLU
                 mbstd: int = 0,             # minibatch-std group size, before the last hidden layer; 0: none
                 ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = math.prod(shape)
        for i in range(depth):
            if mbstd and i == depth - 1:
                layers.append(MinibatchStd(mbstd))
                fan_in += 1
            layers.append(nn.Linear(fan_in, width))
            if layer_norm:
                layers.append(nn.LayerNorm(width))
            layers.append(nn.LeakyReLU(0.2))
            fan_in = width
        self.body = nn.Sequential(*layers)
        self.feature_dim = fan_in
        self.head = nn.Linear(fan_in, 1)
        self.out_shape = ()

    def layers(self) -> list[nn.Module]:
        """``body``'s layers, then ``head``: (N, *shape) -> (N, 1), reshaped to (N,) by ``LayerStack.forward``."""
        return [*self.body, self.head]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, *shape) -> (N, feature_dim): the last hidden layer."""
        return self.body(x)


@dataclass
class MLPOptions:
    depth: int = option(3, "hidden layers of G and of D", above=0)


@NETS.register("mlp", options=MLPOptions)
def build_mlp(m: ModelConfig, shape: tuple[int, ...], wiring: Wiring, options: MLPOptions) -> tuple[nn.Module, nn.Module]:
    """(G, D) for points (d,) or images (C, H, W); inputs widened for a condition (see conditional.py)."""
    if len(shape) not in (1, 3) or min(shape, default=0) < 1:
        raise ConfigError(f"architecture 'mlp' needs points (d,) or images (C, H, W) of positive sizes, "
                          f"got {tuple(shape)}")
    check_norm(m.d_norm)
    g_in, d_extra = cond_inputs(m.z_dim, wiring)
    g = MLPGenerator(g_in, m.g_width, options.depth, shape, batch_norm=bool(wiring.cond_dim) and wiring.cond_g == "cbn",
                     act=wiring.g_act)
    d = MLPDiscriminator((math.prod(shape) * wiring.pack + d_extra,), m.d_width, options.depth,
                         layer_norm=m.d_norm == "layer", mbstd=m.mbstd)
    if m.spectral_norm:
        add_spectral_norm(d)
    return g, d
