"""CycleGAN (Zhu et al. 2017): translation between two unpaired domains A and B.

Two generators G_AB: A -> B and G_BA: B -> A, two discriminators D_A (real A vs G_BA(b)) and D_B (real B
vs G_AB(a)). Nothing pairs an a with a b, so the adversarial terms alone would let G_AB map every a to
any plausible b; the cycle must bring each image back:

    L_G = L_adv(D_B(G_AB(a))) + L_adv(D_A(G_BA(b)))
        + λ_cyc · (E|G_BA(G_AB(a)) - a| + E|G_AB(G_BA(b)) - b|)                  (cyclegan.cycle, 10)
        + λ_cyc · λ_id · (E|G_AB(b) - b| + E|G_BA(a) - a|)                      (cyclegan.identity, 0.5)
        + λ_reg · (E|G_AB(a) - a| + E|G_BA(b) - b|)                              (cyclegan.self_reg, 0)
        + λ_sem · CE(F_A(G_AB(a)), y_a)                                           (cyclegan.semantic, 0)
                    (F_A learns CE on real a, and λ_im · IM on real b: cyclegan.semantic_im, 0)

and each D minimises its objective on real images vs images from a history pool (``cyclegan.pool``, 50) of
the generator's outputs. Defaults as the paper: LSGAN, Adam(2e-4, β1 = 0.5) — one optimiser over both
generators, one over both discriminators —, the G step before the D step on the same batch. The data is
a set with two classes (domains), e.g. a folder with trainA/ and trainB/; every batch holds
data.batch_size images of each. The last term, off by default, is SimGAN's self-regularisation
(Shrivastava et al. 2017): it keeps each translation near its input, which stops the generators from
swapping content that the cycle alone would let them hide and restore (e.g. a handwritten 4 made a
printed 9 and back).

The last term, also off by default, is CyCADA's semantic consistency (Hoffman et al. 2018): F_A, a
classifier of domain A's content labels (the digit of ``digits-printed``; sets whose samples carry
content labels), learns from real A images (±1 px shifts, Gaussian noise σ = 0.2) alongside the GANs
(``F`` phase, before G, on the same batch), and the G step asks that a translation into B keep its
source's label in F_A's eyes. The cycle alone cannot tell a 4 kept as a 4 from a 4 made a 9 that is
mapped back: F_A can. CyCADA also asks G_BA(b) to keep the label F_A reads on b; on
``digits-printed`` that term did not help (F_A reads printed digits poorly), so it is left out.

A handwriting classifier reads printed digits poorly, and G_AB can satisfy it with the wrong printed
digit. ``cyclegan.semantic_im`` adds an F_A update on the unlabelled B images (``F_B`` phase, from step
IM_START) that minimises information maximisation (Krause et al. 2010; SHOT, Liang et al. 2020):
confident predictions on each B image, every class used across the batch. The B images' cluster
structure then carries A's labels across: on digits-printed F_A reads held-out printed digits at 84-92%
instead of 56-63% (``benchmarks/semantic_classifier.py``, docs/BENCHMARKS.md). No label of
domain B is used, so the independent classifiers of ``metrics/translation.py`` (fitted on real B
images and their labels) still judge the result.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import nets
from ..config import Config
from ..data import DataInfo
from ..errors import ConfigError
from ..nets.classifier import SmallCNN, shift_images
from ..objectives import d_penalties, information_maximisation, objective_of
from ..options import option
from ..runtime import report
from .base import RECIPES, Phase, Recipe, sampling_generator
from .translation import ImagePool, Translation, domain_conditions, translation_grid


IM_START = 500   # cyclegan.semantic_im starts once F_A knows A's labels; from step 0 it fixes B's clusters to arbitrary classes


@dataclass
class CycleGANOptions:
    cycle: float = option(10.0, "weight of the cycle (reconstruction) L1 loss", min=0)
    identity: float = option(0.5, "identity loss weight, relative to cycle; 0 disables", min=0)
    self_reg: float = option(0.0, "weight of E|G_AB(a) - a| + E|G_BA(b) - b| (SimGAN's self-regularisation)", min=0)
    semantic: float = option(0.0, "weight of CyCADA's semantic consistency (a classifier of domain A's content labels)",
                             min=0)
    semantic_im: float = option(0.0, "with semantic > 0: weight of information maximisation on domain B's images "
                                     "for F_A (so it reads B's content too)", min=0)
    pool: int = option(50, "D sees generated images from a history of this many; 0 = the newest only", min=0)


def augment(x: Tensor) -> Tensor:
    """What F_A learns from: real images moved by up to a pixel, plus Gaussian noise of σ = 0.2."""
    x = shift_images(x)
    return x + 0.2 * torch.randn_like(x)


@RECIPES.register("cyclegan", options=CycleGANOptions)
class CycleGAN(Recipe):
    """G_AB, G_BA, D_A, D_B; adversarial + cycle + identity losses."""

    training_only = ("augment", "pool_A", "pool_B", "F_A")   # sampling reads none of these
    conditioning = "domains"
    tables = ("data", "model", "loss", "optim", "train", "eval", "augment")
    batch_by_class = True
    architectures = nets.TRANSLATORS
    defaults = {"model.arch": "unet", "model.z_dim": 0, "loss.name": "lsgan"}

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        if len(info.classes) != 2 or info.kind != "images":
            raise ConfigError(f"train.recipe=cyclegan: needs images of two domains (a folder with trainA/ and trainB/, "
                              f"or two class sub-folders, or data.name=digits-printed); data set '{info.name}' has "
                              f"{len(info.classes)} classes")
        super().__init__(cfg, info, device)
        self.opts: CycleGANOptions = cfg.table("cyclegan")
        self.domains = list(info.classes)
        c = self.shape[0]
        arch_options = cfg.owned.get(cfg.model.arch)
        self.G_AB, self.D_B = (m.to(device) for m in nets.build_translator(cfg.model, self.shape, self.shape, c,
                                                                           options=arch_options))
        self.G_BA, self.D_A = (m.to(device) for m in nets.build_translator(cfg.model, self.shape, self.shape, c,
                                                                           options=arch_options))
        self.pool_A = ImagePool(self.opts.pool, self.shape).to(device)
        self.pool_B = ImagePool(self.opts.pool, self.shape).to(device)
        self.nets = {"G_AB": self.G_AB, "G_BA": self.G_BA, "D_A": self.D_A, "D_B": self.D_B,
                     "pool_A": self.pool_A, "pool_B": self.pool_B, **self.augment.state_nets()}
        self.objective = objective_of(cfg.loss)
        self.loss = cfg.loss
        self.optimizers = {"G": self.adam(itertools.chain(self.G_AB.parameters(), self.G_BA.parameters()), "G"),
                           "D": self.adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), "D")}
        self.ema_targets = ["G_AB", "G_BA"]
        self.F_A: SmallCNN | None = None   # the content classifier of domain A (cyclegan.semantic > 0)
        if self.opts.semantic > 0:
            if not info.content_classes:
                raise ConfigError(f"cyclegan.semantic: needs content labels shared by the domains (e.g. "
                                  f"data.name=digits-printed); data set '{info.name}' has none — set cyclegan.semantic=0")
            self.F_A = SmallCNN(c, len(info.content_classes)).to(device)
            self.nets["F_A"] = self.F_A
            self.optimizers["F"] = torch.optim.Adam(self.F_A.parameters(), lr=1e-3)
        self.phases = []
        if self.F_A is not None:
            self.phases.append(Phase("F", self.f_step))
            if self.opts.semantic_im > 0:
                self.phases.append(Phase("F_B", self.f_b_step, start=IM_START, fresh_batch=False))
        self.phases += [Phase("G", self.g_step, fresh_batch=self.F_A is None),
                        Phase("D", self.d_step, repeat=cfg.train.d_steps, fresh_batch=False)]
        self._fakes: tuple[Tensor, Tensor] | None = None   # (G_BA(b), G_AB(a)) of the last G step, for D

    def split(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(a, b): the batch's images of domain A and of domain B."""
        x, y = batch["x"], batch["y"]
        return x[y == 0], x[y == 1]

    # ------------------------------------------------------------------------------------ steps

    def f_step(self, batch: dict[str, Tensor]) -> None:
        """F_A learns the content labels of the batch's real A images, shifted and noised (loss.semantic > 0)."""
        assert self.F_A is not None
        a, content = batch["x"][batch["y"] == 0], batch["content"][batch["y"] == 0]
        loss = F.cross_entropy(self.F_A(augment(a)), content)
        report("loss/F_A", loss)
        self.update("F", loss)

    def f_b_step(self, batch: dict[str, Tensor]) -> None:
        """F_A reads the batch's real B images (shifted and noised) confidently and uses every class across
        them: information maximisation, weighted cyclegan.semantic_im; from step IM_START on."""
        assert self.F_A is not None
        loss = self.opts.semantic_im * information_maximisation(self.F_A(augment(batch["x"][batch["y"] == 1])))
        report("loss/F_A_im", loss)
        self.update("F", loss)

    def semantic(self, batch: dict[str, Tensor], fake_b: Tensor) -> Tensor:
        """CyCADA's term CE(F_A(G_AB(a)), y_a), F_A frozen."""
        assert self.F_A is not None
        with self.frozen(self.F_A):
            return F.cross_entropy(self.F_A(fake_b), batch["content"][batch["y"] == 0])

    def g_step(self, batch: dict[str, Tensor]) -> None:
        a, b = self.split(batch)
        za, zb = self.latents(len(a)), self.latents(len(b))
        fake_b, fake_a = self.G_AB(a, za), self.G_BA(b, zb)
        with self.frozen(self.D_A, self.D_B):
            adv = (self.objective.g_loss(self.D_B(self.shown(fake_b)))
                   + self.objective.g_loss(self.D_A(self.shown(fake_a))))
        cycle = (self.G_BA(fake_b, za) - a).abs().mean() + (self.G_AB(fake_a, zb) - b).abs().mean()
        loss = adv + self.opts.cycle * cycle
        report("loss/G_adv", adv)
        report("loss/cycle", cycle)
        if self.opts.identity > 0:
            identity = (self.G_AB(b, zb) - b).abs().mean() + (self.G_BA(a, za) - a).abs().mean()
            report("loss/identity", identity)
            loss = loss + self.opts.cycle * self.opts.identity * identity
        if self.opts.self_reg > 0:
            near = (fake_b - a).abs().mean() + (fake_a - b).abs().mean()
            report("loss/self_reg", near)
            loss = loss + self.opts.self_reg * near
        if self.F_A is not None:
            semantic = self.semantic(batch, fake_b)
            report("loss/semantic", semantic)
            loss = loss + self.opts.semantic * semantic
        report("loss/G", loss)
        self.update("G", loss)
        self._fakes = (fake_a.detach(), fake_b.detach())

    def d_step(self, batch: dict[str, Tensor]) -> None:
        a, b = self.split(batch)
        if self._fakes is None:   # only if phases are reordered: make this step's fakes
            with torch.no_grad():
                self._fakes = (self.G_BA(b, self.latents(len(b))), self.G_AB(a, self.latents(len(a))))
        fake_a, fake_b = self.pool_A.query(self._fakes[0]), self.pool_B.query(self._fakes[1])
        loss = torch.zeros((), device=self.device)
        for name, D, real, fake in (("A", self.D_A, a, fake_a), ("B", self.D_B, b, fake_b)):
            real_logits, fake_logits = D(self.shown(real)), D(self.shown(fake))
            self.augment.observe(real_logits)   # ADA: sign D(real) of both domains moves the one p
            part = self.objective.d_loss(real_logits, fake_logits)
            report(f"loss/D_{name}", part)
            score = lambda y, D=D: D(self.shown(y)).mean(dim=1)  # noqa: E731  (one score per image, for the penalties)
            loss = loss + part + d_penalties(score, real, fake, self.loss.gp, self.loss.r1, report)
        self.update("D", loss)
        self._fakes = None

    # ------------------------------------------------------------------------------- sampling

    def generator_to(self, domain: int) -> str:
        """The name of the generator that translates into ``domain`` (0 = A, 1 = B)."""
        return "G_BA" if domain == 0 else "G_AB"

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Translation | None = None, ema: bool = True) -> Tensor:
        """Translations of ``labels.x`` into the domains ``labels.to`` (z: (N, z_dim) latents)."""
        if not isinstance(labels, Translation):
            raise ConfigError("this run translates images: give source images (gankit translate RUN INPUT --out DIR)")
        x, to = labels.x.to(self.device), labels.to.to(self.device)
        out = torch.empty_like(x)
        z = z.to(self.device)
        for domain in (0, 1):
            rows = to == domain
            if bool(rows.any()):
                with sampling_generator(self, ema, self.generator_to(domain)) as G:
                    out[rows] = G(x[rows], z[rows])
        return out

    def fixed_conditions(self, source, n: int, seed: int) -> Translation:
        """n training images, A and B in turn, each to be translated into the other domain."""
        return domain_conditions(source, n, seed, 2)

    def grid_images(self, x: Tensor, cond: Translation) -> tuple[Tensor, int]:
        """Input | output | reconstruction (the output translated back) triples."""
        return translation_grid(self, x, cond)
