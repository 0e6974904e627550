"""``train.fast``'s convolution kernels: a transposed convolution of a 1x1 input as the matrix product it is,
and on CPUs the bf16 weight gradient of a large strided convolution on a small map as im2col matrix products.

Installed by ``fast.prepare_`` on the Conv2d / ConvTranspose2d layers of channels-last networks
(``convolutions_``), behind the gate of ``kernels/__init__.py``: the weight-gradient products call PyTorch's
private ``aten.convolution_backward`` and ``torch._C._will_engine_execute_node``.
"""
from __future__ import annotations

import threading
import types

import torch
import torch.nn.functional as F
from torch import nn

from .fused_mlp import bf16_autocast_on_cpu


def _conv_transpose_of_a_point(self: nn.ConvTranspose2d, x: torch.Tensor) -> torch.Tensor:
    """A transposed convolution of a 1x1 input (a DCGAN generator's first layer: z -> (C, k, k)) computed as
    the matrix product it is — the same arithmetic, but oneDNN's bf16 transposed convolution of a 1x1 input
    ran at 47 GFLOP/s, the product at 301 (benchmarks/fast_parts.py). The weight is channels-last,
    (C_in, k, k, C_out) in memory, so the product needs no copy and comes out channels-last."""
    c_in, c_out, kh, kw = self.weight.shape
    y = (x.reshape(x.shape[0], c_in) @ self.weight.permute(0, 2, 3, 1).reshape(c_in, kh * kw * c_out))
    y = y.view(x.shape[0], kh, kw, c_out).permute(0, 3, 1, 2)
    return y if self.bias is None else y + self.bias.to(y.dtype).view(1, c_out, 1, 1)   # bf16 under autocast, as the layer


# Which bf16 convolution weight gradients train.fast computes as matrix products on a CPU: strided convolutions
# with a weight of PRODUCT_MIN_WEIGHT elements or more whose output map (a transposed one's input map) has at most
# PRODUCT_MAX_MAP positions. There oneDNN's weight gradient ran 1.3-3.3x slower than the products; on larger maps,
# smaller weights or stride 1 it was as fast or faster (benchmarks/fast_parts.py prints cases on both sides).
PRODUCT_MIN_WEIGHT = 2 ** 17
PRODUCT_MAX_MAP = 64


class _Scratch(threading.local):
    """Buffers the weight-gradient products reuse from one backward pass to the next, per thread. Fresh
    memory for them cost more than the copy into it: glibc hands large freed blocks back to the kernel,
    and touching them again page-faults (several us per 4 KiB page on this machine: a 6 MB windows
    tensor took 10 ms when fresh, 1.5 ms when reused)."""

    def __init__(self) -> None:
        self.buffers: dict[tuple, torch.Tensor] = {}

    def get(self, key: tuple, shape: tuple, like: torch.Tensor) -> torch.Tensor:
        key = (*key, shape, like.dtype, like.device)
        if key not in self.buffers:
            if len(self.buffers) >= 16:   # shapes come and go (a last short batch): keep the newest
                self.buffers.pop(next(iter(self.buffers)))
            self.buffers[key] = torch.zeros(shape, dtype=like.dtype, device=like.device)
        return self.buffers[key]


_SCRATCH = _Scratch()


def _windows(x: torch.Tensor, kernel: tuple, stride: tuple, padding: tuple, out: tuple) -> torch.Tensor:
    """im2col of a channels-last (B, C, H, W) tensor: the kernel window of every output position, one row
    each, (B * out_h * out_w, kh * kw * C) in (kh, kw, c) order — a view of the zero-padded tensor copied
    once, C contiguous elements at a time. Outside autograd (a plain backward pass) the padded tensor and
    the windows live in reused buffers (``_Scratch``; the padded one's border stays zero), valid until the
    next call with the same shapes; under a recorded backward (double backward) they are new tensors."""
    b, c, h, w = x.shape
    rows_shape = (b * out[0] * out[1], kernel[0] * kernel[1] * c)
    recorded = torch.is_grad_enabled()
    if recorded:
        xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, padding[1], padding[1], padding[0], padding[0]))
    else:
        xp = _SCRATCH.get(("padded", h, w, padding), (b, h + 2 * padding[0], w + 2 * padding[1], c), x)
        xp[:, padding[0]:padding[0] + h, padding[1]:padding[1] + w].copy_(x.permute(0, 2, 3, 1))
    sb, sh, sw, sc = xp.stride()
    rows = xp.as_strided((b, *out, *kernel, c), (sb, stride[0] * sh, stride[1] * sw, sh, sw, sc))
    if recorded:
        return rows.reshape(rows_shape)
    windows = _SCRATCH.get(("windows",), rows_shape, x)
    windows.view(rows.shape).copy_(rows)
    return windows


WINDOWS_CHUNK = 2 ** 23   # elements of im2col windows per matrix product (16 MB in bf16): larger ones ran slower


