"""Conditional GAN (Mirza & Osindero 2014): G(z, c) and D(x, c), where c is the condition of each sample.

c comes from the data: a class label (one-hot), multi-hot attributes, or a per-sample embedding
vector. How G and D take c is ``cgan.cond_g`` / ``cgan.cond_d`` (``nets/conditional.py``). Two losses
can be added to any objective:

- the matching-aware discriminator (Reed et al. 2016, "GAN-CLS"), ``cgan.mismatch`` = w: D must call a
  real sample with the *wrong* condition fake too, so it learns whether x matches c and not only
  whether x is real:
      L_D = (1 - w) · L_D(D(x, c), D(G(z, c), c)) + w · L_D(D(x, c), D(x, c̃)),   c̃ ≠ c;
- the auxiliary classifier (ACGAN, Odena et al. 2017), ``cgan.aux`` = λ: D also predicts c from x, and
  both D (real and generated samples) and G (its samples) minimise λ · aux_class_loss.

Generated samples in a D step use the conditions of the real batch, so D sees real and generated
samples of the same classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import nets
from ..config import Config
from ..data import DataInfo
from ..data.conditions import first_conditions
from ..errors import ConfigError
from ..nets.conditional import COND_D, COND_G
from ..objectives import aux_class_loss, clip_weights_, d_penalties
from ..options import option
from ..runtime import report, rows
from .base import RECIPES, class_grid, sampling_generator
from .gan import GAN


@dataclass
class CGANOptions:
    cond_g: str = option("concat", "how G takes the condition: concat (with z), cbn (conditional BatchNorm)",
                         choices=COND_G)
    cond_d: str = option("projection", "how D takes it: projection, concat, none (ACGAN)", choices=COND_D)
    aux: float = option(0.0, "ACGAN auxiliary-classifier loss weight; 0 disables", min=0)
    mismatch: float = option(0.0, "share of D's fake term given to (real, wrong condition) pairs (GAN-CLS)", min=0, max=1)
    reuse_fake: bool = option(True, "the G step trains on the last D step's G(z, c); false: a fresh z")


@RECIPES.register("cgan", options=CGANOptions)
class ConditionalGAN(GAN):
    """G: (z, c) -> x, D: (x, c) -> logit, for class labels or condition vectors of the data."""

    relativistic_ok = False   # its G step does not score real data
    tables = ("data", "model", "loss", "optim", "train", "eval", "augment")

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        if not info.classes and not info.cond_dim:
            raise ConfigError(f"train.recipe=cgan: data set '{info.name}' has no labels or conditions; use a labelled "
                              f"data set (class sub-folders, digits, mnist, ...) or data.labels=FILE")
        self.classes = list(info.classes)
        self.cond_dim = info.cond_dim or len(info.classes)
        self.cond_kind = info.cond_kind or "class"
        self.conditioning = "class" if self.cond_kind == "class" else "vector"
        opts = self.options(cfg)
        if opts.aux > 0 and self.cond_kind == "embedding":
            raise ConfigError("cgan.aux: the ACGAN classifier needs class labels or attributes, not embeddings; set cgan.aux=0")
        self.aux = opts.aux
        self.mismatch = opts.mismatch
        super().__init__(cfg, info, device)

    @staticmethod
    def options(cfg: Config) -> CGANOptions:
        return cfg.table("cgan")

    def build_nets(self, cfg: Config, info: DataInfo):
        o = self.opts
        wiring = nets.Wiring(cond_dim=self.cond_dim, cond_g=o.cond_g, cond_d=o.cond_d, aux=o.aux > 0)
        return nets.build(cfg.model, info.shape, wiring, cfg.owned.get(cfg.model.arch))

    # ------------------------------------------------------------------------------- conditions

    def condition(self, labels: Tensor) -> Tensor:
        """Class indices int64 (N,) -> one-hot float (N, C); condition vectors (N, C) pass unchanged."""
        if labels.dtype == torch.int64:
            return F.one_hot(labels.to(self.device), self.cond_dim).float()
        return labels.to(self.device, torch.float32)

    def target(self, batch: dict[str, Tensor]) -> Tensor:
        """The batch's conditions as given: class indices (N,) or vectors (N, C)."""
        return batch["y"] if "y" in batch else batch["c"]

    def mismatched(self, target: Tensor) -> Tensor:
        """A wrong condition for each sample: another class (uniform over the other C - 1), or the
        vector of the next sample in the batch."""
        if target.dtype == torch.int64:
            shift = rows(lambda m: torch.randint(1, self.cond_dim, (m,), device=target.device), len(target))
            return (target + shift) % self.cond_dim
        return target.roll(1, dims=0)

    def default_labels(self, n: int) -> Tensor:
        """Conditions for n samples when none are asked for: the classes in turn, 0, 1, ..., C-1, 0, ..."""
        if self.cond_kind != "class":
            raise ConfigError(f"this run is conditioned on {self.cond_kind} vectors: give the conditions to sample")
        return torch.arange(n) % self.cond_dim

    def fixed_conditions(self, source, n: int, seed: int) -> Tensor:
        """Conditions for n grid or evaluation samples: the classes in rows (class x sample grid), or the
        condition vectors of the first n samples of the data."""
        if self.cond_kind == "class":
            return class_grid(n, self.cond_dim)[0]
        return first_conditions(source, n)

    def grid_images(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, int | None]:
        """Class runs: one class per row."""
        return x, (class_grid(len(x), self.cond_dim)[1] if self.cond_kind == "class" else None)

    # ------------------------------------------------------------------------------------ steps

    def d_step(self, batch: dict[str, Tensor]) -> None:
        real, t = batch["x"], self.target(batch)
        c = self.condition(t)
        fake = self.fake_for_d(lambda: self.G(self.latents(real.shape[0]), c))
        shown_real, shown_fake = self.shown(real), self.shown(fake)
        aux = self.aux > 0
        if aux:
            (real_logits, real_aux), (fake_logits, fake_aux) = (self.D(shown_real, c, with_aux=True),
                                                                self.D(shown_fake, c, with_aux=True))
        else:
            real_logits, fake_logits = self.D(shown_real, c), self.D(shown_fake, c)
        self.augment.observe(real_logits)   # ADA: sign D(real) moves p
        loss = self.objective.d_loss(real_logits, fake_logits)
        w = self.mismatch
        if w > 0:
            wrong_logits = self.D(shown_real, self.condition(self.mismatched(t)))
            report("D/mismatched", wrong_logits.mean())
            loss = (1.0 - w) * loss + w * self.objective.d_loss(real_logits, wrong_logits)
        report("loss/D", loss)
        report("D/real", real_logits.mean())
        report("D/fake", fake_logits.mean())
        if aux:
            a = aux_class_loss(real_aux, t) + aux_class_loss(fake_aux, t)
            report("loss/D_aux", a)
            loss = loss + self.aux * a
        loss = loss + d_penalties(lambda x: self.D(self.shown(x), c), real, fake, self.loss.gp, self.loss.r1, report)
        self.update("D", loss)
        if self.loss.clip > 0:
            clip_weights_(self.D, self.loss.clip)

    def g_step(self, batch: dict[str, Tensor]) -> None:
        t = self.target(batch)
        c = self.condition(t)
        fake = self.fake_for_g(lambda: self.G(self.latents(c.shape[0]), c))   # the D step's c: the same batch
        with self.frozen(self.D):
            shown = self.shown(fake)
            if self.aux > 0:
                logits, aux_logits = self.D(shown, c, with_aux=True)
                a = aux_class_loss(aux_logits, t)
                report("loss/G_aux", a)
                loss = self.objective.g_loss(logits) + self.aux * a
            else:
                loss = self.objective.g_loss(self.D(shown, c))
            report("loss/G", loss)
            loss = loss + self.g_extras(lambda x: self.D.features(x, c), batch["x"], shown)
        self.update("G", loss)

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None, ema: bool = True) -> Tensor:
        """Samples (N, *shape) for latents z (N, z_dim) and conditions ``labels`` (class indices (N,) or
        vectors (N, C); default: the classes in turn), from the EMA generator when there is one."""
        if labels is None:
            labels = self.default_labels(z.shape[0])
        with sampling_generator(self, ema) as G:
            return G(z.to(self.device), self.condition(labels))
