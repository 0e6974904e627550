"""The NaN / Inf guard: a training step whose gradients or logged losses are not finite is stopped before
any optimiser applies it, and named (which loss or network, which step).

Gradients are checked by a step pre-hook on every optimiser (registered after torchrun's gradient
averaging, so every process sees the same verdict): one fused norm per optimiser step, a host sync, and
only on failure a look at which tensors are at fault. The values recipes ``report()`` are checked once at
the end of each step. What follows a detection — stop, or roll back to the last checkpoint — is the loop's.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import NonFiniteError
from .stats import Collector


def _named(values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


class FiniteGuard:
    """Raises ``NonFiniteError`` from ``optimizer.step()`` (before the update) on a non-finite gradient, and
    from ``check_losses`` on a non-finite reported value. ``step()`` gives the 0-based step being computed."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], stats: Collector,
                 step: Callable[[], int], any_rank: Callable[[bool], bool] = bool) -> None:
        self.stats, self.step, self.any_rank = stats, step, any_rank
        self.handles = [opt.register_step_pre_hook(self._pre_step(name)) for name, opt in optimizers.items()]

    def _pre_step(self, name: str):
        def hook(opt: torch.optim.Optimizer, args, kwargs) -> None:
            grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
            if not grads or bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all()):
                return
            bad = sum(not bool(torch.isfinite(g).all()) for g in grads)   # a finite gradient whose norm overflows: 0
            what = f"{bad} of {len(grads)} gradient tensors" if bad else "the gradient norm overflows"
            raise NonFiniteError(f"non-finite gradient of {name} ({what}) in step {self.step() + 1}"
                                 + self._losses())
        return hook

    def _losses(self) -> str:
        bad = _named(self.stats.non_finite())
        return f"; non-finite: {bad}" if bad else ""

    def check_losses(self) -> None:
        """At the end of a step: are all values reported since the last flush finite (on every process)?"""
        bad = self.stats.non_finite()
        if self.any_rank(bool(bad)):
            raise NonFiniteError(f"non-finite {_named(bad) or 'a value on another process'} in step {self.step()}")

    def close(self) -> None:
        for h in self.handles:
            h.remove()

    def __enter__(self) -> "FiniteGuard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
