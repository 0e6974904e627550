"""The truncation trick at sampling (Brock et al. 2019): latents from the truncated normal, through
``gankit sample --truncation`` and ``gankit.sample(..., truncation=)``."""
import numpy as np
import pytest
import torch
from scipy import stats

import gankit
from gankit.cli import main
from gankit.recipes.base import truncate_

FAST = ["--set", "train.progress=false", "--set", "train.steps=10", "--set", "train.log_every=5"]


def test_truncated_latents_follow_the_truncated_normal():
    g = torch.Generator().manual_seed(0)
    z = truncate_(torch.randn(20_000, 4, generator=g), 0.7, g)
    assert z.abs().max() <= 0.7
    reference = stats.truncnorm(-0.7, 0.7)
    assert stats.kstest(z.flatten().numpy(), reference.cdf).pvalue > 0.01
    assert z.std().item() == pytest.approx(reference.std(), rel=0.02)
    plain = torch.randn(100, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(truncate_(plain.clone(), 50.0, g), plain)   # nothing beyond psi: nothing redrawn


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "digits"
    assert main(["train", "--out", str(run)] + FAST) == 0
    return run


def test_sample_with_truncation(digits_run, tmp_path, capsys):
    def sample(*extra):
        out = tmp_path / f"s{len(list(tmp_path.iterdir()))}.npy"
        assert main(["sample", str(digits_run), "--n", "50", "--out", str(out), *extra]) == 0
        return np.load(out)

    plain, cut, again, wide = sample(), sample("--truncation", "0.5"), sample("--truncation", "0.5"), \
        sample("--truncation", "100")
    assert np.array_equal(cut, again) and not np.array_equal(cut, plain)
    assert np.array_equal(wide, plain)   # a bound no draw reaches changes nothing
    python = gankit.sample(digits_run, 50, truncation=0.5)
    pixels = ((python.permute(0, 2, 3, 1).numpy() + 1) / 2 * 255).round()   # .npy images hold 8-bit pixels
    assert np.abs(pixels - cut.astype(float)).max() <= 1
    for bad in ("0", "-1"):
        assert main(["sample", str(digits_run), "--n", "5", "--out", str(tmp_path / "x.npy"), "--truncation", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert "--truncation: must be positive" in err and len(err.splitlines()) == 1


def test_truncation_is_refused_where_latents_are_not_normal_draws(tmp_path, capsys):
    ring = tmp_path / "ring"
    assert main(["train", "--preset", "ring8", "--out", str(ring)] + FAST) == 0
    out = str(tmp_path / "r.npy")
    assert main(["sample", str(ring), "--n", "20", "--out", out, "--truncation", "0.8"]) == 2   # DRS by default
    assert "--sampler direct" in capsys.readouterr().err
    assert main(["sample", str(ring), "--n", "20", "--out", out, "--truncation", "0.8", "--sampler", "direct"]) == 0
    assert np.load(out).shape == (20, 2)
