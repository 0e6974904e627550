"""Hostile inputs: every command given odd, broken or malicious files and values.

Odd but valid input trains or runs (exit 0); anything else exits 2 with one line naming the culprit, no
traceback, nothing half-written — and a pickle never runs (each one here would create a marker file).
"""
import os
import pickle
import subprocess
import sys
import zlib
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.training import checkpoint

QUICK = ["train.steps=2", "train.progress=false", "train.sample_every=100", "train.ckpt_every=100", "train.grid=4"]


def run_cli(args, capsys):
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def refused(args, capsys, *culprits, written=()):
    """Exit 2, stderr one line naming every culprit, none of ``written`` left behind."""
    code, _, err = run_cli(args, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("gankit: error:"), err
    for c in culprits:
        assert str(c) in lines[0], (c, lines[0])
    for path in written:
        assert not os.path.exists(path), f"{path} was left behind"
    return lines[0]


def train_folder(folder, out, *sets):
    args = ["train", "--preset", "folder", "--out", out, "--set", f"data.path={folder}", "--set", "data.batch_size=4"]
    for s in QUICK + list(sets):
        args += ["--set", s]
    return args


class Marker:
    """Unpickling this creates ``path``: the proof that a pickle was executed."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# ------------------------------------------------------------------------- images that must train

def rgb(i):
    rng = np.random.default_rng(i)
    return (rng.random((20, 20, 3)) * 255).astype(np.uint8)


def save_modes(folder, kind):
    folder.mkdir(parents=True)
    for i in range(6):
        a = rgb(i)
        if kind == "cmyk":
            Image.fromarray(a).convert("CMYK").save(folder / f"{i}.jpg")
        elif kind == "grey16":
            img = Image.fromarray(a[..., 0].astype(np.uint16) * 257)
            assert img.mode.startswith("I;16")
            img.save(folder / f"{i}.png")
        elif kind == "palette":
            Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / f"{i}.png")
        elif kind == "palette-transparent":
            Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / f"{i}.png", transparency=0)
        elif kind == "1-bit":
            Image.fromarray(a[..., 0]).convert("1").save(folder / f"{i}.png")
        elif kind == "rgba":
            Image.fromarray(np.dstack([a, a[..., :1]]), "RGBA").save(folder / f"{i}.png")
        elif kind == "grey-alpha":
            Image.fromarray(a[..., :2].copy(), "LA").save(folder / f"{i}.png")
        elif kind == "mixed-modes":
            img = Image.fromarray(a)
            [img, img.convert("L"), img.convert("P"), img.convert("CMYK").convert("RGB"), img.convert("LA"),
             img.convert("1")][i].save(folder / f"{i}.png")
        elif kind == "mixed-sizes":
            w, h = [(20, 20), (40, 12), (9, 33), (64, 64), (17, 16), (100, 30)][i]
            Image.fromarray(a).resize((w, h)).save(folder / f"{i}.png")
        elif kind == "webp-bmp-jpeg":
            Image.fromarray(a).save(folder / f"{i}.{['webp', 'bmp', 'jpeg', 'JPG', 'PNG', 'png'][i]}")


@pytest.mark.parametrize("kind", ["cmyk", "grey16", "palette", "palette-transparent", "1-bit", "rgba", "grey-alpha",
                                  "mixed-modes", "mixed-sizes", "webp-bmp-jpeg"])
def test_odd_but_valid_images_train(tmp_path, capsys, kind):
    save_modes(tmp_path / "imgs", kind)
    code, _, err = run_cli(train_folder(tmp_path / "imgs", tmp_path / "r", "data.size=16"), capsys)
    assert code == 0, err
    assert checkpoint.latest(tmp_path / "r" / "checkpoints") is not None


def test_non_ascii_paths_train_and_sample(tmp_path, capsys):
    folder = tmp_path / "données" / "数字"
    save_modes(folder, "palette")
    run = tmp_path / "résultats ✓"
    assert run_cli(train_folder(folder.parent, run, "data.size=16"), capsys)[0] == 0
    assert run_cli(["sample", run, "--n", "4", "--out", tmp_path / "échantillons.png"], capsys)[0] == 0
    assert (tmp_path / "échantillons.png").exists()


def test_a_symlink_loop_in_the_data_folder_is_walked_once(tmp_path, capsys):
    save_modes(tmp_path / "imgs" / "a", "palette")
    os.symlink(tmp_path / "imgs", tmp_path / "imgs" / "a" / "loop")
    os.symlink(tmp_path / "imgs" / "a" / "loop", tmp_path / "imgs" / "again")
    code, _, err = run_cli(train_folder(tmp_path / "imgs", tmp_path / "r", "data.size=16"), capsys)
    assert code == 0, err
    assert "(6 RGB images of 16x16" in err


def test_other_files_and_hidden_folders_beside_images_are_ignored(tmp_path, capsys):
    save_modes(tmp_path / "imgs", "palette")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    (tmp_path / "imgs" / ".cache").mkdir()
    (tmp_path / "imgs" / ".cache" / "junk.png").write_bytes(b"junk")
    (tmp_path / "imgs" / "Thumbs.db").write_bytes(os.urandom(64))
    assert run_cli(train_folder(tmp_path / "imgs", tmp_path / "r", "data.size=16"), capsys)[0] == 0


# ------------------------------------------------------------------------ images that must be refused

def bomb(path):
    """A PNG declaring 20,000 x 20,000 grey pixels (400 M, over PIL's limit), 400 kB on disk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    w = h = 20000
    raw = zlib.compress(b"".join(b"\0" + bytes(w) for _ in range(h)), 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


BAD_IMAGES = {
    "truncated": lambda p: p.write_bytes(_png_bytes()[:60]),
    "zero-bytes": lambda p: p.write_bytes(b""),
    "random-bytes": lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
    "png-header-only": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n"),
    "text-named-png": lambda p: p.write_text("hello, I am not a picture\n"),
    "decompression-bomb": bomb,
}


def _png_bytes():
    import io

    buf = io.BytesIO()
    Image.fromarray(rgb(0)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("kind", list(BAD_IMAGES))
def test_a_broken_image_is_refused_naming_the_file(tmp_path, capsys, kind):
    save_modes(tmp_path / "imgs", "palette")
    BAD_IMAGES[kind](tmp_path / "imgs" / "bad.png")
    line = refused(train_folder(tmp_path / "imgs", tmp_path / "r", "data.size=16"), capsys, "bad.png",
                   written=[tmp_path / "r"])
    if kind == "decompression-bomb":
        assert "decompression bomb" in line


@pytest.mark.parametrize("case", ["file", "missing", "empty", "sizes-differ"])
def test_a_data_path_that_is_no_image_folder_is_refused(tmp_path, capsys, case):
    path = tmp_path / "imgs"
    culprit = {"file": "is a file", "missing": "does not exist", "empty": "no images", "sizes-differ": "differ in size"}
    if case == "file":
        path.write_text("x")
    elif case == "empty":
        path.mkdir()
    elif case == "sizes-differ":
        save_modes(path, "mixed-sizes")
    refused(train_folder(path, tmp_path / "r"), capsys, culprit[case], written=[tmp_path / "r"])


# ---------------------------------------------------------------------------------- configuration

TOML = {
    "bad-syntax": ("[train\nsteps = 3\n", "not valid TOML"),
    "binary": (None, "not a text file"),
    "unknown-key": ("[train]\nnope = 3\n", "train.nope"),
    "unknown-table": ("[nope]\nx = 1\n", "nope"),
    "wrong-type": ('[train]\nsteps = "ten"\n', "train.steps"),
    "nan-literal": ("[optim]\nlr_g = nan\n", "optim.lr_g"),
    "inf-literal": ("[optim]\nlr_d = inf\n", "optim.lr_d"),
    "value-not-table": ("train = 3\n", "train"),
    "nested-table": ("[train.steps]\nx = 1\n", "train.steps"),
    "array-for-int": ("[train]\nsteps = [1, 2]\n", "train.steps"),
}


@pytest.mark.parametrize("case", list(TOML))
def test_a_bad_config_file_is_refused(tmp_path, capsys, case):
    text, culprit = TOML[case]
    path = tmp_path / "c.toml"
    if text is None:
        path.write_bytes(b"\x00\xff\xfe" + os.urandom(256))
    else:
        path.write_text(text)
    refused(["train", "--config", path, "--out", tmp_path / "r"], capsys, culprit, written=[tmp_path / "r"])


def test_a_missing_config_file_is_refused(tmp_path, capsys):
    refused(["train", "--config", tmp_path / "nope.toml", "--out", tmp_path / "r"], capsys, "nope.toml",
            written=[tmp_path / "r"])


SETS = {
    "negative-steps": ("train.steps=-1", "train.steps"),
    "zero-batch": ("data.batch_size=0", "data.batch_size"),
    "infinite-lr": ("optim.lr_g=inf", "optim.lr_g"),
    "nan-lr": ("optim.lr_d=nan", "optim.lr_d"),
    "negative-lr": ("optim.lr_d=-0.001", "optim.lr_d"),
    "zero-lr": ("optim.lr_g=0", "optim.lr_g"),
    "ema-out-of-range": ("train.ema=1.5", "train.ema"),
    "float-for-int": ("train.steps=2.5", "train.steps"),
    "word-for-bool": ("train.fast=perhaps", "train.fast"),
    "no-equals": ("train.steps", "train.steps"),
    "no-table": ("steps=3", "steps"),
    "negative-max-seconds": ("train.max_seconds=-5", "train.max_seconds"),
    "infinite-steps": ("train.steps=inf", "train.steps"),
    "unknown-choice": ("train.on_nan=ignore", "train.on_nan"),
    "other-recipe-table": ("textcycle.adv=1", "textcycle"),
    "huge-int": ("train.steps=99999999999999999999999999", "train.steps"),
}


@pytest.mark.parametrize("case", list(SETS))
def test_a_bad_value_is_refused(tmp_path, capsys, case):
    value, culprit = SETS[case]
    refused(["train", "--preset", "ring8", "--out", tmp_path / "r", "--set", value], capsys, culprit,
            written=[tmp_path / "r"])


# ------------------------------------------------------------------ files posing as something else

@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ring") / "r"
    args = ["train", "--preset", "ring8", "--out", str(run)]
    for s in QUICK:
        args += ["--set", s]
    assert main(args) == 0
    return run


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("digits") / "r"
    args = ["train", "--preset", "digits", "--out", str(run)]
    for s in QUICK:
        args += ["--set", s]
    assert main(args) == 0
    return run


@pytest.mark.parametrize("name", ["weights.safetensors", "state.safetensors"])
def test_a_pickle_posing_as_a_checkpoint_file_is_never_run(tmp_path, capsys, ring_run, name):
    import shutil

    run = tmp_path / "r"
    shutil.copytree(ring_run, run)
    marker = tmp_path / "PWNED"
    ckpt = checkpoint.latest(run / "checkpoints")
    (ckpt / name).write_bytes(pickle.dumps(Marker(marker)))
    refused(["sample", run, "--n", "4", "--out", tmp_path / "s.npy"], capsys, name, written=[tmp_path / "s.npy"])
    refused(["train", "--out", run, "--resume", "--set", "train.steps=4"], capsys, name)
    refused(["sample", ckpt, "--n", "4", "--out", tmp_path / "s.npy"], capsys, name, written=[tmp_path / "s.npy"])
    assert not marker.exists()


@pytest.mark.parametrize("how", ["raw-pickle", "torch-save"])
def test_a_pickle_posing_as_inception_weights_is_never_run(tmp_path, capsys, digits_run, how):
    marker = tmp_path / "PWNED"
    weights = tmp_path / "pt_inception.pth"
    if how == "raw-pickle":
        weights.write_bytes(pickle.dumps({"fc.weight": Marker(marker)}))
    else:
        torch.save({"fc.weight": Marker(marker)}, weights)
    refused(["eval", digits_run, "--ref", "digits", "--n", "20", "--features", f"inception:{weights}"], capsys,
            "pt_inception.pth")
    assert not marker.exists()


def test_a_pickle_in_a_samples_npy_is_never_run(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    np.save(tmp_path / "s.npy", np.array([Marker(marker), 1], dtype=object), allow_pickle=True)
    refused(["eval", tmp_path / "s.npy", "--ref", "ring8", "--n", "20"], capsys, "s.npy")
    assert not marker.exists()


@pytest.mark.parametrize("case", ["wrong-dimension", "nan", "inf", "one-row", "empty", "not-npy", "3-d"])
def test_bad_points_files_are_refused(tmp_path, capsys, case):
    path = tmp_path / "s.npy"
    arrays = {"wrong-dimension": np.zeros((50, 3), np.float32), "one-row": np.zeros((1, 2), np.float32),
              "nan": np.full((50, 2), np.nan, np.float32), "inf": np.full((50, 2), np.inf, np.float32),
              "empty": np.zeros((0, 2), np.float32), "3-d": np.zeros((5, 2, 2), np.float32)}
    if case == "not-npy":
        path.write_bytes(os.urandom(100))
    else:
        np.save(path, arrays[case])
    refused(["eval", path, "--ref", "ring8", "--n", "20"], capsys, "3 dimensions" if case == "wrong-dimension" else "s.npy")


# --------------------------------------------------------------------- values and options per command

def test_command_values_that_make_no_sense_are_refused(tmp_path, capsys, digits_run, ring_run):
    out = tmp_path / "x.png"
    cases = [
        (["sample", digits_run, "--n", "0", "--out", out], "--n"),
        (["sample", digits_run, "--n", "-3", "--out", out], "--n"),
        (["sample", digits_run, "--out", tmp_path / "x.xyz"], "x.xyz"),
        (["sample", digits_run, "--out", tmp_path / "x.txt"], "x.txt"),
        (["sample", digits_run, "--class", "3", "--out", out], "--class"),
        (["sample", digits_run, "--temperature", "0.5", "--out", out], "--temperature"),
        (["sample", digits_run, "--condition", tmp_path / "c.npy", "--out", out], "--condition"),
        (["sample", tmp_path / "nowhere", "--out", out], "nowhere"),
        (["interpolate", digits_run, "--mode", "cubic", "--out", out], "cubic"),
        (["interpolate", digits_run, "--steps", "0", "--out", out], "--steps"),
        (["interpolate", digits_run, "--rows", "0", "--out", out], "--rows"),
        (["interpolate", ring_run, "--out", tmp_path / "x.npy"], "x.npy"),
        (["translate", digits_run, tmp_path, "--out", tmp_path / "t"], "translat"),
        (["eval", digits_run, "--ref", "digits", "--n", "0"], "--n"),
        (["eval", digits_run, "--temperatures", "0.5,1"], "temperature curve"),
        (["eval", digits_run, "--ref", "digits", "--metrics", "nope"], "nope"),
        (["eval", digits_run, "--ref", "no-such-preset"], "no-such-preset"),
        (["train", "--preset", "digits", "--out", tmp_path / "r", "--set", "cyclegan.cycle=3"], "cyclegan"),
    ]
    for args, culprit in cases:
        try:
            refused(args, capsys, culprit, written=[out, tmp_path / "x.xyz", tmp_path / "t", tmp_path / "r"])
        except AssertionError as e:
            raise AssertionError(f"{args}: {e}") from None


def test_a_real_process_gives_one_line_for_a_hostile_file(tmp_path):
    (tmp_path / "c.toml").write_bytes(os.urandom(300))
    p = subprocess.run([sys.executable, "-m", "gankit", "train", "--config", str(tmp_path / "c.toml")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
