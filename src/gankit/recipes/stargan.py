"""StarGAN (Choi et al. 2018): one generator for translations among many domains.

G(x, c) takes an image and a target domain c (one-hot, broadcast as constant input channels); D has
two heads on shared layers: real/fake patch logits and a domain classifier. With a real x of domain y
and a target c ≠ y drawn uniformly:

    L_D = L_adv(D(x), D(G(x, c))) + λ_cls · CE(D_cls(x), y)                               (stargan.cls, 1)
    L_G = L_adv(D(G(x, c))) + λ_cls · CE(D_cls(G(x, c)), c) + λ_rec · E|G(G(x, c), y) - x|   (stargan.rec, 10)

so D learns what each domain looks like from real images, G must produce images D files under c, and
the reconstruction keeps what is not domain-specific (the content). Domains are the classes of the data
(sub-folder names; ``digit-fonts`` built in); every batch holds data.batch_size images of each.
Defaults here: LSGAN (the paper uses WGAN-GP: ``loss.name=wasserstein loss.gp=10 train.d_steps=5``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import nets
from ..config import Config
from ..data import DataInfo
from ..errors import ConfigError
from ..objectives import aux_class_loss, d_penalties, objective_of
from ..options import option
from ..runtime import report, rows
from .base import RECIPES, Phase, Recipe, sampling_generator
from .translation import Translation, domain_conditions, translation_grid


@dataclass
class StarGANOptions:
    cls: float = option(1.0, "weight of the domain-classification loss (lambda_cls)", above=0)
    rec: float = option(10.0, "weight of the reconstruction L1 loss (lambda_rec)", min=0)


@RECIPES.register("stargan", options=StarGANOptions)
class StarGAN(Recipe):
    """G: (x, target domain) -> x', D: x -> (patch logits, domain logits)."""

    conditioning = "domains"
    tables = ("data", "model", "loss", "optim", "train", "eval", "augment")
    batch_by_class = True
    architectures = nets.TRANSLATORS
    defaults = {"model.arch": "unet", "model.z_dim": 0, "loss.name": "lsgan"}

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        if len(info.classes) < 2 or info.kind != "images":
            raise ConfigError(f"train.recipe=stargan: needs images of at least two domains (class sub-folders, or "
                              f"data.name=digit-fonts); data set '{info.name}' has {len(info.classes)} classes")
        super().__init__(cfg, info, device)
        self.opts: StarGANOptions = cfg.table("stargan")
        self.domains = list(info.classes)
        k, c = len(self.domains), self.shape[0]
        G, D = nets.build_translator(cfg.model, (c + k, *self.shape[1:]), self.shape, c, d_classes=k,
                                     options=cfg.owned.get(cfg.model.arch))
        self.G, self.D = G.to(device), D.to(device)
        self.nets = {"G": self.G, "D": self.D, **self.augment.state_nets()}   # ADA's p is saved with the weights
        self.objective = objective_of(cfg.loss)
        self.loss = cfg.loss
        self.optimizers = {"G": self.adam(self.G.parameters(), "G"), "D": self.adam(self.D.parameters(), "D")}
        self.ema_targets = ["G"]
        self.phases = [Phase("D", self.d_step, repeat=cfg.train.d_steps), Phase("G", self.g_step, fresh_batch=False)]

    def translate(self, G, x: Tensor, to: Tensor, z: Tensor) -> Tensor:
        """G(x, c): the target domains ``to`` (N,) as one-hot constant channels beside x."""
        c = F.one_hot(to, len(self.domains)).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return G(torch.cat([x, c], dim=1), z)

    def targets(self, y: Tensor) -> Tensor:
        """A target domain for each source domain y, uniform among the other domains (global RNG)."""
        shift = rows(lambda m: torch.randint(1, len(self.domains), (m,), device=y.device), len(y))
        return (y + shift) % len(self.domains)

    # ------------------------------------------------------------------------------------ steps

    def d_step(self, batch: dict[str, Tensor]) -> None:
        x, y = batch["x"], batch["y"]
        with torch.no_grad():
            fake = self.translate(self.G, x, self.targets(y), self.latents(len(x)))
        real_logits, real_cls = self.D.classify(self.shown(x))
        fake_logits = self.D(self.shown(fake))
        self.augment.observe(real_logits)   # ADA: sign D(real) moves p
        adv = self.objective.d_loss(real_logits, fake_logits)
        cls = aux_class_loss(real_cls, y)
        report("loss/D", adv)
        report("loss/D_cls", cls)
        report("D/accuracy", (real_cls.argmax(1) == y).float().mean())
        score = lambda v: self.D(self.shown(v)).mean(dim=1)  # noqa: E731  (one score per image, for the penalties)
        loss = adv + self.opts.cls * cls + d_penalties(score, x, fake, self.loss.gp, self.loss.r1, report)
        self.update("D", loss)

    def g_step(self, batch: dict[str, Tensor]) -> None:
        x, y = batch["x"], batch["y"]
        to, z = self.targets(y), self.latents(len(x))
        fake = self.translate(self.G, x, to, z)
        with self.frozen(self.D):
            fake_logits, fake_cls = self.D.classify(self.shown(fake))
        adv = self.objective.g_loss(fake_logits)
        cls = aux_class_loss(fake_cls, to)
        rec = (self.translate(self.G, fake, y, z) - x).abs().mean()
        loss = adv + self.opts.cls * cls + self.opts.rec * rec
        report("loss/G_adv", adv)
        report("loss/G_cls", cls)
        report("loss/cycle", rec)
        report("loss/G", loss)
        self.update("G", loss)

    # ------------------------------------------------------------------------------- sampling

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Translation | None = None, ema: bool = True) -> Tensor:
        """Translations of ``labels.x`` into the domains ``labels.to`` (z: (N, z_dim) latents)."""
        if not isinstance(labels, Translation):
            raise ConfigError("this run translates images: give source images (gankit translate RUN INPUT --out DIR "
                              "--to DOMAIN)")
        with sampling_generator(self, ema) as G:
            return self.translate(G, labels.x.to(self.device), labels.to.to(self.device), z.to(self.device))

    @torch.no_grad()
    def source_domains(self, x: Tensor, target: int) -> Tensor:
        """D's domain prediction for images x (N,) — the source domain of inputs given without one."""
        was = self.D.training
        self.D.eval()
        try:
            return self.D.classify(x.to(self.device))[1].argmax(1)
        finally:
            self.D.train(was)

    def fixed_conditions(self, source, n: int, seed: int) -> Translation:
        """n training images, the domains in turn, each to be translated into the next domain."""
        return domain_conditions(source, n, seed, len(self.domains))

    def grid_images(self, x: Tensor, cond: Translation) -> tuple[Tensor, int]:
        """Input | output | reconstruction (the output translated back to its source domain) triples."""
        return translation_grid(self, x, cond)
