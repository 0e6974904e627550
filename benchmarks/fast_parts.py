"""Which part of train.fast helps where: fp32, + fused Adam, + channels-last, + bf16 autocast.

    python benchmarks/fast_parts.py

Each variant is gankit's training step (recipe phases on gankit's batches, train.reuse_fake on, EMA off)
with parts of ``gankit.train.fast`` switched on one by one, 3 warm-up steps, then 3 interleaved rounds
of 15 steps; prints steps/s of fp32 and each variant's speed relative to it (median over rounds).
"""
import time, torch, statistics
from gankit.config import resolve
from gankit.train.loop import Trainer
from gankit.train import fast
DC = ["model.arch=dcgan", "model.z_dim=100", "model.g_width=64", "model.d_width=64", "data.size=32",
      "data.channels=3", "data.batch_size=64"]
COMMON = ["train.ema=0", "train.progress=false", "optim.decay=none", "sample.method=direct", "train.reuse_fake=true"]
def make(preset, sets, fused, bf16, cl):
    t = Trainer(resolve(preset, overrides=sets + COMMON))
    if fused:
        fast.prepare_({}, t.recipe.optimizers)
    if cl:
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
for preset, sets, label in (("digits", DC, "DCGAN 32x32x3 b64"), ("grid25", ["data.batch_size=256"], "toy b256"),
                             ("grid25", ["data.batch_size=1024"], "toy b1024"), ("digits", [], "digits MLP b64")):
    cases = {"fp32": (False, False, False), "fp32+fused": (True, False, False), "fp32+fused+CL": (True, False, True), "bf16+fused": (True, True, False), "bf16+fused+CL": (True, True, True)}
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
