"""GAN objectives as pure functions on discriminator logits, and penalties as functions of D.

Conventions: ``real`` and ``fake`` are D's raw outputs (logits, shape (N,)) on real samples x and on
generated samples G(z). For the sigmoid-based objectives D(x) = sigmoid(real). Every function returns a
scalar loss that the caller *minimises*; batch expectations are means.

The objectives named in the registry (``loss.name``):

=============== ======================================= =====================================
name             discriminator minimises                 generator minimises
=============== ======================================= =====================================
minimax          -E log D(x) - E log(1 - D(G(z)))        E log(1 - D(G(z)))   (saturating)
nonsaturating    same as minimax                         -E log D(G(z))
lsgan            ½E (D(x) - 1)² + ½E D(G(z))²            ½E (D(G(z)) - 1)²
hinge            E max(0, 1 - D(x)) + E max(0, 1 + D(G(z)))   -E D(G(z))
wasserstein      E D(G(z)) - E D(x)                      -E D(G(z))
f-<name>         -(E_P[T] - E_Q[f*(T)]), T = g_f(D)      -E_Q[f*(T)]        (f-GAN; kl, reverse-kl,
                                                                             js, pearson, hellinger, tv)
rsgan            -E log σ(D(x) - D(G(z)))                -E log σ(D(G(z)) - D(x))      (relativistic:
rasgan           -E_x log σ(D(x) - E D(G(z)))            the same with real and fake   G's loss needs
                 -E_z log(1 - σ(D(G(z)) - E D(x)))       swapped                       D on real data)
=============== ======================================= =====================================
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .registry import Registry
from .runtime import rows


# ------------------------------------------------------------------------ the original GAN [001, 003]

def d_minimax(real: Tensor, fake: Tensor) -> Tensor:
    """Goodfellow et al.'s discriminator loss, the negated value function V(D, G):

        L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))],   D = sigmoid(logits).

    log D = -softplus(-l) and log(1 - D) = -softplus(l), which stay finite for any logit.
    """
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_minimax(fake: Tensor) -> Tensor:
    """The *saturating* generator loss of the minimax game (Goodfellow et al. 2014):  L_G = E_z[log(1 - D(G(z)))].

    Its gradient vanishes when D confidently rejects the samples (D(G(z)) -> 0), early in training.
    """
    return -F.softplus(fake).mean()


def g_nonsaturating(fake: Tensor) -> Tensor:
    """The *non-saturating* generator loss (Goodfellow et al. 2014):  L_G = -E_z[log D(G(z))].

    Same fixed point as the minimax game, strong gradients when D(G(z)) is small.
    """
    return F.softplus(-fake).mean()


# ------------------------------------------------------------------------------------------ LSGAN

def d_lsgan(real: Tensor, fake: Tensor) -> Tensor:
    """Least-squares GAN (Mao et al. 2017, targets a=0, b=1):  L_D = ½E[(D(x) - 1)²] + ½E[D(G(z))²]."""
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake ** 2).mean()


def g_lsgan(fake: Tensor) -> Tensor:
    """Least-squares GAN generator (c = 1):  L_G = ½E[(D(G(z)) - 1)²]."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


# ------------------------------------------------------------------------------------------ hinge

