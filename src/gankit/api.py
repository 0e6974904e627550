"""gankit's Python API, for notebooks and scripts: what the CLI does, as functions on tensors.

    import gankit

    cfg = gankit.load_config("ring8", set=["train.steps=300"])     # a preset, a file, overrides: checked
    run = gankit.train(cfg, "runs/ring")                            # the CLI's loop; returns the reopened run
    x = gankit.sample(run, 1000, seed=0)                            # (1000, 2) tensor on the CPU
    path = gankit.interpolate(gankit.open_run("runs/demo"), rows=4, steps=8)
    x_hat = gankit.reconstruct("runs/glo", images)                  # glo, gon, vae: images from their codes
    scores = gankit.evaluate(x, ref="ring8")                        # every registered metric that applies

Everything else in the package is internal. Errors a user can cause raise ``gankit.GankitError`` with
one line naming the culprit.
"""
from __future__ import annotations

from pathlib import Path

from torch import Tensor

from .assemble import describe, resolve
from .config import Config
from .errors import GankitError
from .metrics.evaluate import Reference, evaluate as _evaluate, load_reference
from .metrics.registry import METRICS
from .run import LoadedRun as Run
from .run import draw, open_run as _open_run
from .sampling import interpolation
from .translation import translate_tensor


def load_config(preset: str | None = None, file: str | Path | None = None, set: list[str] = (),
                seed: int | None = None) -> Config:
    """A checked run configuration: ``preset`` (default: digits), then the TOML ``file``, then the
    ``table.key=value`` strings of ``set`` — as ``gankit train --preset --config --set``."""
    return resolve(preset, None if file is None else str(file), list(set), seed)


def describe_config(cfg: Config) -> str:
    """The TOML ``gankit train --dry-run`` prints: the run's tables, then every other table's defaults."""
    return describe(cfg)


def train(cfg: Config, out: str | Path, resume: bool = False) -> Run:
    """Train ``cfg`` into run directory ``out`` with the loop the CLI uses (``resume``: continue it from its
    last checkpoint, exactly); returns the run reopened from its newest checkpoint."""
    from .training import checkpoint, distributed
    from .training.loop import Trainer

    out = Path(out)
    if not resume and checkpoint.has_any(out / "checkpoints"):
        raise GankitError(f"{out}: already holds a run; pass resume=True to continue it or choose another directory")
    try:
        Trainer(cfg).run(out, resume=resume)
    finally:
        distributed.shutdown()
    return open_run(out)


def open_run(path: str | Path, device: str = "cpu", sampler: str | None = None) -> Run:
    """A run directory reopened from its newest checkpoint (``sampler``: direct | drs for gan runs)."""
    return _open_run(path, device=device, sampler=sampler)


def load(spec: str | Path, device: str = "cpu") -> Run:
    """A trained generator to sample or translate with: a run directory, a checkpoint directory, a model
    folder written by ``gankit export``, or the id ``OWNER/NAME`` of such a folder on the Hugging Face Hub
    (fetched through huggingface_hub and cached; offline, a GankitError saying so)."""
    return _open_run(spec, device=device)


def _run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else open_run(run)


def sample(run: Run | str | Path, n: int, seed: int = 0, labels: Tensor | None = None, ema: bool = True,
           truncation: float | None = None) -> Tensor:
    """n samples (n, *shape) on the CPU, images in [-1, 1] or points; ``labels``: class indices (n,) or
    condition vectors (n, C) of a conditional run (default: its classes in turn); ``truncation`` psi: the
    truncation trick, latents from N(0, I) truncated to [-psi, psi]."""
    run = _run(run)
    if run.recipe.conditioning in ("image", "domains"):
        raise GankitError("sample: this run translates images; use gankit.translate(run, images)")
    if run.recipe.conditioning == "sentences":
        raise GankitError("sample: this run translates sentences; use gankit.translate(run, sentences)")
    if n <= 0:
        raise GankitError(f"sample: n must be positive, got {n}")
    return draw(run, n, seed=seed, ema=ema, labels=labels, truncation=truncation)


