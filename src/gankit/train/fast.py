"""``train.fast``: the same training, run faster [issue 7]. Nothing in a recipe changes; the loop

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
* computes a transposed convolution of a 1x1 input (a DCGAN generator's first layer) as the matrix
  product it is, and on CPUs the bf16 weight gradient of a large strided convolution on a small map (a
  DCGAN's inner layers) as im2col matrix products, where oneDNN's ran at a quarter of its forward's speed;
* on CPUs runs each MLP (a net whose ``stack()`` is plain Linear / activation layers) as one fused autograd
  node inside autocast (``fused_mlp``: oneDNN's fused linear + activation in bf16, a hand-written backward
  that reads fewer tensors and computes only the gradients asked for);
* uses fused Adam/AdamW (one kernel over all tensors of an optimiser instead of a loop over them);
* for low-dimensional point data (the toy mixtures) keeps the first and the last layer of every network
  in float32: bfloat16's 8-bit mantissa rounds a coordinate near 4 to steps of 0.016, a third of a grid25
  mode's standard deviation, which G's output and D's input cannot afford.

Statistics stay on the device until a log line (no per-step host synchronisation), as without fast.
``docs/BENCHMARKS.md`` shows speed and sample quality with and without it.
"""
from __future__ import annotations

import contextlib
import threading
import types

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from . import fused_mlp


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
    if (not fused_mlp.bf16_autocast_on_cpu(x) or not torch.is_grad_enabled() or not self.weight.requires_grad
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


def channels_last_(net: nn.Module) -> bool:
    """An image network (one with 4-D weights) to channels-last memory order, in place; whether it was one."""
    image = any(p.dim() == 4 for p in net.parameters())
    if image:
        net.to(memory_format=torch.channels_last)
    return image


def prepare_(nets: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], points: bool = False,
             fuse: bool = False) -> None:
    """Channels-last image networks (their input gradients too; a 1x1-input transposed convolution as a
    matrix product; large strided convolutions' bf16 weight gradients as matrix products — not in
    spectral-normalised layers, whose parametrised weight must be read once per forward), fused optimisers,
    (``points``: bf16 point data) float32 ends, and (``fuse``: bf16 on a CPU) MLPs as one fused stack
    (``fused_mlp``; with float32 ends for points); in place (same parameters, same state keys)."""
    for net in nets.values():
        if fuse:
            fused_mlp.fuse_(net, precise_ends=points)
        if channels_last_(net):
            for m in net.modules():
                if isinstance(m, (nn.Flatten, *CONVOLUTIONS)):
                    m.register_forward_pre_hook(_input_grad_channels_last)
                if type(m) in (nn.Conv2d, nn.ConvTranspose2d):
                    m.forward = types.MethodType(_convolution, m)
        if points and any(True for _ in net.parameters()):
            float32_ends_(net)
    for opt in optimizers.values():
        if isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)):
            for group in opt.param_groups:
                group["foreach"], group["fused"] = False, True
            opt.defaults.update(foreach=False, fused=True)


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
