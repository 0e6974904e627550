"""``train.fast``: the same training, run faster. Nothing in a recipe changes; the loop

* runs every phase under bf16 autocast (``torch.autocast``; CPUs with AVX-512 BF16 or AMX, CUDA GPUs with
  bf16): matrix products and convolutions in bfloat16, losses, norms and reductions in float32 (autocast's
  op lists); weights, gradients and optimiser state stay float32, so no loss scaling is needed — where
  bf16 pays (``bf16_pays``): runs with convolutional networks, and fully-connected ones at batches of
  BF16_MIN_BATCH or more. Below that a fully-connected step is bound by per-operator overhead, which the
  casts only add to (``benchmarks/fast_parts.py``: bf16 made the fused-Adam MLP step 0.90-0.96x as fast
  at batch 64-256, 1.9x at 1,024);
* keeps image networks and batches in channels-last memory order (what oneDNN and cuDNN convolutions
  prefer), gradients included: the backward of a convolution or a flatten hands its input gradient back in
  NCHW order on CPUs, so it is laid out again before the element-wise backwards below it mix the two;
* uses fused Adam/AdamW (one kernel over all tensors of an optimiser instead of a loop over them);
* for low-dimensional point data (the toy mixtures) keeps the first and the last layer of every network
  in float32: bfloat16's 8-bit mantissa rounds a coordinate near 4 to steps of 0.016, a third of a grid25
  mode's standard deviation, which G's output and D's input cannot afford.

This module is that portable part, in public PyTorch APIs. On the PyTorch versions ``kernels.TESTED_TORCH``
admits, when the private operators they call exist, ``prepare_`` adds the kernels of ``training/kernels/``:

* a transposed convolution of a 1x1 input (a DCGAN generator's first layer) as the matrix product it is,
  and on CPUs the bf16 weight gradient of a large strided convolution on a small map (a DCGAN's inner
  layers) as im2col matrix products, where oneDNN's ran at a quarter of its forward's speed
  (``kernels/conv_products.py``);
* on CPUs each MLP (a ``nets.layers.LayerStack`` of plain Linear / activation layers) as one fused autograd
  node inside autocast (``kernels/fused_mlp.py``: oneDNN's fused linear + activation in bf16, a
  hand-written backward that reads fewer tensors and computes only the gradients asked for).

Elsewhere it keeps the portable path and says so in the one line it returns. Statistics stay on the device
until a log line (no per-step host synchronisation), as without fast. ``docs/BENCHMARKS.md`` shows speed and
sample quality with and without it.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..errors import ConfigError
from . import kernels


def check_device(device: torch.device) -> None:
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("train.fast: this GPU has no bfloat16; set train.fast=false")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"train.fast: bf16 autocast is supported on cpu and cuda, not {device.type}; set train.fast=false")


BF16_MIN_BATCH = 512   # fully-connected networks: the batch from which bf16 matrix products pay
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def bf16_pays(nets: dict[str, nn.Module], batch_size: int) -> bool:
    """Does bf16 autocast speed this run up: any convolutional network, or a batch of BF16_MIN_BATCH or more."""
    conv = any(isinstance(m, CONVOLUTIONS) for net in nets.values() for m in net.modules())
    return conv or batch_size >= BF16_MIN_BATCH


def autocast(device: torch.device, enabled: bool):
    """The context each phase runs in: bf16 autocast when ``enabled``."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class _Float32Layer:
    """Forward hooks that run one layer outside autocast on float32 inputs (deep copies, e.g. EMA
    shadows, keep them: the hooks hold no reference to the module)."""

    @staticmethod
    def before(module: nn.Module, args: tuple):
        ctx = torch.autocast(device_type=next(module.parameters()).device.type, enabled=False)
        ctx.__enter__()
        module._gankit_fp32 = ctx
        return tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)

    @staticmethod
    def after(module: nn.Module, args: tuple, output):
        module.__dict__.pop("_gankit_fp32").__exit__(None, None, None)


def float32_layer_(layer: nn.Module) -> None:
    """Run ``layer`` in float32 under autocast, on float32 inputs."""
    layer.register_forward_pre_hook(_Float32Layer.before)
    layer.register_forward_hook(_Float32Layer.after, always_call=True)


