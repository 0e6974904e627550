"""What the unpaired translation recipes (``cyclegan``, ``stargan``) share (Zhu et al. 2017; Choi et al. 2018).

* ``Translation``: the condition of a translated sample — the source image, its domain, and the domain to
  translate it to. It slices like a tensor, so ``draw_samples`` batches it as it batches class labels.
* ``ImagePool``: the history of generated images a CycleGAN discriminator is shown (Shrivastava et al.
  2017): the first ``size`` images go in; after that each new image, with probability ½, replaces a
  random stored one and the stored one is shown instead. It is an ``nn.Module`` whose buffers are saved in
  the checkpoint, and it draws from the global torch RNG (saved too), so a resumed run shows D the same
  images.
* ``domain_conditions``: n images of the data, every domain in turn, each with a target domain.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..data import Batches

TRIPLES_PER_ROW = 4   # sample grids: input | output | reconstruction triples per row


@dataclass
class Translation:
    """Conditions of translated samples: source images x (N, C, H, W), their domains (N,), target domains (N,)."""

    x: Tensor
    source: Tensor
    to: Tensor

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index) -> "Translation":
        return Translation(self.x[index], self.source[index], self.to[index])

    def cpu(self) -> "Translation":
        return Translation(self.x.cpu(), self.source.cpu(), self.to.cpu())

    def back(self, outputs: Tensor) -> "Translation":
        """The translations ``outputs`` of these conditions, to be translated back into their source domains."""
        return Translation(outputs, self.to, self.source)


def domain_conditions(source, n: int, seed: int, domains: int, target=None) -> Translation:
    """n training images, domains taking turns (class-balanced batches), each with a target domain:
    ``target(source_domains)`` -> (n,) (default: the next domain)."""
    per = -(-n // domains)
    batch = next(Batches(source, per, seed, by_class=True))
    order = torch.arange(per * domains).reshape(domains, per).t().flatten()[:n]   # A, B, A, B, ...
    x, y = batch["x"][order], batch["y"][order]
    to = (y + 1) % domains if target is None else target(y)
    return Translation(x, y, to)


def translation_grid(recipe, x: Tensor, cond: Translation, ema: bool = True) -> tuple[Tensor, int]:
    """Input | output | reconstruction triples, TRIPLES_PER_ROW per row: ``x`` are the recipe's translations
    for ``cond``; the reconstructions translate them back (z = 0: deterministic generators)."""
    back = recipe.sample(torch.zeros(len(x), recipe.z_dim), cond.back(x), ema=ema)
    return torch.stack([cond.x.cpu(), x.cpu(), back.cpu()], dim=1).flatten(0, 1), 3 * TRIPLES_PER_ROW


class ImagePool(nn.Module):
    """A history of up to ``size`` generated images (``size`` = 0: no history, the newest are shown)."""

    def __init__(self, size: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros((size, *shape)))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def query(self, fake: Tensor) -> Tensor:
        """The images to show D in place of ``fake`` (N, ...), updating the history."""
        if self.size == 0:
            return fake.detach()
        out = fake.detach().clone()
        for i in range(len(out)):
            filled = int(self.count)
            if filled < self.size:
                self.images[filled] = out[i]
                self.count += 1
            elif float(torch.rand(())) < 0.5:
                j = int(torch.randint(0, self.size, ()))
                old = self.images[j].clone()
                self.images[j] = out[i]
                out[i] = old
        return out
