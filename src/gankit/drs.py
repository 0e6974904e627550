"""Discriminator rejection sampling (Azadi et al., ICLR 2019): the optimal-D result of seeds 000/001 as a sampler.

For a fixed G the best discriminator is D*(x) = p_data / (p_data + p_g), so its logit is
l(x) = log p_data(x) / p_g(x), and p_data(x) = p_g(x) · exp(l(x)). Drawing x ~ p_g and keeping it with
probability exp(l(x)) / M, M ≥ max exp(l), is rejection sampling: the kept samples follow p_data to the
extent that D's logit is that log-ratio. Samples D calls unlikely (between modes, in a dropped region's
surroundings) are thinned; under-represented modes, where l > 0, are kept more often.

M is estimated, as in the paper, from a burn-in: log M = the ``percentile`` of l over 10,000 samples
(100 = the largest seen, the exact procedure; lower values accept more, capping the ratio at M).
Only discriminators of the logistic objectives (minimax, non-saturating) estimate this log-ratio.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .errors import GankitError

BURN_IN = 10_000


@torch.no_grad()
def rejection_sample(recipe, n: int, seed: int, ema: bool = True, percentile: float = 99.0,
                     batch: int = 2000, max_draws: int = 1000) -> Tensor:
    """n samples (n, *shape) on the CPU: G's samples kept with probability min(1, exp(l(x) - log M)).

    Latents and acceptance draws come from one generator seeded ``seed`` (the global RNG is untouched).
    """
    gen = torch.Generator().manual_seed(seed)
    D = recipe.D
    was_training = D.training
    D.eval()
    try:
        def candidates(m: int) -> tuple[Tensor, Tensor]:
            x = recipe.sample(recipe.latents(m, generator=gen), ema=ema)
            return x.cpu(), D(x).float().cpu()

        _, burn = candidates(BURN_IN)
        log_m = float(np.percentile(burn.numpy(), percentile))
        kept: list[Tensor] = []
        have = draws = 0
        while have < n:
            if draws >= max_draws * n:
                raise GankitError(f"sample.method=drs: accepted {have} of {draws} candidates; the discriminator "
                                  f"rejects nearly everything (lower sample.drs_percentile or use sample.method=direct)")
            x, logit = candidates(batch)
            u = torch.rand(batch, generator=gen)
            keep = u < torch.exp((logit - log_m).clamp(max=0.0))
            kept.append(x[keep])
            have += int(keep.sum())
            draws += batch
        return torch.cat(kept)[:n]
    finally:
        D.train(was_training)
