"""What code anywhere in a run may reach, at the bottom of the layers: ``report()`` to the active stats
collector, this process's place among the training processes (``world()``), ``rows()`` for per-sample
noise drawn alike on every process, and ``cache_root()``, where made-once files are kept.

The collector and the sinks live in ``training/stats.py``, the process group in ``training/distributed.py``;
they install themselves here (``set_collector``, ``set_world``), so losses, recipes and networks report
and draw noise without importing the trainer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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


def report(name: str, value: Tensor | float) -> None:
    """Record one observation of ``name`` (a scalar tensor or float) in the active collector, if any."""
    if _collector is not None:
        _collector.add(name, value)


def set_collector(collector: Any) -> Any:
    """Make ``collector`` (or None) the one ``report`` feeds; returns the previous one."""
    global _collector
    previous, _collector = _collector, collector
    return previous
