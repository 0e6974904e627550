"""`resnet` for image-to-image recipes: CycleGAN's ResNet generator (Johnson et al. 2016, Zhu et al. 2017)
with the PatchGAN discriminator of ``unet.py``.

G: condition a (N, Cin, H, W) [+ z as constant channels] -> image (N, C, H, W) in [-1, 1]:
   reflection pad 3, Conv 7x7 (g_width), BatchNorm, ReLU; k stride-2 Conv 3x3 downsamplings doubling the
   channels; ``[resnet] blocks`` residual blocks (reflection pad, Conv 3x3, BatchNorm, ReLU, reflection pad,
   Conv 3x3, BatchNorm, plus the input); k ConvTranspose 3x3 upsamplings; reflection pad 3, Conv 7x7, tanh.
   k = 2 as the paper for images of 32 px and more, fewer for smaller ones (8 px: k = 1). The paper uses
   6 blocks at 128 px and 9 at 256 px. Unlike the U-Net there is no skip connection around the blocks:
   every output pixel is computed from features, not copied from the input.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch import Tensor

from ..config import ModelConfig
from ..errors import ConfigError
from ..options import option
from .base import TRANSLATORS
from .dcgan import init_dcgan
from .layers import add_spectral_norm, check_norm
from .unet import PatchDiscriminator, levels


class _Block(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True),
                                  nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=False), nn.BatchNorm2d(ch))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(a (N, Cin, H, W), z (N, z_dim) or None) -> (N, C, H, W) in [-1, 1]."""

    def __init__(self, in_channels: int, out_channels: int, size: tuple[int, int], width: int, blocks: int,
                 z_dim: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        k = max(0, min(2, levels(*size) - 2))
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels + z_dim, width, 7, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(True)]
        ch = width
        for _ in range(k):
            layers += [nn.Conv2d(ch, 2 * ch, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * ch), nn.ReLU(True)]
            ch *= 2
        layers += [_Block(ch) for _ in range(blocks)]
        for _ in range(k):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=False), nn.BatchNorm2d(ch // 2),
                       nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan(self)

    def forward(self, a: Tensor, z: Tensor | None = None) -> Tensor:
        if self.z_dim:
            a = torch.cat([a, z[:, :, None, None].expand(-1, -1, *a.shape[2:])], dim=1)
        return self.net(a)


@dataclass
class ResnetTranslatorOptions:
    blocks: int = option(3, "residual blocks of the generator (the paper: 6 at 128 px, 9 at 256 px)", above=0)


@TRANSLATORS.register("resnet", options=ResnetTranslatorOptions)
def build_resnet_translator(m: ModelConfig, cond_shape: tuple[int, ...], shape: tuple[int, ...],
                            d_channels: int | None = None, d_classes: int = 0,
                            options: ResnetTranslatorOptions | None = None) -> tuple[nn.Module, nn.Module]:
    """(G, D): the ResNet generator (``[resnet] blocks`` residual blocks) and the PatchGAN of ``unet``."""
    options = options or ResnetTranslatorOptions()
    check_norm(m.d_norm)
    c, h, w = shape
    if h < 8 or w < 8:
        raise ConfigError(f"architecture 'resnet': images must be at least 8x8, got {h}x{w}")
    g = ResnetGenerator(cond_shape[0], c, (h, w), m.g_width, options.blocks, m.z_dim)
    d = PatchDiscriminator(cond_shape[0] + c if d_channels is None else d_channels, (h, w), m.d_width, m.d_norm,
                           d_classes)
    if m.spectral_norm:
        add_spectral_norm(d)
    return g, d