def interpolate(run: Run | str | Path, rows: int = 8, steps: int = 10, seed: int = 0, mode: str = "slerp",
                ema: bool = True) -> Tensor:
    """Samples along ``rows`` latent paths of ``steps`` each (slerp or lerp): (rows · steps, *shape)."""
    return interpolation(_run(run), rows, steps, seed, mode, ema)


def reconstruct(run: Run | str | Path, images: Tensor, ema: bool = True) -> Tensor:
    """``images`` (N, *shape) in [-1, 1] decoded from their own latent codes, on the CPU: GLO fits them
    with G fixed, GON takes the gradient at the origin, the VAE the mean of q(z | x)."""
    from .recipes.latent import LatentRecipe

    run = _run(run)
    if not isinstance(run.recipe, LatentRecipe):
        raise GankitError(f"reconstruct: a {run.cfg.train.recipe} run has no latent code of an image; "
                          f"the glo, gon and vae recipes have")
    if tuple(images.shape[1:]) != tuple(run.info.shape):
        raise GankitError(f"reconstruct: images of shape {tuple(images.shape[1:])} given, the run makes "
                          f"{tuple(run.info.shape)}")
    return run.recipe.reconstruct(images.float(), ema=ema).cpu()


def translate(run: Run | str | Path, images: Tensor | list[str], to: str | int | None = None,
              source: str | int | None = None, seed: int = 0, ema: bool = True,
              direction: str | None = None) -> Tensor | list[str]:
    """Translations of ``images`` (N, C, H, W) in [-1, 1]: for a paired run, the images are its conditions
    (low resolution, grey, masked, noisy); for a CycleGAN / StarGAN run, images of a source domain,
    translated into domain ``to`` (a name or an index; CycleGAN: the other domain by default, or
    ``direction`` AtoB | BtoA). For a text style transfer run, sentences (a list of str) into the style ``to``
    or by ``direction`` (default AtoB), one str each."""
    run = _run(run)
    if run.recipe.conditioning == "sentences":
        from .text_transfer import translate_lines
        from .translation import target_domain

        target = target_domain(list(run.recipe.domains), None if to is None else str(to), direction)
        return translate_lines(run, list(images), target, ema)
    return translate_tensor(run, images, to=to, source=source, seed=seed, ema=ema, direction=direction)


def evaluate(samples: Tensor | str | Path, ref: str | Path, metrics: list[str] | None = None,
             features: str | None = None, n: int = 10_000, seed: int = 0,
             trust_features: bool = False) -> dict[str, float]:
    """The registered metrics (``metric_names()``; all that apply when ``metrics`` is None) of ``samples``
    — a tensor of images (N, C, H, W) in [-1, 1] or points (N, d), or a run directory, an image folder or a
    ``.npy`` — against ``ref``, a preset name (its data set) or an image folder. Metrics computed in a
    feature space that cannot judge the images (``judge_*`` values) are left out unless ``trust_features``."""
    if isinstance(samples, Tensor):
        x, kind = samples.detach().float().cpu(), ("images" if samples.dim() == 4 else "points")
    else:
        from .evaluation import samples_of

        x, kind = samples_of(str(samples), n=n, seed=seed)
    reference: Reference = load_reference(str(ref), n=n)
    values, _ = _evaluate(x, kind, reference, metrics, features=features, trust_features=trust_features)
    return values


def metric_names(kind: str | None = None) -> list[str]:
    """The registered metrics (of samples of ``kind``: images, points, translations)."""
    return [m for m in METRICS.names() if kind is None or kind in METRICS.get(m).kinds]


__all__ = ["Config", "GankitError", "Run", "load_config", "describe_config", "train", "open_run", "sample",
           "interpolate", "translate", "evaluate", "metric_names"]
