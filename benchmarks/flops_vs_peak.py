"""How close a DCGAN training step gets to this machine's matrix-multiply peak, fp32 and bf16.

    python benchmarks/flops_vs_peak.py [--batch 64] [--steps 20] [--rounds 3] [--set data.size=28 --set data.channels=1]

1. Peak: GFLOP/s of a square matmul (n = 2048, 2·n³ FLOPs each) in float32 and in bfloat16, measured here.
2. Work: the FLOPs of one gankit training step (the pytorch/examples DCGAN, 32x32x3, one D step and one G
   step, forward and backward) counted by ``torch.utils.flop_counter.FlopCounterMode`` (matmuls and
   convolutions; elementwise work is not counted).
3. Achieved: counted FLOPs / measured step time, for train.fast=false and train.fast=true (bf16 autocast,
   channels-last, fused Adam), interleaved round by round with the peak measurements.
4. Where the time goes: the operators with the most self CPU time in a profile of the fast step.
"""
import argparse
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from gankit.assemble import resolve
from gankit.training.loop import Trainer

DCGAN = ["model.arch=dcgan", "model.z_dim=100", "model.g_width=64", "model.d_width=64", "data.size=32",
         "data.channels=3", "train.ema=0", "train.progress=false", "optim.decay=none", "sample.method=direct"]


def matmul_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9


def trainer(batch: int, fast: bool, extra: list[str]) -> Trainer:
    return Trainer(resolve("digits", overrides=DCGAN + [f"data.batch_size={batch}", f"train.fast={str(fast).lower()}"] + extra))


def step_flops(t: Trainer) -> int:
    with FlopCounterMode(display=False) as counter:
        t.train_step()
    return counter.get_total_flops()


def step_seconds(t: Trainer, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        t.train_step()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], help="extra table.key=value for both trainers")
    a = ap.parse_args()
    plain, quick = trainer(a.batch, False, a.set), trainer(a.batch, True, a.set)
    flops = step_flops(plain)
    assert step_flops(quick) == flops   # autocast changes the precision, not the work
    for t in (plain, quick):
        step_seconds(t, 2)   # warm-up
    peak = {torch.float32: [], torch.bfloat16: []}
    secs = {False: [], True: []}
    for _ in range(a.rounds):
        for dtype in peak:
            peak[dtype].append(matmul_gflops(dtype))
        secs[False].append(step_seconds(plain, a.steps))
        secs[True].append(step_seconds(quick, a.steps))
    med = statistics.median
    c, h, w = plain.info.shape
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; DCGAN {h}x{w}x{c}, batch {a.batch}; "
          f"{flops / 1e9:.2f} GFLOP per training step (D step + G step, forward + backward)")
    print("| precision | matmul peak GFLOP/s | step ms | img/s | achieved GFLOP/s | share of peak |")
    print("|---|---|---|---|---|---|")
    for fast, dtype, name in ((False, torch.float32, "fp32 (train.fast=false)"), (True, torch.bfloat16, "bf16 (train.fast=true)")):
        s, p = med(secs[fast]), med(peak[dtype])
        print(f"| {name} | {p:.0f} | {1000 * s:.1f} | {a.batch / s:.0f} | {flops / s / 1e9:.0f} | {flops / s / 1e9 / p:.0%} |")
    print(f"fast / fp32 step-time ratio: {med(secs[False]) / med(secs[True]):.2f}x")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step_seconds(quick, 5)
    print("\nlargest self-CPU costs of the fast step (5 steps):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


if __name__ == "__main__":
    main()
