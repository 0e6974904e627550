"""What code anywhere in a run may reach, at the bottom of the layers: ``report()`` to the active stats
collector, this process's place among the training processes (``world()``), ``rows()`` for per-sample
noise drawn alike on every process, ``cache_root()``, where made-once files are kept, and for an
evaluation spread over processes (``gankit eval`` under torchrun), ``shards()``/``map_batches()``: each
process computes every N-th batch and all of them receive every result, in order.

The collector and the sinks live in ``training/stats.py``, the process group in ``training/distributed.py``;
they install themselves here (``set_collector``, ``set_world``), so losses, recipes and networks report
and draw noise without importing the trainer.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from torch import Tensor


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes the run directory (rank 0)."""
        return self.rank == 0


_world = World()
_collector: Any = None   # the active train.stats.Collector, or None


def cache_root() -> Path:
    """Where gankit keeps what it makes once (reference statistics, classifiers, the oracle):
    ``$GANKIT_CACHE``, or ``~/.cache/gankit``."""
    return Path(os.environ.get("GANKIT_CACHE") or Path.home() / ".cache" / "gankit")


def world() -> World:
    return _world


def set_world(w: World) -> None:
    global _world
    _world = w


def rows(draw: Callable[[int], Tensor], n: int) -> Tensor:
    """``draw(m)`` returns m random rows; this rank's n rows of a draw for the whole global batch (n · world
    size rows), so every rank consumes the RNG alike. One process: ``draw(n)``."""
    w = _world
    if w.size == 1:
        return draw(n)
    return draw(n * w.size)[w.rank * n:(w.rank + 1) * n]


_shards = World()   # the processes an evaluation is spread over (set by `gankit eval` under torchrun)


def shards() -> World:
    """This process's place among the processes sharing an evaluation's work (one by default: training
    evaluates on rank 0 alone)."""
    return _shards


def set_shards(w: World) -> None:
    global _shards
    _shards = w


def map_batches(fn: Callable[[int], Any], count: int, desc: str = "", unit: str = "batch") -> list[Any]:
    """``[fn(0), fn(1), ..., fn(count - 1)]``: this process computes batches rank, rank + N, ... of the
    ``shards()`` and receives the others' (``all_gather_object``), so every process ends with the same
    list as one process alone. A progress bar on a terminal for more than 20 batches (rank 0's)."""
    w = _shards
    mine = range(w.rank, count, w.size)
    bar = None
    if len(mine) > 20 and w.rank == 0 and _stderr_is_terminal():
        from tqdm import tqdm

        bar = tqdm(total=len(mine), desc=desc or None, unit=unit, dynamic_ncols=True, leave=False)
    done = {}
    for b in mine:
        done[b] = fn(b)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    if w.size == 1:
        return [done[b] for b in range(count)]
    import torch.distributed as dist

    parts: list[Any] = [None] * w.size
    dist.all_gather_object(parts, done)
    merged = {b: v for part in parts for b, v in part.items()}
    return [merged[b] for b in range(count)]


@contextmanager
def rank_zero_first() -> Iterator[None]:
    """Inside, the first of an evaluation's processes (``shards()``) works alone, the others wait and
    follow (they find what it made, e.g. a classifier written to the cache)."""
    import torch.distributed as dist

    w = _shards
    if w.size > 1 and w.rank != 0:
        dist.barrier()
    yield
    if w.size > 1 and w.rank == 0:
        dist.barrier()


def _stderr_is_terminal() -> bool:
    import sys

    return sys.stderr.isatty()


def report(name: str, value: Tensor | float) -> None:
    """Record one observation of ``name`` (a scalar tensor or float) in the active collector, if any."""
    if _collector is not None:
        _collector.add(name, value)


def set_collector(collector: Any) -> Any:
    """Make ``collector`` (or None) the one ``report`` feeds; returns the previous one."""
    global _collector
    previous, _collector = _collector, collector
    return previous
