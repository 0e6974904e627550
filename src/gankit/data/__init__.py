"""Data sets and batches.

    source = load(cfg.data)                       # a TensorSource, ToySource or StreamSource
    batches = Batches(source, cfg.data.batch_size, seed)
    batch = next(batches)                         # {"x": float32 (B, *shape), "y": int64 (B,)}
    state = batches.state_dict()                  # {"batches": n}: resume exactly with load_state_dict

Loader functions live in DATASETS (``toy``, ``digits``, ``domains``, ``folder``, ``pairs``, ``text``, ``oracle``,
``reviews``, ``text-pairs``, ``reviews-sentiment``, ``vision``).
"""
from __future__ import annotations

from ..config import DataConfig
from .base import DATASETS, DataInfo, Distribution, Source, StreamSource, TensorSource, ToySource
from .batches import Batches, check_shardable

from . import digits, domains, folder, oracle, pairs, reviews, text, text_pairs, toy, vision  # noqa: E402,F401  (register the loaders)


def load(cfg: DataConfig, options=None) -> Source:
    """The data set named by cfg.name (a ConfigError lists the valid names), with the conditions of
    ``cfg.labels`` when given; ``options``: the data set's own option table (``[pairs]``; its defaults
    when None), for the sets that have one."""
    loader, table = DATASETS.get(cfg.name), DATASETS.options(cfg.name)
    source = loader(cfg) if table is None else loader(cfg, options if options is not None else table())
    if cfg.labels:
        from .conditions import with_conditions

        source = with_conditions(source, cfg.labels)
    return source


__all__ = ["DATASETS", "Batches", "check_shardable", "DataInfo", "Distribution", "Source", "StreamSource", "TensorSource",
           "ToySource", "load"]