def _conv_weight_grad(x: torch.Tensor, grad_y: torch.Tensor, kernel: tuple, stride: tuple, padding: tuple) -> torch.Tensor:
    """d loss / d W of y = conv2d(x, W) (no dilation, one group) as matrix products: grad_y as
    (C_out, B*L) times x's windows (B*L, kh*kw*C_in), over slices of the batch whose windows have at most
    WINDOWS_CHUNK elements: each slice's product in x's dtype (bf16 rounds it once, as one product would),
    the slices summed in float32 or wider; (C_out, C_in, kh, kw), channels-last, in x's dtype."""
    b, c_out, h, w = grad_y.shape
    per_sample = h * w * kernel[0] * kernel[1] * x.shape[1]
    n = max(1, WINDOWS_CHUNK // per_sample)
    grad = None
    for i in range(0, b, n):
        g = grad_y[i:i + n].permute(0, 2, 3, 1).reshape(-1, c_out)
        part = g.t() @ _windows(x[i:i + n], kernel, stride, padding, (h, w))
        grad = part if i == 0 else grad.to(torch.promote_types(part.dtype, torch.float32)) + part
    return grad.to(x.dtype).view(c_out, *kernel, x.shape[1]).permute(0, 3, 1, 2)


def _engine_uses(node) -> bool:
    """Will the running backward pass execute this node (does anyone want the gradient that goes to it)?
    The engine cannot tell for a leaf under ``autograd.grad``; then yes. (fast's weights reach the
    convolution as bf16 casts, which are not leaves.)"""
    try:
        return torch._C._will_engine_execute_node(node)   # what torch.utils.checkpoint asks too
    except RuntimeError:
        return True


class _WeightGradAsProduct(torch.autograd.Function):
    """A 2-D convolution (or transposed convolution) whose weight gradient is computed as an im2col matrix
    product. oneDNN's bf16 weight gradient of the larger DCGAN layers ran at a quarter of its forward's
    speed (3.9-4.3 ms against 0.9-1.0 ms for 128 -> 256 channels on 8x8 maps, batch 64;
    benchmarks/fast_parts.py); the products take 1.2-1.4 ms. The input gradient is PyTorch's, laid out
    channels-last. The same sums in another order (and, past WINDOWS_CHUNK, one bf16 rounding per slice of
    the batch); double backward (gradient penalties) works, every op of ``backward`` being differentiable.
    A weight gradient the engine will not use (a penalty's ``autograd.grad`` with respect to the input) is
    not computed."""

    @staticmethod
    def forward(ctx, x, weight, bias, transposed: bool, stride: tuple, padding: tuple):
        ctx.save_for_backward(x, weight)
        ctx.geometry = transposed, stride, padding
        return torch.convolution(x, weight, bias, stride, padding, (1, 1), transposed, (0, 0), 1)

    @staticmethod
    def backward(ctx, grad_y):
        x, weight = ctx.saved_tensors
        transposed, stride, padding = ctx.geometry
        grad_y = grad_y.contiguous(memory_format=torch.channels_last)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(grad_y, x, weight, None, stride, padding, (1, 1), transposed,
                                                         (0, 0), 1, (True, False, False))[0]
            grad_x = grad_x.contiguous(memory_format=torch.channels_last)
        if ctx.needs_input_grad[1] and _engine_uses(ctx.next_functions[1][0]):
            kernel = tuple(weight.shape[2:])
            # a transposed convolution's weight gradient is the forward one's with x and y swapped
            grad_w = (_conv_weight_grad(grad_y, x, kernel, stride, padding) if transposed
                      else _conv_weight_grad(x, grad_y, kernel, stride, padding))
        if ctx.needs_input_grad[2]:
            grad_b = grad_y.sum((0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None


def _product_pays(self: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor, transposed: bool) -> bool:
    """Under bf16 autocast on a CPU: is this a strided layer with a large weight on a small map
    (PRODUCT_MIN_WEIGHT, PRODUCT_MAX_MAP), whose weight gradient train.fast computes as matrix products?"""
    if (not bf16_autocast_on_cpu(x) or not torch.is_grad_enabled() or not self.weight.requires_grad
            or min(self.stride) < 2 or self.weight.numel() < PRODUCT_MIN_WEIGHT):
        return False   # nothing to gain without a weight gradient (sampling, a frozen D in the G step)
    if transposed:   # the forward convolution it is the gradient of maps y to x
        return x.shape[-2] * x.shape[-1] <= PRODUCT_MAX_MAP
    h, w = ((n + 2 * p - k) // s + 1 for n, p, k, s in zip(x.shape[-2:], self.padding, self.kernel_size, self.stride))
    return h * w <= PRODUCT_MAX_MAP


def _convolution(self: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor, output_size=None) -> torch.Tensor:
    """The forward of a Conv2d / ConvTranspose2d in a channels-last net under train.fast: a transposed
    convolution of a 1x1 input as a matrix product; under bf16 autocast on a CPU, a large strided
    convolution on a small map with its weight gradient as matrix products (``_WeightGradAsProduct``;
    PRODUCT_MIN_WEIGHT, PRODUCT_MAX_MAP); anything else PyTorch's layer."""
    transposed = isinstance(self, nn.ConvTranspose2d)
    plain = (self.dilation == (1, 1) and self.groups == 1 and self.padding_mode == "zeros"
             and isinstance(self.padding, tuple) and output_size is None and x.dim() == 4
             and (not transposed or self.output_padding == (0, 0)))
    if not plain:
        return type(self).forward(self, x, output_size) if transposed else type(self).forward(self, x)
    if transposed and self.stride == (1, 1) and self.padding == (0, 0) and x.shape[-2:] == (1, 1):
        return _conv_transpose_of_a_point(self, x)
    if _product_pays(self, x, transposed):
        bias = None if self.bias is None else self.bias.to(torch.bfloat16)
        return _WeightGradAsProduct.apply(x.to(torch.bfloat16), self.weight.to(torch.bfloat16), bias,
                                          transposed, self.stride, self.padding)
    return type(self).forward(self, x)


def convolutions_(net: nn.Module) -> bool:
    """Every Conv2d / ConvTranspose2d of a channels-last ``net`` runs ``_convolution`` as its forward, in place
    (same parameters; an EMA copy's forward belongs to the copy). Whether ``net`` had any."""
    layers = [m for m in net.modules() if type(m) in (nn.Conv2d, nn.ConvTranspose2d)]
    for m in layers:
        m.forward = types.MethodType(_convolution, m)
    return bool(layers)
