"""Networks over token sequences: an LSTM or GRU language model (the generator of the sequence recipes).

    G = build_sequence(m, vocab_size=V, max_len=L)
    logits = G(x)          # x int64 (N, T) input ids -> (N, T, V): the next-token logits after each prefix
    logits, state = G.step(ids, state)   # one step of sampling: ids (N,) -> (N, V)

The input at position t is the token of position t - 1, and ``<eos>`` (``data.text.EOS``) at t = 0: the
start of a sequence is its predecessor's end. ``model.g_width`` is the hidden size; the embedding size and
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


class LanguageModel(nn.Module):
    """Embedding -> LSTM/GRU (g_width hidden units) -> Linear to the vocabulary."""

    def __init__(self, cell: str, vocab_size: int, embed: int, hidden: int, layers: int, start: int) -> None:
        super().__init__()
        self.vocab_size, self.start = vocab_size, start
        self.embed = nn.Embedding(vocab_size, embed)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def shifted(self, x: Tensor) -> Tensor:
        """The inputs that predict x (N, T): the start token, then x without its last position."""
        first = torch.full_like(x[:, :1], self.start)
        return torch.cat([first, x[:, :-1]], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """Next-token logits (N, T, V) for input ids x (N, T)."""
        out, _ = self.rnn(self.embed(x))
        return self.head(out)

    def step(self, ids: Tensor, state=None) -> tuple[Tensor, object]:
        """Logits (N, V) of the token after ``ids`` (N,), and the new recurrent state."""
        out, state = self.rnn(self.embed(ids[:, None]), state)
        return self.head(out[:, 0]), state


def _builder(cell: str):
    def build(m: ModelConfig, vocab_size: int, start: int, options: RNNOptions) -> LanguageModel:
        return LanguageModel(cell, vocab_size, options.embed, m.g_width, options.layers, start)

    return build


SEQUENCE_NETS.register("lstm", options=RNNOptions)(_builder("lstm"))
SEQUENCE_NETS.register("gru", options=RNNOptions)(_builder("gru"))
