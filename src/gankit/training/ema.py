"""Exponential moving average of a network's weights (used for sampling by default)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """θ_ema ← β θ_ema + (1 - β) θ after each generator step; buffers (BN statistics) are copied.

    β ramps up as min(decay, (1 + t) / (10 + t)) at update t, so early averages are not dominated by
    the random initialisation. ``shadow`` is an eval-mode copy that never receives gradients.
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.module = module
        self.decay = decay
        self.shadow = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, t: int) -> None:
        beta = min(self.decay, (1.0 + t) / (10.0 + t))
        src = list(self.module.parameters())
        dst = list(self.shadow.parameters())
        torch._foreach_lerp_(dst, src, 1.0 - beta)
        for b_dst, b_src in zip(self.shadow.buffers(), self.module.buffers()):
            b_dst.copy_(b_src)


def attach_emas(recipe, decay: float) -> dict[str, EMA]:
    """Moving averages of the recipe's ``ema_targets``, added to ``recipe.nets`` as "<name>_ema"."""
    emas = {name: EMA(recipe.nets[name], decay) for name in recipe.ema_targets} if decay > 0 else {}
    for name, ema in emas.items():
        recipe.nets[f"{name}_ema"] = ema.shadow
    return emas
