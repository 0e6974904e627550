"""What a run survives: signals, kills before and during checkpoints, damaged checkpoints, NaN blow-ups."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from gankit.cli import main
from gankit.errors import NonFiniteError
from gankit.training import checkpoint
from gankit.training.loop import Interrupted, Trainer, _StopAtStepBoundary
from gankit.training.stats import Collector, JsonlSink

FAST = ["train.progress=false", "train.log_every=5", "train.sample_every=10", "train.ckpt_every=10",
        "optim.decay=none"]   # runs below resume with a different train.steps, which would move a decay


def argv(out, *sets, preset="ring8", resume=False):
    args = ["train", "--preset", preset, "--out", str(out)]
    for s in FAST + list(sets):
        args += ["--set", s]
    return args + (["--resume"] if resume else [])


def weights(run):
    return load_file(str(checkpoint.latest(run / "checkpoints") / "weights.safetensors"))


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def warnings_in(err):
    checkpoint._warned.clear()   # a warning is said once per process; here every command shares one process
    return [line for line in err.splitlines() if line.startswith("gankit: warning:")]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """ring8, 30 steps uninterrupted: what every recovered run below must equal bit for bit."""
    run = tmp_path_factory.mktemp("straight") / "r"
    assert main(argv(run, "train.steps=30")) == 0
    return weights(run)


# ------------------------------------------------------------------------------------------ signals

def test_first_signal_asks_second_signal_stops_at_once():
    with _StopAtStepBoundary() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.name == "SIGTERM"
        with pytest.raises(Interrupted) as e:
            os.kill(os.getpid(), signal.SIGINT)
    assert e.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGTERM) is not stop._handle   # handlers given back


def test_a_second_signal_exits_at_once_and_leaves_only_whole_checkpoints(tmp_path):
    """Two signals in quick succession to a real training process (the second may land while the step
    finishes or while the checkpoint is written): it exits 128 + a signal without a traceback, and whatever
    checkpoint it leaves is whole and resumes exactly."""
    run, straight_run = tmp_path / "r", tmp_path / "s"
    cmd = [sys.executable, "-m", "gankit"] + argv(run, "train.steps=100000000", "train.ckpt_every=25")
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not checkpoint.has_any(run / "checkpoints"):
        assert time.time() < deadline and p.poll() is None
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGTERM)
    started = time.time()
    _, err = p.communicate(timeout=30)
    assert time.time() - started < 10
    assert p.returncode in (130, 143) and "Traceback" not in err, err
    ckpt = checkpoint.latest(run / "checkpoints")
    assert checkpoint.problem(ckpt) is None
    stopped = checkpoint.read_meta(ckpt)["step"]
    assert main(argv(run, f"train.steps={stopped + 10}", resume=True)) == 0
    assert main(argv(straight_run, f"train.steps={stopped + 10}", "train.ckpt_every=25")) == 0
    assert same(weights(run), weights(straight_run))


# ------------------------------------------------------------------------- kills before a checkpoint

def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_from_step_zero(tmp_path, straight, capsys):
    """What a kill -9 leaves before the first checkpoint — the config, a log with a half-written last line,
    event files, a grid, a checkpoint being written — is cleared; the run then equals an uninterrupted one."""
    run = tmp_path / "r"
    assert main(argv(run, "train.steps=30")) == 0
    (run / "metrics.jsonl").write_text('{"step": 5, "loss/D": 1.0}\n{"step": 10, "lo')
    for d in (run / "checkpoints").glob("step_*"):
        os.rename(d, run / "checkpoints" / f".{d.name}.tmp")   # a save that never reached its rename
    (run / "checkpoints" / "latest").unlink()
    capsys.readouterr()
    assert main(argv(run, "train.steps=30", resume=True)) == 0
    assert "holds no checkpoint yet (stopped before its first): training from step 0" in capsys.readouterr().err
    assert same(weights(run), straight)
    assert not list((run / "checkpoints").glob(".*"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30]


def test_resume_of_a_run_killed_before_it_wrote_anything(tmp_path, straight):
    run = tmp_path / "never"
    assert main(argv(run, "train.steps=30", resume=True)) == 0
    assert same(weights(run), straight)


def test_a_fresh_run_refuses_a_directory_holding_checkpoints_but_clears_a_dead_start(tmp_path, capsys):
    run = tmp_path / "r"
    (run / "checkpoints" / ".step_0000010.tmp").mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"step": 999}\n')
    (run / "config.toml").write_text("[train]\nsteps = 5\n")
    assert main(argv(run, "train.steps=5")) == 0
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [5]
    assert main(argv(run, "train.steps=5")) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_a_folder_that_is_no_run_directory_keeps_its_files(tmp_path):
    """--out pointing at a folder of one's own: gankit adds its files and removes none."""
    out = tmp_path / "mine"
    (out / "samples").mkdir(parents=True)
    (out / "samples" / "holiday.png").write_bytes(b"mine")
    (out / "notes.txt").write_text("mine")
    assert main(argv(out, "train.steps=5")) == 0
    assert (out / "samples" / "holiday.png").read_bytes() == b"mine" and (out / "notes.txt").exists()


