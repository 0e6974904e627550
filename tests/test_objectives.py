"""Every objective and penalty against values computed by hand (or by an independent formula)."""
import math

import pytest
import torch
from torch import nn

from gankit import objectives as O

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-3.0, 0.0, 1.0])


def sig(v):
    return 1 / (1 + math.exp(-v))


def mean(xs):
    return sum(xs) / len(xs)


def test_minimax_d_loss_is_negated_value_function():
    # -E log D(x) - E log(1 - D(G(z))) with D = sigmoid, written out term by term
    expected = -mean([math.log(sig(v)) for v in REAL.tolist()]) - mean([math.log(1 - sig(v)) for v in FAKE.tolist()])
    assert O.d_minimax(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_saturating_and_nonsaturating_generator_losses():
    sat = mean([math.log(1 - sig(v)) for v in FAKE.tolist()])
    ns = -mean([math.log(sig(v)) for v in FAKE.tolist()])
    assert O.g_minimax(FAKE).item() == pytest.approx(sat, rel=1e-6)
    assert O.g_nonsaturating(FAKE).item() == pytest.approx(ns, rel=1e-6)
    # the point of the non-saturating loss: where D rejects the fake (logit -10) the saturating
    # gradient wrt the logit is ~ -sigmoid(-10)... tiny, the non-saturating one is ~ -1
    f = torch.tensor([-10.0], requires_grad=True)
    O.g_minimax(f).backward()
    g_sat = f.grad.item()
    f.grad = None
    O.g_nonsaturating(f).backward()
    assert abs(g_sat) == pytest.approx(sig(-10), rel=1e-4)
    assert f.grad.item() == pytest.approx(-(1 - sig(-10)), rel=1e-4)


def test_minimax_is_finite_for_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(O.d_minimax(big, big)) and torch.isfinite(O.g_minimax(big))
    assert O.d_minimax(big, big).item() == pytest.approx(0.5 * 1e4 + 0.5 * 1e4, rel=1e-6)


def test_lsgan():
    d = 0.5 * mean([(v - 1) ** 2 for v in REAL.tolist()]) + 0.5 * mean([v ** 2 for v in FAKE.tolist()])
    g = 0.5 * mean([(v - 1) ** 2 for v in FAKE.tolist()])
    assert O.d_lsgan(REAL, FAKE).item() == pytest.approx(d, rel=1e-6)
    assert O.g_lsgan(FAKE).item() == pytest.approx(g, rel=1e-6)


def test_hinge():
    # real: max(0,1-2)=0, max(0,1+1)=2, max(0,0.5)=0.5 -> 2.5/3; fake: max(0,-2)=0, 1, 2 -> 3/3
    assert O.d_hinge(REAL, FAKE).item() == pytest.approx(2.5 / 3 + 1.0, rel=1e-6)
    assert O.g_hinge(FAKE).item() == pytest.approx(2.0 / 3, rel=1e-6)


def test_wasserstein():
    assert O.d_wasserstein(REAL, FAKE).item() == pytest.approx(-2.0 / 3 - 0.5, rel=1e-6)
    assert O.g_wasserstein(FAKE).item() == pytest.approx(2.0 / 3, rel=1e-6)


def test_relativistic_by_hand():
    real, fake = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 1.0, 3.0])
    log_sigmoid = lambda v: -math.log1p(math.exp(-v))
    pairs = list(zip(real.tolist(), fake.tolist()))
    assert O.d_rsgan(real, fake).item() == pytest.approx(-sum(log_sigmoid(r - f) for r, f in pairs) / 3, rel=1e-6)
    assert O.g_rsgan(fake, real).item() == pytest.approx(-sum(log_sigmoid(f - r) for r, f in pairs) / 3, rel=1e-6)
    mr, mf = real.mean().item(), fake.mean().item()
    d = (-sum(log_sigmoid(r - mf) for r in real.tolist()) / 3
         - sum(math.log(1 - 1 / (1 + math.exp(-(f - mr)))) for f in fake.tolist()) / 3)
    g = (-sum(log_sigmoid(f - mr) for f in fake.tolist()) / 3
         - sum(math.log(1 - 1 / (1 + math.exp(-(r - mf)))) for r in real.tolist()) / 3)
    assert O.d_rasgan(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert O.g_rasgan(fake, real).item() == pytest.approx(g, rel=1e-6)
    rs = O.OBJECTIVES.get("rsgan")
    assert rs.relativistic and rs.g_loss(fake, real) == O.g_rsgan(fake, real)
    with pytest.raises(ValueError, match="needs D's logits on real data"):
        rs.g_loss(fake)


def test_registry_names_and_error():
    assert O.OBJECTIVES.names() == ["f-hellinger", "f-js", "f-kl", "f-pearson", "f-reverse-kl", "f-tv",
                                    "hinge", "lsgan", "minimax", "nonsaturating", "rasgan", "rsgan", "wasserstein"]
    assert O.OBJECTIVES.get("minimax").g_fn is O.g_minimax
    assert O.OBJECTIVES.get("nonsaturating").d_loss is O.d_minimax
    with pytest.raises(Exception, match="unknown objective 'wgan'; valid: f-hellinger, f-js, f-kl, .*, hinge, lsgan, minimax"):
        O.OBJECTIVES.get("wgan")


class Quadratic(nn.Module):
    """D(x) = a·Σx² : ∇D = 2a x, so ‖∇D‖ = 2|a|‖x‖ is known exactly."""

    def __init__(self, a):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x):
        return self.a * (x ** 2).flatten(1).sum(1)


