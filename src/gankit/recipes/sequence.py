"""Maximum likelihood for token sequences: a recurrent language model trained by teacher forcing.

Minimising the per-token cross-entropy of the data under the model,

    L(θ) = −E_{x ~ P_data} Σ_t log P_θ(x_t | x_<t),

is minimising KL(P_data ‖ P_θ) (the entropy of P_data does not depend on θ): the baseline every sequence
GAN must be compared with. Each sequence ends with ``<eos>``, so the model learns its length too; the
padding after it is not scored. Sampling draws one token at a time from softmax(logits / T), ``mle.temperature``
T (T < 1: sharper and less diverse; T > 1: flatter).

Latents are the uniform draws of the sampler — u (N, L) in [0, 1), one per position, a token chosen by the
inverse of its cumulative distribution — so a seeded ``draw_samples`` gives the same sequences everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import Config
from ..data import DataInfo
from ..data.text import EOS, PAD
from ..errors import ConfigError
from ..nets.sequence import SEQUENCE_NETS, LanguageModel, sequence_cnn
from ..objectives import objective_of
from ..options import option
from ..runtime import report, rows
from .base import RECIPES, Phase, Recipe, sampling_generator


@dataclass
class MLEOptions:
    temperature: float = option(1.0, "sampling temperature T: tokens drawn from softmax(logits / T)", above=0)
    clip: float = option(5.0, "clip the gradient norm to this; 0 = no clipping", min=0)


def sequence_nll(G: LanguageModel, x: Tensor, temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """(sum of −log P(x_t | x_<t) over the scored tokens, their count) for sequences x (N, L): every token up
    to and including the first ``<eos>``, none of the padding after it; P = softmax(logits / temperature)."""
    logits = G(G.shifted(x))
    if temperature != 1.0:
        logits = logits / temperature
    nll = F.cross_entropy(logits.flatten(0, 1).float(), x.flatten(), ignore_index=PAD, reduction="sum")
    return nll, (x != PAD).sum()


def inverse_cdf(logits: Tensor, u: Tensor, temperature: float = 1.0) -> Tensor:
    """Token ids (N,): for each row, the first token whose cumulative probability under softmax(logits / T)
    exceeds u (N,) in [0, 1) times the total (the last running sum, 1 up to rounding), so a token of
    probability 0 is never drawn."""
    z = logits.float() if temperature == 1.0 else logits.float() / temperature
    cdf = torch.softmax(z, dim=1).cumsum(dim=1)
    ids = torch.searchsorted(cdf, (u[:, None].to(cdf.dtype) * cdf[:, -1:]).contiguous(), right=True).squeeze(1)
    return ids.clamp_(max=logits.shape[1] - 1)


@torch.no_grad()
def sample_tokens(G: LanguageModel, u: Tensor, temperature: float = 1.0) -> Tensor:
    """Sequences (N, L) drawn by inverse-CDF sampling from uniforms u (N, L): position t takes the first token
    whose cumulative probability under softmax(logits / T) exceeds u[:, t]; after ``<eos>``, ``<pad>``."""
    n, length = u.shape
    out = torch.full((n, length), PAD, dtype=torch.int64, device=u.device)
    ids = torch.full((n,), G.start, dtype=torch.int64, device=u.device)
    done = torch.zeros(n, dtype=torch.bool, device=u.device)
    state = None
    for t in range(length):
        logits, state = G.step(ids, state, t)
        ids = inverse_cdf(logits, u[:, t], temperature)
        if t == length - 1:
            ids = torch.where(done, ids, torch.full_like(ids, EOS))   # the last position ends every sequence
        out[:, t] = torch.where(done, torch.full_like(ids, PAD), ids)
        done |= ids == EOS
    return out


def token_latents(recipe: Recipe, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Uniforms u (n, L) in [0, 1): the token sampler's draws, one per position (``sample_tokens``)."""
    if generator is not None:
        return torch.rand(n, recipe.length, generator=generator).to(recipe.device)
    return rows(lambda m: torch.rand(m, recipe.length, device=recipe.device), n)


