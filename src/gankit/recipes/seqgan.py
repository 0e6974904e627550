"""SeqGAN (Yu et al. 2017): a generator of tokens trained by policy gradient, with rewards from a CNN
discriminator completed by Monte-Carlo rollouts.

A token is a discrete choice, so D's score of a sampled sequence has no gradient with respect to G's
parameters; REINFORCE gives one: for a sequence Y = y_1..y_T drawn from G,

    ∇J = E[ Σ_t (Q(y_<t, y_t) − b_t) ∇ log G(y_t | y_<t) ],

where Q, the value of a prefix, is D's probability that a completion of it is real, averaged over N
completions by a rollout policy (a delayed copy of G, ``seqgan.rollout_update``: θ_roll ← u θ_roll +
(1 − u) θ); for the whole sequence, D's probability itself; b_t the batch's mean reward at t (a baseline:
same expected gradient, lower variance). The stages are phases of the loop:

    steps [0, P)          G by maximum likelihood (``seqgan.pretrain``)
    steps [P, P + Q)      D on real sequences against G's samples (``seqgan.d_pretrain``)
    steps [P + Q, ...)    one policy-gradient step of G, then k D steps on fresh samples (train.d_steps)

All rollouts of a batch run as one batched pass per position: the rollout policy reads each prefix once
(teacher forcing) and continues B · N copies of every prefix at once.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import Config
from ..data import DataInfo
from ..data.text import EOS, PAD
from ..nets.sequence import LanguageModel
from ..options import option
from ..runtime import report
from .base import RECIPES, Phase
from .sequence import SequenceGAN, SequenceGANOptions, inverse_cdf


@dataclass
class SeqGANOptions(SequenceGANOptions):
    d_pretrain: int = option(200, "steps of pre-training D against the pre-trained G", min=0)
    rollouts: int = option(16, "Monte-Carlo completions per prefix (N)", above=0)
    rollout_update: float = option(0.8, "the rollout policy's delay u: θ_roll ← u θ_roll + (1 − u) θ", min=0, max=1)


def _repeat(state, n: int):
    """A recurrent state (LSTM: (h, c), GRU: h; each (layers, B, H)) with every row repeated n times."""
    if isinstance(state, tuple):
        return tuple(_repeat(s, n) for s in state)
    return state.repeat_interleave(n, dim=1)


def _continue(policy: LanguageModel, logits: Tensor, state, u: Tensor, t: int) -> Tensor:
    """Tokens (M, K) at positions t..t+K-1, continuing from the ``logits`` (M, V) of position t and ``state``,
    by inverse CDF on u (M, K)."""
    out = []
    for k in range(u.shape[1]):
        ids = inverse_cdf(logits, u[:, k])
        out.append(ids)
        if k + 1 < u.shape[1]:
            logits, state = policy.step(ids, state, t + k + 1)
    return torch.stack(out, dim=1)


def pad_after_eos(x: Tensor) -> Tensor:
    """Everything after a sequence's first <eos> becomes <pad>, as in the data."""
    eos = (x == EOS).int()
    return x.masked_fill(eos.cumsum(dim=1) - eos > 0, PAD)


@torch.no_grad()
def rollout_rewards(policy: LanguageModel, D, y: Tensor, n: int) -> Tensor:
    """Q (B, L) of sequences y (B, L): for t < L, D's probability that completions of y_1..y_t by ``policy``
    are real, averaged over n completions drawn from the global RNG; for t = L, D's probability of y. The
    policy reads y once; the B · n completions of each prefix are one batch."""
    b, length = y.shape
    rewards = torch.empty(b, length, device=y.device)
    logits, state = policy.step(torch.full((b,), policy.start, dtype=torch.int64, device=y.device), None, 0)
    for t in range(1, length):
        logits, state = policy.step(y[:, t - 1], state, t)     # now after y_1..y_t: logits for y_{t+1}
        u = torch.rand(b * n, length - t, device=y.device)
        tail = _continue(policy, logits.repeat_interleave(n, dim=0), _repeat(state, n), u, t)
        full = pad_after_eos(torch.cat([y[:, :t].repeat_interleave(n, dim=0), tail], dim=1))
        rewards[:, t - 1] = torch.sigmoid(D(full).float()).view(b, n).mean(dim=1)
    rewards[:, length - 1] = torch.sigmoid(D(y).float())
    return rewards


def policy_gradient_loss(G: LanguageModel, y: Tensor, rewards: Tensor) -> Tensor:
    """−Σ_t (Q_t − b_t) log G(y_t | y_<t) over the tokens of y up to its <eos>, per token; b_t: the batch's mean
    reward at t."""
    scored = y != PAD
    logp = torch.log_softmax(G(G.shifted(y)).float(), dim=2).gather(2, y[:, :, None])[:, :, 0]
    advantage = rewards - rewards.mean(dim=0, keepdim=True)
    return -torch.where(scored, logp * advantage, 0.0).sum() / scored.sum()   # log G(<pad>) = −∞ is not scored


@RECIPES.register("seqgan", options=SeqGANOptions)
class SeqGAN(SequenceGAN):
    """G: a language model; D: a CNN over token embeddings; MLE, then D pre-training, then policy gradient."""

    training_only = ("augment", "G_rollout")   # sampling reads none of these
    relativistic_ok = True   # G's reward is D's probability: the objective trains D only

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        super().__init__(cfg, info, device)
        self.rollout = copy.deepcopy(self.G).requires_grad_(False)   # the delayed copy that completes prefixes
        self.nets["G_rollout"] = self.rollout
        p, q = self.opts.pretrain, self.opts.pretrain + self.opts.d_pretrain
        self.phases = [Phase("MLE", self.mle_step, stop=p),
                       Phase("D_pre", self.d_step, start=p, stop=q),
                       Phase("G_pg", self.pg_step, start=q),
                       Phase("D", self.d_step, repeat=cfg.train.d_steps, start=q)]

    # ------------------------------------------------------------------------------------ steps

    def mle_step(self, batch: dict[str, Tensor]) -> None:
        super().mle_step(batch)
        self.rollout.load_state_dict(self.G.state_dict())   # the rollout policy starts as the pre-trained G

    def d_step(self, batch: dict[str, Tensor]) -> None:
        self.d_update(batch["x"], self.fakes(len(batch["x"])))

    def pg_step(self, batch: dict[str, Tensor]) -> None:
        y = self.fakes(batch["x"].shape[0])
        was = self.D.training
        self.D.eval()   # rewards without dropout
        rewards = rollout_rewards(self.rollout, self.D, y, self.opts.rollouts)
        self.D.train(was)
        loss = policy_gradient_loss(self.G, y, rewards)
        report("loss/G_pg", loss)
        report("reward", rewards[:, -1].mean())
        self.update("G_adv", loss, max_norm=self.opts.clip)
        u = self.opts.rollout_update
        with torch.no_grad():
            for r, g in zip(self.rollout.parameters(), self.G.parameters()):
                r.mul_(u).add_(g, alpha=1 - u)