def test_r1_penalty_exact():
    D = Quadratic(0.5)
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    # ‖∇D‖² = ‖x‖² -> (25 + 1) / 2
    pen = O.r1_penalty(D, x)
    assert pen.item() == pytest.approx(13.0, rel=1e-6)
    pen.backward()  # d/da of E[4a²‖x‖²] = 8a E‖x‖² = 8*0.5*13
    assert D.a.grad.item() == pytest.approx(52.0, rel=1e-6)


def test_gradient_penalty_exact_with_known_epsilon():
    D = Quadratic(1.0)
    real = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    fake = torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    torch.manual_seed(123)
    eps = torch.rand(2, 1)
    torch.manual_seed(123)
    pen = O.gradient_penalty(D, real, fake)
    x_hat = eps * real + (1 - eps) * fake
    norms = 2 * x_hat.norm(dim=1)
    assert pen.item() == pytest.approx(((norms - 1) ** 2).mean().item(), rel=1e-6)


def test_gradient_penalty_zero_for_unit_slope_critic():
    lin = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.6, 0.0, 0.8]]))  # ‖w‖ = 1 -> ‖∇D‖ = 1 everywhere
    D = lambda x: lin(x).squeeze(1)  # noqa: E731
    assert O.gradient_penalty(D, torch.randn(5, 3), torch.randn(5, 3)).item() == pytest.approx(0.0, abs=1e-10)


def test_weight_clipping():
    lin = nn.Linear(4, 4)
    with torch.no_grad():
        lin.weight.mul_(100)
    O.clip_weights_(lin, 0.01)
    assert all(p.abs().max().item() <= 0.01 for p in lin.parameters())


# ------------------------------------------------------------------------------- f-GAN (Nowozin et al. 2016)
import numpy as np  # noqa: E402

P = np.array([0.125, 0.375, 0.25, 0.25])    # data
Q = np.array([0.25, 0.25, 0.375, 0.125])    # generator
U = P / Q
F_NUMPY = {  # f(u), its derivative, and the divergence written out independently (nats)
    "kl": (lambda u: u * np.log(u), lambda u: np.log(u) + 1, (P * np.log(P / Q)).sum()),
    "reverse-kl": (lambda u: -np.log(u), lambda u: -1 / u, (Q * np.log(Q / P)).sum()),
    "js": (None, lambda u: 0.5 * np.log(2 * u / (u + 1)),
           0.5 * (P * np.log(2 * P / (P + Q))).sum() + 0.5 * (Q * np.log(2 * Q / (P + Q))).sum()),
    "pearson": (lambda u: (u - 1) ** 2, lambda u: 2 * (u - 1), ((P - Q) ** 2 / Q).sum()),
    "hellinger": (lambda u: (np.sqrt(u) - 1) ** 2, lambda u: 1 - 1 / np.sqrt(u), ((np.sqrt(P) - np.sqrt(Q)) ** 2).sum()),
    "tv": (lambda u: 0.5 * np.abs(u - 1), lambda u: 0.5 * np.sign(u - 1) * (1 - 1e-9), 0.5 * np.abs(P - Q).sum()),
}
INVERSE_ACTIVATION = {
    "kl": lambda t: t, "reverse-kl": lambda t: -np.log(-t), "js": lambda t: -np.log(2 * np.exp(-2 * t) - 1),
    "pearson": lambda t: t, "hellinger": lambda t: -np.log(1 - t), "tv": lambda t: np.arctanh(2 * t),
}


