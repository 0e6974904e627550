"""The recipe interface: what every recipe has, and what the loop and the commands may ask of one.

A recipe owns its networks and optimisers and lists its update phases; the one loop
(``gankit.training.loop``) does everything else. The loop and the commands (``sample``, ``interpolate``,
``translate``, ``eval``) dispatch on ``conditioning`` and on nothing else:

    conditioning   sample(z, labels) takes             commands
    "none"         nothing (labels ignored)             sample, interpolate, eval
    "class"        class indices (N,) int64             sample --class, interpolate (a class per row), eval
    "vector"       condition vectors (N, C) float       sample --condition FILE.npy, eval
    "image"        condition images (N, Cin, h, w)      translate (--degrade, --mask), eval
    "domains"      ``Translation``s (image, from, to)   translate --to / --direction, eval (held-out metrics)
    "sentences"    ``Sentences`` (ids, target style)    translate INPUT.txt --direction, eval (held-out metrics)
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Iterator

import torch
from torch import Tensor, nn

from ..augment import Augment
from ..config import SHARED, Config
from ..data import DataInfo, Source
from ..errors import ConfigError
from ..nets.base import NETS
from ..registry import Registry
from ..runtime import map_batches, rows

RECIPES: Registry = Registry("recipe")

CONDITIONINGS = ("none", "class", "vector", "image", "domains", "sentences")


@dataclass(frozen=True)
class Phase:
    """One kind of update in the schedule. At generator step s the loop runs ``fn`` ``repeat`` times if
    start <= s < stop (stop None: no end) and s % every == 0; each run gets a new batch when ``fresh_batch``,
    else the last one drawn. Stages (pre-training, then adversarial rounds) are phases with ``start`` and
    ``stop``, so a run resumes exactly across them.

    Examples: k discriminator steps per generator step is Phase("D", d_step, repeat=k); lazy R1 every
    16 steps is Phase("R1", r1_step, every=16); a term that needs a trained network first is
    Phase("F_B", f_b_step, start=500); TTUR is two optimisers, not a phase.
    """

    name: str
    fn: Callable[[dict[str, Tensor]], None]
    repeat: int = 1
    every: int = 1
    fresh_batch: bool = True
    start: int = 0
    stop: int | None = None

    def runs_at(self, step: int) -> bool:
        return self.start <= step and (self.stop is None or step < self.stop) and step % self.every == 0


def normal_latents(n: int, z_dim: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
    """z ~ N(0, I), shape (n, z_dim), on ``device``; drawn on the CPU from ``generator`` when one is given
    (so a seeded draw is the same on every device), else from the global RNG on ``device`` — with several
    training processes, this rank's rows of a draw for the global batch (``runtime.rows``)."""
    if generator is not None:
        return torch.randn(n, z_dim, generator=generator).to(device)
    return rows(lambda m: torch.randn(m, z_dim, device=device), n)


