"""The metrics of text style transfer against nltk and hand-computed values, and the two-style data sets."""
from __future__ import annotations

import math
import random

import pytest
import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from gankit.cli import main
from gankit.config import DataConfig
from gankit.data import load
from gankit.data.text import decode_all
from gankit.data.text_pairs import TextPairsOptions
from gankit.metrics.transfer import NgramLM, StyleClassifier, TransferJudge, pair_bleu, retrieve, transfer_report
from gankit.training.evaluation import transfer_judge

SMOOTH = SmoothingFunction().method1


def test_pair_bleu_equals_nltk_sentence_bleu_against_each_own_reference():
    rng = random.Random(0)
    words = list("abcdef")
    refs = [[rng.choice(words) for _ in range(rng.randint(1, 9))] for _ in range(60)]
    hyps = [[rng.choice(words) for _ in range(rng.randint(1, 9))] for _ in range(58)] + [["z"], refs[-1][:]]
    want = sum(sentence_bleu([r], h, smoothing_function=SMOOTH) for h, r in zip(hyps, refs)) / len(hyps)
    assert pair_bleu(hyps, refs) == pytest.approx(want, rel=1e-12)
    assert pair_bleu([["a", "b", "c", "d", "e"]], [["a", "b", "c", "d", "e"]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        pair_bleu([["a"]], [])


def test_kneser_ney_by_hand():
    # sentences "a b", "a c", "b"; bigrams with <s> and </s>: (<s> a) x2, (a b), (a c), (b </s>) x2, (c </s>), (<s> b)
    lm = NgramLM([["a", "b"], ["a", "c"], ["b"]], order=2, discount=0.75)
    # continuation counts N1+(. w): a 1 (<s>), b 2 (a, <s>), c 1 (a), </s> 2 (b, c); total 6, 4 words; |V| = 5 (+ <unk>)
    uni = {w: max(n - 0.75, 0) / 6 + 0.75 * 4 / 6 / 5 for w, n in {"a": 1, "b": 2, "c": 1, "</s>": 2, "<unk>": 0}.items()}
    assert uni["a"] == pytest.approx(0.25 / 6 + 0.1) and uni["<unk>"] == pytest.approx(0.1)
    assert lm.prob("a", []) == pytest.approx(0.75 * 2 / 3 * uni["a"] + 1.25 / 3)   # after <s>
    assert lm.prob("b", ["a"]) == pytest.approx(0.25 / 2 + 0.75 * 2 / 2 * uni["b"])       # 0.35625
    assert lm.prob("</s>", ["a", "b"]) == pytest.approx(1.25 / 2 + 0.75 * 1 / 2 * uni["</s>"])   # 0.740625
    assert lm.prob("b", ["zzz"]) == pytest.approx(uni["b"])        # an unseen history backs off
    assert lm.prob("qqq", ["a"]) == pytest.approx(0.75 * 2 / 2 * uni["<unk>"])   # an unseen word reads as <unk>
    logp = math.log(0.4875) + math.log(0.35625) + math.log(0.740625)
    assert lm.log_prob(["a", "b"]) == (pytest.approx(logp), 3)
    assert lm.perplexity([["a", "b"]]) == pytest.approx(math.exp(-logp / 3))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_kneser_ney_distributions_sum_to_one(order):
    rng = random.Random(order)
    words = list("abcdefgh")
    lm = NgramLM([[rng.choice(words) for _ in range(rng.randint(1, 7))] for _ in range(50)], order=order)
    for history in ([], ["a"], ["a", "b"], ["c", "a", "b"], ["q", "h"]):
        assert sum(lm.prob(w, history) for w in lm.vocab) == pytest.approx(1.0, abs=1e-12)


def styles(n=120, seed=0):
    """Two styles of one grammar: 'the <noun> is <good words>' and 'the <noun> is <bad words>'."""
    rng = random.Random(seed)
    nouns = ["film", "plot", "cast", "story", "script"]
    good, bad = ["great", "lovely", "superb", "fun"], ["dull", "awful", "boring", "bad"]
    make = lambda adjs: ["the", rng.choice(nouns), "is", rng.choice(adjs), "and", rng.choice(adjs)]
    return [make(bad) for _ in range(n)], [make(good) for _ in range(n)]


def test_style_classifier_and_the_baselines_on_separable_styles():
    (a, b), (ta, tb) = styles(), styles(20, seed=1)
    clf = StyleClassifier(a, b)
    assert clf.accuracy(ta, 0) == 1.0 and clf.accuracy(tb, 1) == 1.0
    assert clf.accuracy([["the", "film", "is", "superb"]], 1) == 1.0
    assert list(clf.predict([["dull", "awful"], ["fun", "lovely"]])) == [0, 1]
    # retrieval: the most shared distinct words; ties go to the first
    pool = [["x", "y"], ["a", "b", "c"], ["a", "b", "d"], ["a"]]
    assert retrieve([["a", "b", "a", "d"], ["a"], ["q"]], pool) == [["a", "b", "d"], ["a", "b", "c"], ["x", "y"]]

    judge = TransferJudge(a, b, ta, tb)
    assert judge.classifier_acc == 1.0
    swap = {"dull": "great", "awful": "lovely", "boring": "superb", "bad": "fun"}
    swap.update({v: k for k, v in swap.items()})
    report = transfer_report(judge, lambda inputs, direction: [[swap.get(w, w) for w in s] for s in inputs])
    model, copy, retrieval = report["model"], report["copy"], report["retrieval"]
    assert model["transfer_acc/AtoB"] == 100 and model["transfer_acc/BtoA"] == 100
    assert model["content_bleu/AtoB"] == pytest.approx(100 * pair_bleu([[swap.get(w, w) for w in s] for s in ta], ta))
    assert copy["content_bleu"] == pytest.approx(100) and copy["transfer_acc"] == 0
    for row in (model, copy, retrieval):
        for d in ("AtoB", "BtoA"):
            assert row[f"g2/{d}"] == pytest.approx(math.sqrt(row[f"transfer_acc/{d}"] * row[f"content_bleu/{d}"]))
        assert row["g2"] == pytest.approx((row["g2/AtoB"] + row["g2/BtoA"]) / 2)
    assert retrieval["transfer_acc"] == 100                     # retrieved sentences are of the target style
    assert model["fluency_ppl/AtoB"] < copy["fluency_ppl/AtoB"]  # style B's model reads B-style words better
    assert report["classifier"]["classifier_acc"] == 100


def write_pairs(folder, n_a=80, n_b=80, test=True):
    (a, b), (ta, tb) = styles(max(n_a, n_b)), styles(10, seed=1)
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in (("trainA", a[:n_a]), ("trainB", b[:n_b]), *((("testA", ta), ("testB", tb)) if test else ())):
        (folder / f"{name}.txt").write_text("".join(" ".join(s) + "\n" for s in lines))
    return folder


def test_text_pairs_reads_two_styles_with_one_vocabulary(tmp_path):
    source = load(DataConfig(name="text-pairs", path=str(write_pairs(tmp_path / "d")), batch_size=16), TextPairsOptions())
    assert source.info.kind == "tokens" and source.info.classes == ["A", "B"]
    assert source.x.shape == (160, 7) and source.test.shape == (20, 7)
    assert source.y.tolist() == [0] * 80 + [1] * 80 and source.test_y.tolist() == [0] * 10 + [1] * 10
    assert decode_all(source.test[:1], source.info)[0] == " ".join(styles(10, seed=1)[0][0])
    # without test files: the last test_share of each style is held out
    held = load(DataConfig(name="text-pairs", path=str(write_pairs(tmp_path / "e", test=False)), batch_size=16),
                TextPairsOptions(test_share=0.25))
    assert held.x.shape[0] == 120 and held.test_y.tolist() == [0] * 20 + [1] * 20
    test = load(DataConfig(name="text-pairs", path=str(tmp_path / "d"), batch_size=16, split="test"), TextPairsOptions())
    assert torch.equal(test.x, source.test) and torch.equal(test.y, source.test_y)


def test_the_judge_reads_the_words_as_written_not_the_vocabulary_ids(tmp_path):
    """Words outside the vocabulary are <unk> to the model, but the judge scores against the text itself."""
    folder = write_pairs(tmp_path / "d")
    source = load(DataConfig(name="text-pairs", path=str(folder), batch_size=16), TextPairsOptions(vocab_size=4))
    judge = transfer_judge(source)
    lines = [line.split() for line in (folder / "testA.txt").read_text().splitlines()]
    assert judge.test[0] == lines and "<unk>" not in {w for s in judge.test[0] for w in s}
    assert "<unk>" in decode_all(source.test[:10], source.info)[0].split()   # what the model reads
    assert judge.train[1] == [line.split() for line in (folder / "trainB.txt").read_text().splitlines()]


@pytest.mark.parametrize("layout, message", [
    ("no-b", "no trainB.txt"),
    ("empty-a", "no lines of text"),
    ("binary-b", "a binary file"),
    ("few-b", "fewer than data.batch_size=64"),
    ("only-test-a", "testA.txt without testB.txt"),
    ("a-file", "not a folder"),
])
def test_bad_text_pairs_are_one_line_errors(tmp_path, capsys, layout, message):
    folder = write_pairs(tmp_path / "d", n_b=10 if layout == "few-b" else 80, test=layout != "only-test-a")
    if layout == "no-b":
        (folder / "trainB.txt").unlink()
    elif layout == "empty-a":
        (folder / "trainA.txt").write_text("\n  \n")
    elif layout == "binary-b":
        (folder / "trainB.txt").write_bytes(b"\x00\x01\x02")
    elif layout == "only-test-a":
        (folder / "testA.txt").write_text("the film is fun\n")
    path = folder / "trainA.txt" if layout == "a-file" else folder
    out = tmp_path / "run"
    code = main(["train", "--preset", "mle", "--out", str(out), "--set", "data.name=text-pairs", "--set", f"data.path={path}",
                 "--set", "train.steps=1", "--set", "train.max_seconds=0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not out.exists()
