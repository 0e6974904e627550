"""Write scikit-learn's digits as a folder of 28×28 grayscale PNGs in class sub-folders (0/ … 9/),
each digit twice (as is, and shifted by one source pixel), for `--preset folder` checks.

    python benchmarks/make_digit_folder.py OUT_DIR
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def main(out: Path) -> None:
    d = load_digits()
    for i, (img, label) in enumerate(zip(d.images, d.target)):
        for j, shifted in enumerate((img, np.roll(img, 1, axis=1))):
            pix = (shifted * (255 / 16)).round().astype(np.uint8)
            big = Image.fromarray(pix, "L").resize((28, 28), Image.BILINEAR)
            folder = out / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            big.save(folder / f"{i:04d}_{j}.png")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the folder to write (class sub-folders 0/ … 9/)")
    main(ap.parse_args().out)
