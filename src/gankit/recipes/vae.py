"""The variational auto-encoder (Kingma & Welling 2014), with β (Higgins et al. 2017), and the plain
auto-encoder it becomes without the variational part.

The decoder is the run's GAN generator G; the encoder E mirrors its discriminator: D of the same
architecture without its logit, then linear maps to the mean and log-variance of q(z | x). The loss is the
negative ELBO per image, -E_q log p(x | z) + β KL(q(z | x) || N(0, I)), the likelihood (Bernoulli or
Gaussian) summed over every pixel, one reparameterised draw; samples decode z ~ N(0, I).

``vae.variational=false`` is the plain auto-encoder: E gives the code itself, the loss is -log p(x | E(x)),
and samples decode a full-covariance Gaussian that follows the codes during training.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import Config
from ..data import DataInfo
from ..objectives import gaussian_kl
from ..options import option
from ..runtime import report
from .base import RECIPES, Phase, sampling_generator
from .latent import LIKELIHOODS, CodeGaussian, Encoder, LatentRecipe, reconstruction_nll, reparameterise


@dataclass
class VAEOptions:
    likelihood: str = option("bernoulli", "p(x | z) summed over every pixel: bernoulli or gaussian", choices=LIKELIHOODS)
    sigma: float = option(0.1, "gaussian likelihood: its standard deviation", above=0)
    beta: float = option(1.0, "the KL term's weight (β-VAE)", min=0)
    variational: bool = option(True, "false: a plain auto-encoder (no KL; samples from a Gaussian fitted to the codes)")


def negative_elbo(x_hat: Tensor, x: Tensor, mean: Tensor, logvar: Tensor, likelihood: str, sigma: float,
                  beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """(-ELBO, -log p(x | z), KL) per sample (N,), for a decoded draw x_hat of q(z | x) = N(mean, exp(logvar))."""
    nll = reconstruction_nll(x_hat, x, likelihood, sigma)
    kl = gaussian_kl(mean, logvar)
    return nll + beta * kl, nll, kl


@RECIPES.register("vae", options=VAEOptions)
class VAE(LatentRecipe):
    """E: x -> q(z | x), G: z -> x."""

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        super().__init__(cfg, info, device)
        self.opts: VAEOptions = cfg.table("vae")
        G, D = self.build_nets(cfg, info)
        self.G = G.to(device)
        self.E = Encoder(D, cfg.model.z_dim, self.opts.variational).to(device)
        self.nets = {"G": self.G, "E": self.E}
        if not self.opts.variational:
            self.codes = CodeGaussian(cfg.model.z_dim).to(device)
            self.nets["codes"] = self.codes
        # the encoder mirrors the discriminator, and takes its optimiser settings
        self.optimizers = {"G": self.adam(self.G.parameters(), "G"), "E": self.adam(self.E.parameters(), "D")}
        self.ema_targets = ["G"]
        self.phases = [Phase("G", self.g_step)]

    def g_step(self, batch: dict[str, Tensor]) -> None:
        x = batch["x"]
        mean, logvar = self.E(x)
        if logvar is None:
            loss = reconstruction_nll(self.G(mean), x, self.opts.likelihood, self.opts.sigma).mean()
            self.codes.track(mean)
        else:
            total, nll, kl = negative_elbo(self.G(reparameterise(mean, logvar)), x, mean, logvar,
                                           self.opts.likelihood, self.opts.sigma, self.opts.beta)
            loss = total.mean()
            report("loss/nll", nll.mean())
            report("loss/kl", kl.mean())
        report("loss/G", loss)
        self.update(("G", "E"), loss)

    def code_gaussian(self) -> CodeGaussian | None:
        return None if self.opts.variational else self.codes

    @torch.no_grad()
    def reconstruct(self, x: Tensor, ema: bool = True) -> Tensor:
        """x decoded from the mean of q(z | x) (the code, for the plain auto-encoder)."""
        with sampling_generator(self, ema=False, name="E") as E:
            mean, _ = E(x.to(self.device))
        with sampling_generator(self, ema) as G:
            return G(mean)
