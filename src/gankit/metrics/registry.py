"""The metrics, one registration each: what `gankit eval --metrics`, ``eval.metrics``, ``eval.best``
and ``evaluate()`` know about a metric comes from here.

    @metric("fid", kinds="images", keys=("fid",), lower=("fid",), needs=("features",),
            description="Fréchet distance between Gaussians fitted to the features")
    def _fid(m: Inputs) -> dict[str, float]:
        return {"fid": fid(m.ref_features, m.features)}

A metric has a name (the ``--metrics`` word), the kinds of samples it applies to (``KINDS``), the flat
keys it returns (``"class_share/<class>"`` stands for one key per class) and which of them are better
lower, what it needs (``NEEDS``), a one-line description and its function. ``evaluate()`` calls the
image and point metrics in registration order as ``fn(inputs) -> dict``, after preparing what they
need; the translation metrics (kind ``translations``) are called by the evaluation of CycleGAN /
StarGAN runs with the arguments of ``translation.translation_metrics``.

The built-in metrics below import their implementations when they run, so listing them (the CLI's
help) imports neither torch nor NumPy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..errors import GankitError
from ..registry import Registry

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    from torch import Tensor

KINDS = ("images", "points", "tokens", "translations", "transfers")

NEEDS = {
    "features": "the feature space's vectors of the samples and of the reference",
    "logits": "the feature space's class logits (an extractor with a classifier head)",
    "classes": "the feature space's class names",
    "pixels": "the reference images, and the samples resized to their shape",
    "distribution": "the true distribution of a toy data set",
    "translate": "translate(x, source, to) -> the translations of images x",
    "domains": "the names of the domains",
    "splits": "training and held-out images with their domains (and shared labels, when there are)",
    "references": "reference sequences (held-out data), as token lists",
    "oracle": "the oracle language model that made the data (data.name=oracle)",
    "model": "the run's own language model, to score held-out data",
    "transfer": "translate(sentences, direction) -> sentences in the other style, and a metrics.transfer.TransferJudge",
}


@dataclass(frozen=True)
class Metric:
    name: str
    kinds: tuple[str, ...]
    keys: tuple[str, ...]            # what it returns; "head/<what>" stands for head/<each one>
    lower: frozenset[str]            # the keys that are better lower (the others: higher, or neither)
    needs: tuple[str, ...]
    description: str
    fn: Callable[..., dict[str, float]]


@dataclass
class Inputs:
    """What an image or point metric is given; ``evaluate()`` fills the fields its metrics need."""

    samples: Tensor                        # images (N, C, H, W) in [-1, 1] or points (N, d)
    ref_name: str                          # the reference as the user named it
    notes: list[str] = field(default_factory=list)   # a metric appends its verdicts here
    picture: Path | None = None            # where a metric may draw its evidence (memorisation)
    features: np.ndarray | None = None     # "features"
    ref_features: np.ndarray | None = None
    logits: np.ndarray | None = None       # "logits" (None: the feature space does not classify)
    ref_logits: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)   # "classes"
    pixels: Tensor | None = None           # "pixels": the samples at the reference's shape
    ref_pixels: Tensor | None = None
    distribution: Any = None               # "distribution"


METRICS: Registry[Metric] = Registry("metric")


def _as_tuple(v: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return (v,) if isinstance(v, str) else tuple(v)


def _head(key: str) -> str:
    """The template a key falls under: "class_share/3" -> "class_share/<>", "fid" -> "fid"."""
    head, slash, _ = key.partition("/")
    return f"{head}/<>" if slash else key


def metric(name: str, *, kinds: str | tuple[str, ...], keys: tuple[str, ...] | str, lower: tuple[str, ...] | str = (),
           needs: tuple[str, ...] | str = (), description: str) -> Callable[[Callable], Callable]:
    """Register the decorated function as metric ``name`` (see the module docstring)."""
    kinds, keys, lower, needs = _as_tuple(kinds), _as_tuple(keys), _as_tuple(lower), _as_tuple(needs)
    for what, values, valid in (("kind", kinds, KINDS), ("need", needs, NEEDS), ("lower-is-better key", lower, keys)):
        bad = [v for v in values if v not in valid]
        if bad:
            raise ValueError(f"metric '{name}': unknown {what} {', '.join(bad)}; valid: {', '.join(valid)}")
    directions = _directions()
    for k in keys:
        if _head(k) in directions and directions[_head(k)] != (k in lower):
            raise ValueError(f"metric '{name}': key '{k}' is registered elsewhere as "
                             f"{'lower' if directions[_head(k)] else 'higher'} is better")

    def add(fn: Callable) -> Callable:
        METRICS.register(name)(Metric(name, kinds, keys, frozenset(lower), needs, description, fn))
        return fn

    return add


def metrics_for(kind: str) -> list[Metric]:
    """The metrics that apply to samples of ``kind``, in registration order."""
    return [m for _, m in METRICS.items() if kind in m.kinds]


def names_for(kind: str) -> list[str]:
    return [m.name for m in metrics_for(kind)]


def check_metrics(metrics: list[str] | None, kind: str, origin: str) -> list[str]:
    """The metrics to compute for samples of ``kind`` (all that apply when none are named); a
    GankitError naming ``origin`` for one that does not apply."""
    valid = names_for(kind)
    for m in metrics or []:
        if m not in valid:
            raise GankitError(f"{origin}: '{m}' does not apply to {kind}; valid: {', '.join(valid)}")
    return list(metrics or valid)


def output_keys(kind: str | None = None) -> list[str]:
    """Every key the metrics (of ``kind``) return, in registration order; a key with ``/<...>`` stands
    for one per class or per domain (``class_share/<class>``, ``fid/<domain>``)."""
    out: dict[str, None] = {}
    for _, m in METRICS.items():
        if kind is None or kind in m.kinds:
            out.update(dict.fromkeys(m.keys))
    return list(out)


def is_output_key(key: str) -> bool:
    """Does some registered metric return ``key`` (``fid``, ``class_share/3``, ``fid/B``)?"""
    return _head(key) in {_head(k) for k in output_keys()}


def _directions() -> dict[str, bool]:
    """key template -> lower is better, over every registered metric."""
    return {_head(k): k in m.lower for _, m in METRICS.items() for k in m.keys}


def lower_is_better(key: str) -> bool:
    """Is a smaller value of ``key`` (e.g. ``fid``, ``cycle_l1/B``) better? False for keys no metric
    returns (``n_samples``) and for those that are neither better lower nor higher (``kid_std``)."""
    return _directions().get(_head(key), False)


def metrics_help() -> str:
    """The help of `gankit eval --metrics`: the metrics of images and of points, each with its description."""
    parts = [f"{kind}: " + "; ".join(f"{m.name} = {m.description}" for m in metrics_for(kind))
             for kind in ("images", "points", "tokens")]
    return ("comma-separated (default: all that apply). " + ". ".join(parts)).replace("%", "%%")   # argparse formats it


# ------------------------------------------------------------------------------ image metrics

@metric("fid", kinds="images", keys="fid", lower="fid", needs="features",
        description="Fréchet distance between Gaussians fitted to the features (Heusel et al. 2017)")
def _fid(m: Inputs) -> dict[str, float]:
    from .fid import fid

    return {"fid": fid(m.ref_features, m.features)}


@metric("kid", kinds="images", keys=("kid", "kid_std"), lower="kid", needs="features",
        description="kernel distance, the unbiased MMD² with a cubic kernel (Bińkowski et al. 2018)")
def _kid(m: Inputs) -> dict[str, float]:
    from .kid import kid

    return kid(m.ref_features, m.features)


@metric("is", kinds="images", keys=("is", "is_std"), needs="logits",
        description="Inception Score of the class predictions (Salimans et al. 2016)")
def _inception_score(m: Inputs) -> dict[str, float]:
    from .inception_score import inception_score, softmax

    return {} if m.logits is None else inception_score(softmax(m.logits))


@metric("pr", kinds="images", keys=("precision", "recall"), needs="features",
        description="precision and recall of k-NN balls, k = 3 (Kynkäänniemi et al. 2019)")
def _precision_recall(m: Inputs) -> dict[str, float]:
    from .knn import precision_recall

    out = precision_recall(m.ref_features, m.features, k=3)
    if out["precision"] < 0.1:
        m.notes.append(f"quality: {1 - out['precision']:.0%} of samples lie outside every real sample's "
                       f"neighbourhood (precision {out['precision']:.3f}): they do not look like the data")
    return out


@metric("dc", kinds="images", keys=("density", "coverage"), needs="features",
        description="density and coverage of k-NN balls, k = 5 (Naeem et al. 2020)")
def _density_coverage(m: Inputs) -> dict[str, float]:
    from .knn import density_coverage

    return density_coverage(m.ref_features, m.features, k=5)


@metric("classifier", kinds="images",
        keys=("confidence", "confident_share", "class_entropy", "class_share/<class>", "classes_dropped",
              "classes_collapsed", "class_entropy_ratio"),
        lower=("classes_dropped", "classes_collapsed"), needs=("features", "logits", "classes"),
        description="a classifier's confidence and class spread, dropped and collapsed classes")
def _classifier(m: Inputs) -> dict[str, float]:
    from .classes import class_report, classifier_scores
    from .inception_score import softmax

    if m.logits is None or not m.classes:
        m.notes.append("classifier scores need a feature space with class names (--features classifier)")
        return {}
    pf, pr = softmax(m.logits), softmax(m.ref_logits)
    out = classifier_scores(pf)
    shares, verdict = class_report(pf, pr, list(m.classes), m.features, m.ref_features)
    out.update(shares)
    m.notes.append(f"classes: {verdict}")
    return out


@metric("memorisation", kinds="images", keys=("memorised_share", "nn_ratio_median", "nn_ratio_min"),
        lower="memorised_share", needs="pixels",
        description="share of samples far closer to one training image than to the next 50 (a copy; "
                    "Carlini et al. 2023's relative distance), in pixel space")
def _memorisation(m: Inputs) -> dict[str, float]:
    from .memorisation import memorisation, save_nearest_picture

    out, idx, ratio = memorisation(m.pixels, m.ref_pixels)
    if m.picture is not None:
        save_nearest_picture(m.pixels, m.ref_pixels, idx, ratio, m.picture)
        m.notes.append(f"nearest training images: {m.picture}")
    if out["memorised_share"] > 0.05:
        m.notes.append(f"memorisation: {out['memorised_share']:.1%} of samples are (near-)copies of training images")
    return out


# ------------------------------------------------------------------------------ point metrics

@metric("modes", kinds="points", keys=("modes", "modes_total", "high_quality", "reverse_kl"), lower="reverse_kl",
        needs="distribution", description="modes captured and share of high-quality samples (PacGAN, Lin et al. 2018)")
def _modes(m: Inputs) -> dict[str, float]:
    from .toy import pacgan_modes

    dist = m.distribution
    if getattr(dist, "means", None) is None:
        m.notes.append(f"modes: '{m.ref_name}' is not a mixture; no mode count")
        return {}
    return pacgan_modes(m.samples.numpy(), dist.means.numpy(), dist.std)


@metric("w1", kinds="points", keys=("w1", "w1_exact"), lower="w1", needs="distribution",
        description="Wasserstein-1 distance to the true distribution (first 2,000 samples)")
def _w1(m: Inputs) -> dict[str, float]:
    from .toy import wasserstein1

    return wasserstein1(m.samples.numpy()[:2000], m.distribution)


@metric("js", kinds="points", keys="js", lower="js", needs="distribution",
        description="Jensen-Shannon divergence to the true distribution on a grid of bins")
def _js(m: Inputs) -> dict[str, float]:
    from .toy import js_binned

    return js_binned(m.samples.numpy(), m.distribution)


# ------------------------------------------------------------------------ translation metrics

@metric("translation", kinds="translations",
        keys=("domain_acc", "domain_acc/<domain>", "content_acc", "content_acc/<domain>",
              "cycle_l1", "cycle_l1/<domain>", "fid", "fid/<domain>"),
        lower=("cycle_l1", "cycle_l1/<domain>", "fid", "fid/<domain>"), needs=("translate", "domains", "splits"),
        description="held-out images translated into each domain: domain reached, content kept, cycle L1, FID")
def _translation(translate, domains, train, test, **options) -> dict[str, float]:
    from .translation import translation_metrics

    return translation_metrics(translate, domains, train, test, **options)


# ------------------------------------------------------------------------------ token metrics

@metric("text", kinds="tokens",
        keys=("bleu_2", "bleu_3", "bleu_4", "bleu_5", "self_bleu_2", "self_bleu_3", "self_bleu_4", "self_bleu_5",
              "unique_share", "top_share", "distinct_1", "distinct_2", "distinct_3", "distinct_4"),
        lower=("self_bleu_2", "self_bleu_3", "self_bleu_4", "self_bleu_5", "top_share"), needs="references",
        description="BLEU-2..5 against held-out references and self-BLEU-2..5 (nltk's method1 smoothing), "
                    "distinct-1..4, the share of unique samples")
def _text(samples, references, **options) -> dict[str, float]:
    from .text import text_metrics

    return text_metrics(samples, references, **options)


@metric("nll_oracle", kinds="tokens", keys=("nll_oracle", "oracle_full_share"), lower="nll_oracle", needs="oracle",
        description="mean per-token NLL of the samples under the oracle that made the data")
def _nll_oracle(oracle, ids, specials: int, length: int) -> dict[str, float]:
    from .text import oracle_nll

    return oracle_nll(oracle, ids, specials, length)


@metric("nll_test", kinds="tokens", keys="nll_test", lower="nll_test", needs="model",
        description="the run's mean per-token NLL of the held-out sequences")
def _nll_test(nll) -> dict[str, float]:
    return {"nll_test": float(nll())}



# ------------------------------------------------------------------- text style transfer metrics

@metric("transfer", kinds="transfers",
        keys=("transfer_acc", "transfer_acc/<direction>", "content_bleu", "content_bleu/<direction>",
              "fluency_ppl", "fluency_ppl/<direction>", "g2", "g2/<direction>", "classifier_acc"),
        lower=("fluency_ppl", "fluency_ppl/<direction>"), needs="transfer",
        description="held-out sentences moved into the other style: style reached by an independent classifier, "
                    "BLEU-4 against the input, perplexity under the target style's n-gram model, their G2")
def _transfer(translate, judge, **options) -> dict[str, float]:
    from .transfer import transfer_report

    report = transfer_report(judge, translate, **options)
    return {**report["model"], **report["classifier"]}
