"""`unet`: the pix2pix pair (Isola et al., 2017) — a U-Net generator and a PatchGAN discriminator.

G: condition a (N, Cin, H, W) [+ z as constant channels] -> image (N, C, H, W) in [-1, 1].
   L levels down: Conv(4, 2, 1) (LeakyReLU 0.2 before it, BatchNorm after it except on the first and the
   innermost), then back up: ReLU, ConvT(4, 2, 1), BatchNorm (dropout 0.5 on the three innermost up-steps
   when L >= 5, as pix2pix), each up-step concatenated with the mirror down-step (the skip connections);
   the last up-step ends in tanh. Channels: g_width, 2·, 4·, 8·g_width, then 8·g_width for deeper levels.
   L = how often H and W halve evenly, at most 8 (256 px -> 8 levels as in the paper; 28 px -> 2).
D: PatchGAN on (a, x) stacked on the channel axis (on x alone for CycleGAN / StarGAN) -> (N, P) logits,
   one per overlapping patch:
   n stride-2 Conv(4) layers (d_width, 2·, 4·; no norm on the first), one stride-1 Conv(4) with 8·d_width
   (capped by the level count), and a stride-1 Conv(4) to one channel. n = 3 gives the paper's 70x70
   patches on 256 px images; small images use fewer layers (n = L - 2, at least 1). With ``classes`` = K
   (StarGAN), a second head on the same features predicts the domain: global average pool, Linear -> K.

Initialisation as pix2pix: weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from ..config import ModelConfig
from ..errors import ConfigError
from .base import TRANSLATORS
from .dcgan import init_dcgan
from .layers import add_spectral_norm, check_norm, norm2d


def levels(h: int, w: int, most: int = 8) -> int:
    """How many times both sides halve evenly (at most ``most``)."""
    n = 0
    while n < most and h % 2 == 0 and w % 2 == 0 and h > 1 and w > 1:
        h, w, n = h // 2, w // 2, n + 1
    return n


class _Level(nn.Module):
    """One U-Net level: down, the inner levels, up; output = cat(input, up(...)) except at the outermost."""

    def __init__(self, outer: int, inner: int, cin: int, sub: nn.Module | None, outermost: bool,
                 innermost: bool, dropout: bool) -> None:
        super().__init__()
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2, True)]
        down.append(nn.Conv2d(cin, inner, 4, 2, 1, bias=outermost or innermost))
        if not outermost and not innermost:
            down.append(nn.BatchNorm2d(inner))
        up: list[nn.Module] = [nn.ReLU(True), nn.ConvTranspose2d(inner if innermost else 2 * inner, outer, 4, 2, 1,
                                                                 bias=outermost)]
        up += [nn.Tanh()] if outermost else [nn.BatchNorm2d(outer)] + ([nn.Dropout(0.5)] if dropout else [])
        self.down, self.sub, self.up = nn.Sequential(*down), sub, nn.Sequential(*up)
        self.outermost = outermost

    def forward(self, x: Tensor) -> Tensor:
        h = self.down(x)
        if self.sub is not None:
            h = self.sub(h)
        h = self.up(h)
        return h if self.outermost else torch.cat([x, h], dim=1)


class UNetGenerator(nn.Module):
    """(a (N, Cin, H, W), z (N, z_dim) or None) -> (N, C, H, W) in [-1, 1]."""

    def __init__(self,
                 in_channels: int,    # channels of the condition a
                 out_channels: int,   # channels of the generated image
                 size: tuple[int, int],
                 width: int,          # g_width: channels of the first level
                 z_dim: int,          # latent channels appended to a (0: deterministic G)
                 ) -> None:
        super().__init__()
        self.z_dim = z_dim
        n = levels(*size)
        if n < 1:
            raise ConfigError(f"architecture 'unet': images of {size[0]}x{size[1]} cannot be halved even once")
        chans = [width * min(2 ** i, 8) for i in range(n)]   # channels after each down-step
        sub = None
        for i in reversed(range(n)):
            cin = in_channels + z_dim if i == 0 else chans[i - 1]
            outer = out_channels if i == 0 else chans[i - 1]
            sub = _Level(outer, chans[i], cin, sub, outermost=i == 0, innermost=i == n - 1,
                         dropout=n >= 5 and n - 4 <= i < n - 1)
        self.net = sub
        init_dcgan(self)

    def forward(self, a: Tensor, z: Tensor | None = None) -> Tensor:
        if self.z_dim:
            a = torch.cat([a, z[:, :, None, None].expand(-1, -1, *a.shape[2:])], dim=1)
        return self.net(a)


class PatchDiscriminator(nn.Module):
    """(a, x) stacked on channels, (N, Cin + C, H, W) -> (N, P) patch logits; ``classify`` also
    returns (N, K) class logits when built with ``classes`` = K."""

    def __init__(self, in_channels: int, size: tuple[int, int], width: int, norm: str, classes: int = 0) -> None:
        super().__init__()
        n = max(1, min(3, levels(*size) - 2))
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = width
        for i in range(1, n):
            nxt = width * min(2 ** i, 8)
            layers += [nn.Conv2d(ch, nxt, 4, 2, 1, bias=norm == "none"), norm2d(norm, nxt), nn.LeakyReLU(0.2, True)]
            ch = nxt
        nxt = width * min(2 ** n, 8)
        layers += [nn.Conv2d(ch, nxt, 4, 1, 1, bias=norm == "none"), norm2d(norm, nxt), nn.LeakyReLU(0.2, True),
                   nn.Conv2d(nxt, 1, 4, 1, 1)]
        self.net = nn.Sequential(*layers)   # the last layer is the patch head
        self.cls = nn.Linear(nxt, classes) if classes else None
        init_dcgan(self)

    def forward(self, ax: Tensor) -> Tensor:
        return self.net(ax).flatten(1)

    def classify(self, ax: Tensor) -> tuple[Tensor, Tensor]:
        """(patch logits (N, P), class logits (N, K)) from one pass over the shared layers."""
        if self.cls is None:
            raise RuntimeError("this PatchDiscriminator was built without classes")
        h = self.net[:-1](ax)
        return self.net[-1](h).flatten(1), self.cls(h.mean(dim=(2, 3)))


@TRANSLATORS.register("unet")
def build_unet(m: ModelConfig, cond_shape: tuple[int, ...], shape: tuple[int, ...], d_channels: int | None = None,
               d_classes: int = 0, options=None) -> tuple[nn.Module, nn.Module]:
    """(G, D): G maps conditions (Cin, H, W) (already at the image size) to images (C, H, W); D sees
    ``d_channels`` channels (default Cin + C: the pair) and predicts ``d_classes`` classes too when > 0."""
    check_norm(m.d_norm)
    c, h, w = shape
    if h < 8 or w < 8:
        raise ConfigError(f"architecture 'unet': images must be at least 8x8, got {h}x{w}")
    g = UNetGenerator(cond_shape[0], c, (h, w), m.g_width, m.z_dim)
    d = PatchDiscriminator(cond_shape[0] + c if d_channels is None else d_channels, (h, w), m.d_width, m.d_norm,
                           d_classes)
    if m.spectral_norm:
        add_spectral_norm(d)
    return g, d