def _weighted_samples(values, probs, n=8):
    """values repeated in proportion to probs (multiples of 1/8): sample means are exact expectations."""
    return torch.tensor(np.repeat(values, (probs * n).round().astype(int)), dtype=torch.float64)


@pytest.mark.parametrize("name", list(O.F_DIVERGENCES))
def test_f_divergence_bound_is_tight_at_the_optimal_critic(name):
    div = O.F_DIVERGENCES[name]
    f, f_prime, exact = F_NUMPY[name]
    if f is not None:  # the library's f agrees with the written-out divergence: Σ q f(p/q)
        assert (Q * div.f(torch.tensor(U)).numpy()).sum() == pytest.approx(exact, rel=1e-9)
    v_star = INVERSE_ACTIVATION[name](f_prime(U))            # critic output with g_f(v*) = f'(p/q)
    real, fake = _weighted_samples(v_star, P), _weighted_samples(v_star, Q)
    assert div.bound(real, fake).item() == pytest.approx(exact, rel=1e-6, abs=1e-9)
    d_loss = O.OBJECTIVES.get(f"f-{name}").d_loss
    assert -d_loss(real, fake).item() == pytest.approx(exact, rel=1e-6, abs=1e-9)
    # any other critic gives a smaller value (the bound is a lower bound)
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = v_star + rng.normal(scale=0.3, size=4)
        assert div.bound(_weighted_samples(v, P), _weighted_samples(v, Q)).item() <= exact + 1e-9


@pytest.mark.parametrize("name", list(O.F_DIVERGENCES))
def test_f_conjugates_against_a_numerical_supremum(name):
    div = O.F_DIVERGENCES[name]
    u = torch.linspace(1e-4, 60, 600_001, dtype=torch.float64)
    fu = div.f(u)
    for v in (-1.5, -0.3, 0.2, 1.0):
        t = div.activation(torch.tensor(v, dtype=torch.float64))
        numeric = (t * u - fu).max().item()
        assert div.conjugate(t).item() == pytest.approx(numeric, rel=1e-4, abs=1e-4), (name, v)


def test_lipschitz_penalty_is_one_sided():
    lin = nn.Linear(2, 1, bias=False)
    D = lambda x: lin(x).squeeze(1)  # noqa: E731
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.3, 0.4]]))        # slope 0.5: inside the bound, no penalty
    assert O.lipschitz_penalty(D, torch.randn(6, 2), torch.randn(6, 2)).item() == 0.0
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.2, 1.6]]))        # slope 2: (2 - 1)² = 1
    assert O.lipschitz_penalty(D, torch.randn(6, 2), torch.randn(6, 2)).item() == pytest.approx(1.0, rel=1e-6)


def test_information_maximisation_against_scipy_entropies():
    """Mean entropy of the predictions minus the entropy of their mean, by scipy.stats.entropy; and its
    bounds: -log K for confident, balanced predictions, 0 when every input gets the same prediction."""
    from scipy.stats import entropy
    from scipy.special import softmax

    logits = np.random.default_rng(0).normal(scale=2.0, size=(7, 5))
    p = softmax(logits, axis=1)
    expected = np.mean([entropy(row) for row in p]) - entropy(p.mean(0))
    assert O.information_maximisation(torch.from_numpy(logits)).item() == pytest.approx(expected, rel=1e-6)
    confident = torch.eye(5) * 60.0
    assert O.information_maximisation(confident).item() == pytest.approx(-math.log(5), abs=1e-6)
    assert O.information_maximisation(torch.zeros(4, 5)).item() == pytest.approx(0.0, abs=1e-7)
    assert O.information_maximisation(torch.tensor([[9.0, 0, 0, 0, 0]] * 3)).item() == pytest.approx(0.0, abs=1e-6)
