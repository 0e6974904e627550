"""Discriminator rejection sampling (Azadi et al., ICLR 2019): the optimal discriminator (Goodfellow et al. 2014) as a sampler.

For a fixed G the best discriminator is D*(x) = p_data / (p_data + p_g), so its logit is
l(x) = log p_data(x) / p_g(x), and p_data(x) = p_g(x) · exp(l(x)). Drawing x ~ p_g and keeping it with
probability exp(l(x)) / M, M ≥ max exp(l), is rejection sampling: the kept samples follow p_data to the
extent that D's logit is that log-ratio. Samples D calls unlikely (between modes, in a dropped region's
surroundings) are thinned; under-represented modes, where l > 0, are kept more often.

M is estimated, as in the paper, from a burn-in: log M = the ``percentile`` of l over 10,000 samples
(100 = the largest seen, the exact procedure; lower values accept more, capping the ratio at M).
The paper's shift γ (``sample.drs_gamma``) trades diversity for quality: with r = exp(l - log M) ∈ (0, 1],
a sample is kept with probability σ(log r - log(1 - r) - γ) = r·e^(-γ) / (1 - r + r·e^(-γ)) — r itself
at γ = 0; γ > 0 thins the samples D rates low more than those it rates high (a sharper distribution).
Only discriminators of the logistic objectives (minimax, non-saturating) estimate this log-ratio.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import GankitError

BURN_IN = 10_000


@torch.no_grad()
def acceptance(logit: Tensor, log_m: float, gamma: float = 0.0) -> Tensor:
    """Keep probability of samples with D logits ``logit``: r e^-γ / (1 - r + r e^-γ), r = min(1, exp(l - log M))."""
    r = torch.exp((logit - log_m).clamp(max=0.0))
    shrunk = r * np.exp(-gamma)
    return shrunk / (1.0 - r + shrunk)


@torch.no_grad()
def rejection_sample(recipe, n: int, seed: int, ema: bool = True, percentile: float = 99.0, gamma: float = 0.0,
                     batch: int = 2000, max_draws: int = 1000) -> Tensor:
    """n samples (n, *shape) on the CPU: G's samples kept with probability ``acceptance(l(x), log M, gamma)``.

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
            keep = u < acceptance(logit, log_m, gamma)
            kept.append(x[keep])
            have += int(keep.sum())
            draws += batch
        return torch.cat(kept)[:n]
    finally:
        D.train(was_training)
