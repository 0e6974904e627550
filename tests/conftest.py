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


# ------------------------------------------------------------ small trained runs of each kind (report, serve, export)

SHARE_RUNS = {   # name -> (preset, --set items): one run of each conditioning the report and the page know
    "digits": ("digits", ["train.steps=12", "train.sample_every=4"]),
    "cond": ("digits-cond", ["train.steps=8", "train.sample_every=4"]),
    "ring": ("ring8", ["train.steps=10", "train.sample_every=5", "loss.name=wasserstein", "loss.gp=1",
                       "eval.every=5", "eval.metrics=[w1]", "eval.n=200", "eval.best=w1"]),
    "inpaint": ("digits-inpaint", ["train.steps=6", "train.sample_every=3"]),
    "stargan": ("digits-stargan", ["train.steps=4", "train.sample_every=2"]),
    "mle": ("mle", ["train.steps=4", "train.sample_every=2", "train.max_seconds=0"]),
    "textcycle": ("textcycle", ["data.name=text-pairs", "train.steps=3", "train.sample_every=3", "train.max_seconds=0",
                                "data.batch_size=4", "model.g_width=16"]),
}


def write_text_pairs(root):
    """Two tiny 'styles' of sentences in the text-pairs layout."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    root.mkdir(parents=True)
    for name, n in (("trainA", 24), ("trainB", 20), ("testA", 4), ("testB", 4)):
        lines = [" ".join(rng.choice(words[:20] if "A" in name else words[10:], int(rng.integers(2, 7))))
                 for _ in range(n)]
        (root / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="session")
def share_runs(tmp_path_factory):
    """name -> a finished run directory (see SHARE_RUNS), trained once per test session."""
    from gankit.cli import main

    root = tmp_path_factory.mktemp("share")
    pairs = write_text_pairs(root / "pairs")
    runs = {}
    for name, (preset, sets) in SHARE_RUNS.items():
        argv = ["train", "--preset", preset, "--out", str(root / name), "--set", "train.progress=false",
                "--set", "train.log_every=2"]
        if name == "textcycle":
            sets = sets + [f"data.path={pairs}"]
        for s in sets:
            argv += ["--set", s]
        assert main(argv) == 0, name
        runs[name] = root / name
    return runs
