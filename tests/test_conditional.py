"""Conditional GANs: the conditional layers against hand computations, every architecture × mode, the
recipe's losses, sampling by class, and the errors users can cause."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gankit import nets
from gankit.cli import main
from gankit.assemble import resolve
from gankit.config import ModelConfig
from gankit.nets.mlp import MLPOptions
from gankit.data import load
from gankit.nets.conditional import CondBatchNorm
from gankit.objectives import aux_class_loss
from gankit.recipes.conditional import ConditionalGAN

FAST = ["--set", "train.progress=false", "--set", "train.log_every=5", "--set", "train.sample_every=10",
        "--set", "train.ckpt_every=10"]


@pytest.mark.parametrize("arch, shape", [("mlp", (2,)), ("mlp", (1, 8, 8)), ("dcgan", (1, 8, 8)),
                                         ("dcgan", (3, 28, 28)), ("resnet", (3, 16, 16))])
@pytest.mark.parametrize("cond_g", ["concat", "cbn"])
@pytest.mark.parametrize("cond_d, aux", [("concat", False), ("projection", False), ("none", True), ("projection", True)])
def test_every_architecture_takes_a_condition(arch, shape, cond_g, cond_d, aux):
    torch.manual_seed(0)
    m = ModelConfig(arch=arch, z_dim=8, g_width=8, d_width=8, d_norm="layer", spectral_norm=cond_d == "projection")
    G, D = nets.build(m, shape, nets.Wiring(cond_dim=5, cond_g=cond_g, cond_d=cond_d, aux=aux),
                      MLPOptions(depth=2) if arch == "mlp" else None)
    z, c = torch.randn(4, 8), F.one_hot(torch.tensor([0, 1, 2, 4]), 5).float()
    x = G(z, c)
    assert x.shape == (4, *shape)
    assert D(x, c).shape == (4,)
    if aux:
        logit, a = D(x, c, with_aux=True)
        assert logit.shape == (4,) and a.shape == (4, 5)
    # the condition matters: another class gives other samples and other scores
    c2 = F.one_hot(torch.tensor([3, 3, 3, 3]), 5).float()
    with torch.no_grad():  # conditional BN starts as plain BN (zero weights): give it class biases
        for mod in G.modules():
            if isinstance(mod, CondBatchNorm):
                nn.init.normal_(mod.bias.weight)
    G.eval()
    assert not torch.allclose(G(z, c), G(z, c2))
    if cond_d != "none":
        assert not torch.allclose(D(x, c), D(x, c2))


def test_conditional_batchnorm_is_a_per_class_affine_map():
    torch.manual_seed(0)
    cbn = CondBatchNorm(nn.BatchNorm2d(3), cond_dim=4)
    with torch.no_grad():
        cbn.gain.weight.normal_()
        cbn.bias.weight.normal_()
    x, y = torch.randn(6, 3, 5, 5), torch.tensor([0, 1, 2, 3, 0, 1])
    cbn.c = F.one_hot(y, 4).float()
    out = cbn(x)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    xhat = (x - mean) / torch.sqrt(var + 1e-5)
    gamma = 1 + cbn.gain.weight.T[y]          # (6, 3): the row of class y
    beta = cbn.bias.weight.T[y]
    assert torch.allclose(out, xhat * gamma[:, :, None, None] + beta[:, :, None, None], atol=1e-5)


def test_projection_discriminator_adds_the_inner_product_with_the_class_embedding():
    torch.manual_seed(0)
    m = ModelConfig(arch="mlp", z_dim=4, g_width=8, d_width=6)
    _, D = nets.build(m, (3,), nets.Wiring(cond_dim=4, cond_d="projection"), MLPOptions(depth=1))
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 1])
    phi = D.inner.features(x)
    expected = D.inner.head(phi)[:, 0] + (D.embed.weight.T[y] * phi).sum(1)
    assert torch.allclose(D(x, F.one_hot(y, 4).float()), expected, atol=1e-6)


def test_concatenating_discriminator_sees_the_condition_as_constant_channels():
    torch.manual_seed(0)
    m = ModelConfig(arch="dcgan", z_dim=4, g_width=4, d_width=4, d_norm="none")
    _, D = nets.build(m, (1, 8, 8), nets.Wiring(cond_dim=3, cond_d="concat"))
    x, c = torch.randn(2, 1, 8, 8), torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 1.0]])
    stacked = torch.cat([x, c[:, :, None, None].expand(2, 3, 8, 8)], dim=1)
    assert torch.allclose(D(x, c), D.inner(stacked), atol=1e-6)


def test_aux_class_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 2])
    expected = -(np.log(np.exp(2) / (np.exp(2) + 1 + np.exp(-1))) + np.log(1 / (2 + np.e))) / 2
    assert abs(aux_class_loss(logits, y).item() - expected) < 1e-6
    t = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    sig = 1 / (1 + np.exp(-logits.numpy()))
    bce = -(t.numpy() * np.log(sig) + (1 - t.numpy()) * np.log(1 - sig)).mean()
    assert abs(aux_class_loss(logits, t).item() - bce) < 1e-6


def test_mismatched_classes_are_always_wrong_and_cover_the_others():
    torch.manual_seed(0)
    cfg = resolve("digits-cond")
    recipe = ConditionalGAN(cfg, load(cfg.data).info, torch.device("cpu"))
    y = torch.arange(10).repeat(200)
    wrong = recipe.mismatched(y)
    assert not (wrong == y).any()
    assert {(a, b) for a, b in zip(y.tolist(), wrong.tolist())} == {(a, b) for a in range(10) for b in range(10) if a != b}
    v = torch.randn(6, 4)
    assert torch.equal(recipe.mismatched(v), v.roll(1, 0))


@pytest.mark.parametrize("sets", [[], ["cgan.mismatch=0.5"], ["cgan.aux=1", "cgan.cond_d=none"],
                                  ["model.arch=dcgan", "cgan.cond_g=cbn", "cgan.cond_d=concat", "loss.gp=1"]])
def test_conditional_steps_train_with_finite_losses(tmp_path, sets):
    argv = ["train", "--preset", "digits-cond", "--out", str(tmp_path / "r"), "--set", "train.steps=10", *FAST]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(v) for r in rows for v in r.values())
    if "cgan.mismatch=0.5" in sets:
        assert "D/mismatched" in rows[-1]
    if "cgan.aux=1" in sets:
        assert "loss/D_aux" in rows[-1] and "loss/G_aux" in rows[-1]


def test_sample_by_class_and_the_default_class_grid(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "--preset", "digits-cond", "--out", str(run), "--set", "train.steps=10", "--set", "train.grid=30", *FAST]) == 0
    from PIL import Image
    w, h = Image.open(run / "samples" / "final.png").size
    assert w < h   # 30 samples of 10 classes: 10 rows of 3
    assert main(["sample", str(run), "--class", "7", "--n", "12", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape[0] == 12
    assert (np.load(tmp_path / "s.labels.npy") == 7).all()
    assert main(["sample", str(run), "--out", str(tmp_path / "g.npy")]) == 0      # 10 per class, class-major
    labels = np.load(tmp_path / "g.labels.npy")
    assert labels.tolist() == [k for k in range(10) for _ in range(10)]
    # the class decides the sample: the same latents with two classes differ
    from gankit.run import draw, open_run
    loaded = open_run(run)
    a = draw(loaded, 8, seed=1, labels=torch.full((8,), 1))
    b = draw(loaded, 8, seed=1, labels=torch.full((8,), 2))
    assert not torch.equal(a, b)


def test_user_errors_of_conditional_runs(tmp_path, capsys):
    run = tmp_path / "u"
    assert main(["train", "--preset", "ring8", "--out", str(run), "--set", "train.steps=2", *FAST]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--class", "3", "--out", str(tmp_path / "x.npy")]) == 2
    assert "not class-conditional" in capsys.readouterr().err
    for sets, message in [(["data.name=swissroll", "data.batch_size=64"], "has no labels"),
                          (["cgan.cond_g=film"], "cgan.cond_g: unknown value 'film'; valid: concat, cbn"),
                          (["cgan.cond_d=acgan"], "cgan.cond_d: unknown value 'acgan'; valid: concat, projection, none"),
                          (["cgan.mismatch=1.5"], "cgan.mismatch: must be in [0, 1]")]:
        out = tmp_path / "bad"
        argv = ["train", "--preset", "digits-cond", "--out", str(out), *FAST]
        for s in sets:
            argv += ["--set", s]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not out.exists()


# ------------------------------------------------------------------------ conditions from a file

def _folder_csv(folder, path, header, row):
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png"))
    lines = [header] + [f"{f},{row(i, f)}" for i, f in enumerate(files)]
    path.write_text("\n".join(lines) + "\n")
    return files


def test_csv_class_labels_replace_the_folder_labels(digit_folder, tmp_path):
    from gankit.config import DataConfig
    csv = tmp_path / "labels.csv"
    files = _folder_csv(digit_folder, csv, "file,label", lambda i, f: "odd" if i % 2 else "even")
    src = load(DataConfig(name="folder", path=str(digit_folder), labels=str(csv)))
    assert src.info.classes == ["even", "odd"] and src.info.cond_dim == 0
    assert src.all()["y"].tolist() == [i % 2 for i in range(len(files))]


def test_csv_attributes_and_npy_embeddings(digit_folder, tmp_path):
    from gankit.config import DataConfig
    from gankit.data import Batches
    csv = tmp_path / "attrs.csv"
    files = _folder_csv(digit_folder, csv, "file,bar_a,bar_c", lambda i, f: f"{int(f.startswith('a'))},{int(f.startswith('c'))}")
    src = load(DataConfig(name="folder", path=str(digit_folder), labels=str(csv)))
    assert (src.info.cond_dim, src.info.cond_kind, src.info.classes) == (2, "attributes", [])
    c = src.all()["c"]
    assert c[:, 0].tolist() == [float(f.startswith("a")) for f in files]
    batch = next(Batches(src, 8, seed=0))
    assert batch["c"].shape == (8, 2) and "y" not in batch
    emb = np.random.default_rng(0).normal(size=(len(files), 5)).astype(np.float32)
    np.save(tmp_path / "emb.npy", emb)
    src = load(DataConfig(name="folder", path=str(digit_folder), labels=str(tmp_path / "emb.npy")))
    assert (src.info.cond_dim, src.info.cond_kind) == (5, "embedding")
    assert torch.equal(src.all()["c"], torch.from_numpy(emb))
    # a streamed folder carries the same conditions
    from gankit.data.conditions import with_conditions
    from gankit.data.folder import build_folder
    streamed = with_conditions(build_folder(str(digit_folder), max_bytes=1), str(tmp_path / "emb.npy"))
    b = next(Batches(streamed, 4, seed=0))
    assert b["c"].shape == (4, 5)
    assert torch.equal(b["x"], next(Batches(src, 4, seed=0))["x"]) and torch.equal(b["c"], next(Batches(src, 4, seed=0))["c"])


@pytest.mark.parametrize("content, message", [
    ("file,label\n", "expected a header and rows"),
    ("file,label\nnope.png,1\n", "no image 'nope.png' under data.path"),
    ("file,a,b\nALL,1,x\n", "every value must be a number"),
    ("file,label\nFIRST,1\nFIRST,2\n", "listed twice"),
    ("file,label\nFIRST,1\n", "samples have no row"),
    ("file,label\nFIRST,1,2\n", "3 values, the header has 2"),
])
def test_bad_condition_files_are_one_line_errors(digit_folder, tmp_path, capsys, content, message):
    files = sorted(p.relative_to(digit_folder).as_posix() for p in digit_folder.rglob("*.png"))
    header, row = content.split("\n", 1)
    if row.startswith("ALL"):
        content = header + "\n" + "".join(row.replace("ALL", f) for f in files)
    bad = tmp_path / "bad.csv"
    bad.write_text(content.replace("FIRST", files[0]))
    out = tmp_path / "run"
    assert main(["train", "--preset", "digits-cond", "--out", str(out), "--set", "data.name=folder",
                 "--set", f"data.path={digit_folder}", "--set", f"data.labels={bad}", *FAST]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_wrong_npy_and_toy_data_are_refused(tmp_path, capsys):
    np.save(tmp_path / "e.npy", np.zeros((5, 3)))
    assert main(["train", "--preset", "digits-cond", "--out", str(tmp_path / "r"), "--set", f"data.labels={tmp_path / 'e.npy'}"]) == 2
    assert "expected a numeric array of shape (1797, C)" in capsys.readouterr().err
    assert main(["train", "--preset", "ring8", "--out", str(tmp_path / "r"), "--set", f"data.labels={tmp_path / 'e.npy'}"]) == 2
    assert "endless toy distribution" in capsys.readouterr().err


def test_an_embedding_conditioned_run_trains_matching_aware_and_samples_given_vectors(tmp_path, capsys):
    # digits conditioned on a 4-D embedding of their class (as a text encoder would give)
    from sklearn.datasets import load_digits
    y = load_digits().target
    table = np.random.default_rng(1).normal(size=(10, 4))
    np.save(tmp_path / "emb.npy", table[y] + 0.01 * np.random.default_rng(2).normal(size=(len(y), 4)))
    run = tmp_path / "r"
    assert main(["train", "--preset", "digits-cond", "--out", str(run), "--set", f"data.labels={tmp_path / 'emb.npy'}",
                 "--set", "cgan.mismatch=0.5", "--set", "train.steps=10", "--set", "train.grid=16", *FAST]) == 0
    np.save(tmp_path / "want.npy", table[[3, 5]])
    assert main(["sample", str(run), "--condition", str(tmp_path / "want.npy"), "--n", "6", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape[0] == 6
    capsys.readouterr()
    assert main(["sample", str(run), "--out", str(tmp_path / "t.npy")]) == 2
    assert "give them with --condition FILE.npy" in capsys.readouterr().err
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3)))
    assert main(["sample", str(run), "--condition", str(tmp_path / "wrong.npy"), "--out", str(tmp_path / "t.npy")]) == 2
    assert "expected rows of 4 numbers" in capsys.readouterr().err
    assert main(["train", "--preset", "digits-cond", "--out", str(tmp_path / "a"), "--set", f"data.labels={tmp_path / 'emb.npy'}",
                 "--set", "cgan.aux=1"]) == 2
    assert "not embeddings" in capsys.readouterr().err


# ------------------------------------------------------------------- gan.condition=auto (the folder preset)

def test_the_folder_preset_conditions_on_class_folders_and_trains_plain_folders_unconditionally(digit_folder, tmp_path,
                                                                                                   capsys):
    import shutil
    import tomllib

    from gankit.run import open_run

    small = [*FAST, "--set", "model.g_width=8", "--set", "model.d_width=8", "--set", "train.grid=6"]
    run = tmp_path / "labelled"
    argv = ["train", "--preset", "folder", "--out", str(run), "--set", f"data.path={digit_folder}", *small]
    assert main(argv + ["--set", "train.steps=4"]) == 0
    assert "gan.condition=auto: the data has 3 classes, so this run is train.recipe=cgan" in capsys.readouterr().err
    saved = tomllib.loads((run / "config.toml").read_text())
    assert saved["train"]["recipe"] == "cgan" and "gan" not in saved and saved["cgan"]["reuse_fake"] is True
    assert open_run(run).recipe.conditioning == "class"
    # resumed with the preset named again: the run's data decides alike, so nothing differs
    assert main(argv + ["--set", "train.steps=6", "--resume"]) == 0
    latest = (run / "checkpoints" / "latest").read_text().strip()
    assert json.loads((run / "checkpoints" / latest / "state.json").read_text())["step"] == 6

    plain = tmp_path / "plain"   # the same images without class sub-folders
    plain.mkdir()
    for i, f in enumerate(sorted(digit_folder.rglob("*.png"))):
        shutil.copy(f, plain / f"{i:03d}.png")
    for data, sets in ((plain, []), (digit_folder, ["gan.condition=none"])):
        out = tmp_path / f"gan-{len(sets)}"
        argv = ["train", "--preset", "folder", "--out", str(out), "--set", f"data.path={data}", "--set", "train.steps=2",
                *small, *(a for s in sets for a in ("--set", s))]
        assert main(argv) == 0
        assert "gan.condition=auto" not in capsys.readouterr().err
        assert tomllib.loads((out / "config.toml").read_text())["train"]["recipe"] == "gan"
        assert open_run(out).recipe.conditioning == "none"

    for bad, message in (("gan.pack=2", "gan.pack=2: PacGAN is not combined with gan.condition=auto"),
                         ("sample.method=drs", "sample.method=drs: not combined with gan.condition=auto")):
        assert main(["train", "--preset", "folder", "--out", str(tmp_path / "bad"), "--set",
                     f"data.path={digit_folder}", "--set", bad, *small]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not (tmp_path / "bad").exists()
