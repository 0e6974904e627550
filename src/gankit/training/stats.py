"""Stats reporting, separate from the logging backends (StyleGAN2-ADA's ``training_stats`` idea).

Anywhere in a training step: ``runtime.report("loss/D", loss)``. Values accumulate as tensors on their own
device (no host synchronisation per step); ``Collector.flush`` averages them once per log interval and
hands one flat dict of floats to every sink: metrics.jsonl, TensorBoard, the progress bar.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Protocol

import torch
from torch import Tensor

from ..runtime import set_collector


class Sink(Protocol):
    def write(self, step: int, values: dict[str, float]) -> None: ...
    def rewind(self, step: int) -> None: ...
    def close(self) -> None: ...


class Collector:
    """Accumulates reported values; ``flush(step)`` returns their means and writes them to sinks."""

    def __init__(self, sinks: list[Sink] = (), reduce=None) -> None:
        self.sinks = list(sinks)
        self.reduce = reduce   # (K,) tensor -> (K,) tensor: e.g. the mean over training processes
        self._sums: dict[str, Tensor] = {}
        self._counts: dict[str, int] = {}

    def __enter__(self) -> "Collector":
        self._previous = set_collector(self)
        return self

    def __exit__(self, *exc: object) -> None:
        set_collector(self._previous)
        for sink in self.sinks:
            sink.close()

    def add(self, name: str, value: Tensor | float) -> None:
        v = value.detach().float() if isinstance(value, Tensor) else torch.tensor(float(value))
        self._sums[name] = self._sums[name] + v if name in self._sums else v.clone()
        self._counts[name] = self._counts.get(name, 0) + 1

    def non_finite(self) -> dict[str, float]:
        """The reported names whose values since the last flush include a NaN or an Inf, with their mean."""
        if not self._sums:
            return {}
        names = list(self._sums)
        sums = torch.stack([self._sums[n].reshape(()).to(self._sums[names[0]].device) for n in names])
        if bool(torch.isfinite(sums).all()):
            return {}
        return {n: float(s) / self._counts[n] for n, s in zip(names, sums.tolist()) if not math.isfinite(s)}

    def discard(self) -> None:
        """Forget what was reported since the last flush (a step that was rolled back)."""
        self._sums.clear()
        self._counts.clear()

    def flush(self, step: int, extra: dict[str, float] | None = None) -> dict[str, float]:
        names = sorted(self._sums)
        values = {}
        if names:  # one device-to-host copy for all stats
            stacked = torch.stack([self._sums[n].reshape(()).cpu().double() / self._counts[n] for n in names])
            if self.reduce is not None:
                stacked = self.reduce(stacked)
            values = dict(zip(names, stacked.tolist()))
        values.update(extra or {})
        self.discard()
        for sink in self.sinks:
            sink.write(step, values)
        return values


class JsonlSink:
    """Appends ``{"step": N, name: value, ...}`` lines to metrics.jsonl.

    On resume at step S, lines with step > S (written after the checkpoint being resumed) are dropped
    first, so the file reads as one uninterrupted run.
    """

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        if resume_step is not None and path.exists():
            kept = [line for line in path.read_text().splitlines() if _step_of(line) <= resume_step]
            path.write_text("".join(line + "\n" for line in kept))
        self._f = open(path, "a")

    def rewind(self, step: int) -> None:
        """Drop the lines after ``step`` (the run went back to that step's checkpoint) and go on appending."""
        self._f.close()
        self.__init__(self.path, resume_step=step)

    def write(self, step: int, values: dict[str, float]) -> None:
        row = {"step": step}
        row.update({k: (v if math.isfinite(v) else str(v)) for k, v in values.items()})
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _step_of(line: str) -> float:
    """The step of a metrics.jsonl line; infinite for a line that is not a whole JSON row (the last line of
    a run killed while writing it), so it is dropped."""
    try:
        return json.loads(line).get("step", 0)
    except (ValueError, AttributeError):
        return math.inf


class TensorBoardSink:
    """Scalars to TensorBoard event files in ``dir``; on resume, events after the step are purged."""

    def __init__(self, dir: Path, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.dir = dir
        self._w = SummaryWriter(str(dir), purge_step=resume_step)

    def rewind(self, step: int) -> None:
        """Purge the events from ``step`` on (the run went back to that step's checkpoint)."""
        self._w.close()
        self.__init__(self.dir, resume_step=step)

    def write(self, step: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self._w.add_scalar(k, v, step)
        self._w.flush()

    def samples(self, step: int, path: Path) -> None:
        """The sample grid (or points plot) written at ``path`` as the image ``samples``; token runs' sentence
        file (``path`` with .txt) as the text ``samples``, beside the scalars."""
        if path.suffix == ".png" and path.exists():
            import numpy as np
            from PIL import Image

            with Image.open(path) as im:
                self._w.add_image("samples", np.asarray(im.convert("RGB")), step, dataformats="HWC")
        elif path.with_suffix(".txt").exists():
            lines = path.with_suffix(".txt").read_text(errors="replace").splitlines()
            self._w.add_text("samples", "\n\n".join(f"    {line}" for line in lines[:32]), step)
        self._w.flush()

    def close(self) -> None:
        self._w.close()
