"""Variants of the ``train.fast`` step against the fast step itself: ideas measured and not adopted, and one
shipped part taken out.

    python benchmarks/fast_variants.py [--cases 0 2] [--probes ends_fp32 fpmath compile native_wgrad]

For each case of ``speed_vs_plain.py`` (0-3: the DCGANs) and each probe: two fast Trainers built from the
same config — one as shipped, one changed by the probe — and the plain fp32 loop, interleaved round by
round in one process (3 warm-up steps each, then 4 rounds of 15 steps); prints img/s of each and both
ratios to the plain loop. Probes:

* ``ends_fp32``: D's first convolution and G's last one run outside autocast, in float32 (the layers with
  1 or 3 image channels, which bf16's blocked kernels pad);
* ``fpmath``: no autocast; float32 tensors with oneDNN computing convolutions and matmuls in bf16 itself
  (``torch.backends.mkldnn.{conv,matmul}.fp32_precision = "bf16"``, set around the step only);
* ``compile``: ``nn.Module.compile()`` on G and D, without fast's gradient-layout hooks (they break the
  graph; inductor picks its own layouts);
* ``native_wgrad``: every convolution weight gradient by PyTorch's convolution backward (fast computes
  those of large strided layers on small maps as im2col matrix products).
"""
import argparse
import contextlib
import statistics
import time

import torch

from gankit.assemble import resolve
from gankit.training import fast
from gankit.training.kernels import conv_products
from gankit.training.loop import Trainer
from speed_vs_plain import CASES, PlainLoop, real_data


def ends_fp32(t: Trainer) -> None:
    for net, pick in ((t.recipe.D, 0), (t.recipe.G, -1)):
        fast.float32_layer_([m for m in net.modules() if isinstance(m, fast.CONVOLUTIONS)][pick])   # as point data's ends


def around_each_step(t: Trainer, setting) -> None:
    """Run every training step of ``t`` inside ``setting()`` (a context manager changing a global)."""
    step = t.train_step

    def wrapped():
        with setting():
            step()
    t.train_step = wrapped


@contextlib.contextmanager
def onednn_bf16():
    torch.backends.mkldnn.conv.fp32_precision = torch.backends.mkldnn.matmul.fp32_precision = "bf16"
    try:
        yield
    finally:
        torch.backends.mkldnn.conv.fp32_precision = torch.backends.mkldnn.matmul.fp32_precision = "none"


def fpmath(t: Trainer) -> None:
    t.bf16 = False
    around_each_step(t, onednn_bf16)


def compiled(t: Trainer) -> None:
    for name in ("G", "D"):
        net = t.recipe.nets[name]
        for m in net.modules():
            m._forward_pre_hooks.clear()   # fast's gradient-layout hooks (the only pre-hooks of these nets)
        net.compile()


@contextlib.contextmanager
def no_products():
    shipped = conv_products.PRODUCT_MIN_WEIGHT
    conv_products.PRODUCT_MIN_WEIGHT = float("inf")   # every weight gradient by PyTorch's convolution backward
    try:
        yield
    finally:
        conv_products.PRODUCT_MIN_WEIGHT = shipped


def native_wgrad(t: Trainer) -> None:
    around_each_step(t, no_products)


PROBES = {"ends_fp32": ends_fp32, "fpmath": fpmath, "compile": compiled, "native_wgrad": native_wgrad}


def probe(case: int, name: str, steps: int = 15, rounds: int = 4) -> None:
    label, preset, sets, batch = CASES[case]
    cfg = resolve(preset, overrides=sets + [f"data.batch_size={batch}", "train.ema=0", "train.progress=false",
                                            "optim.decay=none", "sample.method=direct", "train.fast=true"])
    shipped, changed = Trainer(cfg), Trainer(cfg)
    PROBES[name](changed)
    plain = PlainLoop(cfg, real_data(shipped), cfg.train.seed)
    loops = {"fast": shipped.train_step, name: changed.train_step, "plain": plain.step}
    for step in loops.values():
        for _ in range(3):
            step()
    res = {k: [] for k in loops}
    for _ in range(rounds):
        for key, step in loops.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            res[key].append(steps * batch / (time.perf_counter() - t0))
    m = {k: statistics.median(v) for k, v in res.items()}
    print(f"| {label} | {batch} | {name} | {m['fast']:.0f} | {m[name]:.0f} | {m['plain']:.0f} | "
          f"{m['fast'] / m['plain']:.2f}× | {m[name] / m['plain']:.2f}× |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--probes", nargs="+", default=list(PROBES), choices=list(PROBES))
    a = ap.parse_args()
    print("| case | batch | probe | fast img/s | probe img/s | plain img/s | fast / plain | probe / plain |")
    print("|---|---|---|---|---|---|---|---|")
    for c in a.cases:
        for p in a.probes:
            probe(c, p)


if __name__ == "__main__":
    main()
