"""Why a generator of tokens gets no gradient through its argmax, and the two ways around it, computed exactly.

A policy over sequences of T tokens from a vocabulary of V, p_θ(y) = Π_t softmax(θ_t)[y_t], and a reward
r(y) for each of the V^T sequences (a discriminator's score). With so few sequences everything is exact:

* J(θ) = Σ_y p_θ(y) r(y) and its gradient, by enumerating every sequence;
* the argmax path: r(argmax θ) is a step function of θ — its gradient is zero wherever it exists;
* REINFORCE (Williams 1992): ĝ = (r(y) − b) ∇ log p_θ(y), y ~ p_θ — unbiased for any constant b; b = J(θ)
  (the expected reward, as a baseline) lowers its variance;
* Gumbel-softmax (Jang et al. 2017; Maddison et al. 2017): ỹ_t = softmax((θ_t + g_t) / τ), g ~ Gumbel(0, 1),
  scored by the multilinear extension r̃(ỹ) = Σ_y r(y) Π_t ỹ_t[y_t] (the reward of the expected sequence
  under the relaxed one-hots) and differentiated through: biased, with a bias that falls as τ → 0 (where
  ỹ becomes the one-hot of an exact sample) and a variance that grows.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import torch

from .base import lab, write_summary
from .theory import _plt

V, T = 3, 2


def problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """θ (T, V), the rewards r (V^T,) in [0, 1] and every sequence (V^T, T), float64."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(T, V, generator=g, dtype=torch.float64)
    seqs = torch.tensor(list(itertools.product(range(V), repeat=T)))
    r = torch.rand(len(seqs), generator=g, dtype=torch.float64)
    return theta, r, seqs


def _index(y: torch.Tensor) -> torch.Tensor:
    """The position of sequences y (..., T) in the enumeration ``itertools.product(range(V), repeat=T)``."""
    return (y * torch.tensor([V ** (T - 1 - i) for i in range(T)])).sum(dim=-1)


def log_prob(theta: torch.Tensor, seqs: torch.Tensor) -> torch.Tensor:
    """log p_θ(y) (N,) of sequences (N, T)."""
    return torch.log_softmax(theta, dim=1)[torch.arange(T), seqs].sum(dim=1)


def exact_gradient(theta: torch.Tensor, r: torch.Tensor, seqs: torch.Tensor) -> tuple[float, torch.Tensor]:
    """J(θ) and ∇J(θ) (T, V) by enumeration."""
    t = theta.clone().requires_grad_(True)
    j = (log_prob(t, seqs).exp() * r).sum()
    (grad,) = torch.autograd.grad(j, t)
    return float(j.detach()), grad


def argmax_gradient(theta: torch.Tensor, r: torch.Tensor, seqs: torch.Tensor) -> torch.Tensor:
    """The gradient of r(argmax θ) with respect to θ: the sequence is an index, so nothing flows back."""
    t = theta.clone().requires_grad_(True)
    value = r[_index(t.argmax(dim=1))]
    # argmax returns integers: autograd records no path from θ to the reward
    return torch.autograd.grad(value, t)[0] if value.requires_grad else torch.zeros_like(theta)


def reinforce(theta: torch.Tensor, r: torch.Tensor, seqs: torch.Tensor, n: int, baseline: float,
              generator: torch.Generator) -> torch.Tensor:
    """n REINFORCE estimates (n, T, V): (r(y) − b) ∇ log p_θ(y) for y ~ p_θ."""
    probs = torch.softmax(theta, dim=1)
    ys = torch.stack([torch.multinomial(probs[i], n, replacement=True, generator=generator) for i in range(T)], 1)
    index = _index(ys)
    # ∇_θt log softmax(θ_t)[y_t] = onehot(y_t) − softmax(θ_t)
    score = torch.nn.functional.one_hot(ys, V).to(theta.dtype) - probs[None]
    return (r[index] - baseline)[:, None, None] * score


