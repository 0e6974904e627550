"""``train.fast``: the same training, run faster [issue 7]. Nothing in a recipe changes; the loop

* runs every phase under bf16 autocast (``torch.autocast``; CPUs with AVX-512 BF16 or AMX, CUDA GPUs with
  bf16): matrix products and convolutions in bfloat16, losses, norms and reductions in float32 (autocast's
  op lists); weights, gradients and optimiser state stay float32, so no loss scaling is needed;
* keeps image networks and batches in channels-last memory order (what oneDNN and cuDNN convolutions
  prefer);
* uses fused Adam/AdamW (one kernel over all tensors of an optimiser instead of a loop over them).

Statistics stay on the device until a log line (no per-step host synchronisation), as without fast.
``docs/BENCHMARKS.md`` shows speed and sample quality with and without it.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..errors import ConfigError


def check_device(device: torch.device) -> None:
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.fast: this GPU has no bfloat16; set train.fast=false")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"train.fast: bf16 autocast is supported on cpu and cuda, not {device.type}; set train.fast=false")


def autocast(device: torch.device, enabled: bool):
    """The context each phase runs in: bf16 autocast when ``enabled``."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def prepare_(nets: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> None:
    """Channels-last image networks and fused optimisers, in place (same parameters, same state keys)."""
    for net in nets.values():
        if any(p.dim() == 4 for p in net.parameters()):
            net.to(memory_format=torch.channels_last)
    for opt in optimizers.values():
        if isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)):
            for group in opt.param_groups:
                group["foreach"], group["fused"] = False, True
            opt.defaults.update(foreach=False, fused=True)


def batch_(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Image tensors of a batch in channels-last order."""
    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}
