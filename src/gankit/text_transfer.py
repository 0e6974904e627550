"""Text style transfer runs (``train.recipe=textcycle``) from the command line.

`gankit translate RUN INPUT.txt --out OUT.txt [--direction AtoB|BtoA] [--show]`: each line of INPUT.txt
(UTF-8, any length; words outside the run's vocabulary read as ``<unk>``) translated by greedy decoding,
one output line per input line, in order — a blank line stays blank. ``--show`` also prints the first
lines as input → output → reconstruction (the output translated back).

`gankit eval RUN`: the run's translations of its data's held-out sentences, both ways, scored by
``metrics.transfer`` beside two baselines on the same inputs (copying the input, and retrieving the training
sentence of the target style with the most words in common).
"""
from __future__ import annotations

import os
from pathlib import Path

from .data.text import read_all_lines, tokenize
from .errors import GankitError
from .run import LoadedRun, open_run
from .training.evaluation import evaluate_transfer, transfer_judge, translate_tokens
from .translation import target_domain

SHOWN = 10   # --show: the lines printed


def translate_lines(loaded: LoadedRun, lines: list[str], target: int, ema: bool = True) -> list[str]:
    """Each line translated into style ``target`` (blank lines stay blank)."""
    level = loaded.info.level
    filled = [i for i, line in enumerate(lines) if line.strip()]
    out = [""] * len(lines)
    if filled:
        written = translate_tokens(loaded.recipe, [tokenize(lines[i], level) for i in filled], target, ema)
        for i, tokens in zip(filled, written):
            out[i] = ("" if level == "char" else " ").join(tokens)
    return out


def check_sentence_run(loaded: LoadedRun) -> None:
    if loaded.recipe.conditioning != "sentences":
        raise GankitError("translate: INPUT.txt is for text style transfer runs (train.recipe=textcycle); this run "
                          "is not one")


def translate_text(loaded: LoadedRun, inputs: str, out: str, direction: str | None = None, to: str | None = None,
                   show: bool = False, ema: bool = True) -> str:
    """Translate the lines of ``inputs`` into file ``out``; returns what to print."""
    check_sentence_run(loaded)
    target = target_domain(list(loaded.recipe.domains), to, direction)
    lines = read_all_lines(inputs, "INPUT")
    path = Path(out)
    if path.is_dir():
        raise GankitError(f"--out {out}: a folder; give the file to write (one translation a line)")
    outputs = translate_lines(loaded, lines, target, ema)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(line + "\n" for line in outputs), encoding="utf-8")
    os.replace(tmp, path)
    domains = loaded.recipe.domains
    said = [f"wrote {len(outputs)} lines translated from '{domains[1 - target]}' to '{domains[target]}' to {path}"]
    if show:
        shown = [i for i, line in enumerate(lines) if line.strip()][:SHOWN]
        back = translate_lines(loaded, [outputs[i] for i in shown], 1 - target, ema)
        said += [f"{lines[i]}  →  {outputs[i]}  →  {b}" for i, b in zip(shown, back)]
    return "\n".join(said)


def evaluate_transfer_run(run_dir: str | Path) -> tuple[dict[str, float], list[str]]:
    """``gankit eval RUN`` of a text style transfer run: its scores and the baselines', on the held-out split."""
    from . import data as data_mod

    loaded = open_run(run_dir)
    check_sentence_run(loaded)
    source = data_mod.load(loaded.cfg.data, loaded.cfg.owned.get(loaded.cfg.data.name))
    judge = transfer_judge(source)
    values, notes = evaluate_transfer(loaded.recipe, judge, baselines=True)
    return values, notes
