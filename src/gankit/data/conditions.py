"""Per-sample conditions from a file (``data.labels = PATH``), for conditional runs (Mirza & Osindero 2014).

Two formats:

* ``.csv`` with a header row. The first column names the sample: a file path relative to ``data.path``
  (folder data, as in ``images/cat/001.png`` -> ``cat/001.png``) or a 0-based index (any data set).
  With one more column, its values are **class names** (``file,label``). With several numeric columns,
  each row is a **condition vector**: *attributes* when every value is 0 or 1 (``file,smiling,glasses``),
  else an *embedding* (e.g. a text embedding per image). Every sample needs exactly one row.
* ``.npy``: a float array (N, C), row i the condition vector of sample i in the data set's order (for a
  folder: its files sorted by path, as ``gankit`` lists them).

The result replaces the data set's own labels.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .base import Source, StreamSource, TensorSource


@dataclass
class Conditions:
    """Class labels (``y`` + ``classes``) or condition vectors (``c`` + ``kind`` + ``names``)."""

    y: torch.Tensor | None = None          # int64 (N,)
    classes: list[str] = field(default_factory=list)
    c: torch.Tensor | None = None          # float32 (N, C)
    kind: str = ""                          # "attributes" or "embedding"
    names: list[str] = field(default_factory=list)


def _vectors(values: np.ndarray, names: list[str]) -> Conditions:
    kind = "attributes" if np.isin(values, (0.0, 1.0)).all() else "embedding"
    return Conditions(c=torch.from_numpy(values.astype(np.float32)), kind=kind, names=names)


def read_conditions(path: str, n: int, files: list[str] | None) -> Conditions:
    """The conditions of the n samples of a data set; ``files``: its samples' relative paths, if any."""
    where = f"data.labels: '{path}'"
    if not os.path.isfile(path):
        raise DataError(f"{where} does not exist (expected a .csv or .npy file)")
    if path.endswith(".npy"):
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise DataError(f"{where} is not a plain numeric .npy array ({e})") from None
        if values.ndim != 2 or values.shape[0] != n or not np.issubdtype(values.dtype, np.number):
            raise DataError(f"{where}: expected a numeric array of shape ({n}, C), one row per sample, "
                            f"got {values.dtype} {values.shape}")
        return _vectors(values.astype(np.float64), [str(j) for j in range(values.shape[1])])
    if not path.endswith(".csv"):
        raise DataError(f"{where}: unknown format; valid: .csv (file,label or file,v1,v2,...) or .npy (N, C)")
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(v.strip() for v in r)]
    if len(rows) < 2 or len(rows[0]) < 2:
        raise DataError(f"{where}: expected a header and rows 'file,label' or 'file,value1,value2,...'")
    header, body = rows[0], rows[1:]
    key = {name: i for i, name in enumerate(files)} if files else None
    order = np.full(n, -1)
    for line, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise DataError(f"{where} line {line}: {len(r)} values, the header has {len(header)}")
        name = r[0].strip()
        if key is not None:
            i = key.get(name.replace("\\", "/"))
            if i is None:
                raise DataError(f"{where} line {line}: no image '{name}' under data.path")
        else:
            if not name.isdigit() or int(name) >= n:
                raise DataError(f"{where} line {line}: '{name}' is not a sample index 0..{n - 1} "
                                f"(this data set has no file names)")
            i = int(name)
        if order[i] >= 0:
            raise DataError(f"{where} line {line}: sample '{name}' is listed twice")
        order[i] = line - 2
    missing = np.flatnonzero(order < 0)
    if len(missing):
        first = files[missing[0]] if files else str(missing[0])
        raise DataError(f"{where}: {len(missing)} of {n} samples have no row (first: '{first}')")
    body = [body[j] for j in order]
    if len(header) == 2:
        values = [r[1].strip() for r in body]
        if _all_numbers(values) and not _all_ints(values):   # one real number per sample: a 1-D vector
            return _vectors(np.array(values, dtype=np.float64)[:, None], header[1:])
        return _classes(values)                               # names or integers: classes
    try:
        values = np.array([[float(v) for v in r[1:]] for r in body])
    except ValueError as e:
        raise DataError(f"{where}: with several columns every value must be a number ({e})") from None
    return _vectors(values, [h.strip() for h in header[1:]])


def _all_numbers(values: list[str]) -> bool:
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return True


def _all_ints(values: list[str]) -> bool:
    return all(v.lstrip("-").isdigit() for v in values)


def _classes(values: list[str]) -> Conditions:
    classes = sorted(set(values), key=lambda v: (not _all_ints([v]), int(v) if _all_ints([v]) else 0, v))
    index = {c: i for i, c in enumerate(classes)}
    return Conditions(y=torch.tensor([index[v] for v in values], dtype=torch.int64), classes=classes)


class _Relabelled(Dataset):
    """dataset[i] with its label or condition replaced: (x, conditions[i])."""

    def __init__(self, inner: Dataset, labelled: bool, values: torch.Tensor) -> None:
        self.inner, self.labelled, self.values = inner, labelled, values

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        item = self.inner[i]
        x = item[0] if self.labelled else item
        v = self.values[i]
        return x, (int(v) if v.dim() == 0 else v)


def with_conditions(source: Source, path: str) -> Source:
    """``source`` with the conditions of file ``path`` in place of its own labels."""
    if not isinstance(source, (TensorSource, StreamSource)):
        raise DataError(f"data.labels: '{source.info.name}' is an endless toy distribution; labels from a file need "
                        f"a finite data set (folder, digits, mnist, ...)")
    n = len(source)
    cond = read_conditions(path, n, source.files)
    name, files = source.info.name, source.files
    if isinstance(source, TensorSource):
        out: Source = TensorSource(source.x, cond.y, classes=cond.classes, name=name, c=cond.c, cond_kind=cond.kind)
    else:
        values = cond.y if cond.y is not None else cond.c
        out = StreamSource(_Relabelled(source.dataset, bool(source.info.classes), values), name=name,
                           classes=cond.classes, workers=source.workers, shape=source.info.shape,
                           cond_dim=0 if cond.c is None else int(cond.c.shape[1]), cond_kind=cond.kind)
    out.files = files
    return out


def first_conditions(source: Source, n: int) -> torch.Tensor:
    """The condition vectors (n, C) of the first n samples (cycled when the set is smaller)."""
    index = torch.arange(n) % len(source)
    if isinstance(source, TensorSource) and source.c is not None:
        return source.c[index]
    if isinstance(source, StreamSource) and source.info.cond_dim:
        return torch.stack([torch.as_tensor(source.dataset[int(i)][1], dtype=torch.float32) for i in index])
    raise DataError(f"'{source.info.name}' has no condition vectors")
