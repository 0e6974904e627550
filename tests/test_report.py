"""`gankit report`: the smoothing against hand computations and its closed form, metrics.jsonl read as a
running run leaves it, and the report of each kind of run (what it holds, drawn from the run's own files)."""
import html
import json
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from gankit.cli import main
from gankit.report import curve_groups, read_metrics, smooth


def test_smoothing_by_hand_and_in_closed_form():
    # w = 0.5 on 1, 2, 3: m = 0.5, 1.25, 2.125; debiased by 1 - 0.5^n = 0.5, 0.75, 0.875
    assert np.allclose(smooth(np.array([1.0, 2.0, 3.0]), 0.5), [1.0, 1.25 / 0.75, 2.125 / 0.875])
    # the debiased moving average is the weighted mean sum_i w^(n-i) (1-w) v_i / (1 - w^n)
    v = np.random.default_rng(0).normal(size=40)
    w = 0.9
    closed = [sum(w ** (n - i) * (1 - w) * v[i - 1] for i in range(1, n + 1)) / (1 - w ** n) for n in range(1, 41)]
    assert np.allclose(smooth(v, w), closed)
    assert np.allclose(smooth(v, 0.0), v)
    # a non-finite value is carried over, the average goes on over the finite ones
    s = smooth(np.array([1.0, np.nan, 3.0]), 0.5)
    assert s[0] == 1.0 and np.isnan(s[1]) and np.isclose(s[2], (0.25 + 1.5) / 0.75)


def test_metrics_lines_being_written_are_skipped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 2, "loss/D": 1.0}\n{"step": 4, "loss/D": 0.5}\n{"step": 6, "loss/D')
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == [2, 4]
    assert read_metrics(tmp_path / "none.jsonl") == []


def test_curves_are_grouped_and_a_critic_gets_its_wasserstein_estimate():
    rows = [{"step": 1, "loss/D": 1.0, "loss/G": 2.0, "D/real": 3.0, "D/fake": 1.0, "penalty/gp": 0.1,
             "eval/fid": 10.0, "eval/kid": 0.1, "eval/n_samples": 200, "lr/G": 1e-3}]
    groups = dict(curve_groups(rows, "wasserstein"))
    assert groups["Losses"] == ["loss/D", "loss/G"] and groups["Penalties"] == ["penalty/gp"]
    assert groups["Wasserstein estimate E D(real) − E D(fake)"] == ["D/real - D/fake"]
    assert groups["Evaluation: fid"] == ["eval/fid"] and "Evaluation: n_samples" not in groups
    assert "Wasserstein estimate E D(real) − E D(fake)" not in dict(curve_groups(rows, "nonsaturating"))


def _frames(page: str) -> list[dict]:
    return json.loads(re.search(r'<script id="frames" type="application/json">(.*?)</script>', page, re.S)
                      .group(1).replace("<\\/", "</"))


@pytest.mark.parametrize("name", ["digits", "cond", "ring", "inpaint", "stargan", "mle", "textcycle"])
def test_the_report_of_each_kind_of_run(share_runs, name, capsys):
    run = share_runs[name]
    assert main(["report", str(run)]) == 0
    out = run / "report.html"
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import""", page)   # nothing fetched
    assert page.count("<svg") >= 2 and "Losses" in page          # the curves, drawn inline
    assert (run / "config.toml").read_text() in html.unescape(page)   # the resolved config
    frames = _frames(page)
    written = sorted(p for p in (run / "samples").iterdir() if p.stem.startswith("step_"))
    assert [f["label"] for f in frames] == [f"step {int(p.stem[5:])}" for p in written] + ["final"]
    if name in ("mle", "textcycle"):   # sentences over training
        assert frames[-1]["lines"] == (run / "samples" / "final.txt").read_text().splitlines()[:16]
    else:   # the grids themselves, embedded
        import base64

        assert base64.b64decode(frames[-1]["src"].split(",", 1)[1]) == (run / "samples" / "final.png").read_bytes()
    assert ("Nearest training images" in page) == (name in ("digits", "cond"))
    assert ("Class × sample" in page) == (name == "cond")
    assert ("Wasserstein estimate" in page) == (name == "ring")
    if name == "ring":   # evaluation over time and the best checkpoint
        best = json.loads((run / "checkpoints" / "best" / "state.json").read_text())
        assert f"step {best['step']} (w1 = " in page and "Evaluation: w1" in page
    if name == "stargan":
        assert "input | output | reconstruction" in page
    assert {"digits": "digits: 1,797 grey images of 8x8, 10 classes", "ring": "ring8: endless points in 2 dimensions",
            "mle": "oracle: 10,000 sequences of up to 21 tokens, vocabulary 5,003"}.get(name, "") in page


def test_a_report_of_a_run_still_training_and_of_no_run(tmp_path, capsys):
    run = tmp_path / "live"
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "train", "--out", str(run), "--set", "train.steps=100000",
                             "--set", "train.progress=false", "--set", "train.log_every=5", "--set", "train.sample_every=10",
                             "--set", "train.ckpt_every=10"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not list(run.glob("samples/step_*.png")):
            assert time.time() < deadline and proc.poll() is None, "no sample grid written"
            time.sleep(0.2)
        assert proc.poll() is None, "the run stopped"
        assert main(["report", str(run), "--no-nearest"]) == 0
        page = (run / "report.html").read_text()
        assert "Losses" in page and _frames(page)
    finally:
        proc.terminate()
        proc.wait(30)
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a gankit run directory" in err and err.count("\n") == 1
    assert not (tmp_path / "report.html").exists()


def test_tensorboard_holds_the_sample_grids_beside_the_scalars(share_runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for name, kind in (("digits", "images"), ("mle", "tensors")):
        acc = EventAccumulator(str(share_runs[name] / "tb"), size_guidance={"images": 0, "tensors": 0})
        acc.Reload()
        written = sorted(int(p.stem[5:]) for p in (share_runs[name] / "samples").glob("step_*"))
        if kind == "images":
            events = acc.Images("samples")
            assert [e.step for e in events] == written
            from PIL import Image
            import io

            png = Image.open(io.BytesIO(events[-1].encoded_image_string))
            grid = Image.open(share_runs[name] / "samples" / f"step_{written[-1]:07d}.png").convert("RGB")
            assert np.array_equal(np.asarray(png.convert("RGB")), np.asarray(grid))
        else:
            events = acc.Tensors("samples/text_summary")
            assert [e.step for e in events] == written
            text = events[-1].tensor_proto.string_val[0].decode()
            first = (share_runs[name] / "samples" / f"step_{written[-1]:07d}.txt").read_text().splitlines()[0]
            assert first in text
        assert "loss/G" in acc.Tags()["scalars"] or "loss/NLL" in acc.Tags()["scalars"]


def test_toy_sample_plots_mark_the_modes(tmp_path):
    from PIL import Image

    from gankit.images import save_points_plot

    pts = torch.zeros(10, 2)
    save_points_plot(pts, tmp_path / "a.png")
    save_points_plot(pts, tmp_path / "b.png", modes=torch.tensor([[0.5, 0.5], [-0.5, -0.5]]))
    a, b = (np.asarray(Image.open(tmp_path / f).convert("L")) for f in ("a.png", "b.png"))
    assert (b < 60).sum() > (a < 60).sum()   # black crosses (and a legend entry) drawn
