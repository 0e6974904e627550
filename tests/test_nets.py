"""Architectures: shapes, ranges, gradients, spectral norm, seeding, errors, safetensors round-trip."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file
from torch.nn.utils import parametrize

from gankit.config import ModelConfig
from gankit.errors import ConfigError
from gankit.nets import NETS, Wiring, is_weight_layer, num_params
from gankit.nets import build as build_nets
from gankit.nets.mlp import MLPOptions
from gankit.nets.layers import linear_of_map

CASES = [
    ("mlp", (1,)), ("mlp", (2,)), ("mlp", (1, 8, 8)), ("mlp", (3, 16, 16)),
    ("dcgan", (1, 8, 8)), ("dcgan", (3, 16, 16)), ("dcgan", (1, 28, 28)), ("dcgan", (3, 32, 32)),
    ("dcgan", (1, 64, 64)),
    ("resnet", (3, 16, 16)), ("resnet", (1, 32, 32)), ("resnet", (3, 64, 64)),
]
IDS = [f"{a}-{'x'.join(map(str, s))}" for a, s in CASES]


def small(arch: str, **kw) -> ModelConfig:
    return ModelConfig(**{"arch": arch, "z_dim": 16, "g_width": 8, "d_width": 8, **kw})


def build(m: ModelConfig, shape, wiring: Wiring = Wiring(), depth: int = 2):
    """nets.build with MLPs of ``depth`` hidden layers."""
    return build_nets(m, shape, wiring, MLPOptions(depth) if m.arch == "mlp" else None)


def weight_layers(net: nn.Module) -> list[nn.Module]:
    return [mod for mod in net.modules() if is_weight_layer(mod)]


def test_registry_names() -> None:
    assert NETS.names() == ["dcgan", "mlp", "resnet"]
    with pytest.raises(ConfigError, match="unknown architecture 'dcgn'; valid: dcgan, mlp, resnet"):
        build(small("dcgn"), (3, 32, 32))


@pytest.mark.parametrize("arch,shape", CASES, ids=IDS)
def test_shapes_range_and_grads(arch: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    G, D = build(small(arch), shape)
    assert G.z_dim == 16
    assert num_params(G) > 0 and num_params(D) > 0
    z = torch.randn(4, G.z_dim)
    x = G(z)
    assert x.shape == (4, *shape)
    assert torch.isfinite(x).all()
    is_image = len(shape) == 3
    if not is_image:
        assert not any(isinstance(mod, nn.Tanh) for mod in G.modules())
    if is_image:
        assert x.min() >= -1 and x.max() <= 1
    logits = D(x)
    assert logits.shape == (4,)
    # gradients reach every parameter of both nets and are finite
    (logits.square().mean() + D(torch.randn(4, *shape)).mean()).backward()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for p in G.parameters())


def test_point_generator_is_linear_not_squashed() -> None:
    torch.manual_seed(0)
    G, _ = build(small("mlp"), (2,))
    assert isinstance(G.net[-1], nn.Linear)
    with torch.no_grad():
        G.net[-1].bias.fill_(5.0)
    assert G(torch.randn(3, G.z_dim)).min() > 1.5  # would be < 1 after a tanh


@pytest.mark.parametrize("arch,shape", [("mlp", (2,)), ("dcgan", (3, 16, 16)), ("dcgan", (1, 28, 28)),
                                        ("resnet", (3, 16, 16))])
@pytest.mark.parametrize("d_norm", ["batch", "layer", "none"])
def test_d_norm_variants(arch: str, shape: tuple[int, ...], d_norm: str) -> None:
    torch.manual_seed(0)
    _, D = build(small(arch, d_norm=d_norm), shape)
    kinds = {type(mod) for mod in D.modules()}
    has_bn = bool(kinds & {nn.BatchNorm1d, nn.BatchNorm2d})
    has_ln = bool(kinds & {nn.LayerNorm, nn.GroupNorm})
    assert has_bn == (d_norm == "batch" and arch == "dcgan")   # mlp and resnet D ignore "batch"
    assert has_ln == (d_norm == "layer")
    x = torch.randn(4, *shape, requires_grad=True)
    out = D(x)
    assert out.shape == (4,) and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_unknown_d_norm() -> None:
    with pytest.raises(ConfigError, match="d_norm.*'group'.*batch, layer, none"):
        build(small("dcgan", d_norm="group"), (1, 8, 8))


def test_dcgan_28px_is_a_7_14_28_stack() -> None:
    G, D = build(small("dcgan"), (1, 28, 28))
    assert G.net[0].kernel_size == (7, 7)
    # D: 28 -> 14 -> 7, then the paper's 7x7 valid convolution to one logit, written as a linear head
    assert D.body(torch.randn(2, 1, 28, 28)).shape[-2:] == (7, 7) and D.head.in_features == D.feature_dim
    sizes = []
    h = torch.randn(2, G.z_dim, 1, 1)
    for mod in G.net:
        h = mod(h)
        if isinstance(mod, nn.ConvTranspose2d):
            sizes.append(h.shape[-1])
    assert sizes == [7, 14, 28]


def test_linear_of_map_reads_a_channels_last_map_as_its_flattening() -> None:
    """The DCGAN head on a channels-last map (train.fast) equals linear(h.flatten(1)) in value and in both
    gradients, and hands the map's gradient back channels-last without a copy into (C, H, W) order."""
    torch.manual_seed(0)
    lin = nn.Linear(3 * 5 * 4, 2).double()
    h = torch.randn(6, 3, 5, 4, dtype=torch.float64)
    g = torch.randn(6, 2, dtype=torch.float64)
    ref_h = h.clone().requires_grad_()
    ref = lin(ref_h.flatten(1))
    ref_w, = torch.autograd.grad(ref, lin.weight, g, retain_graph=True)
    ref.backward(g)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = h.clone(memory_format=layout).requires_grad_()
        y = linear_of_map(lin, x)
        grad_w, = torch.autograd.grad(y, lin.weight, g, retain_graph=True)
        y.backward(g)
        torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(grad_w, ref_w, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(x.grad, ref_h.grad, rtol=0, atol=0)
        assert x.grad.is_contiguous(memory_format=layout)
    _, D = build(small("dcgan"), (1, 28, 28))
    x = torch.randn(3, 1, 28, 28)
    plain = D(x)
    D.to(memory_format=torch.channels_last)
    torch.testing.assert_close(D(x.contiguous(memory_format=torch.channels_last)), plain, rtol=1e-5, atol=1e-5)
    assert D.features(x).shape == (3, D.feature_dim)


def test_dcgan_paper_init() -> None:
    torch.manual_seed(0)
    G, D = build(ModelConfig(arch="dcgan", d_norm="batch"), (3, 64, 64))
    convs = torch.cat([mod.weight.flatten() for net in (G, D) for mod in net.modules()
                       if isinstance(mod, nn.modules.conv._ConvNd)])
    bns = torch.cat([mod.weight for net in (G, D) for mod in net.modules() if isinstance(mod, nn.BatchNorm2d)])
    assert convs.mean().abs() < 1e-3 and abs(convs.std().item() - 0.02) < 1e-3
    assert abs(bns.mean().item() - 1.0) < 5e-3 and 0.01 < bns.std().item() < 0.03


@pytest.mark.parametrize("arch,shape", [("mlp", (2,)), ("mlp", (1, 8, 8)), ("dcgan", (3, 32, 32)),
                                        ("dcgan", (1, 28, 28)), ("resnet", (3, 32, 32))])
def test_spectral_norm(arch: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    G, D = build(small(arch, spectral_norm=True, d_norm="none", d_width=16), shape)
    layers = weight_layers(D)
    assert len(layers) >= 3
    assert all(parametrize.is_parametrized(mod, "weight") for mod in layers)   # every Conv/Linear of D
    assert not any(parametrize.is_parametrized(mod) for mod in G.modules())   # and nothing in G
    D.train()
    with torch.no_grad():
        for _ in range(10):   # one power iteration per training-mode forward (after 15 at wrap time)
            D(torch.randn(4, *shape))
        raw_sigmas = []
        for mod in layers:
            w = mod.weight  # effective (normalised) weight
            sigma = torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), 2).item()
            assert sigma == pytest.approx(1.0, abs=0.03)
            raw = mod.parametrizations.weight.original
            raw_sigmas.append(torch.linalg.matrix_norm(raw.reshape(raw.shape[0], -1), 2).item())
    assert max(abs(s - 1) for s in raw_sigmas) > 0.2   # the unnormalised weights are not already ~1
    _, D_plain = build(small(arch, d_width=16), shape)
    assert not any(parametrize.is_parametrized(mod) for mod in D_plain.modules())