class Recipe:
    """The base of every recipe. A subclass sets, in ``__init__``:

        nets: dict[str, nn.Module]          everything saved in weights.safetensors ("G", "D", ...)
        optimizers: dict[str, Optimizer]    saved with the training state
        ema_targets: list[str]              nets whose moving average the loop keeps as f"{name}_ema"
        phases: list[Phase]                 the update schedule, as data

    and implements ``sample``; the rest has defaults here. Class attributes say what the recipe is to
    the assembler: ``tables`` (the shared tables it reads; only those are accepted and written),
    ``architectures`` (the registry ``model.arch`` is looked up in; a recipe whose ``tables`` include
    "augment" shows its D what ``shown`` makes of the images), ``defaults`` ({"table.key": value}
    for shared keys the preset, config file and --set leave unset) and ``batch_by_class`` (every batch
    holds data.batch_size samples of each class), ``relativistic_ok`` (its G step passes D's logits on real
    data to ``Objective.g_loss``, so relativistic objectives may be chosen), ``g_tricks`` (its G step adds
    feature matching and orthogonal regularisation, ``loss.feature_matching``/``loss.ortho``). Its own options are a dataclass registered with it
    (``@RECIPES.register("cyclegan", options=CycleGANOptions)``), read from the table of its name.
    """

    tables: ClassVar[tuple[str, ...]] = tuple(SHARED)
    architectures: ClassVar[Registry] = NETS
    defaults: ClassVar[dict[str, Any]] = {}
    batch_by_class: ClassVar[bool] = False
    relativistic_ok: ClassVar[bool] = False   # its G step gives the objective D's logits on real data (RSGAN)
    g_tricks: ClassVar[bool] = False   # its G step adds loss.feature_matching and loss.ortho
    training_only: ClassVar[tuple[str, ...]] = ("augment",)   # nets besides the discriminators sampling never reads

    conditioning: str = "none"          # see the table above
    classes: list[str] = []             # "class": the class names (labels index them)
    domains: list[str] = []             # "domains": the domain names
    degradation: str = ""               # "image": the data/paired.py task that makes conditions from images ("" = read)
    rejection: bool = False             # draw_samples uses discriminator rejection (recipes/drs.py)
    step: int = 0                       # the generator step being run: the loop sets it before each step

    def __init__(self, cfg: Config, info: DataInfo, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.z_dim = cfg.model.z_dim
        self.shape = tuple(info.shape)
        # what D is shown (``shown``): the [augment] table of a recipe that reads it
        self.augment = Augment(cfg.augment, cfg.train.steps) if "augment" in self.tables else None
        if self.augment is not None and cfg.augment.method != "none" and len(self.shape) != 3:
            raise ConfigError(f"augment.method={cfg.augment.method}: needs images, and data set '{info.name}' gives "
                              f"points {self.shape}; augment.noise (instance noise) works on any data")

    def begin(self, source: Source) -> None:
        """Called once by the loop before the first step of a fresh run (never on resume: the checkpoint
        holds what it made): what a recipe computes from its whole training set (GLO's latents
        initialised by PCA). Nothing by default."""

    def sampling_nets(self) -> list[str]:
        """The names in ``nets`` that sampling, translation and reconstruction read (what ``gankit export``
        keeps): all but the discriminators (``D``, ``D_*``; D stays when samples are drawn by rejection), the
        EMA copies (the loop's, added later) and ``training_only``."""
        return [n for n in self.nets if n not in self.training_only and not n.endswith("_ema")
                and (self.rejection or not (n == "D" or n.startswith("D_")))]

    @classmethod
    def check(cls, cfg: Config) -> None:
        """Rules between the recipe's options and the shared tables, at assembly (before any data is
        loaded); a ConfigError naming the keys. Nothing by default."""

    # ------------------------------------------------------------------------------ for the steps

    def adam(self, params: Iterable[nn.Parameter], net: str) -> torch.optim.Adam:
        """Adam over ``params`` with optim's rate and betas for the generator (``net`` "G") or the
        discriminator ("D")."""
        o = self.cfg.optim
        lr, betas = (o.lr_g, o.betas_g) if net == "G" else (o.lr_d, o.betas_d)
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas))

    def update(self, name: str | tuple[str, ...], loss: Tensor, max_norm: float = 0.0) -> None:
        """One step of optimiser ``name`` (or of each of several, on one backward pass) on ``loss``: zero
        the gradients, backpropagate, (with ``max_norm`` > 0, clip the gradients' total norm), step."""
        opts = [self.optimizers[n] for n in ((name,) if isinstance(name, str) else name)]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_([p for opt in opts for g in opt.param_groups for p in g["params"]],
                                           max_norm)
        for opt in opts:
            opt.step()

    def shown(self, *xs: Tensor) -> Tensor | tuple[Tensor, ...]:
        """What the discriminator is shown of ``xs`` (real or generated images; an image and its condition
        image together get the same draw): the run's ``[augment]`` pipeline at this step — DiffAugment or
        ADA, then instance noise —, differentiable, so the G step's gradients pass through it."""
        if self.augment is None:
            return xs[0] if len(xs) == 1 else xs
        return self.augment(*xs, step=self.step)

    @staticmethod
    @contextmanager
    def frozen(*nets: nn.Module) -> Iterator[None]:
        """No parameter gradients for ``nets`` inside (a D during the G step): gradients still flow through
        them to their inputs. Each parameter's flag is restored afterwards (an EMA copy has none to begin with)."""
        flags = [[p.requires_grad for p in net.parameters()] for net in nets]
        for net in nets:
            net.requires_grad_(False)
        try:
            yield
        finally:
            for net, saved in zip(nets, flags):
                for p, flag in zip(net.parameters(), saved):
                    p.requires_grad_(flag)

    # ----------------------------------------------------------------------------- for sampling

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), shape (n, z_dim) (z_dim may be 0: a deterministic generator)."""
        return normal_latents(n, self.z_dim, self.device, generator)

    def sample(self, z: Tensor, labels: Any = None, ema: bool = True) -> Tensor:
        """Samples (N, *shape) for latents z (N, z_dim) and conditions ``labels`` (see ``conditioning``)."""
        raise NotImplementedError

    def fixed_conditions(self, source, n: int, seed: int) -> Any:
        """The conditions of n grid or evaluation samples (None: unconditional)."""
        return None

    def grid_images(self, x: Tensor, cond: Any) -> tuple[Tensor, int | None]:
        """Samples as laid out in a grid, and the row length (None: square)."""
        return x, None

    # ------------------------------------------------------------------ "image" and "domains" only

    condition_shape: tuple[int, ...] = ()   # "image": the shape of one condition image

    def show_condition(self, a: Tensor) -> Tensor:
        """"image": conditions drawn as images of the data's shape, for grids."""
        raise NotImplementedError

    def source_domains(self, x: Tensor, target: int) -> Tensor:
        """"domains": the domain (N,) of source images given without one, to translate them back: the
        other domain of two."""
        if len(self.domains) != 2:
            raise NotImplementedError
        return torch.full((len(x),), 1 - target, dtype=torch.int64)

    # ----------------------------------------------------------------------------- "sentences" only

    def grid_lines(self, x: Tensor, cond: Any) -> list[str]:
        """"sentences": translations x (N, L) of the conditions ``cond`` as lines of text (sample files)."""
        raise NotImplementedError


