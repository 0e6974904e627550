"""The unconditional GAN of seed 001: k discriminator steps, then one generator step."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import nets
from ..config import Config, uses_drs
from ..data import DataInfo
from ..objectives import OBJECTIVES, clip_weights_, d_penalties
from ..nets.layers import per_sample
from ..train.stats import report
from . import Phase, RECIPES, normal_latents, sampling_generator


@RECIPES.register("gan")
class GAN:
    """G: z -> x, D: x -> logit, trained with any objective of ``gankit.objectives`` and its penalties."""

    conditional = False   # sample() ignores labels
    classes: list[str] = []   # class names of a class-conditional recipe (sample(z, labels=class indices))

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        self.device = device
        self.z_dim = cfg.model.z_dim
        self.G, self.D = (m.to(device) for m in self.build_nets(cfg, info))
        self.nets = {"G": self.G, "D": self.D}
        self.objective = OBJECTIVES.get(cfg.loss.name)
        self.loss = cfg.loss
        self.sampler = cfg.sample   # how draw_samples draws: G(z) directly, or with rejection by D
        self.rejection = uses_drs(cfg)
        o = cfg.optim
        self.optimizers = {
            "G": torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=tuple(o.betas_g)),
            "D": torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=tuple(o.betas_d)),
        }
        self.ema_targets = ["G"]
        self.phases = [Phase("D", self.d_step, repeat=cfg.train.d_steps),
                       Phase("G", self.g_step, fresh_batch=False)]
        self.joint_d = per_sample(self.D)   # D judges real and fake samples in one forward (d_logits)
        self.reuse_fake = cfg.train.reuse_fake   # the G step takes the last D step's G(z), graph kept (pytorch/examples)
        self._fake: Tensor | None = None   # that G(z), from the last D step to the G step of one training step

    def build_nets(self, cfg: Config, info: DataInfo):
        """(G, D) for this recipe."""
        return nets.build(cfg.model, info.shape)

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), shape (n, z_dim)."""
        return normal_latents(n, self.z_dim, self.device, generator)

    def fake_for_d(self, generate: Callable[[], Tensor]) -> Tensor:
        """``generate()`` (G's samples) for a D step, detached. With train.reuse_fake every D step runs it
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
        real_logits, fake_logits = self.d_logits(real, fake)
        loss = self.objective.d_loss(real_logits, fake_logits)
        report("loss/D", loss)
        report("D/real", real_logits.mean())
        report("D/fake", fake_logits.mean())
        loss = loss + d_penalties(self.D, real, fake, self.loss.gp, self.loss.r1, report)
        opt = self.optimizers["D"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if self.loss.clip > 0:
            clip_weights_(self.D, self.loss.clip)

    def g_step(self, batch: dict[str, Tensor]) -> None:
        fake = self.fake_for_g(lambda: self.G(self.latents(batch["x"].shape[0])))
        self.D.requires_grad_(False)  # no D gradients are needed for the generator's update
        loss = self.objective.g_loss(self.D(fake))
        self.D.requires_grad_(True)
        report("loss/G", loss)
        opt = self.optimizers["G"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def fixed_conditions(self, source, n: int, seed: int) -> Tensor | None:
        """Conditions for n grid or evaluation samples: none, the GAN is unconditional."""
        return None

    def grid_images(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, int | None]:
        """Samples as laid out in a grid, and the row length (None: square)."""
        return x, None

    @torch.no_grad()
    def sample(self, z: Tensor, labels: Tensor | None = None, ema: bool = True) -> Tensor:
        """Samples (N, *shape) for latents z (N, z_dim), from the EMA generator when there is one."""
        with sampling_generator(self, ema) as G:
            return G(z.to(self.device))
