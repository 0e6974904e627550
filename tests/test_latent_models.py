"""The generators trained without an adversary — GLO, Gradient Origin Networks, the VAE and the plain
auto-encoder: their losses against hand-computed values and independent implementations, the GON latent
against an explicit gradient, the fitted Gaussian, the latent table, exact resume and the commands."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import gankit

from gankit.assemble import resolve
from gankit.cli import main
from gankit.data import DataInfo
from gankit.objectives import bernoulli_nll, gaussian_kl, gaussian_nll, lap1_loss, laplacian_pyramid
from gankit.recipes import RECIPES
from gankit.recipes.latent import CodeGaussian
from gankit.recipes.vae import negative_elbo
from gankit.training import checkpoint

SMALL = ["model.g_width=32", "model.d_width=32", "mlp.depth=1", "data.batch_size=16", "model.z_dim=8",
         "train.progress=false", "train.log_every=2", "train.sample_every=1000", "train.ckpt_every=4", "train.grid=16"]


def sets(items):
    return [a for s in items for a in ("--set", s)]


# ------------------------------------------------------------------------------------------- losses

def _blur_np(img):
    """The 5x5 binomial blur with replicated borders, by explicit loops."""
    k = np.array([1, 4, 6, 4, 1], float) / 16
    h, w = img.shape
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            out[i, j] = sum(k[a] * k[b] * img[min(max(i + a - 2, 0), h - 1), min(max(j + b - 2, 0), w - 1)]
                            for a in range(5) for b in range(5))
    return out


def _upsample_np(img, h, w):
    """Bilinear up-sampling with half-pixel centres (align_corners=False), by explicit loops."""
    sh, sw = img.shape
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            y = min(max((i + 0.5) * sh / h - 0.5, 0), sh - 1)
            x = min(max((j + 0.5) * sw / w - 0.5, 0), sw - 1)
            y0, x0 = int(math.floor(y)), int(math.floor(x))
            y1, x1 = min(y0 + 1, sh - 1), min(x0 + 1, sw - 1)
            fy, fx = y - y0, x - x0
            out[i, j] = ((1 - fy) * (1 - fx) * img[y0, x0] + (1 - fy) * fx * img[y0, x1]
                         + fy * (1 - fx) * img[y1, x0] + fy * fx * img[y1, x1])
    return out


def _lap1_np(a, b, levels):
    total, ga, gb = 0.0, a, b
    for j in range(levels):
        la, lb = _blur_np(ga)[::2, ::2], _blur_np(gb)[::2, ::2]
        da = ga - _upsample_np(la, *ga.shape)
        db = gb - _upsample_np(lb, *gb.shape)
        total += 4 ** j * np.abs(da - db).sum()
        ga, gb = la, lb
    total += 4 ** levels * np.abs(ga - gb).sum()
    return total / a.size


def test_lap1_of_constant_images_is_the_difference_of_their_values():
    # every band-pass level of a constant image is 0; the 1x1 residual after two levels weighs 4^2 and
    # holds one of 16 pixels: Lap1 = 16 * |0.3 - (-0.2)| / 16
    a, b = torch.full((1, 1, 4, 4), 0.3), torch.full((1, 1, 4, 4), -0.2)
    assert lap1_loss(a, b, levels=2).item() == pytest.approx(0.5, abs=1e-6)


def test_lap1_matches_a_loop_implementation_and_the_pyramid_inverts():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 1, 8, 8, generator=g) * 2 - 1, torch.rand(3, 1, 8, 8, generator=g) * 2 - 1
    ours = lap1_loss(x, y, levels=3)
    for i in range(3):
        assert ours[i].item() == pytest.approx(_lap1_np(x[i, 0].double().numpy(), y[i, 0].double().numpy(), 3),
                                               rel=1e-5)
    pyramid = laplacian_pyramid(x, 3)   # collapsing the pyramid gives the image back
    assert [p.shape[-1] for p in pyramid] == [8, 4, 2, 1]
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = band + torch.nn.functional.interpolate(image, size=band.shape[-2:], mode="bilinear",
                                                       align_corners=False)
    assert torch.allclose(image, x, atol=1e-6)


def test_likelihoods_and_kl_by_hand_and_against_torch_distributions():
    x_hat, x = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, -1.0]])
    assert bernoulli_nll(x_hat, x).item() == pytest.approx(2 * math.log(2), rel=1e-6)   # p = 1/2 on both pixels
    # Σ d² / (2σ²) + D log(σ √(2π)) with σ = 0.5: 2 / 0.5 + 2 log(0.5 √(2π))
    assert gaussian_nll(x_hat, x, 0.5).item() == pytest.approx(4 + 2 * math.log(0.5 * math.sqrt(2 * math.pi)), rel=1e-6)
    assert gaussian_kl(torch.tensor([[0.5]]), torch.tensor([[0.0]])).item() == pytest.approx(0.125, rel=1e-6)

    g = torch.Generator().manual_seed(1)
    x_hat, x = torch.rand(5, 1, 4, 4, generator=g) * 1.8 - 0.9, torch.rand(5, 1, 4, 4, generator=g) * 2 - 1
    normal = torch.distributions.Normal(x_hat, 0.3).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gaussian_nll(x_hat, x, 0.3), -normal, rtol=1e-5)
    t, p = (x + 1) / 2, (x_hat + 1) / 2   # a Bernoulli's log-likelihood, continued to grey targets
    cont = (t * p.log() + (1 - t) * (1 - p).log()).flatten(1).sum(1)
    assert torch.allclose(bernoulli_nll(x_hat, x), -cont, rtol=1e-5)
    binary = (x > 0).float() * 2 - 1
    bern = torch.distributions.Bernoulli(probs=p).log_prob((binary + 1) / 2).flatten(1).sum(1)
    assert torch.allclose(bernoulli_nll(x_hat, binary), -bern, rtol=1e-5)
    mean, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(gaussian_kl(mean, logvar), kl, rtol=1e-5)


def test_vae_negative_elbo_on_a_tiny_example_by_hand():
    # two pixels decoded as 0 (p = 1/2) against targets +1 and -1, q = N(0.5, 1) in one dimension, beta 2:
    # -ELBO = 2 log 2 + 2 * ½ (0.25 + 1 - 1 - 0)
    total, nll, kl = negative_elbo(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, -1.0]]), torch.tensor([[0.5]]),
                                   torch.tensor([[0.0]]), "bernoulli", 0.1, beta=2.0)
    assert nll.item() == pytest.approx(2 * math.log(2), rel=1e-6) and kl.item() == pytest.approx(0.125, rel=1e-6)
    assert total.item() == pytest.approx(2 * math.log(2) + 0.25, rel=1e-6)


# --------------------------------------------------------------------------------- fitted Gaussian

def test_samples_of_the_fitted_gaussian_reproduce_its_covariance():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(4, 4, generator=g)
    codes = torch.randn(5000, 4, generator=g) @ a + torch.tensor([1.0, -2.0, 0.5, 0.0])
    fitted = CodeGaussian(4)
    fitted.fit(codes)
    assert np.allclose(fitted.covariance().numpy(), np.cov(codes.numpy(), rowvar=False), atol=1e-4)
    assert np.allclose(fitted.mean.numpy(), codes.numpy().mean(0), atol=1e-5)
    draws = fitted.transform(torch.randn(200_000, 4, generator=g))
    assert torch.allclose(draws.mean(0), fitted.mean, atol=0.03)
    assert np.allclose(np.cov(draws.numpy(), rowvar=False), fitted.covariance().numpy(), atol=0.05 * a.abs().max().item() ** 2)
    tracked = CodeGaussian(4, decay=0.9)   # following batches ends near the fitted moments
    for part in codes.split(100):
        tracked.track(part)
    assert torch.allclose(tracked.mean, fitted.mean, atol=0.3)
    flat = CodeGaussian(3)   # codes on a plane: the jitter keeps the factor defined
    flat.fit(torch.cat([torch.randn(100, 2, generator=g), torch.zeros(100, 1)], 1))
    assert torch.isfinite(flat.transform(torch.randn(10, 3, generator=g))).all()


# ------------------------------------------------------------------------------------------ GON

def _recipe(name, *overrides):
    cfg = resolve(name, overrides=list(overrides))
    info = DataInfo(name="digits", kind="images", shape=(1, 8, 8), size=100)
    torch.manual_seed(0)
    return RECIPES.get(name)(cfg, info, torch.device("cpu"))


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_gon_latent_is_the_negative_gradient_at_the_origin(likelihood):
    gon = _recipe("gon", "gon.variational=false", f"gon.likelihood={likelihood}", "gon.sigma=0.5", "model.z_dim=6",
                  "model.g_width=16")
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    z = gon.latent(gon.G, x, create_graph=False)
    for i in range(4):   # one sample at a time: each row is that sample's own gradient
        origin = torch.zeros(1, 6, requires_grad=True)
        if likelihood == "gaussian":
            loss = ((gon.G(origin) - x[i:i + 1]) ** 2).sum() / (2 * 0.5 ** 2)
        else:
            p, t = ((gon.G(origin) + 1) / 2).clamp(1e-6, 1 - 1e-6), (x[i:i + 1] + 1) / 2
            loss = -(t * p.log() + (1 - t) * (1 - p).log()).sum()
        (grad,) = torch.autograd.grad(loss, origin)
        assert torch.allclose(z[i], -grad[0], atol=1e-5)
    if likelihood == "gaussian":   # explicitly: z = J^T (x - F(0)) / σ², J the decoder's Jacobian at 0
        J = torch.autograd.functional.jacobian(lambda v: gon.G(v[None]).flatten(), torch.zeros(6))
        explicit = (x.flatten(1) - gon.G(torch.zeros(1, 6)).flatten(1)) @ J / 0.5 ** 2
        assert torch.allclose(z, explicit.detach(), atol=1e-4)


def test_gon_trains_through_the_gradient_and_refuses_relu(capsys):
    gon = _recipe("gon", "gon.variational=false", "model.z_dim=6", "model.g_width=16")
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(4)) * 2 - 1
    w = next(gon.G.parameters())
    through = torch.autograd.grad(gon.decode_loss(gon.G, gon.latent(gon.G, x, True), x)[0].sum(), w)[0]
    detached = torch.autograd.grad(gon.decode_loss(gon.G, gon.latent(gon.G, x, False), x)[0].sum(), w)[0]
    assert not torch.allclose(through, detached)   # the second-order path carries gradient
    assert main(["train", "--preset", "gon", "--set", "gon.activation=relu", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert "gon.activation=relu" in err and "second derivative" in err and "elu" in err and len(err.splitlines()) == 1


# ------------------------------------------------------------------------------------------ GLO

def test_glo_latents_start_at_the_pca_of_the_images_and_stay_on_the_sphere(tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    run = tmp_path / "glo"
    assert main(["train", "--preset", "glo", "--out", str(run), *sets(SMALL + ["train.steps=0"])]) == 0
    table = load_file(str(checkpoint.latest(run / "checkpoints") / "weights.safetensors"))["Z.weight"].double().numpy()
    images = load_digits().images.reshape(-1, 64) / 16 * 2 - 1
    expected = PCA(n_components=8).fit_transform(images)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert table.shape == (1797, 8)
    assert np.allclose(np.abs(table), np.abs(expected), atol=1e-4)   # components are defined up to sign

    glo = _recipe("glo", "model.z_dim=8", "model.g_width=16", "glo.constraint=sphere")
    before = glo.Z.weight.detach().clone()
    index = torch.tensor([3, 7, 11])
    glo.g_step({"x": torch.rand(3, 1, 8, 8) * 2 - 1, "index": index})
    after = glo.Z.weight.detach()
    moved = (after != before).any(1)
    assert moved[index].all() and moved.sum() == 3   # SGD moves only the rows of the batch
    assert torch.allclose(after.norm(dim=1), torch.ones(100), atol=1e-5)
    ball = _recipe("glo", "model.z_dim=8", "glo.constraint=ball")
    assert torch.allclose(ball.Z.project(torch.tensor([[0.3, 0.0], [3.0, 4.0]])), torch.tensor([[0.3, 0.0], [0.6, 0.8]]))


def test_glo_fits_the_latents_of_new_images():
    glo = _recipe("glo", "model.z_dim=8", "model.g_width=16", "glo.fit_steps=0")
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(5)) * 2 - 1
    start = glo.loss(glo.reconstruct(x, ema=False), x)
    glo.opts.fit_steps = 100
    fitted = glo.fit_latents(x, ema=False)
    assert torch.allclose(fitted.norm(dim=1), torch.ones(6), atol=1e-5)
    assert (glo.loss(glo.reconstruct(x, ema=False), x) < start).all()
    assert all(p.requires_grad for p in glo.G.parameters())   # G is left trainable


# ------------------------------------------------------------------------- resume and commands

@pytest.mark.parametrize("name,extra", [("glo", []), ("gon", []), ("gon", ["gon.variational=false"]), ("vae", []),
                                        ("vae", ["vae.variational=false"])])
def test_resume_is_bitwise_and_the_commands_work(tmp_path, name, extra):
    straight, split = tmp_path / "a", tmp_path / "b"
    common = sets(SMALL + extra)
    assert main(["train", "--preset", name, "--out", str(straight), *common, *sets(["train.steps=10"])]) == 0
    assert main(["train", "--preset", name, "--out", str(split), *common, *sets(["train.steps=4"])]) == 0
    assert main(["train", "--out", str(split), "--resume", "--set", "train.steps=10"]) == 0
    for part in ("weights", "state"):
        a = load_file(str(checkpoint.latest(straight / "checkpoints") / f"{part}.safetensors"))
        b = load_file(str(checkpoint.latest(split / "checkpoints") / f"{part}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    if name == "glo":   # the latent table travels with the run
        weights = load_file(str(checkpoint.latest(split / "checkpoints") / "weights.safetensors"))
        assert weights["Z.weight"].shape == (1797, 8)
    out = tmp_path / "s.npy"
    assert main(["sample", str(straight), "--n", "20", "--out", str(out)]) == 0
    x = np.load(out)
    assert x.shape == (20, 8, 8, 1) and np.isfinite(x).all() and x.std(0).mean() > 0   # images as (N, H, W, C)
    assert main(["interpolate", str(straight), "--out", str(tmp_path / "i.png"), "--rows", "2", "--steps", "4"]) == 0
    assert main(["eval", str(straight), "--ref", "digits", "--n", "200", "--metrics", "fid"]) == 0
    images = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(6)) * 2 - 1
    x_hat = gankit.reconstruct(straight, images)
    assert x_hat.shape == (5, 1, 8, 8) and torch.isfinite(x_hat).all()


def test_reconstruct_refuses_runs_without_codes_and_wrong_shapes(tmp_path):
    run = tmp_path / "gan"
    assert main(["train", "--preset", "digits", "--out", str(run), *sets(["train.steps=2", "train.progress=false",
                                                                          "model.g_width=16", "model.d_width=16"])]) == 0
    with pytest.raises(gankit.GankitError, match="gan run has no latent code"):
        gankit.reconstruct(run, torch.zeros(2, 1, 8, 8))
    vae = tmp_path / "vae"
    assert main(["train", "--preset", "vae", "--out", str(vae), *sets(SMALL + ["train.steps=2"])]) == 0
    with pytest.raises(gankit.GankitError, match=r"shape \(1, 4, 4\)"):
        gankit.reconstruct(vae, torch.zeros(2, 1, 4, 4))


def test_latent_recipes_refuse_what_they_cannot_model_in_one_line(tmp_path, capsys):
    cases = [(["train.recipe=vae", "data.name=ring8"], "vae.likelihood=bernoulli: needs images"),
             (["train.recipe=glo", "data.name=ring8"], "needs a finite data set"),
             (["train.recipe=gon", "model.z_dim=0"], "model.z_dim: must be positive")]
    for items, message in cases:
        out = tmp_path / "r"
        assert main(["train", "--preset", "ring8", "--out", str(out), *sets(items)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not out.exists()   # nothing half-written
