"""A preset's data set, for references and feature spaces named by a preset (``--ref digits``).

Only the preset's ``[data]`` table is read: assembling a whole run (``gankit.assemble``) needs the
recipes, which sit above the metrics.
"""
from __future__ import annotations

from ..config import DataConfig, preset_text, read_toml
from ..options import parse


def preset_data(name: str) -> DataConfig:
    """The ``[data]`` table of preset ``name`` (a ConfigError lists the presets for an unknown name)."""
    table = read_toml(preset_text(name), f"preset '{name}'").get("data", {})
    return parse(DataConfig, "data", {k: v for k, (v, _) in table.items()}, {k: o for k, (_, o) in table.items()})
