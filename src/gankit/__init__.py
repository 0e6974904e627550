"""gankit: train, condition, translate and evaluate generative models.

The public Python API (``gankit.api``, documented in the README), loaded on first use so that importing a
part of the package (``gankit.config``, ``gankit.metrics``) does not import everything:

    load_config, describe_config, train, open_run, load, sample, interpolate, reconstruct, translate, evaluate,
    metric_names, Config, Run, GankitError
"""
from .version import __version__

__all__ = ["load_config", "describe_config", "train", "open_run", "load", "sample", "interpolate", "reconstruct", "translate",
           "evaluate", "metric_names", "Config", "Run", "GankitError", "__version__"]


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'gankit' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
