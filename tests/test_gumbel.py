"""The Gumbel-softmax sequence GAN: β's schedule by hand, the relaxed sequences (hard tokens are draws from G,
soft one-hots carry G's gradient, the data's <eos>/<pad> layout), relativistic objectives only where a recipe
scores real data in G's step, and a run across its stages that resumes exactly."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from gankit.assemble import resolve
from gankit.cli import main
from gankit.config import ModelConfig
from gankit.data.text import EOS, PAD
from gankit.errors import ConfigError
from gankit.nets.sequence import SEQUENCE_NETS, RNNOptions, sequence_cnn
from gankit.recipes.gumbel import beta_at, relaxed_tokens
from gankit.training import checkpoint

from test_text import QUIET, sets, write_corpus


def test_beta_schedules_by_hand():
    assert beta_at(0, 100.0, "exp", 1000) == pytest.approx(1.0)
    assert beta_at(500, 100.0, "exp", 1000) == pytest.approx(10.0)
    assert beta_at(5000, 100.0, "exp", 1000) == pytest.approx(100.0)
    assert beta_at(250, 101.0, "linear", 1000) == pytest.approx(26.0)
    assert beta_at(-3, 101.0, "linear", 1000) == pytest.approx(1.0)   # still pre-training
    assert beta_at(0, 7.0, "constant", 1000) == 7.0


def small_g(vocab=7, length=6):
    torch.manual_seed(0)
    return SEQUENCE_NETS.get("lstm")(ModelConfig(g_width=8), vocab, length, EOS, PAD, RNNOptions(embed=4))


def test_relaxed_sequences_are_draws_of_g_laid_out_as_the_data():
    G = small_g()
    torch.manual_seed(1)
    soft, hard = relaxed_tokens(G, 400, 6, beta=3.0)
    assert soft.shape == (400, 6, 7) and hard.shape == (400, 6)
    assert torch.allclose(soft.sum(dim=2), torch.ones(400, 6))
    ended = (hard == EOS).int().cumsum(dim=1)
    assert (ended[:, -1] == 1).all()                                 # exactly one <eos> in every sequence
    after = (ended - (hard == EOS).int()) > 0
    assert (hard[after] == PAD).all() and (hard[~after] != PAD).all()
    assert torch.equal(soft[after], F.one_hot(hard[after], 7).float())   # constants after the end
    live = ~after
    live[:, -1] = False
    assert torch.equal(soft[live].argmax(dim=1), hard[live])          # the soft one-hot peaks at the hard token

    # the hard first tokens are draws from G's first softmax (the Gumbel-max trick)
    torch.manual_seed(2)
    _, first = relaxed_tokens(G, 20000, 1 + 1, beta=1.0)
    with torch.no_grad():
        p = torch.softmax(G.step(torch.full((1,), EOS), None, 0)[0][0], dim=0)
    freq = torch.bincount(first[:, 0], minlength=7).float() / 20000
    assert (freq - p).abs().max() < 0.015

    # D's score of the soft sequence has a gradient with respect to G's parameters; the argmax has none
    D = sequence_cnn(7, 4, 0.05, 0.0, 6)
    soft, hard = relaxed_tokens(G, 16, 6, beta=2.0)
    D(soft).sum().backward()
    assert G.head.weight.grad.abs().sum() > 0 and not hard.requires_grad


def test_sharper_relaxation_approaches_the_hard_one_hot():
    G = small_g()
    gaps = []
    for beta in (1.0, 10.0, 1000.0):
        torch.manual_seed(3)
        soft, hard = relaxed_tokens(G, 200, 5, beta)
        gaps.append((soft - F.one_hot(hard, 7).float()).abs().sum(dim=2).mean().item())
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-2


def test_relativistic_objectives_only_where_g_sees_real_scores(capsys):
    assert resolve("gumbel").loss.name == "rsgan"
    resolve("ring8", overrides=["loss.name=rasgan"])
    with pytest.raises(ConfigError, match=r"loss.name=rsgan: a relativistic objective .* train.recipe=cgan .*"
                                          r"recipes that do: gan, .*gumbel"):
        resolve("digits-cond", overrides=["loss.name=rsgan"])
    assert main(["train", "--preset", "digits-stargan", "--set", "loss.name=rsgan", "--dry-run"]) == 2
    assert "relativistic" in capsys.readouterr().err


def test_gumbel_trains_across_its_stages_and_resumes_exactly(tmp_path):
    f = tmp_path / "c.txt"
    write_corpus(f, n=200)
    common = sets(QUIET + ["data.name=text", f"data.path={f}", "data.batch_size=16", "gumbel.pretrain=4",
                           "gumbel.anneal_steps=4", "train.d_steps=2", "train.max_seconds=0", "train.ckpt_every=3",
                           "gumbel.d_scale=0.05"])
    straight, split = tmp_path / "a", tmp_path / "b"
    assert main(["train", "--preset", "gumbel", "--out", str(straight), *common, *sets(["train.steps=10"])]) == 0
    assert main(["train", "--preset", "gumbel", "--out", str(split), *common, *sets(["train.steps=3"])]) == 0   # in MLE
    assert main(["train", "--out", str(split), "--resume", "--set", "train.steps=6"]) == 0                     # adversarial
    assert main(["train", "--out", str(split), "--resume", "--set", "train.steps=10"]) == 0
    for part in ("weights", "state"):
        a = load_file(str(checkpoint.latest(straight / "checkpoints") / f"{part}.safetensors"))
        b = load_file(str(checkpoint.latest(split / "checkpoints") / f"{part}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    rows = [json.loads(r) for r in (straight / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    assert "loss/G" in last and "loss/D" in last
    mean_beta = sum(beta_at(n, 100.0, "exp", 4) for n in range(6)) / 6   # logged: the mean over steps 4..9
    assert last["beta"] == pytest.approx(mean_beta, rel=1e-6)
    out = tmp_path / "s.txt"
    assert main(["sample", str(straight), "--n", "30", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 30 and all(len(line.split()) <= 4 for line in lines)
    assert math.isfinite(last["loss/G"])
