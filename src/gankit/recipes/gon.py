"""Gradient Origin Networks (Bond-Taylor & Willcocks 2021): a decoder that is its own encoder. An image's
latent is the negative gradient of its reconstruction loss at the origin,

    z = -∇_{z₀} L(F(z₀), x) at z₀ = 0,

one inner step; F is then trained on L(F(z), x) *through* that gradient (second-order derivatives, which
is why F's activations need a non-zero second derivative: ELU by default, ReLU refused).

The variational GON puts two linear maps on the origin and reparameterises: (μ, log σ²) = (A z₀ + a,
B z₀ + b), z = μ + σ ε; the inner and the outer loss are the negative ELBO, -log p(x|z) + β KL(q || N(0, I)),
and samples decode z ~ N(0, I). The plain GON samples from a full-covariance Gaussian that follows its
latents during training (``CodeGaussian.track``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import Config
from ..data import DataInfo
from ..errors import ConfigError
from ..nets.layers import ACTIVATIONS
from ..objectives import gaussian_kl
from ..options import option
from ..runtime import report
from .base import RECIPES, Phase, sampling_generator
from .latent import LIKELIHOODS, CodeGaussian, LatentRecipe, reconstruction_nll, reparameterise


@dataclass
class GONOptions:
    activation: str = option("elu", "F's hidden activation; the gradient step needs a non-zero second derivative",
                             choices=tuple(ACTIVATIONS))
    variational: bool = option(True, "the variational GON: a prior N(0, I) to sample from, β-weighted KL")
    likelihood: str = option("bernoulli", "p(x | z) summed over every pixel: bernoulli or gaussian", choices=LIKELIHOODS)
    sigma: float = option(0.1, "gaussian likelihood: its standard deviation", above=0)
    beta: float = option(1.0, "variational: the KL term's weight", min=0)


class OriginHeads(nn.Module):
    """The variational GON's maps from the latent space's origin to q(z | x): (μ, log σ²)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mean = nn.Linear(dim, dim)
        self.logvar = nn.Linear(dim, dim)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.mean(z), self.logvar(z)


@RECIPES.register("gon", options=GONOptions)
class GON(LatentRecipe):
    """F: latent -> sample, whose latents are gradients at the origin."""

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        super().__init__(cfg, info, device)
        self.opts: GONOptions = cfg.table("gon")
        self.G = self.build_nets(cfg, info, act=self.opts.activation)[0].to(device)
        self.nets = {"G": self.G}
        params = list(self.G.parameters())
        if self.opts.variational:
            self.heads = OriginHeads(cfg.model.z_dim).to(device)
            self.nets["heads"] = self.heads
            params += list(self.heads.parameters())
        else:
            self.codes = CodeGaussian(cfg.model.z_dim).to(device)
            self.nets["codes"] = self.codes
        self.optimizers = {"G": self.adam(params, "G")}
        self.ema_targets = ["G"]
        self.phases = [Phase("G", self.g_step)]

    @classmethod
    def check(cls, cfg: Config) -> None:
        super().check(cfg)
        act = cfg.table("gon").activation
        if act == "relu":
            raise ConfigError(f"gon.activation=relu: a Gradient Origin Network trains through the gradient at the "
                              f"origin, which needs activations with a non-zero second derivative; ReLU's is zero "
                              f"— use {', '.join(a for a in ACTIVATIONS if a != 'relu')}")

    def nll(self, x_hat: Tensor, x: Tensor) -> Tensor:
        return reconstruction_nll(x_hat, x, self.opts.likelihood, self.opts.sigma)

    def decode_loss(self, G: nn.Module, z: Tensor, x: Tensor, draw: bool = True) -> tuple[Tensor, Tensor | None]:
        """Per-sample loss (N,) of decoding the latents z (N, d) — the variational GON first maps them to
        q(z | x) and draws (``draw``; else decodes the mean) — and the KL term (None for the plain GON)."""
        if not self.opts.variational:
            return self.nll(G(z), x), None
        mean, logvar = self.heads(z)
        kl = gaussian_kl(mean, logvar)
        return self.nll(G(reparameterise(mean, logvar) if draw else mean), x) + self.opts.beta * kl, kl

    def latent(self, G: nn.Module, x: Tensor, create_graph: bool, draw: bool = True) -> Tensor:
        """z = -∇_{z₀} L(G(z₀), x) at z₀ = 0, (N, d): the loss is summed over the batch, so each row is the
        gradient of that sample's own loss. ``create_graph``: keep the graph, to train through it."""
        origin = torch.zeros(len(x), self.z_dim, device=x.device, requires_grad=True)
        inner, _ = self.decode_loss(G, origin, x, draw)
        (grad,) = torch.autograd.grad(inner.sum(), origin, create_graph=create_graph)
        return -grad

    def g_step(self, batch: dict[str, Tensor]) -> None:
        x = batch["x"]
        z = self.latent(self.G, x, create_graph=True)
        loss, kl = self.decode_loss(self.G, z, x)
        loss = loss.mean()
        report("loss/G", loss)
        if kl is not None:
            report("loss/kl", kl.mean())
        else:
            self.codes.track(z)
        self.update("G", loss)

    def code_gaussian(self) -> CodeGaussian | None:
        return None if self.opts.variational else self.codes

    @torch.no_grad()
    def reconstruct(self, x: Tensor, ema: bool = True) -> Tensor:
        """x decoded from its gradient at the origin (the variational GON: from the mean of q(z | x))."""
        x = x.to(self.device)
        with sampling_generator(self, ema) as G:
            with torch.enable_grad():
                z = self.latent(G, x, create_graph=False, draw=False)   # the global RNG is not touched
            return G(self.heads(z)[0] if self.opts.variational else z)
