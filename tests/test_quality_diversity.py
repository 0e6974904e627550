"""The quality–diversity picture: an MLE run swept over temperatures, other runs as points; held-out NLL at a
temperature computed by hand; BLEU / self-BLEU the metrics' own; the PNG; bad arguments one line each."""
from __future__ import annotations

import json

import pytest
import torch

from gankit.cli import main
from gankit.data import load
from gankit.metrics.text import as_words, bleu
from gankit.quality_diversity import quality_diversity
from gankit.run import draw, open_run

from test_text import QUIET, sets, write_corpus


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qd")
    f = tmp / "c.txt"
    write_corpus(f, n=400)
    common = sets(QUIET + ["data.name=text", f"data.path={f}", "model.g_width=16", "data.batch_size=32",
                           "train.max_seconds=0", "train.keep=10"])
    assert main(["train", "--preset", "mle", "--out", str(tmp / "mle"), *common, *sets(["train.steps=60"])]) == 0
    assert main(["train", "--preset", "seqgan", "--out", str(tmp / "gan"), *common,
                 *sets(["train.steps=22", "seqgan.pretrain=20", "seqgan.d_pretrain=1", "seqgan.rollouts=2",
                        "seqgan.d_scale=0.05"])]) == 0
    return tmp


def test_sweep_on_text_with_points_and_the_picture(runs, capsys):
    png = runs / "qd.png"
    start = runs / "gan" / "checkpoints" / "step_0000020"   # the GAN's maximum-likelihood start, a checkpoint
    assert main(["eval", str(runs / "mle"), "--temperatures", "1.0,0.5", "--points", str(runs / "gan"), str(start),
                 "--curve", str(png), "--n", "200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["axes"] == ["self_bleu_5", "bleu_5"]
    assert [c["temperature"] for c in result["curve"]] == [0.5, 1.0]
    assert [p["label"] for p in result["points"]] == [str(runs / "gan"), str(start)]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cold, warm = result["curve"]
    assert cold["self_bleu_5"] > warm["self_bleu_5"]   # a colder sampler repeats itself more

    # the held-out NLL at T and BLEU of the T-samples, recomputed independently
    loaded = open_run(runs / "mle")
    test = load(loaded.cfg.data, loaded.cfg.owned.get("text")).test
    G = loaded.recipe.G
    with torch.no_grad():
        logp = torch.log_softmax(G(G.shifted(test)) / 0.5, dim=2).gather(2, test[:, :, None])[:, :, 0]
    scored = test != 0
    assert cold["nll_test"] == pytest.approx(float(-logp[scored].sum() / scored.sum()), rel=1e-5)
    loaded.recipe.temperature = 0.5
    words = as_words(draw(loaded, 200, seed=0), loaded.info.vocab, "word")
    refs = as_words(test, loaded.info.vocab, "word")
    assert cold["bleu_5"] == pytest.approx(bleu(words, refs, 5), rel=1e-9)


def test_bad_sweep_arguments_are_one_line(runs, capsys):
    mle = str(runs / "mle")
    for argv, message in [(["--temperatures", "0.5,abc"], "expected numbers separated by commas"),
                          (["--temperatures", "0,1"], "positive finite"),
                          (["--points", mle], "go with --temperatures"),
                          (["--temperatures", "1", "--curve", str(runs / "c.jpg")], "a .png file"),
                          (["--temperatures", "1", "--curve", str(runs / "no" / "c.png")], "does not exist")]:
        assert main(["eval", mle, *argv, "--n", "20"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


def test_sweep_on_the_oracle(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "o"
    assert main(["train", "--preset", "mle", "--out", str(run), *sets(QUIET + ["train.steps=4", "train.max_seconds=0"])]) == 0
    result = quality_diversity(run, [1.0], n=100)
    assert result["axes"] == ("nll_test", "nll_oracle")
    assert main(["eval", str(run), "--n", "100", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert result["curve"][0]["nll_test"] == pytest.approx(plain["nll_test"], rel=1e-6)
    assert result["curve"][0]["nll_oracle"] == pytest.approx(plain["nll_oracle"], rel=1e-6)
