"""The public Python API, used the way the README shows it."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import gankit

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("### From Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    scope: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), scope)
    assert scope["x"].shape == (1000, 2) and scope["strip"].shape == (10, 2)
    modes = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= modes <= 8
    assert (tmp_path / "runs" / "api-ring" / "checkpoints" / "latest").exists()
    assert torch.equal(gankit.sample(scope["again"], 1000, seed=0), scope["x"])   # reopened from disk: the same G


def test_the_api_names_are_the_documented_ones():
    assert set(gankit.__all__) >= {"load_config", "train", "open_run", "sample", "interpolate", "translate",
                                   "evaluate", "metric_names", "Config", "Run", "GankitError"}
    for name in gankit.__all__:
        assert getattr(gankit, name) is not None
    assert "fid" in gankit.metric_names("images") and "modes" in gankit.metric_names("points")
    with pytest.raises(AttributeError):
        gankit.Trainer   # internal


def test_api_errors_are_one_line(tmp_path):
    with pytest.raises(gankit.GankitError, match=r"^--set cgan.aux=1: \[cgan\] holds the options of recipe 'cgan'"):
        gankit.load_config("digits", set=["cgan.aux=1"])
    with pytest.raises(gankit.GankitError, match="does not exist"):
        gankit.open_run(tmp_path / "nothing")


def test_translate_a_tensor_with_an_image_run(tmp_path):
    cfg = gankit.load_config("digits-inpaint", set=["train.steps=2", "train.progress=false", "model.g_width=4",
                                                    "model.d_width=4", "train.grid=8"])
    run = gankit.train(cfg, tmp_path / "inp")
    a = torch.zeros(5, 2, 8, 8)   # masked images and their masks (channel 2)
    y = gankit.translate(run, a)
    assert y.shape == (5, 1, 8, 8)
    with pytest.raises(gankit.GankitError, match="translates images"):
        gankit.sample(run, 4)
    cfg = gankit.load_config("digits-cyclegan", set=["train.steps=2", "train.progress=false", "model.g_width=4",
                                                     "model.d_width=4", "train.grid=8", "cyclegan.semantic=0"])
    run = gankit.train(cfg, tmp_path / "cg")
    y = gankit.translate(run, torch.zeros(3, 1, 8, 8), to="printed")
    assert y.shape == (3, 1, 8, 8) and y.abs().max() <= 1
