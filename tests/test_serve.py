"""`gankit serve`: the JSON API against the library's own results, the hostile requests (path traversal,
oversized and non-image uploads, bad parameters) refused with a 4xx and one line, nothing written; the real
server on the loopback (default host, a bounded load)."""
import base64
import io
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient

from gankit.images import default_scale, grid_image
from gankit.run import draw, open_run
from gankit.serve import MAX_UPLOAD, build_app, serve_in_thread


def _png(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def _snapshot(folder) -> dict:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def cond_client(share_runs):
    loaded = open_run(share_runs["cond"])
    return loaded, TestClient(build_app(loaded, "cond"))


def test_info_sample_class_and_slider_match_the_library(cond_client):
    loaded, client = cond_client
    info = client.get("/api/info").json()
    assert info["conditioning"] == "class" and info["classes"] == [str(i) for i in range(10)]
    assert info["can"] == {"sample": True, "interpolate": True, "truncation": True, "translate_image": False,
                           "translate_text": False}
    r = client.get("/api/sample", params={"n": 6, "seed": 5, "class": "7"})
    assert r.status_code == 200
    want = draw(loaded, 6, seed=5, labels=torch.full((6,), 7))
    grid = np.asarray(grid_image(want, scale=max(2, default_scale(8))))
    assert np.array_equal(_png(r.json()["image"]), grid)
    # the slider: t = 0 is z_a's sample, t = 1 z_b's
    ends = [_png(client.get("/api/interpolate", params={"seed_a": 1, "seed_b": 2, "t": t, "class": "3"}).json()["image"])
            for t in (0, 1)]
    for seed, got in zip((1, 2), ends):
        z = loaded.recipe.latents(1, generator=torch.Generator().manual_seed(seed))
        x = loaded.recipe.sample(z, torch.tensor([3])).cpu()
        assert np.array_equal(got, np.asarray(grid_image(x, scale=max(2, default_scale(8)))))
    truncated = client.get("/api/sample", params={"n": 4, "truncation": 0.5}).json()["image"]
    want = grid_image(draw(loaded, 4, truncation=0.5), scale=max(2, default_scale(8)))
    assert np.array_equal(_png(truncated), np.asarray(want))


@pytest.mark.parametrize("path, params, status, message", [
    ("/api/sample", {"n": 0}, 400, "n: must be in [1, 64], got 0"),
    ("/api/sample", {"n": "many"}, 400, "n: not an integer: 'many'"),
    ("/api/sample", {"class": "cat"}, 400, "class cat: not a class of this run; valid: 0, 1, 2"),
    ("/api/sample", {"truncation": -1}, 400, "truncation: must be in [0.05, 10], got -1"),
    ("/api/interpolate", {"t": 2}, 400, "t: must be in [0, 1], got 2"),
    ("/../../etc/passwd", {}, 404, "no such path"),
    ("/api/..%2F..%2Fconfig.toml", {}, 404, "no such path"),
    ("/%2e%2e/%2e%2e/etc/passwd", {}, 404, "no such path"),
    ("/checkpoints/latest", {}, 404, "no such path"),
])
def test_bad_requests_get_a_4xx_and_one_line(cond_client, path, params, status, message):
    r = cond_client[1].get(path, params=params)
    assert r.status_code == status and message in r.json()["error"] and "\n" not in r.json()["error"]


def test_uploads_are_bounded_checked_and_never_written(share_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = share_runs["stargan"]
    before, here = _snapshot(run), _snapshot(tmp_path)
    loaded = open_run(run)
    client = TestClient(build_app(loaded, "stargan"))
    img = Image.fromarray((np.random.default_rng(0).random((20, 24)) * 255).astype(np.uint8), "L")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    r = client.post("/api/translate", params={"to": "bold"}, content=buf.getvalue(), headers={"content-type": "image/png"})
    assert r.status_code == 200
    out = _png(r.json()["image"])
    from gankit.translation import translate_tensor
    from gankit.data.images import read_image

    x = torch.from_numpy(read_image(io.BytesIO(buf.getvalue()), 8, 1)).float().div(127.5).sub(1).unsqueeze(0)
    want = grid_image(torch.cat([x, translate_tensor(loaded, x, to="bold")]), nrow=2, scale=max(2, default_scale(8)))
    assert np.array_equal(out, np.asarray(want))
    cases = [(b"%PDF-1.4 not an image", {}, 415, "not a readable image"),
             (buf.getvalue()[:40], {}, 415, "not a readable image"),
             (b"GIF89a" + bytes(40), {}, 415, "not a readable image"),
             (bytes(MAX_UPLOAD + 1), {}, 413, f"at most {MAX_UPLOAD:,}"),
             (buf.getvalue(), {"to": "comic"}, 400, "comic")]
    for body, params, status, message in cases:
        r = client.post("/api/translate", params={"to": "bold", **params}, content=body)
        assert r.status_code == status and message in r.json()["error"], (status, r.json())
    big = io.BytesIO()   # a small file that decodes to a huge image
    Image.new("L", (5000, 5000)).save(big, format="PNG")
    r = client.post("/api/translate", content=big.getvalue())
    assert r.status_code == 413 and "pixels" in r.json()["error"]

    def chunks():   # no Content-Length: the stream is cut at the limit
        for _ in range(MAX_UPLOAD // 2**20 + 2):
            yield bytes(2**20)
    r = client.post("/api/translate", content=chunks())
    assert r.status_code == 413
    assert client.get("/api/translate").status_code == 405
    assert client.get("/api/sample").status_code == 400   # a translation run does not sample
    assert _snapshot(run) == before and _snapshot(tmp_path) == here


def test_sentences_and_token_runs(share_runs):
    loaded = open_run(share_runs["textcycle"])
    client = TestClient(build_app(loaded, "t"))
    from gankit.text_transfer import translate_lines

    r = client.post("/api/translate", json={"text": "w1 w2 w3", "to": "B"})
    assert r.status_code == 200 and r.json()["text"] == translate_lines(loaded, ["w1 w2 w3"], 1)[0]
    for body, message in [(b"not json", "must be JSON"), (json.dumps({"text": ""}).encode(), "non-empty string"),
                          (json.dumps({"text": "w1", "to": "Z"}).encode(), "Z")]:
        r = client.post("/api/translate", content=body)
        assert r.status_code == 400 and message in r.json()["error"]
    mle = open_run(share_runs["mle"])
    r = TestClient(build_app(mle, "m")).get("/api/sample", params={"n": 3, "seed": 4})
    from gankit.data.text import decode_all

    assert r.json()["lines"] == decode_all(draw(mle, 3, seed=4), mle.info)


def test_the_command_binds_the_loopback_by_default(share_runs):
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "serve", str(share_runs["digits"]), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        m = re.search(r"at http://127\.0\.0\.1:(\d+)/ \(this machine only\)", line)
        assert m, line
        base = f"http://127.0.0.1:{m.group(1)}"
        info = json.loads(urllib.request.urlopen(base + "/api/info", timeout=30).read())
        assert info["recipe"] == "gan" and info["can"]["sample"]
        page = urllib.request.urlopen(base + "/", timeout=30).read().decode()
        assert "<title>gankit serve</title>" in page
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/../config.toml", timeout=30)
        assert e.value.code == 404
    finally:
        proc.terminate()
        proc.wait(30)
    r = subprocess.run([sys.executable, "-m", "gankit", "serve", str(share_runs["digits"]), "--port", "70000"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--port 70000" in r.stderr


def test_a_bounded_load_on_the_loopback_gets_no_errors(share_runs):
    """benchmarks/serve_load.py, smaller: 400 requests, 16 at a time (the 5,000-request figure: BENCHMARKS.md)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("serve_load", Path(__file__).parent.parent / "benchmarks" / "serve_load.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    base, stop = serve_in_thread(open_run(share_runs["digits"]), "digits")
    try:
        result = bench.load_test(base, "/api/sample?n=4&seed=1", 400, 16)
        assert result["errors"] == 0 and result["p99_ms"] >= result["p50_ms"] > 0
    finally:
        stop()


def test_a_pix2pix_run_degrades_the_upload_as_training_did(share_runs):
    loaded = open_run(share_runs["inpaint"])
    client = TestClient(build_app(loaded, "inpaint"))
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(2).random((8, 8)) * 255).astype(np.uint8), "L").save(buf, format="PNG")
    r = client.post("/api/translate", content=buf.getvalue())
    assert r.status_code == 200
    from gankit.data.images import read_image
    from gankit.data.paired import degrade
    from gankit.translation import translate_tensor

    x = torch.from_numpy(read_image(io.BytesIO(buf.getvalue()), 8, 1)).float().div(127.5).sub(1).unsqueeze(0)
    a = degrade(x, "inpaint", torch.Generator().manual_seed(0))
    want = grid_image(torch.cat([loaded.recipe.show_condition(a), translate_tensor(loaded, a), x]), nrow=3,
                      scale=max(2, default_scale(8)))
    assert np.array_equal(_png(r.json()["image"]), np.asarray(want))   # hole | filled | upload
    r = client.post("/api/translate", params={"degrade": "0"}, content=buf.getvalue())
    assert r.status_code == 400 and "carries its hole" in r.json()["error"]
