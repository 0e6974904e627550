"""Evaluating a recipe: its samples (or, for CycleGAN / StarGAN, its translations of held-out images)
scored by the metrics. Used by the loop's periodic evaluation (``[eval]``) and by `gankit eval RUN`.

Samples come from latents of their own generator, seeded by the caller: the global RNG is never drawn
from, so evaluating cannot change a training run.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..config import Config
from ..errors import GankitError
from ..metrics.evaluate import Reference, evaluate, evaluate_translations, reference_from_source, reference_ident
from ..metrics.registry import check_metrics, output_keys
from ..metrics.translation import Translate, translation_sets
from ..recipes import Recipe, draw_samples
from ..recipes.translation import Translation


def translator(recipe: Recipe, seed: int, ema: bool = True) -> Translate:
    """``translate(x, source, to)`` of a CycleGAN / StarGAN recipe: images x of domains ``source`` into
    domains ``to``, in batches, every call from latents seeded ``seed``."""
    def translate(x: Tensor, source: Tensor, to: Tensor) -> Tensor:
        return torch.cat(draw_samples(recipe, len(x), seed, ema=ema, labels=Translation(x, source, to)))

    return translate


def evaluate_translation(recipe: Recipe, data_cfg, features: str | None = None, seed: int = 0, ema: bool = True,
                         sets: tuple | None = None) -> tuple[dict[str, float], list[str]]:
    """The translation metrics (``metrics.translation``) of a CycleGAN / StarGAN ``recipe`` trained on
    ``data_cfg``, on ``sets`` (``translation_sets(data_cfg)``, loaded here when not given)."""
    return evaluate_translations(translator(recipe, seed, ema), list(recipe.domains), data_cfg, features, sets)


def transfer_judge(source):
    """What scores a text style transfer run (``metrics.transfer.TransferJudge``): the style classifier and the
    language models fitted on a two-style ``TextSource``'s training sentences, its held-out ones the inputs —
    as read (``source.words``), words outside the vocabulary included."""
    from ..metrics.transfer import TransferJudge

    def by_style(words, y):
        return [[s for s, k in zip(words, y.tolist()) if k == style] for style in (0, 1)]

    train, test = by_style(source.words[0], source.y), by_style(source.words[1], source.test_y)
    return TransferJudge(train[0], train[1], test[0], test[1])


def translate_tokens(recipe: Recipe, sentences: list[list[str]], target: int, ema: bool = True) -> list[list[str]]:
    """A "sentences" recipe's greedy translations of tokenised sentences (any length; tokens outside its
    vocabulary read as <unk>, and each <unk> written is given back the source's next such word) into style
    ``target``, as token lists."""
    from ..data.text import encode, restore_unknown
    from ..metrics.text import as_words

    info = recipe.info
    ids = encode(sentences, info.vocab, max(1, max(map(len, sentences))), "sentences")
    y = recipe.translate_ids(ids, torch.full((len(ids),), target, dtype=torch.int64), ema)
    return restore_unknown(as_words(y, info.vocab, info.level), sentences, info.vocab)


def evaluate_transfer(recipe: Recipe, judge, ema: bool = True, baselines: bool = False) -> tuple[dict[str, float], list[str]]:
    """The transfer metrics of a "sentences" recipe's greedy translations of the judge's held-out sentences,
    both ways; with ``baselines``, the copy and retrieval baselines' too (keys ``copy_*``, ``retrieval_*``)."""
    from ..metrics.transfer import DIRECTIONS, transfer_report

    report = transfer_report(judge, lambda inputs, direction: translate_tokens(recipe, inputs, DIRECTIONS[direction][1], ema))
    values = {**report["model"], **report["classifier"]}
    if baselines:
        for who in ("copy", "retrieval"):
            values.update({f"{who}_{k}": v for k, v in report[who].items()})
    notes = [f"{len(judge.test[0])} + {len(judge.test[1])} held-out sentences of {recipe.domains[0]} and "
             f"{recipe.domains[1]}; style classifier: bag-of-n-grams logistic regression, "
             f"{report['classifier']['classifier_acc']:.1f}% on them; fluency: trigram Kneser-Ney of the target style"]
    return values, notes


def check_eval_metrics(recipe: Recipe, cfg: Config, kind: str) -> None:
    """Refuse ``eval.metrics`` that do not fit the recipe and its data, before anything is written."""
    if recipe.conditioning == "sentences":
        if cfg.eval.metrics and list(cfg.eval.metrics) != ["transfer"]:
            raise GankitError(f"eval.metrics: train.recipe={cfg.train.recipe} is scored by the transfer metrics; "
                              f"leave eval.metrics empty (or transfer)")
        return
    if kind == "tokens":
        raise GankitError("eval.every: periodic evaluation of token sequences has no metrics yet; set eval.every=0")
    if recipe.conditioning == "domains":
        if cfg.eval.metrics:
            keys = ", ".join(k for k in output_keys("translations") if "/" not in k)
            raise GankitError(f"eval.metrics: train.recipe={cfg.train.recipe} is scored by the translation metrics "
                              f"({keys}, per target domain); leave eval.metrics empty")
        return
    check_metrics(cfg.eval.metrics, kind, "eval.metrics")


def eval_reference(recipe: Recipe, source, cfg: Config) -> Reference | tuple:
    """What periodic evaluation compares with, built once: the training data as a Reference (up to
    eval.n samples), or, for translation recipes, the data's training and held-out sets."""
    d = cfg.data
    if recipe.conditioning == "domains":
        return translation_sets(d)
    if recipe.conditioning == "sentences":
        return transfer_judge(source)
    return reference_from_source(source, d.name, reference_ident(d), cfg.eval.n, d)


def evaluate_recipe(recipe: Recipe, source, cfg: Config, reference: Reference | tuple,
                    seed: int) -> tuple[dict[str, float], list[str]]:
    """Metrics of cfg.eval on eval.n samples of the recipe's EMA generator(s), their conditions drawn
    from ``source``, against ``reference`` (``eval_reference``); translation recipes: the translation
    metrics on the held-out split."""
    e = cfg.eval
    if recipe.conditioning == "domains":
        return evaluate_translation(recipe, cfg.data, e.features or None, seed=seed, sets=reference)
    if recipe.conditioning == "sentences":
        return evaluate_transfer(recipe, reference)
    labels = recipe.fixed_conditions(source, e.n, seed)
    x = torch.cat(draw_samples(recipe, e.n, seed, labels=labels))
    return evaluate(x, source.info.kind, reference, e.metrics, features=e.features or None)
