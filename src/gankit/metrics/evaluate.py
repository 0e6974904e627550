"""`gankit eval`: load samples and a reference, pick a feature space, compute the metrics.

SAMPLES is a run directory (samples drawn from its EMA generator), an image folder or a ``.npy``
(uint8 (N, H, W, C) images, float (N, C, H, W) images in [-1, 1], or float (N, d) points).
REF is a preset name (its data set) or an image folder. Reference features are cached per
(data set, extractor, preprocessing, n): a second evaluation does not recompute them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import data as data_mod
from ..config import DataConfig, preset_names, resolve
from ..errors import GankitError
from . import cache
from .classes import class_report, classifier_scores
from .features import Extractor, get_extractor
from .fid import fid
from .inception_score import inception_score, softmax
from .kid import kid
from .knn import density_coverage, precision_recall
from .memorisation import memorisation, save_nearest_picture
from .toy import js_binned, pacgan_modes, wasserstein1

IMAGE_METRICS = ["fid", "kid", "is", "pr", "dc", "classifier", "memorisation"]
POINT_METRICS = ["modes", "w1", "js"]
ALL_METRICS = IMAGE_METRICS + POINT_METRICS
LOWER_IS_BETTER = {"fid", "kid", "reverse_kl", "w1", "js", "memorised_share", "classes_dropped", "classes_collapsed",
                   "cycle_l1"}


@dataclass
class Reference:
    name: str                      # what the user named (preset or folder)
    ident: tuple                   # identity for caches
    kind: str                      # "images" or "points"
    x: torch.Tensor | None = None  # images (N, C, H, W) in [-1, 1] or points
    labels: torch.Tensor | None = None
    classes: list[str] = field(default_factory=list)
    distribution: object = None    # toy distributions: the true distribution
    data_cfg: DataConfig | None = None


def reference_from_source(source, name: str, ident: tuple, n: int, data_cfg: DataConfig | None) -> Reference:
    """A Reference from a data source: toy -> its distribution; finite -> up to n samples, seeded."""
    if isinstance(source, data_mod.ToySource):
        return Reference(name, ident, "points", distribution=source.distribution, data_cfg=data_cfg)
    if isinstance(source, data_mod.TensorSource):
        everything = source.all()
        x, y = everything["x"], everything.get("y")
        if len(x) > n:
            idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n]
            x, y = x[idx], (y[idx] if y is not None else None)
    else:
        batches = data_mod.Batches(source, min(n, 500), seed=0)
        parts = [next(batches) for _ in range((n + 499) // 500)]
        batches.close()
        x = torch.cat([p["x"] for p in parts])[:n]
        y = torch.cat([p["y"] for p in parts])[:n] if "y" in parts[0] else None
    return Reference(name, ident, source.info.kind, x=x, labels=y, classes=source.info.classes, data_cfg=data_cfg)


def load_reference(spec: str, n: int = 10_000) -> Reference:
    """REF: a preset name or an image folder."""
    if spec in preset_names():
        cfg = resolve(spec).data
    elif os.path.isdir(os.path.expanduser(spec)):
        cfg = DataConfig(name="folder", path=spec)
    else:
        raise GankitError(f"--ref {spec}: neither a preset nor a folder; valid presets: {', '.join(preset_names())}")
    return reference_from_source(data_mod.load(cfg), spec, reference_ident(cfg), n, cfg)


def reference_ident(cfg: DataConfig) -> tuple:
    """What identifies a reference data set in the caches (a folder's contents included)."""
    return (cfg.name, os.path.abspath(os.path.expanduser(cfg.path)) if cfg.path else "", cfg.size, cfg.channels,
            cache.folder_fingerprint(cfg.path) if cfg.name == "folder" else None)


def load_samples(spec: str, n: int = 10_000, seed: int = 0, sampler: str | None = None) -> tuple[torch.Tensor, str]:
    """SAMPLES -> (tensor, kind): images (N, C, H, W) in [-1, 1] or points (N, d)."""
    p = Path(spec)
    if (p / "checkpoints").is_dir():
        from ..run import draw, open_run

        run = open_run(p, sampler=sampler)
        if getattr(run.recipe, "translates", False):
            raise GankitError(f"'{spec}' is a CycleGAN / StarGAN run: score it with gankit eval {spec} (no --ref; "
                              f"its data's test split is used)")
        labels = None
        if getattr(run.recipe, "paired", False) or run.info.cond_dim:
            # image or vector conditions come from the run's data: translate / condition on its samples
            labels = run.recipe.fixed_conditions(data_mod.load(run.cfg.data), n, seed)
        return draw(run, n, seed=seed, labels=labels), run.info.kind
    if p.suffix == ".npy":
        if not p.exists():
            raise GankitError(f"samples file '{p}' does not exist")
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise GankitError(f"cannot read '{p}' as a .npy array ({e})") from None
        if arr.dtype == np.uint8 and arr.ndim == 4 and arr.shape[-1] in (1, 3):
            return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1, "images"
        if arr.dtype.kind == "f" and arr.ndim == 4 and arr.shape[1] in (1, 3):
            return torch.from_numpy(arr.astype(np.float32)), "images"
        if arr.dtype.kind == "f" and arr.ndim == 2:
            return torch.from_numpy(arr.astype(np.float32)), "points"
        raise GankitError(f"'{p}': expected uint8 (N, H, W, C) images, float (N, C, H, W) images in [-1, 1] "
                          f"or float (N, d) points; got {arr.dtype} {arr.shape}")
    if p.is_dir():
        source = data_mod.load(DataConfig(name="folder", path=str(p)))
        x = source.all()["x"] if isinstance(source, data_mod.TensorSource) else \
            reference_from_source(source, spec, (), n, None).x
        return x, "images"
    raise GankitError(f"SAMPLES {spec}: not a run directory, an image folder or a .npy file")


def choose_extractor(name: str | None, ref: Reference, notes: list[str]) -> Extractor:
    """--features NAME, else Inception when its weights are present, else the domain classifier.
    Building a network draws initial weights from the global torch RNG before the saved ones replace
    them: that happens on a forked RNG, so evaluating during training never changes the training."""
    with torch.random.fork_rng():
        return _choose_extractor(name, ref, notes)


def _choose_extractor(name: str | None, ref: Reference, notes: list[str]) -> Extractor:
    if name:
        if name.startswith("torchvision:"):
            return get_extractor("torchvision", model=name.split(":", 1)[1])
        if name.startswith("inception:"):
            return get_extractor("inception", weights=name.split(":", 1)[1])
        if name == "classifier":
            return _domain_classifier(ref, notes)
        return get_extractor(name)
    from .features.inception import weights_path

    if weights_path() is not None:
        return get_extractor("inception")
    if ref.classes and ref.data_cfg is not None:
        ex = _domain_classifier(ref, notes)
        notes.insert(0, f"no Inception weights found: using gankit's {ref.name} classifier as the feature space "
                        f"(test accuracy {ex.test_accuracy:.3f}); FID/KID values are not comparable to "
                        f"Inception-based numbers")
        return ex
    get_extractor("inception")  # raises the message that says which file to place where
    raise AssertionError("unreachable")


def _domain_classifier(ref: Reference, notes: list[str]) -> Extractor:
    if not ref.classes or ref.data_cfg is None:
        raise GankitError(f"--features classifier needs a labelled reference data set; '{ref.name}' has no labels")
    from .features.classifier import DomainClassifier

    return DomainClassifier(ref.data_cfg)


def reference_features(ref: Reference, ex: Extractor, notes: list[str]) -> dict[str, np.ndarray]:
    """The extractor's outputs on the reference images, from the cache when present."""
    folder = cache.cache_dir("refstats")
    path = folder / f"{ex.name}-{cache.key(ref.ident, ex.name, ex.preprocessing, len(ref.x))}.npz"
    if path.exists():
        notes.append(f"reference features: cached ({path})")
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    out = ex(ref.x)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **out)
    os.replace(tmp, path)
    notes.append(f"reference features: computed for {len(ref.x)} images and cached ({path})")
    return out


