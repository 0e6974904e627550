"""Image-to-image translation between domains: the rendered printed digits, domain data sets and splits,
class-balanced batches, paired data on disk, the history pool, CycleGAN / StarGAN training with exact
resume, `gankit translate --to/--direction`, and the translation metrics against scikit-learn."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from gankit.cli import main
from gankit.assemble import resolve
from gankit.config import DataConfig
from gankit.data.pairs import PairsOptions
from gankit.data import Batches, load
from gankit.data.printed import render
from gankit.metrics.translation import translation_metrics
from gankit.recipes.translation import ImagePool, Translation
from gankit.training import checkpoint

FAST = ["--set", "train.progress=false", "--set", "train.log_every=5", "--set", "train.sample_every=10",
        "--set", "train.ckpt_every=10", "--set", "model.g_width=8", "--set", "model.d_width=8",
        "--set", "data.batch_size=4", "--set", "train.grid=8"]


# ------------------------------------------------------------------------------------------ data

def test_printed_digits_are_seeded_block_counts():
    x, y = render("printed", 3, seed=5)
    x2, _ = render("printed", 3, seed=5)
    x3, _ = render("printed", 3, seed=6)
    assert x.shape == (30, 8, 8) and x.dtype == np.uint8 and x.max() <= 16
    assert np.array_equal(x, x2) and not np.array_equal(x, x3)
    assert list(y) == [d for d in range(10) for _ in range(3)]
    assert (x.reshape(30, -1).sum(1) > 0).all()   # every digit has ink
    big, _ = render("bold", 2, seed=0, size=16)
    assert big.shape == (20, 16, 16)


def test_domain_sets_and_their_splits():
    train = load(DataConfig(name="digits-printed"))
    test = load(DataConfig(name="digits-printed", split="test"))
    assert train.info.classes == ["handwritten", "printed"] and train.info.content_classes == [str(d) for d in range(10)]
    hand_train, hand_test = int((train.y == 0).sum()), int((test.y == 0).sum())
    assert hand_train + hand_test == 1797 and hand_test == 359
    assert int((train.y == 1).sum()) == 1500 and int((test.y == 1).sum()) == 400
    # no handwritten test image is a training image
    a = train.x[train.y == 0].flatten(1)
    b = test.x[test.y == 0].flatten(1)
    assert not bool((torch.cdist(b, a).min(1).values == 0).any())
    fonts = load(DataConfig(name="digit-fonts"))
    assert fonts.info.classes == ["sans", "bold", "italic", "serif"] and len(fonts) == 6000
    assert fonts.x.min() >= -1 and fonts.x.max() <= 1


def test_class_balanced_batches_are_exactly_resumable():
    source = load(DataConfig(name="digits-printed"))
    b = Batches(source, 5, seed=3, by_class=True)
    first = [next(b) for _ in range(400)]     # more than one epoch of either domain
    for batch in first[:3]:
        assert batch["y"].tolist() == [0] * 5 + [1] * 5
    again = Batches(source, 5, seed=3, by_class=True)
    again.load_state_dict({"batches": 397})
    for k in range(397, 400):
        assert torch.equal(next(again)["x"], first[k]["x"])
    # each domain walks through a permutation of its own images per epoch
    printed = torch.cat([f["x"][5:] for f in first[:300]]).flatten(1)
    assert len(torch.unique(printed, dim=0)) == len(torch.unique(source.x[source.y == 1].flatten(1), dim=0))


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8), "L").save(path)


def test_cyclegan_and_split_folder_layouts(tmp_path):
    rng = np.random.default_rng(0)
    for folder, n in (("trainA", 3), ("trainB", 4), ("testA", 2), ("testB", 1)):
        for i in range(n):
            _png(tmp_path / "cg" / folder / f"{i}.png", rng.integers(0, 255, (8, 8)))
    tr = load(DataConfig(name="folder", path=str(tmp_path / "cg")))
    te = load(DataConfig(name="folder", path=str(tmp_path / "cg"), split="test"))
    assert tr.info.classes == ["A", "B"] and tr.y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert te.y.tolist() == [0, 0, 1]
    for i in range(2):
        for split in ("train", "test"):
            _png(tmp_path / "tt" / split / f"dom{i}" / f"{i}.png", rng.integers(0, 255, (8, 8)))
    assert load(DataConfig(name="folder", path=str(tmp_path / "tt"), split="test")).info.classes == ["dom0", "dom1"]


@pytest.mark.parametrize("cfg, message", [
    (dict(split="test"), "has no splits"),
])
def test_split_errors(tmp_path, capsys, cfg, message):
    _png(tmp_path / "f" / "x.png", np.zeros((8, 8)))
    argv = ["train", "--out", str(tmp_path / "r"), "--set", "data.name=folder", "--set", f"data.path={tmp_path / 'f'}"]
    for k, v in cfg.items():
        argv += ["--set", f"data.{k}={v}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_pairs_side_by_side_and_parallel_folders(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, (3, 8, 8))
    b = 255 - a
    for i in range(3):
        _png(tmp_path / "ab" / "train" / f"{i}.png", np.concatenate([a[i], b[i]], axis=1))
        _png(tmp_path / "par" / "A" / f"{i}.png", a[i])
        _png(tmp_path / "par" / "B" / f"{i}.png", b[i])
    _png(tmp_path / "ab" / "test" / "0.png", np.concatenate([a[0], b[0]], axis=1))
    for root in ("ab", "par"):
        s = load(DataConfig(name="pairs", path=str(tmp_path / root)))
        assert s.info.pair_shape == (1, 8, 8) and len(s) == 3
        assert torch.equal(s.a[:, 0], torch.from_numpy(a).to(torch.uint8))     # A is the condition
        assert torch.equal(s.x[:, 0], torch.from_numpy(b).to(torch.uint8))     # B the target
        batch = next(Batches(s, 2, 0))
        assert set(batch) == {"x", "a", "index"} and batch["a"].dtype == torch.float32
    rev = load(DataConfig(name="pairs", path=str(tmp_path / "par")), PairsOptions(direction="BtoA"))
    assert torch.equal(rev.a[:, 0], torch.from_numpy(b).to(torch.uint8))
    assert len(load(DataConfig(name="pairs", path=str(tmp_path / "ab"), split="test"))) == 1
    _png(tmp_path / "par" / "B" / "extra.png", b[0])
    with pytest.raises(Exception, match="same file names; 'extra.png'"):
        load(DataConfig(name="pairs", path=str(tmp_path / "par")))
    _png(tmp_path / "odd" / "0.png", np.zeros((8, 9)))
    with pytest.raises(Exception, match="even width"):
        load(DataConfig(name="pairs", path=str(tmp_path / "odd")))


def test_pix2pix_from_pairs_on_disk_trains_and_translates(tmp_path):
    rng = np.random.default_rng(2)
    for i in range(6):
        a = rng.integers(0, 255, (8, 8))
        _png(tmp_path / "ab" / f"{i}.png", np.concatenate([a, 255 - a], axis=1))
    run = tmp_path / "r"
    assert main(["train", "--out", str(run), "--set", "data.name=pairs", "--set", f"data.path={tmp_path / 'ab'}",
                 "--set", "train.recipe=paired", "--set", "model.arch=unet", "--set", "train.steps=4", *FAST]) == 0
    cfg = (run / "config.toml").read_text()
    assert "l1 = 100.0" in cfg   # the recipe's default λ
    assert main(["translate", str(run), str(tmp_path / "ab"), "--out", str(tmp_path / "o"), "--degrade"]) == 2
    _png(tmp_path / "cond" / "c.png", rng.integers(0, 255, (8, 8)))
    assert main(["translate", str(run), str(tmp_path / "cond"), "--out", str(tmp_path / "o")]) == 0
    assert Image.open(tmp_path / "o" / "c.png").size == (8, 8)


# ------------------------------------------------------------------------------------- the pool

def test_image_pool_fills_then_swaps_half_the_time():
    pool = ImagePool(4, (1,))
    torch.manual_seed(0)
    first = pool.query(torch.arange(3.0)[:, None])
    assert first.flatten().tolist() == [0, 1, 2] and int(pool.count) == 3
    torch.manual_seed(0)
    shown = pool.query(torch.arange(10.0, 210.0)[:, None]).flatten()
    # the first new image fills the last slot; of the other 199, about half come back from the history
    assert shown[0] == 10 and int(pool.count) == 4
    swapped = (shown[1:] != torch.arange(11.0, 210.0)).float().mean()
    assert 0.35 < swapped < 0.65
    # everything shown is either the new image or one that was stored earlier
    assert set(shown.tolist()) <= set(range(0, 210))
    assert torch.equal(ImagePool(0, (1,)).query(torch.ones(2, 1)), torch.ones(2, 1))


# ---------------------------------------------------------------------------------------- config

def test_recipe_defaults_fill_unset_keys_only(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('[data]\nname = "digits-printed"\n[train]\nrecipe = "cyclegan"\n')
    cfg = resolve(config_file=str(conf))
    assert (cfg.model.arch, cfg.model.z_dim, cfg.loss.name) == ("unet", 0, "lsgan")
    cfg = resolve(config_file=str(conf), overrides=["loss.name=hinge"])
    assert cfg.loss.name == "hinge"
    s = resolve(config_file=str(conf), overrides=["train.recipe=stargan", "data.name=digit-fonts"])
    assert s.table("stargan").cls == 1.0


# -------------------------------------------------------------------------------------- recipes

@pytest.mark.parametrize("preset, extra", [("digits-cyclegan", ["cyclegan.pool=3"]),   # with the semantic term
                                           ("digits-cyclegan", ["cyclegan.pool=3", "cyclegan.semantic=0",
                                                                "cyclegan.identity=0.5"]),   # plain CycleGAN
                                           ("digits-stargan", [])])
def test_translation_recipes_train_and_resume_exactly(tmp_path, monkeypatch, preset, extra):
    monkeypatch.setattr("gankit.recipes.cyclegan.IM_START", 7)   # the F_B phase (cyclegan.semantic_im) from step 7 on
    straight, split = tmp_path / "a", tmp_path / "b"
    base = ["train", "--preset", preset, *FAST, "--set", "optim.decay=none"]  # steps change a decay
    for s in extra:
        base += ["--set", s]
    assert main(base + ["--out", str(straight), "--set", "train.steps=20"]) == 0
    assert main(base + ["--out", str(split), "--set", "train.steps=10"]) == 0
    assert main(["train", "--out", str(split), "--resume", "--set", "train.steps=20"]) == 0
    for name in ("weights", "state"):
        w1 = load_file(str(checkpoint.latest(straight / "checkpoints") / f"{name}.safetensors"))
        w2 = load_file(str(checkpoint.latest(split / "checkpoints") / f"{name}.safetensors"))
        assert w1.keys() == w2.keys()
        assert all(torch.equal(w1[k], w2[k]) for k in w1), name
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(v) for r in rows for v in r.values()) and "loss/cycle" in rows[-1]
    semantic = preset == "digits-cyclegan" and len(extra) == 1   # F_A is trained and saved, the term is logged
    weights = load_file(str(checkpoint.latest(straight / "checkpoints") / "weights.safetensors"))
    assert any(k.startswith("F_A.") for k in weights) == semantic
    assert ({"loss/F_A", "loss/semantic"} <= rows[-1].keys()) == semantic
    assert ("loss/F_A_im" in rows[-1]) == semantic and "loss/F_A_im" not in rows[0]   # rows at steps 5, 10, ...
    w, h = Image.open(straight / "samples" / "final.png").size
    assert w > h   # input | output | reconstruction triples, 4 per row


def test_semantic_term_needs_content_labels_and_is_the_source_label_cross_entropy(tmp_path, capsys):
    """cyclegan.semantic is refused on domains without content labels; on digits-printed the term is
    -mean log softmax(F_A(G_AB(a)))[digit of a], computed here by hand."""
    rng = np.random.default_rng(0)
    for folder in ("trainA", "trainB"):
        for i in range(3):
            _png(tmp_path / "cg" / folder / f"{i}.png", rng.integers(0, 255, (8, 8)))
    argv = ["train", "--out", str(tmp_path / "r"), "--set", "train.recipe=cyclegan", "--set", "model.arch=unet",
            "--set", "data.name=folder", "--set", f"data.path={tmp_path / 'cg'}", "--set", "cyclegan.semantic=1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cyclegan.semantic" in err and "content labels" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()
    source = load(DataConfig(name="digits-printed"))
    batch = next(Batches(source, 4, seed=0, by_class=True))
    assert batch["content"].shape == (8,) and batch["content"].dtype == torch.int64
    from gankit.recipes.cyclegan import CycleGAN

    cfg = resolve("digits-cyclegan", overrides=["cyclegan.semantic=2", "model.g_width=8", "model.d_width=8"])
    recipe = CycleGAN(cfg, source.info, torch.device("cpu"))
    a = batch["x"][batch["y"] == 0]
    fake_b = recipe.G_AB(a, recipe.latents(len(a)))
    logits = recipe.F_A(fake_b).double()
    by_hand = -np.mean([logits[i].exp().div(logits[i].exp().sum()).log()[int(d)].item()
                        for i, d in enumerate(batch["content"][batch["y"] == 0])])
    assert recipe.semantic(batch, fake_b).item() == pytest.approx(by_hand, rel=1e-5)
    assert all(p.requires_grad for p in recipe.F_A.parameters())   # frozen only inside the term


def test_translate_to_a_domain_and_eval(tmp_path, capsys):
    run = tmp_path / "s"
    assert main(["train", "--preset", "digits-stargan", "--out", str(run), *FAST, "--set", "train.steps=3"]) == 0
    imgs = tmp_path / "in"
    for i in range(3):
        _png(imgs / f"{i}.png", np.random.default_rng(i).integers(0, 255, (8, 8)))
    assert main(["translate", str(run), str(imgs), "--out", str(tmp_path / "o"), "--to", "bold"]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["0.png", "1.png", "2.png", "grid.png"]
    assert main(["translate", str(run), str(imgs), "--out", str(tmp_path / "o2"), "--to", "2", "--from", "sans"]) == 0
    capsys.readouterr()
    for argv, message in ((["--to", "gothic"], "--to gothic: not a domain of this run; valid: sans, bold, italic, serif"),
                          ([], "say which with --to"),
                          (["--direction", "AtoB"], "only for two-domain (CycleGAN) runs"),
                          (["--to", "bold", "--degrade"], "--degrade and --mask are for image-conditioned")):
        assert main(["translate", str(run), str(imgs), "--out", str(tmp_path / "o3"), *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    assert "use gankit translate" in capsys.readouterr().err
    assert main(["eval", str(run), "--json"]) == 0
    values = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("domain_acc", "content_acc", "cycle_l1", "fid", "domain_acc/bold", "content_acc/serif"):
        assert np.isfinite(values[key]), key


def test_cyclegan_direction(tmp_path, capsys):
    run = tmp_path / "c"
    assert main(["train", "--preset", "digits-cyclegan", "--out", str(run), *FAST, "--set", "train.steps=2"]) == 0
    _png(tmp_path / "in" / "0.png", np.zeros((8, 8)))
    assert main(["translate", str(run), str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--direction", "BtoA"]) == 0
    assert "to domain 'handwritten'" in capsys.readouterr().out
    assert main(["translate", str(run), str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--direction", "BtoA",
                 "--to", "printed"]) == 2
    assert "contradicts" in capsys.readouterr().err


# -------------------------------------------------------------------------------------- metrics

class FlipTranslator:
    """A translator whose outputs are known: between the domains it mirrors the image left-right, and
    into domain 0 it also caps the pixels at CAP — so a round trip returns min(x, CAP)."""

    domains = ["plain", "mirrored"]
    z_dim = 0
    CAP = 0.5

    def latents(self, n, generator=None):
        return torch.zeros(n, 0)

    def sample(self, z, labels, ema=True):
        x = torch.where((labels.to != labels.source)[:, None, None, None], labels.x.flip(-1), labels.x)
        return torch.where((labels.to == 0)[:, None, None, None], x.clamp(max=self.CAP), x)


def test_translation_metrics_against_sklearn_by_hand():
    from sklearn.svm import SVC

    x, digits = render("printed", 12, seed=0)
    x = torch.from_numpy(x).float()[:, None] / 8 - 1
    digits = torch.from_numpy(digits)
    dom = torch.arange(len(x)) % 2
    x[dom == 1] = x[dom == 1].flip(-1)          # domain 1 = mirrored digits
    tr, te = torch.arange(len(x)) % 3 != 0, torch.arange(len(x)) % 3 == 0
    train, test = {"x": x[tr], "y": dom[tr]}, {"x": x[te], "y": dom[te]}
    flip = FlipTranslator()
    out = translation_metrics(lambda x, source, to: flip.sample(None, Translation(x, source, to)), flip.domains,
                              train, test, digits[tr], digits[te])
    flat = lambda v: v.flatten(1).numpy()  # noqa: E731
    domain_clf = SVC(C=10.0, random_state=0).fit(flat(train["x"]), train["y"].numpy())
    for t in (0, 1):
        src = test["y"] != t
        fake = FlipTranslator().sample(None, Translation(test["x"][src], test["y"][src], torch.full((int(src.sum()),), t)))
        lost = float((test["x"][src].clamp(max=FlipTranslator.CAP) - test["x"][src]).abs().mean())
        assert out[f"cycle_l1/{FlipTranslator.domains[t]}"] == pytest.approx(lost) and lost > 0
        assert out[f"domain_acc/{FlipTranslator.domains[t]}"] == pytest.approx(float((domain_clf.predict(flat(fake)) == t).mean()))
        mine = train["y"] == t
        content_clf = SVC(C=10.0, random_state=0).fit(flat(train["x"][mine]), digits[tr][mine].numpy())
        expected = float((content_clf.predict(flat(fake)) == digits[te][src].numpy()).mean())
        assert out[f"content_acc/{FlipTranslator.domains[t]}"] == pytest.approx(expected)
    assert out["domain_acc/mirrored"] > 0.7 and out["content_acc/mirrored"] > 0.7   # well above chance (0.5, 0.1)
    assert out["domain_acc"] == pytest.approx((out["domain_acc/plain"] + out["domain_acc/mirrored"]) / 2)


@pytest.mark.parametrize("size, patches", [(8, 4), (16, 4), (64, 36)])
def test_resnet_translator_shapes_and_domain_head(size, patches):
    from gankit.config import ModelConfig
    from gankit.nets import build_translator
    from gankit.nets.resgen import ResnetTranslatorOptions

    G, D = build_translator(ModelConfig(arch="resnet", z_dim=2, g_width=4, d_width=4), (3, size, size),
                            (1, size, size), d_channels=1, d_classes=5, options=ResnetTranslatorOptions(blocks=2))
    y = G(torch.randn(3, 3, size, size), torch.randn(3, 2))
    assert y.shape == (3, 1, size, size) and y.abs().max() <= 1
    logits, classes = D.classify(y)
    assert logits.shape == (3, patches) and classes.shape == (3, 5)
    assert torch.equal(logits, D(y))


def test_periodic_evaluation_of_a_translation_run_keeps_the_best_and_resumes(tmp_path):
    straight, split = tmp_path / "a", tmp_path / "b"
    evals = ["--set", "eval.every=4", "--set", "eval.best=content_acc", "--set", "optim.decay=none"]
    base = ["train", "--preset", "digits-cyclegan", *FAST, *evals]
    assert main(base + ["--out", str(straight), "--set", "train.steps=8"]) == 0
    rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in rows if "eval/content_acc" in r]
    assert [r["step"] for r in scored] == [4, 8]
    assert all(0 <= r["eval/domain_acc/printed"] <= 1 and np.isfinite(r["eval/fid"]) for r in scored)
    assert (straight / "checkpoints" / "best").is_dir()
    assert main(base + ["--out", str(split), "--set", "train.steps=4"]) == 0
    assert main(["train", "--out", str(split), "--resume", "--set", "train.steps=8"]) == 0
    w1 = load_file(str(checkpoint.latest(straight / "checkpoints") / "weights.safetensors"))
    w2 = load_file(str(checkpoint.latest(split / "checkpoints") / "weights.safetensors"))
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    # evaluating does not change the training: the same weights as a run that never evaluates
    quiet = tmp_path / "c"
    assert main(["train", "--preset", "digits-cyclegan", *FAST, "--set", "optim.decay=none", "--out", str(quiet),
                 "--set", "train.steps=8"]) == 0
    w3 = load_file(str(checkpoint.latest(quiet / "checkpoints") / "weights.safetensors"))
    assert all(torch.equal(w1[k], w3[k]) for k in w1)
