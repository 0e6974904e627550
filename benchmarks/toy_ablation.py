"""Ablation on the 2-D mixtures: objective × trick × seeds, scored with the PacGAN protocol.

    python benchmarks/toy_ablation.py --preset grid25 --seeds 0 1 2 3 4 \
        --variant base= --variant pack4=model.pack=4 --variant "wgangp=loss.name=wasserstein;loss.gp=10;train.d_steps=5"

Each variant is a name and semicolon-separated --set overrides on top of the preset. Every run is timed
(training wall time), sampled (2,500 points, `gankit sample`) and scored (modes captured, high-quality
share, reverse KL; see gankit.metrics.toy.pacgan_modes). Prints one row per variant with the median
over seeds, then the per-seed numbers. Runs one training at a time.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gankit.config import resolve
from gankit.data import load
from gankit.metrics.toy import pacgan_modes


def run_one(preset: str, sets: list[str], seed: int, root: Path) -> dict:
    out = root / f"{preset}-{seed}-{abs(hash(tuple(sets)))}"
    cmd = [sys.executable, "-m", "gankit", "train", "--preset", preset, "--out", str(out), "--seed", str(seed),
           "--set", "train.progress=false"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    npy = out / "s.npy"
    subprocess.run([sys.executable, "-m", "gankit", "sample", str(out), "--n", "2500", "--out", str(npy)],
                   check=True, stdout=subprocess.DEVNULL)
    dist = load(resolve(preset).data).distribution
    return {"wall": wall, **pacgan_modes(np.load(npy), dist.means.numpy(), dist.std)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variant", action="append", required=True, help="NAME=key=value;key=value")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for v in a.variant:
            name, _, spec = v.partition("=")
            sets = [s for s in spec.split(";") if s]
            res = [run_one(a.preset, sets, s, Path(tmp)) for s in a.seeds]
            med = {k: statistics.median(r[k] for r in res) for k in ("modes", "high_quality", "reverse_kl", "wall")}
            rows.append((name, sets, med, res))
            print(f"| {a.preset} | {name} | `{' '.join(sets) or '(preset)'}` | {med['modes']:.0f} | "
                  f"{100 * med['high_quality']:.1f}% | {med['reverse_kl']:.3f} | {med['wall']:.0f} s |", flush=True)
    print()
    for name, _, _, res in rows:
        print(name, [(r["modes"], round(r["high_quality"], 3), round(r["reverse_kl"], 3), round(r["wall"])) for r in res])


if __name__ == "__main__":
    main()