def test_a_log_line_cut_by_a_kill_is_dropped_on_resume(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 5, "a": 1}\n{"step": 10, "a": 2}\n{"step": 15, "a"')
    JsonlSink(path, resume_step=10).close()
    assert path.read_text() == '{"step": 5, "a": 1}\n{"step": 10, "a": 2}\n'


# ------------------------------------------------------------------------------ damaged checkpoints

@pytest.fixture
def two_checkpoints(tmp_path):
    """ring8 stopped at step 20 with checkpoints at 10 and 20."""
    run = tmp_path / "r"
    assert main(argv(run, "train.steps=20")) == 0
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_0000010", "step_0000020"]
    return run


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [
    lambda c: truncate(c / "weights.safetensors"),                   # a full disk
    lambda c: flip_a_byte(c / "state.safetensors"),                  # a bad copy
    lambda c: (c / "weights.safetensors").write_bytes(b""),          # zero bytes
    lambda c: (c / "state.json").write_text('{"step": 20, "da'),     # a cut JSON file
    lambda c: (c / "config.toml").unlink(),                          # a missing file
], ids=["truncated", "bit-flip", "zero-bytes", "cut-json", "missing-file"])
def test_a_damaged_latest_checkpoint_is_skipped_with_one_warning(two_checkpoints, tmp_path, damage, capsys,
                                                                  straight):
    run = two_checkpoints
    damage(run / "checkpoints" / "step_0000020")
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "8", "--out", str(tmp_path / "s.npy")]) == 0
    (warning,) = warnings_in(capsys.readouterr().err)
    assert "step_0000020 is unusable" in warning and "using step_0000010" in warning
    assert main(["eval", str(run), "--n", "50", "--metrics", "w1", "--ref", "ring8"]) == 0
    assert len(warnings_in(capsys.readouterr().err)) == 1
    assert main(argv(run, "train.steps=30", resume=True)) == 0   # resumes from step 10 ...
    err = capsys.readouterr().err
    assert len(warnings_in(err)) == 1 and "from step_0000010 (step 10)" in err
    assert same(weights(run), straight)                               # ... and ends where it would have
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_0000020", "step_0000030"]


def test_no_usable_checkpoint_is_refused_in_one_line(two_checkpoints, tmp_path, capsys):
    run = two_checkpoints
    for ckpt in (run / "checkpoints").glob("step_*"):
        truncate(ckpt / "weights.safetensors")
    for args in (["sample", str(run), "--n", "8", "--out", str(tmp_path / "s.npy")],
                 ["eval", str(run), "--n", "50", "--ref", "ring8"],
                 argv(run, "train.steps=30", resume=True),
                 ["sample", str(run / "checkpoints" / "step_0000010"), "--n", "8", "--out", str(tmp_path / "s.npy")]):
        capsys.readouterr()
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "weights.safetensors has" in err and "bytes" in err, err
        assert not (tmp_path / "s.npy").exists()


def test_checkpoints_record_sizes_and_digests_of_their_files(two_checkpoints):
    ckpt = checkpoint.latest(two_checkpoints / "checkpoints")
    files = checkpoint.read_meta(ckpt)["files"]
    assert set(files) == set(checkpoint.FILES)
    for name, entry in files.items():
        assert entry["bytes"] == (ckpt / name).stat().st_size and len(entry["sha256"]) == 64


