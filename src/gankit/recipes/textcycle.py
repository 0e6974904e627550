"""Unpaired text style transfer trained as CycleGAN is (Zhu et al. 2017), through the discrete step.

Sentences of two styles A and B, unpaired (``data.name=text-pairs`` or ``reviews-sentiment``). Two
sequence-to-sequence generators (``nets/seq2seq.py``) translate G_AB: A -> B and G_BA: B -> A; they share
their encoder E (as Shen et al. 2017's cross-aligned auto-encoder does), so it reads the words of both
styles, and each has a decoder of its own — the nets ``E``, ``G_AB`` (B's decoder) and ``G_BA`` (A's). D_A
and D_B, SeqGAN's CNN over token embeddings, tell real sentences of their style from translations into it.
With a the A sentences of a batch and b the B ones,

    L_G = λ_adv · (L_adv(D_B(G_AB(a))) + L_adv(D_A(G_BA(b))))                    (textcycle.adv)
        + λ_cyc · (NLL(a | G_BA, G_AB(a)) + NLL(b | G_AB, G_BA(b)))                (textcycle.cycle)
        + λ_dae · (NLL(a | G_BA, noise(a)) + NLL(b | G_AB, noise(b)))              (textcycle.dae)

* the cycle term is back-translation (Sennrich et al. 2016; Lample et al. 2018): a's translation, a sentence
  of G_AB's tokens, is a source from which G_BA must give a back — the per-token NLL of a under G_BA
  reading it. With ``gumbel`` G_BA reads the translation's straight-through one-hots, so the term also
  trains G_AB to keep what the way back needs, as CycleGAN's cycle does (and as the Style Transformer, Dai
  et al. 2019, feeds its soft outputs back); with ``reinforce`` it trains the way back only.
* the denoising term (Shen et al. 2017's and Dai et al. 2019's self-reconstruction, with Lample et al.'s
  noise) has each generator rebuild a sentence of its own output style from a copy with words dropped
  (``word_drop``) and, optionally, moved by at most ``shuffle`` places: the generators learn to write the
  target style and to keep what they read. With the copying decoders of ``gru-attention`` the words stay in
  place by default: on the movie reviews, after 240–300 s of denoising alone, held-out sentences rebuilt in
  their own style scored BLEU 29 from copies shuffled by 3 places, about 80 from unshuffled ones.
* the adversarial term needs D's judgement of G's tokens to reach G's weights through the argmax. Two ways
  (``textcycle.adversarial``): ``gumbel`` — straight-through Gumbel-softmax (Jang et al. 2017): the tokens
  fed to D (and back to the decoder) are the hard draws argmax(o + g), the gradient is that of their
  relaxation softmax((o + g) / τ); or ``reinforce`` — the policy gradient of D's probability of the
  sequence, E[(r − r̄) ∇ log P(y | x)], the batch's mean reward r̄ the baseline (Williams 1992).
  ``gumbel`` is the default: one decoding pass gives the whole gradient, where REINFORCE's single sample
  per sentence is noisy over a vocabulary of thousands.

Stages, phases of the one loop so a run resumes exactly across them:

    steps [0, P)           the denoising term alone (textcycle.pretrain): both generators learn to write
    steps [P − K, ...)     train.d_steps D steps per step on real sentences vs translations (K: d_pretrain)
    steps [P, ...)         one G step on every term
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Config
from ..data import DataInfo
from ..data.text import EOS, PAD, decode
from ..errors import ConfigError
from ..nets.seq2seq import SEQ2SEQ_NETS, Memory, Seq2Seq
from ..objectives import objective_of
from ..options import option
from ..runtime import report, rows
from .base import RECIPES, Phase, Recipe, sampling_generator
from .gumbel import FLOOR, gumbel_noise
from .sequence import SequenceDOptions, sequence_d

ADVERSARIAL = ("gumbel", "reinforce")
NAMES = {1: "G_AB", 0: "G_BA"}   # the decoder that writes each target style


@dataclass
class TextCycleOptions(SequenceDOptions):
    pretrain: int = option(1000, "steps of the denoising term alone before the cycle and adversarial terms", min=0)
    d_pretrain: int = option(200, "steps of D alone before the adversarial stage (the last of the pre-training)", min=0)
    adversarial: str = option("gumbel", "how D's judgement reaches G through the discrete tokens: gumbel (straight-"
                                        "through Gumbel-softmax) or reinforce (policy gradient with a baseline)",
                              choices=ADVERSARIAL)
    tau: float = option(1.0, "gumbel: the temperature of the relaxation the gradient is taken through", above=0)
    adv: float = option(1.0, "weight of the adversarial term", min=0)
    cycle: float = option(1.0, "weight of the cycle term: the NLL of a sentence given its translation", min=0)
    dae: float = option(1.0, "weight of the denoising term: each generator rebuilds sentences of its output style "
                             "from noised copies", min=0)
    word_drop: float = option(0.1, "denoising: the chance each word of the copy is dropped", min=0, below=1)
    shuffle: float = option(0.0, "denoising: each word of the copy moves by at most this many places (copying "
                                 "decoders read the order from the source: shuffled copies teach them to reorder)",
                            min=0)
    clip: float = option(5.0, "clip the generators' gradient norm to this; 0 = no clipping", min=0)


class Sentences(NamedTuple):
    """The conditions of a "sentences" recipe: sentences (ids (N, L)) and the style (N,) to write each in."""

    x: Tensor
    target: Tensor


def noised(x: Tensor, drop: float, shuffle: float) -> Tensor:
    """Copies of sentences x (N, L) with each word dropped with probability ``drop`` (at least one kept) and
    the rest moved by at most ``shuffle`` places: word i goes to the rank of i + U(0, shuffle + 1) (Lample et
    al. 2018); then <eos> and <pad>, as in the data. Draws from the global RNG."""
    n, length = x.shape
    pos = torch.arange(length, device=x.device).expand(n, length)
    words = ((x != EOS) & (x != PAD)).long().cumprod(dim=1).bool()        # the positions before the first <eos>
    u = rows(lambda m: torch.rand(m, 2, length, device=x.device), n)
    keep = words & (u[:, 0] >= drop)
    keep[:, 0] |= words[:, 0] & ~keep.any(dim=1)                    # never an empty copy of a sentence
    keys = torch.where(keep, pos + u[:, 1] * (shuffle + 1), length + 2 + pos.float())
    moved = x.gather(1, keys.argsort(dim=1))
    kept = keep.sum(dim=1, keepdim=True)
    out = torch.where(pos < kept, moved, torch.full_like(x, PAD))
    return torch.where(pos == kept, torch.full_like(x, EOS), out)


def translation_nll(G: Seq2Seq, src: Tensor, tgt: Tensor, hot: Tensor | None = None) -> Tensor:
    """The mean per-token NLL of target sentences tgt (N, T) under G reading src (N, S) — given as one-hots
    ``hot`` (N, S, V) too, to pass a gradient to what wrote them: every token up to and including the first
    <eos>."""
    logits = G(G.encode(src, hot), G.shifted(tgt))
    return F.cross_entropy(logits.flatten(0, 1).float(), tgt.flatten(), ignore_index=PAD)


def sequence_log_prob(G: Seq2Seq, src: Tensor, y: Tensor) -> Tensor:
    """log P(y | src) (N,) under G: the sum over y's tokens up to its first <eos>."""
    logits = G(G.encode(src), G.shifted(y)).float()
    nll = F.cross_entropy(logits.transpose(1, 2), y, ignore_index=PAD, reduction="none")
    return -nll.sum(dim=1)


