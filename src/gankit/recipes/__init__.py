"""Recipes: what one training step does. A recipe owns its networks and optimisers and lists its
update phases; the one loop (``gankit.train.loop``) does everything else.

A recipe class is registered with ``@RECIPES.register(name)`` and provides:

    nets: dict[str, nn.Module]            # everything saved in weights.safetensors ("G", "D", ...)
    optimizers: dict[str, Optimizer]      # saved with the training state
    ema_targets: list[str]                # nets whose moving average the loop keeps as f"{name}_ema"
    phases: list[Phase]                   # the update schedule, as data
    sample(z, labels=None, ema=True)      # generated samples for latents z
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..registry import Registry

RECIPES: Registry = Registry("recipe")


@dataclass(frozen=True)
class Phase:
    """One kind of update in the schedule. At generator step s the loop runs ``fn`` ``repeat`` times if
    s % every == 0; each run gets a new batch when ``fresh_batch``, else the last one drawn.

    Examples: k discriminator steps per generator step is Phase("D", d_step, repeat=k); lazy R1 every
    16 steps is Phase("R1", r1_step, every=16); TTUR is two optimisers, not a phase.
    """

    name: str
    fn: Callable[[dict[str, Tensor]], None]
    repeat: int = 1
    every: int = 1
    fresh_batch: bool = True


def draw_samples(recipe, n: int, seed: int, ema: bool = True, batch: int = 500) -> list[Tensor]:
    """n samples from any recipe, in CPU batches of ``batch``, from latents drawn with their own
    generator seeded ``seed`` (the global RNG is not touched)."""
    gen = torch.Generator().manual_seed(seed)
    return [recipe.sample(recipe.latents(min(batch, n - start), generator=gen), ema=ema).cpu()
            for start in range(0, n, batch)]


from . import gan  # noqa: E402,F401  (fills the registry)
