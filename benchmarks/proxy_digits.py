"""Handwriting-like digit folders made offline, the proxy data the `folder` preset is tuned on (never the
data a check uses), and an independent judge for them.

Each digit is drawn with one of matplotlib's fonts at 160 px, its strokes thickened or thinned (a max or
min filter of random size), slanted and rotated (a random affine map), bent by an elastic distortion
(Simard et al. 2003: a random displacement field smoothed by a Gaussian, σ = 8 px, scaled by α = 60 px at
160 px), then processed as MNIST was: scaled to fit a 20×20 box (24×24 for 32 px) keeping its aspect,
anti-aliased, and placed in the frame by its centre of mass.

    python benchmarks/proxy_digits.py grey OUT [--n 8000 --seed 0]     # 28×28 grey, class folders 0/ … 9/
    python benchmarks/proxy_digits.py rgb OUT [--n 8000 --seed 0]      # 32×32 RGB: coloured ink on a coloured ground

The judge (``Judge``) is a small CNN written here (not gankit's classifier), trained on a separate draw
(seed 1001) and scored on another (seed 1002): it reports the share of samples classified with
probability > 0.9, the entropy of the mean prediction (natural log, over ln 10) and the Fréchet
distance in its 128-d penultimate features to 2,000 images of a third draw.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageFilter
from scipy import ndimage

from gankit.data.printed import _glyph, font_dir

HIGH = 160   # the glyph's drawing size


SYMBOL_FONTS = ("cmex10.ttf", "cmsy10.ttf", "cmmi10.ttf")   # their digit codes draw symbols or old-style figures


def fonts() -> list[str]:
    """Every font of matplotlib's set whose ten digits are drawn as ten different glyphs (not the symbol fonts)."""
    out = []
    for path in sorted(font_dir().glob("*.ttf")):
        if path.name in SYMBOL_FONTS:
            continue
        try:
            glyphs = [_glyph(path.name, d) for d in range(10)]
        except Exception:   # a font without digits
            continue
        if len({g.tobytes() for g in glyphs}) == 10 and min(g.shape[0] for g in glyphs) > 40:
            out.append(path.name)
    return out


def elastic(a: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    """Simard et al.'s elastic distortion of a float image."""
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, a.shape), sigma) * alpha
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, a.shape), sigma) * alpha
    y, x = np.meshgrid(np.arange(a.shape[0]), np.arange(a.shape[1]), indexing="ij")
    return ndimage.map_coordinates(a, [y + dy, x + dx], order=1, mode="constant")


def handwritten(digit: int, font: str, rng: np.random.Generator, side: int = 28) -> np.ndarray:
    """One digit as float (side, side) in [0, 1], 1 = ink."""
    g = _glyph(font, digit)
    canvas = np.zeros((HIGH + 80, HIGH + 80), np.float64)
    h, w = g.shape
    scale = HIGH / max(h, w) * 0.8
    img = Image.fromarray(g).resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.BILINEAR)
    stroke = int(rng.integers(-2, 5))   # thinner ... much thicker
    if stroke > 0:
        img = img.filter(ImageFilter.MaxFilter(2 * stroke + 1))
    elif stroke < 0:
        img = img.filter(ImageFilter.MinFilter(3))
    a = np.asarray(img, np.float64) / 255
    y0, x0 = (canvas.shape[0] - a.shape[0]) // 2, (canvas.shape[1] - a.shape[1]) // 2
    canvas[y0:y0 + a.shape[0], x0:x0 + a.shape[1]] = a
    # slant and rotation about the centre
    theta = np.deg2rad(rng.uniform(-12, 12))
    shear = rng.uniform(-0.35, 0.35)
    m = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) @ np.array([[1, shear], [0, 1]])
    centre = np.array(canvas.shape) / 2
    canvas = ndimage.affine_transform(canvas, m, offset=centre - m @ centre, order=1)
    canvas = np.clip(elastic(canvas, rng, alpha=60, sigma=8), 0, 1)
    # MNIST's processing: fit the ink into a box (aspect kept), anti-aliased, centred by mass
    rows, cols = np.nonzero(canvas.max(1) > 0.2)[0], np.nonzero(canvas.max(0) > 0.2)[0]
    ink = canvas[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    box = round(side * 20 / 28)
    s = box / max(ink.shape)
    small = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize(
        (max(1, round(ink.shape[1] * s)), max(1, round(ink.shape[0] * s))), Image.LANCZOS), np.float64) / 255
    out = np.zeros((side, side))
    cy, cx = ndimage.center_of_mass(small)
    top, left = int(round(side / 2 - cy)), int(round(side / 2 - cx))
    top, left = min(max(top, 0), side - small.shape[0]), min(max(left, 0), side - small.shape[1])
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    return np.clip(out, 0, 1)


