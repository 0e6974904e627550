"""Image helpers shared by the loaders: resize + centre crop, channel conversion, PIL decoding."""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..errors import DataError

# PIL modes that hold one grey channel (possibly with alpha, or more than 8 bits).
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
# ITU-R 601-2 luma, the weights PIL uses for RGB -> L.
_LUMA = (0.299, 0.587, 0.114)


# ------------------------------------------------------------------------------------ tensors

def resize_crop(x: torch.Tensor, size: int, chunk: int = 1024) -> torch.Tensor:
    """(N, C, H, W) uint8 or float -> (N, C, size, size), same dtype.

    Scales the shorter side to ``size`` (bilinear, antialiased) and centre-crops the longer one.
    """
    n, c, h, w = x.shape
    if h == w == size:
        return x
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (nh - size) // 2, (nw - size) // 2
    out = torch.empty((n, c, size, size), dtype=x.dtype)
    for i in range(0, n, chunk):
        part = F.interpolate(x[i:i + chunk].to(torch.float32), size=(nh, nw), mode="bilinear",
                             align_corners=False, antialias=True)[:, :, top:top + size, left:left + size]
        if x.dtype == torch.uint8:
            part = part.round_().clamp_(0, 255)
        out[i:i + chunk] = part.to(x.dtype)
    return out


def set_channels(x: torch.Tensor, channels: int, name: str) -> torch.Tensor:
    """(N, C, H, W) -> (N, channels, H, W): grey -> RGB repeats, RGB -> grey uses luma; 0 keeps C."""
    c = x.shape[1]
    if channels in (0, c):
        return x
    if c == 1 and channels == 3:
        return x.repeat(1, 3, 1, 1)
    if c == 3 and channels == 1:
        w = torch.tensor(_LUMA, dtype=torch.float32).view(1, 3, 1, 1)
        y = (x.to(torch.float32) * w).sum(1, keepdim=True)
        return y.round_().clamp_(0, 255).to(torch.uint8) if x.dtype == torch.uint8 else y.to(x.dtype)
    raise DataError(f"{name}: cannot turn {c}-channel images into {channels}; "
                    f"data.channels must be 0 (native), 1 or 3")


def adapt(x: torch.Tensor, size: int, channels: int, name: str) -> torch.Tensor:
    """Apply the data.size (0 keeps) and data.channels (0 keeps) options to (N, C, H, W) images."""
    x = set_channels(x, channels, name)
    if size:
        x = resize_crop(x, size)
    return x


# ------------------------------------------------------------------------------------ PIL

def is_gray(mode: str) -> bool:
    return mode in GRAY_MODES


def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    """A PIL image in mode "L" (channels 1) or "RGB" (channels 3); 16-bit grey is scaled to 8 bits."""
    if img.mode == "I" or img.mode.startswith("I;16"):
        a = np.asarray(img).astype(np.float64)
        img = Image.fromarray(np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.rint(np.asarray(img)), 0, 255).astype(np.uint8), "L")
    if channels == 1:
        return img if img.mode == "L" else img.convert("L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img if img.mode == "RGB" else img.convert("RGB")


def _resize_crop_pil(img: Image.Image, size: int) -> Image.Image:
    """Shorter side to ``size``, centre crop to size × size; ``size`` = 0 leaves the image as it is."""
    w, h = img.size
    if size == 0 or w == h == size:
        return img
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.Resampling.BICUBIC)  # PIL filters with a widened kernel when shrinking
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def _reason(e: BaseException) -> str:
    if isinstance(e, UnidentifiedImageError):
        return "not an image PIL can decode (corrupt, or the wrong extension)"
    if isinstance(e, (Image.DecompressionBombWarning, Image.DecompressionBombError)):
        return f"more than {Image.MAX_IMAGE_PIXELS:,} pixels, refused as a possible decompression bomb"
    text = " ".join(str(e).split())
    return text or type(e).__name__


@contextmanager
def _opened(path: str) -> Iterator[Image.Image]:
    """``Image.open(path)``, refusing images that declare more pixels than PIL's decompression-bomb limit
    (``Image.MAX_IMAGE_PIXELS``); any failure inside, decoding included, is a DataError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                yield img
    except Exception as e:  # PIL plugins raise many types on corrupt headers
        raise DataError(f"cannot read image '{path}': {_reason(e)}") from None


def probe(path: str) -> tuple[str, tuple[int, int]]:
    """(PIL mode, (width, height)) from the file header; DataError naming the file if unreadable, or if it
    declares more pixels than PIL's decompression-bomb limit."""
    with _opened(path) as img:
        return img.mode, img.size


def read_image(path: str, size: int, channels: int) -> np.ndarray:
    """Decode ``path`` to uint8 (channels, size, size): shorter side to ``size`` (bicubic), centre crop;
    ``size`` = 0: (channels, H, W) at the native size."""
    with _opened(path) as img:
        img.load()
        a = np.array(_resize_crop_pil(_to_mode(img, channels), size), dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


class ImageFiles(Dataset):
    """Images decoded from disk per item: uint8 (C, size, size), with the label when ``labels`` is given."""

    def __init__(self, files: Sequence[str], size: int, channels: int,
                 labels: Sequence[int] | None = None) -> None:
        self.files = list(files)
        self.size, self.channels = size, channels
        self.labels = None if labels is None else list(labels)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Any:
        x = torch.from_numpy(np.ascontiguousarray(read_image(self.files[i], self.size, self.channels)))
        return x if self.labels is None else (x, self.labels[i])
