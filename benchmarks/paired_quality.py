"""Image-conditioned runs (paired.task) against their targets, and against the data's distribution.

    python benchmarks/paired_quality.py RUN_DIR [RUN_DIR ...]

For each run: every image of its data set is degraded as in training (fixed seed 7), translated by the
EMA generator, and scored against the original — PSNR, SSIM, L1 (gankit.metrics.paired) — and as a set
against the real images with FID in the feature space of the data set's domain classifier (the one
`gankit eval` uses when no Inception weights are installed), and for sharpness: the mean absolute
Laplacian (4-neighbour) of the outputs divided by that of the originals (1 = as sharp as the data,
below 1 = blurrier). Prints one markdown row per run: FID, PSNR, SSIM, L1, sharpness, images.
"""
import argparse
from pathlib import Path

import torch

from gankit.data import Batches, load
from gankit.metrics.evaluate import evaluate, reference_from_source, reference_ident
from gankit.metrics.paired import paired_metrics
from gankit.run import open_run


def laplacian_energy(x: torch.Tensor) -> float:
    """Mean |4-neighbour Laplacian| over the interior pixels of (N, C, H, W) images."""
    lap = 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]
    return float(lap.abs().mean())


def score(run: Path) -> dict:
    loaded = open_run(run)
    d = loaded.cfg.data
    source = load(d, loaded.cfg.owned.get(d.name))
    n = len(source)
    pairs = next(Batches(source, n, seed=7, pair=loaded.recipe.degradation))
    gen = torch.Generator().manual_seed(7)
    out = torch.cat([loaded.recipe.sample(loaded.recipe.latents(len(a), generator=gen), a).cpu()
                     for a in pairs["a"].split(500)])
    m = paired_metrics(out, pairs["x"])
    ref = reference_from_source(source, d.name, reference_ident(d), n, d)
    values, _ = evaluate(out, "images", ref, ["fid"], features="classifier")
    sharp = laplacian_energy(out) / laplacian_energy(pairs["x"])
    return {**m, "fid": values["fid"], "sharpness": sharp, "n": n}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    for run in ap.parse_args().runs:
        s = score(run)
        print(f"| {run.name} | {s['fid']:.2f} | {s['psnr']:.2f} dB | {s['ssim']:.3f} | {s['l1']:.4f} | {s['sharpness']:.3f} | {s['n']} |", flush=True)


if __name__ == "__main__":
    main()
