"""`gankit eval`: load samples and a reference, pick a feature space, compute the metrics of the
registry (``metrics.registry``).

Samples here are an image folder or a ``.npy`` (uint8 (N, H, W, C) images, float (N, C, H, W) images
in [-1, 1], or float (N, d) points); a run directory's samples are drawn by ``gankit.evaluation``.
REF is a preset name (its data set) or an image folder. Reference features are cached per
(data set, extractor, preprocessing, n): a second evaluation does not recompute them.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .. import data as data_mod
from ..config import DataConfig, preset_names
from ..errors import GankitError
from ..runtime import rank_zero_first, shards
from . import cache
from .features import Extractor, get_extractor
from .presets import preset_data
from .registry import Inputs, check_metrics, metrics_for
from .translation import Translate, translation_metrics, translation_sets

FEATURE_NEEDS = {"features", "logits", "classes"}   # what the feature space gives


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
        cfg = preset_data(spec)
    elif os.path.isdir(os.path.expanduser(spec)):
        cfg = DataConfig(name="folder", path=spec)
    else:
        raise GankitError(f"--ref {spec}: neither a preset nor a folder; valid presets: {', '.join(preset_names())}")
    return reference_from_source(data_mod.load(cfg), spec, reference_ident(cfg), n, cfg)


def reference_ident(cfg: DataConfig) -> tuple:
    """What identifies a reference data set in the caches (a folder's contents included)."""
    return (cfg.name, os.path.abspath(os.path.expanduser(cfg.path)) if cfg.path else "", cfg.size, cfg.channels,
            cache.folder_fingerprint(cfg.path) if cfg.name == "folder" else None)


def load_samples(spec: str, n: int = 10_000) -> tuple[torch.Tensor, str]:
    """SAMPLES (a ``.npy`` or an image folder; up to ``n`` of a folder too large to hold) -> (tensor,
    kind): images (N, C, H, W) in [-1, 1] or points (N, d)."""
    p = Path(spec)
    if p.suffix == ".npy":
        if not p.exists():
            raise GankitError(f"samples file '{p}' does not exist")
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise GankitError(f"cannot read '{p}' as a .npy array ({e})") from None
        if arr.ndim in (2, 4) and arr.dtype.kind in "uif":
            if len(arr) < 2:
                raise GankitError(f"'{p}': {len(arr)} sample{'s' if len(arr) != 1 else ''}; at least 2 are needed")
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                bad = int((~np.isfinite(arr)).reshape(len(arr), -1).any(axis=1).sum())
                raise GankitError(f"'{p}': {bad} of {len(arr)} samples hold NaN or Inf values")
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
    with torch.random.fork_rng(), rank_zero_first():   # under torchrun, rank 0 trains and caches a classifier
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
    if shards().rank == 0:   # one writer when the evaluation is spread over processes
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **out)
        os.replace(tmp, path)
    notes.append(f"reference features: computed for {len(ref.x)} images and cached ({path})")
    return out


WEAK_ACCURACY = 0.7       # a classifier feature space below this held-out accuracy cannot judge
WEAK_BLUR_RATIO = 10.0    # nor one where blurred real images score under this many times the real-vs-real distance


