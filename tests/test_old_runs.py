"""Run directories written by the layout in which every option sat in the shared tables (``loss.cycle``,
``train.pool``, ``model.depth``, ``data.pair``, ...): ``tests/data/old-layout/`` holds four tiny runs of
4 steps made by that code. They still sample, translate and evaluate, and resuming them to step 8 gives,
bit for bit, the weights of a run trained 8 steps straight with the options in their new tables."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gankit.cli import main
from gankit.config import OLD_KEYS, read_toml
from gankit.training import checkpoint

OLD = Path(__file__).with_name("data") / "old-layout"
COMMON = ["train.progress=false", "train.ckpt_every=4", "train.sample_every=4", "train.keep=1", "train.log_every=2"]

# run -> (preset, the same options in the new layout)
RUNS = {
    "gan-ring8": ("ring8", ["model.g_width=8", "model.d_width=8", "mlp.depth=1", "train.grid=16", "optim.decay=none"]),
    "cgan-digits": ("digits-cond", ["model.g_width=8", "model.d_width=8", "mlp.depth=1", "cgan.aux=0.5",
                                    "cgan.mismatch=0.25", "train.grid=20"]),
    "cyclegan-digits": ("digits-cyclegan", ["model.g_width=4", "model.d_width=4", "cyclegan.pool=3", "cyclegan.cycle=7",
                                            "cyclegan.semantic=0", "cyclegan.identity=0.25", "optim.decay=none",
                                            "train.grid=8"]),
    "paired-inpaint": ("digits-inpaint", ["model.g_width=4", "model.d_width=4", "paired.l1=50", "train.grid=8"]),
}


def sets(items: list[str]) -> list[str]:
    return [a for s in items for a in ("--set", s)]


@pytest.mark.parametrize("name", sorted(RUNS))
def test_an_old_layout_run_samples_and_resumes_exactly(tmp_path, name, capsys):
    run = tmp_path / name
    shutil.copytree(OLD / name, run)
    old = read_toml((run / "config.toml").read_text(), "old")
    assert "train.pool" in {f"{t}.{k}" for t, values in old.items() for k in values}   # the old layout
    images = tmp_path / "in"
    if name in ("gan-ring8", "cgan-digits"):
        assert main(["sample", str(run), "--n", "20", "--out", str(tmp_path / "s.npy")]) == 0
        assert np.load(tmp_path / "s.npy").shape[0] == 20
    else:   # image runs translate: a few digits as input
        from sklearn.datasets import load_digits
        from PIL import Image

        images.mkdir()
        for i, d in enumerate(load_digits().images[:3]):
            Image.fromarray((d * 255 / 16).astype(np.uint8), "L").save(images / f"{i}.png")
        extra = ["--degrade"] if name == "paired-inpaint" else ["--direction", "AtoB"]
        assert main(["translate", str(run), str(images), "--out", str(tmp_path / "out"), *extra]) == 0
        assert (tmp_path / "out" / "grid.png").exists()
    assert main(["train", "--out", str(run), "--resume", "--set", "train.steps=8"]) == 0
    written = read_toml((run / "config.toml").read_text(), "run")   # now in the new layout: its own tables only
    assert not [f"{t}.{k}" for t, values in written.items() for k in values if f"{t}.{k}" in OLD_KEYS]
    preset, new = RUNS[name]
    straight = tmp_path / "straight"
    assert main(["train", "--preset", preset, "--out", str(straight), *sets(COMMON + new + ["train.steps=8"])]) == 0
    for part in ("weights", "state"):
        a = load_file(str(checkpoint.latest(run / "checkpoints") / f"{part}.safetensors"))
        b = load_file(str(checkpoint.latest(straight / "checkpoints") / f"{part}.safetensors"))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), (name, part)
