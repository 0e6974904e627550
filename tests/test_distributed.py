"""Data-parallel training under torchrun (2 CPU processes, gloo) equals one process on the same global
batch; runs resume across a change of world size; the data shards partition every batch."""
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from gankit import data
from gankit.config import DataConfig
from gankit.errors import ConfigError
from gankit.training import checkpoint, distributed

from test_train import train

SETS = ["train.progress=false", "train.log_every=5", "train.sample_every=10", "train.ckpt_every=10"]


def torchrun(out, *sets, nproc=2, resume=False):
    """``torchrun --standalone --nproc_per_node=nproc -m gankit train --preset digits ...`` in a subprocess."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "gankit", "train", "--preset", "digits", "--out", str(out)]
    for s in SETS + list(sets):
        cmd += ["--set", s]
    if resume:
        cmd.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def train1(out, *sets, resume=False):
    """The one-process run, single-threaded like each torchrun rank (OMP_NUM_THREADS=1): with two threads the
    math library may split a product's sum by how many threads it finds free, so the one-process rounding
    (which Adam can amplify, see below) would change from run to run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(out, *SETS, *sets, resume=resume)
    finally:
        torch.set_num_threads(threads)


def weights(run):
    return load_file(str(checkpoint.latest(run / "checkpoints") / "weights.safetensors"))


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def logged(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_equal_one_and_resume_across_world_sizes(tmp_path):
    """12 steps (log every 3, checkpoint every 6) in one process, in two, and switching between them at step 6.
    (Few steps: Adam turns a rounding-level difference in a gradient that is ~0 — a ReLU at its kink for
    one sample — into a step of up to ~lr, so equality to 1e-5 over long runs is luck, not a property.)"""
    sets = ["train.log_every=3", "train.ckpt_every=6"]
    one, two = tmp_path / "one", tmp_path / "two"
    train1(one, *sets, "train.steps=12")
    p = torchrun(two, *sets, "train.steps=6")
    torchrun(two, *sets, "train.steps=12", resume=True)
    assert max_diff(weights(one), weights(two)) < 1e-5
    # rank 0 alone writes: one log line per logged step, one "done"
    rows = logged(two)
    assert [r["step"] for r in rows] == [3, 6, 9, 12]
    assert p.stderr.count("done: step 6") == 1
    # logged losses are the mean over the ranks' halves: the one-process values of the global batch
    for a, b in zip(logged(one), rows):
        assert a["loss/D"] == pytest.approx(b["loss/D"], abs=1e-5)
        assert a["loss/G"] == pytest.approx(b["loss/G"], abs=1e-5)
    # a checkpoint of two processes continues in one, and one of one process in two
    mixed, back = tmp_path / "mixed", tmp_path / "back"
    torchrun(mixed, *sets, "train.steps=6")
    train1(mixed, *sets, "train.steps=12", resume=True)
    train1(back, *sets, "train.steps=6")
    torchrun(back, *sets, "train.steps=12", resume=True)
    assert max_diff(weights(one), weights(mixed)) < 1e-5
    assert max_diff(weights(one), weights(back)) < 1e-5


def test_sync_batchnorm_uses_the_global_batch(tmp_path):
    """DCGAN's generator has BatchNorm: with train.sync_bn, two processes match one (weights and running
    statistics); without it each rank normalises its half, and the runs part."""
    net = ["model.arch=dcgan", "model.g_width=16", "model.d_width=16", "train.steps=6"]
    one, synced, local = tmp_path / "one", tmp_path / "synced", tmp_path / "local"
    train1(one, *net)
    torchrun(synced, *net, "train.sync_bn=true")
    torchrun(local, *net)
    w1 = weights(one)
    assert any("running_var" in k for k in w1)
    assert max_diff(w1, weights(synced)) < 1e-5
    assert max_diff(w1, weights(local)) > 1e-3


def test_shards_partition_every_global_batch():
    source = data.load(DataConfig(name="digits-printed"))
    for by_class in (False, True):
        full = data.Batches(source, 8, seed=3, by_class=by_class)
        parts = [data.Batches(source, 8, seed=3, by_class=by_class, shard=(r, 2)) for r in range(2)]
        for _ in range(3):
            whole = next(full)
            halves = [next(p) for p in parts]
            x = torch.cat([h["x"] for h in halves])
            assert len(halves[0]["x"]) == len(whole["x"]) // 2
            # the same samples (per class, when class-balanced: each rank gets half of each class)
            assert sorted(map(tuple, x.flatten(1).tolist())) == sorted(map(tuple, whole["x"].flatten(1).tolist()))
            if by_class:
                assert halves[0]["y"].tolist() == [0] * 4 + [1] * 4
    toy = data.load(DataConfig(name="ring8"))
    whole = next(data.Batches(toy, 6, seed=1))["x"]
    halves = [next(data.Batches(toy, 6, seed=1, shard=(r, 3)))["x"] for r in range(3)]
    assert torch.equal(torch.cat(halves), whole)
    with pytest.raises(ConfigError, match="data.batch_size=5: the global batch must divide among the 2 processes; "
                                          "use a multiple of 2"):
        data.Batches(toy, 5, seed=1, shard=(0, 2))


def test_global_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    bn = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    ref = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    ref.load_state_dict(bn.state_dict())
    weight = bn[1].weight
    distributed.sync_batchnorm(bn, torch.device("cpu"))
    assert isinstance(bn[1], distributed.GlobalBatchNorm)
    assert bn[1].weight is weight and set(bn.state_dict()) == set(ref.state_dict())   # optimisers and checkpoints unchanged
    x = torch.randn(5, 2, 4, 4)
    assert torch.allclose(bn(x), ref(x), atol=1e-6)
    assert torch.allclose(bn[1].running_var, ref[1].running_var)


# ------------------------------------------------------------------------------- evaluation over processes

def test_eval_under_torchrun_shares_out_the_work_and_equals_one_process(tmp_path):
    """`torchrun -m gankit eval RUN --ref digits` on 2 CPU processes: samples and features are computed
    in shares (every other batch) and gathered; the numbers equal one process's, the picture is rank 0's."""
    run = tmp_path / "run"
    train1(run, "train.steps=20")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_HOME": str(tmp_path / "th")}
    env.pop("GANKIT_INCEPTION_WEIGHTS", None)
    args = ["eval", str(run), "--ref", "digits", "--n-samples", "1200", "--json", "--metrics", "fid,kid,pr,classifier"]
    # separate caches: each run trains the digits classifier and computes the reference features itself
    one = subprocess.run([sys.executable, "-m", "gankit", *args], capture_output=True, text=True,
                         env={**env, "GANKIT_CACHE": str(tmp_path / "cache1")}, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    pic = tmp_path / "nearest.png"
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "gankit", *args, "--metrics", "fid,kid,pr,classifier,memorisation", "--picture", str(pic)],
                         capture_output=True, text=True, env={**env, "GANKIT_CACHE": str(tmp_path / "cache2")},
                         timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a = json.loads(one.stdout)
    lines = [line for line in two.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1   # rank 0 alone reports
    b = json.loads(lines[0])
    for key in ("fid", "kid", "precision", "recall", "confidence", "judge_blur_ratio"):
        assert b[key] == a[key], key
    assert "memorised_share" in b and pic.exists()


def test_map_batches_is_the_plain_map_in_one_process():
    from gankit.runtime import map_batches

    assert map_batches(lambda b: b * b, 5) == [0, 1, 4, 9, 16]
    assert map_batches(lambda b: b, 0) == []
