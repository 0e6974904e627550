"""`resnet`: the ResNet G and D of SNGAN (Miyato et al., 2018), CIFAR-10 architecture.

Square images of 16, 32 or 64 px with 1 or 3 channels; 32 px is the paper's network, other sizes
add or remove resolution-changing blocks (the channel widths stay the same).

G (ch = 4 * g_width, the paper's 256 for g_width = 64):
   Linear z -> 4x4 x ch -> log2(size/4) up blocks
   [BN, ReLU, nearest 2x upsample, conv3x3, BN, ReLU, conv3x3; shortcut: upsample + conv1x1]
   -> BN, ReLU, conv3x3 to C, tanh.
D (ch = 2 * d_width, the paper's 128 for d_width = 64):
   optimized block [conv3x3, ReLU, conv3x3, avgpool; shortcut: avgpool + conv1x1] (size -> size/2)
   -> log2(size/16) down blocks [ReLU, conv3x3, ReLU, conv3x3, avgpool; shortcut: conv1x1 + avgpool]
   -> 2 plain blocks [ReLU, conv3x3, ReLU, conv3x3; identity shortcut] at 8x8
   -> ReLU, global sum pooling, Linear to one logit.

D normalisation: the paper's D has no batch norm, so ``d_norm="batch"`` is treated as none here;
``d_norm="layer"`` puts GroupNorm(1, C) before each ReLU inside the residual branches (as in
WGAN-GP-style ResNet critics). ``spectral_norm`` wraps every conv and linear layer of D.

Initialisation (the authors' code): Xavier-uniform with gain sqrt(2) for the 3x3 convs inside residual
branches, gain 1 for shortcut convs, linear layers and G's output conv; biases 0; BN weight 1.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig
from ..errors import ConfigError
from .base import NETS, Wiring, cond_inputs
from .layers import MinibatchStd, activation, add_spectral_norm, check_norm, check_square_image, norm2d

SIZES = (16, 32, 64)


def _init(layer: nn.Module, gain: float) -> nn.Module:
    nn.init.xavier_uniform_(layer.weight, gain)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _conv3(cin: int, cout: int) -> nn.Conv2d:
    return _init(nn.Conv2d(cin, cout, 3, 1, 1), math.sqrt(2))


def _conv1(cin: int, cout: int) -> nn.Conv2d:
    return _init(nn.Conv2d(cin, cout, 1, 1, 0), 1.0)


# --------------------------------------------------------------------------------------- generator

class _UpBlock(nn.Module):
    """(N, cin, H, W) -> (N, cout, 2H, 2W)."""

    def __init__(self, cin: int, cout: int, act: str = "relu") -> None:
        super().__init__()
        self.act = activation(act)
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3(cin, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = _conv3(cout, cout)
        self.shortcut = _conv1(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(self.act(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(self.act(self.bn2(self.conv1(h))))
        # a 1x1 conv commutes with nearest upsampling, so convolve at the lower resolution
        return h + F.interpolate(self.shortcut(x), scale_factor=2, mode="nearest")


class ResNetGenerator(nn.Module):
    """z: (N, z_dim) -> images (N, C, size, size) in [-1, 1]."""

    def __init__(self,
                 z_dim: int,      # latent size
                 width: int,      # g_width; blocks have 4 * width channels
                 channels: int,   # image channels C
                 size: int,       # image side: 16, 32 or 64
                 act: str = "relu",   # hidden activation (layers.ACTIVATIONS)
                 ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.act = activation(act)
        self.ch = ch = 4 * width
        self.linear = _init(nn.Linear(z_dim, 4 * 4 * ch), 1.0)
        self.blocks = nn.Sequential(*[_UpBlock(ch, ch, act) for _ in range(int(math.log2(size // 4)))])
        self.bn = nn.BatchNorm2d(ch)
        self.conv = _init(nn.Conv2d(ch, channels, 3, 1, 1), 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, z_dim) -> (N, C, size, size)."""
        h = self.linear(z).reshape(z.shape[0], self.ch, 4, 4)
        h = self.blocks(h)
        return torch.tanh(self.conv(self.act(self.bn(h))))


