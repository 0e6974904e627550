"""Toy distributions for mode-collapse studies: 1-D and 2-D Gaussian mixtures and a swiss roll.

Each distribution has ``sample(n, generator) -> (x float32 (n, d), component int64 (n,))``; the
mixtures also have ``means`` (K, d), ``std`` and ``log_prob(x)`` for exact divergences.
"""
from __future__ import annotations

import math

import torch

from ..config import DataConfig
from .base import DATASETS, ToySource


class GaussianMixture:
    """Equal-weight mixture of isotropic Gaussians N(means[k], std² I)."""

    def __init__(self, name: str, means: torch.Tensor, std: float) -> None:
        if means.dim() != 2 or std <= 0:
            raise ValueError(f"{name}: means must be (K, d) and std positive")
        self.name = name
        self.means = means.to(torch.float32)
        self.std = float(std)
        self.dim = int(means.shape[1])

    @property
    def k(self) -> int:
        return int(self.means.shape[0])

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples: (x float32 (n, d), component int64 (n,))."""
        comp = torch.randint(self.k, (n,), generator=generator)
        noise = torch.randn(n, self.dim, generator=generator)
        return self.means[comp] + self.std * noise, comp

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Log density of x (n, d) -> (n,), in x's dtype (computed in float64)."""
        xd = x.to(torch.float64)
        m = self.means.to(torch.float64)
        sq = ((xd[:, None, :] - m[None]) ** 2).sum(-1)                          # (n, K)
        log_norm = -0.5 * self.dim * math.log(2 * math.pi * self.std ** 2)
        comp = log_norm - 0.5 * sq / self.std ** 2
        out = torch.logsumexp(comp, dim=1) - math.log(self.k)
        return out.to(x.dtype) if x.is_floating_point() else out

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the closest mean for each point of x (n, d) -> int64 (n,)."""
        return torch.cdist(x.to(torch.float32), self.means).argmin(1)


class SwissRoll:
    """2-D swiss roll: t = 1.5π(1 + 2u), u ~ U(0, 1); x = (t cos t, t sin t)/5 + N(0, noise² I)."""

    means = None
    std = None

    def __init__(self, noise: float = 0.05) -> None:
        self.name = "swissroll"
        self.noise = float(noise)
        self.dim = 2

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples: (x float32 (n, 2), zeros int64 (n,)) -- a single component."""
        u = torch.rand(n, generator=generator)
        t = 1.5 * math.pi * (1 + 2 * u)
        noise = torch.randn(n, 2, generator=generator)
        x = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / 5 + self.noise * noise
        return x, torch.zeros(n, dtype=torch.int64)


def gauss1d() -> GaussianMixture:
    """Two 1-D modes: N(-2, 0.5²) and N(2, 0.5²)."""
    return GaussianMixture("gauss1d", torch.tensor([[-2.0], [2.0]]), 0.5)


def ring8() -> GaussianMixture:
    """PacGAN's ring: means (cos 2πi/8, sin 2πi/8), i = 0..7, std 0.01."""
    a = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
    return GaussianMixture("ring8", torch.stack([torch.cos(a), torch.sin(a)], 1), 0.01)


def grid25() -> GaussianMixture:
    """Means {-4, -2, 0, 2, 4}² (row-major: mean 5a+b = (v[a], v[b])), std 0.05."""
    v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    gx, gy = torch.meshgrid(v, v, indexing="ij")
    return GaussianMixture("grid25", torch.stack([gx.reshape(-1), gy.reshape(-1)], 1), 0.05)


def swissroll() -> SwissRoll:
    return SwissRoll()


@DATASETS.register("gauss1d")
def load_gauss1d(cfg: DataConfig) -> ToySource:
    return ToySource(gauss1d())


@DATASETS.register("ring8")
def load_ring8(cfg: DataConfig) -> ToySource:
    return ToySource(ring8())


@DATASETS.register("grid25")
def load_grid25(cfg: DataConfig) -> ToySource:
    return ToySource(grid25())


@DATASETS.register("swissroll")
def load_swissroll(cfg: DataConfig) -> ToySource:
    return ToySource(swissroll())
