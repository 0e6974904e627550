"""A domain classifier that gankit trains itself on a labelled data set (digits, a labelled folder,
MNIST, ...), cached after the first use, for the classifier-based scores and as an
offline feature space when no Inception weights are present.

Network: ``nets.classifier.SmallCNN``. Trained with Adam on 80% of the set (random
±1 px shifts), tested on the other 20%; the test accuracy is stored with the weights.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ...config import DataConfig
from ...errors import GankitError
from ...nets.classifier import SmallCNN, shift_images
from .. import cache
from ..presets import preset_data
from .base import FEATURES, extract


def train_classifier(x: torch.Tensor, y: torch.Tensor, classes: int, epochs: int = 30, seed: int = 0,
                     batch: int = 64) -> tuple[SmallCNN, float]:
    """Train on 80% of (x (N, C, H, W) in [-1, 1], y (N,)), return (net, accuracy on the other 20%)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    cut = int(0.8 * len(x))
    tr, te = perm[:cut], perm[cut:]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = SmallCNN(x.shape[1], classes)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * ((cut + batch - 1) // batch))
    for _ in range(epochs):
        order = tr[torch.randperm(cut, generator=g)]
        for i in range(0, cut, batch):
            idx = order[i:i + batch]
            loss = F.cross_entropy(net(shift_images(x[idx], g)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.inference_mode():
        acc = (net(x[te]).argmax(1) == y[te]).float().mean().item() if len(te) else float("nan")
    return net, acc


class DomainClassifier:
    """Extractor: {"features": (N, 128), "logits": (N, K)} from the cached classifier of a data set."""

    def __init__(self, cfg: DataConfig, batch_size: int = 500) -> None:
        self.data_cfg = cfg
        ident = ("classifier-v1", cfg.name, os.path.abspath(cfg.path) if cfg.path else "", cfg.size, cfg.channels,
                 cache.folder_fingerprint(cfg.path) if cfg.name == "folder" else None)
        self.name = f"classifier-{cfg.name}"
        folder = cache.cache_dir("classifiers")
        stem = folder / f"{cfg.name}-{cache.key(*ident)}"
        weights, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
        if meta_path.exists() and weights.exists():
            meta = json.loads(meta_path.read_text())
            self.net = SmallCNN(meta["shape"][0], len(meta["classes"]))
            self.net.load_state_dict(load_file(str(weights)))
        else:
            meta = self._train(cfg)
            save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, str(weights) + ".tmp")
            os.replace(str(weights) + ".tmp", weights)
            meta_path.write_text(json.dumps(meta))
        self.net.eval()
        self.classes = meta["classes"]
        self.shape = tuple(meta["shape"])
        self.test_accuracy = meta["test_accuracy"]
        self.dim = 128
        self.preprocessing = f"area-resize-{self.shape[-1]},gray/rgb->{self.shape[0]}ch"
        self.batch_size = batch_size

    def _train(self, cfg: DataConfig) -> dict:
        from ... import data

        source = data.load(cfg)
        if not source.info.classes or not isinstance(source, data.TensorSource):
            raise GankitError(f"data set '{cfg.name}' has no labels held in memory; a domain classifier "
                              f"needs a labelled data set (class sub-folders for a folder)")
        allx = source.all()
        self.net, acc = train_classifier(allx["x"], allx["y"], len(source.info.classes))
        return {"classes": source.info.classes, "shape": list(source.info.shape), "test_accuracy": acc}

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] -> the classifier's channels and size."""
        x = images.float()
        c, h = self.shape[0], self.shape[-1]
        if x.shape[1] != c:
            x = x.mean(1, keepdim=True) if c == 1 else x.expand(-1, 3, -1, -1)
        if x.shape[-1] != h or x.shape[-2] != h:
            x = F.interpolate(x, size=(h, h), mode="area" if x.shape[-1] > h else "bilinear", align_corners=None)
        return x

    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        def batch(x: torch.Tensor) -> dict[str, torch.Tensor]:
            with torch.inference_mode():
                f = self.net.features(self.prepare(x))
                return {"features": f, "logits": self.net.head(f)}

        return extract(batch, images, self.batch_size,
                       lambda: {"features": (0, self.dim), "logits": (0, len(self.classes))}, desc=self.name)


@FEATURES.register("classifier")
def classifier_extractor(data: str = "digits", path: str = "", **_: object) -> DomainClassifier:
    """The classifier of a preset's data set (``data``) or of a labelled image folder (``path``)."""
    return DomainClassifier(preset_data(data) if not path else DataConfig(name="folder", path=path))
