"""Small pieces every architecture shares: discriminator normalisation, spectral norm, a linear head over a
feature map, a network that is a plain sequence of layers (``LayerStack``)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import ConfigError

NORMS = ("batch", "layer", "none")
ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU, "softplus": nn.Softplus, "tanh": nn.Tanh}


def activation(name: str, inplace: bool = False) -> nn.Module:
    """A generator's hidden activation by name (``ACTIVATIONS``); ``inplace`` where the module has it."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation '{name}'; valid: {', '.join(ACTIVATIONS)}")
    cls = ACTIVATIONS[name]
    return cls(inplace=True) if inplace and cls in (nn.ReLU, nn.ELU, nn.SiLU) else cls()


def check_norm(kind: str) -> None:
    """Raise ConfigError unless `kind` is a known d_norm value."""
    if kind not in NORMS:
        raise ConfigError(f"model.d_norm: unknown normalisation '{kind}'; valid: {', '.join(NORMS)}")


def norm2d(kind: str, channels: int) -> nn.Module:
    """Normalisation for (N, C, H, W) features: BatchNorm2d, GroupNorm(1, C) (per-sample layer norm) or none."""
    check_norm(kind)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def norm1d(kind: str, features: int) -> nn.Module:
    """Normalisation for (N, F) features: BatchNorm1d, LayerNorm or none."""
    check_norm(kind)
    if kind == "batch":
        return nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.LayerNorm(features)
    return nn.Identity()


class LayerStack(nn.Module):
    """A network that is its layers in order: ``forward`` applies the modules ``layers()`` returns, one after
    the other, to the flattened input (N, -1) and reshapes the result to (N, *out_shape). Subclasses define
    ``layers()`` and ``out_shape``, not ``forward``: the one definition of the layers that the plain forward and
    ``train.fast``'s fused stack (``training/kernels/fused_mlp.py``, only for a net whose forward is this one)
    both run."""

    out_shape: tuple[int, ...] = ()

    def layers(self) -> list[nn.Module]:
        """The modules forward applies, in order."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """(N, ...) -> (N, *out_shape)."""
        h = x.flatten(1)
        for layer in self.layers():
            h = layer(h)
        return h.reshape(x.shape[0], *self.out_shape)


def linear_of_map(linear: nn.Linear, h: Tensor) -> Tensor:
    """``linear(h.flatten(1))`` for a (N, C, H, W) map ``h`` whose flattening is in (C, H, W) order, reading h in
    its memory order: a channels-last h (``train.fast``) is not copied into that order, nor its gradient back —
    the weight's C*H*W columns are permuted instead (the same sum in another order; the copies cost 2% of a
    fast 28x28 DCGAN step, docs/BENCHMARKS.md). The module's forward hooks do not run on that path."""
    if h.is_contiguous() or not h.is_contiguous(memory_format=torch.channels_last):
        return linear(h.flatten(1))
    n, c, height, width = h.shape
    w = linear.weight.view(-1, c, height, width).permute(0, 2, 3, 1).reshape(linear.out_features, -1)
    return F.linear(h.permute(0, 2, 3, 1).reshape(n, -1), w, linear.bias)


def is_weight_layer(module: nn.Module) -> bool:
    """True for the layers spectral norm applies to: every Conv*/ConvTranspose* and Linear."""
    return isinstance(module, (nn.modules.conv._ConvNd, nn.Linear))


def per_sample(net: nn.Module) -> bool:
    """Does ``net`` treat the samples of a batch independently and change no state per forward, so that
    ``net(cat(a, b))`` is ``cat(net(a), net(b))``? Not with batch statistics (BatchNorm) or running
    statistics, nor with spectral norm (one power iteration per training-mode forward), nor with a layer
    that ``mixes_samples`` (the minibatch standard deviation). PacGAN's groups
    of k consecutive samples stay apart when both parts hold a multiple of k."""
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) or getattr(m, "track_running_stats", False)
                   or parametrize.is_parametrized(m) or getattr(m, "mixes_samples", False) for m in net.modules())


def add_spectral_norm(net: nn.Module) -> nn.Module:
    """Wrap the weight of every Conv/Linear in `net` with spectral normalisation, in place; returns `net`.

    Call it after weight initialisation: the parametrisation keeps the initialised weight as
    ``parametrizations.weight.original`` and stores its power-iteration vectors ``_u``/``_v`` as
    buffers, so they are part of the state_dict. One power iteration runs per training-mode forward.
    """
    for module in list(net.modules()):
        if is_weight_layer(module) and not parametrize.is_parametrized(module, "weight"):
            spectral_norm(module)
    return net


class Packed(nn.Module):
    """PacGAN packing (Lin et al. 2018): D judges k samples at once, so a generator that repeats itself
    is easy to spot. (N, *shape) -> k consecutive samples stacked on axis 1 -> inner D -> (N / k,).
    N must be a multiple of k (the loop's batch size is checked at config time)."""

    def __init__(self, inner: nn.Module, k: int) -> None:
        super().__init__()
        self.inner, self.k = inner, k

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        if n % self.k:
            raise ValueError(f"a packed discriminator (pack={self.k}) needs a batch that is a multiple of {self.k}, got {n}")
        return self.inner(x.reshape(n // self.k, self.k * x.shape[1], *x.shape[2:]))

    def features(self, x: Tensor) -> Tensor:
        """(N, *shape) -> (N / k, feature_dim): the inner D's features of each pack."""
        n = x.shape[0]
        return self.inner.features(x.reshape(n // self.k, self.k * x.shape[1], *x.shape[2:]))


class MinibatchStd(nn.Module):
    """The minibatch standard deviation (Karras et al. 2018): one feature (or feature map) appended to
    each sample, the standard deviation of every feature over its group of samples, averaged — so D sees
    how varied a batch is. Samples i, i + N/g, i + 2N/g, ... form a group of g (g: the largest divisor of
    N up to ``group``). (N, F) -> (N, F + 1); (N, C, H, W) -> (N, C + 1, H, W)."""

    mixes_samples = True   # a sample's output depends on the others (nets.layers.per_sample)

    def __init__(self, group: int) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        g = max(d for d in range(1, min(self.group, n) + 1) if n % d == 0)
        y = x.float().reshape(g, n // g, *x.shape[1:])
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()           # (N/g, *features)
        s = std.reshape(n // g, -1).mean(dim=1).to(x.dtype)         # (N/g,)
        s = s.repeat(g)                                              # sample i -> group i mod N/g
        extra = s.reshape(n, 1, *(1,) * (x.dim() - 2)).expand(n, 1, *x.shape[2:])
        return torch.cat([x, extra], dim=1)


def check_square_image(arch: str, shape: tuple[int, ...], sizes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` if it is (C, S, S) with C in (1, 3) and S in ``sizes``; else a ConfigError with a hint."""
    shape = tuple(shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or shape[1] != shape[2] or shape[1] not in sizes:
        hint = ("use model.arch=mlp for points" if len(shape) != 3
                else "set data.channels" if shape[0] not in (1, 3) else "set data.size")
        listed = ", ".join(map(str, sizes[:-1])) + f" or {sizes[-1]}"
        raise ConfigError(f"architecture '{arch}' needs square images of {listed} px with 1 or 3 "
                          f"channels, got {shape}; {hint}")
    return shape
