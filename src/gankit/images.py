"""Image tensors to pixels and files: sample grids, one PNG per sample, and scatter plots of points."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def to_uint8(x: Tensor) -> np.ndarray:
    """(N, C, H, W) floats in [-1, 1] -> (N, H, W, C) uint8, rounding to the nearest level."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def _pil(img: np.ndarray) -> Image.Image:
    """(H, W, C) uint8 -> PIL image, mode L for one channel, RGB for three."""
    return Image.fromarray(img[..., 0], "L") if img.shape[-1] == 1 else Image.fromarray(img, "RGB")


def grid_image(x: Tensor, nrow: int | None = None, pad: int = 2, scale: int = 1) -> Image.Image:
    """Tile (N, C, H, W) images in [-1, 1] into one image, ``nrow`` per row (default ≈ √N), with a
    ``pad``-pixel black border, then enlarge ``scale`` times with nearest-neighbour (exact pixels)."""
    imgs = to_uint8(x)
    n, h, w, c = imgs.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    canvas = np.zeros((pad + rows * (h + pad), pad + nrow * (w + pad), c), np.uint8)
    for i, img in enumerate(imgs):
        r, col = divmod(i, nrow)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = img
    out = _pil(canvas)
    if scale > 1:
        out = out.resize((out.width * scale, out.height * scale), Image.NEAREST)
    return out


def default_scale(side: int) -> int:
    """Enlargement for viewing grids of tiny images (8 px digits become 32 px)."""
    return max(1, 32 // side)


def save_grid(x: Tensor, path: Path, nrow: int | None = None, scale: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    grid_image(x, nrow=nrow, scale=scale).save(path)


def save_each(x: Tensor, folder: Path) -> list[Path]:
    """One PNG per sample, at the native size: folder/000000.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(to_uint8(x)):
        p = folder / f"{i:06d}.png"
        _pil(img).save(p)
        paths.append(p)
    return paths


def save_points_plot(fake: Tensor, path: Path, real: Tensor | None = None, title: str = "",
                     modes: Tensor | None = None) -> None:
    """Scatter (2-D) or histogram (1-D) of generated points over the real distribution; ``modes`` (K, d), a
    mixture's means, are marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fake = fake.detach().float().cpu().numpy()
    fig, ax = plt.subplots(figsize=(5, 5) if fake.shape[1] == 2 else (6, 3.5), dpi=100)
    if fake.shape[1] == 1:
        bins = 100
        if real is not None:
            ax.hist(real.cpu().numpy()[:, 0], bins=bins, density=True, alpha=0.5, label="data")
        ax.hist(fake[:, 0], bins=bins, density=True, alpha=0.5, label="generated")
        for i, m in enumerate([] if modes is None else modes[:, 0].tolist()):
            ax.axvline(m, color="black", linewidth=0.8, linestyle=":", label="modes" if i == 0 else None)
        ax.legend()
    else:
        if real is not None:
            r = real.cpu().numpy()
            ax.scatter(r[:, 0], r[:, 1], s=2, c="tab:blue", alpha=0.4, label="data")
        ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:red", alpha=0.6, label="generated")
        if modes is not None:
            m = modes.cpu().numpy()
            ax.scatter(m[:, 0], m[:, 1], s=60, marker="+", c="black", linewidths=1, label="modes")
        ax.set_aspect("equal")
        ax.legend(loc="upper right", markerscale=4)
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
