"""Two runs sharing the machine: how much each slows down against running alone.

    python benchmarks/shared_cores.py [--preset digits] [--seconds 60] [--policies PASSIVE ACTIVE]

For each OpenMP wait policy, the preset trains for ``--seconds`` of loop time alone, then two copies train
at once (started together, each in its own process). Throughput is the mean of ``time/it_per_s`` over
metrics.jsonl's rows after the first (start-up excluded). With one other busy process on a machine of C
cores, a run can at best keep its share: the slowdown should be about 2x, not more. gankit's own command
sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment says otherwise; ``ACTIVE`` is what spinning OpenMP
threads do to each other. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def start(out: Path, preset: str, seconds: float, policy: str, threads: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(dict(item.split("=", 1) for item in policy.split(",") if item != "-"))
    cmd = [sys.executable, "-m", "gankit", "train", "--preset", preset, "--out", str(out),
           "--set", "train.progress=false", "--set", "train.steps=1000000", "--set", f"train.max_seconds={seconds}",
           "--set", "train.log_every=20", "--set", "train.sample_every=1000000", "--set", "train.ckpt_every=1000000",
           "--set", f"train.threads={threads}"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def throughput(out: Path, after: float, before: float = float("inf")) -> float:
    """Mean it/s of metrics.jsonl's rows (the first excluded: start-up) logged between ``after`` and ``before``
    seconds of training."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    speeds, clock = [], 0.0
    for r in rows:
        if "time/it_per_s" not in r:
            continue
        clock += 20 / r["time/it_per_s"]   # train.log_every steps per row
        if after <= clock <= before:
            speeds.append(r["time/it_per_s"])
    return statistics.fmean(speeds[1:] if after == 0 else speeds)


def measure(root: Path, preset: str, seconds: float, policy: str, threads: int, stagger: float) -> dict:
    shutil.rmtree(root, ignore_errors=True)
    alone = start(root / "alone", preset, seconds, policy, threads)
    _, err = alone.communicate()
    first_line = err.splitlines()[0] if err else ""
    pair = [start(root / "pair0", preset, seconds, policy, threads)]
    time.sleep(stagger)
    pair.append(start(root / "pair1", preset, seconds, policy, threads))
    errs = [p.communicate()[1] for p in pair]
    solo = throughput(root / "alone", 0.0)
    # while both ran: the first run's rows after the second started, the second's rows before the first ended
    shared = [throughput(root / "pair0", stagger + 3.0), throughput(root / "pair1", 0.0, seconds - stagger)]
    return {"policy": policy, "threads": threads, "stagger": stagger, "alone_it_s": solo, "pair_it_s": shared,
            "slowdown": [solo / s for s in shared], "first_line": first_line,
            "pair_first_lines": [e.splitlines()[0] if e else "" for e in errs]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="digits")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--policies", nargs="+", default=["-"],
                    help="OpenMP settings to compare, each VAR=VALUE[,VAR=VALUE]; - = the environment as it is")
    ap.add_argument("--stagger", nargs="+", type=float, default=[0.0, 10.0],
                    help="seconds between the starts of the two runs sharing the machine")
    ap.add_argument("--threads", nargs="+", type=int, default=[0], help="train.threads values (0 = the default)")
    ap.add_argument("--out", default="bench/shared_cores")
    a = ap.parse_args()
    results = [measure(Path(a.out) / f"{policy.replace('=', '-').replace(',', '_')}-{threads}-{stagger:g}", a.preset,
                       a.seconds, policy, threads, stagger)
               for policy in a.policies for threads in a.threads for stagger in a.stagger]
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "results.json").write_text(json.dumps(results, indent=1))
    print(f"os.cpu_count() = {os.cpu_count()}; {a.preset}, {a.seconds:g} s of training per run")
    print("| OpenMP environment | train.threads | second run starts after | alone it/s | both running it/s "
          "(first / second) | slowdown (first / second) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['policy']} | {r['threads'] or 'auto'} | {r['stagger']:g} s | {r['alone_it_s']:.1f} | "
              f"{' / '.join(f'{s:.1f}' for s in r['pair_it_s'])} | {' / '.join(f'{s:.2f}x' for s in r['slowdown'])} |")
    for r in results:
        print(f"\n{r['policy']}, train.threads={r['threads']}, stagger {r['stagger']:g} s: first log lines")
        for line in [r["first_line"]] + r["pair_first_lines"]:
            print(f"    {line}")


if __name__ == "__main__":
    main()