@pytest.mark.parametrize("arch,shape", [("mlp", (2,)), ("dcgan", (3, 16, 16)), ("resnet", (3, 16, 16))])
@pytest.mark.parametrize("sn", [False, True])
def test_seeded_build_is_reproducible(arch: str, shape: tuple[int, ...], sn: bool) -> None:
    def states() -> list[dict[str, torch.Tensor]]:
        return [net.state_dict() for net in build(small(arch, spectral_norm=sn), shape)]

    torch.manual_seed(0)
    a = states()
    torch.manual_seed(0)
    b = states()
    torch.manual_seed(1)
    c = states()
    for sa, sb, sc in zip(a, b, c):
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert not all(torch.equal(sa[k], sc[k]) for k in sa)   # the init really draws from the RNG


@pytest.mark.parametrize("arch,shape,valid", [
    ("dcgan", (3, 48, 48), "8, 16, 28, 32 or 64 px"),
    ("dcgan", (3, 32, 16), "8, 16, 28, 32 or 64 px"),
    ("dcgan", (2, 32, 32), "1 or 3 channels"),
    ("dcgan", (2,), "8, 16, 28, 32 or 64 px"),
    ("resnet", (3, 28, 28), "16, 32 or 64 px"),
    ("resnet", (3, 8, 8), "16, 32 or 64 px"),
    ("mlp", (4, 4), "points (d,) or images (C, H, W)"),
])
def test_bad_shapes(arch: str, shape: tuple[int, ...], valid: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(small(arch), shape)
    msg = str(info.value)
    assert "\n" not in msg
    assert f"architecture '{arch}'" in msg and valid in msg and str(shape) in msg


def test_dcgan_message_suggests_data_size() -> None:
    with pytest.raises(ConfigError, match=r"^architecture 'dcgan' needs square images of 8, 16, 28, 32 or 64 px "
                                          r"with 1 or 3 channels, got \(3, 48, 48\); set data.size$"):
        build(small("dcgan"), (3, 48, 48))


def test_mlp_depth_is_its_own_option() -> None:
    from gankit.options import check

    with pytest.raises(ConfigError, match=r"^mlp.depth: must be positive, got 0$"):
        check(MLPOptions(depth=0), "mlp")
    G, D = build(small("mlp"), (2,), depth=1)
    assert sum(isinstance(m, torch.nn.Linear) for m in G.modules()) == 2


@pytest.mark.parametrize("arch,shape,d_norm", [("dcgan", (3, 16, 16), "batch"), ("resnet", (3, 16, 16), "none"),
                                               ("mlp", (2,), "layer")])
def test_safetensors_round_trip(tmp_path, arch: str, shape: tuple[int, ...], d_norm: str) -> None:
    m = small(arch, spectral_norm=True, d_norm=d_norm)
    torch.manual_seed(0)
    G, D = build(m, shape)
    D.train()
    with torch.no_grad():
        for _ in range(3):   # moves the power-iteration vectors and BN running stats away from their init
            D(torch.randn(8, *shape))
    state = D.state_dict()
    assert any(k.endswith("._u") for k in state) and any(k.endswith("._v") for k in state)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "d.safetensors"))
    save_file({k: v.contiguous() for k, v in G.state_dict().items()}, str(tmp_path / "g.safetensors"))

    torch.manual_seed(123)
    G2, D2 = build(m, shape)
    D2.load_state_dict(load_file(str(tmp_path / "d.safetensors")))
    G2.load_state_dict(load_file(str(tmp_path / "g.safetensors")))
    for k, v in D2.state_dict().items():
        assert torch.equal(v, state[k]), k
    D.eval(), D2.eval(), G.eval(), G2.eval()
    x = torch.randn(5, *shape)
    z = torch.randn(5, G.z_dim)
    with torch.no_grad():
        assert torch.equal(D(x), D2(x))
        assert torch.equal(G(z), G2(z))
    D.train(), D2.train()
    with torch.no_grad():   # one more power iteration from identical buffers stays identical
        assert torch.equal(D(x), D2(x))


# ------------------------------------------------------------------------------------ PacGAN packing

@pytest.mark.parametrize("arch, shape", [("mlp", (2,)), ("dcgan", (1, 8, 8)), ("resnet", (3, 16, 16))])
def test_packed_discriminator_judges_k_samples_at_once(arch, shape):
    from gankit.nets import Packed

    torch.manual_seed(0)
    G, D = build(ModelConfig(arch=arch, z_dim=4, g_width=8, d_width=8), shape, Wiring(pack=3))
    assert isinstance(D, Packed) and D.k == 3
    x = torch.randn(6, *shape)
    out = D(x)
    assert out.shape == (2,)
    # the first logit depends on samples 0..2 only, stacked on the channel/feature axis in order
    manual = D.inner(torch.cat([x[0], x[1], x[2]], dim=0)[None])
    assert torch.allclose(out[0], manual[0], atol=1e-6)
    with pytest.raises(ValueError, match="multiple of 3"):
        D(torch.randn(4, *shape))