def decode_tokens(G: Seq2Seq, memory: Memory, length: int, mode: str = "greedy",
                  tau: float = 1.0) -> tuple[Tensor, Tensor | None]:
    """Sentences G writes from ``memory``, at most ``length`` tokens with the <eos> that ends each (the last
    position ends any still open), <pad> after it: (ids (N, L), one-hots (N, L, V) or None).

    ``greedy``: the most likely token at each step; ``sample``: a draw, argmax(o + g) with Gumbel noise g
    from the global RNG; ``relaxed``: the same draws, returned also as straight-through one-hots — the hard
    one-hot forward, the gradient of softmax((o + g) / τ) backward. Decoding stops once every sentence ended."""
    n = memory.states.shape[0]
    device = memory.states.device
    ids = torch.full((n,), G.start, dtype=torch.int64, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    out, soft, state = [], [], None
    for t in range(length):
        logits, state = G.step(memory, ids, state)
        y = logits.float() if mode == "greedy" else logits.float() + gumbel_noise(n, G.vocab_size, device)
        ids = y.argmax(dim=1)
        fixed = done if t < length - 1 else torch.ones_like(done)    # <pad> after the end; <eos> closes the last position
        ids = torch.where(done, torch.full_like(ids, PAD), ids if t < length - 1 else torch.full_like(ids, EOS))
        out.append(ids)
        if mode == "relaxed":
            z = y / tau
            s = torch.softmax((z - z.amax(dim=1, keepdim=True).detach()).clamp(min=-FLOOR), dim=1)
            hard = F.one_hot(ids, G.vocab_size).float()
            soft.append(torch.where(fixed[:, None], hard, hard + (s - s.detach())))   # exactly the one-hot forward
        done = done | (ids == EOS)
        if bool(done.all()):
            break
    rest = length - len(out)
    x = F.pad(torch.stack(out, dim=1), (0, rest), value=PAD)
    if mode != "relaxed":
        return x, None
    hot = torch.stack(soft, dim=1)
    if rest:
        hot = torch.cat([hot, F.one_hot(x[:, len(out):], G.vocab_size).float()], dim=1)
    return x, hot


@RECIPES.register("textcycle", options=TextCycleOptions)
class TextCycle(Recipe):
    """G_AB, G_BA: sequence-to-sequence generators; D_A, D_B: CNNs over token embeddings; the denoising,
    cycle and adversarial terms above."""

    conditioning = "sentences"
    architectures = SEQ2SEQ_NETS
    batch_by_class = True
    relativistic_ok = True
    tables = ("data", "model", "loss", "optim", "train", "eval")
    defaults = {"model.arch": "gru-attention", "train.ema": 0.0, "optim.betas_g": [0.9, 0.999],
                "optim.betas_d": [0.9, 0.999]}

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        if info.kind != "tokens" or len(info.classes) != 2:
            raise ConfigError(f"train.recipe=textcycle: needs sentences of two styles (data.name=text-pairs or "
                              f"reviews-sentiment); data set '{info.name}' holds "
                              f"{info.kind if info.kind != 'tokens' else f'{len(info.classes)} styles of sentences'}")
        super().__init__(cfg, info, device)
        o = self.opts = cfg.table("textcycle")
        self.info = info
        self.domains = list(info.classes)
        self.length = int(info.shape[0])
        vocab = len(info.vocab)
        parts = SEQ2SEQ_NETS.get(cfg.model.arch)
        arch_opts = cfg.owned.get(cfg.model.arch)
        self.E = parts.encoder(cfg.model, vocab, PAD, arch_opts).to(device)
        decoders = [parts.decoder(cfg.model, vocab, EOS, PAD, arch_opts).to(device) for _ in range(2)]
        self.G_AB, self.G_BA = Seq2Seq(self.E, decoders[0]), Seq2Seq(self.E, decoders[1])
        self.D_A = sequence_d(o, vocab, self.length, device)
        self.D_B = sequence_d(o, vocab, self.length, device)
        self.objective = objective_of(cfg.loss)
        self.nets = {"E": self.E, "G_AB": decoders[0], "G_BA": decoders[1], "D_A": self.D_A, "D_B": self.D_B}
        self.optimizers = {"G": self.adam([*self.E.parameters(), *decoders[0].parameters(), *decoders[1].parameters()], "G"),
                           "D": self.adam([*self.D_A.parameters(), *self.D_B.parameters()], "D")}
        self.ema_targets = ["E", "G_AB", "G_BA"]
        self.phases = [Phase("DAE", self.dae_step, stop=o.pretrain),
                       Phase("D", self.d_step, repeat=cfg.train.d_steps, start=max(0, o.pretrain - o.d_pretrain)),
                       Phase("G", self.g_step, fresh_batch=False, start=o.pretrain)]

    # ------------------------------------------------------------------------------------ steps

    @staticmethod
    def styles(batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The batch's A and B sentences (every batch holds data.batch_size of each)."""
        x, y = batch["x"], batch["y"]
        return x[y == 0], x[y == 1]

    def denoising(self, a: Tensor, b: Tensor) -> Tensor:
        o = self.opts
        return (translation_nll(self.G_BA, noised(a, o.word_drop, o.shuffle), a)
                + translation_nll(self.G_AB, noised(b, o.word_drop, o.shuffle), b))

    def dae_step(self, batch: dict[str, Tensor]) -> None:
        a, b = self.styles(batch)
        loss = self.denoising(a, b)
        report("loss/DAE", loss)
        self.update("G", loss, max_norm=self.opts.clip)

    def d_step(self, batch: dict[str, Tensor]) -> None:
        a, b = self.styles(batch)
        with torch.no_grad():
            ab, _ = decode_tokens(self.G_AB, self.G_AB.encode(a), self.length, "sample")
            ba, _ = decode_tokens(self.G_BA, self.G_BA.encode(b), self.length, "sample")
        loss = 0.0
        for D, real, fake, name in ((self.D_B, b, ab, "B"), (self.D_A, a, ba, "A")):
            real_logits, fake_logits = D(real), D(fake)
            part = self.objective.d_loss(real_logits, fake_logits)
            report(f"loss/D_{name}", part)
            report(f"D_{name}/real", real_logits.mean())
            report(f"D_{name}/fake", fake_logits.mean())
            loss = loss + part
        self.update("D", loss)

    def adversarial(self, G: Seq2Seq, D, src: Tensor, real: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """G's adversarial loss for translating src into D's style, and G's translations: ids (N, L) and, with
        ``gumbel``, their straight-through one-hots (N, L, V) (None with ``reinforce``)."""
        memory = G.encode(src)
        if self.opts.adversarial == "gumbel":
            y, hot = decode_tokens(G, memory, self.length, "relaxed", self.opts.tau)
            with self.frozen(D):
                loss = self.objective.g_loss(D(hot), D(real) if self.objective.relativistic else None)
            return loss, y, hot
        with torch.no_grad():
            y, _ = decode_tokens(G, memory, self.length, "sample")
            reward = torch.sigmoid(D(y).float())
        report("reward", reward.mean())
        return -((reward - reward.mean()) * sequence_log_prob(G, src, y)).mean(), y, None

    def g_step(self, batch: dict[str, Tensor]) -> None:
        o = self.opts
        a, b = self.styles(batch)
        adv_ab, ab, ab_hot = self.adversarial(self.G_AB, self.D_B, a, b)
        adv_ba, ba, ba_hot = self.adversarial(self.G_BA, self.D_A, b, a)
        adv = adv_ab + adv_ba
        # with gumbel the way back reads the translations' straight-through one-hots: the cycle trains both ways
        cycle = translation_nll(self.G_BA, ab, a, ab_hot) + translation_nll(self.G_AB, ba, b, ba_hot)
        dae = self.denoising(a, b)
        report("loss/G_adv", adv)
        report("loss/cycle", cycle)
        report("loss/DAE", dae)
        self.update("G", o.adv * adv + o.cycle * cycle + o.dae * dae, max_norm=o.clip)

    # --------------------------------------------------------------------------------- sampling

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Translation is deterministic (greedy decoding): no latents, (n, 0)."""
        return torch.zeros(n, 0, device=self.device)

    @torch.no_grad()
    def translate_ids(self, x: Tensor, target: Tensor, ema: bool = True, batch: int = 256) -> Tensor:
        """Greedy translations (N, max(L, S)) of sentences x (N, S) into the styles ``target`` (N,)."""
        length = max(self.length, x.shape[1])
        out = torch.full((len(x), length), PAD, dtype=torch.int64)
        for style in (0, 1):
            rows_ = (target == style).nonzero().flatten()
            if not len(rows_):
                continue
            with sampling_generator(self, ema, "E") as E, sampling_generator(self, ema, NAMES[style]) as dec:
                G = Seq2Seq(E, dec)
                for part in rows_.split(batch):
                    src = x[part].to(self.device)
                    y, _ = decode_tokens(G, G.encode(src), length, "greedy")
                    out[part] = y.cpu()
        return out

    def sample(self, z: Tensor, labels: Sentences | None = None, ema: bool = True) -> Tensor:
        """The translations (N, L) of ``labels.x`` into the styles ``labels.target``."""
        if labels is None:
            raise ConfigError("textcycle translates sentences: give them (gankit translate RUN INPUT.txt)")
        return self.translate_ids(labels.x, labels.target, ema)

    def fixed_conditions(self, source, n: int, seed: int) -> Sentences:
        """n sentences, half of each style (held-out ones when the data has them), each to be written in the
        other style."""
        x, y = (source.test, source.test_y) if len(source.test) else (source.x, source.y)
        gen = torch.Generator().manual_seed(seed)
        picks = []
        for style, count in ((0, n - n // 2), (1, n // 2)):
            idx = (y == style).nonzero().flatten()
            picks.append(idx[torch.randint(len(idx), (count,), generator=gen)])
        chosen = torch.cat(picks)
        return Sentences(x[chosen], 1 - y[chosen])

    def grid_lines(self, x: Tensor, cond: Sentences | None) -> list[str]:
        """One line per translation: "A -> B: input => output"."""
        out = []
        for src, target, y in zip(cond.x, cond.target.tolist(), x):
            out.append(f"{self.domains[1 - target]} -> {self.domains[target]}: "
                       f"{decode(src, self.info.vocab, self.info.level)} => {decode(y, self.info.vocab, self.info.level)}")
        return out
