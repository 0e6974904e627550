"""The FID Inception-v3: the network behind FID / KID / IS numbers in papers.

This is the Inception-v3 variant of TensorFlow's 2015-12-05 graph that the original FID code (TTUR)
used, with the state dict released with mseitzer/pytorch-fid (``pt_inception-2015-12-05-6726825d.pth``;
torch-fidelity ships the same tensors as ``weights-inception-2015-12-05-6726825d.pth``). It differs from
torchvision's Inception-v3 in four places, all needed to reproduce the published features:

* the average-pool branch of the A, C and first E blocks (Mixed_5b-d, Mixed_6b-e, Mixed_7b) ignores
  the zero padding (TensorFlow's ``count_include_pad=False``);
* the pool branch of the last E block (Mixed_7c) is a 3x3 *max* pool;
* the classifier has 1008 outputs (index 0 is "background", 1001-1007 are unused);
* the weights expect inputs in [-1, 1] (no ImageNet mean/std).

Preprocessing is pytorch-fid's ``InceptionV3(resize_input=True, normalize_input=True)`` path step by
step: our [-1, 1] images are mapped to [0, 1], resized to 299x299 with ``F.interpolate(mode="bilinear",
align_corners=False)`` (no antialiasing), mapped back with ``2x - 1``; one-channel images are repeated to
three channels. (This is *not* the TF1 resize that torch-fidelity emulates; the two differ slightly.)

Outputs, float64 on the CPU:

* ``features``: (N, 2048) pool3 activations (the global average pool before the classifier), what FID
  and KID compare;
* ``logits``: (N, 1008) ``pool3 @ fc.weight.T`` *without* the fc bias. This is what the original
  Inception Score code (improved-gan: ``matmul(pool3, w)`` with the softmax weights only) and
  torch-fidelity (``logits_unbiased``, its IS default) feed into the softmax, so an IS computed from
  these logits is comparable with published numbers. All 1008 columns are kept, as they do.

Nothing is ever downloaded: see :func:`weights_path` for where the weight file is looked for.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import inception as tv_inception

from ...errors import GankitError
from .base import FEATURES, extract

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
#: torch-fidelity's name for the same tensors, also accepted in the hub cache.
WEIGHTS_FILE_FIDELITY = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}"
WEIGHTS_ENV = "GANKIT_INCEPTION_WEIGHTS"
SIZE = 299
DIM = 2048
NUM_LOGITS = 1008
PREPROCESSING = "pytorch-fid:[0,1]-bilinear-299-align_corners=False,[-1,1],gray->rgb"


# --------------------------------------------------------------------------------------- network
def _tf_avg_pool(x: Tensor) -> Tensor:
    """3x3 stride-1 average pool that, like TensorFlow's, averages over the in-image pixels only."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: Tensor) -> Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class _BlockA(tv_inception.InceptionA):
    """torchvision's InceptionA (same parameters and names) with the TF average pool."""

    def _forward(self, x: Tensor) -> list[Tensor]:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))]


class _BlockC(tv_inception.InceptionC):
    """torchvision's InceptionC (same parameters and names) with the TF average pool."""

    def _forward(self, x: Tensor) -> list[Tensor]:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                     self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7d = conv(b7d)
        return [self.branch1x1(x), b7, b7d, self.branch_pool(_tf_avg_pool(x))]


class _BlockE(tv_inception.InceptionE):
    """torchvision's InceptionE (same parameters and names) with a chosen pool for the pool branch:
    the TF average pool in Mixed_7b, a max pool in Mixed_7c (as in the 2015-12-05 graph)."""

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__(in_channels)
        self._pool = _max_pool if pool == "max" else _tf_avg_pool

    def _forward(self, x: Tensor) -> list[Tensor]:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], 1)
        return [self.branch1x1(x), b3, b3d, self.branch_pool(self._pool(x))]


def build_fid_inception() -> tv_inception.Inception3:
    """The FID Inception-v3 with untrained weights; its ``state_dict()`` keys are those of the
    released weight file (``Conv2d_1a_3x3.conv.weight`` ... ``fc.bias``, no auxiliary head)."""
    net = tv_inception.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=NUM_LOGITS)
    for name, cin, pool_features in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        setattr(net, name, _BlockA(cin, pool_features=pool_features))
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        setattr(net, name, _BlockC(768, channels_7x7=c7))
    net.Mixed_7b = _BlockE(1280, pool="avg")
    net.Mixed_7c = _BlockE(2048, pool="max")
    return net.eval().requires_grad_(False)


_TRUNK = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
          "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
          "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")


def pool3(net: nn.Module, x: Tensor) -> Tensor:
    """(N, 3, 299, 299) in [-1, 1] -> (N, 2048) pool3 features."""
    for name in _TRUNK:
        x = getattr(net, name)(x)
    return net.avgpool(x).flatten(1)  # AdaptiveAvgPool2d(1), as pytorch-fid (same summation order)


def preprocess(images: Tensor) -> Tensor:
    """(N, 1|3, H, W) float in [-1, 1] -> (N, 3, 299, 299) float32 in [-1, 1], as pytorch-fid."""
    x = images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = (x + 1) / 2  # pytorch-fid takes [0, 1], resizes, then maps 2x - 1: do the same, in that order
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


# ------------------------------------------------------------------------------------ weights
def _hub_candidates() -> list[Path]:
    ckpt = Path(torch.hub.get_dir()) / "checkpoints"
    return [ckpt / WEIGHTS_FILE, ckpt / WEIGHTS_FILE_FIDELITY]


