"""Each metric against an independent implementation or hand-computed values, on identical inputs."""
import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from torch import nn

from gankit.data.toy import gauss1d, grid25, ring8
from gankit.metrics.classes import class_report, classifier_scores, entropy
from gankit.metrics.fid import fid, frechet_distance, gaussian_stats
from gankit.metrics.inception_score import inception_score, softmax
from gankit.metrics.kid import kid, mmd2_unbiased
from gankit.metrics.memorisation import memorisation
from gankit.metrics.toy import js_binned, pacgan_modes, wasserstein1


def scipy_frechet(mu1, s1, mu2, s2):
    """The textbook formula with scipy's sqrtm (pytorch-fid's approach, without its epsilon retry)."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    d = mu1 - mu2
    return d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("dim, n", [(8, 100), (64, 500), (256, 2000)])
def test_frechet_distance_matches_scipy(dim, n):
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim)) * 0.3
    b = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim)) * 0.3 + 0.5
    ours = frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    ref = scipy_frechet(*gaussian_stats(a), *gaussian_stats(b))
    assert ours == pytest.approx(ref, rel=1e-6)


def test_frechet_distance_hand_values():
    # 1-D: (μ1-μ2)² + σ1² + σ2² - 2σ1σ2 = (μ1-μ2)² + (σ1-σ2)²
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == pytest.approx(4 + 1)
    x = np.random.default_rng(0).normal(size=(50, 5))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)


class Identity(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x


def test_fid_from_features_matches_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance

    rng = np.random.default_rng(1)
    real = rng.normal(size=(600, 32))
    fake = rng.normal(size=(500, 32)) * 1.2 + 0.1
    tm = FrechetInceptionDistance(feature=Identity(32))
    tm.update(torch.from_numpy(real), real=True)
    tm.update(torch.from_numpy(fake), real=False)
    assert fid(real, fake) == pytest.approx(tm.compute().item(), rel=1e-6)


def test_kid_matches_torchmetrics():
    from torchmetrics.image.kid import KernelInceptionDistance

    rng = np.random.default_rng(2)
    real = rng.normal(size=(300, 16))
    fake = rng.normal(size=(300, 16)) + 0.2
    # one subset holding every sample: the estimate is then deterministic in both implementations
    tm = KernelInceptionDistance(feature=Identity(16), subsets=1, subset_size=300)
    tm.update(torch.from_numpy(real), real=True)
    tm.update(torch.from_numpy(fake), real=False)
    assert mmd2_unbiased(real, fake) == pytest.approx(tm.compute()[0].item(), rel=1e-6)
    out = kid(real, fake, subsets=5, subset_size=100)
    assert out["kid"] > 0 and out["kid_std"] >= 0


def test_mmd_hand_computed():
    # d = 1, k(x, y) = (xy + 1)³; x = {0, 1}, y = {2}... use two points each
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    k = lambda a, b: (a * b + 1) ** 3  # noqa: E731
    xx = 2 * k(0, 1) / 2
    yy = 2 * k(1, 2) / 2
    xy = (k(0, 1) + k(0, 2) + k(1, 1) + k(1, 2)) / 4
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy)


def test_inception_score_hand_made():
    eye = np.eye(4)
    assert inception_score(eye, splits=1)["is"] == pytest.approx(4.0)          # confident and diverse
    assert inception_score(np.full((4, 4), 0.25), splits=1)["is"] == pytest.approx(1.0)
    assert inception_score(np.tile(eye[:1], (4, 1)), splits=1)["is"] == pytest.approx(1.0)  # one class only
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    py = p.mean(0)
    kl = [sum(pi * math.log(pi / q) for pi, q in zip(row, py) if pi > 0) for row in p]
    assert inception_score(p, splits=1)["is"] == pytest.approx(math.exp(np.mean(kl)))
    two = inception_score(np.vstack([eye, np.full((4, 4), 0.25)]), splits=2)
    assert two["is"] == pytest.approx(2.5) and two["is_std"] == pytest.approx(1.5)


def test_softmax_and_entropy():
    assert np.allclose(softmax(np.array([[0.0, math.log(3)]])), [[0.25, 0.75]])
    assert entropy(np.array([0.5, 0.5])) == pytest.approx(math.log(2))


def test_classifier_scores_and_verdicts():
    probs = np.array([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9], [0.02, 0.98]])
    s = classifier_scores(probs)
    assert s["confidence"] == pytest.approx((0.95 + 0.6 + 0.9 + 0.98) / 4)
    assert s["confident_share"] == pytest.approx(2 / 4)
    assert s["class_entropy"] == pytest.approx(entropy(probs.mean(0)))
    classes = [str(i) for i in range(10)]
    real = np.eye(10)[np.arange(1000) % 10]
    dropped = np.eye(10)[np.arange(900) % 3]           # a generator that makes only 0, 1, 2
    out, verdict = class_report(dropped, real, classes)
    assert out["classes_dropped"] == 7
    assert verdict.startswith("mode dropping: 7 of 10 classes missing (3, 4, 5, 6, 7, 8, 9)")
    rng = np.random.default_rng(0)
    real_f = rng.normal(size=(1000, 8))
    fake_f = rng.normal(size=(1000, 8))
    fake_f[np.arange(1000) % 10 == 4] = 0.01 * rng.normal(size=(100, 8))   # class 4: near-duplicates
    out, verdict = class_report(real, real, classes, fake_f, real_f)
    assert out["classes_collapsed"] == 1 and "mode collapse: samples of 4" in verdict
    out, verdict = class_report(real, real, classes, real_f, real_f)
    assert verdict == "all 10 classes present, none collapsed"


def test_memorisation_flags_copies_and_mirror_images():
    rng = torch.Generator().manual_seed(0)
    train = torch.rand(300, 1, 8, 8, generator=rng) * 2 - 1
    fresh = torch.rand(200, 1, 8, 8, generator=rng) * 2 - 1
    copies = train[:100] + 0.001 * torch.randn(100, 1, 8, 8, generator=rng)
    mirrored = train[100:200].flip(-1)
    m_fresh, _, _ = memorisation(fresh, train)
    m_copy, idx, ratio = memorisation(copies, train)
    m_mirror, idx_m, _ = memorisation(mirrored, train)
    assert m_fresh["memorised_share"] <= 0.05
    assert m_copy["memorised_share"] == 1.0 and (idx == np.arange(100)).all() and ratio.max() < 0.01
    assert m_mirror["memorised_share"] == 1.0 and (idx_m == np.arange(100, 200)).all()


def test_memorisation_does_not_flag_a_sample_equally_far_from_every_training_image():
    """On a varied set, the mean image is closer to every training image than they are to each other, so
    a rule on distances alone (d_1 below the 1st percentile of real-to-real distances) calls it a copy
    of whichever is nearest; the relative distance does not."""
    from gankit.metrics.knn import knn_radii

    rng = torch.Generator().manual_seed(1)
    train = (torch.rand(300, 1, 16, 16, generator=rng) > 0.5).float() * 2 - 1   # varied: random patterns
    blobs = train.mean(0, keepdim=True) + 0.05 * torch.randn(100, 1, 16, 16, generator=rng)
    out, idx, relative = memorisation(blobs, train)
    d1 = torch.cdist(blobs.flatten(1).double(), torch.cat([train, train.flip(-1)]).flatten(1).double()).min(1).values
    old_rule = (d1.numpy() < np.percentile(knn_radii(train.flatten(1), k=1).double().numpy(), 1)).mean()
    assert old_rule == 1.0                                   # the old rule flags every blob
    assert out["memorised_share"] == 0.0 and relative.min() > 0.8
    want = d1.numpy() / np.sort(torch.cdist(blobs.flatten(1).double(), torch.cat([train, train.flip(-1)])
                                            .flatten(1).double()).numpy(), 1)[:, 1:51].mean(1)
    np.testing.assert_allclose(relative, want, rtol=1e-9)   # d_1 / mean(d_2 .. d_51), by scipy-free numpy


def test_memorisation_of_held_out_digits_is_rare():
    from sklearn.datasets import load_digits

    d = torch.tensor(load_digits().images / 8 - 1, dtype=torch.float32)[:, None]
    out, _, _ = memorisation(d[1500:], d[:1500])
    assert out["memorised_share"] < 0.01


def test_pacgan_modes_hand_made():
    means = grid25().means.numpy()
    x = np.concatenate([means[:20] + 0.01, means[:5] + 1.0])   # 20 modes hit exactly, 5 points far off
    s = pacgan_modes(x, means, 0.05)
    assert s["modes"] == 20 and s["high_quality"] == pytest.approx(20 / 25)
    assert s["reverse_kl"] == pytest.approx(math.log(25 / 20))   # uniform over 20 of 25 modes
    ring = ring8()
    x, _ = ring.sample(2500, torch.Generator().manual_seed(0))
    s = pacgan_modes(x.numpy(), ring.means.numpy(), ring.std)
    # in 2-D, P(‖N(0, σ²I)‖ < 3σ) = 1 - exp(-9/2) = 0.9889: the real distribution's own HQ share
    assert s["modes"] == 8 and s["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.006)
    assert s["reverse_kl"] < 0.01


def test_wasserstein1_exact_in_1d_and_estimated_in_2d():
    g = gauss1d()
    x, _ = g.sample(20000, torch.Generator().manual_seed(0))
    shifted = x.numpy() + 0.5
    # against scipy on a large independent sample of the same distribution
    ref, _ = g.sample(200000, torch.Generator().manual_seed(1))
    expected = scipy.stats.wasserstein_distance(shifted[:, 0], ref.numpy()[:, 0])
    out = wasserstein1(shifted, g)
    assert out["w1_exact"] == 1.0 and out["w1"] == pytest.approx(expected, abs=0.01)
    assert out["w1"] == pytest.approx(0.5, abs=0.02)
    ring = ring8()
    means = ring.means.numpy()
    y = means[np.arange(1000) % 8] + ring.std * np.random.default_rng(2).normal(size=(1000, 2))
    est = wasserstein1(y + np.array([0.3, 0.0]), ring)   # the whole distribution moved by 0.3
    assert est["w1_exact"] == 0.0 and est["w1"] == pytest.approx(0.3, abs=0.03)


def test_js_binned_limits():
    g = gauss1d()
    x, _ = g.sample(50000, torch.Generator().manual_seed(0))
    assert js_binned(x.numpy(), g)["js"] < 0.01
    far = np.full((1000, 1), 50.0) + np.random.default_rng(0).normal(size=(1000, 1))
    assert js_binned(far, g)["js"] == pytest.approx(math.log(2), abs=1e-3)
