"""Conditioning any architecture on a condition vector c (N, C) (Mirza & Osindero 2014).

c is a one-hot class (C = number of classes), multi-hot attributes, or any per-sample embedding (a text
embedding, say). The same wrappers serve every architecture of ``nets/``:

G(z, c), ``cgan.cond_g``:
- ``concat``: c is concatenated with z (Mirza & Osindero, 2014); the builder widens G's input.
- ``cbn``: conditional BatchNorm (de Vries et al., 2017; Miyato & Koyama, 2018): every BatchNorm of G
  loses its own affine parameters and takes gain 1 + W_γ c and bias W_β c instead (for a one-hot c,
  one learned (γ, β) per class). The MLP generator gets BatchNorm layers for this.

D(x, c), ``cgan.cond_d``:
- ``concat``: c enters with the input — appended to the flattened sample (MLP) or broadcast as C extra
  constant channels (convolutional D); the builder widens D's input.
- ``projection``: logit = ψ(φ(x)) + <V c, φ(x)> with φ(x) the last features (Miyato & Koyama, 2018);
  for a one-hot c, V c is the class embedding.
- ``none``: D does not see c (ACGAN with ``cgan.aux`` > 0 is the usual reason).

With ``aux`` (the ACGAN loss weight ``cgan.aux`` > 0), D also predicts c from φ(x): (N, C) logits
(Odena et al., 2017).
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

COND_G = ("concat", "cbn")
COND_D = ("concat", "projection", "none")


class CondBatchNorm(nn.Module):
    """BatchNorm whose gain and bias are linear functions of the condition: (N, F, ...) -> same shape.

    x̂ = BN(x) without affine; out = (1 + W_γ c) · x̂ + W_β c, broadcast over the spatial axes.
    ``ConditionalG`` sets ``self.c`` (N, C) for the duration of one forward pass.
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, cond_dim: int) -> None:
        super().__init__()
        self.norm = type(bn)(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=False)
        self.gain = nn.Linear(cond_dim, bn.num_features, bias=False)
        self.bias = nn.Linear(cond_dim, bn.num_features, bias=False)
        nn.init.zeros_(self.gain.weight)   # starts as the unconditional BN with γ = 1, β = 0
        nn.init.zeros_(self.bias.weight)
        self.c: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.c is None:
            raise RuntimeError("CondBatchNorm called outside ConditionalG (no condition set)")
        extra = (1,) * (x.dim() - 2)
        gain = (1.0 + self.gain(self.c)).reshape(x.shape[0], -1, *extra)
        bias = self.bias(self.c).reshape(x.shape[0], -1, *extra)
        return self.norm(x) * gain + bias


def _swap_batchnorms(net: nn.Module, cond_dim: int) -> list[CondBatchNorm]:
    """Replace every BatchNorm1d/2d inside ``net`` by a CondBatchNorm, in place; returns them."""
    swapped = []
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
                cbn = CondBatchNorm(child, cond_dim)
                setattr(parent, name, cbn)
                swapped.append(cbn)
    return swapped


class ConditionalG(nn.Module):
    """G(z (N, z_dim), c (N, C)) -> samples (N, *shape), around an unconditional generator."""

    def __init__(self, inner: nn.Module, cond_dim: int, mode: str, z_dim: int) -> None:
        super().__init__()
        self.inner, self.mode, self.cond_dim, self.z_dim = inner, mode, cond_dim, z_dim
        self._cbns = _swap_batchnorms(inner, cond_dim) if mode == "cbn" else []
        if mode == "cbn" and not self._cbns:
            raise ValueError("cgan.cond_g=cbn needs a generator with BatchNorm layers")

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        if self.mode == "concat":
            return self.inner(torch.cat([z, c.to(z.dtype)], dim=1))
        for m in self._cbns:
            m.c = c.to(z.dtype)
        try:
            return self.inner(z)
        finally:
            for m in self._cbns:
                m.c = None


class ConditionalD(nn.Module):
    """D(x (N, *shape), c (N, C)) -> logits (N,) [and auxiliary logits (N, C)], around a discriminator
    with ``features(x) -> (N, F)``, ``head: Linear(F, 1)`` and ``feature_dim``."""

    def __init__(self, inner: nn.Module, cond_dim: int, mode: str, aux: bool, flat_input: bool) -> None:
        super().__init__()
        self.inner, self.mode, self.cond_dim, self.flat_input = inner, mode, cond_dim, flat_input
        f = inner.feature_dim
        self.embed = nn.Linear(cond_dim, f, bias=False) if mode == "projection" else None
        self.aux = nn.Linear(f, cond_dim) if aux else None

    def _input(self, x: Tensor, c: Tensor) -> Tensor:
        if self.mode != "concat":
            return x
        c = c.to(x.dtype)
        if self.flat_input:
            return torch.cat([x.reshape(x.shape[0], -1), c], dim=1)
        maps = c.reshape(*c.shape, *(1,) * (x.dim() - 2)).expand(-1, -1, *x.shape[2:])
        return torch.cat([x, maps], dim=1)

    def features(self, x: Tensor, c: Tensor) -> Tensor:
        """(N, *shape), (N, C) -> (N, feature_dim): the inner D's features of x with its condition."""
        return self.inner.features(self._input(x, c))

    def forward(self, x: Tensor, c: Tensor, with_aux: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        phi = self.features(x, c)
        logit = self.inner.head(phi).reshape(x.shape[0])
        if self.embed is not None:
            logit = logit + (self.embed(c.to(phi.dtype)) * phi).sum(dim=1)
        if not with_aux:
            return logit
        if self.aux is None:
            raise RuntimeError("this discriminator has no auxiliary classifier (cgan.aux = 0)")
        return logit, self.aux(phi)