def d_hinge(real: Tensor, fake: Tensor) -> Tensor:
    """Hinge loss (Lim & Ye 2017; SNGAN, BigGAN):  L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_hinge(fake: Tensor) -> Tensor:
    """Hinge generator loss:  L_G = -E[D(G(z))]."""
    return -fake.mean()


# ------------------------------------------------------------------------------ Wasserstein (Arjovsky et al. 2017)

def d_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    """WGAN critic loss (Arjovsky et al. 2017):  L_D = E[D(G(z))] - E[D(x)].

    With D 1-Lipschitz (clipping, gradient penalty or spectral norm), -L_D estimates W1(p_data, p_g).
    """
    return fake.mean() - real.mean()


def g_wasserstein(fake: Tensor) -> Tensor:
    """WGAN generator loss:  L_G = -E[D(G(z))]."""
    return -fake.mean()


# ------------------------------------------------------------------------------- f-GAN (Nowozin et al. 2016)
# Nowozin et al. 2016: for a convex f with f(1) = 0, D_f(P‖Q) = ∫ q f(p/q) dx ≥ sup_T E_P[T] - E_Q[f*(T)],
# f* the convex conjugate. The critic's raw output v goes through an output activation g_f that keeps
# T = g_f(v) in the domain of f*; P is the data, Q the generator. The critic maximises the bound, the
# generator minimises it, so -L_D estimates the divergence itself.


@dataclass(frozen=True)
class FDivergence:
    """One row of the f-GAN table: f, its conjugate f* and the output activation g_f."""

    name: str
    f: Callable[[Tensor], Tensor]            # the generator of the divergence, f(u), u = p/q
    conjugate: Callable[[Tensor], Tensor]    # f*(t)
    activation: Callable[[Tensor], Tensor]   # g_f(v): raw critic output -> domain of f*

    def bound(self, real: Tensor, fake: Tensor) -> Tensor:
        """The variational lower bound E_P[g_f(v)] - E_Q[f*(g_f(v))] on D_f(P‖Q)."""
        return self.activation(real).mean() - self.conjugate(self.activation(fake)).mean()


LOG2 = math.log(2.0)
F_DIVERGENCES: dict[str, FDivergence] = {d.name: d for d in (
    # KL(P‖Q): f(u) = u log u, f*(t) = exp(t - 1), g(v) = v
    FDivergence("kl", lambda u: u * torch.log(u), lambda t: torch.exp(t - 1.0), lambda v: v),
    # reverse KL(Q‖P): f(u) = -log u, f*(t) = -1 - log(-t), g(v) = -exp(-v)
    FDivergence("reverse-kl", lambda u: -torch.log(u), lambda t: -1.0 - torch.log(-t), lambda v: -torch.exp(-v)),
    # Jensen–Shannon (½KL(P‖M) + ½KL(Q‖M)): f(u) = ½[u log u - (u + 1) log((u + 1)/2)],
    # f*(t) = -½ log(2 - exp(2t)), g(v) = ½(log 2 - softplus(-v)) — the paper's "GAN" row divided by 2
    FDivergence("js", lambda u: 0.5 * (u * torch.log(u) - (u + 1) * torch.log((u + 1) / 2)),
                lambda t: -0.5 * torch.log(2.0 - torch.exp(2.0 * t)), lambda v: 0.5 * (LOG2 - F.softplus(-v))),
    # Pearson χ²: f(u) = (u - 1)², f*(t) = t²/4 + t, g(v) = v
    FDivergence("pearson", lambda u: (u - 1.0) ** 2, lambda t: 0.25 * t ** 2 + t, lambda v: v),
    # squared Hellinger: f(u) = (√u - 1)², f*(t) = t / (1 - t), g(v) = 1 - exp(-v)
    FDivergence("hellinger", lambda u: (torch.sqrt(u) - 1.0) ** 2, lambda t: t / (1.0 - t),
                lambda v: 1.0 - torch.exp(-v)),
    # total variation: f(u) = ½|u - 1|, f*(t) = t on |t| ≤ ½, g(v) = ½ tanh(v)
    FDivergence("tv", lambda u: 0.5 * (u - 1.0).abs(), lambda t: t, lambda v: 0.5 * torch.tanh(v)),
)}


def f_divergence_losses(div: FDivergence) -> tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """(d_loss, g_loss) of f-GAN: L_D = -(E_P[T] - E_Q[f*(T)]), L_G = -E_Q[f*(T)] (the bound's G part)."""
    def d_loss(real: Tensor, fake: Tensor) -> Tensor:
        return -div.bound(real, fake)

    def g_loss(fake: Tensor) -> Tensor:
        return -div.conjugate(div.activation(fake)).mean()

    d_loss.__doc__ = f"f-GAN critic loss for the {div.name} divergence: -(E_P[g(v)] - E_Q[f*(g(v))])."
    g_loss.__doc__ = f"f-GAN generator loss for the {div.name} divergence: -E_Q[f*(g(v))]."
    return d_loss, g_loss


# ------------------------------------------------------------------- relativistic (Jolicoeur-Martineau 2019)
# D estimates how much more real a real sample is than a generated one; G's loss therefore depends on D's
# scores of real data too (they do not depend on G: no gradient reaches G through them).

def d_rsgan(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic standard GAN:  L_D = -E[log σ(D(x_i) - D(G(z_i)))], real and fake paired by index."""
    return F.softplus(fake - real).mean()


def g_rsgan(fake: Tensor, real: Tensor) -> Tensor:
    """Relativistic standard GAN generator:  L_G = -E[log σ(D(G(z_i)) - D(x_i))]."""
    return F.softplus(real - fake).mean()


def d_rasgan(real: Tensor, fake: Tensor) -> Tensor:
    """Relativistic average GAN:  L_D = -E_x[log σ(D(x) - E D(G(z)))] - E_z[log(1 - σ(D(G(z)) - E D(x)))]."""
    return F.softplus(fake.mean() - real).mean() + F.softplus(fake - real.mean()).mean()


def g_rasgan(fake: Tensor, real: Tensor) -> Tensor:
    """Relativistic average GAN generator: D's loss with real and fake swapped."""
    return d_rasgan(fake, real)


# ------------------------------------------------------------------------------------- the registry

@dataclass(frozen=True)
class Objective:
    """``d_loss(real, fake)``; ``g_loss(fake, real=None)``, where ``real`` (D's logits on real data) is needed
    by the relativistic objectives only — a recipe that gives it sets ``Recipe.relativistic_ok``."""

    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]   # (real_logits, fake_logits) -> scalar
    g_fn: Callable[..., Tensor]                  # fake_logits [, real_logits] -> scalar
    relativistic: bool = False

    def g_loss(self, fake: Tensor, real: Tensor | None = None) -> Tensor:
        if not self.relativistic:
            return self.g_fn(fake)
        if real is None:
            raise ValueError(f"objective {self.name}: the generator loss needs D's logits on real data")
        return self.g_fn(fake, real)


OBJECTIVES: Registry[Objective] = Registry("objective")
for _o in (Objective("minimax", d_minimax, g_minimax),
           Objective("nonsaturating", d_minimax, g_nonsaturating),
           Objective("lsgan", d_lsgan, g_lsgan),
           Objective("hinge", d_hinge, g_hinge),
           Objective("wasserstein", d_wasserstein, g_wasserstein),
           Objective("rsgan", d_rsgan, g_rsgan, relativistic=True),
           Objective("rasgan", d_rasgan, g_rasgan, relativistic=True)):
    OBJECTIVES.register(_o.name)(_o)
for _name, _div in F_DIVERGENCES.items():
    OBJECTIVES.register(f"f-{_name}")(Objective(f"f-{_name}", *f_divergence_losses(_div)))


def smoothed(objective: Objective, smooth: float) -> Objective:
    """``objective`` with one-sided label smoothing (Salimans et al. 2016): D's target on real data is
    t = 1 − smooth, the target on generated data stays 0; G's loss is unchanged.

        minimax, nonsaturating:  L_D = −E_x[t log D(x) + (1 − t) log(1 − D(x))] − E_z[log(1 − D(G(z)))]
        lsgan:                   L_D = ½E[(D(x) − t)²] + ½E[D(G(z))²]
    """
    t = 1.0 - smooth
    if objective.d_loss is d_minimax:
        d_loss = lambda real, fake: (t * F.softplus(-real) + (1 - t) * F.softplus(real)).mean() \
            + F.softplus(fake).mean()  # noqa: E731
    elif objective.d_loss is d_lsgan:
        d_loss = lambda real, fake: 0.5 * ((real - t) ** 2).mean() + 0.5 * (fake ** 2).mean()  # noqa: E731
    else:
        raise ValueError(f"objective {objective.name} has no target to smooth")
    return replace(objective, name=f"{objective.name}+smooth{smooth:g}", d_loss=d_loss)


def objective_of(loss) -> Objective:
    """The run's objective: ``loss.name`` from ``OBJECTIVES``, with ``loss.smooth`` applied."""
    objective = OBJECTIVES.get(loss.name)
    return smoothed(objective, loss.smooth) if getattr(loss, "smooth", 0.0) > 0 else objective


# -------------------------------------------------------------------------------- the G-side tricks

def feature_matching(real_features: Tensor, fake_features: Tensor) -> Tensor:
    """Feature matching (Salimans et al. 2016):  ‖E_x f(x) − E_z f(G(z))‖²₂, f = D's last hidden features
    (N, F); the batch means stand in for the expectations, the real side is a constant."""
    return (real_features.detach().float().mean(0) - fake_features.float().mean(0)).pow(2).sum()


def orthogonal_regularisation(net: nn.Module) -> Tensor:
    """BigGAN's orthogonal regularisation (Brock et al. 2019):  Σ_W ‖W Wᵀ ⊙ (1 − I)‖²_F over every
    convolution and linear weight of ``net``, each W seen as (out, rest): the filters pushed apart
    without fixing their norms. Multiply by β (1e-4)."""
    total = None
    for module in net.modules():
        if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
            w = module.weight.flatten(1)
            if isinstance(module, nn.modules.conv._ConvTransposeNd):
                w = module.weight.transpose(0, 1).flatten(1)   # stored (in, out, ...): filters are its columns
            gram = w @ w.t()
            term = (gram * (1 - torch.eye(gram.shape[0], device=w.device, dtype=w.dtype))).pow(2).sum()
            total = term if total is None else total + term
    if total is None:
        raise ValueError("orthogonal_regularisation: the net has no linear or convolution weight")
    return total


# ---------------------------------------------------------------------------------------- penalties

def _input_grad_norms(D: nn.Module, x: Tensor) -> Tensor:
    """‖∇_x D(x)‖₂ per sample, shape (N,), keeping the graph so the penalty can be back-propagated."""
    x = x.detach().requires_grad_(True)
    out = D(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).norm(2, dim=1)


def _interpolates(real: Tensor, fake: Tensor) -> Tensor:
    """x̂ = ε x + (1 - ε) G(z), ε ~ U[0, 1] per sample, drawn from the global torch RNG."""
    shape = (1,) * (real.dim() - 1)
    eps = rows(lambda m: torch.rand((m, *shape), device=real.device, dtype=real.dtype), real.shape[0])
    return eps * real.detach() + (1.0 - eps) * fake.detach()


def gradient_penalty(D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017):  E_x̂[(‖∇_x̂ D(x̂)‖₂ - 1)²],

    x̂ = ε x + (1 - ε) G(z), ε ~ U[0, 1] per sample (from the global torch RNG). Multiply by λ (10).
    """
    return ((_input_grad_norms(D, _interpolates(real, fake)) - 1.0) ** 2).mean()


def lipschitz_penalty(D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-LP (Petzka et al. 2018):  E_x̂[max(0, ‖∇_x̂ D(x̂)‖₂ - 1)²], x̂ as in ``gradient_penalty``.

    One-sided: it bounds the slope without pulling it *up* to 1, so a critic that starts with the
    wrong sign is not held there (the two-sided penalty has a second, wrong-signed minimum in 1-D).
    """
    return (F.relu(_input_grad_norms(D, _interpolates(real, fake)) - 1.0) ** 2).mean()


def r1_penalty(D: nn.Module, real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018):  E_x[‖∇_x D(x)‖₂²] on real data. Multiply by γ/2."""
    return (_input_grad_norms(D, real) ** 2).mean()


def d_penalties(D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, gp: float, r1: float,
                report: Callable[[str, Tensor], None] | None = None) -> Tensor | float:
    """The configured penalties of a discriminator step:  gp · gradient_penalty + (r1 / 2) · r1_penalty.

    ``D`` maps samples to one score each (close over any condition). Returns 0.0 when both weights are 0;
    each active penalty is passed to ``report`` as "penalty/gp" / "penalty/r1".
    """
    total: Tensor | float = 0.0
    if gp > 0:
        value = gradient_penalty(D, real, fake)
        if report:
            report("penalty/gp", value)
        total = total + gp * value
    if r1 > 0:
        value = r1_penalty(D, real)
        if report:
            report("penalty/r1", value)
        total = total + 0.5 * r1 * value
    return total


# ------------------------------------------------------------------------- conditional extras

def aux_class_loss(logits: Tensor, target: Tensor) -> Tensor:
    """ACGAN auxiliary-classifier loss (Odena et al. 2017): the negative log-likelihood of the condition.

    Class conditions, target int64 (N,):  -E[log softmax(logits)_y]  (cross-entropy).
    Attribute conditions, target float (N, C) in [0, 1]:  -E[Σ_j t_j log σ(l_j) + (1 - t_j) log(1 - σ(l_j))] / C
    (binary cross-entropy per attribute). Both D (on real and generated samples) and G (on its samples,
    with the requested condition) minimise it.
    """
    if target.dtype == torch.int64:
        return F.cross_entropy(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))


def information_maximisation(logits: Tensor) -> Tensor:
    """Information maximisation on unlabelled inputs (Krause et al. 2010; SHOT, Liang et al. 2020), to
    minimise: the mean entropy of each prediction (be confident on every input) minus the entropy of the
    mean prediction (use every class). logits (N, K); natural log; from -log K (confident, every class
    equally often) to 0 (every input given the same prediction)."""
    p = logits.float().softmax(1)
    log_p = logits.float().log_softmax(1)
    mean = p.mean(0)
    return -(p * log_p).sum(1).mean() + (mean * mean.clamp_min(1e-12).log()).sum()


@torch.no_grad()
def clip_weights_(D: nn.Module, c: float) -> None:
    """WGAN weight clipping (Arjovsky et al. 2017): every parameter of D clamped to [-c, c] in place."""
    for p in D.parameters():
        p.clamp_(-c, c)


# --------------------------------------------------------------- generators without an adversary
# Per-sample losses, shape (N,): a recipe averages them over the batch (or sums them, where each sample's
# own gradient is wanted: the gradient at the origin of Gradient Origin Networks).

BINOMIAL_5 = (1.0, 4.0, 6.0, 4.0, 1.0)   # Burt & Adelson's 5-tap smoothing kernel, / 16


def _blur(x: Tensor) -> Tensor:
    """(N, C, H, W) smoothed by the separable 5x5 binomial kernel, borders replicated."""
    k = x.new_tensor(BINOMIAL_5) / 16
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """The Laplacian pyramid of images (N, C, H, W) (Burt & Adelson 1983): G_0 = x, G_{j+1} = every other
    pixel of blur(G_j), L_j = G_j - up(G_{j+1}) (bilinear up-sampling to G_j's size), for j < ``levels``,
    then the low-pass residual G_levels. Levels stop early where a side would fall below one pixel."""
    out, g = [], x
    for _ in range(levels):
        if min(g.shape[-2:]) < 2:
            break
        low = _blur(g)[..., ::2, ::2]
        out.append(g - F.interpolate(low, size=g.shape[-2:], mode="bilinear", align_corners=False))
        g = low
    return out + [g]


def lap1_loss(x: Tensor, target: Tensor, levels: int = 3) -> Tensor:
    """The Laplacian-pyramid L1 loss of GLO (Bojanowski et al. 2018), per sample (N,):
    Lap1(x, x') = Σ_j 2^(2j) |L_j(x) - L_j(x')|_1, the L1 norms summed over the level's pixels (level j
    has 4^-j of the pixels, so every level weighs alike), divided by the pixels of one image so the value
    is on the scale of a mean absolute error."""
    total = x.new_zeros(x.shape[0])
    for j, (a, b) in enumerate(zip(laplacian_pyramid(x, levels), laplacian_pyramid(target, levels))):
        total = total + 4.0 ** j * (a - b).abs().flatten(1).sum(1)
    return total / x[0].numel()


def squared_error(x: Tensor, target: Tensor) -> Tensor:
    """Σ (x - target)² over each sample, (N,)."""
    return (x - target).pow(2).flatten(1).sum(1)


def gaussian_nll(x: Tensor, target: Tensor, sigma: float) -> Tensor:
    """-log N(target; x, σ² I) summed over each sample's values, (N,):
    Σ (target - x)² / (2σ²) + D log(σ √(2π))."""
    d = x[0].numel()
    return squared_error(x, target) / (2 * sigma ** 2) + d * math.log(sigma * math.sqrt(2 * math.pi))


def bernoulli_nll(x: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    """-log Bernoulli(target; x) summed over each sample's values, (N,), for images in [-1, 1]: the
    probabilities are p = (x + 1) / 2 (clamped to [eps, 1 - eps]) and the targets t = (target + 1) / 2 in
    [0, 1]: -Σ t log p + (1 - t) log(1 - p) (grey values as in Kingma & Welling's MNIST models)."""
    p = ((x + 1) / 2).clamp(eps, 1 - eps)
    t = (target + 1) / 2
    return -(t * p.log() + (1 - t) * (1 - p).log()).flatten(1).sum(1)


def gaussian_kl(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, diag exp(logvar)) || N(0, I)) per sample, (N,): ½ Σ (mean² + exp(logvar) - 1 - logvar)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(1)
