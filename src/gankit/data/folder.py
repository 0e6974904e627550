"""``folder``: every image under data.path, labelled by its first-level sub-folder.

Splits (``data.split`` = train | test): a folder in the CycleGAN layout (``trainA/ trainB/ testA/ testB/``)
is read as two classes "A" and "B" from ``<split>A/`` and ``<split>B/``; a folder holding ``train/`` (and
``test/``) is read from ``<split>/``; any other folder is all training data.

Small sets are decoded once into a uint8 TensorSource; sets of 2 GiB or more (after resizing) are
streamed from disk by DataLoader workers, with every header checked at load time.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
from .base import DATASETS, Source, StreamSource, TensorSource
from .images import ImageFiles, is_gray, probe, read_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MEMORY_LIMIT = 2 * 1024 ** 3   # decoded bytes above which a folder is streamed instead of held in memory


def list_images(root: str) -> list[tuple[str, ...]]:
    """Relative paths (as tuples of parts) of the images under ``root``, recursive, sorted; hidden entries skipped."""
    found: list[tuple[str, ...]] = []
    seen: set[str] = set()   # real paths walked: a symbolic link back up the tree is not followed twice
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(folder, root)
        parts = () if rel == "." else tuple(rel.split(os.sep))
        found.extend(parts + (f,) for f in files
                     if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found)


def split_folder(root: str, split: str) -> str | None:
    """root/<split> when root holds a train/ folder (DataError if it lacks <split>/), None when it has no splits."""
    if not os.path.isdir(os.path.join(root, "train")):
        return None
    if not os.path.isdir(os.path.join(root, split)):
        raise DataError(f"data.split={split}: '{root}' has train/ but no {split}/ folder")
    return os.path.join(root, split)


def split_layout(root: str, split: str) -> tuple[str, dict[str, str] | None]:
    """(folder to read, {class name: sub-folder} or None for "sub-folders are the classes") for ``split``."""
    if os.path.isdir(os.path.join(root, "trainA")) and os.path.isdir(os.path.join(root, "trainB")):
        wanted = {"A": f"{split}A", "B": f"{split}B"}
        missing = [d for d in wanted.values() if not os.path.isdir(os.path.join(root, d))]
        if missing:
            raise DataError(f"data.split={split}: '{root}' has trainA/ and trainB/ but no {' or '.join(missing)}/")
        return root, wanted
    folder = split_folder(root, split)
    if folder is not None:
        return folder, None
    if split != "train":
        raise DataError(f"data.split={split}: '{root}' has no splits (a {split}/ folder, or {split}A/ and {split}B/); "
                        f"use data.split=train")
    return root, None


def build_folder(path: str, size: int = 0, channels: int = 0, workers: int = 0,
                 name: str = "folder", max_bytes: int | None = None, split: str = "train") -> Source:
    """Images under ``path`` -> uint8 TensorSource (N, C, S, S), or a StreamSource when N*C*S*S >= max_bytes
    (default: MEMORY_LIMIT).

    ``size`` = 0 keeps the native size, which must then be the same for every image (it may be
    non-square: evaluation takes any size; architectures say when they need a square).
    """
    if not path:
        raise DataError("data.path is empty: the 'folder' data set needs --set data.path=DIR")
    root = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(root):
        raise DataError(f"data.path: folder '{root}' does not exist")
    if not os.path.isdir(root):
        raise DataError(f"data.path: '{root}' is a file, not a folder; point data.path at the folder holding the images")
    root, domains = split_layout(root, split)
    if domains is None:
        rel = list_images(root)
    else:   # CycleGAN layout: class "A" is <split>A/, "B" is <split>B/
        rel = [(folder,) + p for folder in domains.values() for p in list_images(os.path.join(root, folder))]
    if not rel:
        raise DataError(f"data.path: no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) under '{root}'")
    files = [os.path.join(root, *p) for p in rel]

    # Labels: first-level sub-folder; any image directly in the root makes the set unlabelled.
    labelled = all(len(p) > 1 for p in rel)
    classes = sorted({p[0] for p in rel}) if labelled else []
    index = {c: i for i, c in enumerate(classes)}
    labels = [index[p[0]] for p in rel] if labelled else None
    if domains is not None:
        classes = list(domains)   # "A", "B" (the folders sorted give the same order)

    # Header pass: finds unreadable files before training and fixes size / channels when they are 0.
    headers = [probe(f) for f in files]
    if not channels:
        channels = 1 if all(is_gray(mode) for mode, _ in headers) else 3
    if not size:
        (w, h), first = headers[0][1], files[0]
        for f, (_, wh) in zip(files, headers):
            if wh != (w, h):
                raise DataError(f"data.path: images under '{root}' differ in size ('{first}' is {w}x{h}, "
                                f"'{f}' is {wh[0]}x{wh[1]}); set --set data.size=N to resize and centre-crop them")
        height, width = h, w   # native size, square or not (architectures check what they need)
    else:
        height = width = size

    source: StreamSource | TensorSource
    if len(files) * channels * height * width >= (MEMORY_LIMIT if max_bytes is None else max_bytes):
        source = StreamSource(ImageFiles(files, size, channels, labels), name=name, classes=classes,
                              workers=workers, shape=(channels, height, width))
        source.labels = None if labels is None else torch.tensor(labels, dtype=torch.int64)
    else:
        x = np.empty((len(files), channels, height, width), dtype=np.uint8)
        for i, f in enumerate(files):
            x[i] = read_image(f, size, channels)
        y = torch.tensor(labels, dtype=torch.int64) if labels is not None else None
        source = TensorSource(torch.from_numpy(x), y, classes=classes, name=name)
    source.files = ["/".join(p) for p in rel]
    return source


@DATASETS.register("folder")
def load_folder(cfg: DataConfig) -> Source:
    return build_folder(cfg.path, cfg.size, cfg.channels, cfg.workers, split=cfg.split)