def check_metrics(metrics: list[str] | None, kind: str, origin: str) -> list[str]:
    """The metrics to compute for samples of ``kind`` (all that apply when none are named); a
    GankitError naming ``origin`` for one that does not apply."""
    valid = IMAGE_METRICS if kind == "images" else POINT_METRICS
    for m in metrics or []:
        if m not in valid:
            raise GankitError(f"{origin}: '{m}' does not apply to {kind}; valid: {', '.join(valid)}")
    return list(metrics or valid)


def evaluate(samples: torch.Tensor, kind: str, ref: Reference, metrics: list[str] | None = None,
             features: str | None = None, picture: Path | None = None) -> tuple[dict[str, float], list[str]]:
    """Flat dict of floats and human-readable notes (verdicts, which feature space, caching)."""
    if kind != ref.kind:
        raise GankitError(f"samples are {kind} but the reference '{ref.name}' holds {ref.kind}")
    metrics = check_metrics(metrics, kind, "--metrics")
    out: dict[str, float] = {"n_samples": float(len(samples))}
    notes: list[str] = []
    if kind == "points":
        return _evaluate_points(samples, ref, metrics, out, notes), notes
    if tuple(samples.shape[1:]) != tuple(ref.x.shape[1:]) and "memorisation" in metrics:
        notes.append(f"memorisation compares pixels: samples {tuple(samples.shape[1:])} are resized to "
                     f"the reference's {tuple(ref.x.shape[1:])}")
    out["n_reference"] = float(len(ref.x))
    needs_features = [m for m in metrics if m != "memorisation"]
    if needs_features:
        ex = choose_extractor(features, ref, notes)
        out_feat = ex(samples)
        ref_feat = reference_features(ref, ex, notes)
        f_fake, f_real = out_feat["features"], ref_feat["features"]
        if "fid" in metrics:
            out["fid"] = fid(f_real, f_fake)
        if "kid" in metrics:
            out.update(kid(f_real, f_fake))
        if "pr" in metrics:
            out.update(precision_recall(f_real, f_fake, k=3))
            if out["precision"] < 0.1:
                notes.append(f"quality: {1 - out['precision']:.0%} of samples lie outside every real sample's "
                             f"neighbourhood (precision {out['precision']:.3f}): they do not look like the data")
        if "dc" in metrics:
            out.update(density_coverage(f_real, f_fake, k=5))
        if "is" in metrics and "logits" in out_feat:
            out.update(inception_score(softmax(out_feat["logits"])))
        if "classifier" in metrics:
            if "logits" not in out_feat or not getattr(ex, "classes", None):
                notes.append("classifier scores need a feature space with class names (--features classifier)")
            else:
                pf, pr = softmax(out_feat["logits"]), softmax(ref_feat["logits"])
                out.update(classifier_scores(pf))
                shares, verdict = class_report(pf, pr, list(ex.classes), f_fake, f_real)
                out.update(shares)
                notes.append(f"classes: {verdict}")
    if "memorisation" in metrics:
        s = samples
        if tuple(s.shape[1:]) != tuple(ref.x.shape[1:]):
            s = torch.nn.functional.interpolate(s.float(), size=ref.x.shape[-2:], mode="area")
            if s.shape[1] != ref.x.shape[1]:
                s = s.mean(1, keepdim=True) if ref.x.shape[1] == 1 else s.expand(-1, 3, -1, -1)
        mem, idx, ratio = memorisation(s, ref.x)
        out.update(mem)
        if picture is not None:
            save_nearest_picture(s, ref.x, idx, ratio, picture)
            notes.append(f"nearest training images: {picture}")
        if mem["memorised_share"] > 0.05:
            notes.append(f"memorisation: {mem['memorised_share']:.1%} of samples are (near-)copies of training images")
    return out, notes


def _evaluate_points(x: torch.Tensor, ref: Reference, metrics: list[str], out: dict, notes: list[str]) -> dict:
    dist = ref.distribution
    xs = x.numpy()
    if "modes" in metrics:
        if getattr(dist, "means", None) is None:
            notes.append(f"modes: '{ref.name}' is not a mixture; no mode count")
        else:
            out.update(pacgan_modes(xs, dist.means.numpy(), dist.std))
    if "w1" in metrics:
        out.update(wasserstein1(xs[:2000], dist))
    if "js" in metrics:
        out.update(js_binned(xs, dist))
    return out


def format_table(values: dict[str, float], notes: list[str]) -> str:
    width = max(map(len, values), default=0)
    lines = [f"{k:<{width}}  {v:.6g}" for k, v in values.items()]
    return "\n".join(lines + [""] + notes if notes else lines)
