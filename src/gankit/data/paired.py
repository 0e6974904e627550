"""Image conditions made on the fly from any image data set (``paired.task``; pix2pix, Isola et al. 2017).

Each task degrades a clean image x (the target) into the condition a that the generator sees:

    superres2, superres4   a = x averaged over 2x2 / 4x4 blocks: (C, H/s, W/s)
    colorize               a = the luma of an RGB x, 0.299 R + 0.587 G + 0.114 B: (1, H, W)
    inpaint                a = x with a random square hole (side H/2, W/2) set to 0, plus the hole mask
                           as one more channel (1 inside the hole): (C + 1, H, W)
    denoise                a = x + 0.5 · N(0, 1) per pixel (images live in [-1, 1]): (C, H, W)

Batches carry both: {"x": target, "a": condition}. The random parts (hole position, noise) are drawn from
a generator seeded by the batch number, so a resumed run sees the same pairs. Paired data read from disk
(pix2pix's A|B images, two parallel folders) gives the same two keys.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError

PAIR_TASKS = ("superres2", "superres4", "colorize", "inpaint", "denoise")
NOISE_STD = 0.5
LUMA = (0.299, 0.587, 0.114)


def check_task(task: str, shape: tuple[int, ...]) -> None:
    """ConfigError unless ``task`` can degrade images of ``shape`` (C, H, W)."""
    if task not in PAIR_TASKS:
        raise ConfigError(f"paired.task: unknown task '{task}'; valid: {', '.join(PAIR_TASKS)}")
    if len(shape) != 3:
        raise ConfigError(f"paired.task={task}: needs an image data set, got samples of shape {tuple(shape)}")
    c, h, w = shape
    if task.startswith("superres"):
        s = int(task[len("superres"):])
        if h % s or w % s:
            raise ConfigError(f"paired.task={task}: the image size {h}x{w} must be a multiple of {s}; set data.size")
    if task == "colorize" and c != 3:
        raise ConfigError(f"paired.task=colorize: needs RGB images, the data has {c} channel(s); set data.channels=3 "
                          f"on colour data")
    if task == "inpaint" and (h < 2 or w < 2):
        raise ConfigError(f"paired.task=inpaint: images of {h}x{w} are too small for a hole")


def condition_shape(task: str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The shape (C', H', W') of the condition made from images of ``shape``."""
    c, h, w = shape
    if task.startswith("superres"):
        s = int(task[len("superres"):])
        return c, h // s, w // s
    if task == "colorize":
        return 1, h, w
    if task == "inpaint":
        return c + 1, h, w
    return c, h, w


def hole_mask(n: int, h: int, w: int, generator: torch.Generator) -> Tensor:
    """(n, 1, h, w) float masks, 1 inside one square hole of side (h/2, w/2) at a uniform random position."""
    hh, hw = h // 2, w // 2
    top = torch.randint(0, h - hh + 1, (n,), generator=generator)
    left = torch.randint(0, w - hw + 1, (n,), generator=generator)
    rows, cols = torch.arange(h), torch.arange(w)
    inside_r = (rows[None] >= top[:, None]) & (rows[None] < top[:, None] + hh)      # (n, h)
    inside_c = (cols[None] >= left[:, None]) & (cols[None] < left[:, None] + hw)    # (n, w)
    return (inside_r[:, :, None] & inside_c[:, None, :]).float()[:, None]


def degrade(x: Tensor, task: str, generator: torch.Generator) -> Tensor:
    """The condition made from clean images x (N, C, H, W) in [-1, 1] (see the module docstring)."""
    if task.startswith("superres"):
        return F.avg_pool2d(x, int(task[len("superres"):]))
    if task == "colorize":
        w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)
    if task == "inpaint":
        m = hole_mask(x.shape[0], x.shape[2], x.shape[3], generator).to(x.device, x.dtype)
        return torch.cat([x * (1 - m), m], dim=1)
    if task == "denoise":
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return x + NOISE_STD * noise
    raise ConfigError(f"paired.task: unknown task '{task}'; valid: {', '.join(PAIR_TASKS)}")
