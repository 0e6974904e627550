"""`gankit eval`: SAMPLES (a run directory, an image folder or a ``.npy``) scored against REF, or a
CycleGAN / StarGAN run scored on its own data's held-out split.

A run directory's samples are drawn from its EMA generator, conditioned, for conditional runs, on
conditions of its data; files, folders, references and the metrics themselves are ``gankit.metrics``'.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import data as data_mod
from .errors import GankitError
from .metrics.evaluate import evaluate, load_reference, load_samples
from .recipes import RECIPES
from .run import draw, open_run, saved_config
from .training.evaluation import evaluate_translation


def is_run(spec: str | Path) -> bool:
    """A run directory, one of its checkpoint directories, or a model folder (``gankit export``)?"""
    return saved_config(spec) is not None


def is_token_run(spec: str | Path) -> bool:
    """Is ``spec`` a run (or model folder) of token sequences? (read from what it saved, without building it)"""
    saved = saved_config(spec)
    return saved is not None and saved[1]["kind"] == "tokens"


def run_conditioning(spec: str | Path) -> str | None:
    """The ``conditioning`` of the recipe of run ``spec`` (None when it is not a run), read from its config
    without building the run."""
    saved = saved_config(spec)
    return None if saved is None else RECIPES.get(saved[0].train.recipe).conditioning


def is_translation_run(spec: str | Path) -> bool:
    """Is ``spec`` a run directory of an unpaired translation recipe (CycleGAN, StarGAN)?"""
    return run_conditioning(spec) == "domains"


def run_samples(run_dir: str | Path, n: int = 10_000, seed: int = 0,
                sampler: str | None = None) -> tuple[torch.Tensor, str]:
    """n samples of a run's EMA generator (latents seeded ``seed``) and their kind ("images" / "points")."""
    run = open_run(run_dir, sampler=sampler)
    if run.recipe.conditioning == "domains":
        raise GankitError(f"'{run_dir}' is a CycleGAN / StarGAN run: score it with gankit eval {run_dir} (no --ref; "
                          f"its data's test split is used)")
    labels = None
    if run.recipe.conditioning in ("image", "vector"):
        # image or vector conditions come from the run's data: translate / condition on its samples
        labels = run.recipe.fixed_conditions(data_mod.load(run.cfg.data, run.cfg.owned.get(run.cfg.data.name)), n, seed)
    return draw(run, n, seed=seed, labels=labels), run.info.kind


def samples_of(spec: str, n: int = 10_000, seed: int = 0, sampler: str | None = None) -> tuple[torch.Tensor, str]:
    """SAMPLES -> (tensor, kind): drawn from a run directory, else read from a ``.npy`` or an image folder."""
    if is_run(spec):
        return run_samples(spec, n, seed, sampler)
    return load_samples(spec, n)


def evaluate_translation_run(run_dir: str | Path, features: str | None = None,
                             seed: int = 0) -> tuple[dict[str, float], list[str]]:
    """``gankit eval RUN`` for a CycleGAN / StarGAN run: its translations of its data's held-out images."""
    run = open_run(run_dir)
    return evaluate_translation(run.recipe, run.cfg.data, features, seed)


def evaluate_spec(samples: str, ref: str | None, metrics: list[str] | None = None, features: str | None = None,
                  n: int = 10_000, seed: int = 0, sampler: str | None = None,
                  picture: Path | None = None, trust_features: bool = False) -> tuple[dict[str, float], list[str]]:
    """`gankit eval SAMPLES --ref REF`: values and notes. A CycleGAN / StarGAN run needs no REF (and
    takes no ``metrics``): it is scored by the translation metrics."""
    conditioning = run_conditioning(samples)
    if conditioning == "domains":
        return evaluate_translation_run(samples, features=features, seed=seed)
    if conditioning == "sentences":
        from .text_transfer import evaluate_transfer_run

        if ref or metrics:
            raise GankitError(f"'{samples}' is a text style transfer run: it is scored on its own data's held-out "
                              f"sentences by the transfer metrics; give no --ref or --metrics")
        return evaluate_transfer_run(samples)
    if samples.endswith(".txt") or is_token_run(samples):
        return evaluate_text(samples, ref, metrics, n=n, seed=seed)
    if not ref:
        raise GankitError("--ref is required: a preset name (its data set) or an image folder")
    x, kind = samples_of(samples, n=n, seed=seed, sampler=sampler)
    reference = load_reference(ref, n=n)
    return evaluate(x, kind, reference, metrics, features=features, picture=picture, trust_features=trust_features)


