"""train.fast's fused MLP stack (training/kernels/fused_mlp.py) against PyTorch's own layers, and D on real and fake
in one forward (recipes/gan.py d_logits)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from gankit.assemble import resolve
from gankit.nets.layers import per_sample
from gankit.nets.mlp import MLPDiscriminator, MLPGenerator
from gankit.training import fast
from gankit.training.kernels import fused_mlp
from gankit.training.loop import Trainer

BF16 = torch.autocast("cpu", dtype=torch.bfloat16)


def nets(shape, precise):
    torch.manual_seed(0)
    G, D = MLPGenerator(2 if precise else 8, 64, 3, shape), MLPDiscriminator(shape, 64, 3, layer_norm=False)
    fused = copy.deepcopy(G), copy.deepcopy(D)
    assert all(fused_mlp.fuse_(n, precise_ends=precise) for n in fused)
    return (G, D), fused


def run(G, D, z, autocast=True):
    """D(G(z)) under bf16 autocast: output, and d(sum of logits) / d every parameter and / d z."""
    z = z.clone().requires_grad_(True)
    with BF16 if autocast else torch.autocast("cpu", enabled=False):
        x = G(z)
        logits = D(x)
    logits.float().sum().backward()
    grads = [p.grad.clone() for p in [*G.parameters(), *D.parameters()]]
    return x, logits, grads, z.grad


def rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.parametrize("shape,precise", [((2,), True), ((1, 4, 4), False)])
def test_fused_stack_computes_what_autocast_layers_compute(shape, precise):
    """Forward and every gradient of D(G(z)) through the fused stacks agree with PyTorch's layers under bf16
    autocast (with fast's float32 ends for points) to bf16 rounding, and are as close to float32 as those
    are; the fused stack is one autograd node per network."""
    (G, D), (fG, fD) = nets(shape, precise)
    if precise:
        fast.float32_ends_(G)
        fast.float32_ends_(D)
    z = torch.randn(256, G.z_dim)
    ours, theirs, fp32 = run(fG, fD, z), run(G, D, z), run(copy.deepcopy(G), copy.deepcopy(D), z, autocast=False)
    assert ours[0].dtype == theirs[0].dtype and ours[0].shape == (256, *shape)
    flat = [[r[0], r[1], *r[2], r[3]] for r in (ours, theirs, fp32)]   # x, logits, parameter gradients, z gradient
    for a, b, c in zip(*flat):
        assert rel(a, c) <= 1.3 * rel(b, c) + 0.003   # as close to float32 as autocast's layers
    assert max(rel(a, b) for a, b in zip(ours[2], theirs[2])) < 0.02
    with BF16:
        y = fD(fG(z.requires_grad_()))
    nodes, todo = [], [y.grad_fn]
    while todo:
        node = todo.pop()
        nodes.append(type(node).__name__)
        todo += [f for f, _ in node.next_functions if f is not None]
    assert nodes.count("_StackBackward") == 2 and not any("Addmm" in n or "Mm" in n for n in nodes)


def test_fused_stack_keeps_the_ends_of_point_networks_in_float32():
    """G's output coordinates come from a float32 layer: not on bfloat16's grid (steps of 0.016 near 4), and
    equal to float32 arithmetic on the bf16 hidden activations; D's head gives float32 logits."""
    (_, _), (fG, fD) = nets((2,), True)
    z = torch.randn(512, 2) * 3
    with BF16, torch.no_grad():
        x = fG(z)
        assert x.dtype == torch.float32 and fD(x).dtype == torch.float32
    assert (x != x.bfloat16().float()).float().mean() > 0.9
    h = fG.net[:-1]   # the hidden stack in fp32 on the same weights: the output layer adds no bf16 rounding
    with torch.no_grad():
        ref = fG.net[-1](h(z))
    assert rel(x, ref) < 0.01


def test_fused_stack_gives_only_the_gradients_asked_for():
    """A frozen D (the G step) gets no weight gradients but passes the input gradient; a D step on detached
    samples computes no input gradient."""
    (_, _), (fG, fD) = nets((2,), True)
    fD.requires_grad_(False)
    x = torch.randn(64, 2, requires_grad=True)
    with BF16:
        fD(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in fD.parameters())
    fD.requires_grad_(True)
    with BF16:
        fD(x.detach()).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in fD.parameters())


def test_fused_stack_double_backward_is_the_layers_double_backward():
    """A gradient penalty (create_graph) through the fused D has the parameter gradients of the same penalty
    through PyTorch's layers under autocast (the fused backward recomputes the stack with them)."""
    (_, D), (_, fD) = nets((2,), True)
    fast.float32_ends_(D)
    x = torch.randn(128, 2)
    grads = []
    for net in (fD, D):
        xi = x.clone().requires_grad_(True)
        with BF16:
            g, = torch.autograd.grad(net(xi).float().sum(), xi, create_graph=True)
            penalty = ((g.norm(dim=1) - 1) ** 2).mean()
        penalty.backward()
        grads.append([torch.zeros(1) if p.grad is None else p.grad.clone() for p in net.parameters()])
        assert penalty.item() > 0
    assert max(rel(a, b) for a, b in zip(*grads)) < 0.02


def test_fused_stack_only_runs_under_bf16_autocast_on_a_cpu():
    """Sampling and evaluation (no autocast) run the network's own forward, bit for bit; an EMA copy is fused
    too and its forward belongs to the copy."""
    (G, _), (fG, _) = nets((2,), True)
    z = torch.randn(32, 2)
    with torch.no_grad():
        assert torch.equal(fG(z), G(z))
    shadow = copy.deepcopy(fG)
    assert shadow.forward.__self__ is shadow and shadow._fused_linears[0] is shadow.net[0]
    with BF16:
        assert type(shadow(z.requires_grad_()).grad_fn.next_functions[0][0]).__name__ == "_StackBackward"


