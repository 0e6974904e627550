"""Experiments on 1-D and 2-D distributions whose densities are known, so every claim is checked
against an exact value computed by numerical integration."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from .. import objectives as O
from .base import lab, write_summary

LOG2 = math.log(2.0)


# ------------------------------------------------------------------------------------- helpers

class Mix1D:
    """Equal-weight 1-D mixture of Gaussians (or uniforms on [lo, hi] when ``uniform``)."""

    def __init__(self, means, stds, uniform: bool = False) -> None:
        self.means, self.stds, self.uniform = np.asarray(means, float), np.asarray(stds, float), uniform

    def pdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)[:, None]
        if self.uniform:  # means = lower ends, stds = widths
            return (((x >= self.means) & (x < self.means + self.stds)) / self.stds).mean(1)
        z = (x - self.means) / self.stds
        return (np.exp(-0.5 * z ** 2) / (self.stds * math.sqrt(2 * math.pi))).mean(1)

    def sample(self, n: int, g: torch.Generator) -> Tensor:
        k = torch.randint(len(self.means), (n,), generator=g)
        m, s = torch.tensor(self.means, dtype=torch.float32)[k], torch.tensor(self.stds, dtype=torch.float32)[k]
        noise = torch.rand(n, generator=g) if self.uniform else torch.randn(n, generator=g)
        return (m + s * noise)[:, None]


def critic(width: int = 64) -> nn.Module:
    return nn.Sequential(nn.Linear(1, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2),
                         nn.Linear(width, 1))


def fit_critic(p: Mix1D, q: Mix1D, d_loss: Callable[[Tensor, Tensor], Tensor], steps: int, seed: int = 0,
               lp: float = 0.0, batch: int = 512, lr: float = 2e-3,
               betas: tuple[float, float] = (0.5, 0.999)) -> nn.Module:
    """Train a critic to minimise d_loss(D(x ~ p), D(x ~ q)) (+ lp × the one-sided Lipschitz penalty);
    p and q stay fixed."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        D = critic()
        opt = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
        for _ in range(steps):
            xp, xq = p.sample(batch, g), q.sample(batch, g)
            f = lambda x: D(x).squeeze(1)  # noqa: E731
            loss = d_loss(f(xp), f(xq))
            if lp > 0:
                loss = loss + lp * O.lipschitz_penalty(f, xp, xq)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return D.eval()


def on_grid(D: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return D(torch.tensor(x, dtype=torch.float32)[:, None]).squeeze(1).double().numpy()


def integrate(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)))