def gumbel(theta: torch.Tensor, r: torch.Tensor, seqs: torch.Tensor, n: int, tau: float,
           generator: torch.Generator) -> torch.Tensor:
    """n Gumbel-softmax estimates (n, T, V): ∇_θ r̃(softmax((θ + g) / τ))."""
    t = theta.clone().requires_grad_(True)
    u = torch.rand(n, T, V, generator=generator, dtype=theta.dtype).clamp(1e-12, 1 - 1e-12)
    soft = torch.softmax((t[None] + -torch.log(-torch.log(u))) / tau, dim=2)          # (n, T, V)
    weights = soft[:, torch.arange(T)[None, :], seqs].prod(dim=2)                      # (n, V^T)
    value = (weights * r[None]).sum(dim=1)
    grads = torch.stack([torch.autograd.grad(v, t, retain_graph=True)[0] for v in value])
    return grads


def statistics(estimates: torch.Tensor, exact: torch.Tensor) -> dict[str, float]:
    """Bias ‖mean − exact‖, its standard error, and the mean squared deviation from the mean (variance)."""
    mean = estimates.mean(dim=0)
    var = ((estimates - mean) ** 2).sum(dim=(1, 2)).mean()
    return {"bias": float((mean - exact).norm()), "stderr": float((var / len(estimates)).sqrt()),
            "variance": float(var)}


@lab("discrete-gradient", "the argmax blocks the gradient; REINFORCE is unbiased (a baseline cuts its variance); "
                          "Gumbel-softmax is biased, less so as its temperature falls (Williams 1992; Jang et al. 2017)")
def discrete_gradient(out: Path, quick: bool = False) -> dict[str, float]:
    theta, r, seqs = problem()
    j, exact = exact_gradient(theta, r, seqs)
    n = 4_000 if quick else 40_000
    g = torch.Generator().manual_seed(1)
    values: dict[str, float] = {"J": j, "exact_grad_norm": float(exact.norm()),
                                "argmax_grad_norm": float(argmax_gradient(theta, r, seqs).norm())}
    for name, b in (("reinforce", 0.0), ("reinforce_baseline", j)):
        for k, v in statistics(reinforce(theta, r, seqs, n, b, g), exact).items():
            values[f"{name}_{k}"] = v
    taus = (2.0, 1.0, 0.5, 0.25, 0.1)
    for tau in taus:
        for k, v in statistics(gumbel(theta, r, seqs, n // 4, tau, g), exact).items():
            values[f"gumbel_{tau:g}_{k}"] = v
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    grid = torch.linspace(-3, 3, 601, dtype=torch.float64)
    step, smooth = [], []
    for x in grid:
        th = theta.clone()
        th[0, 0] = x
        step.append(float(r[_index(th.argmax(1))]))
        smooth.append(float((log_prob(th, seqs).exp() * r).sum()))
    a.plot(grid, step, "r-", label="r(argmax θ): steps, zero gradient")
    a.plot(grid, smooth, "b-", label="J(θ) = E_p[r]: smooth")
    a.set_xlabel("θ[0, 0]")
    a.legend(fontsize=8)
    b.loglog(taus, [values[f"gumbel_{t:g}_bias"] for t in taus], "o-", label="Gumbel bias")
    b.loglog(taus, [values[f"gumbel_{t:g}_variance"] for t in taus], "s--", label="Gumbel variance")
    for name, style in (("reinforce", ":"), ("reinforce_baseline", "-.")):
        b.axhline(values[f"{name}_variance"], ls=style, color="k", label=f"{name.replace('_', ' + ')} variance")
    b.set_xlabel("temperature τ")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "discrete_gradient.png", dpi=110)
    plt.close(fig)
    write_summary(out, "Gradients through a discrete choice",
                  f"A policy over the {V ** T} sequences of {T} tokens from {V}, rewards drawn at random. The argmax "
                  "path has no gradient; REINFORCE's mean matches the exact gradient (bias within its standard "
                  "error), and the expected reward as a baseline lowers its variance; Gumbel-softmax has lower "
                  "variance at moderate τ and a bias that falls with τ. Plot: `discrete_gradient.png`.", values)
    return values

