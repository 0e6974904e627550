"""A small convolutional classifier of images: the network of gankit's own feature space
(``metrics/features/classifier.py``) and of CycleGAN's semantic-consistency term (``loss.semantic``).

Three 3×3 convolutions (32, 64, 128 channels; the last two stride 2), ReLU, global average pooling
-> 128-d features -> linear -> class logits. Any image size, any number of channels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(),
        )
        self.head = nn.Linear(128, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, 128)."""
        return self.body(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def shift_images(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image (N, C, H, W) moved by -1, 0 or +1 pixels in x and in y (the border filled with the
    background, -1): the augmentation these classifiers learn with. ``generator`` None: the global RNG."""
    n = len(x)
    dx, dy = (torch.randint(-1, 2, (n,), generator=generator).tolist() for _ in range(2))
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    h, w = x.shape[-2:]
    return torch.stack([padded[i, :, 1 + dy[i]: 1 + dy[i] + h, 1 + dx[i]: 1 + dx[i] + w] for i in range(n)])