# -------------------------------------------------------------------------------------- NaN and Inf

def test_a_checkpoint_with_non_finite_weights_is_never_written(tmp_path):
    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.bias[1] = float("inf")
    with pytest.raises(NonFiniteError, match="non-finite weights in D"):
        checkpoint.save(tmp_path / "c", 5, {"G": torch.nn.Linear(2, 2), "D": net}, {}, "", {})
    assert not (tmp_path / "c").exists()


def test_the_collector_names_non_finite_values():
    c = Collector()
    c.add("loss/D", torch.tensor(1.0))
    c.add("loss/G", torch.tensor(2.0))
    assert c.non_finite() == {}
    c.add("loss/G", torch.tensor(float("nan")))
    assert list(c.non_finite()) == ["loss/G"]


def nan_trainer(tmp_path, *sets, when=lambda step: step == 15):
    """A ring8 Trainer whose D outputs NaN while ``when(step)``: a blow-up injected at a known step."""
    from gankit import load_config

    cfg = load_config("ring8", set=FAST + ["train.steps=30", *sets])
    trainer = Trainer(cfg)
    trainer.recipe.nets["D"].register_forward_hook(
        lambda m, i, out: out * float("nan") if when(trainer.step) else None)
    return trainer


def test_a_nan_stops_the_run_naming_loss_and_step_and_keeps_the_last_checkpoint(tmp_path):
    run = tmp_path / "r"
    trainer = nan_trainer(tmp_path)
    with pytest.raises(NonFiniteError) as e:
        trainer.run(run, log=lambda s: None)
    message = str(e.value)
    assert "non-finite gradient of D" in message and "in step 16" in message and "loss/D=nan" in message
    assert "the last good checkpoint is" in message and "step_0000010" in message
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_0000010"]
    assert checkpoint.problem(run / "checkpoints" / "step_0000010") is None


def test_nan_from_the_command_line_exits_2_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    p = subprocess.run([sys.executable, "-m", "gankit"] + argv(tmp_path / "r", "optim.lr_d=1e12", "train.steps=50"),
                       capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    (line,) = [x for x in p.stderr.splitlines() if x.startswith("gankit: error:")]
    assert line == p.stderr.strip().splitlines()[-1]
    assert line.startswith("gankit: error: non-finite") and "in step 1" in line
    assert not (tmp_path / "r").exists()   # nothing good was ever written
    first = p.stderr.splitlines()[0]   # what ran where
    assert first.startswith("gankit ") and "gan on ring8 (endless points in 2 dimensions, 8 classes); cpu, " in first
    assert "cores busy elsewhere)" in first


def test_train_threads_sets_the_pool_the_first_line_says_so_and_a_resume_keeps_the_count(tmp_path):
    from gankit import load_config

    threads = torch.get_num_threads()
    try:
        trainer = Trainer(load_config("digits", set=FAST + ["train.threads=1", "train.steps=3"]))
        assert torch.get_num_threads() == 1
        assert "gan on digits (1,797 grey images of 8x8, 10 classes); cpu, 1 thread (train.threads)" in trainer.describe()
        trainer.run(tmp_path / "r", log=lambda s: None)
        torch.set_num_threads(2)
        resumed = Trainer(load_config("digits", set=FAST + ["train.steps=6"]))
        resumed.restore(tmp_path / "r")
        assert torch.get_num_threads() == 1 and "1 thread (as when the run stopped)" in resumed.describe()
    finally:
        torch.set_num_threads(threads)


def test_threads_left_by_other_busy_processes(monkeypatch):
    from gankit.training import device

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = len(os.sched_getaffinity(0))
    assert device.pick_threads(3) == (3, "train.threads") and device.pick_threads(0, saved=2)[0] == 2
    n, why = device.pick_threads(0)
    other = device.busy_elsewhere()
    assert n == max(1, min(device.MOST_THREADS, math.floor(cores - other + 0.75))) and f"of {cores} cores busy" in why
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])   # a process that takes one core
    try:
        device.busy_elsewhere.cache_clear()
        time.sleep(0.3)
        assert device.busy_elsewhere() > 0.7
        if cores == 2 and torch.get_num_threads() == 2:
            assert device.pick_threads(0)[0] == 1
    finally:
        busy.kill()
        busy.wait()
        device.busy_elsewhere.cache_clear()   # measured again by the next run, the busy process gone
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert device.pick_threads(0)[1] == "OMP_NUM_THREADS"


