"""Sequence GANs measured against maximum likelihood at one wall-clock budget.

    python benchmarks/sequence_gans.py oracle  [--seeds 0 1 2] [--budget 240] [--out bench/sequence]
    python benchmarks/sequence_gans.py reviews [--seeds 0 1 2] [--budget 240] [--data DIR]
    python benchmarks/sequence_gans.py speed

oracle / reviews: for each seed, the presets mle, seqgan and gumbel train for the same ``--budget`` seconds
(MLE for the whole of it; the GANs' maximum-likelihood pre-training is part of it); each run's final model —
and each GAN's pre-trained start, its checkpoint at the end of pre-training — is scored on 10,000 samples
(``gankit.quality_diversity``: NLL_oracle, NLL_test, unique share on the oracle; BLEU-5, self-BLEU-5 on the
reviews); the seed-0 MLE run is swept over temperatures and the picture written with every run as a point.
The oracle's own entropy (the NLL of its held-out data under itself) and a uniform generator are the floor
and the ceiling. Writes ``results.json`` and ``curve.png`` under ``--out``/<what>/ and prints the tables.

speed: tokens per second of an MLE step and of a SeqGAN adversarial round (one policy-gradient step with
its rollouts, then train.d_steps D steps) and of a Gumbel adversarial step, measured side by side.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from gankit.quality_diversity import Scorer, draw_picture
from gankit.run import open_run

PRESETS = ("mle", "seqgan", "gumbel")
TEMPERATURES = (0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4)
SAMPLES = 10_000


def train(preset: str, out: Path, seed: int, budget: float, extra: list[str]) -> float:
    """Train one preset for ``budget`` seconds in a fresh process; its wall time."""
    sets = [f"train.max_seconds={budget}", "train.keep=1000", "train.progress=false", *extra]
    cmd = [sys.executable, "-m", "gankit", "train", "--preset", preset, "--seed", str(seed), "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def pretrain_checkpoint(run: Path) -> Path | None:
    """The checkpoint at the end of a GAN run's maximum-likelihood pre-training."""
    loaded = open_run(run)
    steps = loaded.cfg.table(loaded.cfg.train.recipe).pretrain
    ckpt = run / "checkpoints" / f"step_{steps:07d}"
    return ckpt if ckpt.is_dir() else None


def reference_rows(scorer: Scorer) -> dict[str, dict[str, float]]:
    """The oracle's own samples (its held-out data: the entropy floor) and a uniform generator."""
    from gankit.data.oracle import VOCAB
    from gankit.metrics.text import oracle_nll

    test = scorer.test
    g = torch.Generator().manual_seed(0)
    uniform = torch.randint(0, VOCAB, (SAMPLES, scorer.length), generator=g) + scorer.specials
    return {"oracle (held-out data)": {"nll_oracle": oracle_nll(scorer.oracle, test, scorer.specials, scorer.length)["nll_oracle"]},
            "uniform generator": {"nll_oracle": oracle_nll(scorer.oracle, uniform, scorer.specials, scorer.length)["nll_oracle"],
                                  "nll_test": float(torch.log(torch.tensor(float(VOCAB + 1))))}}


