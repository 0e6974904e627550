"""Golden results: the weights and training state after a few steps of every preset and of every
configuration the exact-resume tests use, as SHA-256 hashes recorded in ``golden.json``.

A change that reorganises code (options, recipes, layers) must reproduce them bit for bit, so every
result recorded in the docs stays valid. A change meant to alter what training computes updates the
file on purpose: ``python tests/test_golden.py --write`` (and says so in its commit).

The runs are single-threaded: with two threads the math library may split a sum by how many threads it
finds free, which changes the last bits from run to run.
"""
from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

GOLDEN = Path(__file__).with_name("golden.json")
STEPS = 3
QUIET = ["train.progress=false", "train.log_every=1", "train.sample_every=1000", "train.ckpt_every=1000"]

# name -> (preset, overrides, data the case needs on disk: None | "mnist" | "fashion-mnist" | "cifar10" | "celeba" | "folder")
CASES: dict[str, tuple[str, list[str], str | None]] = {
    # every preset, as shipped
    "preset-digits": ("digits", [], None),
    "preset-digits-cond": ("digits-cond", [], None),
    "preset-digits-inpaint": ("digits-inpaint", [], None),
    "preset-digits-cyclegan": ("digits-cyclegan", [], None),
    "preset-digits-stargan": ("digits-stargan", [], None),
    "preset-gauss1d": ("gauss1d", [], None),
    "preset-ring8": ("ring8", [], None),
    "preset-grid25": ("grid25", [], None),
    "preset-swissroll": ("swissroll", [], None),
    "preset-folder": ("folder", [], "folder"),
    "preset-mnist": ("mnist", [], "mnist"),
    "preset-fashion-mnist": ("fashion-mnist", [], "fashion-mnist"),
    "preset-cifar10": ("cifar10", [], "cifar10"),
    "preset-celeba": ("celeba", ["data.workers=0"], "celeba"),
    "preset-mle": ("mle", ["train.max_seconds=0"], None),
    "preset-seqgan": ("seqgan", ["train.max_seconds=0"], None),
    "preset-gumbel": ("gumbel", ["train.max_seconds=0"], None),
    "preset-glo": ("glo", [], None),
    "preset-gon": ("gon", [], None),
    "preset-vae": ("vae", [], None),
    "resume-gon-plain": ("gon", ["gon.variational=false", "gon.likelihood=gaussian"], None),
    "resume-autoencoder": ("vae", ["vae.variational=false", "model.arch=dcgan", "model.g_width=16", "model.d_width=16"], None),
    # the configurations of the exact-resume tests
    "resume-dcgan": ("digits", ["model.arch=dcgan"], None),
    "resume-ring8-wgan-gp": ("ring8", ["loss.name=wasserstein", "loss.gp=10", "train.d_steps=3", "optim.decay=none"], None),
    "resume-hinge-sn-r1": ("digits", ["loss.name=hinge", "model.spectral_norm=true", "loss.r1=1", "model.d_norm=none"], None),
    "resume-grid25-clip": ("grid25", ["loss.name=minimax", "loss.clip=0.05", "train.ema=0", "optim.decay=none"], None),
    "resume-cgan-mismatch-aux": ("digits-cond", ["cgan.mismatch=0.5", "cgan.aux=1"], None),
    "resume-cgan-dcgan-cbn": ("digits-cond", ["model.arch=dcgan", "cgan.cond_g=cbn", "cgan.cond_d=concat"], None),
    "resume-fresh-z": ("digits", ["gan.reuse_fake=false"], None),
    "resume-ring8-reuse": ("ring8", ["loss.name=wasserstein", "loss.gp=10", "train.d_steps=3", "optim.decay=none",
                                     "gan.reuse_fake=true"], None),
    "resume-cyclegan-pool": ("digits-cyclegan", ["cyclegan.pool=3", "optim.decay=none"], None),
    "resume-cyclegan-plain": ("digits-cyclegan", ["cyclegan.pool=3", "optim.decay=none", "cyclegan.semantic=0",
                                                  "cyclegan.identity=0.5"], None),
    "resume-stargan": ("digits-stargan", ["optim.decay=none"], None),
    "resume-ada": ("digits", ["augment.method=ada", "augment.ada_kimg=1", "augment.ada_p=0.3", "augment.ada_interval=1"],
                   None),
    "resume-tricks-dcgan": ("digits", ["model.arch=dcgan", "augment.method=diffaugment", "augment.noise=0.2",
                                       "augment.noise_steps=30", "loss.smooth=0.1", "loss.feature_matching=1",
                                       "loss.ortho=1e-4", "model.mbstd=4"], None),
    "resume-cgan-ada-fm": ("digits-cond", ["augment.method=ada", "augment.ada_kimg=1", "augment.ada_p=0.3",
                                           "loss.feature_matching=0.5"], None),
    "resume-paired-ada": ("digits-inpaint", ["augment.method=ada", "augment.ada_kimg=1", "augment.ada_p=0.5",
                                             "train.grid=8"], None),
    "resume-paired-inpaint": ("digits-inpaint", ["train.grid=8"], None),
    "resume-lr-decay": ("digits", ["optim.decay=cosine", "optim.decay_start=0.3", "train.steps=6"], None),
    "resume-fast-dcgan": ("digits", ["model.arch=dcgan", "model.g_width=16", "model.d_width=16", "train.fast=true"], None),
    "resume-fast-grid25": ("grid25", ["train.fast=true"], None),
    "resume-pack": ("grid25", ["gan.pack=4", "optim.decay=none"], None),
    "resume-seqgan-stages": ("seqgan", ["train.max_seconds=0", "seqgan.pretrain=1", "seqgan.d_pretrain=1",
                                        "seqgan.rollouts=2", "data.batch_size=8", "train.d_steps=2"], None),
    "resume-gumbel-stages": ("gumbel", ["train.max_seconds=0", "gumbel.pretrain=1", "data.batch_size=8",
                                        "train.d_steps=2"], None),
    "preset-textcycle": ("textcycle", ["data.name=text-pairs", "train.max_seconds=0", "data.batch_size=8"],
                         "text-pairs"),
    "resume-textcycle-stages": ("textcycle", ["data.name=text-pairs", "train.max_seconds=0", "data.batch_size=8",
                                              "textcycle.pretrain=1", "textcycle.d_pretrain=1", "model.g_width=32",
                                              "textcycle.adversarial=reinforce"], "text-pairs"),
}