def test_the_thread_count_follows_other_processes_during_a_run():
    from gankit.training.device import ThreadGovernor

    threads = torch.get_num_threads()
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: there is no thread to give up")
    governor = ThreadGovernor(active=True)
    try:
        torch.set_num_threads(2)
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.6)
            change = governor.adjust()
        finally:
            busy.kill()
            busy.wait()
        assert change is not None and change.startswith("threads 2 -> 1:") and torch.get_num_threads() == 1
        time.sleep(0.6)
        assert governor.adjust().startswith("threads 1 -> 2:") and torch.get_num_threads() == 2
        time.sleep(0.3)
        assert governor.adjust() is None and not ThreadGovernor(active=False).adjust()
    finally:
        torch.set_num_threads(threads)


def test_rollback_reloads_the_last_checkpoint_with_lower_rates_and_goes_on(tmp_path):
    run = tmp_path / "r"
    hit = []
    trainer = nan_trainer(tmp_path, "train.on_nan=rollback", "train.nan_lr_factor=0.25",
                          when=lambda step: step == 15 and not hit and not hit.append(step))   # once
    lines = []
    trainer.run(run, log=lines.append)
    (note,) = [line for line in lines if "rolled back" in line]
    assert "in step 16" in note and "rolled back to step_0000010" in note and "x0.25" in note
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 10, "train/rollbacks": 1} in rows
    lr_d = {r["step"]: r["lr/D"] for r in rows if "lr/D" in r}
    base = trainer.cfg.optim.lr_d
    assert lr_d[10] == pytest.approx(base) and lr_d[15] == pytest.approx(base / 4) and lr_d[30] == pytest.approx(base / 4)
    assert [r["step"] for r in rows if "loss/D" in r] == [5, 10, 15, 20, 25, 30]   # one timeline
    final = checkpoint.latest(run / "checkpoints")
    assert checkpoint.read_meta(final)["step"] == 30 and checkpoint.read_meta(final)["lr_scale"] == 0.25
    resumed = Trainer(trainer.cfg)   # the lowered rates survive a resume
    resumed.restore(run)
    assert resumed.learning_rates()["D"] == pytest.approx(base / 4) and resumed.lr_scale == 0.25


def test_rollback_gives_up_after_its_limit(tmp_path):
    trainer = nan_trainer(tmp_path, "train.on_nan=rollback", "train.nan_rollbacks=2", when=lambda step: step >= 12)
    with pytest.raises(NonFiniteError, match="stopped after 2 rollbacks; the last good checkpoint is .*step_0000010"):
        trainer.run(tmp_path / "r", log=lambda s: None)


# ------------------------------------------------------------------------------- learning rates

def test_learning_rates_are_logged_and_a_resume_that_moves_the_decay_says_so(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "r"
    assert main(argv(run, "train.steps=20", "optim.decay=linear", "optim.decay_start=0.5")) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    lr_g = {r["step"]: r["lr/G"] for r in rows}
    assert lr_g[5] == lr_g[10] and lr_g[20] < lr_g[15] < lr_g[10]   # constant, then decaying from step 10
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    assert {"lr/G", "lr/D"} <= set(events.Tags()["scalars"])
    capsys.readouterr()
    assert main(argv(run, "train.steps=40", "optim.decay=linear", "optim.decay_start=0.5", resume=True)) == 0
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "on resume" in x]
    assert line == ("train.steps 20 -> 40 on resume: optim.decay=linear now spans 40 steps, so the learning rates "
                    "at step 20 go from 0x to 1x their base")


def test_an_unknown_on_nan_policy_is_refused(tmp_path, capsys):
    assert main(argv(tmp_path / "r", "train.on_nan=ignore")) == 2
    assert "train.on_nan" in capsys.readouterr().err and not (tmp_path / "r").exists()
