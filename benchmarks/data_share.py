"""The share of training time spent waiting for data when a folder is streamed from disk.

    python benchmarks/data_share.py [--images 4096] [--size 64] [--steps 150] [--workers 1]

Writes ``--images`` random-texture PNGs (size x size RGB) into a temporary folder, and trains the DCGAN
(pytorch/examples sizes, batch 64) on it for ``--steps`` steps twice: once streamed from disk by
DataLoader workers (the path gankit takes for folders of 2 GiB or more decoded — forced here by lowering
the limit, so the benchmark need not write gigabytes) and once held in memory. Prints the median
``time/data_share`` (wall time inside ``next(batches)`` / wall time of the log interval) and the step
time of each, from the runs' metrics.jsonl (the first interval, with worker start-up, is left out).
"""
import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import gankit.data.folder as folder
from gankit.assemble import resolve
from gankit.training.loop import Trainer


def make_folder(root: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    for i in range(n):   # textures that do not compress away, so decoding costs what a photo would
        img = np.roll(base, (i * 7) % size, axis=0) ^ rng.integers(0, 32, (size, size, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / f"{i:06d}.png")


def shares(run: Path) -> tuple[float, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][1:]
    return statistics.median(r["time/data_share"] for r in rows), statistics.median(r["time/step_ms"] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        images = Path(tmp) / "images"
        images.mkdir()
        make_folder(images, a.images, a.size)
        print(f"{a.images} PNGs of {a.size}x{a.size}x3 ({sum(f.stat().st_size for f in images.iterdir()) / 2**20:.0f} MiB); "
              f"DCGAN, batch 64, {a.steps} steps, {a.workers} worker(s)")
        print("| data path | data-wait share (median) | step ms |")
        print("|---|---|---|")
        limit = folder.MEMORY_LIMIT
        for name, max_bytes in (("streamed from disk (DataLoader workers)", 0), ("in memory (uint8 tensor)", limit)):
            folder.MEMORY_LIMIT = max_bytes
            cfg = resolve("folder", overrides=[f"data.path={images}", f"data.size={a.size}", f"data.workers={a.workers}",
                                               "model.z_dim=100", "model.g_width=64", "model.d_width=64",
                                               f"train.steps={a.steps}", "train.log_every=25", "train.progress=false",
                                               f"train.sample_every={a.steps}", f"train.ckpt_every={a.steps}"])
            run = Path(tmp) / name.split()[0]
            trainer = Trainer(cfg)
            assert type(trainer.source).__name__ == ("StreamSource" if max_bytes == 0 else "TensorSource")
            trainer.run(run, log=lambda s: None)
            share, step_ms = shares(run)
            print(f"| {name} | {share:.1%} | {step_ms:.0f} |", flush=True)
        folder.MEMORY_LIMIT = limit


if __name__ == "__main__":
    main()
