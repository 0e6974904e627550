"""The numeric claims of `gankit lab` (quick mode), each against its exact value."""
import math

import pytest

from gankit.cli import main
from gankit.lab import LABS

LOG2 = math.log(2)


def run(name, tmp_path):
    out = tmp_path / name
    out.mkdir()
    values = LABS.get(name).run(out, True)
    assert (out / "summary.md").read_text().startswith("# ") and list(out.glob("*.png"))
    return values


def test_lab_lists_every_experiment(capsys):
    assert main(["lab"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["discrete-gradient", "f-divergences", "js-vs-wasserstein", "mode-collapse", "optimal-d",
                     "paper-figure"]
    assert main(["lab", "nope"]) == 2


def test_optimal_d(tmp_path):
    v = run("optimal-d", tmp_path)
    assert v["max_abs_error_D"] < 0.1 and v["mean_abs_error_D"] < 0.03
    assert v["V(G,D*)"] == pytest.approx(v["2JSD-2log2"], abs=1e-3)      # the identity, by integration
    assert v["V(G,D_trained)"] == pytest.approx(v["V(G,D*)"], abs=0.01)


def test_js_stays_log2_while_w1_falls_linearly(tmp_path):
    v = run("js-vs-wasserstein", tmp_path)
    for th in (3, 2, 1):
        assert v[f"JS(theta={th})"] == pytest.approx(LOG2, abs=1e-6)           # disjoint: exactly log 2
        assert v[f"W1(theta={th})"] == th
    for th in (3, 2):
        assert v[f"JS_vanilla_D(theta={th})"] == pytest.approx(LOG2, abs=0.01)
    for th in (3, 2, 1, 0.5):
        assert v[f"W1_critic(theta={th:g})"] == pytest.approx(th, rel=0.1)
    assert v["JS(theta=0)"] == pytest.approx(0, abs=1e-6) and abs(v["W1_critic(theta=0)"]) < 0.01


def test_f_divergence_critics_reach_the_exact_values(tmp_path):
    v = run("f-divergences", tmp_path)
    for name in ("kl", "reverse-kl", "js", "pearson", "hellinger", "tv"):
        assert v[f"{name} relative error"] < 0.05, name


def test_paper_figure_converges(tmp_path):
    v = run("paper-figure", tmp_path)
    assert v["W1(p_g, p_data) start"] > 2 and v["W1(p_g, p_data) end"] < 0.25
    assert v["mean |D - 1/2| on the data at the end"] < 0.15


def test_mode_collapse_contrast(tmp_path):
    v = run("mode-collapse", tmp_path)
    assert v["ring8 preset: modes at step 1200"] == 8
    assert v["plain GAN: modes at step 1200"] < 8


def test_discrete_gradient_claims(tmp_path):
    v = LABS.get("discrete-gradient").run(tmp_path, True)
    assert v["argmax_grad_norm"] == 0 and v["exact_grad_norm"] > 0.01           # the argmax passes nothing back
    for name in ("reinforce", "reinforce_baseline"):                              # unbiased
        assert v[f"{name}_bias"] < 3 * v[f"{name}_stderr"]
    assert v["reinforce_baseline_variance"] < 0.5 * v["reinforce_variance"]      # the baseline cuts the variance
    assert v["gumbel_2_bias"] > 3 * v["gumbel_2_stderr"]                          # Gumbel-softmax is biased ...
    assert v["gumbel_2_bias"] > v["gumbel_1_bias"] > v["gumbel_0.5_bias"]         # ... less so as τ falls
    variances = [v[f"gumbel_{t}_variance"] for t in ("2", "1", "0.5", "0.25", "0.1")]
    assert variances == sorted(variances)                                          # while its variance grows
    assert v["gumbel_1_variance"] < v["reinforce_baseline_variance"]
    assert (tmp_path / "discrete_gradient.png").exists() and "REINFORCE" in (tmp_path / "summary.md").read_text()
