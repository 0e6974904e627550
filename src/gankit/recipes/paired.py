"""Paired image-to-image GAN (pix2pix, Isola et al. 2017).

G maps a condition image a (and, if ``model.z_dim`` > 0, a latent z) to an image; D judges (a, x) pairs,
so it asks "is x a real image *for this a*". The generator minimises

    L_G = paired.adv · L_adv(D(a, G(a, z))) + paired.l1 · E|G(a, z) - x|

(pix2pix: adv = 1, l1 = 100). GAN alone invents content that does not fit a; L1 alone is blurry (it
regresses to the mean of the possible outputs). ``paired.adv = 0`` trains the same network by L1 only,
without D — the regression baseline. Pairs come from ``paired.task`` (a degradation made on the fly:
superres, colorize, inpaint, denoise) or from paired data on disk (``data.name=pairs``: A|B images or A/ and B/
folders); batches hold {"a": condition, "x": target}.
Conditions smaller than the image (super-resolution) are upsampled bilinearly before G and D see them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import nets
from ..config import Config
from ..data import Batches, DataInfo
from ..data.paired import PAIR_TASKS, check_task, condition_shape
from ..errors import ConfigError
from ..objectives import d_penalties, objective_of
from ..options import option
from ..runtime import report
from .base import RECIPES, Phase, Recipe, sampling_generator


PAIRS_PER_ROW = 4   # sample grids: input | output pairs per row


@dataclass
class PairedOptions:
    task: str = option("", "the condition made from each image: superres2|superres4|colorize|inpaint|denoise; "
                           "\"\" = pairs read from disk (data.name=pairs)", choices=("",) + PAIR_TASKS)
    adv: float = option(1.0, "weight of the adversarial term of G's loss; 0 = L1 regression only, no D", min=0)
    l1: float = option(100.0, "weight of E|G(a) - x| in G's loss (pix2pix: 100)", min=0)

    def check(self, table: str) -> None:
        if self.adv == 0 and self.l1 == 0:
            raise ConfigError(f"{table}.adv and {table}.l1 are both 0, so nothing would be learnt")


@RECIPES.register("paired", options=PairedOptions)
class Paired(Recipe):
    """G: (a, z) -> x, D: (a, x) -> patch logits, GAN + L1."""

    conditioning = "image"
    tables = ("data", "model", "loss", "optim", "train", "eval", "augment")
    architectures = nets.TRANSLATORS
    defaults = {"model.arch": "unet"}

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        super().__init__(cfg, info, device)
        opts: PairedOptions = cfg.table("paired")
        if info.pair_shape and opts.task:
            raise ConfigError(f"paired.task={opts.task}: data set '{info.name}' already holds pairs; set paired.task=\"\"")
        if not opts.task and not info.pair_shape:
            raise ConfigError("train.recipe=paired: needs pairs; set paired.task to one of superres2, superres4, "
                              "colorize, inpaint, denoise, or read pairs from disk with data.name=pairs")
        if opts.task:
            check_task(opts.task, info.shape)
        self.opts = opts
        self.degradation = opts.task   # "" for pairs read from disk
        self.condition_shape = condition_shape(opts.task, self.shape) if opts.task else tuple(info.pair_shape)
        full = (self.condition_shape[0], *self.shape[1:])      # the condition after upsampling to the image size
        self.G, self.D = (m.to(device) for m in nets.build_translator(cfg.model, full, self.shape,
                                                                      options=cfg.owned.get(cfg.model.arch)))
        self.objective = objective_of(cfg.loss)
        self.loss = cfg.loss
        self.optimizers = {"G": self.adam(self.G.parameters(), "G")}
        self.nets = {"G": self.G}
        self.phases = []
        if opts.adv > 0:
            self.nets.update({"D": self.D, **self.augment.state_nets()})   # ADA's p is saved with the weights
            self.optimizers["D"] = self.adam(self.D.parameters(), "D")
            self.phases.append(Phase("D", self.d_step, repeat=cfg.train.d_steps))
        self.phases.append(Phase("G", self.g_step, fresh_batch=not self.phases))
        self.ema_targets = ["G"]

    def prepare(self, a: Tensor) -> Tensor:
        """The condition at the image size: (N, Cin, h, w) -> (N, Cin, H, W)."""
        a = a.to(self.device)
        if tuple(a.shape[2:]) != self.shape[1:]:
            a = F.interpolate(a, size=self.shape[1:], mode="bilinear", align_corners=False)
        return a

    def show_condition(self, a: Tensor) -> Tensor:
        """A condition drawn as an image of the data's shape, for grids: (N, C, H, W)."""
        a = F.interpolate(a, size=self.shape[1:], mode="nearest") if tuple(a.shape[2:]) != self.shape[1:] else a
        c = self.shape[0]
        if self.degradation == "inpaint":   # the masked image, the hole drawn white
            return torch.where(a[:, c:] > 0.5, torch.ones_like(a[:, :c]), a[:, :c])
        return a.expand(-1, c, -1, -1) if a.shape[1] == 1 and c > 1 else a[:, :c]

    def fixed_conditions(self, source, n: int, seed: int) -> Tensor:
        """Condition images of n samples of the data (degraded with a generator seeded ``seed``, or read)."""
        return next(Batches(source, n, seed, pair=self.degradation))["a"]

    def grid_images(self, x: Tensor, cond: Tensor) -> tuple[Tensor, int]:
        """Input | output pairs, PAIRS_PER_ROW pairs per row."""
        return torch.stack([self.show_condition(cond.cpu()), x.cpu()], dim=1).flatten(0, 1), 2 * PAIRS_PER_ROW

    # ------------------------------------------------------------------------------------ steps

    def d_step(self, batch: dict[str, Tensor]) -> None:
        a, x = self.prepare(batch["a"]), batch["x"]
        with torch.no_grad():
            fake = self.G(a, self.latents(x.shape[0]))
        real_logits = self.D(torch.cat(self.shown(a, x), dim=1))   # the pair gets one draw of [augment]
        fake_logits = self.D(torch.cat(self.shown(a, fake), dim=1))
        self.augment.observe(real_logits)   # ADA: sign D(real) moves p
        loss = self.objective.d_loss(real_logits, fake_logits)
        report("loss/D", loss)
        report("D/real", real_logits.mean())
        report("D/fake", fake_logits.mean())
        D = lambda y: self.D(torch.cat(self.shown(a, y), dim=1)).mean(dim=1)  # noqa: E731  (one score per sample)
        loss = loss + d_penalties(D, x, fake, self.loss.gp, self.loss.r1, report)
        self.update("D", loss)

    def g_step(self, batch: dict[str, Tensor]) -> None:
        a, x = self.prepare(batch["a"]), batch["x"]
        fake = self.G(a, self.latents(x.shape[0]))
        loss = torch.zeros((), device=self.device)
        if self.opts.adv > 0:
            with self.frozen(self.D):
                adv = self.objective.g_loss(self.D(torch.cat(self.shown(a, fake), dim=1)))
            report("loss/G_adv", adv)
            loss = loss + self.opts.adv * adv
        if self.opts.l1 > 0:
            l1 = (fake - x).abs().mean()
            report("loss/L1", l1)
            loss = loss + self.opts.l1 * l1
        report("loss/G", loss)
        self.update("G", loss)

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None, ema: bool = True) -> Tensor:
        """Images (N, *shape) for latents z (N, z_dim) and condition images ``labels`` (N, Cin, h, w)."""
        if labels is None:
            raise ConfigError("this run translates images: give condition images (gankit translate RUN INPUT --out DIR)")
        with sampling_generator(self, ema) as G:
            return G(self.prepare(labels), z.to(self.device))
