"""The text metrics against nltk on the same inputs, and the oracle data set."""
from __future__ import annotations

import math
import random

import pytest
import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from gankit.metrics.text import bleu, distinct, diversity, oracle_nll, self_bleu

SMOOTH = SmoothingFunction().method1


def corpus(rng: random.Random, n: int, words: list[str], lo: int = 1, hi: int = 9) -> list[list[str]]:
    return [[rng.choice(words) for _ in range(rng.randint(lo, hi))] for _ in range(n)]


@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_bleu_equals_nltk_sentence_bleu_with_method1(order):
    rng = random.Random(order)
    words = list("abcdefg")
    hyps, refs = corpus(rng, 40, words), corpus(rng, 25, words)
    hyps.append(["z", "z"])            # no unigram match: 0
    hyps.append([])                    # empty
    want = sum(sentence_bleu(refs, h, weights=(1 / order,) * order, smoothing_function=SMOOTH) if h else 0.0
               for h in hyps) / len(hyps)
    assert bleu(hyps, refs, order) == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("order", [2, 4])
def test_self_bleu_equals_nltk_leave_one_out(order):
    rng = random.Random(10 + order)
    samples = corpus(rng, 30, list("abcde"), 2, 7)
    samples += [samples[0][:], samples[0][:]]   # repeats: their n-grams' largest counts are shared
    want = sum(sentence_bleu(samples[:i] + samples[i + 1:], s, weights=(1 / order,) * order, smoothing_function=SMOOTH)
               for i, s in enumerate(samples)) / len(samples)
    assert self_bleu(samples, order) == pytest.approx(want, rel=1e-12)


def test_distinct_and_unique_share_by_hand():
    samples = [["a", "b", "a"], ["a", "b", "a"], ["c"]]
    assert distinct(samples, 1) == pytest.approx(3 / 7)        # a, b, c of 7 unigrams
    assert distinct(samples, 2) == pytest.approx(2 / 4)        # (a b), (b a) of 4 bigrams
    d = diversity(samples)
    assert d["unique_share"] == pytest.approx(2 / 3) and d["top_share"] == pytest.approx(2 / 3)


def test_oracle_nll_by_hand_and_the_oracle_data_set(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    from gankit.data.oracle import LENGTH, SAMPLES, VOCAB, Oracle, oracle_files

    small = Oracle(vocab=7, embed=3, hidden=4)
    with torch.no_grad():
        for p in small.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    x = torch.tensor([[1, 2, 3], [4, 0, 6]])
    logp = small.log_prob(x)
    # by hand: the LSTM run step by step from a zero input token
    state, want = None, []
    for row in x:
        inp, s, total = torch.tensor([[0]]), None, 0.0
        for tok in row:
            h, s = small.rnn(small.embed(inp), s)
            total += torch.log_softmax(small.head(h[0, 0]), 0)[tok].item()
            inp = tok.view(1, 1)
        want.append(total)
    assert torch.allclose(logp.sum(1), torch.tensor(want), atol=1e-5)
    ids = torch.cat([x + 3, torch.tensor([[1], [1]])], dim=1)      # as the data set holds them
    assert oracle_nll(small, ids, 3, 3)["nll_oracle"] == pytest.approx(-sum(want) / 6, rel=1e-5)
    early = ids.clone()
    early[1, 1:] = torch.tensor([1, 0, 0])                         # the second stops after one token
    out = oracle_nll(small, early, 3, 3)
    assert out["oracle_full_share"] == 0.5 and out["nll_oracle"] == pytest.approx(-(want[0] + logp[1, 0].item()) / 4,
                                                                                   rel=1e-5)
    oracle, train, test = oracle_files(3)
    assert train.shape == test.shape == (SAMPLES, LENGTH) and int(train.max()) < VOCAB
    again = oracle_files(3)   # cached: the same
    assert torch.equal(again[1], train) and (tmp_path / "oracle" / "seed-3" / "train.txt").exists()
    # the oracle is peaked (N(0, 1) weights): its data's NLL is far below uniform's log 5000
    nll = -oracle.log_prob(test[:500]).mean().item()
    assert nll < 0.8 * math.log(VOCAB)