def xlogy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a log b with 0 log 0 = 0."""
    out = np.zeros_like(a)
    m = a > 0
    out[m] = a[m] * np.log(b[m])
    return out


def js_exact(p: np.ndarray, q: np.ndarray, x: np.ndarray) -> float:
    """JS(P‖Q) = ½∫p log(2p/(p+q)) + ½∫q log(2q/(p+q)), by integration on the grid x."""
    m = p + q
    safe = np.where(m > 0, m, 1.0)
    return 0.5 * integrate(xlogy(p, 2 * p / safe), x) + 0.5 * integrate(xlogy(q, 2 * q / safe), x)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------------------------ optimal-d

@lab("optimal-d", "a trained D matches p_data/(p_data+p_g); V(G, D*) = 2·JSD − 2·log 2 (Goodfellow et al. 2014)")
def optimal_d(out: Path, quick: bool = False) -> dict[str, float]:
    data, gen = Mix1D([-1.0, 1.5], [0.5, 0.3]), Mix1D([0.0], [1.0])
    D = fit_critic(data, gen, O.d_minimax, steps=1500 if quick else 4000, batch=1024)
    x = np.linspace(-4, 4, 8001)
    p, q = data.pdf(x), gen.pdf(x)
    d_star = p / (p + q)
    d_hat = 1 / (1 + np.exp(-on_grid(D, x)))
    support = (p + q) > 0.05 * (p + q).max()          # where the densities carry mass
    err = np.abs(d_hat - d_star)[support]
    v_star = integrate(xlogy(p, d_star) + xlogy(q, 1 - d_star), x)
    jsd = js_exact(p, q, x)
    v_hat = integrate(p * np.log(d_hat) + q * np.log(1 - d_hat), x)
    values = {"max_abs_error_D": float(err.max()), "mean_abs_error_D": float(err.mean()),
              "V(G,D*)": v_star, "2JSD-2log2": 2 * jsd - 2 * LOG2, "V(G,D_trained)": v_hat, "JSD": jsd}
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, p, "k:", label="p_data")
    ax.plot(x, q, "g-", label="p_g")
    ax.plot(x, d_star, "b-", lw=2, alpha=0.5, label="D* = p_data/(p_data+p_g)")
    ax.plot(x, d_hat, "r--", label="trained D")
    ax.set_xlim(-3.5, 3.5)
    ax.legend()
    ax.set_title(f"max |D - D*| = {err.max():.3f} where the densities have mass")
    _save(fig, out / "optimal_d.png")
    write_summary(out, "The optimal discriminator",
                  "For fixed p_data (two Gaussians) and p_g (one), D is trained with the minimax loss; the "
                  "optimum is D* = p_data/(p_data+p_g), and V(G, D*) = 2·JSD(p_data‖p_g) − 2 log 2 "
                  "(both sides computed by numerical integration). Plot: `optimal_d.png`.", values)
    return values


# ---------------------------------------------------------------------------- js-vs-wasserstein

@lab("js-vs-wasserstein", "disjoint distributions: JS stays log 2 while W1 falls linearly; trained estimates of both (Arjovsky et al. 2017)")
def js_vs_wasserstein(out: Path, quick: bool = False) -> dict[str, float]:
    p = Mix1D([0.0], [1.0], uniform=True)                 # U[0, 1]
    thetas = [4.0, 3.0, 2.0, 1.5, 1.0, 0.5, 0.0] if not quick else [3.0, 2.0, 1.0, 0.5, 0.0]
    steps = 400 if quick else 1500
    x = np.linspace(-1, 6, 70001)
    rows = []
    for i, th in enumerate(thetas):
        q = Mix1D([th], [1.0], uniform=True)              # U[θ, θ + 1]
        js = js_exact(p.pdf(x), q.pdf(x), x)
        g = torch.Generator().manual_seed(100 + i)
        xp, xq = p.sample(20000, g), q.sample(20000, g)
        Dv = fit_critic(p, q, O.d_minimax, steps, seed=i)
        Dw = fit_critic(p, q, O.d_wasserstein, steps, seed=i, lp=30.0, lr=1e-3, betas=(0.0, 0.9))
        with torch.no_grad():
            js_hat = (-O.d_minimax(Dv(xp).squeeze(1), Dv(xq).squeeze(1)).item() + 2 * LOG2) / 2
            w_hat = -O.d_wasserstein(Dw(xp).squeeze(1), Dw(xq).squeeze(1)).item()
        rows.append((th, js, js_hat, th, w_hat))
    values = {}
    for th, js, js_hat, w, w_hat in rows:
        values[f"JS(theta={th:g})"] = js
        values[f"JS_vanilla_D(theta={th:g})"] = js_hat
        values[f"W1(theta={th:g})"] = w
        values[f"W1_critic(theta={th:g})"] = w_hat
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    t = [r[0] for r in rows]
    a1.plot(t, [r[1] for r in rows], "ko-", label="JS exact")
    a1.plot(t, [r[2] for r in rows], "r^--", label="vanilla D's estimate")
    a1.axhline(LOG2, color="gray", lw=0.5)
    a1.set_xlabel("θ (p_g = U[θ, θ+1], p_data = U[0, 1])")
    a1.set_title("Jensen–Shannon: log 2 until the supports meet")
    a1.legend()
    a2.plot(t, [r[3] for r in rows], "ko-", label="W1 exact = θ")
    a2.plot(t, [r[4] for r in rows], "b^--", label="WGAN critic's estimate (Lipschitz penalty)")
    a2.set_xlabel("θ")
    a2.set_title("Wasserstein-1: falls linearly")
    a2.legend()
    _save(fig, out / "js_vs_wasserstein.png")
    write_summary(out, "JS versus Wasserstein for disjoint supports",
                  "p_data = U[0, 1] and p_g = U[θ, θ+1]. While the supports are disjoint (θ ≥ 1) JS is log 2 "
                  "whatever θ is — no gradient tells G which way to move — while W1 = θ shrinks linearly. "
                  "A minimax-trained D recovers JS = (max V + 2 log 2)/2, a WGAN critic (one-sided gradient "
                  "penalty, WGAN-LP: the two-sided WGAN-GP penalty has a wrong-signed local optimum in 1-D) "
                  "recovers W1. "
                  "Plot: `js_vs_wasserstein.png`.", values)
    return values


# --------------------------------------------------------------------------------- paper-figure

@lab("paper-figure", "the original GAN paper's Figure 1: p_data, p_g and D in 1-D at moments of training [001]")
def paper_figure(out: Path, quick: bool = False) -> dict[str, float]:
    data = Mix1D([2.0], [0.5])
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        G = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
        D = critic()
        with torch.no_grad():  # start p_g narrow and off to the left, as in the paper's panel (a)
            G[2].weight.mul_(0.2)
            G[2].bias.fill_(-1.0)
        opt_g = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
        total = 1500 if quick else 4000
        moments = [0, total // 20, total // 4, total]
        x = np.linspace(-3, 5, 801)
        snaps = []
        for step in range(total + 1):
            if step in moments:
                with torch.no_grad():
                    z = torch.rand(20000, 1, generator=torch.Generator().manual_seed(1)) * 2 - 1
                    xs = G(z).squeeze(1).numpy()
                snaps.append((step, xs, 1 / (1 + np.exp(-on_grid(D, x)))))
            if step == total:
                break
            for _ in range(1):  # k = 1 discriminator step per generator step
                real = data.sample(256, g)
                fake = G(torch.rand(256, 1, generator=g) * 2 - 1).detach()
                loss = O.d_minimax(D(real).squeeze(1), D(fake).squeeze(1))
                opt_d.zero_grad(set_to_none=True)
                loss.backward()
                opt_d.step()
            fake = G(torch.rand(256, 1, generator=g) * 2 - 1)
            loss = O.g_nonsaturating(D(fake).squeeze(1))
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
    plt = _plt()
    fig, axes = plt.subplots(1, len(snaps), figsize=(4 * len(snaps), 3.2), sharey=True)
    for ax, (step, xs, d), label in zip(axes, snaps, "abcd"):
        ax.plot(x, data.pdf(x), "k:", label="p_data")
        ax.hist(xs, bins=120, range=(-3, 5), density=True, histtype="step", color="g", label="p_g")
        ax.plot(x, d, "b--", label="D(x)")
        ax.set_title(f"({label}) step {step}")
        ax.set_ylim(0, 1.6)
    axes[0].legend(loc="upper left")
    _save(fig, out / "paper_figure.png")
    final_xs, final_d = snaps[-1][1], snaps[-1][2]
    ref = data.sample(20000, torch.Generator().manual_seed(2)).squeeze(1).numpy()
    w1 = float(np.abs(np.sort(final_xs) - np.sort(ref)).mean())
    mass = data.pdf(x) > 0.05
    values = {"W1(p_g, p_data) start": float(np.abs(np.sort(snaps[0][1]) - np.sort(ref)).mean()),
              "W1(p_g, p_data) end": w1, "mean |D - 1/2| on the data at the end": float(np.abs(final_d[mass] - 0.5).mean())}
    write_summary(out, "The original paper's Figure 1, re-run",
                  "p_data = N(2, 0.5²) (black dots), p_g = G(z), z ~ U[-1, 1] (green), D (blue dashes) at four "
                  "moments: (a) start, (b) D has learnt to separate, (c) G follows D's gradient, (d) p_g ≈ "
                  "p_data and D ≈ 1/2 everywhere. Plot: `paper_figure.png`.", values)
    return values


# -------------------------------------------------------------------------------- f-divergences

@lab("f-divergences", "the f-GAN objectives (Nowozin et al. 2016): the divergence a trained critic reaches vs the exact value")
def f_divergences(out: Path, quick: bool = False) -> dict[str, float]:
    p, q = Mix1D([0.0], [1.0]), Mix1D([1.0], [1.5])
    x = np.linspace(-15, 15, 300001)
    pp, qq = p.pdf(x), q.pdf(x)
    values = {}
    names = list(O.F_DIVERGENCES)
    exact_list, est_list = [], []
    for i, name in enumerate(names):
        div = O.F_DIVERGENCES[name]
        m = qq > 1e-300
        u = torch.tensor(pp[m] / qq[m], dtype=torch.float64)
        integrand = np.zeros_like(x)
        integrand[m] = qq[m] * div.f(u.clamp_min(1e-300)).numpy()
        exact = integrate(integrand, x)
        D = fit_critic(p, q, lambda r, f, d=div: -d.bound(r, f), steps=1500 if quick else 4000, seed=i,
                       batch=2048, lr=1e-3)
        g = torch.Generator().manual_seed(50 + i)
        with torch.no_grad():
            est = div.bound(D(p.sample(200000, g)).squeeze(1).double(), D(q.sample(200000, g)).squeeze(1).double()).item()
        values[f"{name} exact"], values[f"{name} critic"] = exact, est
        values[f"{name} relative error"] = abs(est - exact) / exact
        exact_list.append(exact)
        est_list.append(est)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    idx = np.arange(len(names))
    ax.bar(idx - 0.2, exact_list, 0.4, label="exact (integration)")
    ax.bar(idx + 0.2, est_list, 0.4, label="trained critic's bound")
    ax.set_xticks(idx, names)
    ax.set_title("D_f(N(0,1) ‖ N(1,1.5²))")
    ax.legend()
    _save(fig, out / "f_divergences.png")
    write_summary(out, "f-divergences estimated by f-GAN critics",
                  "P = N(0, 1), Q = N(1, 1.5²). For each f, a critic maximises E_P[T] − E_Q[f*(T)] "
                  "(gankit.objectives, usable as loss.name = f-<name> by any preset); the bound it reaches is "
                  "compared with ∫ q f(p/q) dx. Plot: `f_divergences.png`.", values)
    return values


# -------------------------------------------------------------------------------- mode-collapse

@lab("mode-collapse", "ring8 snapshots over training: a plain GAN vs the ring8 preset")
def mode_collapse(out: Path, quick: bool = False) -> dict[str, float]:
    from ..assemble import resolve
    from ..metrics.toy import pacgan_modes
    from ..training.loop import Trainer

    steps = 1200 if quick else 4000
    variants = {
        "plain GAN (minimax D, non-saturating G, batch 64, no EMA)":
            ["data.batch_size=64", "train.ema=0", "optim.lr_g=2e-4", "optim.lr_d=2e-4", "model.g_width=64",
             "model.d_width=64", "train.fast=false"],
        "ring8 preset": [],
    }
    moments = [steps // 8, steps // 4, steps // 2, steps]
    values, panels = {}, []
    for name, sets in variants.items():
        tr = Trainer(resolve("ring8", overrides=sets + [f"train.steps={steps}"]))
        dist = tr.source.distribution
        z = tr.recipe.latents(2500, generator=torch.Generator().manual_seed(3))
        row = []
        with torch.random.fork_rng():
            while tr.step < steps:
                tr.train_step()
                if tr.step in moments:
                    xs = tr.recipe.sample(z).cpu().numpy()
                    s = pacgan_modes(xs, dist.means.numpy(), dist.std)
                    values[f"{name.split(' (')[0]}: modes at step {tr.step}"] = s["modes"]
                    row.append((tr.step, xs, s))
        panels.append((name, row))
    plt = _plt()
    fig, axes = plt.subplots(len(panels), len(moments), figsize=(3 * len(moments), 3 * len(panels)))
    means = dist.means.numpy()
    for r, (name, row) in enumerate(panels):
        for c, (step, xs, s) in enumerate(row):
            ax = axes[r][c]
            ax.scatter(means[:, 0], means[:, 1], c="k", s=30, marker="x")
            ax.scatter(xs[:, 0], xs[:, 1], s=1, c="tab:red", alpha=0.5)
            ax.set_xlim(-1.5, 1.5)
            ax.set_ylim(-1.5, 1.5)
            ax.set_aspect("equal")
            ax.set_title(f"step {step}: {s['modes']:.0f}/8 modes", fontsize=9)
        axes[r][0].set_ylabel(name.split(" (")[0])
    _save(fig, out / "mode_collapse.png")
    write_summary(out, "Mode collapse on the ring of 8 Gaussians",
                  "Samples from a fixed z at four moments of training, for a plain GAN and for the ring8 "
                  "preset; the title counts the modes captured (PacGAN protocol). Plot: `mode_collapse.png`.",
                  values)
    return values
