"""Metrics of generated token sequences: BLEU against references, self-BLEU, distinct-n, the share of
unique samples, and the NLL of samples under a known oracle.

BLEU-n of one hypothesis against a set of references is Papineni et al.'s: the geometric mean of the
modified n-gram precisions for orders 1..n (uniform weights; each n-gram's count clipped to its largest
count in any single reference), times the brevity penalty exp(1 − r/c) for a hypothesis of c tokens shorter
than the closest reference length r (ties: the shorter). A precision with no match takes 0.1 / its count
(nltk's ``SmoothingFunction().method1``, as Texygen and TextGAN-PyTorch use); a hypothesis with no unigram
match scores 0. ``bleu`` averages it over hypotheses — what ``nltk.translate.bleu_score.sentence_bleu``
gives for each, on the same inputs (tests/test_text_metrics.py) — with every reference at once: the
clipping counts are computed once for the whole reference set. ``self_bleu`` scores each sample against
all the others (Zhu et al. 2018, Texygen): high when the samples repeat each other.
"""
from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from typing import Sequence

from torch import Tensor

from ..data.text import decode

EPSILON = 0.1   # method1's count for a precision without matches

Tokens = Sequence[Sequence[str]]


def _ngrams(seq: Sequence[str], n: int) -> Counter:
    return Counter(tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)) if len(seq) >= n else Counter()


def _sentence_bleu(hyp: Sequence[str], max_counts: list[dict], closest: int, order: int) -> float:
    nums, dens = [], []
    for n in range(1, order + 1):
        counts = _ngrams(hyp, n)
        nums.append(sum(min(c, max_counts[n - 1](g)) for g, c in counts.items()))
        dens.append(max(1, sum(counts.values())))
    if nums[0] == 0:
        return 0.0
    c = len(hyp)
    bp = 1.0 if c > closest else 0.0 if c == 0 else math.exp(1 - closest / c)
    logs = [math.log(num / den if num else EPSILON / den) for num, den in zip(nums, dens)]
    return bp * math.exp(math.fsum(lg / order for lg in logs))


def _closest(lengths: list[int], c: int) -> int:
    """The length in sorted ``lengths`` closest to c (ties: the shorter)."""
    i = bisect.bisect_left(lengths, c)
    candidates = lengths[max(0, i - 1):i + 1]
    return min(candidates, key=lambda r: (abs(r - c), r))


def bleu(hypotheses: Tokens, references: Tokens, order: int = 4) -> float:
    """Mean sentence BLEU-``order`` of the hypotheses, each against all the references."""
    if not hypotheses or not references:
        raise ValueError("bleu needs hypotheses and references")
    tables = []
    for n in range(1, order + 1):
        best: dict[tuple, int] = defaultdict(int)
        for ref in references:
            for g, c in _ngrams(ref, n).items():
                if c > best[g]:
                    best[g] = c
        tables.append(lambda g, best=best: best.get(g, 0))
    lengths = sorted({len(r) for r in references})
    return sum(_sentence_bleu(h, tables, _closest(lengths, len(h)), order) for h in hypotheses) / len(hypotheses)


def self_bleu(samples: Tokens, order: int = 4) -> float:
    """Mean sentence BLEU-``order`` of each sample against all the other samples."""
    if len(samples) < 2:
        raise ValueError("self_bleu needs at least two samples")
    tops = []   # per order: n-gram -> (largest count, how many samples have it, second largest)
    own = [[_ngrams(s, n) for n in range(1, order + 1)] for s in samples]
    for n in range(order):
        top: dict[tuple, list[int]] = {}
        for counts in own:
            for g, c in counts[n].items():
                t = top.setdefault(g, [0, 0, 0])
                if c > t[0]:
                    t[:] = [c, 1, t[0]]
                elif c == t[0]:
                    t[1] += 1
                elif c > t[2]:
                    t[2] = c
        tops.append(top)
    length_counts = Counter(len(s) for s in samples)
    total = 0.0
    for i, s in enumerate(samples):
        def others(n: int):
            def count(g: tuple) -> int:
                best, holders, second = tops[n].get(g, (0, 0, 0))
                return second if own[i][n].get(g, 0) == best and holders == 1 else best
            return count
        lengths = sorted(r for r, k in length_counts.items() if r != len(s) or k > 1)
        total += _sentence_bleu(s, [others(n) for n in range(order)], _closest(lengths, len(s)), order)
    return total / len(samples)


def distinct(samples: Tokens, n: int) -> float:
    """Distinct-n (Li et al. 2016): distinct n-grams over all n-grams of the samples."""
    grams = Counter(g for s in samples for g in _ngrams(s, n).elements())
    return len(grams) / max(1, sum(grams.values()))


def diversity(samples: Tokens) -> dict[str, float]:
    """The share of unique samples, of the most repeated one, and distinct-1..4."""
    counts = Counter(tuple(s) for s in samples)
    out = {"unique_share": len(counts) / len(samples), "top_share": counts.most_common(1)[0][1] / len(samples)}
    out.update({f"distinct_{n}": distinct(samples, n) for n in range(1, 5)})
    return out


def text_metrics(samples: Tokens, references: Tokens, orders: Sequence[int] = (2, 3, 4, 5),
                 self_n: int = 2_000) -> dict[str, float]:
    """BLEU-n against ``references`` and self-BLEU-n (of the first ``self_n`` samples) for each order, and
    ``diversity``."""
    out: dict[str, float] = {}
    for n in orders:
        out[f"bleu_{n}"] = bleu(samples, references, n)
    for n in orders:
        out[f"self_bleu_{n}"] = self_bleu(samples[:self_n], n)
    out.update(diversity(samples))
    return out


def oracle_nll(oracle, ids: Tensor, specials: int, length: int) -> dict[str, float]:
    """Mean per-token NLL under ``oracle`` of sample ids (N, L') (oracle token k = id k + specials), over
    their first ``length`` positions that hold oracle tokens; ``oracle_full_share``: the share of samples
    whose first ``length`` positions all do (the rest stopped early)."""
    x = ids[:, :length]
    valid = x >= specials
    tokens = (x - specials).clamp(min=0)
    logp = oracle.log_prob(tokens)
    return {"nll_oracle": float(-(logp * valid).sum() / valid.sum().clamp(min=1)),
            "oracle_full_share": float(valid.all(dim=1).float().mean())}


def mode_collapse_note(values: dict[str, float]) -> str | None:
    """A verdict when the samples repeat themselves."""
    if values["unique_share"] < 0.9 or values["top_share"] > 0.01:
        return (f"mode collapse: {values['unique_share']:.1%} of samples are unique; the most repeated one is "
                f"{values['top_share']:.1%} of them")
    return None


def as_words(x: Tensor, vocab: Sequence[str], level: str) -> list[list[str]]:
    """Id rows (N, L) as token lists up to their first <eos> (characters for char-level data)."""
    return [list(decode(row, vocab, level)) if level == "char" else decode(row, vocab, level).split() for row in x]
