"""`gankit export`: a Hub model folder of a run's generator, loaded back (offline, from the folder) to the
same samples and translations; what it keeps and leaves out; the errors users can cause."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import gankit
from gankit.cli import main
from gankit.training import checkpoint


def _export(run, out, capsys):
    assert main(["export", str(run), str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}/")
    return json.loads((out / "config.json").read_text())


def test_a_run_exported_samples_as_the_run_does(share_runs, tmp_path, capsys):
    run, out = share_runs["cond"], tmp_path / "model"
    meta = _export(run, out, capsys)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors", "samples.png"]
    assert meta["library_name"] == "gankit" and meta["recipe"] == "cgan" and meta["nets"] == ["G"] and meta["ema"]
    assert meta["data_info"]["classes"] == [str(i) for i in range(10)] and meta["step"] == 8
    # the generator's moving average, as the run's G_ema, and nothing else (no D, no optimiser state)
    weights = load_file(str(out / "model.safetensors"))
    saved = load_file(str(checkpoint.latest(run / "checkpoints") / "weights.safetensors"))
    assert set(weights) == {k.replace("G_ema.", "G.", 1) for k in saved if k.startswith("G_ema.")}
    assert all(torch.equal(weights[k], saved[k.replace("G.", "G_ema.", 1)]) for k in weights)
    labels = torch.arange(10).repeat(2)
    a = gankit.sample(gankit.load(out), 20, seed=3, labels=labels)
    b = gankit.sample(gankit.load(run), 20, seed=3, labels=labels)
    assert torch.equal(a, b)
    # the CLI takes the folder as it takes a run
    assert main(["sample", str(out), "--class", "4", "--n", "6", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (6, 8, 8, 1)
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: gankit\n") and "pipeline_tag: image-generation" in card
    assert "![samples from the final generator](samples.png)" in card and "gankit.load(" in card
    assert (out / "samples.png").read_bytes() == (run / "samples" / "final.png").read_bytes()


def test_the_card_reports_the_last_evaluation_and_rejection_sampling_keeps_d(share_runs, tmp_path, capsys):
    meta = _export(share_runs["ring"], tmp_path / "ring", capsys)
    rows = [json.loads(line) for line in (share_runs["ring"] / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "eval/w1" in r][-1]
    assert meta["evaluation"]["w1"] == last["eval/w1"] and meta["evaluation"]["step"] == last["step"]
    assert f"| w1 | {last['eval/w1']:.4g} |" in (tmp_path / "ring" / "README.md").read_text()
    # a run that samples by discriminator rejection needs D
    drs = tmp_path / "drs"
    assert main(["train", "--preset", "ring8", "--out", str(drs), "--set", "train.steps=4", "--set",
                 "train.progress=false", "--set", "sample.method=drs"]) == 0
    capsys.readouterr()
    meta = _export(drs, tmp_path / "drs-model", capsys)
    assert meta["nets"] == ["G", "D"]
    a = gankit.sample(gankit.load(tmp_path / "drs-model"), 50, seed=1)
    assert torch.equal(a, gankit.sample(gankit.load(drs), 50, seed=1))


@pytest.mark.parametrize("name, nets", [("stargan", ["G"]), ("inpaint", ["G"]), ("textcycle", ["E", "G_AB", "G_BA"])])
def test_translation_models_translate_as_their_runs(share_runs, tmp_path, capsys, name, nets):
    run, out = share_runs[name], tmp_path / name
    meta = _export(run, out, capsys)
    assert meta["nets"] == nets
    if name == "textcycle":
        lines = ["w1 w2 w3", "w4 w5"]
        assert gankit.translate(gankit.load(out), lines) == gankit.translate(gankit.load(run), lines)
        return
    model = gankit.load(out)
    shape = model.recipe.condition_shape if name == "inpaint" else model.info.shape   # pix2pix: its conditions
    x = torch.rand(5, *shape) * 2 - 1
    kw = {"to": "bold"} if name == "stargan" else {}
    assert torch.equal(gankit.translate(model, x, **kw), gankit.translate(gankit.load(run), x, **kw))
    assert "pipeline_tag: image-to-image" in (out / "README.md").read_text()


def test_export_and_load_errors_are_one_line(share_runs, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "x").write_text("mine")
    for argv, message in [(["export", str(share_runs["digits"]), str(out)], "exists and is not an empty folder"),
                          (["export", str(tmp_path / "nothing"), str(tmp_path / "m")], "does not exist"),
                          (["sample", "someone/no-such-gan", "--n", "2", "--out", str(tmp_path / "s.png")],
                           "the Hugging Face Hub cannot be reached")]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert (out / "x").read_text() == "mine" and not (tmp_path / "m").exists()
    model = tmp_path / "model"
    _export(share_runs["digits"], model, capsys)
    assert main(["export", str(model), str(tmp_path / "again")]) == 2
    assert "already a model folder" in capsys.readouterr().err
    meta = (model / "config.json").read_text()
    for text, message in [('{"library_name": "other"}', "is not a gankit model's"), ("{not json", "not readable JSON"),
                          ('{"library_name": "gankit"}', "lacks config_toml, data_info, nets")]:
        (model / "config.json").write_text(text)
        for argv in (["sample", str(model), "--n", "2", "--out", str(tmp_path / "s.png")],
                     ["eval", str(model), "--ref", "digits"]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert message in err and err.count("\n") == 1, err
    (model / "config.json").write_text(meta)


def test_loading_a_hub_id_offline_says_so_in_one_line(tmp_path):
    code = "import gankit; gankit.load('someone/some-gan')"
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "GankitError: 'someone/some-gan' is no local folder, and the Hugging Face Hub " \
                                  "cannot be reached" in r.stderr


def test_gankit_eval_takes_a_model_folder(share_runs, tmp_path, capsys):
    model = tmp_path / "model"
    _export(share_runs["digits"], model, capsys)
    assert main(["eval", str(model), "--ref", "digits", "--metrics", "memorisation", "--n", "200", "--json"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(["eval", str(share_runs["digits"]), "--ref", "digits", "--metrics", "memorisation", "--n", "200",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == a