def test_nets_that_are_not_plain_stacks_stay_unfused():
    """Layer norm in D, batch norm in G (conditional BN), a net that is not a LayerStack, or a LayerStack that
    overrides forward (its layers() would no longer be what it computes) keep PyTorch's layers."""

    class Scaled(MLPGenerator):
        def forward(self, z):
            return 2 * super().forward(z)

    assert not fused_mlp.fuse_(MLPDiscriminator((2,), 16, 2, layer_norm=True), precise_ends=True)
    assert not fused_mlp.fuse_(MLPGenerator(2, 16, 2, (2,), batch_norm=True), precise_ends=True)
    assert not fused_mlp.fuse_(torch.nn.Linear(2, 2), precise_ends=True)
    assert not fused_mlp.fuse_(Scaled(2, 16, 2, (2,)), precise_ends=True)
    assert fused_mlp.fuse_(MLPGenerator(2, 16, 2, (2,)), precise_ends=True)
    assert fused_mlp.plan_of([torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.LeakyReLU(0.1), torch.nn.Linear(3, 1)],
                             precise_ends=False) == (("leaky_relu", 0.1, False), ("none", 0.0, False))


def test_fast_toy_run_fuses_its_mlps_and_trains():
    """grid25 (batch 1,024) under train.fast: G, D and the EMA copy are fused stacks with float32 ends."""
    t = Trainer(resolve("grid25", overrides=["train.fast=true", "train.progress=false"]))
    for name in ("G", "D", "G_ema"):
        plan = t.recipe.nets[name]._fused_plan
        assert plan[0][2] and plan[-1][2] and not any(p[2] for p in plan[1:-1])
    t.train_step()
    assert all(torch.isfinite(p).all() for net in t.recipe.nets.values() for p in net.parameters())


def test_d_judges_real_and_fake_in_one_forward_when_it_treats_samples_independently():
    """D(cat(real, fake)) gives D(real), D(fake) for an MLP D (and a packed one); BatchNorm (DCGAN) and spectral
    norm keep two forwards."""
    t = Trainer(resolve("grid25", overrides=["data.batch_size=64"]))
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    assert t.recipe.joint_d
    a, b = t.recipe.d_logits(real, fake)
    assert torch.allclose(a, t.recipe.D(real), atol=1e-6) and torch.allclose(b, t.recipe.D(fake), atol=1e-6)
    packed = Trainer(resolve("grid25", overrides=["gan.pack=2", "data.batch_size=64"])).recipe
    assert per_sample(packed.D) and packed.joint_d
    a, b = packed.d_logits(real, fake)
    assert a.shape == b.shape == (32,)
    assert torch.allclose(a, packed.D(real), atol=1e-6) and torch.allclose(b, packed.D(fake), atol=1e-6)
    dc = ["model.arch=dcgan", "model.g_width=8", "model.d_width=8", "data.size=16"]
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in Trainer(resolve("digits", overrides=dc)).recipe.D.modules())
    assert not Trainer(resolve("digits", overrides=dc)).recipe.joint_d
    assert not Trainer(resolve("grid25", overrides=["model.spectral_norm=true"])).recipe.joint_d


def test_end_layer_products_are_as_accurate_as_float32_where_bf16_ones_cancel():
    """The weight gradient of D's input layer sums g x over the batch; with coordinates near 4 and a sum that
    cancels to ~1% of its terms, bf16-rounded coordinates leave errors of several per cent. The hi + lo split
    products (fused_mlp._precise_products) match float64 to the rounding of their bf16 result."""
    torch.manual_seed(0)
    x = 4 + 0.05 * torch.randn(4096, 2)
    g = torch.randn(4096, 64).to(torch.bfloat16)
    g = g - g.float().mean(0).to(torch.bfloat16)   # sums of g x that cancel
    w = torch.randn(64, 2)
    exact_w = g.double().t() @ x.double()
    exact_x = g.double() @ w.double()
    g_w, g_x = fused_mlp._precise_products(g, x, w, True, True)
    naive = (g.t() @ x.to(torch.bfloat16)).double()
    err = lambda a, b: ((a.double() - b).norm() / b.norm()).item()
    assert err(g_w, exact_w) < 0.005 < err(naive, exact_w)
    assert err(g_x, exact_x) < 0.005
    # the output layer: a float32 gradient (N, 2) and bf16 hidden inputs
    h = torch.randn(4096, 64).to(torch.bfloat16)
    go = 1 + 0.01 * torch.randn(4096, 2)
    w_out = torch.randn(2, 64)
    g_w, g_x = fused_mlp._precise_products(go, h, w_out, True, True)
    assert err(g_w, go.double().t() @ h.double()) < 0.005
    assert err(g_x, go.double() @ w_out.double()) < 0.005


def test_without_onednns_fused_linear_the_stack_uses_addmm(monkeypatch):
    """A PyTorch build without oneDNN's fused linear + activation runs the same stack as addmm + activation:
    the same outputs and gradients to bf16 rounding."""
    (_, _), (fG, fD) = nets((2,), True)
    z = torch.randn(128, 2)
    ours = run(copy.deepcopy(fG), copy.deepcopy(fD), z)
    monkeypatch.setattr(fused_mlp, "_fused_linear", lambda: False)
    plain = run(fG, fD, z)
    assert rel(ours[0], plain[0]) < 0.01 and rel(ours[1], plain[1]) < 0.01
    assert max(rel(a, b) for a, b in zip(ours[2], plain[2])) < 0.02
