"""Recipes: what one training step does. ``base.py`` holds the interface every recipe has (``Recipe``,
``Phase``) and the helpers the loop and the commands use on any recipe (``draw_samples``,
``sampling_generator``); one recipe a module, registered in ``RECIPES`` with its option table."""
from __future__ import annotations

from .base import (CONDITIONINGS, RECIPES, Phase, Recipe, class_grid, draw_samples, normal_latents,  # noqa: F401
                   sampling_generator)

from . import (conditional, cyclegan, gan, glo, gon, gumbel, paired, seqgan, sequence, stargan,  # noqa: E402,F401
               textcycle, vae)  # (fill the registry)
