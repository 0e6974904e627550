"""Networks over token sequences: an LSTM or GRU language model (the generator of the sequence recipes).

    G = SEQUENCE_NETS.get("lstm")(m, vocab_size, length, start, pad, options)
    logits = G(x)          # x int64 (N, T) input ids -> (N, T, V): the next-token logits after each prefix
    logits, state = G.step(ids, state, t)   # one step of sampling: the input ids (N,) at position t -> (N, V)

The input at position t is the token of position t - 1, and ``start`` (the data's ``<eos>``) at t = 0: the
start of a sequence is its predecessor's end. A learned embedding of the position t (< ``length``, the
data's sequences with their ``<eos>``) is added to the input's: a recurrent net left to count positions by
itself ends fixed-length sequences early (an LSTM of 32 units on SeqGAN's oracle stops a third of its
samples before their 20 tokens); with it, lengths are learned. The logit of ``pad`` (the data's ``<pad>``, which only fills
the space after a sequence's end) is −∞: the model never predicts it, so the distribution it is trained on,
scored by and sampled from is the same. ``model.g_width`` is the hidden size; the embedding size and
the cell are the architecture's options (``[lstm] embed``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..options import option
from ..registry import Registry

SEQUENCE_NETS: Registry = Registry("sequence architecture")


@dataclass
class RNNOptions:
    embed: int = option(32, "token embedding size", above=0)
    layers: int = option(1, "stacked recurrent layers", above=0)
    dropout: float = option(0.0, "dropout on the input embeddings and the recurrent outputs, in training", min=0, below=1)


class LanguageModel(nn.Module):
    """Token + position embedding -> LSTM/GRU (g_width hidden units) -> Linear to the vocabulary."""

    def __init__(self, cell: str, vocab_size: int, length: int, embed: int, hidden: int, layers: int, start: int,
                 pad: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.vocab_size, self.length, self.start = vocab_size, length, start
        self.embed = nn.Embedding(vocab_size, embed)
        self.position = nn.Embedding(length, embed)
        self.drop = nn.Dropout(dropout)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)
        never = torch.zeros(vocab_size)
        never[pad] = float("-inf")
        self.register_buffer("never", never, persistent=False)   # added to the logits: −∞ at pad

    def shifted(self, x: Tensor) -> Tensor:
        """The inputs that predict x (N, T): the start token, then x without its last position."""
        first = torch.full_like(x[:, :1], self.start)
        return torch.cat([first, x[:, :-1]], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """Next-token logits (N, T, V) for input ids x (N, T) at positions 0..T-1."""
        e = self.embed(x) + self.position.weight[:x.shape[1]]
        out, _ = self.rnn(self.drop(e))
        return self.logits(self.drop(out))

    def step(self, ids: Tensor, state=None, t: int = 0) -> tuple[Tensor, object]:
        """Logits (N, V) of the token at position t after input ``ids`` (N,) — the token at t - 1, or the start
        token at t = 0 — and the new recurrent state."""
        e = self.embed(ids[:, None]) + self.position.weight[t]
        out, state = self.rnn(self.drop(e), state)
        return self.logits(self.drop(out[:, 0])), state

    def logits(self, h: Tensor) -> Tensor:
        """The head, −∞ at pad (added to the bias: one pass over the logits, not two)."""
        return nn.functional.linear(h, self.head.weight, self.head.bias + self.never)


def _builder(cell: str):
    def build(m: ModelConfig, vocab_size: int, length: int, start: int, pad: int, options: RNNOptions) -> LanguageModel:
        return LanguageModel(cell, vocab_size, length, options.embed, m.g_width, options.layers, start, pad,
                             options.dropout)

    return build


SEQUENCE_NETS.register("lstm", options=RNNOptions)(_builder("lstm"))
SEQUENCE_NETS.register("gru", options=RNNOptions)(_builder("gru"))


class Highway(nn.Module):
    """y = t · relu(W_h x) + (1 − t) · x, t = sigmoid(W_t x) (Srivastava et al. 2015)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.h, self.t = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        t = torch.sigmoid(self.t(x))
        return t * torch.relu(self.h(x)) + (1 - t) * x


class SequenceCNN(nn.Module):
    """SeqGAN's discriminator (after Kim 2014): token embeddings, convolutions of several widths over time,
    max-pooled, a highway layer, dropout, a linear logit. Takes ids (N, L) or, for a relaxed generator,
    distributions over the vocabulary (N, L, V) — their embedding is the probability-weighted mean."""

    def __init__(self, vocab_size: int, embed: int, filters: list[tuple[int, int]], dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.convs = nn.ModuleList(nn.Conv1d(embed, count, width) for width, count in filters)
        total = sum(c for _, c in filters)
        self.highway = Highway(total)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(total, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N,): real (high) or generated."""
        e = self.embed(x) if not x.is_floating_point() else x @ self.embed.weight
        h = e.transpose(1, 2)                               # (N, E, L)
        pooled = [torch.relu(conv(h)).amax(dim=2) for conv in self.convs]
        return self.head(self.dropout(self.highway(torch.cat(pooled, dim=1)))).squeeze(1)


# SeqGAN's filter widths and counts; ``scale`` shrinks the counts for a CPU.
SEQGAN_FILTERS = [(1, 100), (2, 200), (3, 200), (4, 200), (5, 200), (6, 100), (7, 100), (8, 100), (9, 100),
                  (10, 100), (15, 160), (20, 160)]


def sequence_cnn(vocab_size: int, embed: int, scale: float, dropout: float, max_len: int) -> SequenceCNN:
    filters = [(w, max(1, round(c * scale))) for w, c in SEQGAN_FILTERS if w <= max_len]
    return SequenceCNN(vocab_size, embed, filters, dropout)