# ----------------------------------------------------------------------------------- discriminator

class _OptimizedBlock(nn.Module):
    """First D block, without a leading ReLU: (N, cin, H, W) -> (N, cout, H/2, W/2)."""

    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__()
        self.conv1 = _conv3(cin, cout)
        self.norm1 = norm2d(norm, cout)
        self.conv2 = _conv3(cout, cout)
        self.shortcut = _conv1(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.norm1(self.conv1(x))))
        return F.avg_pool2d(h, 2) + self.shortcut(F.avg_pool2d(x, 2))


class _DownBlock(nn.Module):
    """(N, cin, H, W) -> (N, cout, H/2, W/2), learnable 1x1 shortcut."""

    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__()
        self.norm1 = norm2d(norm, cin)
        self.conv1 = _conv3(cin, cout)
        self.norm2 = norm2d(norm, cout)
        self.conv2 = _conv3(cout, cout)
        self.shortcut = _conv1(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.norm1(x)))
        h = self.conv2(F.relu(self.norm2(h)))
        return F.avg_pool2d(h, 2) + F.avg_pool2d(self.shortcut(x), 2)


class _PlainBlock(nn.Module):
    """(N, ch, H, W) -> (N, ch, H, W), identity shortcut."""

    def __init__(self, ch: int, norm: str) -> None:
        super().__init__()
        self.norm1 = norm2d(norm, ch)
        self.conv1 = _conv3(ch, ch)
        self.norm2 = norm2d(norm, ch)
        self.conv2 = _conv3(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.norm1(x)))
        h = self.conv2(F.relu(self.norm2(h)))
        return x + h


class ResNetDiscriminator(nn.Module):
    """x: (N, C, size, size) -> logits (N,)."""

    def __init__(self,
                 width: int,      # d_width; blocks have 2 * width channels
                 channels: int,   # image channels C
                 size: int,       # image side: 16, 32 or 64
                 norm: str,       # "layer" (GroupNorm(1, C) before each block ReLU) or "none"
                 mbstd: int = 0,  # minibatch-std group size, after the last block; 0: none
                 ) -> None:
        super().__init__()
        ch = 2 * width
        blocks: list[nn.Module] = [_OptimizedBlock(channels, ch, norm)]
        blocks += [_DownBlock(ch, ch, norm) for _ in range(int(math.log2(size // 16)))]
        blocks += [_PlainBlock(ch, norm), _PlainBlock(ch, norm)]
        if mbstd:
            blocks.append(MinibatchStd(mbstd))
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = ch + (1 if mbstd else 0)
        self.head = _init(nn.Linear(self.feature_dim, 1), 1.0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, size, size) -> (N, feature_dim): ReLU, then global sum pooling."""
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, size, size) -> (N,)."""
        return self.head(self.features(x)).reshape(x.shape[0])


@NETS.register("resnet")
def build_resnet(m: ModelConfig, shape: tuple[int, ...], wiring: Wiring, options=None) -> tuple[nn.Module, nn.Module]:
    """(G, D) for images (C, H, W) with H == W in (16, 32, 64) and C in (1, 3)."""
    shape = check_square_image("resnet", shape, SIZES)
    check_norm(m.d_norm)
    channels, size = shape[0], shape[1]
    g_in, d_extra = cond_inputs(m.z_dim, wiring)
    g = ResNetGenerator(g_in, m.g_width, channels, size, wiring.g_act)
    d = ResNetDiscriminator(m.d_width, channels * wiring.pack + d_extra, size, "layer" if m.d_norm == "layer" else "none",
                            m.mbstd)
    if m.spectral_norm:
        add_spectral_norm(d)
    return g, d
