"""What a discriminator is shown: differentiable augmentation of real and generated images, and instance
noise — applied alike in the D step and the G step, so gradients reach G through them.

* DiffAugment (Zhao et al. 2020): every image, every time, gets a random brightness, saturation and
  contrast change (``color``), a shift by up to 1/8 of its side, zeros filling in (``translation``), and a
  square of half its side set to zero (``cutout``).
* ADA (Karras et al. 2020): each transform of the pipeline is applied to each image with probability p
  — ``blit`` (x-flip, 90° rotations, integer translation), ``geom`` (isotropic scaling, rotation,
  anisotropic scaling, fractional translation; one bilinear resampling with reflected borders),
  ``color`` (brightness, contrast, luma flip, hue rotation, saturation) — and p follows the overfitting
  heuristic r_t = E[sign D(real)]: every ``ada_interval`` D steps it moves by
  sign(r_t − target) · (real images seen in the interval) / (``ada_kimg`` · 1000), within [0, 1].
* Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017): x + σ_t ε, ε ~ N(0, I), σ_t falling
  linearly from ``noise`` at step 0 to 0 at ``noise_steps``.

Random values come from the global torch RNG, per sample through ``runtime.rows`` (so N processes draw
what one does); ADA's p and its running sum are buffers of the ``Augment`` module, which an ADA run keeps
in ``nets`` — saved with the weights, restored on resume.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import AugmentConfig
from .runtime import report, rows, world

# ------------------------------------------------------------------------------------- DiffAugment


def _uniform(n: int, like: Tensor, low: float = 0.0, high: float = 1.0, *shape: int) -> Tensor:
    """(n, *shape) values ~ U[low, high) from the global RNG, this rank's rows."""
    return rows(lambda m: torch.rand((m, *shape), device=like.device), n).to(like.dtype) * (high - low) + low


def _integers(n: int, like: Tensor, low: int, high: int, *shape: int) -> Tensor:
    """(n, *shape) integers in [low, high] from the global RNG, this rank's rows."""
    return rows(lambda m: torch.randint(low, high + 1, (m, *shape), device=like.device), n)


