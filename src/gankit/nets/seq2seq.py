"""Sequence-to-sequence networks: the generators of text style transfer (``recipes/textcycle.py``).

    parts = SEQ2SEQ_NETS.get("gru-attention")
    E = parts.encoder(m, vocab_size, pad, options)           # one encoder may serve several decoders
    dec = parts.decoder(m, vocab_size, start, pad, options)
    G = Seq2Seq(E, dec)                       # a generator: not a module of its own, nothing is saved twice
    memory = G.encode(src)                    # src int64 (N, S) -> the encoder's reading, keyed for dec
    logits = G(memory, inputs)                # teacher forcing: decoder input ids (N, T) -> (N, T, V)
    logits, state = G.step(memory, ids, state)   # one decoding step: the previous ids (N,) -> (N, V)

``gru-attention``: a bidirectional GRU encoder over token embeddings (its two directions of g_width / 2
units each, packed so padding is never read), a GRU decoder of g_width units with its own embedding,
started from the encoder's masked mean, and Luong et al.'s (2015) "general" attention after each decoder
step: a_t = softmax_s(h_t · W m_s) over the source positions s, o_t = tanh(W_c [h_t; Σ_s a_ts m_s]), the
logits a linear map of o_t. The decoder's input at position t is the token at t − 1 (``start``, the data's
``<eos>``, at t = 0), and the logit of ``pad`` is −∞, as in the language models of ``nets/sequence.py``.
Nothing depends on the position, so a sentence longer than the training ones can be translated.

With ``copy`` (the default) the decoder is a pointer-generator (See et al. 2017): its distribution over
the next token mixes what it writes with what it copies, P(w) = g_t · softmax(logits)_w + (1 − g_t) ·
Σ_{s: src_s = w} a_ts, the switch g_t = σ(w_g · [h_t; context_t]) — a word of the source is copied by
attending to it, however rare it was in training, so a few thousand sentences suffice to learn to keep
content. Its outputs are then log P (the logits of that distribution). The copy reads the source's ids: a
source given as straight-through one-hots passes its gradient through the encoder's embedding only (through
the copy, −log P of a word the source lacks has a gradient of 1/P, which blows the writer up).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..config import ModelConfig
from ..errors import ConfigError
from ..options import option
from ..registry import Registry

SEQ2SEQ_NETS: Registry = Registry("sequence-to-sequence architecture")


@dataclass
class AttentionGRUOptions:
    embed: int = option(128, "token embedding size (of the encoder and of each decoder)", above=0)
    dropout: float = option(0.0, "dropout on the embeddings and the decoder's outputs, in training", min=0, below=1)
    copy: bool = option(True, "a pointer-generator decoder: each next token is written or copied from the source "
                              "by attention (See et al. 2017)")


class Memory(NamedTuple):
    """The encoder's reading of a batch of sources, keyed for one decoder's attention."""

    states: Tensor    # (N, S, H) one vector per source position
    keys: Tensor      # (N, S, H) W · states, what the decoder's attention compares with (empty before keying)
    valid: Tensor     # (N, S) bool, False at padding
    initial: Tensor   # (1, N, H) the decoder's initial state
    src: Tensor       # (N, S) the source ids, what the copy reads


class Encoder(nn.Module):
    def __init__(self, vocab_size: int, embed: int, hidden: int, pad: int, dropout: float = 0.0) -> None:
        super().__init__()
        if hidden % 2:
            raise ConfigError(f"model.g_width={hidden}: the bidirectional encoder splits it in two; give an even width")
        self.pad = pad
        self.embed = nn.Embedding(vocab_size, embed)
        self.drop = nn.Dropout(dropout)
        self.rnn = nn.GRU(embed, hidden // 2, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(hidden, hidden)

    def forward(self, src: Tensor, hot: Tensor | None = None) -> Memory:
        """The reading of source ids (N, S): every token up to its first <eos> and that <eos>; the padding
        after it is not read. ``hot`` (N, S, V): the same tokens as (straight-through) one-hots, read as
        their embedding hot @ W, so a gradient reaches whatever wrote them. ``keys`` is left empty: each
        decoder keys the memory for itself."""
        valid = src != self.pad
        lengths = valid.sum(dim=1).clamp(min=1)
        e = self.embed(src) if hot is None else hot @ self.embed.weight
        packed = pack_padded_sequence(self.drop(e), lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        mean = (states * valid[:, :, None]).sum(dim=1) / lengths[:, None]
        return Memory(states, states[:, :0], valid, torch.tanh(self.bridge(mean))[None], src)


class AttentionDecoder(nn.Module):
    def __init__(self, vocab_size: int, embed: int, hidden: int, start: int, pad: int, dropout: float = 0.0,
                 copy: bool = True) -> None:
        super().__init__()
        self.vocab_size, self.start = vocab_size, start
        self.embed = nn.Embedding(vocab_size, embed)
        self.drop = nn.Dropout(dropout)
        self.rnn = nn.GRU(embed, hidden, batch_first=True)
        self.attention = nn.Linear(hidden, hidden, bias=False)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.head = nn.Linear(hidden, vocab_size)
        self.switch = nn.Linear(2 * hidden, 1) if copy else None
        never = torch.zeros(vocab_size)
        never[pad] = float("-inf")
        self.register_buffer("never", never, persistent=False)

    def keyed(self, memory: Memory) -> Memory:
        """The memory with this decoder's attention keys W · states."""
        return memory._replace(keys=self.attention(memory.states))

    def _output(self, memory: Memory, h: Tensor) -> Tensor:
        """Logits (N, T, V) for decoder states h (N, T, H): with ``copy``, log P of the mixture above."""
        scores = h @ memory.keys.transpose(1, 2)                               # (N, T, S)
        scores = scores.masked_fill(~memory.valid[:, None, :], float("-inf"))
        attention = torch.softmax(scores, dim=2)
        context = attention @ memory.states                                    # (N, T, H)
        both = torch.cat([h, context], dim=2)
        o = self.drop(torch.tanh(self.combine(both)))
        logits = nn.functional.linear(o, self.head.weight, self.head.bias + self.never)
        if self.switch is None:
            return logits
        write = torch.sigmoid(self.switch(both).float())                       # (N, T, 1)
        index = memory.src[:, None, :].expand(-1, h.shape[1], -1)
        copied = torch.zeros(*h.shape[:2], self.vocab_size, device=h.device).scatter_add_(2, index, attention.float())
        p = write * torch.softmax(logits.float(), dim=2) + (1 - write) * copied
        return torch.log(p.clamp(min=1e-30)) + self.never                      # <pad>, never in a source: -inf

    def forward(self, memory: Memory, inputs: Tensor) -> Tensor:
        """Teacher forcing: next-token logits (N, T, V) after decoder input ids (N, T)."""
        h, _ = self.rnn(self.drop(self.embed(inputs)), memory.initial)
        return self._output(memory, h)

    def step(self, memory: Memory, ids: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One decoding step: logits (N, V) of the token after ``ids`` (N,) and the decoder's new state
        (``state`` None: the first step, from the encoder's summary)."""
        h, state = self.rnn(self.drop(self.embed(ids[:, None])), memory.initial if state is None else state)
        return self._output(memory, h)[:, 0], state


class Seq2Seq:
    """A generator made of an encoder and a decoder (either may be shared with another generator)."""

    def __init__(self, encoder: Encoder, decoder: AttentionDecoder) -> None:
        self.encoder, self.decoder = encoder, decoder
        self.vocab_size, self.start = decoder.vocab_size, decoder.start

    def encode(self, src: Tensor, hot: Tensor | None = None) -> Memory:
        return self.decoder.keyed(self.encoder(src, hot))

    def shifted(self, x: Tensor) -> Tensor:
        """Decoder inputs for target ids x (N, T): ``start``, then x without its last position."""
        return torch.cat([torch.full_like(x[:, :1], self.start), x[:, :-1]], dim=1)

    def __call__(self, memory: Memory, inputs: Tensor) -> Tensor:
        return self.decoder(memory, inputs)

    def step(self, memory: Memory, ids: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.decoder.step(memory, ids, state)


class AttentionGRU:
    """The parts of ``gru-attention``."""

    @staticmethod
    def encoder(m: ModelConfig, vocab_size: int, pad: int, options: AttentionGRUOptions) -> Encoder:
        return Encoder(vocab_size, options.embed, m.g_width, pad, options.dropout)

    @staticmethod
    def decoder(m: ModelConfig, vocab_size: int, start: int, pad: int, options: AttentionGRUOptions) -> AttentionDecoder:
        return AttentionDecoder(vocab_size, options.embed, m.g_width, start, pad, options.dropout, options.copy)


SEQ2SEQ_NETS.register("gru-attention", options=AttentionGRUOptions)(AttentionGRU)
