"""Metrics of unpaired image-to-image translation (``cyclegan``, ``stargan`` runs) on held-out images.

For every target domain t, the held-out images of the other domains are translated into t, then back
into their own domain, and scored (flat keys, t = the domain's name):

    domain_acc/<t>    share of translations an independent domain classifier files under t
    content_acc/<t>   when the domains share labels (the digit of ``digits-printed``): share of translations
                      an independent classifier trained on real images of t gives the source image's label
    cycle_l1/<t>      mean |x - back(G(x))| in the [-1, 1] units of the images: how well the content survives
    fid/<t>           FID of the translations against the held-out real images of t, in a given feature space

and the mean of each over the targets (``domain_acc``, ...). The independent classifiers are
scikit-learn SVCs (RBF kernel, C = 10, pixels as features) fitted on the *training* split; the
translations and the images they are compared to come from the held-out split.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..recipes import draw_samples
from ..recipes.translation import Translation
from .fid import fid


def pixel_classifier(x: Tensor, y: Tensor):
    """An SVC (RBF, C = 10) on flattened pixels of x (N, C, H, W), fitted to labels y (N,) (its own
    random state: NumPy's global one is left alone)."""
    from sklearn.svm import SVC

    return SVC(C=10.0, random_state=0).fit(x.flatten(1).numpy(), y.numpy())


def _predict(clf, x: Tensor) -> np.ndarray:
    return clf.predict(x.flatten(1).numpy())


def translation_metrics(recipe, train: dict[str, Tensor], test: dict[str, Tensor], content_train: Tensor | None = None,
                        content_test: Tensor | None = None, extractor=None, seed: int = 0,
                        ema: bool = True) -> dict[str, float]:
    """The metrics above. ``train`` / ``test``: {"x": images, "y": domains} of the two splits;
    ``content_*``: the shared labels of their images, when the domains share labels; ``extractor``: a
    feature space for FID (None: no FID)."""
    domains = list(recipe.domains)
    domain_clf = pixel_classifier(train["x"], train["y"])
    out: dict[str, float] = {}
    for t, name in enumerate(domains):
        src = test["y"] != t
        x, y = test["x"][src], test["y"][src]
        cond = Translation(x, y, torch.full_like(y, t))
        fake = torch.cat(draw_samples(recipe, len(x), seed, ema=ema, labels=cond))
        back = torch.cat(draw_samples(recipe, len(x), seed, ema=ema, labels=cond.back(fake)))
        out[f"domain_acc/{name}"] = float((_predict(domain_clf, fake) == t).mean())
        out[f"cycle_l1/{name}"] = float((back - x).abs().mean())
        if content_train is not None and content_test is not None:
            mine = train["y"] == t
            content_clf = pixel_classifier(train["x"][mine], content_train[mine])
            out[f"content_acc/{name}"] = float((_predict(content_clf, fake) == content_test[src].numpy()).mean())
        if extractor is not None:
            real = test["x"][test["y"] == t]
            out[f"fid/{name}"] = fid(extractor(real)["features"], extractor(fake)["features"])
    for key in ("domain_acc", "content_acc", "cycle_l1", "fid"):
        parts = [v for k, v in out.items() if k.startswith(key + "/")]
        if parts:
            out[key] = float(np.mean(parts))
    return out


def translation_sets(data_cfg) -> tuple:
    """(training set, held-out set, notes) of a translation run's data: the test split when the data set
    has one, else the training images again (said in the notes). Both held in memory."""
    from dataclasses import replace

    from .. import data as data_mod
    from ..errors import DataError, GankitError

    notes: list[str] = []
    train = data_mod.load(replace(data_cfg, split="train"))
    try:
        test = data_mod.load(replace(data_cfg, split="test"))
    except DataError:
        test = train
        notes.append("the data set has no test split: scored on training images (held-out scores need testA/testB, "
                     "test/ or a built-in split)")
    if not isinstance(train, data_mod.TensorSource) or not isinstance(test, data_mod.TensorSource):
        raise GankitError("translation metrics need a data set held in memory (under 2 GiB decoded)")
    return train, test, notes


def evaluate_translation(recipe, data_cfg, features: str | None = None, seed: int = 0, ema: bool = True,
                         sets: tuple | None = None) -> tuple[dict[str, float], list[str]]:
    """The metrics above for a CycleGAN / StarGAN ``recipe`` trained on ``data_cfg``, on ``sets``
    (``translation_sets(data_cfg)``, loaded here when not given)."""
    from dataclasses import replace

    from .evaluate import Reference, choose_extractor, reference_ident

    train, test, set_notes = sets if sets is not None else translation_sets(data_cfg)
    notes = list(set_notes)
    cfg = replace(data_cfg, split="train")
    tr, te = train.all(), test.all()
    ref = Reference(cfg.name, reference_ident(cfg), "images", x=tr["x"], labels=tr["y"], classes=train.info.classes,
                    data_cfg=cfg)
    extractor = choose_extractor(features, ref, notes)
    values = translation_metrics(recipe, tr, te, train.content, test.content, extractor, seed=seed, ema=ema)
    notes.append(f"{len(te['x'])} held-out images; classifiers: SVC on pixels fitted to {len(tr['x'])} training images")
    return values, notes


def evaluate_translation_run(run_dir: str, features: str | None = None, seed: int = 0) -> tuple[dict[str, float], list[str]]:
    """``gankit eval RUN`` for a CycleGAN / StarGAN run."""
    from ..run import open_run

    run = open_run(run_dir)
    return evaluate_translation(run.recipe, run.cfg.data, features, seed)
