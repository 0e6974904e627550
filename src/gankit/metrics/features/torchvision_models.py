"""Any torchvision classification model as a feature extractor, with locally present weights.

``get_extractor("torchvision", model="resnet50")`` builds ``torchvision.models.get_model("resnet50")``
and loads, without ever downloading:

* ``weights=PATH``: a state dict file of that model (``torch.load(weights_only=True)``);
* ``weights=NAME``: a weights entry of the model (``"IMAGENET1K_V2"``, ``"DEFAULT"``), read from the
  torch hub cache ``torch.hub.get_dir()/checkpoints/<basename of its url>``;
* no ``weights``: the model's DEFAULT weights, read from the hub cache the same way.

The model is built as torchvision's builder would for those weights (number of classes, image size of
ViT / MaxViT, ``transform_input`` of Inception-v3 / GoogLeNet); ``**model_kwargs`` override that.

Outputs, float64 on the CPU: ``features`` = the input of the final classifier layer (``layer=
"penultimate"``: the last ``nn.Linear``, e.g. ``fc``, ``classifier[-1]``, ``heads.head``), or the output
of any named module (``layer="layer4"``; 4-d maps are averaged over space, other shapes flattened);
``logits`` = the classifier's output. Preprocessing: [-1, 1] -> [0, 1], gray -> RGB, resize of the whole
image (no crop) to the weights' crop size (224 unless the weights say otherwise) with their
interpolation (bilinear or bicubic, antialiased), then their mean/std (ImageNet's).
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from ...errors import GankitError
from .base import FEATURES, extract
from .inception import check_batch_size, check_images, load_state_dict_file, resolve_device

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_AUX_PREFIXES = ("AuxLogits.", "aux1.", "aux2.")


def classification_models() -> list[str]:
    return sorted(torchvision.models.list_models(module=torchvision.models))


def _check_model_name(model: str) -> None:
    valid = classification_models()
    if model in valid:
        return
    close = difflib.get_close_matches(str(model), valid, n=4, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise GankitError(f"unknown torchvision model '{model}'; {hint}valid names include "
                      f"{', '.join(n for n in ('resnet18', 'resnet50', 'vgg16', 'densenet121', 'efficientnet_b0', 'convnext_tiny', 'vit_b_16', 'swin_t') if n in valid)} "
                      f"({len(valid)} in all: torchvision.models.list_models(module=torchvision.models))")


def _hub_file(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _weights_enum_entries(model: str) -> list:
    try:
        return list(torchvision.models.get_model_weights(model))
    except (ValueError, KeyError):
        return []


def _resolve_weights(model: str, weights: str | os.PathLike | None):
    """(file, weights entry describing it or None, official?)."""
    entries = _weights_enum_entries(model)
    default = None
    if entries:
        default = torchvision.models.get_model_weights(model).DEFAULT
    if weights is None or str(weights) in ("", "DEFAULT"):
        entry = default
    else:
        p = Path(weights).expanduser()
        if p.is_file():
            match = next((e for e in entries if os.path.basename(e.url) == p.name), None)
            return p, (match or default), match is not None
        entry = next((e for e in entries if e.name == str(weights)), None)
        if entry is None:
            names = ", ".join(e.name for e in entries)
            raise GankitError(f"torchvision model '{model}': weights '{weights}' is neither an existing file "
                              f"nor one of its weights ({names or 'none'}); pass the path of a state dict file")
    if entry is None:
        raise GankitError(f"torchvision model '{model}' has no published weights; pass weights=PATH of a state dict")
    f = _hub_file(entry.url)
    if not f.is_file():
        raise GankitError(f"weights for torchvision model '{model}' not found: place {f.name} at {f} "
                          f"(download it on a machine with network from {entry.url}) or pass weights=PATH")
    return f, entry, True


def _builder_kwargs(model: str, entry) -> dict:
    """What torchvision's builder sets when it is given ``entry``'s weights (but builds untrained)."""
    kw: dict = {}
    if entry is None:
        return kw
    cats = entry.meta.get("categories")
    if cats:
        kw["num_classes"] = len(cats)
    if model in ("inception_v3", "googlenet"):
        kw.update(transform_input=True, aux_logits=True, init_weights=False)
    elif model.startswith("vit_") and entry.meta.get("min_size"):
        kw["image_size"] = entry.meta["min_size"][0]
    elif model.startswith("maxvit") and entry.meta.get("min_size"):
        kw["input_size"] = entry.meta["min_size"]
    return kw


def _head(net: nn.Module) -> tuple[str, nn.Linear]:
    """The final classifier layer: the last-registered nn.Linear (fc, classifier[-1], heads.head, ...)."""
    found = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear) and not n.startswith(("aux", "AuxLogits"))]
    if not found:
        raise GankitError(f"{type(net).__name__} has no linear classifier layer to take the penultimate features "
                          "from; pass layer=NAME of a module (e.g. layer=features)")
    return found[-1]


def _set_module(net: nn.Module, dotted: str, module: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    setattr(parent, child, module)


def _pool_features(t: Tensor) -> Tensor:
    if t.dim() == 4:
        return t.mean(dim=(2, 3))
    return t.flatten(1)


class TorchvisionExtractor:
    """Callable extractor (see the module docstring)."""

    def __init__(self, model: str, weights: str | os.PathLike | None = None, layer: str = "penultimate",
                 batch_size: int = 32, device: str | torch.device = "cpu", size: int | None = None,
                 **model_kwargs) -> None:
        _check_model_name(model)
        self.batch_size = check_batch_size(batch_size)
        self.device = resolve_device(device)
        file, entry, official = _resolve_weights(model, weights)
        self.weights_file = file
        kwargs = {**_builder_kwargs(model, entry), **model_kwargs}
        try:
            net = torchvision.models.get_model(model, weights=None, **kwargs)
        except TypeError as e:
            raise GankitError(f"torchvision model '{model}': bad model option ({e})") from None
        sd = load_state_dict_file(file, f"torchvision {model}")
        try:
            missing, unexpected = net.load_state_dict(sd, strict=False)
        except RuntimeError as e:
            detail = " ".join(str(e).split())[:160]
            raise GankitError(f"weights '{file}' do not fit torchvision model '{model}' ({detail})") from None
        missing = [k for k in missing if not k.startswith(_AUX_PREFIXES)]
        unexpected = [k for k in unexpected if not k.startswith(_AUX_PREFIXES)]
        if missing or unexpected:
            raise GankitError(f"weights '{file}' do not fit torchvision model '{model}' "
                              f"({len(missing)} missing keys e.g. {missing[:2]}, {len(unexpected)} unexpected e.g. "
                              f"{unexpected[:2]}); pass the state dict of this model")
        net.eval().requires_grad_(False)

        self.layer = layer
        self._hooked: list[Tensor] = []
        self.head: nn.Module | None = None
        if layer == "penultimate":
            head_name, head = _head(net)
            self.head = head.to(self.device)
            _set_module(net, head_name, nn.Identity())
        else:
            modules = dict(net.named_modules())
            if layer not in modules or layer == "":
                some = [n for n, _ in net.named_children()]
                raise GankitError(f"torchvision model '{model}' has no module '{layer}'; use 'penultimate' "
                                  f"or a module name such as {', '.join(some[:6])}")
            modules[layer].register_forward_hook(lambda _m, _i, out: self._hooked.append(out))
        self.net = net.to(self.device)

        # preprocessing from the weights' transforms
        kw = dict(getattr(getattr(entry, "transforms", None), "keywords", {}) or {})
        self.size = int(size or kw.get("crop_size", 224))
        interp = kw.get("interpolation")
        self.mode = "bicubic" if interp is not None and getattr(interp, "value", "") == "bicubic" else "bilinear"
        self.mean = torch.tensor(kw.get("mean", IMAGENET_MEAN), device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(kw.get("std", IMAGENET_STD), device=self.device).view(1, 3, 1, 1)

        self.name = f"torchvision-{model}" + ("" if layer == "penultimate" else f"-{layer}") \
            + ("" if official else f"@{file.stem}")
        mean, std = (tuple(round(float(v), 4) for v in t.flatten()) for t in (self.mean, self.std))
        norm = "imagenet-mean-std" if (mean, std) == (IMAGENET_MEAN, IMAGENET_STD) else f"mean{mean}-std{std}"
        self.preprocessing = f"[0,1]-{self.mode}-aa-{self.size},{norm},gray->rgb"
        if self.head is not None:
            self.dim, n_out = self.head.in_features, self.head.out_features
        else:  # one dry run tells the sizes
            out = self(torch.zeros(1, 3, self.size, self.size))
            self.dim, n_out = out["features"].shape[1], out["logits"].shape[1]
        cats = entry.meta.get("categories", []) if entry is not None else []
        self.classes = list(cats) if len(cats) == n_out else [str(i) for i in range(n_out)]

    def preprocess(self, images: Tensor) -> Tensor:
        x = images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x + 1) / 2
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode=self.mode, align_corners=False, antialias=True)
        return (x - self.mean) / self.std

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> dict[str, np.ndarray]:
        images = check_images(images, f"{self.name} features")

        def batch(part: Tensor) -> dict[str, Tensor]:
            x = self.preprocess(part.to(self.device))
            self._hooked.clear()
            out = self.net(x)
            if self.head is not None:
                return {"features": out, "logits": self.head(out)}
            return {"features": _pool_features(self._hooked[-1]), "logits": out.flatten(1)}

        return extract(batch, images, self.batch_size,
                       lambda: {"features": (0, self.dim), "logits": (0, len(self.classes))}, desc=self.name)


@FEATURES.register("torchvision")
def torchvision_features(model: str, weights: str | None = None, layer: str = "penultimate", batch_size: int = 32,
                         device: str = "cpu", size: int | None = None, **model_kwargs) -> TorchvisionExtractor:
    """A torchvision classification model: ``features`` (N, D) input of its classifier (or output of
    module ``layer``), ``logits`` (N, classes). ``weights``: state dict path, weights name, or None for the
    DEFAULT weights; both read from the torch hub cache, never downloaded. ``size`` overrides the input size."""
    return TorchvisionExtractor(model, weights=weights, layer=layer, batch_size=batch_size, device=device,
                                size=size, **model_kwargs)
