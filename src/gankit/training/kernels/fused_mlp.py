"""``train.fast`` for fully-connected networks on a CPU: a whole Linear / activation stack as one autograd
node, for a ``nets.layers.LayerStack`` (the MLPs) whose ``layers()`` are plain Linear / activation layers.

Under bf16 autocast an MLP step is bound by memory traffic and per-operator work, not by its matrix products
(``benchmarks/fast_parts.py``; this machine reads a cold 0.5 MB tensor at ~9 GB/s): every Linear casts its
float32 input to bf16 and back, the activation is a separate pass over the batch, and autograd records five
nodes per layer. Here the forward of a stack ``[Linear, activation] x n`` is one ``torch.autograd.Function``:

* hidden layers in bf16 through oneDNN's fused linear + activation (one pass; ``mkldnn._linear_pointwise``),
  their outputs kept in bf16 for the next layer and for the backward (ReLU's, LeakyReLU's and tanh's
  derivatives are read from the output, so no pre-activation is stored);
* ``precise`` end layers (point data: G's input and output layer, D's input layer and head) in float32, as
  ``fast.float32_ends_`` keeps them under autocast: bf16 would round a coordinate near 4 to steps of 0.016;
* the backward by hand in bf16 products (weight gradients ``g^T h``, input gradients ``g W``), bias
  gradients as sums, and only what the engine asks for (``needs_input_grad``: a frozen D in the G step
  gets no weight gradients, a D step computes no gradient for its input).

Only the first derivative is written by hand: under ``create_graph`` (gradient penalties) the backward
recomputes the stack with differentiable PyTorch operators from the saved inputs and differentiates that,
so double backward is exact. Outside bf16 autocast on a CPU (sampling, evaluation, EMA copies, CUDA) the
network runs its own forward, ``LayerStack.forward`` on the same ``layers()``: one definition of the layers for
both paths. Behind the gate of ``kernels/__init__.py`` (``mkldnn._linear_pointwise`` and the aten activation
backwards are private operators).
"""
from __future__ import annotations

import functools
import types

import torch
import torch.nn.functional as F
from torch import nn

from ...nets.layers import LayerStack

BF16 = torch.bfloat16
ACTIVATIONS = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.Tanh: "tanh"}


@functools.cache
def _fused_linear() -> bool:
    """Has this PyTorch oneDNN's fused bf16 linear + activation? (Asked at the first fused forward, not at
    import: it starts oneDNN.)"""
    try:
        x = torch.zeros(2, 2, dtype=BF16)
        torch.ops.mkldnn._linear_pointwise(x, x, None, "relu", [], "")
        return True
    except (AttributeError, RuntimeError):   # a build without oneDNN, or without its bf16 kernels
        return False


def _activate(h: torch.Tensor, act: str, slope: float, inplace: bool = True) -> torch.Tensor:
    if act == "relu":
        return F.relu(h, inplace=inplace)
    if act == "leaky_relu":
        return F.leaky_relu(h, slope, inplace=inplace)
    if act == "tanh":
        return h.tanh_() if inplace else torch.tanh(h)
    return h


def _activation_backward(g: torch.Tensor, y: torch.Tensor, act: str, slope: float) -> torch.Tensor:
    """d loss / d pre-activation from d loss / d y and the output y (each of these is monotone)."""
    if act == "relu":
        return torch.ops.aten.threshold_backward(g, y, 0)
    if act == "leaky_relu":
        return torch.ops.aten.leaky_relu_backward(g, y, slope, True)
    if act == "tanh":
        return torch.ops.aten.tanh_backward(g, y)
    return g