class TokenRecipe(Recipe):
    """What the recipes of token sequences share: the data check, a language model G built from
    ``model.arch`` (``SEQUENCE_NETS``), the sampler's uniform latents, sampling at ``self.temperature`` and
    the maximum-likelihood step."""

    architectures = SEQUENCE_NETS
    defaults = {"model.arch": "lstm", "train.ema": 0.0, "optim.betas_g": [0.9, 0.999], "optim.betas_d": [0.9, 0.999]}

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        if info.kind != "tokens":
            raise ConfigError(f"train.recipe={cfg.train.recipe}: needs token sequences (data.name=oracle or text); "
                              f"data set '{info.name}' holds {info.kind}")
        super().__init__(cfg, info, device)
        self.opts = cfg.table(cfg.train.recipe)
        self.temperature = self.opts.temperature
        self.length = int(info.shape[0])

    def language_model(self, cfg: Config, info: DataInfo) -> LanguageModel:
        arch = SEQUENCE_NETS.get(cfg.model.arch)
        return arch(cfg.model, len(info.vocab), int(info.shape[0]), EOS, PAD, cfg.owned.get(cfg.model.arch)).to(self.device)

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return token_latents(self, n, generator)

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None, ema: bool = True) -> Tensor:
        """Token sequences (N, L) int64 for the sampler's uniforms z (N, L), at ``self.temperature``."""
        with sampling_generator(self, ema) as G:
            return sample_tokens(G, z.to(self.device), self.temperature)

    def mle_step(self, batch: dict[str, Tensor]) -> None:
        """One step of teacher-forced maximum likelihood of ``self.G`` on the batch."""
        nll, count = sequence_nll(self.G, batch["x"])
        loss = nll / count
        report("loss/NLL", loss)
        self.update("G", loss, max_norm=self.opts.clip)


@dataclass
class SequenceDOptions:
    """The options of a discriminator of token sequences, SeqGAN's CNN (``nets.sequence.sequence_cnn``)."""

    d_embed: int = option(64, "D's token embedding size", above=0)
    d_scale: float = option(0.25, "D's convolution counts as a share of SeqGAN's (100-200 per width)", above=0)
    d_dropout: float = option(0.25, "dropout before D's logit", min=0, below=1)


def sequence_d(opts: SequenceDOptions, vocab_size: int, length: int, device: torch.device) -> torch.nn.Module:
    return sequence_cnn(vocab_size, opts.d_embed, opts.d_scale, opts.d_dropout, length).to(device)


@dataclass
class SequenceGANOptions(SequenceDOptions):
    """The options every sequence GAN has: G's maximum-likelihood start and D, SeqGAN's CNN."""

    pretrain: int = option(1000, "steps of maximum-likelihood pre-training of G", min=0)
    temperature: float = option(1.0, "sampling temperature of gankit sample", above=0)
    clip: float = option(5.0, "clip G's gradient norm to this; 0 = no clipping", min=0)
    adv_lr: float = option(1e-2, "G's learning rate in the adversarial stage, an Adam of its own (optim.lr_g: "
                                 "the pre-training's)", above=0)


class SequenceGAN(TokenRecipe):
    """What the sequence GANs share: G a language model started by maximum likelihood (``mle_step``, the
    first ``pretrain`` steps), D SeqGAN's CNN over token embeddings (``nets.sequence.SequenceCNN``), the
    objective of ``loss.name``, an Adam for D and two for G: "G" for its maximum-likelihood pre-training,
    "G_adv" for the adversarial stage (as SeqGAN's and RelGAN's code have), so the adversarial steps start
    with no second moments of the likelihood's gradients, which would shrink them."""

    tables = ("data", "model", "loss", "optim", "train", "eval")

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        super().__init__(cfg, info, device)
        o = self.opts
        self.G = self.language_model(cfg, info)
        self.D = sequence_d(o, len(info.vocab), self.length, device)
        self.objective = objective_of(cfg.loss)
        self.nets = {"G": self.G, "D": self.D}
        self.optimizers = {"G": self.adam(self.G.parameters(), "G"), "D": self.adam(self.D.parameters(), "D"),
                           "G_adv": torch.optim.Adam(self.G.parameters(), lr=o.adv_lr, betas=tuple(cfg.optim.betas_g))}
        self.ema_targets = ["G"]

    def fakes(self, n: int) -> Tensor:
        """n sequences of G (not its average) at temperature 1, from the global RNG."""
        with sampling_generator(self, ema=False) as G:
            return sample_tokens(G, self.latents(n))

    def d_update(self, real: Tensor, fake: Tensor) -> None:
        """One D step on real ids (N, L) against generated ids or distributions (N, L, V)."""
        real_logits, fake_logits = self.D(real), self.D(fake)
        loss = self.objective.d_loss(real_logits, fake_logits)
        report("loss/D", loss)
        report("D/real", real_logits.mean())
        report("D/fake", fake_logits.mean())
        self.update("D", loss)


@RECIPES.register("mle", options=MLEOptions)
class MLE(TokenRecipe):
    """G: a language model; one phase: teacher-forced maximum likelihood on a batch of sequences."""

    tables = ("data", "model", "optim", "train", "eval")

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        super().__init__(cfg, info, device)
        self.G = self.language_model(cfg, info)
        self.nets = {"G": self.G}
        self.optimizers = {"G": self.adam(self.G.parameters(), "G")}
        self.ema_targets = ["G"]
        self.phases = [Phase("MLE", self.mle_step)]