def _locate(explicit: str | os.PathLike | None) -> tuple[Path | None, str]:
    """(path, source) of the weight file, or (None, source) when the source named a missing file,
    or (None, "") when no source has one."""
    if explicit is not None and str(explicit) != "":
        p = Path(explicit).expanduser()
        return (p if p.is_file() else None), f"weights={explicit}"
    env = os.environ.get(WEIGHTS_ENV, "")
    if env:
        p = Path(env).expanduser()
        return (p if p.is_file() else None), f"${WEIGHTS_ENV}={env}"
    for p in _hub_candidates():
        if p.is_file():
            return p, "torch hub cache"
    return None, ""


def weights_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """Where the FID Inception weights would be loaded from, or None if they are not there (never
    raises). Order: ``explicit``; ``$GANKIT_INCEPTION_WEIGHTS``; the torch hub cache
    ``torch.hub.get_dir()/checkpoints/`` under pytorch-fid's or torch-fidelity's file name. An explicit
    path or env var naming a missing file gives None (it does not fall through to the cache)."""
    return _locate(explicit)[0]


def load_state_dict_file(path: Path, what: str) -> Mapping[str, Tensor]:
    """``torch.load(weights_only=True)`` of a state dict, with a GankitError naming the file."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, pickle with code, not a torch file, unreadable ...
        msg = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise GankitError(f"{what} weights '{path}' cannot be loaded as a PyTorch state dict ({msg}); "
                          "replace it with an intact copy") from None
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise GankitError(f"{what} weights '{path}' is not a state dict (a mapping of names to tensors); "
                          "replace it with the right file")
    return sd


def _missing_weights_message(source: str) -> str:
    hub = _hub_candidates()[0]
    if source:
        where = f"{source} names a file that does not exist"
    else:
        where = "FID Inception weights not found"
    return (f"{where}: place {WEIGHTS_FILE} at {hub} or set ${WEIGHTS_ENV} to its path "
            f"(download it on a machine with network from {WEIGHTS_URL})")


def load_fid_inception(weights: str | os.PathLike | None = None) -> tuple[tv_inception.Inception3, Path]:
    """The FID Inception with the released weights, in eval mode; GankitError if they are missing."""
    path, source = _locate(weights)
    if path is None:
        raise GankitError(_missing_weights_message(source))
    sd = load_state_dict_file(path, "FID Inception")
    net = build_fid_inception()
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())[:160]
        raise GankitError(f"FID Inception weights '{path}' do not fit the FID Inception-v3 ({detail}); "
                          f"use {WEIGHTS_FILE} from {WEIGHTS_URL}") from None
    return net, path


# ----------------------------------------------------------------------------------- extractor
def resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise GankitError(f"device '{device}' is not a torch device; use e.g. cpu, cuda, cuda:1, mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"device '{device}': CUDA is not available here; use device=cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise GankitError(f"device '{device}': MPS is not available here; use device=cpu")
    return dev


def check_images(images, who: str) -> Tensor:
    """Images as a float (N, 1|3, H, W) tensor, or a GankitError saying what is wrong."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, Tensor):
        raise GankitError(f"{who}: expected an image tensor (N, C, H, W), got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise GankitError(f"{who}: expected images of shape (N, 1 or 3, H, W), got {tuple(images.shape)}; "
                          "convert them to grayscale or RGB")
    if not images.is_floating_point():
        raise GankitError(f"{who}: expected float images in [-1, 1], got {images.dtype}; scale them first")
    return images


def check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise GankitError(f"feature batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


class InceptionExtractor:
    """Callable extractor (see the module docstring for inputs and outputs)."""

    name = "inception"
    dim = DIM
    preprocessing = PREPROCESSING
    #: The classifier's 1008 output indices as strings ("0" is background; the TF graph's labels).
    classes = [str(i) for i in range(NUM_LOGITS)]

    def __init__(self, weights: str | os.PathLike | None = None, batch_size: int = 50,
                 device: str | torch.device = "cpu", channels_last: bool = False) -> None:
        self.batch_size = check_batch_size(batch_size)
        self.device = resolve_device(device)
        self.channels_last = bool(channels_last)
        net, self.weights_file = load_fid_inception(weights)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.net = net.to(self.device, memory_format=fmt)

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> dict[str, np.ndarray]:
        images = check_images(images, "inception features")
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        w = self.net.fc.weight

        def batch(part: Tensor) -> dict[str, Tensor]:
            f = pool3(self.net, preprocess(part.to(self.device)).contiguous(memory_format=fmt))
            return {"features": f, "logits": f @ w.T}   # no bias: the IS convention (module docstring)

        return extract(batch, images, self.batch_size, lambda: {"features": (0, DIM), "logits": (0, NUM_LOGITS)},
                       desc="inception")


@FEATURES.register("inception")
def inception(weights: str | None = None, batch_size: int = 50, device: str = "cpu",
              channels_last: bool = False) -> InceptionExtractor:
    """FID Inception-v3 (pytorch-fid / TF FID compatible): ``features`` (N, 2048) pool3 and ``logits``
    (N, 1008, without fc bias, for IS). ``weights``: path of ``pt_inception-2015-12-05-6726825d.pth``;
    default ``$GANKIT_INCEPTION_WEIGHTS``, then the torch hub cache."""
    return InceptionExtractor(weights=weights, batch_size=batch_size, device=device, channels_last=channels_last)
