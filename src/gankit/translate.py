"""`gankit translate RUN INPUT --out DIR`: run an image-conditioned generator on image files.

INPUT is an image or a folder of images (searched recursively). Each is read as the run's condition:
for super-resolution the low-resolution image, for colourisation a grey image, for denoising the noisy
image, for inpainting the image plus ``--mask`` (white = the hole to fill). With ``--degrade``, INPUT
holds clean images instead: gankit degrades them as in training (seeded), translates them, and the
grid shows input | output | original — the way to look at a run on held-out images.

Writes DIR/<name>.png for each input (same relative names) and DIR/grid.png.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .data.folder import list_images
from .data.images import read_image
from .data.paired import degrade
from .errors import GankitError
from .images import _pil, save_grid, to_uint8, default_scale
from .run import LoadedRun


def _inputs(path: str) -> list[tuple[str, str]]:
    """(file, relative name) of each image of INPUT (a file or a folder)."""
    p = Path(path)
    if p.is_file():
        return [(str(p), p.name)]
    if p.is_dir():
        files = [(os.path.join(path, *parts), "/".join(parts)) for parts in list_images(path)]
        if files:
            return files
        raise GankitError(f"INPUT {path}: no images in this folder")
    raise GankitError(f"INPUT {path}: no such file or folder")


def _read(files: list[str], size: int, channels: int) -> Tensor:
    """Images as float (N, channels, size, size) in [-1, 1]."""
    x = np.stack([read_image(f, size, channels) for f in files])
    return torch.from_numpy(x).float() / 127.5 - 1


def translate(loaded: LoadedRun, inputs: str, out: str, degrade_first: bool = False, mask: str | None = None,
              seed: int = 0, ema: bool = True) -> str:
    """Translate the images of ``inputs`` into folder ``out``; returns a one-line description."""
    recipe = loaded.recipe
    if not getattr(recipe, "paired", False):
        raise GankitError("translate: this run is not image-conditioned (train one with train.recipe=paired, "
                          "e.g. --preset digits-inpaint); for other runs use gankit sample")
    task, (c, h, _) = recipe.task, recipe.shape
    cin, hc, _ = recipe.cond_shape
    found = _inputs(inputs)
    files = [f for f, _ in found]
    originals = None
    if degrade_first:
        originals = _read(files, h, c)
        a = degrade(originals, task, torch.Generator().manual_seed(seed))
    elif task == "inpaint":
        if mask is None:
            raise GankitError("translate: an inpainting run needs --mask MASK.png (white = the hole) or --degrade")
        x = _read(files, h, c)
        m = (_read([mask], h, 1) > 0).float().expand(len(files), 1, h, h)
        a = torch.cat([x * (1 - m), m], dim=1)
    else:
        a = _read(files, hc, cin)   # the condition as it is: low resolution, grey or noisy
    gen = torch.Generator().manual_seed(seed)
    y = torch.cat([recipe.sample(recipe.latents(len(part), generator=gen), part, ema=ema).cpu()
                   for part in a.split(256)])
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    for img, (_, name) in zip(to_uint8(y), found):
        dest = root / Path(name).with_suffix(".png")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _pil(img).save(dest)
    shown = [recipe.show(a), y] + ([originals] if originals is not None else [])
    save_grid(torch.stack(shown, dim=1).flatten(0, 1)[:3 * 64], root / "grid.png", nrow=len(shown) * 4,
              scale=default_scale(h))
    cols = "input | output | original" if originals is not None else "input | output"
    return f"wrote {len(found)} images to {root}/ and {root / 'grid.png'} ({cols})"
