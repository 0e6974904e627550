"""Metrics of paired image translation: outputs against their targets, image by image.

Images are float (N, C, H, W) in [-1, 1] (data range 2). Every function returns the mean over images.

    psnr   10 · log10(range² / MSE) per image, in dB (higher is better; identical images: inf)
    ssim   structural similarity (Wang et al. 2004): 11 x 11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03,
           at every pixel (the image mirrored at its borders, as torchmetrics), averaged over channels and
           pixels; images need at least 6 x 6 pixels
    l1     mean absolute difference, in the [-1, 1] units of the images
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

DATA_RANGE = 2.0


def _check(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"paired metrics need two (N, C, H, W) batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def psnr(x: Tensor, y: Tensor, data_range: float = DATA_RANGE) -> float:
    """Mean peak signal-to-noise ratio (dB) of images x against y."""
    _check(x, y)
    mse = ((x.double() - y.double()) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(data_range ** 2 / mse)).mean())


def ssim(x: Tensor, y: Tensor, data_range: float = DATA_RANGE, sigma: float = 1.5) -> float:
    """Mean structural similarity of images x against y."""
    _check(x, y)
    k = int(3.5 * sigma + 0.5) * 2 + 1          # 11 for σ = 1.5
    pad = (k - 1) // 2
    if min(x.shape[2:]) <= pad:
        raise ValueError(f"ssim needs images larger than {pad} x {pad} pixels, got {tuple(x.shape[2:])}")
    x = F.pad(x.double(), (pad,) * 4, mode="reflect")
    y = F.pad(y.double(), (pad,) * 4, mode="reflect")
    coords = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    c = x.shape[1]
    window = (g[:, None] * g[None, :]).expand(c, 1, k, k).contiguous()

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, window, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy = (blur(x * x) - mx ** 2).clamp(min=0), (blur(y * y) - my ** 2).clamp(min=0)
    cxy = blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.flatten(1).mean(1).mean())


def l1(x: Tensor, y: Tensor) -> float:
    """Mean absolute difference."""
    _check(x, y)
    return float((x.double() - y.double()).abs().mean())


def paired_metrics(x: Tensor, y: Tensor) -> dict[str, float]:
    """{"psnr", "ssim", "l1"} of outputs x against targets y."""
    out = {"psnr": psnr(x, y), "ssim": ssim(x, y), "l1": l1(x, y)}
    if math.isinf(out["psnr"]):
        out["psnr"] = float("inf")
    return out
