"""The command line as a user meets it: outputs of sample/interpolate, and bad input -> one line, exit 2."""
import subprocess
import sys

import numpy as np
import torch
import pytest
from PIL import Image

from gankit.cli import main

FAST = ["--set", "train.progress=false", "--set", "train.steps=10", "--set", "train.log_every=5"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "digits"
    assert main(["train", "--out", str(run)] + FAST) == 0
    return run


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "ring"
    assert main(["train", "--preset", "ring8", "--out", str(run)] + FAST) == 0
    return run


def test_sample_to_npy_for_toy_data(ring_run, tmp_path):
    out = tmp_path / "s.npy"
    assert main(["sample", str(ring_run), "--n", "2500", "--out", str(out)]) == 0
    arr = np.load(out)
    assert arr.shape == (2500, 2) and arr.dtype == np.float32 and np.isfinite(arr).all()
    # the same seed gives the same samples, another seed others
    assert main(["sample", str(ring_run), "--n", "2500", "--out", str(tmp_path / "t.npy")]) == 0
    assert np.array_equal(arr, np.load(tmp_path / "t.npy"))
    assert main(["sample", str(ring_run), "--n", "2500", "--seed", "1", "--out", str(tmp_path / "u.npy")]) == 0
    assert not np.array_equal(arr, np.load(tmp_path / "u.npy"))


def test_sample_to_folder_grid_and_npy_for_images(digits_run, tmp_path):
    folder = tmp_path / "pngs"
    assert main(["sample", str(digits_run), "--n", "25", "--out", str(folder) + "/"]) == 0
    files = sorted(folder.glob("*.png"))
    assert len(files) == 25
    img = Image.open(files[0])
    assert img.size == (8, 8) and img.mode == "L"
    assert main(["sample", str(digits_run), "--n", "16", "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size == (4 * (2 + 4 * 10),) * 2
    assert main(["sample", str(digits_run), "--n", "7", "--out", str(tmp_path / "x.npy")]) == 0
    arr = np.load(tmp_path / "x.npy")
    assert arr.shape == (7, 8, 8, 1) and arr.dtype == np.uint8
    # the PNGs hold exactly the pixels of the array for the same seed
    assert np.array_equal(np.asarray(Image.open(files[0])), arr[0, :, :, 0])


def test_interpolate(digits_run, ring_run, tmp_path):
    assert main(["interpolate", str(digits_run), "--out", str(tmp_path / "i.png"), "--rows", "3", "--steps", "5"]) == 0
    assert Image.open(tmp_path / "i.png").size == (4 * (2 + 5 * 10), 4 * (2 + 3 * 10))
    assert main(["interpolate", str(ring_run), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0


def test_slerp_endpoints_and_norm():
    import torch

    from gankit.sampling import lerp, slerp

    a, b = torch.randn(4, 16), torch.randn(4, 16)
    t = torch.linspace(0, 1, 5)
    s = slerp(a, b, t)
    assert torch.allclose(s[:, 0], a, atol=1e-5) and torch.allclose(s[:, -1], b, atol=1e-5)
    assert torch.allclose(lerp(a, b, t)[:, 2], (a + b) / 2)


def test_presets_lists_each_with_a_line(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("digits ") for line in lines) and len(lines) >= 8


def test_dry_run_prints_config_and_writes_nothing(tmp_path, capsys):
    assert main(["train", "--preset", "ring8", "--dry-run", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert '[data]\nname = "ring8"' in out and not (tmp_path / "r").exists()


def one_line_error(argv, capsys, where):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("gankit: error:"), err
    assert not where.exists(), "a half-written run directory was left behind"
    return err


def test_bad_inputs_give_one_line_and_exit_2(tmp_path, capsys, digit_folder):
    r = tmp_path / "r"
    (tmp_path / "empty").mkdir()
    corrupt = tmp_path / "corrupt" / "cls"
    corrupt.mkdir(parents=True)
    Image.new("L", (28, 28)).save(corrupt / "ok.png")
    (corrupt / "bad.png").write_bytes(b"\x89PNG not really")
    cases = [
        (["--preset", "nope"], "unknown preset 'nope'; valid:"),
        (["--set", "loss.name=foo"], "unknown objective 'foo'"),
        (["--set", "train.nope=1"], "unknown config key 'train.nope'"),
        (["--set", "train.steps=ten"], "train.steps: expected an integer, got 'ten'"),
        (["--config", str(tmp_path / "missing.toml")], "missing.toml: cannot read"),
        (["--preset", "folder"], "data.path is empty"),
        (["--preset", "folder", "--set", f"data.path={tmp_path / 'nowhere'}"], "does not exist"),
        (["--preset", "folder", "--set", f"data.path={tmp_path / 'empty'}"], "no images"),
        (["--preset", "folder", "--set", f"data.path={tmp_path / 'corrupt'}"], "bad.png"),
        (["--preset", "folder", "--set", f"data.path={digit_folder}", "--set", "data.size=20"], "set data.size"),
        (["--preset", "mnist", "--set", f"data.path={tmp_path / 'nomnist'}"], "data.download=true"),
        (["--resume"], "--resume needs --out"),
    ]
    for extra, message in cases:
        argv = ["train"] + (["--out", str(r)] if "--resume" not in extra else []) + extra
        assert message in one_line_error(argv, capsys, r)


def test_resume_errors(tmp_path, capsys, digits_run):
    assert "no checkpoint" in one_line_error(["sample", str(tmp_path), "--n", "4", "--out", str(tmp_path / "x.png")],
                                              capsys, tmp_path / "x.png")
    err = one_line_error(["train", "--out", str(digits_run), "--resume", "--set", "loss.name=hinge"], capsys, tmp_path / "none")
    assert "differs from the run's in loss.name" in err
    err = one_line_error(["train", "--out", str(digits_run)], capsys, tmp_path / "none")
    assert "already holds a run; add --resume" in err
    err = one_line_error(["train", "--out", str(tmp_path / "fresh"), "--resume"], capsys, tmp_path / "fresh")
    assert "not found" in err
    err = one_line_error(["sample", str(digits_run), "--n", "4", "--out", str(tmp_path / "x.txt")], capsys, tmp_path / "x.txt")
    assert "a .txt file needs a run of token sequences; this run makes images" in err


def test_console_script_exit_status_and_single_line(tmp_path):
    """The real process: argparse errors and user errors both exit 2 with one line, no traceback."""
    for argv in (["train", "--preset", "nope"], ["train", "--bogus"], ["sample"]):
        p = subprocess.run([sys.executable, "-m", "gankit"] + argv, capture_output=True, text=True, cwd=tmp_path)
        assert p.returncode == 2, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
    p = subprocess.run([sys.executable, "-m", "gankit", "--debug", "train", "--preset", "nope"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_version_and_data_images_as_translation_inputs(tmp_path, capsys):
    from gankit.version import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"gankit {__version__}"
    out = tmp_path / "inputs"
    assert main(["data", "digits-stargan", "--n", "5", "--class", "bold", "--out", str(out)]) == 0
    files = sorted(out.iterdir())
    assert len(files) == 5 and all(Image.open(f).size == (8, 8) for f in files)
    # they are images of the data set: each is one of the 'bold' domain's images
    from gankit.assemble import resolve
    from gankit.data import load

    cfg = resolve("digits-stargan")
    every = load(cfg.data).all()
    bold = every["x"][every["y"] == 1]   # classes: sans, bold, italic, serif
    pixels = ((bold + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()[:, 0]
    assert all(any(np.array_equal(np.asarray(Image.open(f)), p) for p in pixels) for f in files)
    assert main(["data", "digits", "--n", "3", "--out", str(tmp_path / "g.npy")]) == 0
    assert np.load(tmp_path / "g.npy").shape == (3, 8, 8, 1)
    capsys.readouterr()
    assert main(["data", "ring8", "--out", str(tmp_path / "p")]) == 2
    assert "holds points, not images" in capsys.readouterr().err
