"""`gankit translate RUN INPUT --out DIR`: run an image-conditioned generator on image files.

INPUT is an image or a folder of images (searched recursively). Each is read as the run's condition:
for super-resolution the low-resolution image, for colourisation a grey image, for denoising the noisy
image, for inpainting the image plus ``--mask`` (white = the hole to fill). With ``--degrade``, INPUT
holds clean images instead: gankit degrades them as in training (seeded), translates them, and the
grid shows input | output | original — the way to look at a run on held-out images.

Unpaired runs (CycleGAN, StarGAN) take INPUT as images of a source domain: ``--to DOMAIN`` names the
target domain (a domain name or index; CycleGAN also takes ``--direction AtoB|BtoA``, default AtoB), and
``--from DOMAIN`` the source (default: the other domain for CycleGAN, D's own guess for StarGAN); the
grid shows input | output | reconstruction (the output translated back).

Writes DIR/<name>.png for each input (same relative names) and DIR/grid.png.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .data.folder import list_images
from .data.images import read_image
from .data.paired import degrade
from .errors import GankitError
from .images import _pil, save_grid, to_uint8, default_scale
from .recipes import draw_samples
from .recipes.translation import Translation, translation_grid
from .run import LoadedRun


def _inputs(path: str) -> list[tuple[str, str]]:
    """(file, relative name) of each image of INPUT (a file or a folder)."""
    p = Path(path)
    if p.is_file():
        return [(str(p), p.name)]
    if p.is_dir():
        files = [(os.path.join(path, *parts), "/".join(parts)) for parts in list_images(path)]
        if files:
            return files
        raise GankitError(f"INPUT {path}: no images in this folder")
    raise GankitError(f"INPUT {path}: no such file or folder")


def _read(files: list[str], size: int, channels: int) -> Tensor:
    """Images as float (N, channels, size, size) in [-1, 1]."""
    x = np.stack([read_image(f, size, channels) for f in files])
    return torch.from_numpy(x).float() / 127.5 - 1


def _write(y: Tensor, found: list[tuple[str, str]], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for img, (_, name) in zip(to_uint8(y), found):
        dest = root / Path(name).with_suffix(".png")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _pil(img).save(dest)


def domain_index(domains: list[str], name: str, option: str) -> int:
    """The index of a domain given by name or index; GankitError listing the valid ones."""
    if name in domains:
        return domains.index(name)
    if name.isdigit() and int(name) < len(domains):
        return int(name)
    raise GankitError(f"{option} {name}: not a domain of this run; valid: {', '.join(domains)} (or 0..{len(domains) - 1})")


def target_domain(domains: list[str], to: str | None, direction: str | None) -> int:
    """The target domain of ``--to`` / ``--direction`` (two domains: AtoB by default)."""
    if direction is not None:
        if len(domains) != 2:
            raise GankitError(f"--direction: only for two-domain (CycleGAN) runs; this run has domains "
                              f"{', '.join(domains)}: use --to DOMAIN")
        if direction not in ("AtoB", "BtoA"):
            raise GankitError(f"--direction {direction}: valid: AtoB, BtoA")
        if to is not None and domain_index(domains, to, "--to") != (direction == "AtoB"):
            raise GankitError(f"--to {to} contradicts --direction {direction}; give one of them")
        return 1 if direction == "AtoB" else 0
    if to is not None:
        return domain_index(domains, to, "--to")
    if len(domains) == 2:
        return 1   # AtoB
    raise GankitError(f"translate: this run translates among {len(domains)} domains; say which with --to "
                      f"({', '.join(domains)})")


def domain_translation(recipe, x: Tensor, target: int, source: str | None = None) -> Translation:
    """The conditions that translate images x of a source domain (``source``; default: the other of two
    domains, D's guess for StarGAN) into domain ``target``."""
    domains = list(recipe.domains)
    if source is not None:
        src = torch.full((len(x),), domain_index(domains, source, "--from"), dtype=torch.int64)
    else:
        src = torch.cat([recipe.source_domains(part, target).cpu() for part in x.split(256)])
    return Translation(x, src, torch.full_like(src, target))


def check_image_run(recipe, to, direction, source) -> None:
    """GankitError unless ``recipe`` is image-conditioned and no domain option is given."""
    if recipe.conditioning != "image":
        raise GankitError("translate: this run is not image-conditioned (train one with train.recipe=paired, "
                          "cyclegan or stargan, e.g. --preset digits-inpaint); for other runs use gankit sample")
    if to is not None or direction is not None or source is not None:
        raise GankitError("translate: --to, --direction and --from are for CycleGAN / StarGAN runs; this run is paired")


def translate_tensor(loaded: LoadedRun, x: Tensor, to: str | int | None = None, source: str | int | None = None,
                     direction: str | None = None, seed: int = 0, ema: bool = True) -> Tensor:
    """The translations (N, C, H, W) of images x: conditions of a paired run, or images of a source domain of
    a CycleGAN / StarGAN run (into ``to`` / by ``direction``)."""
    recipe = loaded.recipe
    to, source = (None if v is None else str(v) for v in (to, source))
    if recipe.conditioning == "domains":
        cond = domain_translation(recipe, x, target_domain(list(recipe.domains), to, direction), source)
        return torch.cat(draw_samples(recipe, len(x), seed, ema=ema, labels=cond))
    check_image_run(recipe, to, direction, source)
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([recipe.sample(recipe.latents(len(part), generator=gen), part, ema=ema).cpu()
                      for part in x.split(256)])


def translate_domains(loaded: LoadedRun, inputs: str, out: str, to: str | None = None, direction: str | None = None,
                      source: str | None = None, seed: int = 0, ema: bool = True) -> str:
    """CycleGAN / StarGAN: translate the images of ``inputs`` into domain ``to`` (or by ``direction``)."""
    recipe = loaded.recipe
    target = target_domain(list(recipe.domains), to, direction)
    found = _inputs(inputs)
    c, h, _ = recipe.shape
    x = _read([f for f, _ in found], h, c)
    cond = domain_translation(recipe, x, target, source)
    y = torch.cat(draw_samples(recipe, len(x), seed, ema=ema, labels=cond))
    root = Path(out)
    _write(y, found, root)
    grid, nrow = translation_grid(recipe, y[:64], cond[:64], ema=ema)
    save_grid(grid, root / "grid.png", nrow=nrow, scale=default_scale(h))
    return (f"wrote {len(found)} images translated to domain '{recipe.domains[target]}' to {root}/ and "
            f"{root / 'grid.png'} (input | output | reconstruction)")


def translate(loaded: LoadedRun, inputs: str, out: str, degrade_first: bool = False, mask: str | None = None,
              seed: int = 0, ema: bool = True, to: str | None = None, direction: str | None = None,
              source: str | None = None) -> str:
    """Translate the images of ``inputs`` into folder ``out``; returns a one-line description."""
    recipe = loaded.recipe
    if recipe.conditioning == "domains":
        if degrade_first or mask:
            raise GankitError("translate: --degrade and --mask are for image-conditioned (paired) runs; this run "
                              "translates between domains (use --to / --direction)")
        return translate_domains(loaded, inputs, out, to, direction, source, seed, ema)
    check_image_run(recipe, to, direction, source)
    task, (c, h, _) = recipe.degradation, recipe.shape
    cin, hc, _ = recipe.condition_shape
    found = _inputs(inputs)
    files = [f for f, _ in found]
    originals = None
    if degrade_first:
        if not task:
            raise GankitError("translate: --degrade needs a run trained on a degradation (data.pair); this run "
                              "learnt from pairs on disk: give condition images")
        originals = _read(files, h, c)
        a = degrade(originals, task, torch.Generator().manual_seed(seed))
    elif task == "inpaint":
        if mask is None:
            raise GankitError("translate: an inpainting run needs --mask MASK.png (white = the hole) or --degrade")
        x = _read(files, h, c)
        m = (_read([mask], h, 1) > 0).float().expand(len(files), 1, h, h)
        a = torch.cat([x * (1 - m), m], dim=1)
    else:
        a = _read(files, hc, cin)   # the condition as it is: low resolution, grey or noisy
    y = translate_tensor(loaded, a, seed=seed, ema=ema)
    root = Path(out)
    _write(y, found, root)
    shown = [recipe.show_condition(a), y] + ([originals] if originals is not None else [])
    save_grid(torch.stack(shown, dim=1).flatten(0, 1)[:3 * 64], root / "grid.png", nrow=len(shown) * 4,
              scale=default_scale(h))
    cols = "input | output | original" if originals is not None else "input | output"
    return f"wrote {len(found)} images to {root}/ and {root / 'grid.png'} ({cols})"
