"""Which part of train.fast helps where: fp32, + fused Adam, + channels-last, + bf16 autocast.

    python benchmarks/fast_parts.py [--ops-only]

First the operator timings behind fast's rules (LeakyReLU's backward with its gradient in the saved
tensor's channels-last layout or in NCHW; a transposed convolution of a 1x1 input as PyTorch's layer and
as fast's matrix product; a convolution's bf16 weight gradient by PyTorch and by fast's im2col matrix
products, with the forward for scale; what bf16 can give the toy MLP's matrix products, and their share
of the plain loop's time), then the training-step variants below.

Each variant is gankit's training step (recipe phases on gankit's batches, EMA off)
with parts of ``gankit.training.fast`` switched on one by one, 3 warm-up steps, then 3 interleaved rounds
of 15 steps; prints steps/s of fp32 and each variant's speed relative to it (median over rounds).
"""
import statistics
import sys
import time

import torch

from gankit.assemble import resolve
from gankit.training.loop import Trainer
from gankit.training import fast
from gankit.training.kernels import conv_products
from speed_vs_plain import TOY, PlainLoop, real_data, timed

DC = ["model.arch=dcgan", "model.z_dim=100", "model.g_width=64", "model.d_width=64", "data.size=32",
      "data.channels=3", "data.batch_size=64"]
COMMON = ["train.ema=0", "train.progress=false", "optim.decay=none", "sample.method=direct"]
def make(preset, sets, fused, bf16, cl):
    t = Trainer(resolve(preset, overrides=sets + COMMON))
    if fused:
        fast.prepare_({}, t.recipe.optimizers)
    if cl == "layout only":   # nets in channels-last order, without fast's gradient-layout and product rules
        for net in t.recipe.nets.values():
            fast.channels_last_(net)
    elif cl:
        fast.prepare_(t.recipe.nets, {})
    def step():
        batch = None
        for phase in t.recipe.phases:
            if phase.fresh_batch or batch is None:
                batch = next(t.batches)
                if cl: batch = fast.batch_(batch)
            with fast.autocast(t.device, bf16):
                phase.fn(batch)
    return step


def layout_ops() -> None:
    x = torch.randn(64, 64, 16, 16).bfloat16().contiguous(memory_format=torch.channels_last)
    for name, fmt in (("channels-last", torch.channels_last), ("NCHW", torch.contiguous_format)):
        g = torch.randn(64, 64, 16, 16).bfloat16().contiguous(memory_format=fmt)
        us = timed(lambda: torch.ops.aten.leaky_relu_backward(g, x, 0.2, True))
        print(f"LeakyReLU backward, bf16 (64, 64, 16, 16) channels-last, gradient {name}: {us:.0f} us")
    layer = torch.nn.ConvTranspose2d(100, 512, 4, bias=False).to(memory_format=torch.channels_last)
    z = torch.randn(64, 100, 1, 1)
    flop = 2 * 64 * 100 * 512 * 16
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for name, f in (("ConvTranspose2d", lambda: layer(z)),
                        ("train.fast's matrix product",
                         lambda: conv_products._conv_transpose_of_a_point(layer, z))):
            us = timed(f)
            print(f"ConvTranspose2d(100, 512, 4) of a 1x1 input, batch 64, bf16, {name}: {us:.0f} us = "
                  f"{flop / us / 1e3:.0f} GFLOP/s")
    cl = torch.channels_last
    # (transposed, C_in, C_out, kernel, stride, input map, batch): the first six take fast's products, the
    # others (a larger map, stride 1, a smaller weight) PyTorch's weight gradient
    for transposed, c_in, c_out, k, s, size, batch in (
            (False, 64, 128, 4, 2, 16, 64), (False, 128, 256, 4, 2, 8, 64), (False, 64, 128, 4, 2, 14, 256),
            (False, 128, 256, 4, 2, 8, 256), (True, 256, 128, 4, 2, 4, 64), (True, 128, 64, 4, 2, 7, 64),
            (False, 64, 128, 4, 2, 32, 64), (False, 128, 256, 4, 2, 64, 4), (False, 128, 128, 3, 1, 32, 64),
            (False, 32, 64, 4, 2, 16, 64)):
        p = (k - s + 1) // 2
        x = torch.randn(batch, c_in, size, size).bfloat16().contiguous(memory_format=cl)
        w = torch.randn(*((c_in, c_out) if transposed else (c_out, c_in)), k, k).bfloat16().contiguous(memory_format=cl)
        conv = torch.nn.functional.conv_transpose2d if transposed else torch.nn.functional.conv2d
        g = torch.randn_like(conv(x, w, None, s, p)).contiguous(memory_format=cl)
        flop = 2 * (x if transposed else g).numel() * (c_out if transposed else c_in) * k * k
        with torch.no_grad():   # as in a backward pass: the products reuse their buffers
            us = {"forward": timed(lambda: conv(x, w, None, s, p)),
                  "PyTorch's weight gradient": timed(lambda: torch.ops.aten.convolution_backward(
                      g, x, w, None, (s, s), (p, p), (1, 1), transposed, (0, 0), 1, (False, True, False))),
                  "train.fast's matrix products": timed(lambda: conv_products._conv_weight_grad(
                      *((g, x) if transposed else (x, g)), (k, k), (s, s), (p, p)))}
        name = "ConvTranspose2d" if transposed else "Conv2d"
        print(f"{name}({c_in}, {c_out}, {k}, {s}, {p}) on {size}x{size}, batch {batch}, bf16: " + ", ".join(
            f"{key} {v:.0f} us = {flop / v / 1e3:.0f} GFLOP/s" for key, v in us.items()), flush=True)


