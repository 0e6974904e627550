"""``pairs``: paired images read from disk for pix2pix (``train.recipe=paired``; Isola et al. 2017).

Two layouts under data.path (each optionally split into ``train/`` and ``test/``, chosen by ``data.split``):

* side by side, as the pix2pix data sets (facades, maps, edges2shoes): every image is A | B, the left
  half A and the right half B, of the same size;
* two parallel folders ``A/`` and ``B/`` (or ``A/<split>/`` and ``B/<split>/``) holding images of the
  same relative names — the pix2pix repo's input to its combine script.

``[pairs] direction`` = AtoB makes A the condition and B the target (BtoA the reverse). ``data.size`` resizes
each side (shorter side, centre crop); ``data.channels`` converts both. Pairs are held in memory: batches
are {"x": target, "a": condition}.
"""
from __future__ import annotations

from dataclasses import dataclass

import os

import numpy as np
import torch
from PIL import Image

from ..config import DataConfig
from ..options import option
from ..errors import DataError
from .base import DATASETS, TensorSource
from .folder import IMAGE_EXTENSIONS, list_images, split_folder
from .images import _reason, _resize_crop_pil, _to_mode, is_gray, probe, read_image


def _split_dir(root: str, split: str) -> str:
    """root/<split> when root is split into train/ (and test/), else root (training data only)."""
    folder = split_folder(root, split)
    if folder is not None:
        return folder
    if split != "train":
        raise DataError(f"data.split={split}: '{root}' has no {split}/ folder; use data.split=train")
    return root


def _halves(path: str, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """An A | B image -> (A, B) as uint8 (channels, S, S) each."""
    try:
        with Image.open(path) as img:
            img.load()
            img = _to_mode(img, channels)
    except Exception as e:
        raise DataError(f"cannot read image '{path}': {_reason(e)}") from None
    w, h = img.size
    if w % 2:
        raise DataError(f"data.name=pairs: '{path}' is {w} px wide; an A|B image must have an even width "
                        f"(A on the left half, B on the right)")
    sides = []
    for box in ((0, 0, w // 2, h), (w // 2, 0, w, h)):
        a = np.array(_resize_crop_pil(img.crop(box), size), dtype=np.uint8)
        sides.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return sides[0], sides[1]


def _same_sizes(files: list[str], headers: list, what: str) -> None:
    first = headers[0][1]
    for f, (_, wh) in zip(files, headers):
        if wh != first:
            raise DataError(f"data.name=pairs: {what} differ in size ('{files[0]}' is {first[0]}x{first[1]}, '{f}' is "
                            f"{wh[0]}x{wh[1]}); set data.size=N to resize them")


def build_pairs(path: str, size: int = 0, channels: int = 0, split: str = "train",
                direction: str = "AtoB") -> TensorSource:
    if not path:
        raise DataError("data.path is empty: the 'pairs' data set needs --set data.path=DIR (A|B images, or A/ and B/)")
    root = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(root):
        raise DataError(f"data.path: folder '{root}' does not exist")
    if os.path.isdir(os.path.join(root, "A")) and os.path.isdir(os.path.join(root, "B")):
        dirs = [_split_dir(os.path.join(root, side), split) for side in "AB"]
        names = [{"/".join(p) for p in list_images(d)} for d in dirs]
        if not names[0]:
            raise DataError(f"data.path: no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) under '{dirs[0]}'")
        if names[0] != names[1]:
            odd = sorted(names[0] ^ names[1])[0]
            raise DataError(f"data.name=pairs: A/ and B/ must hold the same file names; '{odd}' is in only one of "
                            f"'{dirs[0]}' and '{dirs[1]}'")
        rel = sorted(names[0])
        files = [[os.path.join(d, *r.split("/")) for r in rel] for d in dirs]
        headers = [[probe(f) for f in fs] for fs in files]
        if not channels:
            channels = 1 if all(is_gray(m) for hs in headers for m, _ in hs) else 3
        if not size:
            _same_sizes(files[0] + files[1], headers[0] + headers[1], "images")
        a = np.stack([read_image(f, size, channels) for f in files[0]])
        b = np.stack([read_image(f, size, channels) for f in files[1]])
    else:
        folder = _split_dir(root, split)
        rel = ["/".join(p) for p in list_images(folder)]
        if not rel:
            raise DataError(f"data.path: no A|B images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) under '{folder}' "
                            f"and no A/ and B/ folders")
        files = [os.path.join(folder, *r.split("/")) for r in rel]
        headers = [probe(f) for f in files]
        if not channels:
            channels = 1 if all(is_gray(m) for m, _ in headers) else 3
        if not size:
            _same_sizes(files, headers, "A|B images")
        a_list, b_list = zip(*(_halves(f, size, channels) for f in files))
        a, b = np.stack(a_list), np.stack(b_list)
    cond, target = (a, b) if direction == "AtoB" else (b, a)
    source = TensorSource(torch.from_numpy(target), name="pairs", a=torch.from_numpy(cond))
    source.files = rel
    return source


@dataclass
class PairsOptions:
    direction: str = option("AtoB", "AtoB: condition A, target B; BtoA swaps them", choices=("AtoB", "BtoA"))


@DATASETS.register("pairs", options=PairsOptions)
def load_pairs(cfg: DataConfig, options: PairsOptions) -> TensorSource:
    return build_pairs(cfg.path, cfg.size, cfg.channels, cfg.split, options.direction)
