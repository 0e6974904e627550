"""``reviews``: 10,605 English movie-review sentences with human sentiment ratings (Hutto & Gilbert 2014,
"VADER"; the snippets of Pang & Lee's rotten-tomatoes reviews, each rated by 20 people on −4..4).

The corpus ships inside the source distribution of the ``vaderSentiment`` package on PyPI (MIT licence):
``additional_resources/hutto_ICWSM_2014.tar.gz``, file ``movieReviewSnippets_GroundTruth.txt`` (id, mean
rating, sentence; tab-separated). With ``data.download=true`` it is fetched with pip (``pip download
vaderSentiment --no-deps --no-binary :all:``) — the package is never installed — and kept under the data
root (data.path, else $GANKIT_DATA, else ~/.cache/gankit/data) as ``reviews/sentences.tsv``: the rating and
the sentence, lower-cased, punctuation split from the words, tokens joined by one space. A
``vaderSentiment-*.tar.gz`` or the ground-truth file itself put in ``reviews/`` is used without a download.

The sequences are the sentences of at most ``data.max_len`` tokens (longer ones are left out: a sentence
corpus, not the user's own file); the held-out split is a seeded random ``data.test_share`` of them.
"""
from __future__ import annotations

import io
import math
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from ..config import DataConfig
from ..errors import DataError
from ..options import option
from .base import DATASETS
from .text import LEVELS, TextSource, text_source, tokenize
from .vision import data_root

PACKAGE = "vaderSentiment"
INNER = "additional_resources/hutto_ICWSM_2014.tar.gz"
MEMBER = "movieReviewSnippets_GroundTruth.txt"
SENTENCES = 10_605   # ids 1..10605 (`wc -l` says 10,604: the last line has no newline)
SPLIT_SEED = 0
TOKEN = re.compile(r"[\w']+|[^\w\s]")


@dataclass
class ReviewsOptions:
    TABLE: ClassVar[str] = "data"
    REFUSES: ClassVar[tuple[str, ...]] = ("size", "channels", "labels")

    level: str = option("word", "split sentences into characters or words", choices=LEVELS)
    max_len: int = option(20, "keep the sentences of at most this many tokens", above=0)
    vocab_size: int = option(5000, "the most frequent tokens kept (besides <pad> <eos> <unk>); the rest read "
                                   "as <unk>", above=0)
    test_share: float = option(0.1, "share of the kept sentences held out (a seeded random draw)", above=0, below=1)


def normalise(sentence: str) -> str:
    """Lower-cased, '' quotes as ", words and punctuation as tokens joined by single spaces (any other
    white space, line separators included, is a token boundary)."""
    return " ".join(TOKEN.findall(sentence.replace("''", '"').replace("``", '"').lower()))


def parse_ground_truth(raw: bytes, what: str) -> list[tuple[float, str]]:
    """(rating, normalised sentence) of every line "id<TAB>rating<TAB>sentence"."""
    out = []
    for n, line in enumerate(raw.decode("utf-8").split("\n")):   # not splitlines(): a sentence may hold U+2028
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            out.append((float(parts[1]), normalise(parts[2])))
        except (IndexError, ValueError):
            raise DataError(f"{what}: line {n + 1} is not 'id<TAB>rating<TAB>sentence'") from None
    return out


def _from_sdist(path: Path) -> bytes:
    """The ground-truth file's bytes, out of the sdist's nested archive."""
    try:
        with tarfile.open(path) as outer:
            inner = next((m for m in outer.getmembers() if m.name.endswith(INNER)), None)
            if inner is None:
                raise DataError(f"{path}: no {INNER} inside; is it the vaderSentiment source distribution?")
            with tarfile.open(fileobj=io.BytesIO(outer.extractfile(inner).read())) as tar:
                member = next((m for m in tar.getmembers() if m.name.endswith(MEMBER)), None)
                if member is None:
                    raise DataError(f"{path}: {INNER} holds no {MEMBER}")
                return tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .tar.gz ({e})") from None


def _fetch_sdist(into: Path, folder: Path) -> Path:
    """pip downloads vaderSentiment's source distribution into ``into`` (no dependencies, nothing installed);
    ``folder``: where a user may put it instead."""
    cmd = [sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "-q", "-d", str(into)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(into.glob(f"{PACKAGE}-*.tar.gz"))
    if done.returncode or not found:
        last = (done.stderr.strip().splitlines() or ["no archive written"])[-1]
        raise DataError(f"reviews: fetching the {PACKAGE} source distribution with pip failed ({last.strip()}); "
                        f"where there is a network run `pip download {PACKAGE} --no-deps --no-binary :all: -d DIR` "
                        f"and put the .tar.gz in {folder}")
    return found[-1]


def corpus_file(cfg: DataConfig) -> Path:
    """``reviews/sentences.tsv`` under the data root, made on first use from a local sdist or ground-truth
    file, or with data.download=true from PyPI."""
    folder = Path(data_root(cfg)) / "reviews"
    done = folder / "sentences.tsv"
    if done.exists():
        return done
    local = sorted(folder.glob(f"{PACKAGE}-*.tar.gz")) if folder.is_dir() else []
    if (folder / MEMBER).exists():
        raw = (folder / MEMBER).read_bytes()
    elif local:
        raw = _from_sdist(local[-1])
    elif cfg.download:
        with tempfile.TemporaryDirectory() as tmp:
            raw = _from_sdist(_fetch_sdist(Path(tmp), folder))
    else:
        raise DataError(f"reviews: the corpus is not under '{folder}'; run with --set data.download=true (pip fetches "
                        f"the {PACKAGE} source distribution from PyPI) or put its .tar.gz there")
    rows = parse_ground_truth(raw, MEMBER)
    if len(rows) != SENTENCES:
        raise DataError(f"reviews: {MEMBER} holds {len(rows)} sentences, not the {SENTENCES} of the published corpus")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".sentences.tsv.tmp"
    tmp.write_text("".join(f"{rating:g}\t{sentence}\n" for rating, sentence in rows), encoding="utf-8")
    os.replace(tmp, done)
    return done


def read_corpus(cfg: DataConfig) -> list[tuple[float, str]]:
    """(rating, sentence) of every sentence of the corpus, in its order."""
    out = []
    for line in corpus_file(cfg).read_text(encoding="utf-8").split("\n")[:-1]:
        rating, sentence = line.split("\t", 1)
        out.append((float(rating), sentence))
    return out


def held_out(n: int, share: float, seed: int = SPLIT_SEED) -> torch.Tensor:
    """A bool mask (n,): a seeded random ``share`` of n items."""
    k = max(1, math.floor(n * share))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[order[:k]] = True
    return mask


@DATASETS.register("reviews", options=ReviewsOptions)
def load_reviews(cfg: DataConfig, opts: ReviewsOptions) -> TextSource:
    sequences = [tokenize(s, opts.level) for _, s in read_corpus(cfg)]
    sequences = [s for s in sequences if 0 < len(s) <= opts.max_len]
    if not sequences:
        raise DataError(f"reviews: no sentence has at most data.max_len={opts.max_len} tokens")
    test = held_out(len(sequences), opts.test_share).tolist()
    train = [s for s, t in zip(sequences, test) if not t]
    held = [s for s, t in zip(sequences, test) if t]
    source = text_source(train, held, opts, "reviews")
    if cfg.split == "test":
        return TextSource(source.test, source.test, source.info.vocab, opts.level, "reviews")
    return source
