"""Fault injection: a training run SIGKILLed at random moments, resumed after each kill.

    python benchmarks/kill9.py [--kills 20] [--preset digits] [--steps 240] [--seed 0] [--out bench/kill9]

One run is killed ``--kills`` times with SIGKILL (no chance to clean up) and resumed with
``gankit train --resume`` after each kill, then left to finish. The first kill is ``early`` and the second ``first-steps``
(the run has no checkpoint yet); the others are ``early``, ``write`` and ``random`` in turn, in a seeded
random order:

- ``early``: within the first 0.2–2.5 s of a process (importing, loading data, restoring);
- ``write``: within 4 ms of the moment the temporary directory of the process's first, second or third
  checkpoint appears (the process is writing that checkpoint);
- ``first-steps``: within 0.3 s of the first logged step of a run that has no checkpoint yet;
- ``random``: at a uniformly random moment of the first ``--window`` seconds of a process (start-up included).

After each kill every checkpoint on disk is verified (sizes and SHA-256 recorded in its ``state.json``);
the steps recomputed are the steps the killed process had logged (``train.log_every=1``) beyond the
checkpoint the resume starts from. At the end the final weights and training state are compared bit for
bit with an uninterrupted run of the same command. Prints a Markdown table; writes ``results.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from gankit.training import checkpoint

KINDS = ("early", "write", "random")   # and, once, first-steps


def command(out: Path, args: argparse.Namespace, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "gankit", "train", "--preset", args.preset, "--seed", str(args.seed),
           "--out", str(out)]
    for s in (f"train.steps={args.steps}", "train.max_seconds=0", "train.progress=false", "train.log_every=1",
              f"train.ckpt_every={args.ckpt_every}", f"train.sample_every={args.ckpt_every}", "train.keep=2"):
        cmd += ["--set", s]
    return cmd + (["--resume"] if resume else [])


def logged_step(run: Path) -> int:
    """The last step the run's metrics.jsonl records whole (0 when none)."""
    step = 0
    path = run / "metrics.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                step = max(step, json.loads(line)["step"])
            except (ValueError, KeyError):
                pass
    return step


def last_checkpoint_step(root: Path) -> int | None:
    """The step of the newest usable checkpoint under ``root``; None when there is none."""
    if not checkpoint.has_any(root):
        return None
    try:
        return checkpoint.read_meta(checkpoint.latest(root, warn=lambda s: None))["step"]
    except Exception:   # noqa: BLE001 — none usable
        return None


