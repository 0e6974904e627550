"""`gankit eval`: SAMPLES (a run directory, an image folder or a ``.npy``) scored against REF, or a
CycleGAN / StarGAN run scored on its own data's held-out split.

A run directory's samples are drawn from its EMA generator, conditioned, for conditional runs, on
conditions of its data; files, folders, references and the metrics themselves are ``gankit.metrics``'.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import data as data_mod
from .assemble import from_toml
from .errors import GankitError
from .metrics.evaluate import evaluate, load_reference, load_samples
from .recipes import RECIPES
from .run import draw, open_run
from .training import checkpoint
from .training.evaluation import evaluate_translation


def is_run(spec: str | Path) -> bool:
    return (Path(spec) / "checkpoints").is_dir()


def is_translation_run(spec: str | Path) -> bool:
    """Is ``spec`` a run directory of an unpaired translation recipe (CycleGAN, StarGAN)?"""
    ckpt = checkpoint.latest(Path(spec) / "checkpoints") if is_run(spec) else None
    if ckpt is None:
        return False
    cfg = from_toml((ckpt / "config.toml").read_text(), str(ckpt / "config.toml"))
    return RECIPES.get(cfg.train.recipe).conditioning == "domains"


def run_samples(run_dir: str | Path, n: int = 10_000, seed: int = 0,
                sampler: str | None = None) -> tuple[torch.Tensor, str]:
    """n samples of a run's EMA generator (latents seeded ``seed``) and their kind ("images" / "points")."""
    run = open_run(run_dir, sampler=sampler)
    if run.recipe.conditioning == "domains":
        raise GankitError(f"'{run_dir}' is a CycleGAN / StarGAN run: score it with gankit eval {run_dir} (no --ref; "
                          f"its data's test split is used)")
    labels = None
    if run.recipe.conditioning in ("image", "vector"):
        # image or vector conditions come from the run's data: translate / condition on its samples
        labels = run.recipe.fixed_conditions(data_mod.load(run.cfg.data, run.cfg.owned.get(run.cfg.data.name)), n, seed)
    return draw(run, n, seed=seed, labels=labels), run.info.kind


def samples_of(spec: str, n: int = 10_000, seed: int = 0, sampler: str | None = None) -> tuple[torch.Tensor, str]:
    """SAMPLES -> (tensor, kind): drawn from a run directory, else read from a ``.npy`` or an image folder."""
    if is_run(spec):
        return run_samples(spec, n, seed, sampler)
    return load_samples(spec, n)


def evaluate_translation_run(run_dir: str | Path, features: str | None = None,
                             seed: int = 0) -> tuple[dict[str, float], list[str]]:
    """``gankit eval RUN`` for a CycleGAN / StarGAN run: its translations of its data's held-out images."""
    run = open_run(run_dir)
    return evaluate_translation(run.recipe, run.cfg.data, features, seed)


def evaluate_spec(samples: str, ref: str | None, metrics: list[str] | None = None, features: str | None = None,
                  n: int = 10_000, seed: int = 0, sampler: str | None = None,
                  picture: Path | None = None) -> tuple[dict[str, float], list[str]]:
    """`gankit eval SAMPLES --ref REF`: values and notes. A CycleGAN / StarGAN run needs no REF (and
    takes no ``metrics``): it is scored by the translation metrics."""
    if is_translation_run(samples):
        return evaluate_translation_run(samples, features=features, seed=seed)
    if not ref:
        raise GankitError("--ref is required: a preset name (its data set) or an image folder")
    x, kind = samples_of(samples, n=n, seed=seed, sampler=sampler)
    reference = load_reference(ref, n=n)
    return evaluate(x, kind, reference, metrics, features=features, picture=picture)
