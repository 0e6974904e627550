"""What D is shown (DiffAugment, ADA, instance noise) and the training tricks of [loss] and [model]:
what each computes, by hand or against an independent implementation; that gradients pass; that ADA's p
moves the right way on a real discriminator; that runs with them resume exactly and save p."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from gankit import augment as A
from gankit.cli import main
from gankit.config import AugmentConfig, LossConfig
from gankit.nets.layers import MinibatchStd, per_sample
from gankit.objectives import (OBJECTIVES, feature_matching, objective_of, orthogonal_regularisation, smoothed)
from gankit.training import checkpoint


def images(n=6, c=3, s=16, seed=0, dtype=torch.float64):
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


# ------------------------------------------------------------------------------------- DiffAugment

def test_shift_matches_numpy_with_zeros_filling_in():
    x = images(4, 2, 9)
    dy, dx = torch.tensor([0, 2, -3, 1]), torch.tensor([1, -2, 0, 4])
    out = A.shift(x, dy, dx).numpy()
    for i in range(4):
        want = np.zeros_like(x[i].numpy())
        for y in range(9):
            for xx in range(9):
                sy, sx = y - int(dy[i]), xx - int(dx[i])
                if 0 <= sy < 9 and 0 <= sx < 9:
                    want[:, y, xx] = x[i, :, sy, sx].numpy()
        np.testing.assert_array_equal(out[i], want)


def test_diffaugment_colour_is_the_papers_three_affine_maps():
    x = images(5, 3, 8)
    torch.manual_seed(3)
    (out,) = A.diff_color((x,))
    torch.manual_seed(3)   # the same draws, in the same order: b, s, c per sample
    b = torch.rand(5, 1, 1, 1, dtype=torch.float32).double() - 0.5
    s = torch.rand(5, 1, 1, 1, dtype=torch.float32).double() * 2
    c = torch.rand(5, 1, 1, 1, dtype=torch.float32).double() + 0.5
    for i in range(5):
        v = x[i].numpy() + float(b[i])
        v = (v - v.mean(0, keepdims=True)) * float(s[i]) + v.mean(0, keepdims=True)
        v = (v - v.mean()) * float(c[i]) + v.mean()
        np.testing.assert_allclose(out[i].numpy(), v, atol=1e-6)


def test_diffaugment_cutout_zeroes_one_square_of_half_the_side():
    x = images(200, 1, 8).abs() + 0.1   # no zeros of its own
    torch.manual_seed(0)
    (out,) = A.diff_cutout((x,))
    for i in range(200):
        zero = (out[i, 0] == 0).numpy()
        ys, xs = np.nonzero(zero)
        assert 0 < zero.sum() <= 16
        assert zero.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)   # a rectangle
        assert ys.max() - ys.min() + 1 <= 4 and xs.max() - xs.min() + 1 <= 4
        np.testing.assert_array_equal(out[i, 0].numpy()[~zero], x[i, 0].numpy()[~zero])
    full = sum(int((out[i, 0] == 0).sum() == 16) for i in range(200))
    assert 55 < full < 100   # whole when the square starts 0 to 4 px in: (5/8)² of them


@pytest.mark.parametrize("transform", ["color", "translation", "cutout"])
def test_each_diffaugment_transform_passes_exact_gradients(transform):
    x = images(3, 3, 6).requires_grad_(True)

    def f(v):
        torch.manual_seed(1)   # the same draw on every call
        return A.DIFF_AUGMENT[transform]((v,))[0]

    assert torch.autograd.gradcheck(f, (x,))


# --------------------------------------------------------------------------------------------- ADA

@pytest.mark.parametrize("group", ["blit", "geom", "color"])
def test_each_ada_group_passes_exact_gradients(group):
    x = images(3, 3, 8).requires_grad_(True)

    def f(v):
        torch.manual_seed(2)
        return A.ada_augment((v,), 1.0, (group,))[0]

    assert torch.autograd.gradcheck(f, (x,), atol=1e-5)
    assert not torch.equal(f(x), x)


def test_ada_blit_moves_pixels_without_resampling_them():
    x = images(40, 1, 8, dtype=torch.float32)
    torch.manual_seed(4)
    m = A.ada_geometry(40, (8, 8), 1.0, ("blit",), x)
    assert torch.allclose(m[:, :2, :2].abs().sum((1, 2)), torch.full((40,), 2.0, dtype=m.dtype))   # flips, 90° turns
    shifts = m[:, :2, 2] * 8 / 2   # in pixels
    assert torch.allclose(shifts, shifts.round(), atol=1e-9)
    torch.manual_seed(4)
    (out,) = A.ada_augment((x,), 1.0, ("blit",))
    # each output pixel is one input pixel (reflected at the border): values of the input only
    for i in range(40):
        assert set(out[i].flatten().tolist()) <= set(x[i].flatten().tolist())


def test_ada_rotation_by_ninety_degrees_is_rot90():
    x = images(1, 1, 8, dtype=torch.float32)
    quarter = A._rotation(torch.tensor([math.pi / 2], dtype=torch.float64))
    grid = F.affine_grid(quarter[:, :2].float(), [1, 1, 8, 8], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    assert torch.allclose(out, torch.rot90(x, 1, (2, 3))) or torch.allclose(out, torch.rot90(x, -1, (2, 3)))


def test_ada_colour_matrices():
    torch.manual_seed(5)
    like = torch.zeros(1)
    grey = A.ada_color(2000, 1, 1.0, like)
    # grey: x -> c·(±x) + b; the luma flip negates about half of them
    assert ((grey[:, 0, 0] < 0).double().mean() - 0.5).abs() < 0.05
    rgb = A.ada_color(200, 3, 1.0, like)
    v = torch.ones(3, dtype=torch.float64) / math.sqrt(3)
    # the linear part maps the grey axis to itself (brightness, contrast, flip, hue, saturation all do)
    moved = rgb[:, :3, :3] @ v
    assert torch.allclose(moved / moved.norm(dim=1, keepdim=True), v.expand(200, 3) * moved[:, :1].sign(), atol=1e-9)
    torch.manual_seed(6)
    hue_only = A.ada_color(1, 3, 1.0, like)
    assert torch.isfinite(hue_only).all()


def test_ada_at_probability_zero_changes_nothing_and_draws_nothing():
    x = images()
    state = torch.get_rng_state()
    assert A.ada_augment((x,), 0.0, ("blit", "geom", "color"))[0] is x
    assert torch.equal(torch.get_rng_state(), state)


def test_one_draw_serves_an_image_and_its_condition():
    x = images(4, 3, 8)
    torch.manual_seed(7)
    a, b = A.ada_augment((x, x[:, :1].clone()), 1.0, ("blit", "geom"))
    assert torch.allclose(a[:, :1], b)


def ada(p=0.0, **kw):
    return A.Augment(AugmentConfig(method="ada", ada_p=p, **kw), steps=100)


def test_p_moves_by_the_images_seen_toward_the_target():
    aug = ada(0.5, ada_interval=2, ada_kimg=1.0)
    aug.observe(torch.ones(64))
    assert float(aug.p) == 0.5   # mid-interval
    aug.observe(torch.tensor([1.0] * 48 + [-1.0] * 16))   # r_t = (64 + 32) / 128 = 0.75 > 0.6
    assert float(aug.p) == pytest.approx(0.5 + 128 / 1000)
    for _ in range(2):
        aug.observe(-torch.ones(64))   # r_t = -1 < 0.6
    assert float(aug.p) == pytest.approx(0.5)
    for _ in range(20):
        aug.observe(-torch.ones(64))
    assert float(aug.p) == 0.0   # never below 0


def train_d(D, real, fake, steps):
    opt = torch.optim.Adam(D.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_p_rises_on_a_discriminator_that_overfits_and_falls_on_one_that_underfits():
    torch.manual_seed(0)
    real, fake = torch.randn(32, 16) + 1.0, torch.randn(32, 16) - 1.0   # few images, easy to tell apart
    D = nn.Sequential(nn.Linear(16, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1), nn.Flatten(0))
    train_d(D, real, fake, 200)   # memorised: D(real) > 0 for all
    aug = ada(0.2, ada_interval=4, ada_kimg=1.0)
    for _ in range(8):
        aug.observe(D(real))
    assert float(aug.p) > 0.2
    flat = nn.Sequential(nn.Linear(16, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1), nn.Flatten(0))
    train_d(flat, torch.cat([real, fake]), torch.cat([real, fake]), 200)   # cannot tell them apart: about half
    under = ada(0.2, ada_interval=4, ada_kimg=1.0)
    for _ in range(8):
        under.observe(flat(real) - flat(real).median() - 1e-6)   # r_t ≈ 0, below the target
    assert float(under.p) < 0.2


# ------------------------------------------------------------------------------------ instance noise

def test_instance_noise_falls_linearly_to_zero():
    aug = A.Augment(AugmentConfig(noise=0.3, noise_steps=100), steps=1000)
    assert [aug.sigma(s) for s in (0, 50, 100, 200)] == pytest.approx([0.3, 0.15, 0.0, 0.0])
    x = torch.zeros(20000, 1, 2, 2)
    torch.manual_seed(0)
    assert float(aug(x, step=50).std()) == pytest.approx(0.15, rel=0.02)
    assert torch.equal(aug(x, step=150), x)
    default = A.Augment(AugmentConfig(noise=0.3), steps=1000)
    assert default.sigma(500) == pytest.approx(0.15)   # noise_steps 0: over the whole run


# ------------------------------------------------------------------------------------------ tricks

def test_one_sided_label_smoothing_against_binary_cross_entropy():
    real, fake = torch.randn(50), torch.randn(50)
    got = smoothed(OBJECTIVES.get("nonsaturating"), 0.1).d_loss(real, fake)
    want = F.binary_cross_entropy_with_logits(real, torch.full_like(real, 0.9)) \
        + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    assert torch.allclose(got, want, atol=1e-6)
    ls = smoothed(OBJECTIVES.get("lsgan"), 0.2).d_loss(real, fake)
    assert torch.allclose(ls, 0.5 * ((real - 0.8) ** 2).mean() + 0.5 * (fake ** 2).mean())
    assert objective_of(LossConfig(name="hinge")) is OBJECTIVES.get("hinge")
    g = objective_of(LossConfig(name="nonsaturating", smooth=0.1))
    assert torch.equal(g.g_loss(fake), OBJECTIVES.get("nonsaturating").g_loss(fake))   # G's loss unchanged


def test_feature_matching_by_hand():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    fake = torch.tensor([[0.0, 0.0], [2.0, 1.0]], requires_grad=True)
    fm = feature_matching(real, fake)
    assert fm.detach().item() == pytest.approx((2 - 1) ** 2 + (3 - 0.5) ** 2)
    fm.backward()
    assert torch.allclose(fake.grad, torch.tensor([[-1.0, -2.5], [-1.0, -2.5]]))


def test_orthogonal_regularisation_against_numpy():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Conv2d(2, 3, 3), nn.ConvTranspose2d(3, 2, 4))
    want = 0.0
    for w in (net[0].weight, net[2].weight.reshape(3, -1), net[3].weight.permute(1, 0, 2, 3).reshape(2, -1)):
        w = w.detach().double().numpy()
        gram = w @ w.T
        want += sum(gram[i, j] ** 2 for i in range(len(gram)) for j in range(len(gram)) if i != j)
    assert orthogonal_regularisation(net).detach().item() == pytest.approx(want, rel=1e-5)
    q, _ = torch.linalg.qr(torch.randn(6, 6))
    ortho = nn.Linear(6, 6)
    ortho.weight.data = q * 3.0   # orthogonal rows of any norm: no penalty
    assert orthogonal_regularisation(ortho).detach().item() == pytest.approx(0.0, abs=1e-8)


def test_minibatch_std_by_hand():
    x = torch.randn(6, 3, 2, 2)
    out = MinibatchStd(4)(x)   # the largest divisor of 6 up to 4: groups of 3 — samples i, i+2, i+4
    assert out.shape == (6, 4, 2, 2)
    assert torch.equal(out[:, :3], x)
    v = x.numpy()
    for i in range(6):
        group = v[[i % 2, i % 2 + 2, i % 2 + 4]]
        want = np.sqrt(group.var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(out[i, 3].numpy(), np.full((2, 2), want), rtol=1e-5)
    flat = MinibatchStd(2)(torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 9.0]]))
    assert flat.shape == (4, 3)
    assert flat[:, 2].tolist() == pytest.approx([2.0, 2.5, 2.0, 2.5], abs=1e-3)   # pairs (0, 2) and (1, 3)


@pytest.mark.parametrize("arch, shape", [("mlp", (1, 8, 8)), ("dcgan", (1, 8, 8)), ("dcgan", (3, 32, 32)),
                                         ("resnet", (3, 32, 32))])
def test_every_noise_to_image_discriminator_takes_a_minibatch_std_layer(arch, shape):
    from gankit import nets
    from gankit.config import ModelConfig
    from gankit.nets.mlp import MLPOptions

    m = ModelConfig(arch=arch, z_dim=8, g_width=8, d_width=8, mbstd=4)
    _, D = nets.build(m, shape, nets.Wiring(), MLPOptions(depth=2) if arch == "mlp" else None)
    assert any(isinstance(mod, MinibatchStd) for mod in D.modules()) and not per_sample(D)
    x = torch.randn(8, *shape)
    assert D(x).shape == (8,) and D.features(x).shape == (8, D.feature_dim)
    # a sample's score depends on the others in its group
    y = x.clone()
    y[4:] = 0
    assert not torch.allclose(D(x)[:4], D(y)[:4])


# ----------------------------------------------------------------------------------------- in runs

def train(run, *sets, preset="digits"):
    argv = ["train", "--preset", preset, "--out", str(run), "--set", "train.progress=false", "--set", "train.log_every=5",
            "--set", "train.sample_every=1000", "--set", "train.ckpt_every=15"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0


def final(run):
    ckpt = checkpoint.latest(run / "checkpoints")
    return load_file(str(ckpt / "weights.safetensors")), load_file(str(ckpt / "state.safetensors"))


@pytest.mark.parametrize("preset, sets", [
    ("digits", ["augment.method=ada", "augment.ada_kimg=1", "augment.ada_p=0.3", "augment.ada_interval=4"]),
    ("digits", ["model.arch=dcgan", "augment.method=diffaugment", "augment.noise=0.2", "augment.noise_steps=30",
                "loss.smooth=0.1",
                "loss.feature_matching=1", "loss.ortho=1e-4", "model.mbstd=4"]),
    ("digits-cond", ["augment.method=ada", "augment.ada_kimg=1", "augment.ada_p=0.3", "loss.feature_matching=0.5"]),
    ("digits-inpaint", ["augment.method=ada", "augment.ada_kimg=1", "augment.ada_p=0.5", "train.grid=8"]),
])
def test_resume_is_exact_with_augmentation_and_tricks(tmp_path, preset, sets):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(straight, "train.steps=30", *sets, preset=preset)
    train(split, "train.steps=15", *sets, preset=preset)   # mid-interval: 15 D steps, ADA adjusts every 4
    main(["train", "--out", str(split), "--resume", "--set", "train.steps=30"])
    (w1, s1), (w2, s2) = final(straight), final(split)
    assert w1.keys() == w2.keys() and s1.keys() == s2.keys()
    for k in w1:
        assert torch.equal(w1[k], w2[k]), k
    for k in s1:
        assert torch.equal(s1[k], s2[k]), k
    if "augment.method=ada" in sets:
        assert float(w1["augment.p"]) != 0.3   # p moved, was saved, and was restored
        logged = [json.loads(line) for line in (split / "metrics.jsonl").read_text().splitlines()]
        assert all("augment/p" in row for row in logged) and len({row["augment/p"] for row in logged}) > 1


def test_a_run_with_ada_samples_and_keeps_its_p(tmp_path):
    run = tmp_path / "r"
    train(run, "train.steps=12", "augment.method=ada", "augment.ada_kimg=1")
    out = tmp_path / "s.npy"
    assert main(["sample", str(run), "--n", "8", "--out", str(out)]) == 0
    assert np.load(out).shape[0] == 8


@pytest.mark.parametrize("sets, message", [
    (["augment.method=flip"], "augment.method: unknown value 'flip'; valid: none, diffaugment, ada"),
    (["augment.method=diffaugment", "augment.policy=[color,rotate]"], "augment.policy: unknown value 'rotate'"),
    (["loss.name=hinge", "loss.smooth=0.1"], "loss.smooth: label smoothing needs a loss with targets"),
    (["preset=digits-cyclegan", "loss.ortho=1e-4"], "loss.ortho: applies to the noise-to-image recipes"),
    (["preset=digits-inpaint", "model.mbstd=4"], "model.mbstd: the minibatch-std layer"),
    (["preset=seqgan", "augment.method=ada"], "[augment] does not apply to train.recipe=seqgan"),
    (["augment.method=ada", "augment.ada_target=1.5"], "augment.ada_target: must be in (0, 1)"),
])
def test_bad_trick_settings_are_one_line(tmp_path, capsys, sets, message):
    argv = ["train", "--out", str(tmp_path / "r")]
    if sets[0].startswith("preset="):
        argv += ["--preset", sets.pop(0).split("=")[1]]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_image_augmentation_on_points_is_refused_but_instance_noise_is_not(tmp_path, capsys):
    assert main(["train", "--preset", "ring8", "--out", str(tmp_path / "r"), "--set", "augment.method=diffaugment"]) == 2
    assert "augment.method=diffaugment: needs images" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    train(tmp_path / "n", "train.steps=3", "augment.noise=0.1", preset="ring8")
