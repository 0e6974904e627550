"""The run configuration's schema and parsing: the shared tables, TOML presets and files, ``--set
table.key=value`` overrides, the old layout's keys mapped to their new homes, and TOML writing.

Tables every recipe shares are dataclasses here (``[data] [model] [loss] [optim] [train] [eval]
[sample]``); a recipe, architecture or data set with options of its own declares them as a dataclass
registered with it, read from a table of its name (``[cyclegan]``, ``[mlp]``, ``[pairs]``). Which tables
a run has, and the names that must exist in a registry, are decided where a run is assembled
(``gankit.assemble``); this module knows no registry.

Resolution order (later wins): the dataclass defaults, the preset (``digits`` unless named), ``--config
FILE.toml``, ``--set``. The resolved config is written beside every checkpoint as ``config.toml``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError
from .options import as_dict, option

DEFAULT_PRESET = "digits"
DATA_SPLITS = ("train", "test")
NORMS = ("batch", "layer", "none")
LR_DECAYS = ("none", "linear", "cosine")
SAMPLERS = ("direct", "drs", "auto")
SMOOTHABLE = ("minimax", "nonsaturating", "lsgan")   # objectives with a target on real data


@dataclass
class DataConfig:
    name: str = option("digits", "data set registry name (`gankit presets` lists the presets using each)")
    path: str = option("", "folder for `folder`; root directory for torchvision data sets")
    size: int = option(0, "image side in pixels after resize + centre crop; 0 keeps the native size", min=0)
    channels: int = option(0, "1 (grey) or 3 (RGB); 0 keeps the native channel count", choices=(0, 1, 3))
    batch_size: int = option(64, "images (or points) per discriminator step", above=0)
    download: bool = option(False, "allow torchvision data sets to download (never at test time)")
    workers: int = option(0, "DataLoader worker processes when a data set is streamed from disk", min=0)
    labels: str = option("", "conditions from a file: .csv (file,label | file,v1,v2,...) or .npy (N, C); \"\" = the set's own")
    split: str = option("train", "the part of a data set with splits (trainA/testA, train/test folders, built-in sets)",
                        choices=DATA_SPLITS)


@dataclass
class ModelConfig:
    arch: str = option("dcgan", "architecture registry name (mlp, dcgan, resnet; image-to-image: unet, resnet)")
    z_dim: int = option(64, "latent size (0: a deterministic image-to-image generator)", min=0)
    g_width: int = option(64, "generator width (hidden units for MLPs, base channels for CNNs)", above=0)
    d_width: int = option(64, "discriminator width", above=0)
    d_norm: str = option("batch", "normalisation between D layers", choices=NORMS)
    spectral_norm: bool = option(False, "spectral normalisation on every D layer (SNGAN)")
    mbstd: int = option(0, "a minibatch standard-deviation layer before D's head (Karras et al. 2018), over groups of "
                           "this many samples (mlp, dcgan, resnet); 0 disables", min=0)


@dataclass
class LossConfig:
    name: str = option("nonsaturating", "objective registry name (objectives.py)")
    gp: float = option(0.0, "WGAN-GP gradient-penalty weight (lambda); 0 disables", min=0)
    r1: float = option(0.0, "R1 penalty weight (gamma); 0 disables", min=0)
    clip: float = option(0.0, "WGAN weight clipping to [-clip, clip] after each D step; 0 disables", min=0)
    smooth: float = option(0.0, "one-sided label smoothing (Salimans et al. 2016): D's target on real data is 1 - smooth "
                                "(minimax, nonsaturating, lsgan); 0 disables", min=0, below=1)
    feature_matching: float = option(0.0, "weight of feature matching (Salimans et al. 2016) in G's loss: "
                                          "‖E f(x) - E f(G(z))‖², f = D's last hidden features; 0 disables", min=0)
    ortho: float = option(0.0, "orthogonal regularisation of G's weights (Brock et al. 2019; BigGAN uses 1e-4): "
                               "β Σ_W ‖W Wᵀ ⊙ (1 - I)‖²_F; 0 disables", min=0)

    def check(self, table: str) -> None:
        if self.smooth > 0 and self.name not in SMOOTHABLE:
            raise ConfigError(f"{table}.smooth: label smoothing needs a loss with targets — {table}.name "
                              f"{', '.join(SMOOTHABLE)} (got {self.name})")


@dataclass
class OptimConfig:
    lr_g: float = option(2e-4, "generator learning rate", above=0)
    lr_d: float = option(2e-4, "discriminator learning rate", above=0)
    betas_g: list[float] = option(help="Adam's (beta1, beta2) for G", min=0, below=1, factory=lambda: [0.5, 0.999])
    betas_d: list[float] = option(help="Adam's (beta1, beta2) for D", min=0, below=1, factory=lambda: [0.5, 0.999])
    decay: str = option("none", "learning-rate schedule after decay_start: to 0 linearly or by a cosine", choices=LR_DECAYS)
    decay_start: float = option(0.5, "fraction of train.steps run at the full rate before the decay", min=0, below=1)

    def check(self, table: str) -> None:
        for key in ("betas_g", "betas_d"):
            if len(getattr(self, key)) != 2:
                raise ConfigError(f"{table}.{key}: expected two numbers in [0, 1), got {getattr(self, key)}")


@dataclass
class TrainConfig:
    recipe: str = option("gan", "recipe registry name: what one training step does")
    steps: int = option(2000, "generator steps in the run", min=0)
    max_seconds: float = option(0.0, "stop (and checkpoint) after this much wall time; 0 = no limit", min=0)
    seed: int = option(0, "random seed")
    d_steps: int = option(1, "k: discriminator steps per generator step", above=0)
    ema: float = option(0.999, "decay of the generator's exponential moving average; 0 disables", min=0, below=1)
    sample_every: int = option(500, "save a grid from a fixed z every N steps (and at the end)", above=0)
    ckpt_every: int = option(1000, "checkpoint every N steps (and at the end)", above=0)
    log_every: int = option(50, "write metrics.jsonl / TensorBoard every N steps", above=0)
    keep: int = option(2, "checkpoints kept on disk", above=0)
    grid: int = option(64, "samples in each grid", above=0)
    device: str = option("auto", "auto, cpu, cuda, cuda:N, mps")
    progress: bool = option(True, "show a progress bar on a terminal")
    fast: bool = option(False, "bf16 autocast where it pays, channels-last images, fused Adam (training/fast.py)")
    sync_bn: bool = option(False, "several processes (torchrun): BatchNorm uses the global batch's statistics")
    threads: int = option(0, "CPU threads of PyTorch's intra-op pool; 0 = one per core not busy with other processes, "
                             "followed during the run (set N for results that never depend on the load)", min=0)
    on_nan: str = option("stop", "a NaN/Inf loss or gradient: stop (exit 2, the last checkpoint untouched) or "
                                 "rollback (reload the last checkpoint, lower the learning rates, go on)",
                         choices=("stop", "rollback"))
    nan_lr_factor: float = option(0.5, "on_nan=rollback: multiply every learning rate by this at each rollback",
                                  above=0, below=1)
    nan_rollbacks: int = option(3, "on_nan=rollback: stop after this many rollbacks in one run", above=0)

    def check(self, table: str) -> None:
        if self.device not in ("auto", "cpu", "mps") and not self.device.startswith("cuda"):
            raise ConfigError(f"{table}.device: unknown device '{self.device}'; valid: auto, cpu, cuda, cuda:N, mps")


@dataclass
class SampleConfig:
    method: str = option("direct", "direct: G(z); drs: discriminator rejection sampling (Azadi et al. 2019); "
                                   "auto: drs where it applies", choices=SAMPLERS)
    drs_percentile: float = option(99.0, "drs: M = this percentile of D's logits on a 10,000-sample burn-in",
                                   above=0, max=100)
    drs_gamma: float = option(0.0, "drs: the shift gamma; > 0 keeps fewer of the samples D rates low")


@dataclass
class EvalConfig:
    every: int = option(0, "evaluate during training every N steps; 0 = never", min=0)
    metrics: list[str] = option(help="metric names (`gankit eval --help`); [] = all that apply", factory=list)
    n: int = option(2000, "samples drawn (and reference images used) per evaluation", min=2)
    features: str = option("", "inception | classifier | torchvision:MODEL; \"\" = automatic")
    best: str = option("", "keep checkpoints/best by this value (e.g. fid); \"\" = don't")


AUGMENTS = ("none", "diffaugment", "ada")
DIFF_POLICIES = ("color", "translation", "cutout")
ADA_PIPELINES = ("blit", "geom", "color")


@dataclass
class AugmentConfig:
    method: str = option("none", "what D sees of real and generated images: none, diffaugment (Zhao et al. 2020) "
                                 "or ada (Karras et al. 2020)", choices=AUGMENTS)
    policy: list[str] = option(help="diffaugment: its transforms, in order", choices=DIFF_POLICIES,
                               factory=lambda: list(DIFF_POLICIES))
    ada_pipeline: list[str] = option(help="ada: its transform groups", choices=ADA_PIPELINES,
                                     factory=lambda: list(ADA_PIPELINES))
    ada_target: float = option(0.6, "ada: the target of the overfitting heuristic r_t = E[sign D(real)]",
                               above=0, below=1)
    ada_interval: int = option(4, "ada: D steps between adjustments of p", above=0)
    ada_kimg: float = option(100.0, "ada: thousands of images over which p can move from 0 to 1", above=0)
    ada_p: float = option(0.0, "ada: p at the start of the run", min=0, max=1)
    noise: float = option(0.0, "instance noise: the standard deviation added to D's inputs at step 0; 0 disables",
                          min=0)
    noise_steps: int = option(0, "instance noise falls linearly to 0 at this step; 0 = train.steps", min=0)

    def check(self, table: str) -> None:
        if self.method == "diffaugment" and not self.policy:
            raise ConfigError(f"{table}.policy: diffaugment needs at least one of {', '.join(DIFF_POLICIES)}")
        if self.method == "ada" and not self.ada_pipeline:
            raise ConfigError(f"{table}.ada_pipeline: ada needs at least one of {', '.join(ADA_PIPELINES)}")


# The tables every recipe may share, in the order they are written.
SHARED: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "optim": OptimConfig,
                           "train": TrainConfig, "eval": EvalConfig, "sample": SampleConfig,
                           "augment": AugmentConfig}


@dataclass
class Config:
    """A run's configuration: the shared tables, and ``owned``, the option tables of the run's recipe,
    architecture and data set (table name -> options dataclass). ``shared`` lists the shared tables the
    recipe uses (all by default); only those and the owned ones are written."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    owned: dict[str, Any] = field(default_factory=dict)
    shared: tuple[str, ...] = tuple(SHARED)

    def table(self, name: str) -> Any:
        """The options of table ``name``: a shared table or one the run owns."""
        if name in SHARED:
            return getattr(self, name)
        try:
            return self.owned[name]
        except KeyError:
            raise ConfigError(f"this run has no [{name}] table; its tables: {', '.join(self.tables())}") from None

    def tables(self) -> dict[str, Any]:
        """The run's tables in writing order: the shared ones it uses, then its own."""
        return {**{t: getattr(self, t) for t in SHARED if t in self.shared}, **self.owned}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """table -> key -> value, as written: an owned table whose class says ``TABLE = "data"`` (a data
        set's options) joins ``[data]``, without the ``[data]`` keys it ``REFUSES``."""
        out: dict[str, dict[str, Any]] = {}
        for name, obj in self.tables().items():
            into = getattr(type(obj), "TABLE", None)
            if into in SHARED and into in out:
                for key in getattr(type(obj), "REFUSES", ()):
                    out[into].pop(key, None)
                out[into].update(as_dict(obj))
            else:
                out[name] = as_dict(obj)
        return out


