"""gankit.metrics.knn against the reference ``prdc`` package (and scipy) on identical inputs."""
import contextlib
import io

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

prdc_ref = pytest.importorskip("prdc.prdc")

from gankit.metrics import knn  # noqa: E402

KEYS = ("precision", "recall", "density", "coverage")


def reference(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):   # compute_prdc prints the sample counts
        return {key: float(v) for key, v in prdc_ref.compute_prdc(real, fake, k).items()}


def assert_same(ours, ref, tol=1e-6):
    assert set(ours) == set(ref)
    for key in ref:
        assert abs(ours[key] - ref[key]) <= tol, (key, ours[key], ref[key])


def gaussian(seed, n, m, d):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((n, d)).astype(np.float32)
    fake = (1.2 * rng.standard_normal((m, d)) + 0.15).astype(np.float32)
    return real, fake


def with_duplicates(seed, n, m, d):
    """Gaussian sets with repeated rows inside each set, and a few fake rows equal to real rows + tiny noise."""
    rng = np.random.default_rng(seed)
    real, fake = gaussian(seed, n, m, d)
    real[rng.choice(n, n // 10)] = real[rng.choice(n, n // 10)]
    fake[rng.choice(m, m // 10)] = fake[rng.choice(m, m // 10)]
    fake[:5] = real[:5] + np.float32(1e-3)
    return real, fake


def lattice(seed, n, m, d, levels=3):
    """Small-integer points: many exact duplicates and exactly tied distances (all exact in float64)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, levels, (n, d)).astype(np.float32),
            rng.integers(0, levels, (m, d)).astype(np.float32))


CASES = {
    "gauss-200x150x16": lambda: gaussian(0, 200, 150, 16),
    "gauss-500x400x64": lambda: gaussian(1, 500, 400, 64),
    "offset-300x250x256": lambda: tuple(x + np.float32(20.0) for x in gaussian(2, 300, 250, 256)),
    "duplicates-300x260x32": lambda: with_duplicates(3, 300, 260, 32),
    "lattice-300x250x8": lambda: lattice(4, 300, 250, 8),
}


@pytest.fixture(scope="module", params=list(CASES))
def data(request):
    return CASES[request.param]()


@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_matches_reference(data, k):
    real, fake = data
    ref = reference(real, fake, k)
    assert_same(knn.prdc(real, fake, k=k), ref)
    assert_same(knn.precision_recall(real, fake, k=k), {key: ref[key] for key in ("precision", "recall")})
    assert_same(knn.density_coverage(real, fake, k=k), {key: ref[key] for key in ("density", "coverage")})


@pytest.mark.parametrize("k", [1, 3, 5])
def test_radii_match_reference(data, k):
    for x in data:
        ours = knn.knn_radii(x, k)
        assert ours.dtype == torch.float32 and ours.shape == (len(x),)
        ref = prdc_ref.compute_nearest_neighbour_distances(x, k)
        # Exact duplicate rows (other than the diagonal) get a rounding-noise distance (~1e-7) from
        # sklearn's |x|²+|y|²-2x·y; gankit's exact float64 recomputation gives them exactly 0.
        dup = ref < 1e-6
        assert (ours.numpy()[dup] == 0).all()
        np.testing.assert_array_equal(ours.numpy()[~dup], ref[~dup])


def test_nearest_matches_cdist(data):
    real, fake = data
    dist, idx = knn.nearest(fake, real)
    full = cdist(fake.astype(np.float64), real.astype(np.float64))
    np.testing.assert_array_equal(idx.numpy(), full.argmin(axis=1))   # lowest index among ties
    np.testing.assert_allclose(dist.numpy(), full.min(axis=1), rtol=1e-6, atol=1e-6)


def test_small_chunks_give_the_same_numbers(data):
    real, fake = data
    for k in (1, 5):
        assert knn.prdc(real, fake, k=k, chunk=37) == knn.prdc(real, fake, k=k)
        assert torch.equal(knn.knn_radii(real, k, chunk=29), knn.knn_radii(real, k))
    d1, i1 = knn.nearest(fake, real, chunk=23)
    d2, i2 = knn.nearest(fake, real)
    assert torch.equal(i1, i2) and torch.equal(d1, d2)


def test_identical_sets():
    real, _ = gaussian(5, 300, 10, 32)
    for k in (1, 3, 5):
        out = knn.prdc(real, real.copy(), k=k)
        assert out["precision"] == out["recall"] == out["coverage"] == 1.0
        assert_same(out, reference(real, real.copy(), k))


def test_far_apart_sets():
    real, fake = gaussian(6, 200, 180, 16)
    fake = fake + np.float32(100.0)
    out = knn.prdc(real, fake, k=3)
    assert out == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    assert_same(out, reference(real, fake, 3))


def test_hand_made_ties_are_strict():
    """1-D points 0, 1, 2, ...: every radius (k=1) is exactly 1; a fake at distance exactly 1 is outside."""
    real = np.arange(10, dtype=np.float32)[:, None]
    fake = np.array([[0.5], [11.0], [-1.0], [4.25]], dtype=np.float32)
    out = knn.prdc(real, fake, k=1)
    assert_same(out, reference(real, fake, 1))
    assert out["precision"] == 0.5   # 0.5 and 4.25 are inside a ball, 11 and -1 are exactly on a boundary


def test_tensor_float64_and_mixed_inputs():
    real, fake = gaussian(7, 250, 200, 24)
    ref32 = reference(real, fake, 3)
    assert_same(knn.prdc(torch.from_numpy(real), torch.from_numpy(fake), k=3), ref32)
    r64, f64 = real.astype(np.float64), fake.astype(np.float64)
    assert_same(knn.prdc(torch.from_numpy(r64), f64, k=3), reference(r64, f64, 3))
    assert_same(knn.prdc(real, f64, k=3), reference(real, f64, 3))
    radii = knn.knn_radii(torch.from_numpy(r64), 3)
    assert radii.dtype == torch.float64
    # float64 mode: sklearn's |x|²+|y|²-2x·y and gankit's Σ(x-y)² agree to the last bit or two
    np.testing.assert_allclose(radii.numpy(), prdc_ref.compute_nearest_neighbour_distances(r64, 3),
                               rtol=1e-12)


def test_fallback_paths_are_exercised():
    """Exact ties defeat the float32 candidate bounds: some rows must take the float64 fallback."""
    real, fake = lattice(8, 200, 150, 6, levels=2)
    stats = {}
    assert_same(knn.prdc(real, fake, k=3, stats=stats), reference(real, fake, 3))
    assert stats["radius_fallback_rows"] > 0 and stats["cross_exact_pairs"] > 0
    dist, idx = knn.nearest(fake, real)
    full = cdist(fake.astype(np.float64), real.astype(np.float64))
    np.testing.assert_array_equal(idx.numpy(), full.argmin(axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inputs_are_not_modified(dtype):
    real, fake = (x.astype(dtype) for x in lattice(11, 120, 100, 4, levels=2))   # takes the fallbacks
    real_t, fake_t = torch.from_numpy(real.copy()), torch.from_numpy(fake.copy())
    stats = {}
    knn.prdc(real_t, fake_t, k=3, stats=stats)
    knn.knn_radii(real_t, 2)
    knn.nearest(fake_t, real_t)
    assert stats["radius_fallback_rows"] > 0
    assert torch.equal(real_t, torch.from_numpy(real)) and torch.equal(fake_t, torch.from_numpy(fake))


def test_matmul_precision_setting_is_kept():
    real, fake = gaussian(9, 200, 150, 16)
    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        assert_same(knn.prdc(real, fake, k=3), reference(real, fake, 3))
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(old)


def test_bad_inputs():
    real, fake = gaussian(10, 20, 20, 4)
    with pytest.raises(ValueError):
        knn.prdc(real, fake, k=20)
    with pytest.raises(ValueError):
        knn.prdc(real, fake[:, :3], k=3)
    with pytest.raises(ValueError):
        knn.knn_radii(real[0], 1)
    bad = real.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError):
        knn.prdc(bad, fake, k=3)
