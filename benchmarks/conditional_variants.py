"""Class-conditional digits, variant by variant: train (timed), then score with conditional_quality.py.

    python benchmarks/conditional_variants.py --out runs/cond \
        --variant proj= --variant "concat=cgan.cond_d=concat" --variant "concat_match=cgan.cond_d=concat;cgan.mismatch=0.5"

Each variant is a name and semicolon-separated --set overrides on top of the digits-cond preset. Prints one
markdown row per variant: the agreement of an independent classifier with the requested class (minimum
over classes and mean), within-class diversity relative to the real digits (minimum over classes), and
the training wall time. Runs one training at a time; runs are kept under --out.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

from conditional_quality import classifier, score_run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", action="append", required=True, help="NAME=key=value;key=value")
    a = ap.parse_args()
    clf = classifier()
    for v in a.variant:
        name, _, spec = v.partition("=")
        sets = [s for s in spec.split(";") if s]
        run = a.out / name
        cmd = [sys.executable, "-m", "gankit", "train", "--preset", "digits-cond", "--out", str(run),
               "--seed", str(a.seed), "--set", "train.progress=false"]
        for s in sets:
            cmd += ["--set", s]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        s = score_run(run, 500, clf)
        print(f"| {name} | `{' '.join(sets) or '(preset)'}` | {100 * s['min_agreement']:.1f}% | "
              f"{100 * s['mean_agreement']:.1f}% | {s['min_diversity']:.2f} | {wall:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
