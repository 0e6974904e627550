"""``text``: token sequences from a UTF-8 text file, one sequence per line, for the sequence recipes.

Each line is split into characters (``data.level=char``) or whitespace-separated words (``word``), ends
with ``<eos>`` (so a model learns where sequences stop) and is padded with ``<pad>`` to ``data.max_len`` + 1
ids. The vocabulary is built from the training lines only — the ``data.vocab_size`` most frequent tokens
(ties broken by the token, so it is the same on every machine), rarer ones read as ``<unk>`` — and travels
with the run in its ``data.json``. The held-out split is ``data.test_path`` when given, else the last
``data.test_share`` of the file's lines.

    source = load(DataConfig(name="text", path="train.txt"), TextOptions(level="word"))
    source.x      # int64 (N, max_len + 1) ids; source.test: the held-out lines, the same way
    decode(source.x[0], source.info.vocab, "word")   # the first line back
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch

from ..config import DataConfig
from ..errors import DataError
from ..options import option
from .base import DATASETS, TensorSource

SPECIALS = ("<pad>", "<eos>", "<unk>")
PAD, EOS, UNK = 0, 1, 2
LEVELS = ("char", "word")


@dataclass
class TextOptions:
    """Options of the text data sets, read from the ``[data]`` table (``data.level``, ...)."""

    TABLE: ClassVar[str] = "data"                                   # read from [data], not a table of its own
    REFUSES: ClassVar[tuple[str, ...]] = ("size", "channels", "labels")   # [data] keys that are for images

    level: str = option("word", "split lines into characters or whitespace-separated words", choices=LEVELS)
    max_len: int = option(0, "the longest sequence, in tokens; 0 = the longest training line; longer lines "
                             "are an error", min=0)
    vocab_size: int = option(5000, "the most frequent tokens kept (besides <pad> <eos> <unk>); the rest read "
                                   "as <unk>", above=0)
    test_path: str = option("", "a file of held-out lines; \"\" = the last test_share of the file")
    test_share: float = option(0.1, "share of the lines held out when there is no test_path", min=0, below=1)


def read_all_lines(path: str, what: str = "data.path") -> list[str]:
    """Every line of a UTF-8 text file, stripped, blank ones kept; DataError for a missing, binary, non-UTF-8
    or blank file."""
    try:
        raw = open(path, "rb").read()
    except OSError as e:
        raise DataError(f"{what} {path}: cannot read ({e.strerror})") from None
    if b"\0" in raw:
        raise DataError(f"{what} {path}: a binary file, not text (one sequence per line, UTF-8)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{what} {path}: not UTF-8 text (byte {e.start})") from None
    lines = [line.strip() for line in text.splitlines()]
    if not any(lines):
        raise DataError(f"{what} {path}: no lines of text")
    return lines


def read_lines(path: str, what: str = "data.path") -> list[str]:
    """The non-empty lines of a UTF-8 text file; DataError for a missing, binary, non-UTF-8 or empty file."""
    return [line for line in read_all_lines(path, what) if line]


def tokenize(line: str, level: str) -> list[str]:
    return list(line) if level == "char" else line.split()


def build_vocab(sequences: Sequence[Sequence[str]], size: int) -> list[str]:
    """SPECIALS, then the ``size`` most frequent tokens (ties: the token's own order)."""
    counts = Counter(t for seq in sequences for t in seq)
    ranked = sorted(counts, key=lambda t: (-counts[t], t))[:size]
    return [*SPECIALS, *ranked]


def encode(sequences: Sequence[Sequence[str]], vocab: Sequence[str], max_len: int, what: str) -> torch.Tensor:
    """int64 (N, max_len + 1): the ids of each sequence, <eos>, then <pad>; DataError for a longer one."""
    index = {t: i for i, t in enumerate(vocab)}
    out = torch.full((len(sequences), max_len + 1), PAD, dtype=torch.int64)
    for n, seq in enumerate(sequences):
        if len(seq) > max_len:
            raise DataError(f"{what}: line {n + 1} has {len(seq)} tokens, more than data.max_len={max_len}; "
                            f"raise data.max_len or shorten the line")
        ids = [index.get(t, UNK) for t in seq] + [EOS]
        out[n, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out


def restore_unknown(outputs: Sequence[Sequence[str]], sources: Sequence[Sequence[str]],
                    vocab: Sequence[str]) -> list[list[str]]:
    """Outputs of a model that read ``sources`` with <unk> for each word outside ``vocab``: each <unk> of an
    output replaced by its source's next such word, in order (after Luong et al. 2015's rare-word
    replacement); an <unk> beyond them stays."""
    known = set(vocab)
    out = []
    for tokens, source in zip(outputs, sources):
        rare = iter([w for w in source if w not in known])
        out.append([next(rare, t) if t == SPECIALS[UNK] else t for t in tokens])
    return out


def decode(ids: torch.Tensor, vocab: Sequence[str], level: str) -> str:
    """One sequence of ids back to text, up to its first <eos> (pads dropped)."""
    tokens = []
    for i in ids.tolist():
        if i == EOS:
            break
        if i != PAD:
            tokens.append(vocab[i])
    return ("" if level == "char" else " ").join(tokens)


def decode_all(x: torch.Tensor, info) -> list[str]:
    """Every row of x (N, L) as text, in the vocabulary and level of data set ``info``."""
    return [decode(row, info.vocab, info.level) for row in x]


def lengths(x: torch.Tensor) -> torch.Tensor:
    """(N,) tokens before the first <eos> of each row (the whole row when there is none)."""
    eos = (x == EOS).int()
    has = eos.any(dim=1)
    first = eos.argmax(dim=1)
    return torch.where(has, first, torch.full_like(first, x.shape[1]))


class TextSource(TensorSource):
    """Token sequences in memory: ``x`` the training split, ``test`` the held-out split (int64 (M, L)); for
    sentences of several styles (``text-pairs``), ``y`` and ``test_y`` their styles, named by ``classes``, and
    ``words`` the token lists of both splits as read (words outside the vocabulary kept), row for row."""

    def __init__(self, x: torch.Tensor, test: torch.Tensor, vocab: Sequence[str], level: str, name: str,
                 y: torch.Tensor | None = None, classes: Sequence[str] = (), test_y: torch.Tensor | None = None,
                 words: tuple[list[list[str]], list[list[str]]] | None = None) -> None:
        super().__init__(x, y=y, classes=classes, name=name, vocab=vocab, level=level)
        self.test = test
        self.test_y = test_y
        self.words = words


def text_source(train: list[list[str]], test: list[list[str]], opts: TextOptions, name: str) -> TextSource:
    longest = max(len(s) for s in train)
    max_len = opts.max_len or longest
    vocab = build_vocab(train, opts.vocab_size)
    x = encode(train, vocab, max_len, f"{name} (training lines)")
    held = encode(test, vocab, max_len, f"{name} (held-out lines)") if test else x[:0]
    return TextSource(x, held, vocab, opts.level, name)


@DATASETS.register("text", options=TextOptions)
def load_text(cfg: DataConfig, opts: TextOptions) -> TextSource:
    if not cfg.path:
        raise DataError("data.name=text: give the file with data.path=FILE (UTF-8, one sequence per line)")
    lines = [tokenize(line, opts.level) for line in read_lines(cfg.path)]
    if opts.test_path:
        test = [tokenize(line, opts.level) for line in read_lines(opts.test_path, "data.test_path")]
        train = lines
    else:
        k = math.floor(len(lines) * opts.test_share)
        train, test = (lines[:len(lines) - k], lines[len(lines) - k:]) if k else (lines, [])
    if not train:
        raise DataError(f"data.path {cfg.path}: no training lines left after holding out data.test_share="
                        f"{opts.test_share:g}")
    source = text_source(train, test, opts, "text")
    if cfg.split == "test":
        if not len(source.test):
            raise DataError(f"data.split=test: '{cfg.path}' has no held-out lines (set data.test_path or data.test_share)")
        return TextSource(source.test, source.test, source.info.vocab, opts.level, "text")
    return source
