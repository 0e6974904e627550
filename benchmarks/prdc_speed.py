"""Speed and exactness of gankit's k-NN metrics against the reference ``prdc`` package.

Command (from the repository root, ~1.5 min on 2 cores):

    .venv/bin/python benchmarks/prdc_speed.py

Options: ``--n 10000 --m 10000 --dim 2048 --k 5 --repeats 2 --seed 0 --chunk 2048``.

On the same realistic float32 features (Inception-pool3-like: a positive mean, a random rank-64
covariance plus isotropic noise; the fake set slightly shifted and wider) it times, interleaved,
(a) ``prdc.compute_prdc`` and (b) ``gankit.metrics.knn.prdc``, and prints both times, the speed-up and
the largest absolute difference of the four metrics.

Roofline: the matrix products gankit needs are the upper-triangle tiles of real×real and fake×fake
(symmetric: radii) plus the whole real×fake matrix, 2·|I|·|J|·D flops per |I|×|J| tile. The script
measures the machine's float32 peak with a 4096³ ``torch.mm`` (best of 3, before and after the timed
runs), times a bare ``torch.mm``
over exactly those tile shapes, and reports ``gankit / roofline`` = gankit time / (flops / peak).
The last line is a markdown table row.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import time

import numpy as np
import torch

from gankit.metrics import knn


def features(rng, n, dim, rank, mean, basis, shift=0.0, scale=1.0):
    z = rng.standard_normal((n, rank), dtype=np.float32) * scale
    x = z @ basis
    x += mean + shift
    x += 0.3 * rng.standard_normal((n, dim), dtype=np.float32)
    return x


def peak_gflops(size=4096, repeats=3):
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    best = min(_timed(lambda: torch.mm(a, b, out=out)) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def gankit_tiles(n, m, chunk, k):
    """The (rows, cols) tile shapes whose products gankit computes for prdc(real, fake, k)."""
    tiles = []
    for size in (n, m):   # real x real, fake x fake: diagonal and upper tiles only
        blocks = knn._splits(size, chunk, min_size=min(size, k + 1 + knn._EXTRA))
        for i, (s, e) in enumerate(blocks):
            tiles += [(e - s, e2 - s2) for s2, e2 in blocks[i:]]
    tiles += [(e - s, e2 - s2) for s, e in knn._splits(n, chunk) for s2, e2 in knn._splits(m, chunk)]
    return tiles


def mm_only(tiles, dim):
    """Time bare float32 torch.mm over the given tile shapes (the GEMM part of gankit's work)."""
    side_r, side_c = max(t[0] for t in tiles), max(t[1] for t in tiles)
    a, b = torch.randn(side_r, dim), torch.randn(side_c, dim)
    buf = torch.empty(side_r * side_c)

    def run():
        for r, c in tiles:
            torch.mm(a[:r], b[:c].t(), out=buf[: r * c].view(r, c))
    run()
    return min(_timed(run) for _ in range(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--m", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=knn.DEFAULT_CHUNK)
    args = ap.parse_args()

    import prdc as prdc_ref   # the reference implementation

    rng = np.random.default_rng(args.seed)
    rank = 64
    basis = (rng.standard_normal((rank, args.dim), dtype=np.float32) / np.sqrt(rank)).astype(np.float32)
    mean = np.abs(rng.standard_normal(args.dim, dtype=np.float32))
    real = features(rng, args.n, args.dim, rank, mean, basis)
    fake = features(rng, args.m, args.dim, rank, mean, basis, shift=0.02, scale=1.1)
    print(f"real {real.shape}, fake {fake.shape}, {real.dtype}, k={args.k}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    peak_before = peak_gflops()
    knn.prdc(real[:500], fake[:500], k=args.k)   # warm-up (allocator, thread pool)
    t_ref, t_gk, stats = [], [], {}
    for rep in range(args.repeats):
        with contextlib.redirect_stdout(io.StringIO()):
            t = time.perf_counter()
            ref = prdc_ref.compute_prdc(real, fake, args.k)
            t_ref.append(time.perf_counter() - t)
        stats = {}
        t = time.perf_counter()
        ours = knn.prdc(real, fake, k=args.k, chunk=args.chunk, stats=stats)
        t_gk.append(time.perf_counter() - t)
        print(f"repeat {rep}: prdc {t_ref[-1]:.2f} s, gankit {t_gk[-1]:.2f} s")
    diff = max(abs(float(ref[key]) - ours[key]) for key in ref)
    print("prdc   :", {key: round(float(v), 6) for key, v in ref.items()})
    print("gankit :", {key: round(v, 6) for key, v in ours.items()})
    print("exact float64 work:", stats)

    peak = max(peak_before, peak_gflops())   # before and after the timed runs: the better one
    tiles = gankit_tiles(args.n, args.m, args.chunk, args.k)
    flops = sum(2.0 * r * c * args.dim for r, c in tiles)
    roof = flops / (peak * 1e9)
    t_mm = mm_only(tiles, args.dim)
    best_ref, best_gk = min(t_ref), min(t_gk)
    print(f"prdc.compute_prdc : {best_ref:.2f} s (best of {args.repeats})")
    print(f"gankit prdc       : {best_gk:.2f} s (best of {args.repeats})  speed-up {best_ref / best_gk:.1f}x")
    print(f"max |difference| of the four metrics: {diff:.3g}")
    print(f"peak float32 GEMM (4096^3): {peak:.0f} GFLOP/s")
    print(f"needed GEMM: {len(tiles)} tiles, {flops / 1e12:.3f} TFLOP -> {roof:.2f} s at peak "
          f"(bare torch.mm over the same tiles: {t_mm:.2f} s)")
    print(f"gankit / roofline = {best_gk / roof:.2f}x   (gankit / bare torch.mm = {best_gk / t_mm:.2f}x)")
    load = os.getloadavg()[0]
    if load > torch.get_num_threads() + 0.5:
        print(f"warning: load average {load:.1f} - other processes share the cores, timings are noisy")
    print()
    print("| N x M x D | k | prdc s | gankit s | speed-up | peak GFLOP/s | roofline s | gankit / roofline "
          "| max diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.n} x {args.m} x {args.dim} | {args.k} | {best_ref:.2f} | {best_gk:.2f} | "
          f"{best_ref / best_gk:.1f}x | {peak:.0f} | {roof:.2f} | {best_gk / roof:.2f}x | {diff:.2g} |")


if __name__ == "__main__":
    main()
