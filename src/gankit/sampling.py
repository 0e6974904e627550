"""`gankit sample` and `gankit interpolate`: write a run's samples as a grid, PNG files or an array."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import GankitError
from .images import default_scale, save_each, save_grid, save_points_plot, to_uint8
from .data.text import decode_all
from .run import LoadedRun, check_truncation, class_index, draw

GRID_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def output_kind(out: str) -> str:
    """'grid' (an image file), 'array' (.npy) or 'folder' (a directory: trailing '/', existing, or no suffix)."""
    p = Path(out)
    if out.endswith("/") or p.is_dir():
        return "folder"
    if p.suffix.lower() in GRID_SUFFIXES:
        return "grid"
    if p.suffix.lower() == ".npy":
        return "array"
    if p.suffix.lower() == ".txt":
        return "text"
    if p.suffix == "":
        return "folder"
    raise GankitError(f"--out {out}: unknown output type '{p.suffix}'; valid: a .png/.jpg grid, a .npy array, a .txt "
                      f"file (token runs) or a folder/")


def write_text(loaded: LoadedRun, n: int, out: str, seed: int = 0, ema: bool = True,
               temperature: float | None = None) -> str:
    """n sequences of a token run written to ``out``: a .txt file (one a line: words joined by spaces,
    characters joined) or a .npy array of ids."""
    kind, path = output_kind(out), Path(out)
    if kind not in ("text", "array"):
        raise GankitError(f"--out {out}: this run makes token sequences; valid: a .txt file or a .npy array of ids")
    if path.parent != Path("") and not path.parent.exists():
        raise GankitError(f"--out {out}: folder '{path.parent}' does not exist")
    if temperature is not None:
        if temperature <= 0:
            raise GankitError(f"--temperature must be positive, got {temperature}")
        loaded.recipe.temperature = temperature
    x = draw(loaded, n, seed=seed, ema=ema)
    if kind == "array":
        np.save(path, x.numpy())
        return f"wrote {path} int64 {tuple(x.shape)} (token ids)"
    path.write_text("".join(line + "\n" for line in decode_all(x, loaded.info)), encoding="utf-8")
    return f"wrote {n} sequences to {path}"


def write_samples(loaded: LoadedRun, n: int | None, out: str, seed: int = 0, ema: bool = True,
                  label: str | None = None, condition: str | None = None, temperature: float | None = None,
                  truncation: float | None = None) -> str:
    """Draw n samples and write them to ``out``; return a one-line description of what was written.

    Class-conditional runs: all of class ``label`` (a name or index), or else a class x sample grid
    (one class per row; n defaults to 10 per class); a .npy output gets its labels in <name>.labels.npy.
    """
    kind = loaded.recipe.conditioning
    if kind in ("image", "domains"):
        raise GankitError("this run translates images: use gankit translate RUN INPUT --out DIR")
    if kind == "sentences":
        raise GankitError("this run translates sentences: use gankit translate RUN INPUT.txt --out OUT.txt "
                          "--direction AtoB|BtoA")
    check_truncation(loaded, truncation)
    conditional = kind == "class"
    if label is not None:
        k = class_index(loaded, label)
    vectors = condition_vectors(loaded, condition)
    if vectors is not None and n is None:
        n = len(vectors)
    if n is None:
        n = 10 * len(loaded.info.classes) if conditional and label is None else 64
    if n <= 0:
        raise GankitError(f"--n must be positive, got {n}")
    if loaded.info.kind == "tokens":
        return write_text(loaded, n, out, seed, ema, temperature)
    if temperature is not None:
        raise GankitError("--temperature: only for runs of token sequences (train.recipe mle, seqgan or gumbel)")
    kind = output_kind(out)
    if kind == "text":
        raise GankitError(f"--out {out}: a .txt file needs a run of token sequences; this run makes {loaded.info.kind}")
    points = loaded.info.kind == "points"
    if kind == "folder" and points:
        raise GankitError(f"--out {out}: a folder of PNGs needs an image run; this run makes "
                          f"{loaded.info.shape[0]}-D points: use samples.npy or plot.png")
    path = Path(out)
    if path.parent != Path("") and not path.parent.exists() and kind != "folder":
        raise GankitError(f"--out {out}: folder '{path.parent}' does not exist")
    labels, nrow = None, None
    if vectors is not None:
        labels = vectors[torch.arange(n) % len(vectors)]
    elif conditional:   # one class, or the recipe's own class x sample grid (as in training)
        labels = torch.full((n,), k) if label is not None else loaded.recipe.fixed_conditions(None, n, seed)
    x = draw(loaded, n, seed=seed, ema=ema, labels=labels, truncation=truncation)
    if conditional and label is None:
        x, nrow = loaded.recipe.grid_images(x, labels)
    if kind == "array":
        arr = x.numpy().astype(np.float32) if points else to_uint8(x)
        np.save(path, arr)
        if labels is not None:
            np.save(path.with_suffix(".labels.npy"), labels.numpy())
            return f"wrote {path} {arr.dtype} {arr.shape} and its labels {path.with_suffix('.labels.npy')}"
        return f"wrote {path} {arr.dtype} {arr.shape}"
    if kind == "grid":
        if points:
            save_points_plot(x, path, title=f"{n} samples")
        else:
            save_grid(x, path, nrow=nrow, scale=default_scale(loaded.info.shape[-1]))
        return f"wrote {path} ({n} samples)"
    save_each(x, path)
    return f"wrote {n} PNGs to {path}/"


def condition_vectors(loaded: LoadedRun, path: str | None) -> Tensor | None:
    """The rows (M, C) of ``--condition FILE.npy`` for a run conditioned on vectors (None for other runs)."""
    cond_dim = loaded.info.cond_dim if loaded.recipe.conditioning == "vector" else 0
    if path is None:
        if cond_dim:
            raise GankitError(f"this run is conditioned on {loaded.info.cond_kind} vectors of {cond_dim} values: "
                              f"give them with --condition FILE.npy (one row per sample)")
        return None
    if not cond_dim:
        raise GankitError("--condition: this run does not take condition vectors (class runs take --class)")
    try:
        v = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise GankitError(f"--condition {path}: cannot read a .npy array ({e})") from None
    if v.ndim == 1:
        v = v[None]
    if v.ndim != 2 or v.shape[1] != cond_dim or not np.issubdtype(v.dtype, np.number) or len(v) == 0:
        raise GankitError(f"--condition {path}: expected rows of {cond_dim} numbers, got {v.dtype} {v.shape}")
    return torch.from_numpy(v.astype(np.float32))


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of a and b (N, d) at fractions t (S,) -> (N, S, d)."""
    a_n, b_n = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None, None]
    t = t[None, :, None]
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a[:, None] + (torch.sin(t * omega) / so) * b[:, None]


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Linear interpolation between rows of a and b (N, d) at fractions t (S,) -> (N, S, d)."""
    t = t[None, :, None]
    return (1 - t) * a[:, None] + t * b[:, None]


def interpolation(loaded: LoadedRun, rows: int = 8, steps: int = 10, seed: int = 0, mode: str = "slerp",
                  ema: bool = True) -> Tensor:
    """Samples along latent paths between random endpoints (DCGAN, Radford et al. 2016): (rows · steps,
    *shape), row r the path between the r-th pair of z (class-conditional runs: of class r mod C)."""
    if mode not in ("slerp", "lerp"):
        raise GankitError(f"--mode {mode}: unknown interpolation; valid: slerp, lerp")
    if rows <= 0 or steps < 2:
        raise GankitError(f"--rows must be ≥ 1 and --steps ≥ 2, got {rows} and {steps}")
    kind = loaded.recipe.conditioning
    if loaded.info.kind == "tokens":
        raise GankitError("interpolate: a run of token sequences has no continuous latent space to walk; use gankit sample")
    if kind in ("image", "domains"):
        raise GankitError("interpolate: this run translates images; its outputs are chosen by their inputs, not by z")
    if kind == "vector":
        raise GankitError("interpolate: this run is conditioned on vectors; use gankit sample RUN --condition FILE.npy")
    gen = torch.Generator().manual_seed(seed)
    a = loaded.recipe.latents(rows, generator=gen).cpu()
    b = loaded.recipe.latents(rows, generator=gen).cpu()
    t = torch.linspace(0, 1, steps)
    z = (slerp if mode == "slerp" else lerp)(a, b, t).reshape(rows * steps, -1)
    labels = (torch.arange(rows) % len(loaded.recipe.classes)).repeat_interleave(steps) if kind == "class" else None
    return loaded.recipe.sample(z, labels, ema=ema).cpu()


def write_interpolation(loaded: LoadedRun, out: str, rows: int = 8, steps: int = 10, seed: int = 0,
                        mode: str = "slerp", ema: bool = True) -> str:
    """``interpolation`` written as an image: one row a pair of z."""
    path = Path(out)
    if path.suffix.lower() not in GRID_SUFFIXES:
        raise GankitError(f"--out {out}: interpolation writes an image; valid suffixes: {', '.join(GRID_SUFFIXES)}")
    x = interpolation(loaded, rows, steps, seed, mode, ema)
    if loaded.info.kind == "points":
        save_points_plot(x, path, title=f"{rows} latent paths, {steps} steps each")
    else:
        save_grid(x, path, nrow=steps, scale=default_scale(loaded.info.shape[-1]))
    return f"wrote {path} ({rows} rows × {steps} steps, {mode})"


def write_data_images(preset: str, out: str, n: int = 16, label: str | None = None, sets: list[str] = (),
                      seed: int = 0) -> str:
    """n images of a preset's data set (``sets``: its ``--set`` items, e.g. data.split=test) written to ``out``
    (a folder of PNGs, a grid image or a .npy array): inputs for ``gankit translate``, or a look at the data.
    ``label``: only the images of that class (or domain)."""
    from .assemble import resolve
    from .data import load
    from .metrics.evaluate import reference_from_source, reference_ident

    if n <= 0:
        raise GankitError(f"--n must be positive, got {n}")
    cfg = resolve(preset, None, list(sets))
    source = load(cfg.data, cfg.owned.get(cfg.data.name))
    if source.info.kind != "images":
        raise GankitError(f"data: preset '{preset}' holds {source.info.kind}, not images")
    ref = reference_from_source(source, cfg.data.name, reference_ident(cfg.data), 1_000_000, cfg.data)
    x, y, classes = ref.x, ref.labels, list(ref.classes)
    if label is not None:
        if y is None or label not in classes:
            valid = ", ".join(classes) if classes else "none: the data set is unlabelled"
            raise GankitError(f"--class {label}: not a class of data set '{cfg.data.name}'; valid: {valid}")
        x = x[y == classes.index(label)]
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    x = x[idx]
    kind, path = output_kind(out), Path(out)
    if kind == "text":
        raise GankitError(f"--out {out}: images go to a folder/, a .png grid or a .npy array")
    if kind != "folder" and path.parent != Path("") and not path.parent.exists():
        raise GankitError(f"--out {out}: folder '{path.parent}' does not exist")
    if kind == "array":
        np.save(path, to_uint8(x))
    elif kind == "grid":
        save_grid(x, path, scale=default_scale(x.shape[-1]))
    else:
        save_each(x, path)
    what = f" of class '{label}'" if label is not None else ""
    return f"wrote {len(x)} images{what} of {cfg.data.name} ({cfg.data.split} split) to {path}"