# ----------------------------------------------------------------------------------------- presets

def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("gankit.presets").iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    if name not in preset_names():
        raise ConfigError(f"unknown preset '{name}'; valid: {', '.join(preset_names())}")
    return resources.files("gankit.presets").joinpath(f"{name}.toml").read_text()


def preset_summary(name: str) -> str:
    """The preset file's first comment line."""
    first = preset_text(name).splitlines()[0]
    return first.lstrip("# ").strip()


# --------------------------------------------------------------------------------- raw layers

# Raw values before they are typed: table -> key -> (value, where it came from).
Raw = dict[str, dict[str, tuple[Any, str]]]


def read_toml(text: str, origin: str) -> Raw:
    """The tables of a TOML text, each value tagged with ``origin``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: not valid TOML ({e})") from None
    raw: Raw = {}
    for table, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: '{table}' must be a table like [{table}] with keys under it")
        for key, value in values.items():
            if isinstance(value, dict):
                raise ConfigError(f"{origin}: '{table}.{key}' must be a value, not a table")
            raw.setdefault(table, {})[key] = (value, origin)
    return raw


def parse_override(item: str) -> tuple[str, str, str]:
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"--set {item!r}: expected table.key=value, e.g. train.steps=500")
    lhs, value = item.split("=", 1)
    table, key = lhs.strip().split(".", 1)
    return table, key, value.strip()


def read_overrides(items: list[str]) -> Raw:
    raw: Raw = {}
    for item in items:
        table, key, value = parse_override(item)
        raw.setdefault(table, {})[key] = (value, f"--set {item}")
    return raw


def merge(*layers: Raw) -> Raw:
    """Later layers win, key by key."""
    out: Raw = {}
    for layer in layers:
        for table, values in layer.items():
            out.setdefault(table, {}).update(values)
    return out


def value(raw: Raw, table: str, key: str, default: Any) -> Any:
    return raw.get(table, {}).get(key, (default,))[0]


# --------------------------------------------------------------------------- the old layout

# Keys of the layout in which every option sat in the shared tables, and their new homes: by recipe,
# architecture ("arch:NAME") or data set ("data:NAME"). An old key whose owner is not part of the run
# did nothing in it and is dropped.
OLD_KEYS: dict[str, dict[str, str]] = {
    "loss.aux": {"cgan": "cgan.aux", "stargan": "stargan.cls"},
    "loss.mismatch": {"cgan": "cgan.mismatch"},
    "loss.adv": {"paired": "paired.adv"},
    "loss.l1": {"paired": "paired.l1"},
    "loss.cycle": {"cyclegan": "cyclegan.cycle", "stargan": "stargan.rec"},
    "loss.identity": {"cyclegan": "cyclegan.identity"},
    "loss.self_reg": {"cyclegan": "cyclegan.self_reg"},
    "loss.semantic": {"cyclegan": "cyclegan.semantic"},
    "loss.semantic_im": {"cyclegan": "cyclegan.semantic_im"},
    "train.pool": {"cyclegan": "cyclegan.pool"},
    "train.reuse_fake": {"gan": "gan.reuse_fake", "cgan": "cgan.reuse_fake"},
    "model.pack": {"gan": "gan.pack"},
    "model.cond_g": {"cgan": "cgan.cond_g"},
    "model.cond_d": {"cgan": "cgan.cond_d"},
    "data.pair": {"paired": "paired.task"},
    "model.depth": {"arch:mlp": "mlp.depth", "arch:resnet": "resnet.blocks"},   # only the translator resnet has options
    "data.direction": {"data:pairs": "pairs.direction"},
}


def old_key_home(key: str, owners: set[str]) -> str | None:
    """The new name of old-layout ``key`` in a run with these owners (recipe, "arch:...", "data:..."),
    or None where it has none."""
    for owner, new in OLD_KEYS[key].items():
        if owner in owners:
            return new
    return None


def migrate(raw: Raw, owners: set[str], unused_tables: set[str]) -> Raw:
    """Old-layout keys of files moved to their new homes (or dropped where the run has none); in a file
    written in the old layout (it holds old keys), tables the run does not use are dropped too — that
    layout wrote every table. Keys given with --set are not migrated: an old name there is an error."""
    out: Raw = {}
    old_files = {origin for table, values in raw.items() for key, (_, origin) in values.items()
                 if f"{table}.{key}" in OLD_KEYS and not origin.startswith("--set")}
    for table, values in raw.items():
        for key, (v, origin) in values.items():
            name = f"{table}.{key}"
            if name in OLD_KEYS and not origin.startswith("--set"):
                new = old_key_home(name, owners)
                if new is not None:
                    t, k = new.split(".")
                    out.setdefault(t, {})[k] = (v, origin)
                continue
            if table in unused_tables and origin in old_files:
                continue
            out.setdefault(table, {})[key] = (v, origin)
    return out


# ---------------------------------------------------------------------------------------- writing

def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v)} to TOML")


def table_toml(name: str, values: dict[str, Any], prefix: str = "") -> list[str]:
    """The lines of one TOML table (``prefix`` "# " comments it out)."""
    return [f"{prefix}[{name}]", *(f"{prefix}{k} = {_toml_value(v)}" for k, v in values.items()), ""]


def to_toml(cfg: Config) -> str:
    """The run's own tables (the shared ones its recipe uses, then the recipe's, architecture's and data
    set's), as TOML."""
    lines: list[str] = []
    for table, values in cfg.to_dict().items():
        lines += table_toml(table, values)
    return "\n".join(lines)


# Keys that may change when a run is resumed (they bound or observe the run, not what it computes).
RESUMABLE_CHANGES = {"eval.every", "eval.n", "eval.metrics", "eval.features", "train.steps", "train.max_seconds",
                     "train.progress", "train.device", "train.sample_every", "train.ckpt_every", "train.log_every",
                     "train.keep", "train.threads", "train.on_nan", "train.nan_lr_factor", "train.nan_rollbacks", "data.workers",
                     "data.path", "data.download", "sample.method", "sample.drs_percentile", "sample.drs_gamma"}


def incompatible_keys(saved: Config, new: Config) -> list[str]:
    """The keys whose values differ between two configs and may not change on resume."""
    a, b = saved.to_dict(), new.to_dict()
    keys = [f"{t}.{k}" for t in a for k in a[t]] + [f"{t}.{k}" for t in b for k in b[t] if t not in a or k not in a[t]]
    def get(d, key):
        t, k = key.split(".", 1)
        return d.get(t, {}).get(k, None)
    return [key for key in dict.fromkeys(keys) if get(a, key) != get(b, key) and key not in RESUMABLE_CHANGES]