def coloured(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink a (side, side) in [0, 1] as uint8 RGB: a random ink colour on a random, contrasting ground with
    a gentle gradient and a little noise."""
    while True:
        ink, ground = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        if abs(ink @ [0.299, 0.587, 0.114] - ground @ [0.299, 0.587, 0.114]) > 0.35:
            break
    side = a.shape[0]
    ramp = np.linspace(-0.12, 0.12, side)
    grad = ramp[:, None] * rng.uniform(-1, 1) + ramp[None, :] * rng.uniform(-1, 1)
    bg = np.clip(ground[None, None, :] + grad[..., None], 0, 1)
    img = bg * (1 - a[..., None]) + ink[None, None, :] * a[..., None]
    img = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
    return (img * 255).round().astype(np.uint8)


def make(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images (uint8 (n, side, side) grey or (n, side, side, 3) RGB) and their digits, a pure function of seed."""
    rng = np.random.default_rng(seed)
    faces = fonts()
    side = 28 if kind == "grey" else 32
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    out = []
    for d in labels:
        a = handwritten(int(d), faces[int(rng.integers(len(faces)))], rng, side)
        out.append((a * 255).round().astype(np.uint8) if kind == "grey" else coloured(a, rng))
    return np.stack(out), labels


def cached(kind: str, n: int, seed: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """``make(kind, n, seed)``, kept in ``cache`` as .npz after the first call."""
    path = cache / f"{kind}-{n}-{seed}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["x"], z["y"]
    x, y = make(kind, n, seed)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y)
    return x, y


def write(kind: str, out: Path, n: int, seed: int) -> None:
    images, labels = make(kind, n, seed)
    for i, (img, d) in enumerate(zip(images, labels)):
        (out / str(d)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, "L" if kind == "grey" else "RGB").save(out / str(d) / f"{i:05d}.png")


# ------------------------------------------------------------------------------------------ the judge

class JudgeNet(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1),
                                  nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                  nn.LazyLinear(128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.body(x))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).float() / 127.5 - 1
    return x[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


class Judge:
    """The independent classifier of a proxy kind, trained once and cached beside this file's outputs."""

    def __init__(self, kind: str, cache: Path) -> None:
        torch.manual_seed(0)
        path = cache / f"judge-{kind}.pt"
        self.kind = kind
        self.net = JudgeNet(1 if kind == "grey" else 3)
        self.net(torch.zeros(2, 1 if kind == "grey" else 3, 28 if kind == "grey" else 32, 28 if kind == "grey" else 32))
        if path.exists():
            self.net.load_state_dict(torch.load(path, weights_only=True))
        else:
            train_x, train_y = cached(kind, 10000, 1001, cache)
            self.fit(to_tensor(train_x), torch.from_numpy(train_y))
            cache.mkdir(parents=True, exist_ok=True)
            torch.save(self.net.state_dict(), path)
        self.net.eval()
        test_x, test_y = cached(kind, 2000, 1002, cache)
        self.accuracy = float((self.predict(to_tensor(test_x)).argmax(1) == torch.from_numpy(test_y)).float().mean())
        ref_x, _ = cached(kind, 2000, 1003, cache)
        self.ref_features = self.features(to_tensor(ref_x))

    def fit(self, x: torch.Tensor, y: torch.Tensor, epochs: int = 6) -> None:
        opt = torch.optim.Adam(self.net.parameters(), 1e-3)
        g = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=g).split(64):
                loss = F.cross_entropy(self.net(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.softmax(self.net(part), 1) for part in x.split(500)])

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> np.ndarray:
        return torch.cat([self.net.body(part) for part in x.split(500)]).double().numpy()

    def score(self, x: torch.Tensor) -> dict[str, float]:
        """Samples (N, C, H, W) in [-1, 1] -> confident share, class entropy, Fréchet distance."""
        p = self.predict(x)
        mean = p.mean(0)
        entropy = float(-(mean * mean.clamp_min(1e-12).log()).sum() / np.log(10))
        return {"confident": round(float((p.max(1).values > 0.9).float().mean()), 3),
                "entropy": round(entropy, 3), "fd": round(frechet(self.features(x), self.ref_features), 2)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=("grey", "rgb"))
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    write(a.kind, a.out, a.n, a.seed)
