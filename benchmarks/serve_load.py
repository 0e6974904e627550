"""A bounded load on `gankit serve` over the loopback: N requests, C at a time, latency percentiles and errors.

    python benchmarks/serve_load.py [--requests 5000] [--concurrency 16] [--run RUN]

Without --run it trains the digits preset for 300 steps into bench/serve-run first. The server runs in this
process (uvicorn on a free port of 127.0.0.1), the clients in a thread pool of C threads with urllib.
"""
from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def load_test(base: str, path: str, requests: int, concurrency: int) -> dict:
    """``requests`` GETs of ``base + path``, ``concurrency`` at a time: latencies (ms) and errors."""
    def one(_):
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(base + path, timeout=60) as r:
                ok = r.status == 200 and bool(r.read())
        except (urllib.error.URLError, OSError):
            ok = False
        return (time.perf_counter() - t0) * 1000, ok
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(requests)))
    ms = np.array([r[0] for r in results])
    return {"path": path, "requests": requests, "concurrency": concurrency, "errors": sum(not r[1] for r in results),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "per_s": round(requests / (time.perf_counter() - t0), 1)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--run", type=Path)
    a = ap.parse_args()
    run = a.run
    if run is None:
        run = ROOT / "bench" / "serve-run"
        if not (run / "checkpoints").is_dir():
            from gankit.cli import main

            main(["train", "--out", str(run), "--set", "train.steps=300", "--set", "train.progress=false"])
    from gankit.run import open_run
    from gankit.serve import serve_in_thread

    base, stop = serve_in_thread(open_run(run), run.name)
    try:
        for path in ("/api/info", "/api/sample?n=16&seed=1", "/api/interpolate?seed_a=0&seed_b=1&t=0.5"):
            print(json.dumps(load_test(base, path, a.requests, a.concurrency)), flush=True)
    finally:
        stop()
