"""Mode coverage on the 2-D mixtures (PacGAN's protocol): configuration variants × seeds.

    python benchmarks/toy_mode_coverage.py --preset grid25 --seeds 0 1 2 3 4 \
        --variant base= --variant pack4=gan.pack=4 --variant "wgangp=loss.name=wasserstein;loss.gp=10;train.d_steps=5"

Each variant is a name and semicolon-separated --set overrides on top of the preset. Every run is timed
(training wall time), sampled twice (2,500 points, `gankit sample --sampler direct` and `--sampler drs`,
discriminator rejection sampling, where the objective allows it; ``--gammas`` adds rejection sampling
with those shifts γ) and scored (modes captured,
high-quality share, reverse KL; see gankit.metrics.toy.pacgan_modes). Prints one row per variant and
sampler with the median over seeds, then the per-seed numbers, after a row scoring 2,500 samples of the
data itself (one draw per seed): the ceiling of the high-quality share. Runs one training at a time.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SAMPLERS = ("direct", "drs")   # every run is sampled both ways (drs only for logistic objectives)

from gankit.assemble import resolve
from gankit.data import load
from gankit.recipes.drs import rejection_sample
from gankit.run import open_run
from gankit.metrics.toy import pacgan_modes


def run_one(preset: str, sets: list[str], seed: int, root: Path, dist, gammas: list[float]) -> dict:
    out = root / f"{preset}-{seed}-{abs(hash(tuple(sets)))}"
    cmd = [sys.executable, "-m", "gankit", "train", "--preset", preset, "--out", str(out), "--seed", str(seed),
           "--set", "train.progress=false"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    scores = {"wall": wall}
    for sampler in SAMPLERS:
        npy = out / f"s-{sampler}.npy"
        p = subprocess.run([sys.executable, "-m", "gankit", "sample", str(out), "--n", "2500", "--out", str(npy),
                            "--sampler", sampler], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode == 0:   # drs needs a logistic objective; other runs score "direct" only
            scores[sampler] = pacgan_modes(np.load(npy), dist.means.numpy(), dist.std)
    if gammas:   # the same run rejection-sampled with other shifts γ (sample.drs_gamma), same seed
        loaded = open_run(out)
        for g in gammas:
            x = rejection_sample(loaded.recipe, 2500, 0, percentile=loaded.cfg.sample.drs_percentile, gamma=g)
            scores[f"drs γ={g:g}"] = pacgan_modes(x.numpy(), dist.means.numpy(), dist.std)
    return scores


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--variant", action="append", required=True, help="NAME=key=value;key=value")
    ap.add_argument("--gammas", type=float, nargs="*", default=[],
                    help="also score rejection sampling with each of these shifts γ (sample.drs_gamma)")
    a = ap.parse_args()
    samplers = list(SAMPLERS) + [f"drs γ={g:g}" for g in a.gammas]
    dist = load(resolve(a.preset).data).distribution   # the data itself, scored the same way: the ceiling
    real = [pacgan_modes(dist.sample(2500, torch.Generator().manual_seed(s))[0].numpy(), dist.means.numpy(), dist.std)
            for s in a.seeds]
    med = {k: statistics.median(r[k] for r in real) for k in ("modes", "high_quality", "reverse_kl")}
    print(f"| {a.preset} | real data (2,500 samples) | — | — | {med['modes']:.0f} | {100 * med['high_quality']:.1f}% | "
          f"{med['reverse_kl']:.3f} | — |", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for v in a.variant:
            name, _, spec = v.partition("=")
            sets = [s for s in spec.split(";") if s]
            res = [run_one(a.preset, sets, s, Path(tmp), dist, a.gammas) for s in a.seeds]
            rows.append((name, res))
            wall = statistics.median(r["wall"] for r in res)
            for sampler in samplers:
                if not all(sampler in r for r in res):
                    continue
                med = {k: statistics.median(r[sampler][k] for r in res) for k in ("modes", "high_quality", "reverse_kl")}
                print(f"| {a.preset} | {name} | `{' '.join(sets) or '(preset)'}` | {sampler} | {med['modes']:.0f} | "
                      f"{100 * med['high_quality']:.1f}% | {med['reverse_kl']:.3f} | {wall:.0f} s |", flush=True)
    print()
    for name, res in rows:
        for sampler in samplers:
            print(name, sampler, [(r[sampler]["modes"], round(r[sampler]["high_quality"], 3),
                                   round(r[sampler]["reverse_kl"], 3), round(r["wall"])) for r in res if sampler in r])


if __name__ == "__main__":
    main()
