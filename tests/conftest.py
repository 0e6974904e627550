import os

import numpy as np
import pytest
import torch
from PIL import Image

# Runs under test keep PyTorch's default thread count, whatever else the machine is doing: some kernels'
# results depend on it, and the bitwise tests compare runs. (train.threads=0 follows the load otherwise;
# tests/test_reliability.py tests that with the variable removed.) Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))


def write_digit_folder(root, per_class: int = 30, size: int = 28, classes=("a", "b", "c")):
    """A folder of grayscale PNGs in class sub-folders: class k is a bright bar at row band k."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True)
        for i in range(per_class):
            img = (rng.random((size, size)) * 40).astype(np.uint8)
            band = slice(k * size // len(classes), (k + 1) * size // len(classes))
            img[band] = 220
            Image.fromarray(img, "L").save(d / f"{i:03d}.png")
    return root


@pytest.fixture
def digit_folder(tmp_path):
    return write_digit_folder(tmp_path / "imgs")