def quality(what: str, seeds: list[int], budget: float, out: Path, data: str | None) -> dict:
    folder = out / what
    folder.mkdir(parents=True, exist_ok=True)
    extra = [] if what == "oracle" else ["data.name=reviews", *([f"data.path={data}"] if data else [])]
    results: dict = {"budget": budget, "runs": [], "curve": None}
    t_all = time.perf_counter()
    scorer = None
    for seed in seeds:
        for preset in PRESETS:
            run = folder / f"{preset}-seed{seed}"
            if not (run / "checkpoints").is_dir():
                seconds = train(preset, run, seed, budget, extra)
            else:
                seconds = float("nan")
            loaded = open_run(run)
            scorer = scorer or Scorer(loaded)
            row = {"preset": preset, "seed": seed, "train_seconds": seconds, "steps": loaded.checkpoint.name,
                   **scorer.score(loaded, loaded.recipe.temperature, SAMPLES, seed)}
            start = pretrain_checkpoint(run) if preset != "mle" else None
            if start is not None:
                row["start"] = scorer.score(open_run(start), 1.0, SAMPLES, seed)
            results["runs"].append(row)
            print(json.dumps(row), flush=True)
        if seed == seeds[0]:
            base = open_run(folder / f"mle-seed{seed}")
            results["curve"] = [scorer.score(base, t, SAMPLES, seed) for t in TEMPERATURES]
        if seed == seeds[0]:
            results["one_seed_seconds"] = time.perf_counter() - t_all
    if what == "oracle":
        results["references"] = reference_rows(scorer)
    marks = []
    for r in results["runs"]:
        if r["preset"] != "mle":
            marks.append({"label": f"{r['preset']} seed {r['seed']}", **r})
    for r in results["runs"]:
        if r["preset"] == "mle":
            marks.append({"label": f"mle (whole budget) seed {r['seed']}", **r})
    picture = {"axes": scorer.axes(), "curve": results["curve"], "points": marks}
    draw_picture(picture, folder / "curve.png", title=f"{what}: MLE (seed {seeds[0]}) over temperatures; "
                                                       f"{budget:g} s runs as points")
    (folder / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results, scorer.axes()))
    return results


def table(results: dict, axes: tuple[str, str]) -> str:
    """Mean ± sd over seeds of each preset's final model and each GAN's start."""
    keys = [*axes, "unique_share"]
    lines = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]

    def cell(values):
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"

    for preset in PRESETS:
        rows = [r for r in results["runs"] if r["preset"] == preset]
        if preset != "mle" and all("start" in r for r in rows):
            lines.append(f"| {preset}: its MLE start | " + " | ".join(cell([r["start"][k] for r in rows]) for k in keys) + " |")
        lines.append(f"| {preset} | " + " | ".join(cell([r[k] for r in rows]) for k in keys) + " |")
    for c in results["curve"]:
        lines.append(f"| MLE seed 0 at T={c['temperature']:g} | " + " | ".join(f"{c[k]:.3f}" for k in keys) + " |")
    for name, ref in results.get("references", {}).items():
        lines.append(f"| {name} | " + " | ".join(f"{ref[k]:.3f}" if k in ref else "" for k in keys) + " |")
    return "\n".join(lines)


def speed(repeats: int = 5) -> dict:
    """Tokens per second of one MLE step, one SeqGAN round and one Gumbel adversarial step, side by side."""
    from gankit.assemble import resolve
    from gankit.training.loop import Trainer

    out = {}
    for preset, stage in (("mle", "mle"), ("seqgan", "adversarial"), ("gumbel", "adversarial")):
        cfg = resolve(preset, overrides=[f"{preset}.pretrain=0" if preset != "mle" else "train.steps=1000000",
                                         *(["seqgan.d_pretrain=0"] if preset == "seqgan" else [])])
        trainer = Trainer(cfg)
        trainer.train_step()   # warm-up
        t0 = time.perf_counter()
        for _ in range(repeats):
            trainer.train_step()
        seconds = (time.perf_counter() - t0) / repeats
        tokens = cfg.data.batch_size * trainer.info.shape[0]
        out[preset] = {"stage": stage, "seconds_per_step": seconds, "tokens_per_second": tokens / seconds}
        print(json.dumps({preset: out[preset]}), flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("oracle", "reviews", "speed"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--budget", type=float, default=240.0, help="seconds of training of every run")
    p.add_argument("--out", type=Path, default=Path("bench/sequence"))
    p.add_argument("--data", help="reviews: the data root holding reviews/ (default: gankit's)")
    args = p.parse_args()
    if args.what == "speed":
        speed()
    else:
        quality(args.what, args.seeds, args.budget, args.out, args.data)


if __name__ == "__main__":
    main()
