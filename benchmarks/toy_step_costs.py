"""Where the toy MLP's train.fast step goes: thread scaling per operator, fixed cost, page faults.

    python benchmarks/toy_step_costs.py

1. The step's main bf16 operators at batch 2,048 x 256, one at a time in a loop, on 1 and 2 threads: how
   each uses the second core.
2. The fused bf16 step at batch 16 (``fast.BF16_MIN_BATCH`` lowered to 0), where the arithmetic is nil,
   against fast's fp32 path at the same batch: the fixed per-step cost of the fused path.
3. Page faults per step (``getrusage``) of the fast step and of the plain loop, interleaved as
   benchmarks/speed_vs_plain.py runs them, at batch 1,024.

oneDNN's own time for each product inside the step:
    ONEDNN_VERBOSE=1 python benchmarks/speed_vs_plain.py --steps 3 --rounds 1 --cases 5 --set train.fast=true \\
      | awk -F, '/exec/ {t[$(NF-1)" "$9] += $NF; n[$(NF-1)" "$9]++} END {for (k in t) printf "%.3f ms %s\\n", t[k] / n[k], k}' | sort -rn
"""
import resource

import torch

from gankit.assemble import resolve
from gankit.training import fast
from gankit.training.loop import Trainer
from speed_vs_plain import TOY, PlainLoop, real_data, timed

COMMON = ["train.ema=0", "train.progress=false", "optim.decay=none", "sample.method=direct"]


def thread_scaling() -> None:
    bf16 = torch.bfloat16
    g, h = torch.randn(2048, 256).to(bf16), torch.randn(2048, 256).to(bf16)
    w, b, x4 = torch.randn(256, 256).to(bf16), torch.randn(256).to(bf16), torch.randn(2048, 4).to(bf16)
    ops = {"fused linear + LeakyReLU (forward)": lambda: torch.ops.mkldnn._linear_pointwise(h, w, b, "leaky_relu", [0.2], ""),
           "weight gradient g^T h": lambda: g.t() @ h, "input gradient g W": lambda: g @ w,
           "LeakyReLU backward": lambda: torch.ops.aten.leaky_relu_backward(g, h, 0.2, True),
           "bias gradient (sum)": lambda: g.sum(0), "end layer's skinny product x^T g": lambda: x4.t() @ g}
    threads = torch.get_num_threads()
    for name, f in ops.items():
        us = []
        for n in (1, 2):
            torch.set_num_threads(n)
            us.append(timed(f, 200))
        print(f"{name}: 1 thread {us[0]:.0f} us, 2 threads {us[1]:.0f} us, {us[0] / us[1]:.2f}x", flush=True)
    torch.set_num_threads(threads)


def step_ms(trainer: Trainer, steps: int = 40) -> float:
    """Median ms per step over 5 rounds of ``steps``, after 5 warm-up steps."""
    for _ in range(2):   # timed() warms up with 3 more
        trainer.train_step()
    return timed(trainer.train_step, steps) / 1e3


def fixed_cost() -> None:
    cfg = resolve("grid25", overrides=TOY + COMMON + ["data.batch_size=16", "train.fast=true"])
    fp32 = step_ms(Trainer(cfg))
    fast.BF16_MIN_BATCH, kept = 0, fast.BF16_MIN_BATCH
    try:
        fused = step_ms(Trainer(cfg))
    finally:
        fast.BF16_MIN_BATCH = kept
    print(f"toy step at batch 16: fused bf16 {fused:.2f} ms, fast's fp32 path {fp32:.2f} ms", flush=True)


def page_faults() -> None:
    cfg = resolve("grid25", overrides=TOY + COMMON + ["data.batch_size=1024", "train.fast=true"])
    trainer = Trainer(cfg)
    plain = PlainLoop(cfg, real_data(trainer), cfg.train.seed)
    for _ in range(10):
        trainer.train_step()
        plain.step()
    faults = {"fast": [], "plain": []}
    for _ in range(3):
        for name, f in (("fast", trainer.train_step), ("plain", plain.step)):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(30):
                f()
            faults[name].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 30)
    print("page faults per step at batch 1,024 (3 rounds of 30 steps): "
          + ", ".join(f"{k} {' / '.join(f'{v:.1f}' for v in vs)}" for k, vs in faults.items()), flush=True)


if __name__ == "__main__":
    thread_scaling()
    fixed_cost()
    page_faults()
