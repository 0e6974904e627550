"""Metrics of text style transfer: did the style change, was the content kept, does it read well.

For sentences translated from one style into the other (held-out inputs, outputs in the target style):

* **transfer accuracy** — the share of outputs an independent style classifier puts in the target style. The
  classifier is a logistic regression on bag-of-n-grams counts (words and word pairs; scikit-learn),
  fitted on the training sentences of both styles; its own accuracy on the held-out sentences is reported
  beside it (``classifier_acc``), since a transfer accuracy means no more than the classifier does.
* **content** — BLEU-4 of each output against its own input (the "self-BLEU" of Shen et al. 2017 and Dai et
  al. 2019), averaged over sentences, ×100, with nltk's method1 smoothing as ``metrics.text``.
* **fluency** — the perplexity of the outputs under an n-gram language model of the target style: interpolated
  Kneser-Ney (Chen & Goodman 1999, one discount per order), trained on that style's training sentences.
* **G2** = √(accuracy × content), both in percent: one number that neither copying the input (content
  100, accuracy low) nor writing any sentence of the target style (accuracy high, content low) can win.

``transfer_report`` scores a model's outputs and, on the same inputs, two baselines: copying the input, and
retrieving the training sentence of the target style that shares the most words with it.

    judge = TransferJudge(train_a, train_b, test_a, test_b)    # token lists
    judge.scores(outputs, inputs, target=1)   # {"transfer_acc", "content_bleu", "fluency_ppl", "g2"}
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Callable, Sequence

import numpy as np

from .text import _ngrams, _sentence_bleu

Tokens = Sequence[Sequence[str]]
DIRECTIONS = {"AtoB": (0, 1), "BtoA": (1, 0)}   # direction -> (source style, target style)
BOS, END, UNKNOWN = "<s>", "</s>", "<unk>"


def pair_bleu(hypotheses: Tokens, references: Tokens, order: int = 4) -> float:
    """Mean sentence BLEU-``order`` of each hypothesis against its own reference (one each), in [0, 1]:
    nltk's ``sentence_bleu([ref], hyp)`` with method1 smoothing, averaged."""
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"pair_bleu needs as many hypotheses as references, got {len(hypotheses)} and {len(references)}")
    total = 0.0
    for hyp, ref in zip(hypotheses, references):
        tables = [lambda g, c=_ngrams(ref, n): c.get(g, 0) for n in range(1, order + 1)]
        total += _sentence_bleu(hyp, tables, len(ref), order)
    return total / len(hypotheses)


class NgramLM:
    """An interpolated Kneser-Ney n-gram language model of token sequences (Chen & Goodman 1999, eq. 26
    with one discount D per order, interpolated down to the uniform distribution over the vocabulary).

    Each sentence is read as <s>^(n-1) w_1 ... w_m </s>. With c the counts of the highest order and N1+(• h w)
    the number of distinct words seen before h w (continuation counts) at the lower orders,

        P(w | h) = max(c(h w) − D, 0) / c(h) + D · N1+(h •) / c(h) · P(w | h')       (h' = h without its first word)
        P(w)     = max(N1+(• w) − D, 0) / N1+(• •) + D · |{w: N1+(• w) > 0}| / N1+(• •) · 1 / |V|

    and P(w | h) = P(w | h') for a history never seen. V is the training words, </s> and <unk> (what any
    word outside the training words reads as), so every probability is positive and each P(· | h) sums to 1."""

    def __init__(self, sentences: Tokens, order: int = 3, discount: float = 0.75) -> None:
        if order < 1 or not 0 < discount < 1:
            raise ValueError(f"NgramLM: order {order} must be >= 1 and discount {discount} in (0, 1)")
        self.order, self.discount = order, discount
        self.vocab = {w for s in sentences for w in s} | {END, UNKNOWN}
        grams: Counter = Counter()
        for s in sentences:
            padded = [BOS] * (order - 1) + list(s) + [END]
            grams.update(tuple(padded[i - order + 1:i + 1]) for i in range(order - 1, len(padded)))
        # counts[k]: the (k+1)-grams' counts (raw at the highest order, continuation counts below it)
        self.counts: list[Counter] = [Counter() for _ in range(order)]
        self.counts[-1] = grams
        for k in range(order - 1, 0, -1):
            for g in self.counts[k]:
                self.counts[k - 1][g[1:]] += 1
        # per history (k words): the total of its (k+1)-grams' counts and how many distinct words follow it
        self.totals: list[Counter] = [Counter() for _ in range(order)]
        self.followers: list[Counter] = [Counter() for _ in range(order)]
        for k in range(order):
            for g, c in self.counts[k].items():
                self.totals[k][g[:-1]] += c
                self.followers[k][g[:-1]] += 1

    def prob(self, word: str, history: Sequence[str]) -> float:
        """P(word | the last order − 1 words of history), history padded with <s> on the left."""
        word = word if word in self.vocab else UNKNOWN
        h = tuple(([BOS] * (self.order - 1) + list(history))[-(self.order - 1):]) if self.order > 1 else ()
        return self._prob(word, h)

    def _prob(self, word: str, h: tuple) -> float:
        k = len(h)
        lower = self._prob(word, h[1:]) if k else 1.0 / len(self.vocab)
        total = self.totals[k].get(h, 0)
        if not total:
            return lower
        c = self.counts[k].get(h + (word,), 0)
        return max(c - self.discount, 0.0) / total + self.discount * self.followers[k][h] / total * lower

    def log_prob(self, sentence: Sequence[str]) -> tuple[float, int]:
        """(natural log-probability of the sentence and its </s>, the number of predicted tokens)."""
        history: list[str] = []
        total = 0.0
        for w in [*sentence, END]:
            total += math.log(self.prob(w, history))
            history.append(w if w in self.vocab else UNKNOWN)
        return total, len(sentence) + 1

    def perplexity(self, sentences: Tokens) -> float:
        """exp of the mean negative log-probability per predicted token (each word and each </s>)."""
        logp, count = 0.0, 0
        for s in sentences:
            lp, n = self.log_prob(s)
            logp, count = logp + lp, count + n
        return math.exp(-logp / max(1, count))


