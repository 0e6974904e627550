"""Learning-rate schedules as pure functions of the step, so a resumed run follows the same rates.

``optim.decay`` keeps the rates constant for the first ``decay_start`` share of ``train.steps`` and then
lowers them to zero at the last step: ``linear`` (the pix2pix/CycleGAN schedule) or ``cosine``.
"""
from __future__ import annotations

import math

import torch


def lr_factor(step: int, steps: int, decay: str, start: float) -> float:
    """Multiplier of the base learning rate for the update made at ``step`` (0-based) of ``steps``."""
    if decay == "none":
        return 1.0
    s0 = int(start * steps)
    if step < s0 or steps <= s0:
        return 1.0
    progress = (step - s0) / (steps - s0)      # 0 at the first decayed step, < 1 at the last
    if decay == "linear":
        return 1.0 - progress
    if decay == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown learning-rate decay '{decay}'")


def set_lr_(optimizers: dict[str, torch.optim.Optimizer], factor: float) -> None:
    """Set every group's rate to ``factor`` × its base rate (kept as ``initial_lr``, as PyTorch's schedulers do)."""
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
