"""Does torch.compile speed up the fast step? gankit's fast step, with and without
``nn.Module.compile()`` on G and D, against the plain fp32 loop, interleaved in one process.

    python benchmarks/compile_probe.py [--cases 0 1 2 3]

Cases are those of ``speed_vs_plain.py`` (0-3: the DCGANs). Prints the compile warm-up (3 steps,
compilation included) and img/s of each loop, median of 3 rounds of 20 steps. gankit does not compile
by itself: this is the measurement behind that choice (docs/BENCHMARKS.md).
"""
import argparse
import statistics
import time

from gankit.config import resolve
from gankit.train.loop import Trainer
from speed_vs_plain import CASES, PlainLoop, real_data


def probe(case: int, steps: int = 20, rounds: int = 3) -> None:
    name, preset, sets, batch = CASES[case]
    cfg = resolve(preset, overrides=sets + [f"data.batch_size={batch}", "train.ema=0", "train.progress=false",
                                            "optim.decay=none", "sample.method=direct", "train.fast=true"])
    eager, compiled = Trainer(cfg), Trainer(cfg)
    for net in ("G", "D"):
        compiled.recipe.nets[net].compile()
    plain = PlainLoop(cfg, real_data(eager), cfg.train.seed)
    t0 = time.perf_counter()
    for _ in range(3):
        compiled.train_step()
    warm = time.perf_counter() - t0
    for _ in range(2):
        eager.train_step()
        plain.step()
    res = {"fast": [], "fast + compile": [], "plain": []}
    for _ in range(rounds):
        for key, step in (("fast", eager.train_step), ("fast + compile", compiled.train_step), ("plain", plain.step)):
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            res[key].append(steps * batch / (time.perf_counter() - t0))
    m = {k: statistics.median(v) for k, v in res.items()}
    print(f"| {name} | {batch} | {warm:.0f} s | {m['fast']:.0f} | {m['fast + compile']:.0f} | {m['plain']:.0f} | "
          f"{m['fast'] / m['plain']:.2f}× | {m['fast + compile'] / m['plain']:.2f}× |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, nargs="+", default=[0, 1, 2, 3])
    a = ap.parse_args()
    print("| case | batch | compile warm-up | fast img/s | fast + compile img/s | plain img/s | fast / plain | "
          "fast + compile / plain |")
    print("|---|---|---|---|---|---|---|---|")
    for c in a.cases:
        probe(c)


if __name__ == "__main__":
    main()
