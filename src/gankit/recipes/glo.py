"""Generative Latent Optimization (Bojanowski, Joulin, Lopez-Paz & Szlam 2018): every training image has its
own latent vector, learned with the generator by plain reconstruction — no discriminator, no encoder.

The latents are a table (``LatentTable``, one row per training image, indexed by the batch's ``index``,
saved with the run's weights), initialised by PCA of the images or at random, kept on the unit sphere (or
in the unit ball) by projection after every step and moved by SGD at their own rate; the generator uses
Adam at optim.lr_g. The loss is the paper's Laplacian-pyramid L1 (``objectives.lap1_loss``) or the
squared error. Samples decode draws of a full-covariance Gaussian fitted to the learned latents, projected
onto the sphere (or ball) like the latents G was trained on; a new image's latent is fitted by the same
loss with the generator fixed (``fit_latents``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import Config
from ..data import DataInfo, Source, StreamSource, TensorSource
from ..errors import ConfigError
from ..objectives import lap1_loss, squared_error
from ..options import option
from ..runtime import report
from .base import RECIPES, Phase, sampling_generator
from .latent import CodeGaussian, LatentRecipe


@dataclass
class GLOOptions:
    loss: str = option("lap1", "reconstruction loss: lap1 (the paper's Laplacian-pyramid L1) or l2 "
                               "(squared error per pixel)", choices=("lap1", "l2"))
    levels: int = option(3, "lap1: band-pass levels of the Laplacian pyramid", above=0)
    init: str = option("pca", "the latents' start: pca (the images' principal components) or random",
                       choices=("pca", "random"))
    constraint: str = option("sphere", "keep each latent on the unit sphere, or in the unit ball",
                             choices=("sphere", "ball"))
    lr_z: float = option(1.0, "SGD step on each latent, per unit gradient of its own image's loss", above=0)
    fit_steps: int = option(300, "Adam steps fitting the latent of a new image (reconstruct)", min=0)
    fit_lr: float = option(0.05, "the rate of those steps", above=0)


class LatentTable(nn.Module):
    """One latent vector per training image (N, d), and the projection that keeps them on the sphere or
    in the ball."""

    def __init__(self, n: int, dim: int, constraint: str) -> None:
        super().__init__()
        self.constraint = constraint
        self.weight = nn.Parameter(self.project(torch.randn(n, dim)))

    def project(self, z: Tensor) -> Tensor:
        norm = z.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return z / (norm if self.constraint == "sphere" else norm.clamp_min(1.0))

    def forward(self, index: Tensor) -> Tensor:
        return self.weight[index]

    @torch.no_grad()
    def project_(self, index: Tensor) -> None:
        """Project the rows ``index`` back onto the constraint set, in place."""
        self.weight[index] = self.project(self.weight[index])


def all_images(source: Source) -> Tensor:
    """Every training sample of a finite source, float (N, *shape), in the order of its indices."""
    if isinstance(source, TensorSource):
        return source.all()["x"]
    assert isinstance(source, StreamSource)
    from ..data.base import to_float

    items = [source.dataset[i] for i in range(len(source))]
    return to_float(torch.stack([torch.as_tensor(it[0] if isinstance(it, tuple) else it) for it in items]))


def pca_codes(x: Tensor, dim: int) -> Tensor:
    """The coordinates (N, dim) of flattened samples x on their first ``dim`` principal components
    (zeros beyond the rank of the data)."""
    flat = x.flatten(1).double()
    centred = flat - flat.mean(0)
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    k = min(dim, vt.shape[0])
    out = torch.zeros(len(x), dim, dtype=torch.float64)
    out[:, :k] = centred @ vt[:k].T
    return out.float()


@RECIPES.register("glo", options=GLOOptions)
class GLO(LatentRecipe):
    """G: latent -> sample, trained with a latent table by reconstruction."""

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        super().__init__(cfg, info, device)
        if not info.size:
            raise ConfigError(f"train.recipe=glo: needs a finite data set (a latent per sample); "
                              f"'{info.name}' is endless")
        self.opts: GLOOptions = cfg.table("glo")
        self.G = self.build_nets(cfg, info)[0].to(device)
        self.Z = LatentTable(info.size, cfg.model.z_dim, self.opts.constraint).to(device)
        self.nets = {"G": self.G, "Z": self.Z}
        self.optimizers = {"G": self.adam(self.G.parameters(), "G"),
                           # the batch loss is a mean: a row's gradient is 1/B of its own image's
                           "Z": torch.optim.SGD(self.Z.parameters(), lr=self.opts.lr_z * cfg.data.batch_size)}
        self.ema_targets = ["G"]
        self.phases = [Phase("G", self.g_step)]

    def begin(self, source: Source) -> None:
        if self.opts.init == "pca":
            with torch.no_grad():
                self.Z.weight.copy_(self.Z.project(pca_codes(all_images(source), self.z_dim)).to(self.device))

    def loss(self, x_hat: Tensor, x: Tensor) -> Tensor:
        """The reconstruction loss per sample (N,)."""
        if self.opts.loss == "lap1" and x.dim() == 4:
            return lap1_loss(x_hat, x, self.opts.levels)
        return squared_error(x_hat, x) / x[0].numel()

    def g_step(self, batch: dict[str, Tensor]) -> None:
        x, index = batch["x"], batch["index"]
        loss = self.loss(self.G(self.Z(index)), x).mean()
        report("loss/G", loss)
        self.update(("G", "Z"), loss)
        # the rows SGD moved: this batch's, and with several processes every rank's (gradients are averaged)
        self.Z.project_(self.Z.weight.grad.abs().sum(1).nonzero().flatten())

    def prior(self, eps: Tensor) -> Tensor:
        """Draws of the fitted Gaussian, projected onto the sphere (or ball) G was trained on."""
        return self.Z.project(super().prior(eps))

    def code_gaussian(self) -> CodeGaussian:
        """The Gaussian fitted to the latent table as it is now."""
        fitted = CodeGaussian(self.z_dim).to(self.device)
        fitted.fit(self.Z.weight)
        return fitted

    def fit_latents(self, x: Tensor, ema: bool = True) -> Tensor:
        """Latents (N, d) of new images x: started at the table's latent whose image is closest (among up
        to 2,048 rows), then ``fit_steps`` Adam steps on the loss with G fixed, projected after each."""
        x = x.to(self.device)
        with sampling_generator(self, ema) as G, self.frozen(G), torch.enable_grad():
            rows = self.Z.weight.detach()
            if len(rows) > 2048:
                rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))[:2048]]
            with torch.no_grad():
                decoded = torch.cat([G(part) for part in rows.split(512)]).flatten(1)
                nearest = torch.cdist(x.flatten(1), decoded).argmin(1)
            z = rows[nearest].clone().requires_grad_(True)
            opt = torch.optim.Adam([z], lr=self.opts.fit_lr)
            for _ in range(self.opts.fit_steps):
                opt.zero_grad(set_to_none=True)
                self.loss(G(z), x).sum().backward()
                opt.step()
                with torch.no_grad():
                    z.copy_(self.Z.project(z))
        return z.detach()

    @torch.no_grad()
    def reconstruct(self, x: Tensor, ema: bool = True) -> Tensor:
        z = self.fit_latents(x, ema)
        with sampling_generator(self, ema) as G:
            return G(z)
