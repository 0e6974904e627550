"""Paired image-to-image GAN (pix2pix, Isola et al. 2017) [seed §11.11, case 2; seed 000].

G maps a condition image a (and, if ``model.z_dim`` > 0, a latent z) to an image; D judges (a, x) pairs,
so it asks "is x a real image *for this a*". The generator minimises

    L_G = loss.adv · L_adv(D(a, G(a, z))) + loss.l1 · E|G(a, z) - x|

(pix2pix: adv = 1, l1 = 100). GAN alone invents content that does not fit a; L1 alone is blurry (it
regresses to the mean of the possible outputs). ``loss.adv = 0`` trains the same network by L1 only,
without D — the regression baseline. Pairs come from ``data.pair`` (a degradation made on the fly:
superres, colorize, inpaint, denoise) or from paired data on disk (``data.name=pairs``: A|B images or A/ and B/
folders); batches hold {"a": condition, "x": target}.
Conditions smaller than the image (super-resolution) are upsampled bilinearly before G and D see them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import nets
from ..config import Config
from ..data import Batches, DataInfo
from ..data.paired import check_task, condition_shape
from ..errors import ConfigError
from ..objectives import OBJECTIVES, d_penalties
from ..train.stats import report
from . import Phase, RECIPES, normal_latents, sampling_generator


PAIRS_PER_ROW = 4   # sample grids: input | output pairs per row


@RECIPES.register("paired")
class Paired:
    """G: (a, z) -> x, D: (a, x) -> patch logits, GAN + L1."""

    conditional = True
    paired = True
    architectures = nets.TRANSLATORS
    defaults = {"model.arch": "unet", "loss.l1": 100.0}

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        if info.pair_shape and cfg.data.pair:
            raise ConfigError(f"data.pair={cfg.data.pair}: data set '{info.name}' already holds pairs; set data.pair=\"\"")
        if not cfg.data.pair and not info.pair_shape:
            raise ConfigError("train.recipe=paired: needs pairs; set data.pair to one of superres2, superres4, "
                              "colorize, inpaint, denoise, or read pairs from disk with data.name=pairs")
        if cfg.data.pair:
            check_task(cfg.data.pair, info.shape)
        if cfg.loss.adv == 0 and cfg.loss.l1 == 0:
            raise ConfigError("train.recipe=paired: loss.adv and loss.l1 are both 0, so nothing would be learnt")
        self.device = device
        self.task = cfg.data.pair   # "" for pairs read from disk
        self.shape = tuple(info.shape)
        self.cond_shape = condition_shape(self.task, self.shape) if self.task else tuple(info.pair_shape)
        self.z_dim = cfg.model.z_dim
        full = (self.cond_shape[0], *self.shape[1:])      # the condition after upsampling to the image size
        self.G, self.D = (m.to(device) for m in nets.build_translator(cfg.model, full, self.shape))
        self.objective = OBJECTIVES.get(cfg.loss.name)
        self.loss = cfg.loss
        o = cfg.optim
        self.optimizers = {"G": torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=tuple(o.betas_g))}
        self.nets = {"G": self.G}
        self.phases = []
        if cfg.loss.adv > 0:
            self.nets["D"] = self.D
            self.optimizers["D"] = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=tuple(o.betas_d))
            self.phases.append(Phase("D", self.d_step, repeat=cfg.train.d_steps))
        self.phases.append(Phase("G", self.g_step, fresh_batch=not self.phases))
        self.ema_targets = ["G"]

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), shape (n, z_dim) (z_dim may be 0: a deterministic G)."""
        return normal_latents(n, self.z_dim, self.device, generator)

    def prepare(self, a: Tensor) -> Tensor:
        """The condition at the image size: (N, Cin, h, w) -> (N, Cin, H, W)."""
        a = a.to(self.device)
        if tuple(a.shape[2:]) != self.shape[1:]:
            a = F.interpolate(a, size=self.shape[1:], mode="bilinear", align_corners=False)
        return a

    def show(self, a: Tensor) -> Tensor:
        """A condition drawn as an image of the data's shape, for grids: (N, C, H, W)."""
        a = F.interpolate(a, size=self.shape[1:], mode="nearest") if tuple(a.shape[2:]) != self.shape[1:] else a
        c = self.shape[0]
        if self.task == "inpaint":   # the masked image, the hole drawn white
            return torch.where(a[:, c:] > 0.5, torch.ones_like(a[:, :c]), a[:, :c])
        return a.expand(-1, c, -1, -1) if a.shape[1] == 1 and c > 1 else a[:, :c]

    def fixed_conditions(self, source, n: int, seed: int) -> Tensor:
        """Condition images of n samples of the data (degraded with a generator seeded ``seed``, or read)."""
        return next(Batches(source, n, seed, pair=self.task))["a"]

    def grid_images(self, x: Tensor, cond: Tensor) -> tuple[Tensor, int]:
        """Input | output pairs, PAIRS_PER_ROW pairs per row."""
        return torch.stack([self.show(cond.cpu()), x.cpu()], dim=1).flatten(0, 1), 2 * PAIRS_PER_ROW

    # ------------------------------------------------------------------------------------ steps

    def d_step(self, batch: dict[str, Tensor]) -> None:
        a, x = self.prepare(batch["a"]), batch["x"]
        with torch.no_grad():
            fake = self.G(a, self.latents(x.shape[0]))
        real_logits = self.D(torch.cat([a, x], dim=1))
        fake_logits = self.D(torch.cat([a, fake], dim=1))
        loss = self.objective.d_loss(real_logits, fake_logits)
        report("loss/D", loss)
        report("D/real", real_logits.mean())
        report("D/fake", fake_logits.mean())
        D = lambda y: self.D(torch.cat([a, y], dim=1)).mean(dim=1)  # noqa: E731  (one score per sample)
        loss = loss + d_penalties(D, x, fake, self.loss.gp, self.loss.r1, report)
        opt = self.optimizers["D"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def g_step(self, batch: dict[str, Tensor]) -> None:
        a, x = self.prepare(batch["a"]), batch["x"]
        fake = self.G(a, self.latents(x.shape[0]))
        loss = torch.zeros((), device=self.device)
        if self.loss.adv > 0:
            self.D.requires_grad_(False)
            adv = self.objective.g_loss(self.D(torch.cat([a, fake], dim=1)))
            self.D.requires_grad_(True)
            report("loss/G_adv", adv)
            loss = loss + self.loss.adv * adv
        if self.loss.l1 > 0:
            l1 = (fake - x).abs().mean()
            report("loss/L1", l1)
            loss = loss + self.loss.l1 * l1
        report("loss/G", loss)
        opt = self.optimizers["G"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None, ema: bool = True) -> Tensor:
        """Images (N, *shape) for latents z (N, z_dim) and condition images ``labels`` (N, Cin, h, w)."""
        if labels is None:
            raise ConfigError("this run translates images: give condition images (gankit translate RUN INPUT --out DIR)")
        with sampling_generator(self, ema) as G:
            return G(self.prepare(labels), z.to(self.device))
