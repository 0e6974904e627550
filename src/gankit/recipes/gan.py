"""The unconditional GAN (Goodfellow et al. 2014): k discriminator steps, then one generator step."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from .. import nets
from ..config import Config
from ..data import DataInfo
from ..errors import ConfigError
from ..nets.layers import per_sample
from ..objectives import clip_weights_, d_penalties, feature_matching, objective_of, orthogonal_regularisation
from ..options import option
from ..runtime import report
from .base import RECIPES, Phase, Recipe, sampling_generator

DRS_OBJECTIVES = ("minimax", "nonsaturating")   # objectives whose D logit estimates log p_data/p_g


@dataclass
class GANOptions:
    reuse_fake: bool = option(True, "the G step trains on the last D step's G(z) (as pytorch/examples' DCGAN: one "
                                    "G forward fewer); false: a fresh z")
    pack: int = option(1, "PacGAN (Lin et al. 2018): D judges this many samples at once; 1 = off", above=0)
    condition: str = option("none", "the data's class labels or condition vectors: none (ignored), auto (a data set "
                                    "that has them trains the class-conditional GAN, train.recipe=cgan)",
                            choices=("none", "auto"))


def uses_drs(cfg: Config) -> bool:
    """Does this run sample by discriminator rejection: sample.method drs, or auto with a logistic objective."""
    return cfg.sample.method == "drs" or (cfg.sample.method == "auto" and cfg.loss.name in DRS_OBJECTIVES)


@RECIPES.register("gan", options=GANOptions)
class GAN(Recipe):
    """G: z -> x, D: x -> logit, trained with any objective of ``gankit.objectives`` and its penalties."""

    relativistic_ok = True
    g_tricks = True

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        super().__init__(cfg, info, device)
        self.opts = self.options(cfg)
        self.G, self.D = (m.to(device) for m in self.build_nets(cfg, info))
        self.nets = {"G": self.G, "D": self.D, **self.augment.state_nets()}   # ADA's p is saved with the weights
        self.objective = objective_of(cfg.loss)
        self.loss = cfg.loss
        self.rejection = uses_drs(cfg)   # how draw_samples draws: G(z) directly, or with rejection by D
        self.optimizers = {"G": self.adam(self.G.parameters(), "G"), "D": self.adam(self.D.parameters(), "D")}
        self.ema_targets = ["G"]
        self.phases = [Phase("D", self.d_step, repeat=cfg.train.d_steps),
                       Phase("G", self.g_step, fresh_batch=False)]
        self.joint_d = per_sample(self.D)   # D judges real and fake samples in one forward (d_logits)
        self.reuse_fake = self.opts.reuse_fake   # the G step takes the last D step's G(z), graph kept (pytorch/examples)
        self._fake: Tensor | None = None   # that G(z), from the last D step to the G step of one training step

    @staticmethod
    def options(cfg: Config) -> GANOptions:
        return cfg.table("gan")

    @classmethod
    def check(cls, cfg: Config) -> None:
        if cfg.model.z_dim <= 0:
            raise ConfigError(f"model.z_dim: must be positive for train.recipe={cfg.train.recipe}, got {cfg.model.z_dim}")
        pack = getattr(cls.options(cfg), "pack", 1)   # the conditional recipe does not pack
        if cfg.data.batch_size % pack:
            raise ConfigError(f"{cfg.train.recipe}.pack={pack}: must divide data.batch_size={cfg.data.batch_size}")
        if getattr(cls.options(cfg), "condition", "none") == "auto":   # what the conditional recipe does not do
            if pack > 1:
                raise ConfigError(f"gan.pack={pack}: PacGAN is not combined with gan.condition=auto (the conditional "
                                  f"recipe does not pack); set gan.condition=none or gan.pack=1")
            if cfg.sample.method == "drs":
                raise ConfigError("sample.method=drs: not combined with gan.condition=auto (the conditional recipe "
                                  "samples directly); set gan.condition=none or sample.method=auto")
        if cfg.sample.method == "drs" and cfg.loss.name not in DRS_OBJECTIVES:
            raise ConfigError(f"sample.method=drs: needs a discriminator whose logit estimates log p_data/p_g — "
                              f"loss.name {' or '.join(DRS_OBJECTIVES)} (got {cfg.loss.name})")

    def build_nets(self, cfg: Config, info: DataInfo):
        """(G, D) for this recipe."""
        return nets.build(cfg.model, info.shape, nets.Wiring(pack=self.opts.pack), cfg.owned.get(cfg.model.arch))

    def fake_for_d(self, generate: Callable[[], Tensor]) -> Tensor:
        """``generate()`` (G's samples) for a D step, detached. With reuse_fake every D step runs it
        with its graph and keeps it (replacing the previous D step's) for the G step (``fake_for_g``): G has
        not changed since the last D step, so the G step needs no forward of its own."""
        if not self.reuse_fake:
            with torch.no_grad():
                return generate()
        self._fake = generate()
        return self._fake.detach()

    def fake_for_g(self, generate: Callable[[], Tensor]) -> Tensor:
        """The G step's samples: those the last D step kept, else ``generate()`` (a fresh z)."""
        fake, self._fake = self._fake, None
        return generate() if fake is None else fake

    def d_logits(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        """D(real), D(fake): one forward of both batches together when D treats samples independently
        (``nets.layers.per_sample``: the same logits and gradients, from half the operator calls and
        matrix products twice as tall), else two forwards."""
        if not self.joint_d or real.shape[0] != fake.shape[0]:
            return self.D(real), self.D(fake)
        real_logits, fake_logits = self.D(torch.cat([real, fake.to(real.dtype)])).chunk(2)   # halves: a packed D
        return real_logits, fake_logits                                                     # gives N / k per part

    def d_step(self, batch: dict[str, Tensor]) -> None:
        real = batch["x"]
        fake = self.fake_for_d(lambda: self.G(self.latents(real.shape[0])))
        real_logits, fake_logits = self.d_logits(self.shown(real), self.shown(fake))
        self.augment.observe(real_logits)   # ADA: sign D(real) moves p
        loss = self.objective.d_loss(real_logits, fake_logits)
        report("loss/D", loss)
        report("D/real", real_logits.mean())
        report("D/fake", fake_logits.mean())
        loss = loss + d_penalties(lambda x: self.D(self.shown(x)), real, fake, self.loss.gp, self.loss.r1, report)
        self.update("D", loss)
        if self.loss.clip > 0:
            clip_weights_(self.D, self.loss.clip)

    def g_step(self, batch: dict[str, Tensor]) -> None:
        fake = self.fake_for_g(lambda: self.G(self.latents(batch["x"].shape[0])))
        with self.frozen(self.D):   # no D gradients are needed for the generator's update
            shown = self.shown(fake)
            real = self.D(self.shown(batch["x"])) if self.objective.relativistic else None
            loss = self.objective.g_loss(self.D(shown), real)
            report("loss/G", loss)
            loss = loss + self.g_extras(lambda x: self.D.features(x), batch["x"], shown)
        self.update("G", loss)

    def g_extras(self, features: Callable[[Tensor], Tensor], real: Tensor, shown_fake: Tensor) -> Tensor | float:
        """The G-side tricks of ``[loss]``: feature matching (D's ``features`` of what D is shown of the real
        batch and of G's samples) and orthogonal regularisation of G's weights; 0.0 when both are off."""
        extra: Tensor | float = 0.0
        if self.loss.feature_matching > 0:
            with torch.no_grad():
                real_features = features(self.shown(real))
            fm = feature_matching(real_features, features(shown_fake))
            report("loss/G_fm", fm)
            extra = extra + self.loss.feature_matching * fm
        if self.loss.ortho > 0:
            ortho = orthogonal_regularisation(self.G)
            report("penalty/ortho", ortho)
            extra = extra + self.loss.ortho * ortho
        return extra

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None, ema: bool = True) -> Tensor:
        """Samples (N, *shape) for latents z (N, z_dim), from the EMA generator when there is one."""
        with sampling_generator(self, ema) as G:
            return G(z.to(self.device))
