"""Discriminator rejection sampling: exact on a problem with a known density ratio, wired into sample/eval."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from gankit.cli import main
from gankit.recipes.drs import rejection_sample


class ShiftedGaussian:
    """A recipe whose G draws N(0, 1) and whose D is the exact logit log N(x; 1, 1) / N(x; 0, 1) = x - 1/2."""

    def __init__(self) -> None:
        self.D = nn.Identity()
        self.D.forward = lambda x: x[:, 0] - 0.5

    def latents(self, n, generator=None):
        return torch.randn(n, 1, generator=generator)

    def sample(self, z, labels=None, ema=True):
        return z


def test_rejection_with_the_exact_ratio_gives_the_data_distribution():
    x = rejection_sample(ShiftedGaussian(), 40_000, seed=0, percentile=100.0)
    assert x.shape == (40_000, 1)
    # p_g = N(0, 1) reweighted by exp(x - 1/2) is N(1, 1); capping the ratio at the burn-in maximum
    # (x ≈ 3.9) changes nothing measurable
    assert abs(float(x.mean()) - 1.0) < 0.02 and abs(float(x.std()) - 1.0) < 0.02
    # a lower percentile caps the ratio: samples beyond the cap keep the p_g shape, the mean falls short
    capped = rejection_sample(ShiftedGaussian(), 40_000, seed=0, percentile=50.0)
    assert 0.3 < float(capped.mean()) < 0.9


def test_drs_sampling_of_a_run_is_seeded_and_selectable(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--preset", "ring8", "--out", str(run), "--set", "train.steps=20", "--set", "train.progress=false",
                 "--set", "sample.method=drs"]) == 0
    for name in ("a", "b"):
        assert main(["sample", str(run), "--n", "300", "--out", str(tmp_path / f"{name}.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert main(["sample", str(run), "--n", "300", "--out", str(tmp_path / "c.npy"), "--sampler", "direct"]) == 0
    assert not np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "c.npy"))
    assert main(["eval", str(run), "--ref", "ring8", "--n", "300", "--sampler", "direct", "--json"]) == 0
    capsys.readouterr()
    assert main(["train", "--preset", "ring8", "--out", str(tmp_path / "h"), "--set", "loss.name=hinge",
                 "--set", "sample.method=drs"]) == 2
    err = capsys.readouterr().err
    assert "sample.method=drs: needs a discriminator whose logit estimates log p_data/p_g" in err and err.count("\n") == 1


def test_acceptance_with_the_gamma_shift_by_hand():
    import math

    from gankit.recipes.drs import acceptance

    logits = torch.tensor([-3.0, -1.0, 0.0, 0.5, 2.0])
    log_m = 0.5
    r = torch.exp((logits - log_m).clamp(max=0.0))
    assert torch.allclose(acceptance(logits, log_m, 0.0), r)          # γ = 0: plain DRS, min(1, e^(l - log M))
    for gamma in (1.0, 3.0):
        for l, p in zip(logits.tolist(), acceptance(logits, log_m, gamma).tolist()):
            rr = min(1.0, math.exp(l - log_m))
            f = math.log(rr) - math.log(1 - rr) - gamma if rr < 1 else math.inf   # the paper's F(x), then σ(F)
            assert p == pytest.approx(1 / (1 + math.exp(-f)) if rr < 1 else 1.0, rel=1e-6)
    assert (acceptance(logits, log_m, 3.0) <= acceptance(logits, log_m, 0.0)).all()


def test_sample_method_auto_uses_drs_only_where_it_applies():
    from gankit.assemble import resolve
    from gankit.recipes import RECIPES

    for sets, expected in ((["loss.name=nonsaturating"], True), (["loss.name=wasserstein"], False)):
        cfg = resolve("ring8", overrides=sets)
        assert cfg.sample.method == "auto"
        from gankit.data import load
        recipe = RECIPES.get("gan")(cfg, load(cfg.data).info, torch.device("cpu"))
        assert recipe.rejection is expected
