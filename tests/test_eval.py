"""`gankit eval` end to end on real digits, noise, a class-dropping "generator" and copies; periodic
evaluation during training; the metric registry. No Inception weights here: the digits classifier is
the feature space."""
import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from gankit.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    # one cache per test session (the digits classifier is trained once), no Inception weights
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch_home"))
    monkeypatch.delenv("GANKIT_INCEPTION_WEIGHTS", raising=False)


def digits_uint8(mask=None):
    d = load_digits()
    imgs, y = d.images, d.target
    if mask is not None:
        imgs, y = imgs[mask(y)], y[mask(y)]
    return (imgs * 255 / 16).round().astype(np.uint8)[..., None], y


def run_eval(capsys, samples, *extra):
    assert main(["eval", str(samples), "--ref", "digits", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_real_digits_score_perfectly(tmp_path, capsys):
    x, _ = digits_uint8()
    np.save(tmp_path / "real.npy", x)
    out = run_eval(capsys, tmp_path / "real.npy")
    assert abs(out["fid"]) < 1e-2   # not exactly 0: the .npy holds the digits rounded to 8-bit pixels
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["coverage"] == 1.0
    assert out["classes_dropped"] == 0 and out["confidence"] > 0.9
    assert any("no Inception weights found: using gankit's digits classifier" in n for n in out["notes"])
    assert any("test accuracy 0.9" in n for n in out["notes"])
    # the reference features now come from the cache
    again = run_eval(capsys, tmp_path / "real.npy", "--metrics", "fid")
    assert any(n.startswith("reference features: cached") for n in again["notes"])
    assert again["fid"] == pytest.approx(out["fid"], abs=1e-9)


def test_noise_fails_clearly(tmp_path, capsys):
    noise = np.random.default_rng(0).integers(0, 256, size=(1000, 8, 8, 1), dtype=np.uint8)
    np.save(tmp_path / "noise.npy", noise)
    out = run_eval(capsys, tmp_path / "noise.npy")
    assert out["fid"] > 50 and out["precision"] < 0.05 and out["density"] < 0.05
    assert any(n.startswith("quality: ") and "do not look like the data" in n for n in out["notes"])


def test_three_classes_are_reported_as_mode_dropping(tmp_path, capsys):
    x, _ = digits_uint8(lambda y: y < 3)
    np.save(tmp_path / "three.npy", x)
    out = run_eval(capsys, tmp_path / "three.npy", "--metrics", "classifier")
    verdict = [n for n in out["notes"] if n.startswith("classes:")][0]
    assert "mode dropping: 7 of 10 classes missing (3, 4, 5, 6, 7, 8, 9)" in verdict
    assert out["classes_dropped"] == 7


def test_copies_are_flagged_as_memorised(tmp_path, capsys):
    x, _ = digits_uint8()
    np.save(tmp_path / "copies.npy", x[:300])
    pic = tmp_path / "nearest.png"
    out = run_eval(capsys, tmp_path / "copies.npy", "--metrics", "memorisation", "--picture", str(pic))
    assert out["memorised_share"] == 1.0 and pic.exists()


def test_toy_samples(tmp_path, capsys):
    import torch

    from gankit.data.toy import ring8

    x, _ = ring8().sample(2500, torch.Generator().manual_seed(0))
    np.save(tmp_path / "ring.npy", x.numpy())
    assert main(["eval", str(tmp_path / "ring.npy"), "--ref", "ring8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["modes"] == 8 and out["high_quality"] > 0.98 and out["js"] < 0.05 and out["w1"] < 0.05


def test_eval_bad_inputs(tmp_path, capsys):
    np.save(tmp_path / "pts.npy", np.zeros((10, 2), np.float32))
    for argv, msg in [
        (["eval", str(tmp_path / "pts.npy"), "--ref", "nope"], "neither a preset nor a folder"),
        (["eval", str(tmp_path / "pts.npy"), "--ref", "digits"], "samples are points but the reference 'digits' holds images"),
        (["eval", str(tmp_path / "pts.npy"), "--ref", "ring8", "--metrics", "fid"], "'fid' does not apply to points"),
        (["eval", str(tmp_path / "missing.npy"), "--ref", "ring8"], "does not exist"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err


def test_periodic_evaluation_keeps_the_best_checkpoint(tmp_path):
    run = tmp_path / "r"
    assert main(["train", "--out", str(run), "--set", "train.steps=20", "--set", "train.progress=false",
                 "--set", "eval.every=10", "--set", "eval.n=300", "--set", "eval.metrics=fid,pr",
                 "--set", "eval.best=fid"]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/fid" in r]
    assert [r["step"] for r in evals] == [10, 20] and all(r["eval/recall"] >= 0 for r in evals)
    best = run / "checkpoints" / "best"
    assert (best / "weights.safetensors").exists()
    best_step = json.loads((best / "state.json").read_text())["step"]
    assert best_step == min(evals, key=lambda r: r["eval/fid"])["step"]


def test_folder_reference_cache_follows_the_folder_contents(tmp_path, capsys):
    from PIL import Image

    x, y = digits_uint8()
    ref = tmp_path / "ref"
    for i in range(200):
        (ref / str(y[i])).mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i, :, :, 0], "L").save(ref / str(y[i]) / f"{i}.png")
    np.save(tmp_path / "s.npy", x[200:400])

    def notes():
        assert main(["eval", str(tmp_path / "s.npy"), "--ref", str(ref), "--metrics", "fid", "--json"]) == 0
        return json.loads(capsys.readouterr().out)["notes"]

    assert any(n.startswith("reference features: computed") for n in notes())
    assert any(n.startswith("reference features: cached") for n in notes())
    Image.fromarray(x[500, :, :, 0], "L").save(ref / str(y[500]) / "new.png")
    assert any(n.startswith("reference features: computed") for n in notes())


def test_periodic_evaluation_on_toy_data_and_a_metric_that_does_not_apply(tmp_path, capsys):
    run = tmp_path / "r"
    common = ["train", "--preset", "ring8", "--set", "train.steps=20", "--set", "train.progress=false",
              "--set", "eval.every=20", "--set", "eval.n=500"]
    assert main(common + ["--out", str(tmp_path / "bad"), "--set", "eval.metrics=fid"]) == 2
    assert "'fid' does not apply to points" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main(common + ["--out", str(run)]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"eval/modes", "eval/high_quality", "eval/w1", "eval/js"} <= set(rows[-1])


# ------------------------------------------------------------------------------ the metric registry

def test_a_new_metric_is_one_registration(tmp_path, capsys):
    """A throw-away metric registered in a scratch copy of the registry is computed by `gankit eval`,
    listed by its --help and accepted by --metrics; when the block ends it is gone again."""
    from gankit.metrics.registry import METRICS, Inputs, lower_is_better, metric, names_for, output_keys

    x, _ = digits_uint8()
    np.save(tmp_path / "s.npy", x[:200])

    def help_text():
        with pytest.raises(SystemExit):
            main(["eval", "--help"])
        return " ".join(capsys.readouterr().out.split())

    with METRICS.temporary():
        @metric("brightness", kinds="images", keys=("brightness", "brightness_gap"), lower="brightness_gap",
                description="the samples' mean pixel value")
        def _brightness(m: Inputs) -> dict[str, float]:
            return {"brightness": float(m.samples.mean()), "brightness_gap": 0.0}

        assert "brightness = the samples' mean pixel value" in help_text()
        assert names_for("images")[-1] == "brightness" and "brightness" not in names_for("points")
        assert {"brightness", "brightness_gap"} <= set(output_keys("images"))
        assert lower_is_better("brightness_gap") and not lower_is_better("brightness")
        out = run_eval(capsys, tmp_path / "s.npy", "--metrics", "brightness")
        assert out["brightness"] == pytest.approx(float((x[:200] / 127.5 - 1).mean()), abs=1e-6)
        assert set(out) == {"n_samples", "n_reference", "brightness", "brightness_gap", "notes"}
    assert "brightness" not in METRICS and "brightness" not in help_text()
    assert main(["eval", str(tmp_path / "s.npy"), "--ref", "digits", "--metrics", "brightness"]) == 2
    assert "'brightness' does not apply to images" in capsys.readouterr().err


def test_the_registry_knows_every_metric_and_key():
    from gankit.metrics.registry import METRICS, lower_is_better, metric, metrics_help, names_for, output_keys

    assert names_for("images") == ["fid", "kid", "is", "pr", "dc", "classifier", "memorisation"]
    assert names_for("points") == ["modes", "w1", "js"]
    assert names_for("translations") == ["translation"] and "translation" not in metrics_help()
    lower = {"fid", "kid", "reverse_kl", "w1", "js", "memorised_share", "classes_dropped", "classes_collapsed",
             "cycle_l1", "self_bleu_2", "self_bleu_3", "self_bleu_4", "self_bleu_5", "top_share", "nll_oracle", "nll_test", "fluency_ppl"}
    assert names_for("tokens") == ["text", "nll_oracle", "nll_test"]
    assert names_for("transfers") == ["transfer"] and lower_is_better("fluency_ppl/AtoB") and not lower_is_better("g2")
    keys = output_keys()
    for key in ("domain_acc", "content_acc", "cycle_l1", "fid", "precision", "class_share/<class>"):
        assert key in keys
    for domain_key in ("domain_acc", "content_acc", "cycle_l1", "fid"):
        assert f"{domain_key}/<domain>" in keys
        assert lower_is_better(f"{domain_key}/B") == lower_is_better(domain_key) == (domain_key in lower)
    assert {k for k in keys if "/" not in k and lower_is_better(k)} == lower
    assert not lower_is_better("class_share/7") and not lower_is_better("n_samples")
    with METRICS.temporary():   # registrations refused
        with pytest.raises(ValueError, match="unknown need"):
            metric("bad", kinds="images", keys="bad", needs="labels", description="-")(lambda m: {})
        with pytest.raises(ValueError, match="registered elsewhere as lower is better"):
            metric("bad", kinds="images", keys="fid", description="-")(lambda m: {})
        with pytest.raises(ValueError, match="registered twice"):
            metric("fid", kinds="images", keys="fid", lower="fid", description="-")(lambda m: {})


# --------------------------------------------------------------------- a feature space that cannot judge

def big_shapes(folder, n=200, seed=0):
    """A folder of large filled shapes (class sub-folders), 32×32 grey: a set whose classifier learns the
    classes but whose features cannot tell a blurred shape from a sharp one."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    kinds = ("square", "circle", "triangle", "cross")
    for i in range(n):
        img = Image.new("L", (32, 32), 0)
        d = ImageDraw.Draw(img)
        r = int(rng.integers(12, 16))
        cx, cy = (int(v) for v in rng.integers(r, 33 - r, 2))
        kind = kinds[i % 4]
        if kind == "square":
            d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=255)
        elif kind == "circle":
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        elif kind == "triangle":
            d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=255)
        else:
            d.rectangle([cx - r, cy - 3, cx + r, cy + 3], fill=255)
            d.rectangle([cx - 3, cy - r, cx + 3, cy + r], fill=255)
        (folder / kind).mkdir(parents=True, exist_ok=True)
        img.save(folder / kind / f"{i:04d}.png")
    return folder


def test_a_weak_feature_space_withholds_its_verdicts_and_blobs_are_no_copies(tmp_path, capsys):
    import torch

    from gankit.metrics.evaluate import blurred, load_reference

    ref = big_shapes(tmp_path / "shapes")
    train = load_reference(str(ref)).x
    blobs = blurred(blurred(train[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))]))
    np.save(tmp_path / "blobs.npy", ((blobs[:, 0, :, :, None].numpy() + 1) * 127.5).round().astype(np.uint8))
    pic = tmp_path / "nearest.png"
    assert main(["eval", str(tmp_path / "blobs.npy"), "--ref", str(ref), "--json", "--picture", str(pic)]) == 0
    out = json.loads(capsys.readouterr().out)
    first = out["notes"][0]
    assert first.startswith("the feature space cannot judge these images (") and "blurred real images score only" in first
    assert "fid, kid, is, pr, dc, classifier withheld" in first
    assert not {"fid", "kid", "precision", "density", "confidence"} & set(out)
    assert out["judge_blur_ratio"] < 10 and out["judge_noise_ratio"] > out["judge_blur_ratio"]
    assert out["memorised_share"] == 0.0 and pic.exists()   # blobs beside shapes are not copies
    # asked for anyway
    assert main(["eval", str(tmp_path / "blobs.npy"), "--ref", str(ref), "--json", "--metrics", "fid",
                 "--trust-features"]) == 0
    trusted = json.loads(capsys.readouterr().out)
    assert "fid" in trusted and trusted["notes"][0].startswith("the feature space is weak (")


def test_the_digits_classifier_can_judge(tmp_path, capsys):
    x, _ = digits_uint8()
    np.save(tmp_path / "real.npy", x[:500])
    out = run_eval(capsys, tmp_path / "real.npy", "--metrics", "fid")
    assert out["judge_blur_ratio"] > 10 and out["judge_noise_ratio"] > 10 and out["judge_accuracy"] > 0.9
    assert "fid" in out and not any("cannot judge" in n for n in out["notes"])
