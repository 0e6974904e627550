"""Standard image data sets: mnist, fashion-mnist, cifar10 (binary version) and aligned CelebA.

Files live under data.path, or ``$GANKIT_DATA``, or ``~/.cache/gankit/data``; they are downloaded
only when data.download is true.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
from .base import DATASETS, StreamSource, TensorSource
from .images import ImageFiles, adapt, probe

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_RECORD = 1 + 3 * 32 * 32   # label byte + R, G, B planes of 32x32


def data_root(cfg: DataConfig) -> str:
    """data.path, else $GANKIT_DATA, else ~/.cache/gankit/data (absolute)."""
    root = cfg.path or os.environ.get("GANKIT_DATA") or os.path.join("~", ".cache", "gankit", "data")
    return os.path.abspath(os.path.expanduser(root))


def _reason(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _not_found(name: str, root: str, holding: str) -> DataError:
    return DataError(f"{name}: data not found under '{root}'; run with --set data.download=true (needs network) "
                     f"or --set data.path=DIR pointing at a folder holding {holding}")


def _download_failed(name: str, root: str, e: BaseException, holding: str) -> DataError:
    return DataError(f"{name}: download into '{root}' failed ({_reason(e)}); check the network connection, "
                     f"or fetch the files elsewhere and use --set data.path=DIR pointing at a folder holding {holding}")


# ------------------------------------------------------------------------------------ MNIST family

def _load_idx(cfg: DataConfig, name: str, cls: Any) -> TensorSource:
    root = data_root(cfg)
    holding = f"{cls.__name__}/raw/"
    raw = os.path.join(root, cls.__name__, "raw")
    try:
        ds = cls(root, train=True, download=cfg.download)
    except Exception as e:  # torchvision raises RuntimeError when absent, URLError etc. when offline
        needed = [os.path.splitext(os.path.basename(f))[0] for f, _ in cls.resources]
        present = all(os.path.isfile(os.path.join(raw, f)) for f in needed)
        if present:
            raise DataError(f"{name}: cannot read the files in '{raw}' ({_reason(e)}); "
                            f"delete them and run again with --set data.download=true") from None
        if cfg.download:
            raise _download_failed(name, root, e, holding) from None
        raise _not_found(name, root, holding) from None
    x = ds.data.to(torch.uint8).unsqueeze(1)                     # (N, 1, 28, 28)
    x = adapt(x, cfg.size, cfg.channels, name)
    return TensorSource(x, torch.as_tensor(ds.targets, dtype=torch.int64), classes=list(ds.classes), name=name)


@DATASETS.register("mnist")
def load_mnist(cfg: DataConfig) -> TensorSource:
    """60,000 training digits, uint8 (N, C, S, S); native (1, 28, 28)."""
    from torchvision.datasets import MNIST

    return _load_idx(cfg, "mnist", MNIST)


@DATASETS.register("fashion-mnist")
def load_fashion_mnist(cfg: DataConfig) -> TensorSource:
    """60,000 training clothing images, uint8 (N, C, S, S); native (1, 28, 28)."""
    from torchvision.datasets import FashionMNIST

    return _load_idx(cfg, "fashion-mnist", FashionMNIST)


# ------------------------------------------------------------------------------------ CIFAR-10

def read_cifar_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One binary CIFAR-10 batch file -> (pixels uint8 (n, 3, 32, 32), labels uint8 (n,))."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR10_RECORD:
        raise DataError(f"cifar10: '{path}' is not a CIFAR-10 binary batch ({raw.size} bytes is not a whole "
                        f"number of {CIFAR10_RECORD}-byte records); delete it and download again")
    rec = raw.reshape(-1, CIFAR10_RECORD)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0]


@DATASETS.register("cifar10")
def load_cifar10(cfg: DataConfig) -> TensorSource:
    """50,000 training images from the binary release, uint8 (N, C, S, S); native (3, 32, 32)."""
    root = data_root(cfg)
    folder = os.path.join(root, "cifar-10-batches-bin")
    files = [os.path.join(folder, f"data_batch_{i}.bin") for i in range(1, 6)]
    holding = "cifar-10-batches-bin/"
    if not all(os.path.isfile(f) for f in files):
        if not cfg.download:
            raise _not_found("cifar10", root, holding)
        from torchvision.datasets.utils import download_and_extract_archive

        try:
            download_and_extract_archive(CIFAR10_URL, root, md5=CIFAR10_MD5)
        except Exception as e:
            raise _download_failed("cifar10", root, e, holding) from None
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise DataError(f"cifar10: the downloaded archive did not contain '{missing[0]}'; "
                            f"delete '{folder}' and run again")
    parts = [read_cifar_batch(f) for f in files]
    x = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    y = torch.from_numpy(np.concatenate([p[1] for p in parts]).astype(np.int64))
    meta = os.path.join(folder, "batches.meta.txt")
    if os.path.isfile(meta):
        with open(meta, encoding="utf-8") as fh:
            classes = [line.strip() for line in fh if line.strip()]
    else:
        classes = list(CIFAR10_CLASSES)
    if int(y.max()) >= len(classes):
        raise DataError(f"cifar10: label {int(y.max())} found but '{meta}' names only {len(classes)} classes")
    return TensorSource(adapt(x, cfg.size, cfg.channels, "cifar10"), y, classes=classes, name="cifar10")


# ------------------------------------------------------------------------------------ CelebA

class CelebAImages(ImageFiles):
    """Aligned CelebA faces decoded per item: uint8 (C, S, S), centre-cropped.

    ``attributes``: int8 (N, 40) of ±1; ``attribute_names``: the 40 names.
    """

    def __init__(self, files: list[str], size: int, channels: int,
                 attributes: torch.Tensor, attribute_names: list[str]) -> None:
        super().__init__(files, size, channels)
        self.attributes = attributes
        self.attribute_names = attribute_names


def read_celeba_attributes(path: str) -> tuple[list[str], list[str], torch.Tensor]:
    """list_attr_celeba.txt -> (attribute names, file names, int8 (N, n_attributes))."""
    with open(path, encoding="utf-8") as fh:
        lines = [line for line in fh.read().splitlines() if line.strip()]
    try:
        count = int(lines[0].split()[0])
    except (IndexError, ValueError):
        raise DataError(f"celeba: '{path}' must start with the number of images on its first line") from None
    names = lines[1].split() if len(lines) > 1 else []
    rows = lines[2:]
    if len(rows) != count:
        raise DataError(f"celeba: '{path}' declares {count} images but lists {len(rows)}")
    files, values = [], []
    for i, line in enumerate(rows, start=3):
        parts = line.split()
        if len(parts) != len(names) + 1:
            raise DataError(f"celeba: '{path}' line {i}: expected a file name and {len(names)} values, "
                            f"got {len(parts)} fields")
        files.append(parts[0])
        try:
            values.append([int(v) for v in parts[1:]])
        except ValueError:
            raise DataError(f"celeba: '{path}' line {i}: attribute values must be 1 or -1") from None
    attrs = torch.tensor(values, dtype=torch.int8).reshape(len(files), len(names))
    return names, files, attrs


@DATASETS.register("celeba")
def load_celeba(cfg: DataConfig) -> StreamSource:
    """Aligned CelebA streamed from disk: uint8 (C, S, S), S = data.size (64 when 0), C = data.channels (3 when 0)."""
    root = data_root(cfg)
    base = os.path.join(root, "celeba")
    images = os.path.join(base, "img_align_celeba")
    attr_file = os.path.join(base, "list_attr_celeba.txt")
    holding = "celeba/img_align_celeba/ and celeba/list_attr_celeba.txt"
    if not (os.path.isdir(images) and os.path.isfile(attr_file)):
        if not cfg.download:
            raise _not_found("celeba", root, holding)
        from torchvision.datasets import CelebA

        try:
            CelebA(root, split="all", target_type="attr", download=True)
        except Exception as e:
            raise _download_failed("celeba", root, e, holding) from None
    names, files, attrs = read_celeba_attributes(attr_file)
    present = set(os.listdir(images))
    missing = [f for f in files if f not in present]
    if missing:
        raise DataError(f"celeba: {len(missing)} images listed in '{attr_file}' are missing from '{images}' "
                        f"(first: '{missing[0]}'); download the data set again")
    paths = [os.path.join(images, f) for f in files]
    probe(paths[0])
    size, channels = cfg.size or 64, cfg.channels or 3
    dataset = CelebAImages(paths, size, channels, attrs, names)
    return StreamSource(dataset, name="celeba", workers=cfg.workers, shape=(channels, size, size))
