"""Recipes: what one training step does. A recipe owns its networks and optimisers and lists its
update phases; the one loop (``gankit.train.loop``) does everything else.

A recipe class is registered with ``@RECIPES.register(name)`` and provides:

    nets: dict[str, nn.Module]            # everything saved in weights.safetensors ("G", "D", ...)
    optimizers: dict[str, Optimizer]      # saved with the training state
    ema_targets: list[str]                # nets whose moving average the loop keeps as f"{name}_ema"
    phases: list[Phase]                   # the update schedule, as data
    latents(n, generator=None)            # z for n samples
    sample(z, labels=None, ema=True)      # generated samples for latents z and conditions ``labels``
                                          # (class indices, condition vectors or condition images)
    fixed_conditions(source, n, seed)     # conditions for n grid / evaluation samples (None: unconditional)
    grid_images(x, cond) -> (x, nrow)     # how a sample grid lays them out

Optional class attributes: ``conditional`` (sample takes labels), ``paired`` (image-to-image),
``translates`` (unpaired image-to-image: labels are ``translation.Translation``s, and ``domains`` names the
domains), ``batch_by_class`` (every batch holds data.batch_size samples of each class),
``architectures`` (the registry model.arch is looked up in; default ``nets.NETS``) and ``defaults``
({"table.key": value} used for keys the preset, config file and --set leave unset).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor

from ..registry import Registry
from ..train.distributed import rows

RECIPES: Registry = Registry("recipe")


@dataclass(frozen=True)
class Phase:
    """One kind of update in the schedule. At generator step s the loop runs ``fn`` ``repeat`` times if
    s >= start and s % every == 0; each run gets a new batch when ``fresh_batch``, else the last one drawn.

    Examples: k discriminator steps per generator step is Phase("D", d_step, repeat=k); lazy R1 every
    16 steps is Phase("R1", r1_step, every=16); a term that needs a trained network first is
    Phase("F_B", f_b_step, start=500); TTUR is two optimisers, not a phase.
    """

    name: str
    fn: Callable[[dict[str, Tensor]], None]
    repeat: int = 1
    every: int = 1
    fresh_batch: bool = True
    start: int = 0


def normal_latents(n: int, z_dim: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
    """z ~ N(0, I), shape (n, z_dim), on ``device``; drawn on the CPU from ``generator`` when one is given
    (so a seeded draw is the same on every device), else from the global RNG on ``device`` — with several
    training processes, this rank's rows of a draw for the global batch (``distributed.rows``)."""
    if generator is not None:
        return torch.randn(n, z_dim, generator=generator).to(device)
    return rows(lambda m: torch.randn(m, z_dim, device=device), n)


@contextmanager
def sampling_generator(recipe, ema: bool = True, name: str = "G") -> Iterator[torch.nn.Module]:
    """The generator ``name`` to sample with — its moving average ``<name>_ema`` when asked and kept —
    in eval mode for the duration (BatchNorm uses its running statistics), its previous mode restored
    afterwards."""
    G = recipe.nets[f"{name}_ema"] if ema and f"{name}_ema" in recipe.nets else recipe.nets[name]
    was_training = G.training
    G.eval()
    try:
        yield G
    finally:
        G.train(was_training)


def class_grid(n: int, classes: int) -> tuple[torch.Tensor, int]:
    """Labels (n,) for a class x sample grid, one class per row, and the row length."""
    per = -(-n // classes)
    return torch.arange(n) // per, per


def draw_samples(recipe, n: int, seed: int, ema: bool = True, batch: int = 500,
                 labels: Tensor | None = None) -> list[Tensor]:
    """n samples from any recipe, in CPU batches of ``batch``, from latents drawn with their own
    generator seeded ``seed`` (the global RNG is not touched). ``labels`` (n,) or (n, C): the
    conditions of a conditional recipe (default: its classes in turn). When the recipe's ``rejection``
    is set (``sample.method`` drs, or auto with a logistic objective), discriminator rejection sampling
    (``gankit.drs``)."""
    sampler = getattr(recipe, "sampler", None)
    if getattr(recipe, "rejection", False) and labels is None:
        from ..drs import rejection_sample

        return list(rejection_sample(recipe, n, seed, ema=ema, percentile=sampler.drs_percentile,
                                     gamma=sampler.drs_gamma).split(batch))
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch):
        z = recipe.latents(min(batch, n - start), generator=gen)
        part = None if labels is None else labels[start:start + len(z)]
        out.append(recipe.sample(z, part, ema=ema).cpu())
    return out


from . import conditional, cyclegan, gan, paired, stargan  # noqa: E402,F401  (fill the registry)
