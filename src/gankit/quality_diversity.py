"""The quality–diversity picture of language GANs (Caccia et al. 2020, "Language GANs falling short").

A lower sampling temperature makes any language model's samples better and less diverse, so a GAN's better
quality alone proves nothing: it has to beat the maximum-likelihood model *at the same diversity*. The MLE
run is swept over temperatures T — its samples drawn from softmax(logits / T), its held-out NLL computed
under that same distribution — and drawn as a curve; other runs (at their own sampling temperature) are
points on the same axes:

    oracle data   x: NLL_test (the model's per-token NLL of held-out data: coverage)   y: NLL_oracle (quality)
    text          x: self-BLEU-5 (repetition among samples)                           y: BLEU-5 against held-out text

Lower is better on both oracle axes; on text, lower x and higher y. A point below / left of the curve is a
real gain; above it, the MLE model at some temperature does as well on both.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from . import data as data_mod
from .errors import GankitError
from .metrics.text import as_words, bleu, diversity, oracle_nll, self_bleu
from .recipes.sequence import sequence_nll
from .run import LoadedRun, draw, open_run

BLEU_ORDER = 5
SELF_BLEU_SAMPLES = 1000   # self-BLEU is quadratic in the samples; BLEU uses them all


def held_out_nll(loaded: LoadedRun, test: torch.Tensor, temperature: float) -> float:
    """The run's per-token NLL of held-out sequences under softmax(logits / T)."""
    recipe = loaded.recipe
    G = recipe.nets.get("G_ema", recipe.G)
    total, count = 0.0, 0
    with torch.no_grad():
        for part in test.split(500):
            t, c = sequence_nll(G, part.to(recipe.device), temperature)
            total, count = total + float(t), count + int(c)
    return total / max(1, count)


class Scorer:
    """Scores of token runs on one data set: its held-out split (and, for the oracle, the oracle itself)."""

    def __init__(self, loaded: LoadedRun) -> None:
        cfg = loaded.cfg
        source = data_mod.load(cfg.data, cfg.owned.get(cfg.data.name))
        if not len(source.test):
            raise GankitError(f"'{loaded.checkpoint.parent.parent}': its data has no held-out split to score against")
        self.test = source.test
        self.vocab = source.info.vocab
        self.oracle = None
        if cfg.data.name == "oracle":
            from .data.oracle import LENGTH, oracle_files
            from .data.text import SPECIALS

            self.oracle, self.length, self.specials = oracle_files(cfg.table("oracle").oracle_seed)[0], LENGTH, len(SPECIALS)
        else:
            self.references = as_words(self.test, self.vocab, source.info.level)

    def axes(self) -> tuple[str, str]:
        return ("nll_test", "nll_oracle") if self.oracle is not None else (f"self_bleu_{BLEU_ORDER}", f"bleu_{BLEU_ORDER}")

    def score(self, loaded: LoadedRun, temperature: float, n: int, seed: int) -> dict[str, float]:
        if loaded.info.vocab != self.vocab:
            raise GankitError(f"'{loaded.checkpoint}': another vocabulary than the curve's run; compare runs of one data set")
        recipe = loaded.recipe
        kept, recipe.temperature = recipe.temperature, temperature
        try:
            ids = draw(loaded, n, seed=seed)
        finally:
            recipe.temperature = kept
        words = as_words(ids, loaded.info.vocab, loaded.info.level)
        out = {"temperature": temperature, "nll_test": held_out_nll(loaded, self.test, temperature)}
        if self.oracle is not None:
            out.update(oracle_nll(self.oracle, ids, self.specials, self.length))
        else:
            out[f"bleu_{BLEU_ORDER}"] = bleu(words, self.references, BLEU_ORDER)
            out[f"self_bleu_{BLEU_ORDER}"] = self_bleu(words[:SELF_BLEU_SAMPLES], BLEU_ORDER)
        out["unique_share"] = diversity(words)["unique_share"]
        return out


def parse_temperatures(text: str) -> list[float]:
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise GankitError(f"--temperatures {text}: expected numbers separated by commas, e.g. 0.8,0.9,1.0") from None
    if not values or any(not (t > 0) or t != t or t == float("inf") for t in values):
        raise GankitError(f"--temperatures {text}: every temperature must be a positive finite number")
    return sorted(values)


def quality_diversity(curve_run: str | Path, temperatures: Sequence[float], points: Sequence[str | Path] = (),
                      out: str | Path | None = None, n: int = 2000, seed: int = 0,
                      labels: Sequence[str] | None = None) -> dict:
    """The MLE run ``curve_run`` scored at each temperature, each of ``points`` at its own; with ``out``,
    the picture as a PNG. Returns {"axes": (x, y), "curve": [scores...], "points": [{"label", scores}...]}."""
    if out is not None and Path(out).suffix.lower() != ".png":
        raise GankitError(f"--curve {out}: the picture is a .png file")
    if out is not None and not Path(out).resolve().parent.exists():
        raise GankitError(f"--curve {out}: folder '{Path(out).parent}' does not exist")
    base = open_run(curve_run)
    if base.info.kind != "tokens":
        raise GankitError(f"'{curve_run}': the temperature curve is for runs of token sequences (mle, seqgan, gumbel)")
    scorer = Scorer(base)
    curve = [scorer.score(base, t, n, seed) for t in temperatures]
    labels = list(labels) if labels else [str(p) for p in points]
    marks = []
    for label, spec in zip(labels, points):
        loaded = open_run(spec)
        if loaded.info.kind != "tokens":
            raise GankitError(f"'{spec}': not a run of token sequences")
        marks.append({"label": label, **scorer.score(loaded, loaded.recipe.temperature, n, seed)})
    result = {"axes": scorer.axes(), "curve": curve, "points": marks}
    if out is not None:
        draw_picture(result, Path(out), title=f"{Path(curve_run).name}: temperature sweep")
    return result


def draw_picture(result: dict, path: Path, title: str = "") -> None:
    """The curve (temperatures marked) and the points, as a PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xk, yk = result["axes"]
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    xs, ys = [c[xk] for c in result["curve"]], [c[yk] for c in result["curve"]]
    ax.plot(xs, ys, "-o", color="0.35", label="MLE, temperature sweep", zorder=2)
    for c in result["curve"]:
        ax.annotate(f"T={c['temperature']:g}", (c[xk], c[yk]), textcoords="offset points", xytext=(4, 4), fontsize=8,
                    color="0.35")
    for i, p in enumerate(result["points"]):
        ax.plot([p[xk]], [p[yk]], marker="*D^sPX"[i % 6], markersize=11, linestyle="none", label=p["label"], zorder=3)
    names = {"nll_test": "NLL_test (held-out data under the model; lower: more coverage)",
             "nll_oracle": "NLL_oracle (samples under the oracle; lower: better)",
             f"self_bleu_{BLEU_ORDER}": f"self-BLEU-{BLEU_ORDER} (lower: more diverse)",
             f"bleu_{BLEU_ORDER}": f"BLEU-{BLEU_ORDER} vs held-out text (higher: better)"}
    ax.set_xlabel(names[xk])
    ax.set_ylabel(names[yk])
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def format_rows(result: dict) -> str:
    """The curve and the points as an aligned table."""
    keys = ["temperature", *result["axes"], "unique_share"]
    rows = [["MLE sweep", *[f"{c[k]:.4g}" for k in keys]] for c in result["curve"]]
    rows += [[p["label"], *[f"{p[k]:.4g}" for k in keys]] for p in result["points"]]
    head = ["run", *keys]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in [head, *rows])
