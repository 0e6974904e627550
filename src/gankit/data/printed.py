"""Printed digits rendered offline from the fonts that ship with matplotlib, in the format of
scikit-learn's handwritten digits — the second domain of the translation demos.

scikit-learn's digits are the UCI "optdigits": 32x32 binary bitmaps of a digit scaled to fill the
frame, counted over non-overlapping 4x4 blocks, so each of the 8x8 pixels is 0..16. ``render`` does
the same with a glyph: the digit is drawn large with one of the fonts of a style, cropped to its ink,
scaled to a random height (84–100% of 32 px, aspect kept), rotated by up to ±6°, placed at the centre
±1 px, thresholded, and counted over 4x4 blocks. Everything is drawn from a seeded NumPy generator,
so a set is a pure function of (style, count, seed).

Styles (font files of matplotlib's ``mpl-data/fonts/ttf``):
    printed   the upright regular faces: DejaVu Sans, Sans Mono, Serif, STIX General, Computer Modern
              roman / sans / typewriter, in turn (the "printed" domain of ``digits-printed``)
    sans, bold, italic, serif   one face each — DejaVu Sans, Sans Bold, Sans Oblique, Serif — the four
              domains of ``digit-fonts``, told apart by an SVC on the 8x8 pixels 99.9% of the time
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import DataError

STYLES: dict[str, tuple[str, ...]] = {
    "printed": ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf", "STIXGeneral.ttf", "cmr10.ttf",
                "cmss10.ttf", "cmtt10.ttf"),
    "sans": ("DejaVuSans.ttf",),
    "bold": ("DejaVuSans-Bold.ttf",),
    "italic": ("DejaVuSans-Oblique.ttf",),
    "serif": ("DejaVuSerif.ttf",),
}
BLOCK = 4      # the binary bitmap (side 4·size; 32 px for 8x8, as optdigits) is counted over 4x4 blocks -> 0..16


def font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@lru_cache(maxsize=None)
def _glyph(font_file: str, digit: int) -> np.ndarray:
    """The digit drawn at 160 px with ``font_file``, cropped to its ink: uint8 (h, w), 255 = ink."""
    from PIL import Image, ImageDraw, ImageFont

    path = font_dir() / font_file
    if not path.exists():
        raise DataError(f"printed digits: matplotlib's font '{path}' is missing; reinstall matplotlib")
    font = ImageFont.truetype(str(path), 160)
    canvas = Image.new("L", (320, 320), 0)
    ImageDraw.Draw(canvas).text((80, 40), str(digit), fill=255, font=font)
    a = np.asarray(canvas)
    rows, cols = np.nonzero(a.any(axis=1))[0], np.nonzero(a.any(axis=0))[0]
    return a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def render_one(digit: int, font_file: str, rng: np.random.Generator, size: int = 8) -> np.ndarray:
    """One printed digit as a ``size`` x ``size`` uint8 array of block counts 0..16 (bitmap side BLOCK·size)."""
    from PIL import Image

    bitmap_side = BLOCK * size
    g = Image.fromarray(_glyph(font_file, digit))
    h = bitmap_side * rng.uniform(0.84, 1.0)
    w = min(bitmap_side - 2, max(2.0, h * g.width / g.height))
    g = g.resize((max(1, round(w)), max(1, round(h))), Image.BILINEAR)
    g = g.rotate(rng.uniform(-6, 6), resample=Image.BILINEAR, expand=True)
    canvas = Image.new("L", (bitmap_side * 2, bitmap_side * 2), 0)
    dx, dy = rng.integers(-1, 2, size=2) * (size // 8)
    canvas.paste(g, ((2 * bitmap_side - g.width) // 2 + int(dx), (2 * bitmap_side - g.height) // 2 + int(dy)))
    half = bitmap_side // 2
    bitmap = np.asarray(canvas)[half:half + bitmap_side, half:half + bitmap_side] > 127
    return bitmap.reshape(size, BLOCK, size, BLOCK).sum(axis=(1, 3)).astype(np.uint8)


def render(style: str, per_digit: int, seed: int, size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``per_digit`` printed samples of each digit 0–9 in ``style``: (uint8 (N, size, size) counts 0..16,
    int64 (N,) digits).

    Fonts take turns within each digit; the order is digit-major (0, 0, ..., 1, 1, ...)."""
    if style not in STYLES:
        raise DataError(f"printed digits: unknown style '{style}'; valid: {', '.join(STYLES)}")
    rng = np.random.default_rng(seed)
    fonts = STYLES[style]
    images, digits = [], []
    for d in range(10):
        for i in range(per_digit):
            images.append(render_one(d, fonts[i % len(fonts)], rng, size))
            digits.append(d)
    return np.stack(images), np.asarray(digits, dtype=np.int64)