# ------------------------------------------------------------------------------------------ text

def _oracle_ids(words: list[list[str]], length: int) -> torch.Tensor:
    """Words "0".."4999" of oracle samples as the oracle data set's ids (anything else reads as <unk>)."""
    from .data.oracle import VOCAB
    from .data.text import EOS, PAD, SPECIALS, UNK

    out = torch.full((len(words), length + 1), PAD, dtype=torch.int64)
    for i, seq in enumerate(words):
        ids = [int(w) + len(SPECIALS) if w.isdigit() and int(w) < VOCAB else UNK for w in seq[:length]] + [EOS]
        out[i, :len(ids)] = torch.tensor(ids)
    return out


def evaluate_text(samples: str, ref: str | None, metrics: list[str] | None = None, n: int = 10_000,
                  seed: int = 0) -> tuple[dict[str, float], list[str]]:
    """`gankit eval` of token sequences — a run of them (its held-out split is the default reference) or a
    .txt of samples (one a line, words) — against ``ref``: ``oracle`` (its held-out sequences, and NLL under
    the oracle) or a text file of references."""
    from .data.oracle import LENGTH, oracle_files
    from .data.text import SPECIALS, read_lines, tokenize
    from .metrics.registry import METRICS, check_metrics
    from .metrics.text import as_words, mode_collapse_note
    from .recipes.sequence import sequence_nll

    chosen = check_metrics(metrics, "tokens", "--metrics")
    notes: list[str] = []
    run = open_run(samples) if is_run(samples) else None
    level = run.info.level if run is not None else "word"
    oracle_seed = None
    if run is not None:
        ids = draw(run, n, seed=seed)
        words = as_words(ids, run.info.vocab, level)
        if run.cfg.data.name == "oracle":
            oracle_seed = run.cfg.table("oracle").oracle_seed
    else:
        words = [tokenize(line, level) for line in read_lines(samples, "SAMPLES")][:n]
        ids = None
    if ref == "oracle":
        oracle_seed = oracle_seed or 0
    if ref is None and run is not None:   # the run's own held-out lines
        source = data_mod.load(run.cfg.data, run.cfg.owned.get(run.cfg.data.name))
        if not len(source.test):
            raise GankitError(f"'{samples}': its data has no held-out split; give --ref FILE (one reference a line)")
        references = as_words(source.test, source.info.vocab, level)
        notes.append(f"references: the {len(references)} held-out sequences of the run's data")
    elif ref == "oracle":
        _, _, test = oracle_files(oracle_seed)
        references = [list(map(str, row)) for row in test.tolist()]
        notes.append(f"references: the oracle's {len(references)} held-out sequences (seed {oracle_seed})")
    elif ref is not None:
        references = [tokenize(line, level) for line in read_lines(ref, "--ref")]
    else:
        raise GankitError("--ref is required for a file of samples: oracle, or a text file of references")
    values: dict[str, float] = {"n_samples": float(len(words))}
    if "text" in chosen:
        values.update(METRICS.get("text").fn(words, references))
        verdict = mode_collapse_note(values)
        if verdict:
            notes.append(verdict)
    if "nll_oracle" in chosen and oracle_seed is not None:
        oracle, _, _ = oracle_files(oracle_seed)
        sample_ids = ids if ids is not None and run.cfg.data.name == "oracle" else _oracle_ids(words, LENGTH)
        values.update(METRICS.get("nll_oracle").fn(oracle, sample_ids, len(SPECIALS), LENGTH))
    if "nll_test" in chosen and run is not None and ref is None:
        G = run.recipe.nets.get("G_ema", run.recipe.G)

        def nll() -> float:
            total, count = 0.0, 0
            with torch.no_grad():
                for part in source.test.split(500):
                    t, c = sequence_nll(G, part.to(run.recipe.device))
                    total, count = total + float(t), count + int(c)
            return total / max(1, count)

        values.update(METRICS.get("nll_test").fn(nll))
    return values, notes
