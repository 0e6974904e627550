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

The translator is any function ``translate(x, source, to) -> images`` (x: images (N, C, H, W), source
and to: their domains and the target domains (N,)); ``gankit.training.evaluation`` makes one of a recipe.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .. import data as data_mod
from ..errors import DataError, GankitError
from .fid import fid

Translate = Callable[[Tensor, Tensor, Tensor], Tensor]


def pixel_classifier(x: Tensor, y: Tensor):
    """An SVC (RBF, C = 10) on flattened pixels of x (N, C, H, W), fitted to labels y (N,) (its own
    random state: NumPy's global one is left alone)."""
    from sklearn.svm import SVC

    return SVC(C=10.0, random_state=0).fit(x.flatten(1).numpy(), y.numpy())


def _predict(clf, x: Tensor) -> np.ndarray:
    return clf.predict(x.flatten(1).numpy())


def translation_metrics(translate: Translate, domains: list[str], train: dict[str, Tensor], test: dict[str, Tensor],
                        content_train: Tensor | None = None, content_test: Tensor | None = None,
                        extractor=None) -> dict[str, float]:
    """The metrics above of ``translate`` between ``domains`` (their names, in index order).
    ``train`` / ``test``: {"x": images, "y": domains} of the two splits; ``content_*``: the shared
    labels of their images, when the domains share labels; ``extractor``: a feature space for FID
    (None: no FID)."""
    domain_clf = pixel_classifier(train["x"], train["y"])
    out: dict[str, float] = {}
    for t, name in enumerate(domains):
        src = test["y"] != t
        x, y = test["x"][src], test["y"][src]
        to = torch.full_like(y, t)
        fake = translate(x, y, to)
        back = translate(fake, to, y)
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