def blurred(x: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) under a Gaussian blur of σ = side / 10: what a generator early in training draws."""
    from torchvision.transforms.functional import gaussian_blur

    sigma = max(x.shape[-1] / 10, 0.5)
    k = 2 * int(3 * sigma) + 1
    return gaussian_blur(x.float(), [k, k], [sigma, sigma])


def judge_check(ex: Extractor, ref: Reference, real: dict[str, np.ndarray]) -> dict[str, float]:
    """Can this feature space tell real images from poor ones? Reference images split in halves A and B:
    the Fréchet distance of A to B (what two draws of the same data score) against A to B blurred
    (``blurred``) and A to uniform noise images, as ratios; and a classifier's held-out accuracy. Cached
    beside the reference features."""
    folder = cache.cache_dir("refstats")
    path = folder / f"{ex.name}-{cache.key(ref.ident, ex.name, ex.preprocessing, len(ref.x))}-check.json"
    if path.exists():
        return json.loads(path.read_text())
    from .fid import fid

    order = torch.randperm(len(ref.x), generator=torch.Generator().manual_seed(0)).numpy()
    a, b = order[:len(order) // 2], order[len(order) // 2:]
    feats = real["features"]
    floor = max(fid(feats[a], feats[b]), 1e-12)
    noise = torch.rand(ref.x[b].shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    out = {"judge_blur_ratio": fid(feats[a], ex(blurred(ref.x[b]))["features"]) / floor,
           "judge_noise_ratio": fid(feats[a], ex(noise)["features"]) / floor}
    if getattr(ex, "test_accuracy", None) is not None:
        out["judge_accuracy"] = float(ex.test_accuracy)
    if shards().rank == 0:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(out))
        os.replace(tmp, path)
    return out


def weak_judge(check: dict[str, float]) -> str:
    """Why a feature space cannot judge (``judge_check``'s values), or "" when it can."""
    reasons = []
    if check.get("judge_accuracy", 1.0) < WEAK_ACCURACY:
        reasons.append(f"its classifier's held-out accuracy is {check['judge_accuracy']:.3f} (< {WEAK_ACCURACY})")
    if check["judge_blur_ratio"] < WEAK_BLUR_RATIO:
        reasons.append(f"blurred real images score only {check['judge_blur_ratio']:.1f}x the distance between two "
                       f"halves of the real data (< {WEAK_BLUR_RATIO:g}x)")
    return "; ".join(reasons)


def evaluate(samples: torch.Tensor, kind: str, ref: Reference, metrics: list[str] | None = None,
             features: str | None = None, picture: Path | None = None,
             trust_features: bool = False) -> tuple[dict[str, float], list[str]]:
    """The registered metrics named in ``metrics`` (all that apply to ``kind`` when None), in
    registration order: a flat dict of floats and human-readable notes (verdicts, which feature space,
    caching). Images: the feature space is checked first (``judge_check``: ``judge_*`` values); when it
    cannot judge (``weak_judge``), the metrics computed in it are withheld and the first note says why —
    unless ``trust_features``."""
    if kind != ref.kind:
        raise GankitError(f"samples are {kind} but the reference '{ref.name}' holds {ref.kind}")
    if kind == "points":
        dim = ref.distribution.dim if ref.distribution is not None else ref.x.shape[1]
        if samples.shape[1] != dim:
            raise GankitError(f"samples are points in {samples.shape[1]} dimensions but the reference "
                              f"'{ref.name}' holds points in {dim}")
    chosen = check_metrics(metrics, kind, "--metrics")
    todo = [m for m in metrics_for(kind) if m.name in chosen]
    needs = {need for m in todo for need in m.needs}
    out: dict[str, float] = {"n_samples": float(len(samples))}
    inputs = Inputs(samples, ref.name, picture=picture, distribution=ref.distribution)
    if kind == "images":
        todo = _prepare_images(inputs, todo, needs, ref, features, out, trust_features)
        if shards().rank != 0:   # the features were shared out; the metrics are rank 0's
            return out, inputs.notes
    for m in todo:
        out.update(m.fn(inputs))
    return out, inputs.notes


def _prepare_images(inputs: Inputs, todo: list, needs: set[str], ref: Reference, features: str | None,
                    out: dict[str, float], trust_features: bool = False) -> list:
    """Fill ``inputs`` with what the image metrics ``todo`` need: the feature space's outputs on the
    samples and the reference, and pixels at the reference's shape. Returns the metrics to compute:
    ``todo`` without those of a feature space that cannot judge."""
    samples, notes = inputs.samples, inputs.notes
    by_pixels = [m.name for m in todo if "pixels" in m.needs]
    if tuple(samples.shape[1:]) != tuple(ref.x.shape[1:]) and by_pixels:
        notes.append(f"{', '.join(by_pixels)} compare{'s' if len(by_pixels) == 1 else ''} pixels: samples "
                     f"{tuple(samples.shape[1:])} are resized to the reference's {tuple(ref.x.shape[1:])}")
    out["n_reference"] = float(len(ref.x))
    if needs & FEATURE_NEEDS:
        ex = choose_extractor(features, ref, notes)
        fake, real = ex(samples), reference_features(ref, ex, notes)
        inputs.features, inputs.ref_features = fake["features"], real["features"]
        inputs.logits, inputs.ref_logits = fake.get("logits"), real.get("logits")
        inputs.classes = list(getattr(ex, "classes", None) or [])
        check = judge_check(ex, ref, real)
        out.update(check)
        why = weak_judge(check)
        if why:
            judged = [m.name for m in todo if set(m.needs) & FEATURE_NEEDS]
            if trust_features:
                notes.insert(0, f"the feature space is weak ({why}); {', '.join(judged)} reported as asked "
                                f"(--trust-features)")
            else:
                notes.insert(0, f"the feature space cannot judge these images ({why}): {', '.join(judged)} withheld; "
                                f"choose another with --features, or report them anyway with --trust-features")
                todo = [m for m in todo if m.name not in judged]
    if "pixels" in needs:
        inputs.pixels, inputs.ref_pixels = to_reference_shape(samples, ref.x), ref.x
    return todo


def to_reference_shape(samples: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Images resized (area interpolation) and converted (grey <-> RGB) to the image shape of ``ref``."""
    if tuple(samples.shape[1:]) == tuple(ref.shape[1:]):
        return samples
    s = torch.nn.functional.interpolate(samples.float(), size=ref.shape[-2:], mode="area")
    if s.shape[1] != ref.shape[1]:
        s = s.mean(1, keepdim=True) if ref.shape[1] == 1 else s.expand(-1, 3, -1, -1)
    return s


def format_table(values: dict[str, float], notes: list[str]) -> str:
    width = max(map(len, values), default=0)
    lines = [f"{k:<{width}}  {v:.6g}" for k, v in values.items()]
    return "\n".join(lines + [""] + notes if notes else lines)


def evaluate_translations(translate: Translate, domains: list[str], data_cfg, features: str | None = None,
                          sets: tuple | None = None) -> tuple[dict[str, float], list[str]]:
    """The metrics above of ``translate`` between the ``domains`` of ``data_cfg``, on ``sets``
    (``translation_sets(data_cfg)``, loaded here when not given), FID in the feature space
    ``features`` (None: the default of ``gankit eval``)."""
    train, test, set_notes = sets if sets is not None else translation_sets(data_cfg)
    notes = list(set_notes)
    cfg = replace(data_cfg, split="train")
    tr, te = train.all(), test.all()
    ref = Reference(cfg.name, reference_ident(cfg), "images", x=tr["x"], labels=tr["y"], classes=train.info.classes,
                    data_cfg=cfg)
    extractor = choose_extractor(features, ref, notes)
    values = translation_metrics(translate, domains, tr, te, train.content, test.content, extractor)
    notes.append(f"{len(te['x'])} held-out images; classifiers: SVC on pixels fitted to {len(tr['x'])} training images")
    return values, notes