@contextmanager
def sampling_generator(recipe: Recipe, ema: bool = True, name: str = "G") -> Iterator[nn.Module]:
    """The generator ``name`` to sample with — its moving average ``<name>_ema`` when asked and kept —
    in eval mode for the duration (BatchNorm uses its running statistics), its previous mode restored
    afterwards."""
    G = recipe.nets[f"{name}_ema"] if ema and f"{name}_ema" in recipe.nets else recipe.nets[name]
    was_training = G.training
    G.eval()
    try:
        yield G
    finally:
        G.train(was_training)


def class_grid(n: int, classes: int) -> tuple[Tensor, int]:
    """Labels (n,) for a class x sample grid, one class per row, and the row length."""
    per = -(-n // classes)
    return torch.arange(n) // per, per


def truncate_(z: Tensor, psi: float, generator: torch.Generator) -> Tensor:
    """The truncation trick (Brock et al. 2019): every value of z ~ N(0, I) outside [-psi, psi] redrawn
    from ``generator`` until none is left, so z follows the normal truncated to [-psi, psi]; in place."""
    outside = z.abs() > psi
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator).to(z)
        outside = z.abs() > psi
    return z


def draw_samples(recipe: Recipe, n: int, seed: int, ema: bool = True, batch: int = 500,
                 labels: Any = None, truncation: float | None = None) -> list[Tensor]:
    """n samples from any recipe, in CPU batches of ``batch``, from latents drawn with their own
    generator seeded ``seed`` (the global RNG is not touched). ``labels`` (n,) or (n, C): the
    conditions of a conditional recipe (default: its classes in turn). When the recipe's ``rejection``
    is set (``sample.method`` drs, or auto with a logistic objective), discriminator rejection sampling
    (``recipes/drs.py``). ``truncation`` psi: latents from the normal truncated to [-psi, psi] (``truncate_``)."""
    if recipe.rejection and labels is None:
        from .drs import rejection_sample

        s = recipe.cfg.sample
        return list(rejection_sample(recipe, n, seed, ema=ema, percentile=s.drs_percentile,
                                     gamma=s.drs_gamma).split(batch))
    gen = torch.Generator().manual_seed(seed)
    latents = []   # every batch's latents, in order: the generator's draws do not depend on who samples
    for start in range(0, n, batch):
        z = recipe.latents(min(batch, n - start), generator=gen)
        latents.append(truncate_(z, truncation, gen) if truncation is not None else z)

    def one(b: int) -> Tensor:
        part = None if labels is None else labels[b * batch:b * batch + len(latents[b])]
        return recipe.sample(latents[b], part, ema=ema).cpu()

    return map_batches(one, len(latents), desc="samples")   # spread over an evaluation's processes (torchrun)
