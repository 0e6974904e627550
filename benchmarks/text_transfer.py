"""Text style transfer (the ``textcycle`` preset) on the movie reviews' held-out split, over seeds.

    python benchmarks/text_transfer.py [--seeds 0 1 2] [--out bench/textcycle] [--set KEY=VALUE ...]

For each seed the preset trains in a fresh process (its own wall-clock budget, ``train.max_seconds``), then
its final checkpoint — what ``gankit translate`` uses — is scored as ``gankit eval RUN`` scores it: transfer
accuracy by the independent style classifier, self-BLEU against the input, perplexity under the target
style's n-gram model, G2, both ways, beside copying the input and retrieving a training sentence of the
target style. Prints a Markdown table (per seed, then mean ± standard deviation) and ten example transfers
each way of the first seed's run; writes ``results.json`` and ``examples.md`` under ``--out``. A seed whose
run is already there is scored again, not retrained (its wall time then reads nan).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gankit import data as data_mod
from gankit.run import open_run
from gankit.text_transfer import evaluate_transfer_run
from gankit.training.evaluation import transfer_judge, translate_tokens

KEYS = ("transfer_acc", "content_bleu", "fluency_ppl", "g2")
DIRECTIONS = ("AtoB", "BtoA")
EXAMPLES = 10


def train(out: Path, seed: int, extra: list[str]) -> float:
    """Train the preset in a fresh process; its wall time."""
    cmd = [sys.executable, "-m", "gankit", "train", "--preset", "textcycle", "--seed", str(seed), "--out", str(out),
           "--set", "train.progress=false"]
    for s in extra:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def examples(run: Path) -> list[str]:
    """The first held-out sentences of each style with their translation and its translation back."""
    loaded = open_run(run)
    source = data_mod.load(loaded.cfg.data, loaded.cfg.owned.get(loaded.cfg.data.name))
    judge = transfer_judge(source)
    names = loaded.recipe.domains
    lines = []
    for style in (0, 1):
        inputs = judge.test[style][:EXAMPLES]
        out = translate_tokens(loaded.recipe, inputs, 1 - style)
        back = translate_tokens(loaded.recipe, out, style)
        lines += [f"**{names[style]} → {names[1 - style]}**", "", "| input | output | back |", "| --- | --- | --- |"]
        lines += [f"| {' '.join(i)} | {' '.join(o)} | {' '.join(b)} |" for i, o, b in zip(inputs, out, back)]
        lines.append("")
    return lines


def row(name: str, values: dict[str, float], prefix: str = "") -> str:
    cells = []
    for d in DIRECTIONS:
        cells += [f"{values[f'{prefix}{k}/{d}']:.1f}" for k in KEYS]
    return f"| {name} | " + " | ".join(cells) + " |"


def spread(rows: list[dict[str, float]], prefix: str = "") -> str:
    cells = []
    for d in DIRECTIONS:
        for k in KEYS:
            v = [r[f"{prefix}{k}/{d}"] for r in rows]
            cells.append(f"{statistics.mean(v):.1f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.1f}")
    return " | ".join(cells)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default="bench/textcycle")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE added to the preset, as gankit train's")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        run = out / f"seed{seed}"
        wall = train(run, seed, args.set) if not (run / "checkpoints" / "latest").exists() else float("nan")
        values, notes = evaluate_transfer_run(run)
        results.append({"seed": seed, "wall_s": wall, **values})
        print(f"seed {seed}: {wall:.0f} s; " + ", ".join(f"{k}={values[k]:.1f}" for k in ("transfer_acc", "content_bleu", "g2")),
              flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    header = " | ".join(f"{k} {d}" for d in DIRECTIONS for k in KEYS)
    print(f"\n{notes[0]}\n\n| run | {header} |\n|---|" + "---|" * (2 * len(KEYS)))
    for r in results:
        print(row(f"textcycle, seed {r['seed']}", r))
    print(f"| textcycle, mean ± sd of {len(results)} | {spread(results)} |")
    for who in ("copy", "retrieval"):
        print(row(f"{who} baseline", results[0], f"{who}_"))
    lines = examples(out / f"seed{args.seeds[0]}")
    (out / "examples.md").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