def float32_ends_(net: nn.Module) -> None:
    """Run the first and the last Linear / convolution of ``net`` in float32 under autocast."""
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, *CONVOLUTIONS))]
    for layer in {id(m): m for m in layers[:1] + layers[-1:]}.values():
        float32_layer_(layer)


def _channels_last_grad(grad: torch.Tensor | None) -> torch.Tensor | None:
    return None if grad is None else grad.contiguous(memory_format=torch.channels_last)   # None: a double backward's


def _input_grad_channels_last(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook of convolutions and flattens in channels-last nets: the gradient that comes back out
    of the module is laid out channels-last like its input. Without it it comes back in NCHW order (oneDNN's
    convolution backward on CPU returns grad_input in NCHW; a flatten's view backward does too), and every
    element-wise backward below it (LeakyReLU, ReLU, BatchNorm) then mixes the two layouts and takes
    TensorIterator's strided slow path — LeakyReLU's backward ran 19x slower (``benchmarks/fast_parts.py``)."""
    x = args[0] if args else None
    if (isinstance(x, torch.Tensor) and x.requires_grad and x.dim() == 4 and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)):
        x.register_hook(_channels_last_grad)


def channels_last_(net: nn.Module) -> bool:
    """An image network (one with 4-D weights) to channels-last memory order, in place; whether it was one."""
    image = any(p.dim() == 4 for p in net.parameters())
    if image:
        net.to(memory_format=torch.channels_last)
    return image


def prepare_(nets: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], points: bool = False,
             fuse: bool = False) -> list[str]:
    """Channels-last image networks (their input gradients too), fused optimisers, (``points``: bf16 point
    data) float32 ends; and, where ``kernels.unavailable()`` finds nothing against it, the CPU kernels: in
    channels-last nets a 1x1-input transposed convolution as a matrix product and large strided
    convolutions' bf16 weight gradients as matrix products (``kernels.convolutions_``; not in
    spectral-normalised layers, whose parametrised weight must be read once per forward), and (``fuse``: bf16
    on a CPU) MLPs as one fused stack (``kernels.fuse_``; with float32 ends for points). In place (same
    parameters, same state keys). Returns the notes for the run's log: one line when the kernels are asked
    for (``fuse``, or a channels-last net with 2-D convolutions) but may not run on this PyTorch, else none."""
    blocked = kernels.unavailable()
    wanted = False
    for net in nets.values():
        if fuse:
            wanted = True
            if blocked is None:
                kernels.fuse_(net, precise_ends=points)
        if channels_last_(net):
            for m in net.modules():
                if isinstance(m, (nn.Flatten, *CONVOLUTIONS)):
                    m.register_forward_pre_hook(_input_grad_channels_last)
            wanted = wanted or any(type(m) in (nn.Conv2d, nn.ConvTranspose2d) for m in net.modules())
            if blocked is None:
                kernels.convolutions_(net)
        if points and any(True for _ in net.parameters()):
            float32_ends_(net)
    for opt in optimizers.values():
        if isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)):
            for group in opt.param_groups:
                group["foreach"], group["fused"] = False, True
            opt.defaults.update(foreach=False, fused=True)
    return [f"train.fast: {blocked}: using the portable bf16 path"] if blocked and wanted else []


def foreach_(optimizers: dict[str, torch.optim.Optimizer]) -> None:
    """The multi-tensor (foreach) implementation for every optimiser that has one, on any device (PyTorch
    picks it by itself only when every parameter is on a GPU): one C++ loop over an optimiser's tensors
    instead of a Python loop. Same arithmetic — the parameters are bitwise those of the per-tensor loop
    (tests/test_train.py) — in less time when the networks are small (docs/BENCHMARKS.md)."""
    for opt in optimizers.values():
        if "foreach" in opt.defaults and not opt.defaults.get("fused"):
            for group in opt.param_groups:
                group["foreach"] = True
            opt.defaults["foreach"] = True


def batch_(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Image tensors of a batch in channels-last order."""
    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in batch.items()}
