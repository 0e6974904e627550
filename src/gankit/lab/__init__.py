"""The theory of the seeds, runnable: `gankit lab NAME --out DIR`.

Each experiment is a function ``(out: Path, quick: bool) -> dict[str, float]`` registered in ``LABS``
with a one-line summary; it writes PNG plots and ``summary.md`` (its numbers) into ``out``. ``quick``
uses fewer training steps (for the tests); the numeric claims hold in both modes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..registry import Registry


@dataclass(frozen=True)
class Lab:
    name: str
    summary: str
    run: Callable[[Path, bool], dict[str, float]]


LABS: Registry[Lab] = Registry("lab experiment")


def lab(name: str, summary: str):
    def add(fn: Callable[[Path, bool], dict[str, float]]) -> Callable[[Path, bool], dict[str, float]]:
        LABS.register(name)(Lab(name, summary, fn))
        return fn

    return add


def write_summary(out: Path, title: str, text: str, values: dict[str, float]) -> None:
    """summary.md: a title, a paragraph and a table of the experiment's numbers."""
    rows = "\n".join(f"| {k} | {v:.6g} |" for k, v in values.items())
    (out / "summary.md").write_text(f"# {title}\n\n{text}\n\n| quantity | value |\n|---|---|\n{rows}\n")


from . import theory  # noqa: E402,F401  (fills the registry)