def _layer(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, act: str, slope: float, precise: bool,
           last: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One Linear + activation of the fused forward, and the bf16 weight its backward multiplies by. A
    ``precise`` layer computes in float32 (its output in bf16 unless ``last``) and returns no bf16 weight:
    its backward splits the float32 one (``_precise_products``). Any other layer is bf16, one oneDNN pass."""
    if precise:
        y = _activate(torch.addmm(b, h.float(), w.t()), act, slope)
        return (y if last else y.to(BF16)), None
    w16, b16 = w.detach().to(BF16), b.to(BF16)
    if _fused_linear():
        return torch.ops.mkldnn._linear_pointwise(h.to(BF16), w16, b16, act, [slope] if act == "leaky_relu" else [],
                                                  ""), w16
    return _activate(torch.addmm(b16, h.to(BF16), w16.t()), act, slope), w16


def _split(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[hi, lo] along ``dim`` in bf16 with hi + lo = t to ~16 significant bits (float32 products from bf16 ones)."""
    hi = t.to(BF16)
    return torch.cat([hi, (t - hi).to(BF16)], dim)   # t - hi is computed in float32 (type promotion)


def _halves(p: torch.Tensor, dim: int) -> torch.Tensor:
    """The two halves of ``p`` along ``dim`` summed in float32."""
    a, b = p.chunk(2, dim)
    return a.float() + b


def _precise_products(g: torch.Tensor, x: torch.Tensor, w: torch.Tensor, want_w: bool, want_x: bool):
    """Weight and input gradient of a float32 end layer y = x W^T + b from its pre-activation gradient g: bf16
    products with every float32 operand split in bf16 hi + lo parts, so no (N, width) tensor is cast to
    float32. The sums over a batch can cancel to a few per cent of their terms, which a plain bf16 rounding of
    the coordinates would turn into errors of that size; split, the error is the bf16 rounding of each
    product's result (~0.4% of it), not of its terms."""
    w = w.detach()
    if g.dtype == torch.float32 and x.dtype == torch.float32:   # a one-layer stack: small, all float32
        return (g.t() @ x if want_w else None), (g @ w if want_x else None)
    if g.dtype == torch.float32:   # the output layer: float32 gradient (N, out), bf16 hidden input
        gs = _split(g, 1)
        g_w = _halves(gs.t() @ x.to(BF16), 0) if want_w else None
        g_x = None
        if want_x:   # g W = g_hi W_hi + g_hi W_lo + g_lo W_hi, one product with 3 * out terms
            (g_hi, g_lo), (w_hi, w_lo) = gs.chunk(2, 1), _split(w, 0).chunk(2, 0)
            g_x = torch.cat([g_hi, g_hi, g_lo], 1) @ torch.cat([w_hi, w_lo, w_hi], 0)
        return g_w, g_x
    # the input layer: bf16 gradient, float32 input (coordinates)
    return (_halves(g.t() @ _split(x, 1), 1) if want_w else None), (_halves(g @ _split(w, 1), 1) if want_x else None)


def _reference(x: torch.Tensor, plan: tuple, params: tuple) -> torch.Tensor:
    """The same stack with differentiable operators (for a double backward)."""
    h = x
    for (act, slope, precise), w, b in zip(plan, params[0::2], params[1::2]):
        dtype = torch.float32 if precise else BF16
        h = _activate(F.linear(h.to(dtype), w.to(dtype), b.to(dtype)), act, slope, inplace=False)
    return h


class _Stack(torch.autograd.Function):
    """y = stack(x); ``plan`` is one (activation, LeakyReLU slope, precise) per layer, ``params`` W0, b0, W1, b1, ..."""

    @staticmethod
    def forward(ctx, x, plan, *params):
        hs, ctx.w16 = [x], []
        for i, (act, slope, precise) in enumerate(plan):
            y, w16 = _layer(hs[-1], params[2 * i], params[2 * i + 1], act, slope, precise, i == len(plan) - 1)
            hs.append(y)
            ctx.w16.append(w16)
        ctx.plan = plan
        ctx.save_for_backward(*params, *hs)
        return hs[-1]

    @staticmethod
    def backward(ctx, g):
        n = len(ctx.plan)
        saved = ctx.saved_tensors
        params, hs = saved[:2 * n], saved[2 * n:]
        if torch.is_grad_enabled():   # create_graph: differentiate the recomputed stack instead
            return _Stack._graph_backward(ctx, g, params, hs[0])
        with torch.autocast(hs[0].device.type, enabled=False):
            grads: list[torch.Tensor | None] = [None] * (2 * n)
            for i in reversed(range(n)):
                act, slope, precise = ctx.plan[i]
                want_w, want_b = ctx.needs_input_grad[2 + 2 * i], ctx.needs_input_grad[3 + 2 * i]
                want_x = i > 0 or ctx.needs_input_grad[0]
                g = _activation_backward(g.to(hs[i + 1].dtype), hs[i + 1], act, slope)
                if precise:
                    grads[2 * i], g_x = _precise_products(g, hs[i], params[2 * i], want_w, want_x)
                else:
                    g = g.to(BF16)
                    grads[2 * i] = g.t() @ hs[i].to(BF16) if want_w else None
                    g_x = g @ ctx.w16[i] if want_x else None
                grads[2 * i + 1] = g.sum(0) if want_b else None
                g = g_x
            grad_x = g.to(hs[0].dtype) if ctx.needs_input_grad[0] else None
        return (grad_x, None, *grads)

    @staticmethod
    def _graph_backward(ctx, g, params, x):
        inputs = [x.detach().requires_grad_(ctx.needs_input_grad[0])]
        inputs += [p if p.requires_grad else p.detach() for p in params]
        wanted = [i for i, t in enumerate(inputs) if t.requires_grad]
        with torch.enable_grad(), torch.autocast(x.device.type, enabled=False):
            y = _reference(inputs[0], ctx.plan, tuple(inputs[1:]))
            got = torch.autograd.grad(y, [inputs[i] for i in wanted], g, create_graph=True, allow_unused=True)
        grads: list[torch.Tensor | None] = [None] * len(inputs)
        for i, gi in zip(wanted, got):
            grads[i] = gi
        return (grads[0], None, *grads[1:])


def plan_of(layers: list[nn.Module], precise_ends: bool) -> tuple | None:
    """The fused plan of ``[Linear, activation?] x n`` (a Flatten may lead), or None when ``layers`` is anything else."""
    plan = []
    for m in layers:
        if isinstance(m, nn.Flatten) and not plan:
            continue
        if isinstance(m, nn.Linear) and m.bias is not None:
            plan.append(["none", 0.0, False])
        elif type(m) in ACTIVATIONS and plan and plan[-1][0] == "none":
            plan[-1][0] = ACTIVATIONS[type(m)]
            plan[-1][1] = float(getattr(m, "negative_slope", 0.0))
        else:
            return None
    if not plan:
        return None
    if precise_ends:
        plan[0][2] = plan[-1][2] = True
    return tuple(tuple(p) for p in plan)


def bf16_autocast_on_cpu(x: torch.Tensor) -> bool:
    """Is ``x`` on a CPU inside bf16 autocast (a training phase of train.fast)?"""
    return (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == BF16)


def _fused_forward(self: LayerStack, x: torch.Tensor) -> torch.Tensor:
    if not bf16_autocast_on_cpu(x):
        return LayerStack.forward(self, x)
    params = tuple(t for m in self._fused_linears for t in (m.weight, m.bias))   # a parametrised weight is read once
    with torch.autocast("cpu", enabled=False):
        y = _Stack.apply(x.reshape(x.shape[0], -1), self._fused_plan, *params)
    return y.reshape(x.shape[0], *self.out_shape)


def fuse_(net: nn.Module, precise_ends: bool) -> bool:
    """Run ``net``'s forward as one fused stack under bf16 autocast on a CPU, when it is a ``LayerStack`` whose
    forward is ``LayerStack.forward`` itself (a subclass that overrides it is not fused) and whose ``layers()``
    are plain Linear / activation layers; in place (same parameters). Whether it did."""
    if not isinstance(net, LayerStack) or type(net).forward is not LayerStack.forward:
        return False
    layers = net.layers()
    plan = plan_of(layers, precise_ends)
    if plan is None:
        return False
    net._fused_plan = plan
    net._fused_linears = [m for m in layers if isinstance(m, nn.Linear)]
    net.forward = types.MethodType(_fused_forward, net)
    return True