def mlp_ops() -> None:
    """What bf16 can give the toy MLP GAN (grid25's 256-wide networks): a hidden Linear(256, 256)'s forward and
    backward in fp32 and in bf16, and the share of the plain fp32 loop's time spent in matrix products.
    If only the products got faster, by the Linear's bf16/fp32 ratio, the step would be 1 / (share / ratio +
    1 - share) times faster (Amdahl's law)."""
    for batch in (256, 1024):
        us = {}
        for dtype in (torch.float32, torch.bfloat16):
            layer = torch.nn.Linear(256, 256).to(dtype)
            x = torch.randn(batch, 256, dtype=dtype, requires_grad=True)
            g = torch.randn(batch, 256, dtype=dtype)

            def forward_backward():
                x.grad = None
                layer.zero_grad(set_to_none=True)
                layer(x).backward(g)
            us[dtype] = timed(forward_backward)
        cfg = resolve("grid25", overrides=TOY + [f"data.batch_size={batch}"] + COMMON)
        plain = PlainLoop(cfg, real_data(Trainer(cfg)), cfg.train.seed)
        for _ in range(5):
            plain.step()
        with torch.profiler.profile() as prof:
            for _ in range(20):
                plain.step()
        events = prof.key_averages()
        share = (sum(e.self_cpu_time_total for e in events if e.key in ("aten::mm", "aten::addmm"))
                 / sum(e.self_cpu_time_total for e in events))
        ratio = us[torch.float32] / us[torch.bfloat16]
        acts = {dtype: torch.randn(batch, 256).to(dtype) for dtype in (torch.float32, torch.bfloat16)}
        act = {dtype: timed(lambda: torch.nn.functional.leaky_relu(a, 0.2)) for dtype, a in acts.items()}
        print(f"toy MLP, batch {batch}: Linear(256, 256) forward + backward fp32 {us[torch.float32]:.0f} us, "
              f"bf16 {us[torch.bfloat16]:.0f} us ({ratio:.2f}x); the plain fp32 loop spends {share:.0%} of its "
              f"time in matrix products -> {1 / (share / ratio + 1 - share):.2f}x if only they got faster; "
              f"a LeakyReLU forward fp32 {act[torch.float32]:.0f} us, "
              f"bf16 {act[torch.bfloat16]:.0f} us", flush=True)


layout_ops()
mlp_ops()
if "--ops-only" in sys.argv:
    sys.exit()
for preset, sets, label in (("digits", DC, "DCGAN 32x32x3 b64"), ("grid25", ["data.batch_size=256"], "toy b256"),
                             ("grid25", ["data.batch_size=1024"], "toy b1024"), ("digits", [], "digits MLP b64")):
    cases = {"fp32": (False, False, False), "fp32+fused": (True, False, False), "fp32+fused+CL": (True, False, True),
             "bf16+fused": (True, True, False), "bf16+fused+CL layout only": (True, True, "layout only"),
             "bf16+fused+CL": (True, True, True)}
    steps = {k: make(preset, sets, *v) for k, v in cases.items()}
    for s in steps.values():
        for _ in range(3): s()
    res = {k: [] for k in cases}
    for r in range(3):
        for k, s in steps.items():
            t0 = time.perf_counter()
            for _ in range(15): s()
            res[k].append(15 / (time.perf_counter() - t0))
    base = statistics.median(res["fp32"])
    print(label, f"fp32 {base:.1f} steps/s |", " | ".join(f"{k}: {statistics.median(v) / base:.2f}x" for k, v in res.items()), flush=True)