# ----------------------------------------------------------------------------------- data on disk

def _write_idx(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack(">i", 2051 if array.ndim == 3 else 2049))
        f.write(struct.pack(f">{array.ndim}i", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def write_data(kind: str | None, root: Path) -> list[str]:
    """Make the files a case's data set reads; the overrides that point the run at them."""
    rng = np.random.default_rng(0)
    if kind is None:
        return []
    if kind in ("mnist", "fashion-mnist"):
        raw = root / ("MNIST" if kind == "mnist" else "FashionMNIST") / "raw"
        raw.mkdir(parents=True)
        images, labels = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), rng.integers(0, 10, 40, dtype=np.uint8)
        for split, part in (("train", slice(None)), ("t10k", slice(0, 5))):
            _write_idx(raw / f"{split}-images-idx3-ubyte", images[part])
            _write_idx(raw / f"{split}-labels-idx1-ubyte", labels[part])
    elif kind == "cifar10":
        folder = root / "cifar-10-batches-bin"
        folder.mkdir(parents=True)
        for i in range(1, 6):
            rec = rng.integers(0, 256, (8, 3073), dtype=np.uint8)
            rec[:, 0] = rng.integers(0, 10, 8)
            rec.tofile(folder / f"data_batch_{i}.bin")
        names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    elif kind == "celeba":
        images = root / "celeba" / "img_align_celeba"
        images.mkdir(parents=True)
        rows = []
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (80, 70, 3), dtype=np.uint8), "RGB").save(images / f"{i + 1:06d}.jpg")
            rows.append(f"{i + 1:06d}.jpg " + " ".join("1" if (i + j) % 3 == 0 else "-1" for j in range(40)))
        names = " ".join(f"Attr_{j}" for j in range(40))
        (root / "celeba" / "list_attr_celeba.txt").write_text(f"12\n{names} \n" + "\n".join(rows) + "\n")
    elif kind == "folder":
        for k, name in enumerate(("a", "b", "c")):
            (root / name).mkdir(parents=True)
            for i in range(20):
                img = (rng.random((28, 28)) * 40).astype(np.uint8)
                img[k * 9:(k + 1) * 9] = 220
                Image.fromarray(img, "L").save(root / name / f"{i:03d}.png")
    elif kind == "text-pairs":
        root.mkdir(parents=True)
        words = [f"w{i}" for i in range(30)]
        for name, n in (("trainA", 24), ("trainB", 20), ("testA", 4), ("testB", 4)):
            lines = [" ".join(rng.choice(words[:20] if "A" in name else words[10:], int(rng.integers(2, 9))))
                     for _ in range(n)]
            (root / f"{name}.txt").write_text("\n".join(lines) + "\n")
    else:
        raise ValueError(kind)
    return [f"data.path={root}"]


# ------------------------------------------------------------------------------------ the hashes

def checkpoint_hash(ckpt: Path) -> str:
    """SHA-256 of every tensor of weights.safetensors and state.safetensors (by name, in name order) and
    of the step and data position of state.json."""
    h = hashlib.sha256()
    for name in ("weights", "state"):
        tensors = load_file(str(ckpt / f"{name}.safetensors"))
        for key in sorted(tensors):
            t = tensors[key].contiguous()
            h.update(f"{name}:{key}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    meta = json.loads((ckpt / "state.json").read_text())
    h.update(json.dumps({"step": meta["step"], "data": meta["data"]}, sort_keys=True).encode())
    return h.hexdigest()


def run_case(name: str, tmp: Path) -> str:
    from gankit.cli import main
    from gankit.training import checkpoint

    preset, sets, kind = CASES[name]
    sets = write_data(kind, tmp / "data") + QUIET + [f"train.steps={STEPS}"] + sets
    argv = ["train", "--preset", preset, "--out", str(tmp / "run")]
    for s in sets:
        argv += ["--set", s]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    return checkpoint_hash(checkpoint.latest(tmp / "run" / "checkpoints"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for the cases (the oracle is made once), never the user's."""
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_reproduces_the_golden_results(tmp_path, name, monkeypatch, cache):
    monkeypatch.setenv("GANKIT_CACHE", str(cache))
    golden = json.loads(GOLDEN.read_text())
    assert name in golden, f"no golden hash for '{name}': python tests/test_golden.py --write"
    assert run_case(name, tmp_path) == golden[name]


if __name__ == "__main__":   # python tests/test_golden.py --write [NAME ...]: record the hashes anew
    import tempfile

    if "--write" not in sys.argv:
        sys.exit("usage: python tests/test_golden.py --write [NAME ...]")
    names = [a for a in sys.argv[1:] if a != "--write"] or sorted(CASES)
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    for case in names:
        with tempfile.TemporaryDirectory() as d:
            golden[case] = run_case(case, Path(d))
        print(case, golden[case], flush=True)
    GOLDEN.write_text(json.dumps(dict(sorted(golden.items())), indent=1) + "\n")
