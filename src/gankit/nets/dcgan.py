"""`dcgan`: the deep convolutional GAN of Radford, Metz & Chintala (2016).

Square images of 8, 16, 28, 32 or 64 px with 1 or 3 channels. With L = log2(size / 4) stride-2 stages
(64 px: L = 4, channels g_width*8 -> *4 -> *2 -> *1 -> C, as in the paper with g_width = 128):

G: z (N, z_dim, 1, 1) -> ConvT(4x4) to 4x4 x g_width*2^(L-1), BN, ReLU
   -> (L-1) x [ConvT(4, 2, 1) doubling size, halving channels, BN, ReLU] -> ConvT(4, 2, 1) to C, tanh.
D: mirror: Conv(4, 2, 1) C -> d_width, LeakyReLU(0.2) (no norm on the first layer)
   -> (L-1) x [Conv(4, 2, 1) doubling channels, norm per d_norm, LeakyReLU(0.2)]
   -> Conv(4x4, valid) to one logit.

28 px (MNIST) uses a 7 -> 14 -> 28 stack: the first G layer is a 7x7 ConvT (1x1 -> 7x7) followed by two
stride-2 stages, and D ends in a 7x7 valid conv. No resizing, padding or cropping is involved.

Initialisation as in the paper: conv weights N(0, 0.02), norm weights N(1, 0.02), biases 0.
Convs followed by a normalisation layer have no bias.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..config import ModelConfig
from ..errors import ConfigError
from .base import NETS, Wiring, cond_inputs
from .layers import MinibatchStd, activation, add_spectral_norm, check_norm, check_square_image, linear_of_map, norm2d

# image side -> (side of the first feature map, number of stride-2 stages)
SIZES = {8: (4, 1), 16: (4, 2), 28: (7, 2), 32: (4, 3), 64: (4, 4)}


def init_dcgan(net: nn.Module) -> None:
    """Paper initialisation, in place, from the global torch RNG."""
    for mod in net.modules():
        if isinstance(mod, nn.modules.conv._ConvNd):
            nn.init.normal_(mod.weight, 0.0, 0.02)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
        elif isinstance(mod, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(mod.weight, 1.0, 0.02)
            nn.init.zeros_(mod.bias)


class DCGANGenerator(nn.Module):
    """z: (N, z_dim) -> images (N, C, size, size) in [-1, 1]."""

    def __init__(self,
                 z_dim: int,      # latent size
                 width: int,      # channels of the last hidden feature map (doubles towards z)
                 channels: int,   # image channels C
                 size: int,       # image side; a key of SIZES
                 act: str = "relu",   # hidden activation (layers.ACTIVATIONS)
                 ) -> None:
        super().__init__()
        self.z_dim = z_dim
        base, stages = SIZES[size]
        ch = width * 2 ** (stages - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, ch, base, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch), activation(act, inplace=True)]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2),
                       activation(act, inplace=True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, z_dim) -> (N, C, size, size)."""
        return self.net(z.reshape(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """x: (N, C, size, size) -> logits (N,)."""

    def __init__(self,
                 width: int,      # channels of the first feature map (doubles per stage)
                 channels: int,   # image channels C
                 size: int,       # image side; a key of SIZES
                 norm: str,       # batch, layer or none (not on the first layer)
                 mbstd: int = 0,  # minibatch-std group size: one more map after the last stage; 0: none
                 ) -> None:
        super().__init__()
        base, stages = SIZES[size]
        ch = width
        layers: list[nn.Module] = [nn.Conv2d(channels, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for _ in range(stages - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), norm2d(norm, ch * 2),
                       nn.LeakyReLU(0.2, True)]
            ch *= 2
        if mbstd:   # after the convolutions: before the last one it tripled the step time here (docs/BENCHMARKS.md)
            layers.append(MinibatchStd(mbstd))
            ch += 1
        self.body = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.feature_dim = ch * base * base
        # the paper's last layer, a base x base valid convolution to one logit, is this linear map
        self.head = nn.Linear(self.feature_dim, 1)
        init_dcgan(self)
        nn.init.normal_(self.head.weight, 0.0, 0.02)
        nn.init.zeros_(self.head.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, size, size) -> (N, feature_dim): the last feature map, flattened in (C, H, W) order."""
        return self.flatten(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, size, size) -> (N,): the head of the flattened map, read in its memory order."""
        return linear_of_map(self.head, self.body(x)).reshape(x.shape[0])


@NETS.register("dcgan")
def build_dcgan(m: ModelConfig, shape: tuple[int, ...], wiring: Wiring, options=None) -> tuple[nn.Module, nn.Module]:
    """(G, D) for images (C, H, W) with H == W in SIZES and C in (1, 3)."""
    shape = check_square_image("dcgan", shape, tuple(SIZES))
    check_norm(m.d_norm)
    channels, size = shape[0], shape[1]
    g_in, d_extra = cond_inputs(m.z_dim, wiring)
    g = DCGANGenerator(g_in, m.g_width, channels, size, wiring.g_act)
    d = DCGANDiscriminator(m.d_width, channels * wiring.pack + d_extra, size, m.d_norm, m.mbstd)
    if m.spectral_norm:
        add_spectral_norm(d)
    return g, d
