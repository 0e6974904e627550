"""Sentences of two styles, unpaired, for text style transfer: ``text-pairs`` (a folder) and
``reviews-sentiment`` (the movie reviews of ``reviews.py``, negative and positive).

``text-pairs``: data.path is a folder holding ``trainA.txt`` and ``trainB.txt`` — one sentence a line, UTF-8,
any language, split into words (``data.level=word``, the default) or characters — and optionally
``testA.txt`` and ``testB.txt``, the held-out sentences (without them the last ``data.test_share`` of each
training file is held out). Nothing pairs a line of A with a line of B. ``reviews-sentiment``: the
sentences of at most ``data.max_len`` tokens rated above 0.5 (positive, style B) or below −0.5 (negative,
style A) by Hutto & Gilbert's raters; a seeded random ``data.test_share`` of each style held out.

Both give a ``TextSource`` whose sequences carry their style as the class (``y``: 0 = A, 1 = B; ``test_y``
for the held-out split), with one vocabulary built from the training sentences of both styles, so a
sentence and its translation are written in the same tokens:

    source = load(DataConfig(name="text-pairs", path="DIR"), TextPairsOptions())
    source.x[source.y == 0]          # style A's training sentences, int64 (N_A, max_len + 1)
    source.test[source.test_y == 1]  # style B's held-out ones
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..config import DataConfig
from ..errors import DataError
from ..options import option
from .base import DATASETS
from .reviews import SPLIT_SEED, held_out, read_corpus
from .text import LEVELS, TextSource, build_vocab, encode, read_lines, tokenize

FILES = ("trainA.txt", "trainB.txt", "testA.txt", "testB.txt")
POSITIVE, NEGATIVE = 0.5, -0.5   # reviews-sentiment: a sentence rated above / below these is positive / negative

Sentences = list[list[str]]


@dataclass
class TextPairsOptions:
    """Options of the two-style sentence sets, read from the ``[data]`` table."""

    TABLE: ClassVar[str] = "data"
    REFUSES: ClassVar[tuple[str, ...]] = ("size", "channels", "labels")

    level: str = option("word", "split sentences into characters or whitespace-separated words", choices=LEVELS)
    max_len: int = option(0, "the longest sentence, in tokens; 0 = the longest one read; text-pairs: a longer "
                             "line is an error; reviews-sentiment: longer sentences are left out (20 when 0)", min=0)
    vocab_size: int = option(5000, "the most frequent tokens of both styles kept (besides <pad> <eos> <unk>); "
                                   "the rest read as <unk>", above=0)
    test_share: float = option(0.1, "share of each style held out when there is no testA.txt/testB.txt", above=0,
                               below=1)


def styled_source(train: tuple[Sentences, Sentences], test: tuple[Sentences, Sentences], opts: TextPairsOptions,
                  name: str, classes: tuple[str, str], split: str) -> TextSource:
    """One TextSource of both styles: A's sentences then B's, labelled 0 and 1, one vocabulary."""
    everything = [s for part in (*train, *test) for s in part]
    max_len = opts.max_len or max(len(s) for s in everything)
    vocab = build_vocab([s for part in train for s in part], opts.vocab_size)

    def both(parts: tuple[Sentences, Sentences], what: str) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([encode(p, vocab, max_len, f"{name} ({what} of style {c})") for p, c in zip(parts, classes)])
        y = torch.cat([torch.full((len(p),), k, dtype=torch.int64) for k, p in enumerate(parts)])
        return x, y

    x, y = both(train, "training sentences")
    held, held_y = both(test, "held-out sentences")
    words = [s for part in train for s in part], [s for part in test for s in part]
    if split == "test":
        x, y, words = held, held_y, (words[1], words[1])
    return TextSource(x, held, vocab, opts.level, name, y=y, classes=classes, test_y=held_y, words=words)


def check_sizes(train: tuple[Sentences, Sentences], test: tuple[Sentences, Sentences], cfg: DataConfig,
                where: tuple[str, str]) -> None:
    """Each style needs a batch of training sentences and at least one held-out sentence."""
    for part, held, what in zip(train, test, where):
        if len(part) < cfg.batch_size:
            raise DataError(f"{what}: {len(part)} training sentences, fewer than data.batch_size={cfg.batch_size}; "
                            f"give more sentences or lower data.batch_size")
        if not held:
            raise DataError(f"{what}: no held-out sentence; give more lines or raise data.test_share")


@DATASETS.register("text-pairs", options=TextPairsOptions)
def load_text_pairs(cfg: DataConfig, opts: TextPairsOptions) -> TextSource:
    if not cfg.path:
        raise DataError("data.name=text-pairs: give the folder with data.path=DIR (trainA.txt trainB.txt "
                        "[testA.txt testB.txt], one sentence a line)")
    if not os.path.isdir(cfg.path):
        raise DataError(f"data.path {cfg.path}: not a folder (text-pairs reads trainA.txt trainB.txt "
                        f"[testA.txt testB.txt] from a folder)")
    present = {f: os.path.exists(os.path.join(cfg.path, f)) for f in FILES}
    missing = [f for f in FILES[:2] if not present[f]]
    if missing:
        raise DataError(f"data.path {cfg.path}: no {' or '.join(missing)} (text-pairs reads trainA.txt trainB.txt "
                        f"[testA.txt testB.txt], one sentence a line)")
    if present["testA.txt"] != present["testB.txt"]:
        have, lack = ("testA.txt", "testB.txt") if present["testA.txt"] else ("testB.txt", "testA.txt")
        raise DataError(f"data.path {cfg.path}: {have} without {lack}; give both held-out files or neither")

    def read(name: str) -> Sentences:
        path = os.path.join(cfg.path, name)
        return [tokenize(line, opts.level) for line in read_lines(path, f"text-pairs {name}")]

    train_a, train_b = read("trainA.txt"), read("trainB.txt")
    if present["testA.txt"]:
        test = (read("testA.txt"), read("testB.txt"))
        train = (train_a, train_b)
    else:
        cut = [len(p) - math.floor(len(p) * opts.test_share) for p in (train_a, train_b)]
        train = (train_a[:cut[0]], train_b[:cut[1]])
        test = (train_a[cut[0]:], train_b[cut[1]:])
    check_sizes(train, test, cfg, (os.path.join(cfg.path, "trainA.txt"), os.path.join(cfg.path, "trainB.txt")))
    return styled_source(train, test, opts, "text-pairs", ("A", "B"), cfg.split)


@DATASETS.register("reviews-sentiment", options=TextPairsOptions)
def load_reviews_sentiment(cfg: DataConfig, opts: TextPairsOptions) -> TextSource:
    limit = opts.max_len or 20
    styles: tuple[Sentences, Sentences] = ([], [])
    for rating, sentence in read_corpus(cfg):
        tokens = tokenize(sentence, opts.level)
        if 0 < len(tokens) <= limit and (rating < NEGATIVE or rating > POSITIVE):
            styles[int(rating > POSITIVE)].append(tokens)
    masks = [held_out(len(s), opts.test_share, SPLIT_SEED + k).tolist() for k, s in enumerate(styles)]
    train = tuple([t for t, m in zip(s, mask) if not m] for s, mask in zip(styles, masks))
    test = tuple([t for t, m in zip(s, mask) if m] for s, mask in zip(styles, masks))
    check_sizes(train, test, cfg, ("reviews-sentiment (negative)", "reviews-sentiment (positive)"))
    return styled_source(train, test, opts, "reviews-sentiment", ("negative", "positive"), cfg.split)
