"""``oracle``: SeqGAN's synthetic benchmark (Yu et al. 2017) — token sequences drawn from a random LSTM.

An LSTM language model with embedding 32, hidden 32 and every parameter drawn from N(0, 1) (generator
seeded ``data.oracle_seed``), over a vocabulary of 5,000 tokens, generates sequences of 20 tokens: 10,000
for training and 10,000 held out. Because the true distribution is known, the NLL of a model's samples
under the oracle (NLL_oracle) measures their quality exactly, as the NLL of held-out data under the model
(NLL_test) measures its coverage. The oracle and its data are made once and kept in the cache
(``$GANKIT_CACHE/oracle/seed-S/``: ``oracle.safetensors``, ``train.txt``, ``test.txt`` — the sequences as
lines of token numbers, readable with ``data.name=text``). SeqGAN's own oracle is another random draw, so
NLL values are comparable only within one oracle.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..config import DataConfig
from ..options import option
from ..runtime import cache_root
from .base import DATASETS
from .text import SPECIALS, TextSource

VOCAB, LENGTH, EMBED, HIDDEN, SAMPLES = 5000, 20, 32, 32, 10_000


@dataclass
class OracleOptions:
    TABLE: ClassVar[str] = "data"
    REFUSES: ClassVar[tuple[str, ...]] = ("size", "channels", "labels", "path")

    oracle_seed: int = option(0, "seed of the oracle's weights and of its sequences")


class Oracle(nn.Module):
    """The random LSTM: ``log_prob(x)`` (N, L) of token sequences x (N, L) in 0..VOCAB-1, ``generate(n)``."""

    def __init__(self, vocab: int = VOCAB, embed: int = EMBED, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    @classmethod
    def random(cls, seed: int) -> "Oracle":
        """Every parameter ~ N(0, 1) from a generator seeded ``seed`` (the global RNG is not touched)."""
        oracle = cls()
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in oracle.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        return oracle.eval()

    def _logits(self, inputs: Tensor) -> Tensor:
        out, _ = self.rnn(self.embed(inputs))
        return self.head(out)

    @torch.no_grad()
    def log_prob(self, x: Tensor) -> Tensor:
        """log P(x_t | x_<t) (N, L); the first token is predicted from a zero input token."""
        inputs = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        return torch.log_softmax(self._logits(inputs).float(), dim=2).gather(2, x[:, :, None])[:, :, 0]

    @torch.no_grad()
    def generate(self, n: int, length: int, generator: torch.Generator) -> Tensor:
        """n sequences (n, length) of token ids drawn from the oracle."""
        ids = torch.zeros(n, dtype=torch.int64)
        state, out = None, []
        for _ in range(length):
            h, state = self.rnn(self.embed(ids[:, None]), state)
            cdf = torch.softmax(self.head(h[:, 0]).float(), dim=1).cumsum(dim=1)   # inverse-CDF sampling
            u = torch.rand(n, 1, generator=generator) * cdf[:, -1:]
            ids = torch.searchsorted(cdf, u).squeeze(1).clamp_(max=cdf.shape[1] - 1)
            out.append(ids)
        return torch.stack(out, dim=1)


def oracle_dir(seed: int) -> Path:
    return cache_root() / "oracle" / f"seed-{seed}"


def oracle_files(seed: int) -> tuple[Oracle, Tensor, Tensor]:
    """The oracle of ``seed`` and its training and held-out sequences (SAMPLES x LENGTH each), made once
    and cached."""
    folder = oracle_dir(seed)
    weights = folder / "oracle.safetensors"
    if weights.exists():
        oracle = Oracle()
        oracle.load_state_dict(load_file(str(weights)))
        oracle.eval()
        data = load_file(str(folder / "sequences.safetensors"))
        return oracle, data["train"], data["test"]
    oracle = Oracle.random(seed)
    g = torch.Generator().manual_seed(seed + 1)
    train, test = oracle.generate(SAMPLES, LENGTH, g), oracle.generate(SAMPLES, LENGTH, g)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".tmp"
    tmp.mkdir(exist_ok=True)
    for name, x in (("train", train), ("test", test)):
        (tmp / f"{name}.txt").write_text("".join(" ".join(map(str, row)) + "\n" for row in x.tolist()))
    save_file({"train": train, "test": test}, str(tmp / "sequences.safetensors"))
    save_file({k: v.contiguous() for k, v in oracle.state_dict().items()}, str(tmp / "oracle.safetensors"))
    for f in ("train.txt", "test.txt", "sequences.safetensors", "oracle.safetensors"):   # weights last: complete
        os.replace(tmp / f, folder / f)
    tmp.rmdir()
    return oracle, train, test


def vocabulary() -> list[str]:
    """The oracle's tokens as words "0".."4999", after the specials: token k has id k + 3."""
    return [*SPECIALS, *map(str, range(VOCAB))]


def as_ids(tokens: Tensor) -> Tensor:
    """Oracle tokens (N, L) -> the data set's ids (N, L + 1): shifted past the specials, then <eos>."""
    eos = torch.full_like(tokens[:, :1], SPECIALS.index("<eos>"))
    return torch.cat([tokens + len(SPECIALS), eos], dim=1)


@DATASETS.register("oracle", options=OracleOptions)
def load_oracle(cfg: DataConfig, opts: OracleOptions) -> TextSource:
    _, train, test = oracle_files(opts.oracle_seed)
    if cfg.split == "test":
        train = test
    return TextSource(as_ids(train), as_ids(test), vocabulary(), "word", "oracle")
