"""Data sources: what a data set is (``DataInfo``) and the three ways its samples are held.

* ``TensorSource``: the whole set in memory (uint8 images or float tensors).
* ``ToySource``: an infinite toy distribution, sampled on demand.
* ``StreamSource``: a ``torch.utils.data.Dataset`` decoded from disk by DataLoader workers.

``Batches`` (``gankit.data.batches``) turns any of them into an endless, exactly-resumable stream.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import torch
from torch.utils.data import Dataset

from ..config import DataConfig
from ..errors import DataError
from ..registry import Registry


@dataclass
class DataInfo:
    """What one data set looks like, independent of how it is stored."""

    name: str                        # registry name
    kind: str                        # "points", "images" or "tokens"
    shape: tuple[int, ...]           # one sample: (d,) for points, (C, H, W) for images, (L,) token ids for tokens
    classes: list[str] = field(default_factory=list)   # class names; [] when unlabelled
    size: int | None = None          # number of samples; None for infinite toy distributions
    cond_dim: int = 0                # length of the per-sample condition vectors ("c" in batches); 0 = none
    cond_kind: str = ""              # "attributes" (multi-hot) or "embedding" when cond_dim > 0
    pair_shape: tuple[int, ...] = ()  # shape of the condition image "a" of paired data read from disk; () = none
    content_classes: list[str] = field(default_factory=list)  # labels shared across the domains (the classes)
    vocab: list[str] = field(default_factory=list)   # tokens: the vocabulary, id -> token (text.SPECIALS first)
    level: str = ""                  # tokens: "char" or "word", how a sequence is written as text

    @property
    def labelled(self) -> bool:
        return bool(self.classes)

    def summary(self) -> str:
        """What the data is, in a few words: "1,797 grey images of 8x8, 10 classes"."""
        count = f"{self.size:,}" if self.size else "endless"
        if self.kind == "images":
            c = self.shape[0]
            what = f"{({1: 'grey', 3: 'RGB'}).get(c, f'{c}-channel')} images of {self.shape[1]}x{self.shape[2]}"
        elif self.kind == "points":
            what = f"points in {self.shape[0]} dimensions"
        else:
            what = f"sequences of up to {self.shape[0]} tokens, vocabulary {len(self.vocab):,}"
        return f"{count} {what}" + (f", {len(self.classes)} classes" if self.classes else "")

    @classmethod
    def from_dict(cls, d: dict) -> "DataInfo":
        """The DataInfo written as JSON (a run's data.json, a checkpoint's state.json)."""
        return cls(**{**d, "shape": tuple(d["shape"])})


class Source:
    """Base class of every data source; ``info`` describes the data set."""

    info: DataInfo


# The loader functions: (cfg) -> Source. Filled by the modules of this package on import.
DATASETS: Registry[Callable[[DataConfig], Source]] = Registry("data set")


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> float32 in [-1, 1] (x/127.5 - 1); float tensors as float32; int64 token
    ids pass unchanged."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(127.5).sub_(1.0)
    if x.dtype == torch.int64:
        return x
    return x.to(torch.float32)


def _kind(shape: tuple[int, ...]) -> str:
    return "images" if len(shape) == 3 else "points"


class TensorSource(Source):
    """A data set held in memory.

    x: uint8 (N, C, H, W) for 8-bit images (converted per batch to float in [-1, 1]),
       or float (N, *shape) used as it is. y: int64 (N,) class indices, or None.
    Token sequences: x int64 (N, L) ids into ``vocab`` (``data/text.py``: eos-terminated, pad after).
    c: float (N, C) condition vectors; a: condition images (N, C', H', W') paired with x (uint8 or float,
    like x); content: int64 (N,) labels that mean the same thing in every class (the digit of a digit
    drawn in several styles, when the classes are the styles), named by ``content_classes``.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None,
                 classes: Sequence[str] = (), name: str = "tensor",
                 c: torch.Tensor | None = None, cond_kind: str = "", a: torch.Tensor | None = None,
                 content: torch.Tensor | None = None, content_classes: Sequence[str] = (),
                 vocab: Sequence[str] = (), level: str = "") -> None:
        if x.dim() < 2:
            raise DataError(f"{name}: expected samples of shape (N, ...), got a tensor of shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise DataError(f"{name}: the data set has no samples")
        if vocab and (x.dtype != torch.int64 or x.dim() != 2):
            raise DataError(f"{name}: token sequences must be int64 (N, L), got {x.dtype} {tuple(x.shape)}")
        if not vocab and x.dtype != torch.uint8 and not x.is_floating_point():
            raise DataError(f"{name}: samples must be uint8 or floating point, got {x.dtype}")
        if (y is None) != (not classes):
            raise DataError(f"{name}: labels and class names must be given together "
                            f"(got labels={'yes' if y is not None else 'no'}, {len(classes)} class names)")
        if y is not None:
            y = torch.as_tensor(y, dtype=torch.int64)
            if y.shape != (x.shape[0],):
                raise DataError(f"{name}: expected {x.shape[0]} labels, got a tensor of shape {tuple(y.shape)}")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(classes)):
                raise DataError(f"{name}: labels must lie in 0..{len(classes) - 1} "
                                f"(one per class name), got {int(y.min())}..{int(y.max())}")
        if c is not None and (c.dim() != 2 or c.shape[0] != x.shape[0]):
            raise DataError(f"{name}: expected condition vectors of shape ({x.shape[0]}, C), got {tuple(c.shape)}")
        if a is not None and (a.dim() != 4 or a.shape[0] != x.shape[0]):
            raise DataError(f"{name}: expected {x.shape[0]} condition images (N, C, H, W), got {tuple(a.shape)}")
        if content is not None and (content.shape != (x.shape[0],) or not content_classes):
            raise DataError(f"{name}: content labels need one label per sample and their names")
        self.x = x.contiguous()
        self.y = y
        self.c = None if c is None else c.to(torch.float32).contiguous()
        self.a = None if a is None else a.contiguous()
        self.content = content
        self.files: list[str] | None = None   # relative paths of the samples, when read from a folder
        shape = tuple(int(s) for s in x.shape[1:])
        self.info = DataInfo(name=name, kind="tokens" if vocab else _kind(shape), shape=shape, classes=list(classes),
                             size=int(x.shape[0]), vocab=list(vocab), level=level,
                             cond_dim=0 if c is None else int(c.shape[1]), cond_kind=cond_kind if c is not None else "",
                             pair_shape=() if a is None else tuple(int(s) for s in a.shape[1:]),
                             content_classes=list(content_classes) if content is not None else [])

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def labels(self) -> torch.Tensor | None:
        """int64 (N,) class of every sample, or None."""
        return self.y

    def get(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Samples at ``index`` (B,): {"x": float32 (B, *shape), "y": int64 (B,) when labelled,
        "c": condition vectors, "a": condition images, "content": content labels, when the set has them}."""
        out = {"x": to_float(self.x[index])}
        if self.y is not None:
            out["y"] = self.y[index]
        if self.content is not None:
            out["content"] = self.content[index]
        if self.c is not None:
            out["c"] = self.c[index]
        if self.a is not None:
            out["a"] = to_float(self.a[index])
        return out

    def all(self) -> dict[str, torch.Tensor]:
        """The whole set, as ``get`` returns it for every index."""
        return self.get(torch.arange(len(self)))


class Distribution(Protocol):
    """A toy distribution; mixtures also have ``means`` (K, d), ``std`` and ``log_prob``."""

    name: str
    dim: int
    means: torch.Tensor | None

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples: (x float32 (n, d), component int64 (n,))."""
        ...


class ToySource(Source):
    """Infinite sampling from a toy distribution; labelled by mixture component when it has ``means``."""

    def __init__(self, distribution: Distribution, name: str | None = None) -> None:
        self.distribution = distribution
        means = getattr(distribution, "means", None)
        classes = [str(k) for k in range(len(means))] if means is not None else []
        self.info = DataInfo(name=name or distribution.name, kind="points", shape=(int(distribution.dim),),
                             classes=classes, size=None)

    def sample(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """n samples: {"x": float32 (n, d), "y": int64 (n,) component, for mixtures}."""
        x, comp = self.distribution.sample(n, generator)
        out = {"x": x.to(torch.float32)}
        if self.info.classes:
            out["y"] = comp.to(torch.int64)
        return out


class StreamSource(Source):
    """A map-style ``Dataset`` decoded from disk by ``workers`` DataLoader processes.

    ``dataset[i]`` returns x (C, H, W) (uint8 pixels or float) when unlabelled, (x, y: int) when
    ``classes`` is given, (x, c: float (C,)) when ``cond_dim`` is. ``shape`` is read from ``dataset[0]``
    when not given.
    """

    def __init__(self, dataset: Dataset, name: str = "stream", classes: Sequence[str] = (),
                 workers: int = 0, shape: tuple[int, ...] | None = None,
                 cond_dim: int = 0, cond_kind: str = "") -> None:
        try:
            n = len(dataset)  # type: ignore[arg-type]
        except TypeError:
            raise DataError(f"{name}: the data set must have a length (a map-style Dataset)") from None
        if n == 0:
            raise DataError(f"{name}: the data set has no samples")
        if workers < 0:
            raise DataError(f"{name}: data.workers must be zero or positive, got {workers}")
        if shape is None:
            first: Any = dataset[0]
            x0 = first[0] if classes or cond_dim else first
            shape = tuple(int(s) for s in x0.shape)
        self.dataset = dataset
        self.workers = int(workers)
        self.labels: torch.Tensor | None = None   # int64 (N,) classes, when known without decoding (folders)
        self.files: list[str] | None = None   # relative paths of the samples, when read from a folder
        self.info = DataInfo(name=name, kind=_kind(shape), shape=tuple(shape), classes=list(classes), size=n,
                             cond_dim=cond_dim, cond_kind=cond_kind if cond_dim else "")

    def __len__(self) -> int:
        return int(self.info.size or 0)
