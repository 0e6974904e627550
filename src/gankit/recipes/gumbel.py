"""A sequence GAN through the Gumbel-softmax relaxation (RelGAN, Nie et al. 2019).

Sampling a token is y_t = argmax(o_t + g_t), o_t G's logits and g_t Gumbel noise (the Gumbel-max trick: an
exact draw from softmax(o_t)). The argmax has no gradient; its relaxation

    ŷ_t = softmax(β · (o_t + g_t))

does (Jang et al. 2017; Maddison et al. 2017): D reads the soft one-hot sequence ŷ — its token embedding
is the ŷ-weighted mean of the rows — so D's score is differentiable in G's parameters, while G is fed back
the hard token y_t, as it will be when sampling. The relaxation's bias falls as the inverse temperature β
grows and its variance rises (``gankit lab discrete-gradient``); β is raised from 1 to ``gumbel.beta_max``
over the first ``gumbel.anneal_steps`` adversarial steps, a pure function of the step, so resume is exact.
The objective is any of ``objectives.py``; RelGAN's is the relativistic standard GAN (``loss.name=rsgan``).

    steps [0, P)       G by maximum likelihood (``gumbel.pretrain``)
    steps [P, ...)     k D steps (train.d_steps) on G's soft one-hot sequences, then one G step through
                       them (G's adversarial Adam, ``gumbel.adv_lr``)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Config
from ..data import DataInfo
from ..data.text import EOS, PAD
from ..nets.sequence import LanguageModel
from ..options import option
from ..runtime import report, rows
from .base import RECIPES, Phase
from .sequence import SequenceGAN, SequenceGANOptions

SCHEDULES = ("exp", "linear", "constant")
FLOOR = 60.0   # the relaxation's logits are kept within FLOOR of their row's largest


@dataclass
class GumbelOptions(SequenceGANOptions):
    beta_max: float = option(100.0, "the inverse temperature β the schedule ends at", min=1)
    anneal: str = option("exp", "β's rise from 1 to beta_max over anneal_steps adversarial steps n: exp "
                         "(β_max^(n/N), RelGAN's), linear, or constant (β_max from the start)", choices=SCHEDULES)
    anneal_steps: int = option(1000, "adversarial steps N over which β reaches beta_max", above=0)
    adv_lr: float = option(1e-4, "G's learning rate in the adversarial stage, an Adam of its own (RelGAN's)", above=0)


def beta_at(n: int, beta_max: float, anneal: str, steps: int) -> float:
    """The inverse temperature after n adversarial steps."""
    share = min(max(n, 0) / steps, 1.0)
    if anneal == "exp":
        return beta_max ** share
    if anneal == "linear":
        return 1.0 + (beta_max - 1.0) * share
    return beta_max


def gumbel_noise(n: int, vocab: int, device: torch.device) -> Tensor:
    """g = −log(−log u), u ~ U(0, 1) (n, V), from the global RNG (this rank's rows of the global batch)."""
    u = rows(lambda m: torch.rand(m, vocab, device=device), n)
    tiny = torch.finfo(u.dtype).tiny
    return -torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-7)))


def relaxed_tokens(G: LanguageModel, n: int, length: int, beta: float) -> tuple[Tensor, Tensor]:
    """n sequences of G with their relaxation: (soft (n, L, V), hard (n, L)). Position t's hard token is
    argmax(o_t + g_t) — a draw from G — and is fed back; its soft one-hot is softmax(β · (o_t + g_t)). After a
    sequence's ``<eos>`` every position is ``<pad>`` (a constant one-hot), and the last position ends every
    sequence with ``<eos>``, as in the data."""
    device = next(G.parameters()).device
    ids = torch.full((n,), G.start, dtype=torch.int64, device=device)
    done = torch.zeros(n, 1, dtype=torch.bool, device=device)
    pad = F.one_hot(torch.tensor(PAD, device=device), G.vocab_size).float()
    eos = F.one_hot(torch.tensor(EOS, device=device), G.vocab_size).float()
    soft, hard, state = [], [], None
    for t in range(length):
        logits, state = G.step(ids, state, t)
        y = logits.float() + gumbel_noise(n, G.vocab_size, device)
        ids = y.argmax(dim=1)
        z = beta * y
        # exp(−60) ≈ 1e-26: the weights (and their gradients) stay out of the subnormal floats, which slow a CPU
        # down threefold at moderate β; the clamped entries were below 1e-26 of the largest anyway
        s = torch.softmax((z - z.amax(dim=1, keepdim=True).detach()).clamp(min=-FLOOR), dim=1)
        if t == length - 1:
            s = torch.where(done, s, eos)
            ids = torch.where(done[:, 0], ids, torch.full_like(ids, EOS))
        soft.append(torch.where(done, pad, s))
        hard.append(torch.where(done[:, 0], torch.full_like(ids, PAD), ids))
        done = done | (ids == EOS)[:, None]
    return torch.stack(soft, dim=1), torch.stack(hard, dim=1)


@RECIPES.register("gumbel", options=GumbelOptions)
class Gumbel(SequenceGAN):
    """G: a language model; D: a CNN over token embeddings reading soft one-hot sequences; MLE, then
    adversarial steps through the Gumbel-softmax relaxation."""

    relativistic_ok = True
    defaults = {**SequenceGAN.defaults, "loss.name": "rsgan"}

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        super().__init__(cfg, info, device)
        o = self.opts
        self.phases = [Phase("MLE", self.mle_step, stop=o.pretrain),
                       Phase("D", self.d_step, repeat=cfg.train.d_steps, start=o.pretrain),
                       Phase("G", self.g_step, fresh_batch=False, start=o.pretrain)]

    @property
    def beta(self) -> float:
        o = self.opts
        return beta_at(self.step - o.pretrain, o.beta_max, o.anneal, o.anneal_steps)

    def d_step(self, batch: dict[str, Tensor]) -> None:
        with torch.no_grad():
            soft, _ = relaxed_tokens(self.G, len(batch["x"]), self.length, self.beta)
        self.d_update(batch["x"], soft)

    def g_step(self, batch: dict[str, Tensor]) -> None:
        beta = self.beta
        soft, _ = relaxed_tokens(self.G, len(batch["x"]), self.length, beta)
        with self.frozen(self.D):
            real = self.D(batch["x"]) if self.objective.relativistic else None
            loss = self.objective.g_loss(self.D(soft), real)
        report("loss/G", loss)
        report("beta", beta)
        self.update("G_adv", loss, max_norm=self.opts.clip)