def kill_once(out: Path, args: argparse.Namespace, kind: str, rng: random.Random, window: float) -> dict:
    """Start (or resume) the run, kill it as ``kind`` says; what the kill left behind."""
    resume = out.exists()
    start = last_checkpoint_step(out / "checkpoints") or 0
    log = out / "metrics.jsonl"
    stamp = log.stat().st_mtime_ns if log.exists() else None
    p = subprocess.Popen(command(out, args, resume), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.perf_counter()
    def tmp_dirs() -> set[tuple[str, int]]:
        try:
            return {(d.name, d.stat().st_ino) for d in root.glob(".step_*.tmp")} if root.is_dir() else set()
        except FileNotFoundError:   # renamed into place or cleared as we looked
            return set()

    root = out / "checkpoints"
    left = tmp_dirs()   # what earlier kills left: not this process's writes
    seen: set[tuple[str, int]] = set()
    nth = rng.randint(1, 3)   # write kills: inside this process's first, second or third checkpoint write
    if kind == "early":
        deadline = t0 + rng.uniform(0.2, 2.5)
    elif kind == "random":
        deadline = t0 + rng.uniform(0.2, window)
    else:
        deadline = t0 + 600
    while time.perf_counter() < deadline and p.poll() is None:
        if kind == "first-steps" and logged_step(out) > 0:   # training, no checkpoint yet
            time.sleep(rng.uniform(0.0, 0.3))
            break
        if kind == "write":
            seen |= tmp_dirs() - left
            if len(seen) >= nth:
                time.sleep(rng.uniform(0.0, 0.004))   # somewhere inside the write
                break
        time.sleep(0.0005 if kind == "write" else 0.01)
    finished = p.poll() is not None
    if not finished:
        os.kill(p.pid, signal.SIGKILL)
    _, err = p.communicate()
    in_write = bool(tmp_dirs() - left)   # this process's checkpoint directory, left half-written
    reached = logged_step(out)
    wrote = log.exists() and log.stat().st_mtime_ns != stamp   # else `reached` is the previous process's
    bad = [d.name for d in sorted(root.glob("step_*")) if checkpoint.problem(d) is not None] if root.is_dir() else []
    after = last_checkpoint_step(root)
    return {"kind": kind, "resume": resume, "seconds": round(time.perf_counter() - t0, 3), "finished_first": finished,
            "returncode": p.returncode, "error": err.strip().splitlines()[-1:] if p.returncode not in (0, -9) else [],
            "start": start, "reached": reached if wrote else start, "checkpoint_after": after, "corrupt": bad,
            "in_write": in_write}


def tensors(run: Path) -> tuple[dict, dict]:
    ckpt = checkpoint.latest(run / "checkpoints")
    return load_file(str(ckpt / "weights.safetensors")), load_file(str(ckpt / "state.safetensors"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--preset", default="digits")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--window", type=float, default=8.0, help="random kills: within this many seconds of a start")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/kill9")
    args = ap.parse_args()
    root = Path(args.out)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)

    t0 = time.perf_counter()
    subprocess.run(command(root / "straight", args, False), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    life = time.perf_counter() - t0   # a whole uninterrupted process, start-up included

    rng = random.Random(args.seed)
    kinds = [KINDS[i % len(KINDS)] for i in range(args.kills - 2)]
    rng.shuffle(kinds)
    kinds = ["early", "first-steps"] + kinds   # a run that has no checkpoint yet, twice
    run = root / "killed"
    rows = []
    for kind in kinds:
        rows.append(kill_once(run, args, kind, rng, args.window))
    final = subprocess.run(command(run, args, True), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    w1, s1 = tensors(root / "straight")
    w2, s2 = tensors(run)
    equal = (w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
             and s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1))

    for row in rows:   # steps this process computed that the next one computes again
        advanced = row["reached"] > row["start"] and not row["finished_first"]
        row["recomputed"] = max(0, row["reached"] - (row["checkpoint_after"] or 0)) if advanced else 0
    resumes = [r for r in rows if r["resume"]] + [{"returncode": final.returncode}]
    summary = {
        "preset": args.preset, "steps": args.steps, "ckpt_every": args.ckpt_every, "kills": len(rows),
        "kills_by_kind": {k: sum(r["kind"] == k for r in rows) for k in KINDS + ("first-steps",)},
        "kills_inside_a_checkpoint_write": sum(r["in_write"] for r in rows),
        "kills_before_the_first_checkpoint": sum(r["checkpoint_after"] is None for r in rows),
        "resumes": len(resumes),
        "resumes_that_succeeded": sum(r["returncode"] in (0, -signal.SIGKILL) for r in resumes),
        "corrupt_checkpoints_found": sum(len(r["corrupt"]) for r in rows),
        "steps_recomputed": sum(r["recomputed"] for r in rows),
        "final_returncode": final.returncode,
        "final_weights_and_state_bitwise_equal": equal,
        "uninterrupted_seconds": round(life, 1),
        "rows": rows,
    }
    (root / "results.json").write_text(json.dumps(summary, indent=1))
    print("| # | kill | after s | step reached | checkpoint left | recomputed | corrupt |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for i, r in enumerate(rows, 1):
        left = "none" if r["checkpoint_after"] is None else r["checkpoint_after"]
        kind = r["kind"] + (" (in write)" if r["in_write"] else "") + (" (had finished)" if r["finished_first"] else "")
        print(f"| {i} | {kind} | {r['seconds']:.2f} | {r['reached']} | {left} | {r['recomputed']} | {len(r['corrupt'])} |")
    print()
    for k, v in summary.items():
        if k != "rows":
            print(f"- {k}: {v}")
    if summary["resumes_that_succeeded"] < summary["resumes"] or not equal or summary["corrupt_checkpoints_found"]:
        print(final.stderr, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