class StyleClassifier:
    """Logistic regression on counts of words and word pairs (scikit-learn), fitted on sentences of two
    styles: ``predict(sentences)`` -> 0 / 1 per sentence."""

    def __init__(self, style_a: Tokens, style_b: Tokens, ngrams: int = 2, c: float = 1.0) -> None:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression

        # the sentences arrive tokenised: tokens are whatever lies between spaces, case kept
        self.vectorizer = CountVectorizer(ngram_range=(1, ngrams), tokenizer=str.split, lowercase=False,
                                          token_pattern=None)
        x = self.vectorizer.fit_transform([" ".join(s) for s in (*style_a, *style_b)])
        y = np.array([0] * len(style_a) + [1] * len(style_b))
        self.model = LogisticRegression(C=c, max_iter=2000).fit(x, y)

    def predict(self, sentences: Tokens) -> np.ndarray:
        return self.model.predict(self.vectorizer.transform([" ".join(s) for s in sentences]))

    def accuracy(self, sentences: Tokens, style: int) -> float:
        """The share of ``sentences`` classified as ``style``."""
        return float(np.mean(self.predict(sentences) == style)) if len(sentences) else 0.0


def retrieve(inputs: Tokens, pool: Tokens) -> list[list[str]]:
    """For each input, the sentence of ``pool`` sharing the most distinct words with it (ties: the first)."""
    holders: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(pool):
        for w in set(s):
            holders[w].append(i)
    out = []
    for s in inputs:
        shared: Counter = Counter()
        for w in set(s):
            shared.update(holders.get(w, ()))
        best = min(shared, key=lambda i: (-shared[i], i)) if shared else 0
        out.append(list(pool[best]))
    return out


class TransferJudge:
    """What scores transfers between two styles: the style classifier and one language model per style,
    both fitted on the training sentences; the held-out sentences are the inputs."""

    def __init__(self, train_a: Tokens, train_b: Tokens, test_a: Tokens, test_b: Tokens, lm_order: int = 3) -> None:
        self.train, self.test = (train_a, train_b), (test_a, test_b)
        self.classifier = StyleClassifier(train_a, train_b)
        self.lms = (NgramLM(train_a, lm_order), NgramLM(train_b, lm_order))
        held = [*test_a, *test_b]
        truth = np.array([0] * len(test_a) + [1] * len(test_b))
        self.classifier_acc = float(np.mean(self.classifier.predict(held) == truth))

    def scores(self, outputs: Tokens, inputs: Tokens, target: int) -> dict[str, float]:
        """transfer_acc and content_bleu in percent, fluency_ppl, g2 = √(transfer_acc × content_bleu)."""
        acc = 100 * self.classifier.accuracy(outputs, target)
        content = 100 * pair_bleu(outputs, inputs)
        return {"transfer_acc": acc, "content_bleu": content, "fluency_ppl": self.lms[target].perplexity(outputs),
                "g2": math.sqrt(acc * content)}

    def baselines(self, direction: str) -> dict[str, list[list[str]]]:
        """The baselines' outputs for the held-out inputs of ``direction``."""
        source, target = DIRECTIONS[direction]
        inputs = self.test[source]
        return {"copy": [list(s) for s in inputs], "retrieval": retrieve(inputs, self.train[target])}


def transfer_report(judge: TransferJudge, translate: Callable[[Tokens, str], Tokens],
                    directions: Sequence[str] = ("AtoB", "BtoA")) -> dict[str, dict[str, float]]:
    """Scores of ``translate(inputs, direction)`` on the held-out sentences of each direction and of the two
    baselines: {"model" | "copy" | "retrieval": {"transfer_acc/AtoB": ..., ..., "transfer_acc": mean, ...}},
    plus {"classifier": {"classifier_acc": ...}}."""
    report: dict[str, dict[str, float]] = {"model": {}, "copy": {}, "retrieval": {}}
    for direction in directions:
        source, target = DIRECTIONS[direction]
        inputs = judge.test[source]
        outputs = {"model": translate(inputs, direction), **judge.baselines(direction)}
        for who, out in outputs.items():
            for key, value in judge.scores(out, inputs, target).items():
                report[who][f"{key}/{direction}"] = value
    for row in report.values():
        for key in ("transfer_acc", "content_bleu", "fluency_ppl", "g2"):
            row[key] = float(np.mean([row[f"{key}/{d}"] for d in directions]))
    report["classifier"] = {"classifier_acc": 100 * judge.classifier_acc}
    return report
