"""The theory behind GANs, runnable: `gankit lab NAME --out DIR`.

Each experiment is a function ``(out: Path, quick: bool) -> dict[str, float]`` registered in ``LABS``
with a one-line summary; it writes PNG plots and ``summary.md`` (its numbers) into ``out``. ``quick``
uses fewer training steps (for the tests); the numeric claims hold in both modes.
"""
from __future__ import annotations

from .base import LABS, Lab, lab, write_summary  # noqa: F401

from . import discrete, theory  # noqa: E402,F401  (fill the registry)