def diff_color(xs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """DiffAugment's colour: x + b, b ~ U[-0.5, 0.5); saturation (x − mean over channels) · s + mean,
    s ~ U[0, 2); contrast (x − mean over the image) · c + mean, c ~ U[0.5, 1.5) — per sample."""
    n = xs[0].shape[0]
    b, s, c = (_uniform(n, xs[0], lo, hi, 1, 1, 1) for lo, hi in ((-0.5, 0.5), (0.0, 2.0), (0.5, 1.5)))
    out = []
    for x in xs:
        x = x + b
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * s + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        out.append((x - mean) * c + mean)
    return tuple(out)


def shift(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """Each image moved by (dy, dx) whole pixels (N,), zeros filling in: out[i, y, x] = x[i, y − dy, x − dx]."""
    n, _, h, w = x.shape
    pad = int(max(dy.abs().max(), dx.abs().max(), 0))
    if pad == 0:
        return x
    padded = F.pad(x, (pad, pad, pad, pad))
    ys = (torch.arange(h, device=x.device)[None, :] - dy[:, None] + pad)   # (N, H) source rows in padded
    xs = (torch.arange(w, device=x.device)[None, :] - dx[:, None] + pad)   # (N, W) source columns
    idx_y = ys[:, None, :, None].expand(n, x.shape[1], h, padded.shape[3])
    rows_taken = padded.gather(2, idx_y)
    idx_x = xs[:, None, None, :].expand(n, x.shape[1], h, w)
    return rows_taken.gather(3, idx_x)


def diff_translation(xs: tuple[Tensor, ...], ratio: float = 0.125) -> tuple[Tensor, ...]:
    """DiffAugment's translation: a shift by up to ratio · side pixels in each direction, zeros filling in."""
    n, _, h, w = xs[0].shape
    dy = _integers(n, xs[0], -int(h * ratio + 0.5), int(h * ratio + 0.5))
    dx = _integers(n, xs[0], -int(w * ratio + 0.5), int(w * ratio + 0.5))
    return tuple(shift(x, dy, dx) for x in xs)


def diff_cutout(xs: tuple[Tensor, ...], ratio: float = 0.5) -> tuple[Tensor, ...]:
    """DiffAugment's cutout: a square of ratio · side (clipped at the border) set to zero, its centre
    anywhere in the image."""
    n, _, h, w = xs[0].shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _integers(n, xs[0], 0, h - 1)
    cx = _integers(n, xs[0], 0, w - 1)
    yy = torch.arange(h, device=xs[0].device)[None, :] - (cy[:, None] - ch // 2)   # (N, H) row within the square
    xx = torch.arange(w, device=xs[0].device)[None, :] - (cx[:, None] - cw // 2)
    inside = ((yy >= 0) & (yy < ch))[:, :, None] & ((xx >= 0) & (xx < cw))[:, None, :]   # (N, H, W)
    keep = (~inside)[:, None].to(xs[0].dtype)
    return tuple(x * keep for x in xs)


DIFF_AUGMENT = {"color": diff_color, "translation": diff_translation, "cutout": diff_cutout}


# --------------------------------------------------------------------------------------------- ADA

def _chosen(n: int, like: Tensor, p: float) -> Tensor:
    """(n,) booleans, each true with probability p: which samples get a transform."""
    return _uniform(n, like) < p


def _rotation(theta: Tensor) -> Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    m = torch.zeros(theta.shape[0], 3, 3, dtype=theta.dtype, device=theta.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1], m[:, 2, 2] = c, -s, s, c, 1
    return m


def _scaling(sx: Tensor, sy: Tensor) -> Tensor:
    m = torch.zeros(sx.shape[0], 3, 3, dtype=sx.dtype, device=sx.device)
    m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = sx, sy, 1
    return m


def _translation(tx: Tensor, ty: Tensor) -> Tensor:
    m = torch.eye(3, dtype=tx.dtype, device=tx.device).repeat(tx.shape[0], 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _where(mask: Tensor, m: Tensor) -> Tensor:
    """m for the samples of ``mask``, the identity for the others."""
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device).expand_as(m)
    return torch.where(mask[:, None, None], m, eye)


def ada_geometry(n: int, size: tuple[int, int], p: float, pipeline: tuple[str, ...], like: Tensor) -> Tensor:
    """ADA's geometric transforms as one (N, 3, 3) map per sample, in affine_grid's coordinates ([-1, 1]
    across the image): output pixel -> input position. Rotations by 90° and integer translations land on
    pixel centres, so they move pixels without resampling them."""
    h, w = size
    f = torch.float64
    m = torch.eye(3, dtype=f, device=like.device).repeat(n, 1, 1)
    if "blit" in pipeline:
        flip = torch.where(_integers(n, like, 0, 1) == 1, -1.0, 1.0).to(f)
        m = m @ _where(_chosen(n, like, p), _scaling(flip, torch.ones_like(flip)))
        k = _integers(n, like, 0, 3).to(f)
        m = m @ _where(_chosen(n, like, p), _rotation(k * math.pi / 2))
        t = _uniform(n, like, -0.125, 0.125, 2).to(f)
        tx, ty = torch.round(t[:, 0] * w) * 2 / w, torch.round(t[:, 1] * h) * 2 / h
        m = m @ _where(_chosen(n, like, p), _translation(tx, ty))
    if "geom" in pipeline:
        p_rot = 1 - math.sqrt(max(0.0, 1 - p))   # two rotations: together applied with probability p
        s = torch.exp2(rows(lambda k: torch.randn(k, device=like.device), n).to(f) * 0.2)
        m = m @ _where(_chosen(n, like, p), _scaling(s, s))
        theta = _uniform(n, like, -math.pi, math.pi).to(f)
        m = m @ _where(_chosen(n, like, p_rot), _rotation(theta))
        s = torch.exp2(rows(lambda k: torch.randn(k, device=like.device), n).to(f) * 0.2)
        m = m @ _where(_chosen(n, like, p), _scaling(s, 1 / s))
        theta = _uniform(n, like, -math.pi, math.pi).to(f)
        m = m @ _where(_chosen(n, like, p_rot), _rotation(theta))
        t = rows(lambda k: torch.randn(k, 2, device=like.device), n).to(f) * 0.125
        m = m @ _where(_chosen(n, like, p), _translation(t[:, 0] * 2, t[:, 1] * 2))
    return m


def ada_color(n: int, channels: int, p: float, like: Tensor) -> Tensor:
    """ADA's colour transforms as one (N, C+1, C+1) matrix per sample acting on (values, 1): brightness
    b ~ N(0, 0.2) added, contrast c ~ lognormal(0, 0.5 ln 2) multiplied, the luma flip (the component
    along v = (1, ..., 1)/√C negated), hue rotation θ ~ U(−π, π) about v (RGB only) and saturation
    s ~ lognormal(0, ln 2) scaling what is orthogonal to v. Grey images: brightness, contrast, flip."""
    f = torch.float64
    C = channels
    eye = torch.eye(C + 1, dtype=f, device=like.device)
    m = eye.repeat(n, 1, 1)
    v = torch.ones(C, dtype=f, device=like.device) / math.sqrt(C)
    vv = torch.outer(v, v)

    def lifted(block: Tensor) -> Tensor:   # (N, C, C) -> (N, C+1, C+1) acting on the values only
        out = eye.repeat(n, 1, 1)
        out[:, :C, :C] = block
        return out

    b = rows(lambda k: torch.randn(k, device=like.device), n).to(f) * 0.2
    bright = eye.repeat(n, 1, 1)
    bright[:, :C, C] = b[:, None]
    m = _where(_chosen(n, like, p), bright) @ m
    c = torch.exp2(rows(lambda k: torch.randn(k, device=like.device), n).to(f) * 0.5)
    m = _where(_chosen(n, like, p), lifted(c[:, None, None] * torch.eye(C, dtype=f, device=like.device))) @ m
    flip = _integers(n, like, 0, 1).to(f)
    reflect = torch.eye(C, dtype=f, device=like.device) - 2 * flip[:, None, None] * vv
    m = _where(_chosen(n, like, p), lifted(reflect)) @ m
    if C == 3:
        theta = _uniform(n, like, -math.pi, math.pi).to(f)
        cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
        cross = torch.tensor([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]], dtype=f, device=like.device)
        hue = cos * torch.eye(3, dtype=f, device=like.device) + sin * cross + (1 - cos) * vv   # Rodrigues
        m = _where(_chosen(n, like, p), lifted(hue)) @ m
        s = torch.exp2(rows(lambda k: torch.randn(k, device=like.device), n).to(f))
        sat = vv + s[:, None, None] * (torch.eye(3, dtype=f, device=like.device) - vv)
        m = _where(_chosen(n, like, p), lifted(sat)) @ m
    return m


def ada_augment(xs: tuple[Tensor, ...], p: float, pipeline: tuple[str, ...]) -> tuple[Tensor, ...]:
    """ADA's pipeline at probability p, the same draw for every tensor of ``xs`` (an image and its
    condition image): the geometric map resamples each (bilinear, reflected borders), then the colour
    matrix acts on each one's channels. p = 0 returns ``xs`` untouched and draws nothing."""
    if p <= 0:
        return xs
    x0 = xs[0]
    n, _, h, w = x0.shape
    out = xs
    if "blit" in pipeline or "geom" in pipeline:
        m = ada_geometry(n, (h, w), p, pipeline, x0)
        moved = ~torch.isclose(m, torch.eye(3, dtype=m.dtype, device=m.device).expand_as(m)).flatten(1).all(1)
        if moved.any():
            grid = F.affine_grid(m[:, :2].to(x0.dtype), [n, 1, h, w], align_corners=False)
            out = tuple(torch.where(moved[:, None, None, None],
                                    F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="reflection",
                                                  align_corners=False), x) for x in out)
    if "color" in pipeline:
        colour = {}
        for x in out:
            c = x.shape[1]
            if c not in colour:
                colour[c] = ada_color(n, c, p, x0)
        out = tuple(torch.einsum("nij,njhw->nihw", colour[x.shape[1]][:, :-1, :-1].to(x.dtype), x)
                    + colour[x.shape[1]][:, :-1, -1].to(x.dtype)[:, :, None, None] for x in out)
    return out


# ----------------------------------------------------------------------------------- the pipeline

class Augment(nn.Module):
    """The run's ``[augment]`` table as a callable: ``augment(x, step=s)`` -> what D sees of x (several
    tensors given together — an image and its condition — get the same draw). For ADA it keeps p and
    the running sum of sign D(real) as buffers; ``observe(real_logits)`` after each D step's real logits
    moves p every ``ada_interval`` calls."""

    def __init__(self, cfg: AugmentConfig, steps: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.noise_steps = cfg.noise_steps or steps   # where instance noise reaches 0
        self.register_buffer("p", torch.tensor(float(cfg.ada_p), dtype=torch.float64))
        self.register_buffer("signs", torch.zeros(2, dtype=torch.float64))   # Σ sign D(real), images
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))    # observe() calls since p moved

    @property
    def adaptive(self) -> bool:
        """ADA: it has state to save."""
        return self.cfg.method == "ada"

    def state_nets(self) -> dict[str, nn.Module]:
        """What a recipe adds to its ``nets`` so the state is saved: {"augment": self} for ADA, else nothing."""
        return {"augment": self} if self.adaptive else {}

    def sigma(self, step: int) -> float:
        """Instance noise's standard deviation at generator step ``step``."""
        return self.cfg.noise * max(0.0, 1.0 - step / self.noise_steps)

    def forward(self, *xs: Tensor, step: int = 0) -> Tensor | tuple[Tensor, ...]:
        if self.cfg.method == "diffaugment":
            for name in self.cfg.policy:
                xs = DIFF_AUGMENT[name](xs)
        elif self.cfg.method == "ada":
            xs = ada_augment(xs, float(self.p), tuple(self.cfg.ada_pipeline))
        sigma = self.sigma(step) if self.cfg.noise > 0 else 0.0
        if sigma > 0:
            xs = tuple(x + sigma * rows(lambda m: torch.randn((m, *x.shape[1:]), device=x.device), x.shape[0])
                       .to(x.dtype) for x in xs)
        return xs[0] if len(xs) == 1 else xs

    @torch.no_grad()
    def observe(self, real_logits: Tensor) -> None:
        """ADA: count sign D(real) of one D step; every ``ada_interval`` calls, move p toward the target
        of r_t = E[sign D(real)] (the sums of every process together) and start counting again."""
        if not self.adaptive:
            return
        per_image = real_logits.detach().reshape(real_logits.shape[0], -1).sign().mean(1)   # a patch D: mean sign
        self.signs += torch.stack([per_image.sum(), torch.tensor(float(per_image.numel()))]).to(self.signs)
        self.calls += 1
        report("augment/p", self.p)
        if int(self.calls) < self.cfg.ada_interval:
            return
        signs = self.signs.clone()
        if world().size > 1:
            torch.distributed.all_reduce(signs)
        r_t = float(signs[0] / signs[1])
        report("augment/r_t", r_t)
        step = float(signs[1]) / (self.cfg.ada_kimg * 1000)   # the images seen in the interval
        self.p.copy_((self.p + math.copysign(step, r_t - self.cfg.ada_target) * (r_t != self.cfg.ada_target))
                     .clamp(0.0, 1.0))
        self.signs.zero_()
        self.calls.zero_()
