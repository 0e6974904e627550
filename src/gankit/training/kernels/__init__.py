"""``train.fast``'s CPU kernels, and the gate that decides whether this PyTorch may run them.

* ``fused_mlp.py``: an MLP (a ``nets.layers.LayerStack`` of plain Linear / activation layers) as one fused
  autograd node in bf16 (oneDNN's fused linear + activation, a hand-written backward);
* ``conv_products.py``: a transposed convolution of a 1x1 input as a matrix product, and the bf16 weight
  gradient of large strided convolutions on small maps as im2col matrix products.

They call private PyTorch operators (``PRIVATE_OPERATORS``), whose names, signatures and numerics may change
from one release to the next without notice. ``unavailable()`` says why they may not be used here: a PyTorch
outside ``TESTED_TORCH`` or one without those operators; ``fast.prepare_`` then keeps the portable path (bf16
autocast, channels-last, fused optimisers) and reports it in one line.
"""
from __future__ import annotations

import re

import torch

from .conv_products import convolutions_
from .fused_mlp import fuse_

# The PyTorch versions the kernels may run on: 2.9 <= version < 2.15, as (major, minor) bounds, lower one
# included. Only torch 2.14.1 was exercised here (tests/ and benchmarks/); the lower bound is where these
# operators are believed to have today's signatures, not a version the kernels were run on.
TESTED_TORCH = ((2, 9), (2, 15))

# The private operators the kernels call, as attribute paths from ``torch``.
PRIVATE_OPERATORS = (
    "ops.mkldnn._linear_pointwise",     # fused_mlp: oneDNN's fused linear + activation
    "ops.aten.threshold_backward",      # fused_mlp: the activations' backwards, from their outputs
    "ops.aten.leaky_relu_backward",
    "ops.aten.tanh_backward",
    "ops.aten.convolution_backward",    # conv_products: the input gradient beside the weight-gradient products
    "_C._will_engine_execute_node",     # conv_products: is a weight gradient wanted at all
)


def _has(path: str) -> bool:
    obj = torch
    try:
        for name in path.split("."):
            obj = getattr(obj, name)
    except (AttributeError, RuntimeError):   # torch.ops raises AttributeError for an unknown operator
        return False
    return True


def _version(text: str) -> tuple[int, int] | None:
    m = re.match(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def unavailable() -> str | None:
    """Why the CPU kernels may not run on this PyTorch (one clause, for a log line), or None when they may."""
    text = str(torch.__version__)
    version = _version(text)
    (lo_major, lo_minor), (hi_major, hi_minor) = TESTED_TORCH
    if version is None or not TESTED_TORCH[0] <= version < TESTED_TORCH[1]:
        last = f"{hi_major}.{hi_minor - 1}" if hi_minor else f"{hi_major - 1}.x"
        return f"CPU kernels tested with torch {lo_major}.{lo_minor}–{last}, this is {text}"
    missing = [f"torch.{p}" for p in PRIVATE_OPERATORS if not _has(p)]
    if missing:
        return f"torch {text} lacks {', '.join(missing)}, which the CPU kernels call"
    return None


__all__ = ["PRIVATE_OPERATORS", "TESTED_TORCH", "convolutions_", "fuse_", "unavailable"]
