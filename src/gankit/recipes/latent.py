"""What the generators trained without an adversary share — GLO, Gradient Origin Networks, the VAE and the
plain auto-encoder: a decoder G built by the same architectures as a GAN's generator (so comparisons with
GANs are fair), the reconstruction likelihoods, a full-covariance Gaussian fitted to the codes for the
models without a prior of their own, and ``reconstruct`` (what the held-out reconstruction error measures).

``sample(z)`` takes z ~ N(0, I) as every recipe does: models with a prior decode it; the others decode
``code_gaussian().transform(z)``, so seeded sampling and ``gankit interpolate`` work as for a GAN.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from .. import nets
from ..config import Config
from ..data import DataInfo
from ..errors import ConfigError
from ..objectives import bernoulli_nll, gaussian_nll
from .base import Recipe, sampling_generator

LIKELIHOODS = ("bernoulli", "gaussian")


def reconstruction_nll(x_hat: Tensor, x: Tensor, likelihood: str, sigma: float) -> Tensor:
    """-log p(x | x_hat) per sample (N,), summed over every pixel: ``bernoulli`` (grey values in [-1, 1] as
    probabilities) or ``gaussian`` with standard deviation ``sigma``."""
    if likelihood == "bernoulli":
        return bernoulli_nll(x_hat, x)
    return gaussian_nll(x_hat, x, sigma)


class CodeGaussian(nn.Module):
    """A full-covariance Gaussian fitted to codes (N, d), kept as buffers (saved with the run): the mean and
    the second moment E[z zᵀ]. ``fit`` sets them from all the codes at once (GLO's latent table);
    ``track`` follows the codes of the training batches by an exponential moving average (GON and the
    auto-encoder, whose codes are functions of the data). ``transform`` maps ε ~ N(0, I) to
    mean + L ε, L Lᵀ = Σ (Bojanowski et al. 2018 sample GLO this way)."""

    def __init__(self, dim: int, decay: float = 0.99) -> None:
        super().__init__()
        self.decay = decay
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("second", torch.eye(dim))
        self.register_buffer("seen", torch.zeros((), dtype=torch.int64))   # codes fitted or batches tracked

    def covariance(self) -> Tensor:
        return self.second - torch.outer(self.mean, self.mean)

    @torch.no_grad()
    def fit(self, z: Tensor) -> None:
        """Mean and (unbiased) covariance of all the codes z (N, d)."""
        z = z.detach().to(self.mean)
        mean = z.mean(0)
        centred = z - mean
        cov = centred.T @ centred / max(1, len(z) - 1)
        self.mean.copy_(mean)
        self.second.copy_(cov + torch.outer(mean, mean))
        self.seen.fill_(len(z))

    @torch.no_grad()
    def track(self, z: Tensor) -> None:
        """Move the moments towards those of a batch of codes z (N, d) (the first batch sets them)."""
        z = z.detach().to(self.mean)
        mean, second = z.mean(0), z.T @ z / len(z)
        w = 1.0 if int(self.seen) == 0 else 1 - self.decay
        self.mean.lerp_(mean, w)
        self.second.lerp_(second, w)
        self.seen += 1

    def transform(self, eps: Tensor) -> Tensor:
        """Samples mean + L ε (N, d) for ε (N, d); a little jitter on the diagonal keeps L defined when
        the codes fill fewer than d dimensions."""
        cov = self.covariance()
        cov = (cov + cov.T) / 2
        scale = float(cov.diagonal().mean().clamp_min(1e-12))
        for jitter in (0.0, 1e-6, 1e-4, 1e-2):
            L, info = torch.linalg.cholesky_ex(cov + jitter * scale * torch.eye(len(cov), device=cov.device))
            if int(info) == 0:
                break
        return self.mean + eps.to(self.mean) @ L.T


class Encoder(nn.Module):
    """x -> q(z | x) = N(mean, diag exp(logvar)): a discriminator of the run's architecture without its
    head (``features``) and two linear heads (one, the code itself, for a plain auto-encoder)."""

    def __init__(self, trunk: nn.Module, z_dim: int, variational: bool) -> None:
        super().__init__()
        del trunk.head   # D's logit is not part of an encoder
        self.trunk = trunk
        self.mean = nn.Linear(trunk.feature_dim, z_dim)
        self.logvar = nn.Linear(trunk.feature_dim, z_dim) if variational else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        h = self.trunk.features(x).flatten(1)
        return self.mean(h), (self.logvar(h) if self.logvar is not None else None)


def reparameterise(mean: Tensor, logvar: Tensor) -> Tensor:
    """z = mean + exp(logvar / 2) ε, ε ~ N(0, I) from the global RNG (Kingma & Welling 2014)."""
    return mean + (0.5 * logvar).exp() * torch.randn_like(mean)


class LatentRecipe(Recipe):
    """The base of the recipes without an adversary: G decodes a latent code to a sample; subclasses train
    it, say how an image's code is found (``reconstruct``) and, without a prior, give the Gaussian of
    their codes to sample from (``code_gaussian``)."""

    tables: ClassVar[tuple[str, ...]] = ("data", "model", "optim", "train", "eval")
    defaults: ClassVar[dict] = {"model.arch": "mlp"}

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        super().__init__(cfg, info, device)
        if info.kind not in ("images", "points"):
            raise ConfigError(f"train.recipe={cfg.train.recipe}: needs images or points, data set "
                              f"'{info.name}' holds {info.kind}")
        opts = cfg.owned.get(cfg.train.recipe)
        if info.kind == "points" and getattr(opts, "likelihood", "") == "bernoulli":
            raise ConfigError(f"{cfg.train.recipe}.likelihood=bernoulli: needs images in [-1, 1]; data set "
                              f"'{info.name}' holds points: use {cfg.train.recipe}.likelihood=gaussian")

    @classmethod
    def check(cls, cfg: Config) -> None:
        if cfg.model.z_dim <= 0:
            raise ConfigError(f"model.z_dim: must be positive for train.recipe={cfg.train.recipe}, got {cfg.model.z_dim}")

    def build_nets(self, cfg: Config, info: DataInfo, act: str = "relu") -> tuple[nn.Module, nn.Module]:
        """(G, D) of the run's architecture; G is the decoder, D the trunk of an encoder (or unused)."""
        return nets.build(cfg.model, info.shape, nets.Wiring(g_act=act), cfg.owned.get(cfg.model.arch))

    def code_gaussian(self) -> CodeGaussian | None:
        """The Gaussian fitted to the codes that samples are drawn from; None: the model's N(0, I) prior."""
        return None

    def prior(self, eps: Tensor) -> Tensor:
        """The codes to decode for ε ~ N(0, I)."""
        fitted = self.code_gaussian()
        return eps if fitted is None else fitted.transform(eps)

    @torch.no_grad()
    def sample(self, z: Tensor, labels=None, ema: bool = True) -> Tensor:
        """Samples (N, *shape) decoded from the codes of z ~ N(0, I) (N, z_dim)."""
        with sampling_generator(self, ema) as G:
            return G(self.prior(z.to(self.device)))

    def reconstruct(self, x: Tensor, ema: bool = True) -> Tensor:
        """x (N, *shape) decoded from its code (a training image's or a new one's)."""
        raise NotImplementedError

