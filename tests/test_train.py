"""The loop end to end on tiny configs: outputs on disk, bounds, and bitwise-exact resume."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from gankit.cli import main
from gankit.training import checkpoint

FAST = ["train.progress=false", "train.log_every=5", "train.sample_every=10", "train.ckpt_every=10"]


def train(out, *sets, preset="digits", resume=False):
    argv = ["train", "--preset", preset, "--out", str(out)]
    for s in FAST + list(sets):
        argv += ["--set", s]
    if resume:
        argv.append("--resume")
    assert main(argv) == 0


def final_tensors(run):
    ckpt = checkpoint.latest(run / "checkpoints")
    return ckpt, load_file(str(ckpt / "weights.safetensors")), load_file(str(ckpt / "state.safetensors"))


def test_run_directory_layout(tmp_path):
    run = tmp_path / "r"
    train(run, "train.steps=20")
    assert (run / "config.toml").exists() and (run / "data.json").exists()
    ckpt, weights, state = final_tensors(run)
    assert ckpt.name == "step_0000020"
    assert sorted(p.name for p in ckpt.iterdir()) == ["config.toml", "state.json", "state.safetensors", "weights.safetensors"]
    assert {k.split(".")[0] for k in weights} == {"G", "D", "G_ema"}
    assert any(k.startswith("optim.G.state.") for k in state) and "rng.torch" in state
    assert not list((run / "checkpoints").glob(".*tmp*"))  # no leftovers of the atomic write
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert all(np.isfinite(r["loss/D"]) and np.isfinite(r["loss/G"]) and r["time/step_ms"] > 0 for r in rows)
    grid = Image.open(run / "samples" / "final.png")
    assert (run / "samples" / "step_0000010.png").exists()
    # 100 digits of 8 px, 2 px border, enlarged 4x
    assert grid.size == (4 * (2 + 10 * 10), 4 * (2 + 10 * 10))


def test_tensorboard_events_are_real(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "r"
    train(run, "train.steps=10")
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    assert "loss/D" in acc.Tags()["scalars"]
    assert [e.step for e in acc.Scalars("loss/G")] == [5, 10]


def test_keeps_only_the_newest_checkpoints(tmp_path):
    run = tmp_path / "r"
    train(run, "train.steps=40", "train.keep=2")
    names = sorted(p.name for p in (run / "checkpoints").glob("step_*"))
    assert names == ["step_0000030", "step_0000040"]
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_0000040"


def test_max_seconds_stops_and_checkpoints(tmp_path):
    run = tmp_path / "r"
    train(run, "train.steps=1000000", "train.max_seconds=1", "train.ckpt_every=1000000")
    ckpt, _, _ = final_tensors(run)
    step = json.loads((ckpt / "state.json").read_text())["step"]
    assert 0 < step < 1000000


@pytest.mark.parametrize("preset, sets", [
    ("digits", []),                                                            # MLP, EMA
    ("digits", ["model.arch=dcgan"]),                                          # DCGAN with BatchNorm
    ("ring8", ["loss.name=wasserstein", "loss.gp=10", "train.d_steps=3", "optim.decay=none"]),  # GP draws from the RNG
    ("digits", ["loss.name=hinge", "model.spectral_norm=true", "loss.r1=1", "model.d_norm=none"]),
    ("grid25", ["loss.name=minimax", "loss.clip=0.05", "train.ema=0", "optim.decay=none"]),  # steps change the decay
    ("digits-cond", ["cgan.mismatch=0.5", "cgan.aux=1"]),                     # mismatched labels draw from the RNG
    ("digits-cond", ["model.arch=dcgan", "cgan.cond_g=cbn", "cgan.cond_d=concat"]),
    ("digits", ["gan.reuse_fake=false"]),                                    # a fresh z for the G step
    ("ring8", ["loss.name=wasserstein", "loss.gp=10", "train.d_steps=3", "optim.decay=none",
               "gan.reuse_fake=true"]),                                      # the default's reuse with k D steps and GP
])
def test_resume_is_bitwise_exact(tmp_path, preset, sets):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(straight, "train.steps=30", *sets, preset=preset)
    train(split, "train.steps=15", *sets, preset=preset)
    main(["train", "--out", str(split), "--resume", "--set", "train.steps=30"])
    _, w1, s1 = final_tensors(straight)
    _, w2, s2 = final_tensors(split)
    assert w1.keys() == w2.keys() and s1.keys() == s2.keys()
    for k in w1:
        assert torch.equal(w1[k], w2[k]), k
    for k in s1:
        assert torch.equal(s1[k], s2[k]), k
    # the log reads as one run: every interval once, in order
    steps = [json.loads(line)["step"] for line in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20, 25, 30]


def test_resume_drops_log_lines_written_after_the_checkpoint(tmp_path):
    run = tmp_path / "r"
    train(run, "train.steps=20", "train.ckpt_every=10", "train.keep=5")
    # pretend the run died after step 20's log line but before its checkpoint: resume from step 10
    (run / "checkpoints" / "latest").write_text("step_0000010\n")
    import shutil

    shutil.rmtree(run / "checkpoints" / "step_0000020")
    main(["train", "--out", str(run), "--resume", "--set", "train.steps=20"])
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [5, 10, 15, 20]


def test_ema_tracks_the_generator(tmp_path):
    run = tmp_path / "r"
    train(run, "train.steps=30", "train.ema=0.9")
    _, w, _ = final_tensors(run)
    diffs = [(w[f"G_ema.{k[2:]}"] - w[k]).abs().max().item() for k in w if k.startswith("G.") and w[k].is_floating_point()]
    assert max(diffs) > 0  # an average, not a copy
    assert all(d < 1.0 for d in diffs)


@pytest.mark.parametrize("sig, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_checkpoints_a_whole_step_and_resume_stays_exact(tmp_path, sig, status):
    """SIGINT (Ctrl-C) or SIGTERM (a scheduler) to a real training process: it stops at a step boundary,
    saves, exits 128 + the signal; resuming to step S + 20 gives the same weights as an uninterrupted run of
    S + 20 steps."""
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "r"
    cmd = [sys.executable, "-m", "gankit", "train", "--preset", "ring8", "--out", str(run),
           "--set", "train.progress=false", "--set", "train.steps=100000000", "--set", "train.ckpt_every=1000000",
           "--set", "optim.decay=none"]   # the resume below changes train.steps, which moves a decay
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (run / "metrics.jsonl").exists() or not (run / "metrics.jsonl").read_text():
        assert time.time() < deadline and p.poll() is None
        time.sleep(0.2)
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=60)
    assert p.returncode == status, err
    ckpt = checkpoint.latest(run / "checkpoints")
    stopped = json.loads((ckpt / "state.json").read_text())["step"]
    assert stopped >= 50 and f"{sig}: interrupted at step {stopped}" in err
    main(["train", "--out", str(run), "--resume", "--set", f"train.steps={stopped + 20}"])
    straight = tmp_path / "s"
    train(straight, f"train.steps={stopped + 20}", "train.ckpt_every=1000000", "optim.decay=none", preset="ring8")
    _, w1, s1 = final_tensors(run)
    _, w2, s2 = final_tensors(straight)
    assert all(torch.equal(w1[k], w2[k]) for k in w1) and all(torch.equal(s1[k], s2[k]) for k in s1)


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "lsgan", "hinge", "wasserstein",
                                  "f-kl", "f-reverse-kl", "f-js", "f-pearson", "f-hellinger", "f-tv"])
def test_every_objective_trains_with_finite_losses(tmp_path, loss):
    run = tmp_path / "r"
    train(run, "train.steps=10", f"loss.name={loss}", preset="gauss1d")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss/D"]) and np.isfinite(r["loss/G"]) for r in rows)


def test_lr_schedules_by_hand():
    from gankit.training.schedule import lr_factor

    assert [lr_factor(s, 10, "none", 0.5) for s in (0, 9)] == [1.0, 1.0]
    assert np.allclose([lr_factor(s, 10, "linear", 0.5) for s in range(10)], [1, 1, 1, 1, 1, 1.0, 0.8, 0.6, 0.4, 0.2])
    assert lr_factor(0, 8, "linear", 0.0) == 1.0 and lr_factor(4, 8, "linear", 0.0) == 0.5
    assert abs(lr_factor(7, 10, "cosine", 0.5) - 0.5 * (1 + np.cos(np.pi * 0.4))) < 1e-12


def test_lr_decay_is_applied_and_resume_mid_decay_is_exact(tmp_path):
    sets = ["optim.decay=linear", "optim.decay_start=0.4", "train.keep=5"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(straight, "train.steps=30", *sets, preset="ring8")
    train(split, "train.steps=30", *sets, preset="ring8")
    # go back to the checkpoint of step 20 (inside the decay) and train the last 10 steps again
    (split / "checkpoints" / "latest").write_text("step_0000020")
    main(["train", "--out", str(split), "--resume"])
    _, w1, s1 = final_tensors(straight)
    _, w2, s2 = final_tensors(split)
    for k in w1:
        assert torch.equal(w1[k], w2[k]), k
    state = json.loads((straight / "checkpoints" / "step_0000020" / "state.json").read_text())
    groups = [g for opt in state["optimizers"].values() for g in opt["param_groups"]]
    # the update of step 19 (0-based) used 1 - (19 - 12) / 18 of the base rate
    assert {round(g["lr"] / g["initial_lr"], 6) for g in groups} == {round(1 - 7 / 18, 6)}


def test_reuse_fake_takes_one_generator_forward_per_step(tmp_path):
    """reuse_fake (the default): the G step trains on the very samples the last D step judged
    (pytorch/examples' DCGAN) — k D steps take k G forwards, the G step none; reuse_fake=false gives the
    G step a fresh z (D steps without a graph). The same for the conditional recipe, whose G step keeps
    the D step's conditions."""
    from gankit.assemble import resolve
    from gankit.training.loop import Trainer

    for preset, table, d_steps in (("digits", "gan", 1), ("digits", "gan", 3), ("digits-cond", "cgan", 2)):
        for reuse, forwards in ((False, d_steps + 1), (True, d_steps)):
            t = Trainer(resolve(preset, overrides=[f"{table}.reuse_fake={str(reuse).lower()}", "train.ema=0",
                                                   f"train.d_steps={d_steps}"]))
            graphs = []   # per G forward: did it record a graph
            hook = t.recipe.G.register_forward_hook(lambda m, a, out: graphs.append(out.requires_grad))
            for _ in range(3):
                t.train_step()
            hook.remove()
            assert len(graphs) == 3 * forwards, (preset, d_steps, reuse)
            assert graphs.count(True) == (3 * d_steps if reuse else 3)   # with reuse_fake, D's samples keep their graph
            assert t.recipe._fake is None   # nothing kept across steps (exact resume)


def test_evaluating_during_training_does_not_change_the_training(tmp_path):
    """Periodic evaluation (here FID in the cached digits-classifier space, evaluated twice) leaves the
    global RNG alone: the weights equal those of a run that never evaluates."""
    quiet, scored = tmp_path / "q", tmp_path / "s"
    train(quiet, "train.steps=20")
    train(scored, "train.steps=20", "eval.every=10", "eval.metrics=fid", "eval.n=100")
    _, w1, s1 = final_tensors(quiet)
    _, w2, s2 = final_tensors(scored)
    assert all(torch.equal(w1[k], w2[k]) for k in w1) and all(torch.equal(s1[k], s2[k]) for k in s1)


def test_logs_the_share_of_time_spent_waiting_for_data(tmp_path):
    run = tmp_path / "r"
    train(run, "train.steps=20")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    shares = [r["time/data_share"] for r in rows]
    assert len(shares) == 4 and all(0.0 < s < 1.0 for s in shares)   # in-memory digits: a small share


def test_fast_mode_is_bf16_channels_last_fused_and_resumes_exactly(tmp_path):
    """train.fast on a convolutional GAN: channels-last nets and batches, fused Adam, float32 weights
    and optimiser state, and the bitwise-exact resume of any run."""
    from gankit.assemble import resolve
    from gankit.training.loop import Trainer

    net = ["model.arch=dcgan", "model.g_width=16", "model.d_width=16", "train.fast=true"]
    t = Trainer(resolve("digits", overrides=net))
    conv = next(p for p in t.recipe.G.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert all(g["fused"] and not g["foreach"] for o in t.recipe.optimizers.values() for g in o.param_groups)
    assert_resumes_exactly(tmp_path, net)


def assert_resumes_exactly(tmp_path, sets):
    """12 steps straight and 6 + 6 with a resume give the same float32 weights and state, bit for bit."""
    straight, split = tmp_path / "a", tmp_path / "b"
    train(straight, *sets, "train.steps=12")
    train(split, *sets, "train.steps=6")
    train(split, *sets, "train.steps=12", resume=True)
    (_, w1, s1), (_, w2, s2) = final_tensors(straight), final_tensors(split)
    assert all(v.dtype == torch.float32 for v in w1.values() if v.is_floating_point())
    assert all(torch.equal(w1[k], w2[k]) for k in w1) and all(torch.equal(s1[k], s2[k]) for k in s1)


def test_default_optimisers_are_foreach_and_bitwise_the_per_tensor_loop():
    """Without train.fast the loop switches every Adam to its foreach implementation (PyTorch's CPU
    default is the per-tensor loop): the same arithmetic, so the same weights to the last bit."""
    from gankit.assemble import resolve
    from gankit.training.loop import Trainer

    runs = []
    for foreach in (True, False):
        t = Trainer(resolve("digits", overrides=["model.arch=dcgan", "model.g_width=8", "model.d_width=8"]))
        assert all(g["foreach"] for o in t.recipe.optimizers.values() for g in o.param_groups)
        if not foreach:
            for o in t.recipe.optimizers.values():
                for g in o.param_groups:
                    g["foreach"] = False
        for _ in range(4):
            t.train_step()
        runs.append({k: v.detach().clone() for k, v in t.recipe.G.state_dict().items()})
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_fast_mode_uses_bf16_where_it_pays():
    """bf16 autocast for convolutional networks and for fully-connected ones at batches of 512 or more;
    below that (the digits MLP at 64) fast mode is fp32 with fused Adam."""
    from gankit.assemble import resolve
    from gankit.training.loop import Trainer

    for preset, sets, bf16 in [("digits", [], False), ("digits", ["data.batch_size=512"], True),
                               ("digits", ["model.arch=dcgan", "model.g_width=8", "model.d_width=8"], True),
                               ("grid25", [], True), ("ring8", [], False)]:
        t = Trainer(resolve(preset, overrides=sets + ["train.fast=true"]))
        assert t.bf16 == bf16, (preset, sets)
        assert all(g["fused"] for o in t.recipe.optimizers.values() for g in o.param_groups)
    assert not Trainer(resolve("grid25")).bf16   # never without train.fast


def test_fast_mode_follows_the_fp32_losses(tmp_path):
    """bf16 autocast changes the rounding, not the computation: the first logged losses of the digits
    MLP GAN at batch 512 agree with fp32 to a few hundredths."""
    rows = {}
    for fast in ("false", "true"):
        train(tmp_path / fast, "train.steps=10", f"train.fast={fast}", "data.batch_size=512")
        rows[fast] = [json.loads(line) for line in (tmp_path / fast / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(rows["false"], rows["true"]):
        assert a["loss/D"] == pytest.approx(b["loss/D"], abs=0.03)
        assert a["loss/G"] == pytest.approx(b["loss/G"], abs=0.03)
        assert a["loss/D"] != b["loss/D"]   # it did run in another precision


def test_fast_mode_keeps_the_ends_of_point_networks_in_float32():
    """Toy coordinates need more than bfloat16's 8-bit mantissa: under train.fast, G's output layer and
    D's input layer (and those of the EMA copy) run in float32, the hidden layers in bfloat16 — in the
    fused stacks (training/kernels/fused_mlp.py) and, through float32_ends_, in the layers themselves (a conditional D
    reads its MLP's features() layer by layer)."""
    from gankit.assemble import resolve
    from gankit.training.loop import Trainer

    t = Trainer(resolve("grid25", overrides=["train.fast=true", "train.progress=false"]))
    G, D = t.recipe.nets["G"], t.recipe.nets["D"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = G(torch.randn(5, 2))
        assert x.dtype == torch.float32 and D(x).dtype == torch.float32
        assert t.recipe.nets["G_ema"](torch.randn(5, 2)).dtype == torch.float32
        seen = {}
        for i, layer in enumerate(m for m in G.modules() if isinstance(m, torch.nn.Linear)):
            layer.register_forward_hook(lambda m, a, out, i=i: seen.update({i: out.dtype}))
        type(G).forward(G, torch.randn(5, 2))   # layer by layer
    assert seen == {0: torch.float32, 1: torch.bfloat16, 2: torch.bfloat16, 3: torch.float32}
    assert [p[2] for p in G._fused_plan] == [True, False, False, True]
    t.train_step()   # and it trains
    assert all(torch.isfinite(p).all() for p in G.parameters())


def test_fast_mode_keeps_one_memory_layout_through_the_backward():
    """train.fast on a DCGAN: every element-wise backward (activations, BatchNorm) gets its gradient in the
    channels-last layout of its saved tensors (oneDNN's convolution backward and the flatten before D's head
    hand them back in NCHW; mixing the two layouts took TensorIterator's slow path)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from gankit.assemble import resolve
    from gankit.training.loop import Trainer

    seen = []

    class Layouts(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.__name__.split(".")[0] in ("leaky_relu_backward", "threshold_backward", "native_batch_norm_backward"):
                seen.append([a.is_contiguous(memory_format=torch.channels_last)
                             for a in args if isinstance(a, torch.Tensor) and a.dim() == 4 and a.shape[1] > 1])
            return func(*args, **(kwargs or {}))

    t = Trainer(resolve("digits", overrides=["model.arch=dcgan", "model.g_width=8", "model.d_width=8",
                                             "train.fast=true", "train.ema=0"]))
    t.train_step()
    with Layouts():
        t.train_step()
    assert len(seen) >= 4 and all(all(layouts) and len(layouts) == 2 for layouts in seen), seen


def test_fast_mode_computes_a_transposed_convolution_of_a_1x1_input_as_a_matrix_product():
    """A DCGAN generator's first layer, ConvTranspose2d(z, C, k) on a 1x1 input, is a matrix product under
    train.fast (oneDNN's bf16 transposed convolution of a point ran at 47 GFLOP/s): the same outputs and
    gradients as PyTorch's layer, channels-last; other inputs go to PyTorch's layer."""
    import copy

    from gankit.training import fast

    torch.manual_seed(0)
    for bias in (False, True):
        ours = torch.nn.ConvTranspose2d(6, 5, 4, bias=bias)
        ref = copy.deepcopy(ours)
        fast.prepare_({"G": torch.nn.Sequential(ours)}, {})
        for x in (torch.randn(3, 6, 1, 1), torch.randn(3, 6, 2, 2)):
            y, y_ref = ours(x), ref(x)
            assert y.shape == y_ref.shape and y.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)
            y.square().sum().backward()
            y_ref.square().sum().backward()
            torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-6)
            ours.zero_grad()
            ref.zero_grad()
        x = torch.randn(3, 6, 1, 1)
        with torch.autocast("cpu", dtype=torch.bfloat16):   # under autocast: bf16 out, as PyTorch's layer
            y, y_ref = ours(x), ref(x)
        assert y.dtype == y_ref.dtype == torch.bfloat16
        torch.testing.assert_close(y.float(), y_ref.float(), rtol=2e-2, atol=2e-2)
        assert copy.deepcopy(ours).forward.__self__ is not ours   # an EMA copy computes with its own weights


def test_fast_mode_computes_large_bf16_weight_gradients_as_matrix_products(monkeypatch):
    """train.fast computes the weight gradient of a large strided convolution (or transposed convolution) on
    a small map under bf16 autocast as im2col matrix products (oneDNN's bf16 weight gradient ran at a quarter
    of its forward's speed): exact in float64 against PyTorch's layer, in one product or over slices of the
    batch, double backward included (gradient penalties); in a DCGAN-sized layer in bf16 as close to the
    float64 gradients as PyTorch's own bf16 layer."""
    import copy

    from gankit.training import fast
    from gankit.training.kernels import conv_products

    torch.manual_seed(0)
    conv2d, conv_t = torch.nn.functional.conv2d, torch.nn.functional.conv_transpose2d
    cl = torch.channels_last
    for chunk in (conv_products.WINDOWS_CHUNK, 40):   # one product; slices of the batch (of 1 or 2 samples here)
        monkeypatch.setattr(conv_products, "WINDOWS_CHUNK", chunk)
        for transposed, c_in, c_out, size, kernel, stride, padding in [
                (False, 3, 4, 7, (3, 3), (2, 2), (1, 1)), (False, 2, 2, 5, (2, 3), (1, 2), (0, 1)),
                (True, 3, 2, 4, (4, 4), (2, 2), (1, 1)), (True, 2, 3, 3, (3, 3), (1, 1), (0, 0))]:
            x = torch.randn(3, c_in, size, size, dtype=torch.float64).contiguous(memory_format=cl).requires_grad_()
            w_shape = (c_in, c_out) if transposed else (c_out, c_in)
            w = torch.randn(*w_shape, *kernel, dtype=torch.float64).contiguous(memory_format=cl).requires_grad_()
            b = torch.randn(c_out, dtype=torch.float64, requires_grad=True)
            f = lambda x, w, b: conv_products._WeightGradAsProduct.apply(x, w, b, transposed, stride, padding)
            torch.testing.assert_close(f(x, w, b), (conv_t if transposed else conv2d)(x, w, b, stride, padding))
            assert torch.autograd.gradcheck(f, (x, w, b)) and torch.autograd.gradgradcheck(f, (x, w, b))

    def bf16_error(layer, exact, x, g):
        """Relative errors of the input, weight (and bias) gradients of layer in bf16 against float64's."""
        layer.zero_grad()
        x = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(x)
        y.backward(g.float())
        ours = [x.grad] + [p.grad for p in layer.parameters()]
        return y, [((o.double() - e).norm() / e.norm()).item() for o, e in zip(ours, exact)]

    for layer, size in [(torch.nn.Conv2d(128, 256, 4, 2, 1, bias=False), 8),
                        (torch.nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=True), 4)]:
        assert layer.weight.numel() >= conv_products.PRODUCT_MIN_WEIGHT
        pytorch = copy.deepcopy(layer).to(memory_format=cl)
        ref = copy.deepcopy(layer).double()
        fast.prepare_({"net": torch.nn.Sequential(layer)}, {})
        x = torch.randn(16, layer.in_channels, size, size).contiguous(memory_format=cl)
        x64 = x.double().requires_grad_()
        g = torch.randn_like(ref(x64))
        ref(x64).backward(g)
        exact = [x64.grad] + [p.grad for p in ref.parameters()]
        _, theirs = bf16_error(pytorch, exact, x, g)
        for chunk in (conv_products.WINDOWS_CHUNK, 3 * 2 ** 15):   # one product; slices of 3 samples, a last one of 1
            monkeypatch.setattr(conv_products, "WINDOWS_CHUNK", chunk)
            y, ours = bf16_error(layer, exact, x, g)
            assert type(y.grad_fn).__name__ == "_WeightGradAsProductBackward" and y.dtype == torch.bfloat16
            assert layer.weight.grad.dtype == torch.float32 and layer.weight.grad.is_contiguous(memory_format=cl)
            assert all(o < 1.5 * t + 1e-4 for o, t in zip(ours, theirs)), (ours, theirs)
            first = layer.weight.grad.clone()   # again, now in the reused scratch buffers: the same numbers
            assert bf16_error(layer, exact, x, g)[1] == ours and torch.equal(layer.weight.grad, first)
    assert conv_products._SCRATCH.buffers

    # a gradient penalty's autograd.grad with respect to the input computes no weight gradient
    calls = []
    weight_grad = conv_products._conv_weight_grad
    monkeypatch.setattr(conv_products, "_conv_weight_grad", lambda *a: calls.append(1) or weight_grad(*a))
    conv = torch.nn.Conv2d(128, 256, 4, 2, 1)
    fast.prepare_({"net": torch.nn.Sequential(conv)}, {})
    x = torch.randn(4, 128, 8, 8).contiguous(memory_format=cl).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        grad, = torch.autograd.grad(conv(x).float().square().sum(), x, create_graph=True)
    assert calls == []
    grad.square().sum().backward()
    assert len(calls) == 1 and conv.weight.grad is not None

    # PyTorch's layer for a small weight, stride 1, a large map, output_padding, 'same' padding, a frozen
    # weight, no gradient, and outside autocast
    frozen = torch.nn.Conv2d(128, 256, 4, 2, 1).requires_grad_(False)
    for layer, size, context in [
            (torch.nn.Conv2d(8, 8, 4, 2, 1), 8, torch.enable_grad),
            (torch.nn.Conv2d(128, 256, 3, 1, 1), 4, torch.enable_grad),
            (torch.nn.Conv2d(128, 256, 4, 2, 1), 32, torch.enable_grad),
            (torch.nn.ConvTranspose2d(256, 128, 4, 2, 1), 16, torch.enable_grad),
            (torch.nn.ConvTranspose2d(256, 128, 4, 2, 1, output_padding=1), 4, torch.enable_grad),
            (torch.nn.Conv2d(128, 256, 3, padding="same"), 4, torch.enable_grad),
            (frozen, 8, torch.enable_grad), (torch.nn.Conv2d(128, 256, 4, 2, 1), 8, torch.no_grad)]:
        fast.prepare_({"net": torch.nn.Sequential(layer)}, {})
        with context(), torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(torch.randn(2, layer.in_channels, size, size, requires_grad=True))
        assert y.grad_fn is None or type(y.grad_fn).__name__ != "_WeightGradAsProductBackward", layer
    y = layer(torch.randn(2, 128, 8, 8, requires_grad=True))   # autocast off
    assert y.dtype == torch.float32 and type(y.grad_fn).__name__ != "_WeightGradAsProductBackward"


def test_fast_mode_with_weight_gradient_products_resumes_exactly(tmp_path, monkeypatch):
    """The products in a whole training run (every strided layer of a small DCGAN takes them with the
    weight threshold lowered): deterministic, so resuming is bitwise exact."""
    from gankit.training.kernels import conv_products

    monkeypatch.setattr(conv_products, "PRODUCT_MIN_WEIGHT", 1)
    calls = []
    product = conv_products._WeightGradAsProduct.apply
    monkeypatch.setattr(conv_products._WeightGradAsProduct, "apply", lambda *a: calls.append(1) or product(*a))
    assert_resumes_exactly(tmp_path, ["model.arch=dcgan", "model.g_width=16", "model.d_width=16", "train.fast=true"])
    assert len(calls) == 24 * 2   # 12 + 6 + 6 steps, each: G's strided layer, D's on real and fake samples
    # (this D has no BatchNorm: one forward judges both, recipes/gan.py d_logits)
    # (D is frozen in the G step: PyTorch's layer there)


def test_fast_mode_without_its_cpu_kernels_on_an_untested_pytorch(tmp_path, monkeypatch):
    """On a PyTorch outside kernels.TESTED_TORCH, or one that lacks a private operator the CPU kernels call,
    train.fast keeps its portable path (bf16 autocast, float32 ends for points, channels-last, fused Adam)
    without the fused stacks and convolution kernels; it trains, with float32 weights, and the run's log
    says why in one line. On this PyTorch there is no such line."""
    from torch.torch_version import TorchVersion

    from gankit.assemble import resolve
    from gankit.training import kernels
    from gankit.training.loop import Trainer

    toy = ["train.fast=true", "train.progress=false", "train.steps=2", "train.sample_every=1000", "train.ckpt_every=1000"]
    assert Trainer(resolve("grid25", overrides=toy)).notes == []
    monkeypatch.setattr(torch, "__version__", TorchVersion("2.15.0"))
    t = Trainer(resolve("grid25", overrides=toy))
    assert t.notes == ["train.fast: CPU kernels tested with torch 2.9–2.14, this is 2.15.0: using the portable bf16 path"]
    assert t.bf16 and not any(hasattr(net, "_fused_plan") for net in t.recipe.nets.values())
    with torch.autocast("cpu", dtype=torch.bfloat16):   # the float32 ends are portable: still there
        assert t.recipe.nets["G"](torch.randn(5, 2)).dtype == torch.float32
    lines = []
    t.run(tmp_path / "toy", log=lines.append)
    assert lines[1] == t.notes[0] and lines.count(t.notes[0]) == 1   # after the run's first line
    params = [p for net in t.recipe.nets.values() for p in net.parameters()]
    assert t.step == 2 and all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in params)

    dc = Trainer(resolve("digits", overrides=["model.arch=dcgan", "model.g_width=8", "model.d_width=8",
                                              "train.fast=true", "train.ema=0"]))
    assert len(dc.notes) == 1 and dc.bf16
    assert not any("forward" in vars(m) for net in dc.recipe.nets.values() for m in net.modules())   # PyTorch's layers
    dc.train_step()
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in dc.recipe.nets["G"].parameters())

    monkeypatch.setattr(torch, "__version__", TorchVersion("2.14.1"))
    monkeypatch.setattr(kernels, "PRIVATE_OPERATORS", kernels.PRIVATE_OPERATORS + ("ops.mkldnn._no_such_operator",))
    assert Trainer(resolve("grid25", overrides=toy)).notes == [
        "train.fast: torch 2.14.1 lacks torch.ops.mkldnn._no_such_operator, which the CPU kernels call: "
        "using the portable bf16 path"]
