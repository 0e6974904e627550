"""The registry of theory experiments (``LABS``), the decorator that fills it, and their summary file."""
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
