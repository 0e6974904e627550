"""Typed run configuration: dataclasses, TOML presets and files, ``--set table.key=value`` overrides.

Resolution order (later wins): the dataclass defaults, the preset, ``--config FILE.toml``, ``--set``.
The resolved config is written beside every checkpoint as ``config.toml`` and read back on resume.
"""
from __future__ import annotations

import copy
import dataclasses
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError


@dataclass
class DataConfig:
    name: str = "digits"          # data set registry name (`gankit presets` lists the presets using each)
    path: str = ""                # folder for `folder`; root directory for torchvision data sets
    size: int = 0                 # image side in pixels after resize + centre crop; 0 keeps the native size
    channels: int = 0             # 1 (grey) or 3 (RGB); 0 keeps the native channel count
    batch_size: int = 64          # images (or points) per discriminator step
    download: bool = False        # allow torchvision data sets to download (never at test time)
    workers: int = 0              # DataLoader worker processes when a data set is streamed from disk
    pair: str = ""                # image condition made from each image: superres2|superres4|colorize|inpaint|denoise
    labels: str = ""              # conditions from a file: .csv (file,label | file,v1,v2,...) or .npy (N, C); "" = the set's own
    split: str = "train"          # train or test: the part of a data set with splits (trainA/testA, train/test folders, built-in domain sets)
    direction: str = "AtoB"       # paired data on disk (data.name=pairs): AtoB (condition A, target B) or BtoA


@dataclass
class ModelConfig:
    arch: str = "dcgan"           # architecture registry name: mlp, dcgan, resnet
    z_dim: int = 64               # latent size
    g_width: int = 64             # generator width (hidden units for MLPs, base channels for CNNs)
    d_width: int = 64             # discriminator width
    depth: int = 3                # hidden layers (MLP only)
    d_norm: str = "batch"         # normalisation between D layers: batch, layer, none
    spectral_norm: bool = False   # spectral normalisation on every D layer (SNGAN)
    pack: int = 1                 # PacGAN: D judges this many samples at once; 1 = off
    cond_g: str = "concat"        # conditional runs: how G takes the condition: concat (with z), cbn
    cond_d: str = "projection"    # conditional runs: how D takes it: projection, concat, none (ACGAN)


@dataclass
class LossConfig:
    name: str = "nonsaturating"   # objective registry name
    gp: float = 0.0               # WGAN-GP gradient-penalty weight (lambda); 0 disables
    r1: float = 0.0               # R1 penalty weight (gamma); 0 disables
    clip: float = 0.0             # WGAN weight clipping to [-clip, clip] after each D step; 0 disables
    aux: float = 0.0              # conditional runs: ACGAN auxiliary-classifier loss weight; 0 disables
    mismatch: float = 0.0         # conditional runs: share of D's fake term given to (real, wrong condition)
    adv: float = 1.0              # paired runs: weight of the adversarial term of G's loss; 0 = L1 regression only
    l1: float = 0.0               # paired runs: weight of E|G(a) - x| in G's loss (pix2pix: 100)
    cycle: float = 10.0           # cyclegan / stargan runs: weight of the cycle (reconstruction) L1 loss
    identity: float = 0.5         # cyclegan runs: identity loss weight, relative to loss.cycle (0 disables)
    self_reg: float = 0.0         # cyclegan runs: weight of E|G_AB(a) - a| + E|G_BA(b) - b| (SimGAN's self-regularisation)
    semantic: float = 0.0         # cyclegan runs: weight of CyCADA's semantic consistency (a classifier of domain A's content labels)
    semantic_im: float = 0.0      # cyclegan runs, with loss.semantic > 0: weight of information maximisation on domain B's images for F_A (so it reads B's content too)


LR_DECAYS = ("none", "linear", "cosine")
DATA_SPLITS = ("train", "test")
DIRECTIONS = ("AtoB", "BtoA")


@dataclass
class OptimConfig:
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas_g: list[float] = field(default_factory=lambda: [0.5, 0.999])
    betas_d: list[float] = field(default_factory=lambda: [0.5, 0.999])
    decay: str = "none"           # learning-rate schedule after decay_start: none, linear (to 0), cosine (to 0)
    decay_start: float = 0.5      # fraction of train.steps run at the full rate before the decay begins


@dataclass
class TrainConfig:
    recipe: str = "gan"           # recipe registry name: what one training step does
    steps: int = 2000             # generator steps in the run
    max_seconds: float = 0.0      # stop (and checkpoint) after this much wall time; 0 = no limit
    seed: int = 0
    d_steps: int = 1              # k: discriminator steps per generator step [seed 001]
    ema: float = 0.999            # decay of the generator's exponential moving average; 0 disables
    sample_every: int = 500       # save a grid from a fixed z every N steps (and at the end)
    ckpt_every: int = 1000        # checkpoint every N steps (and at the end)
    log_every: int = 50           # write metrics.jsonl / TensorBoard every N steps
    keep: int = 2                 # checkpoints kept on disk
    grid: int = 64                # samples in each grid
    device: str = "auto"          # auto, cpu, cuda, cuda:1, mps
    progress: bool = True         # show a progress bar on a terminal
    pool: int = 50                # cyclegan runs: D sees generated images from a history of this many; 0 = the newest only
    fast: bool = False            # bf16 autocast where it pays (conv nets; MLPs at batch >= 512), channels-last images, fused Adam (train/fast.py); speed and quality in docs/BENCHMARKS.md
    sync_bn: bool = False         # several processes (torchrun): BatchNorm uses the global batch's statistics
    reuse_fake: bool = True       # gan, cgan: the G step trains on the last D step's G(z) (as pytorch/examples' DCGAN: one G forward fewer); false: a fresh z


SAMPLERS = ("direct", "drs", "auto")
DRS_OBJECTIVES = ("minimax", "nonsaturating")   # objectives whose D logit estimates log p_data/p_g


@dataclass
class SampleConfig:
    method: str = "direct"        # direct: G(z); drs: discriminator rejection sampling (Azadi et al. 2019); auto: drs where it applies
    drs_percentile: float = 99.0  # drs: M = this percentile of D's logits on a 10,000-sample burn-in
    drs_gamma: float = 0.0        # drs: the shift γ; > 0 keeps fewer of the samples D rates low (sharper, less diverse)


@dataclass
class EvalConfig:
    every: int = 0                # evaluate during training every N steps; 0 = never
    metrics: list[str] = field(default_factory=list)   # see `gankit eval --help`; [] = all that apply
    n: int = 2000                 # samples drawn (and reference images used) per evaluation
    features: str = ""            # inception | classifier | torchvision:MODEL; "" = automatic
    best: str = ""                # keep checkpoints/best by this metric (e.g. fid); "" = don't


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


TABLES = {f.name: f.type for f in dataclasses.fields(Config)}


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


# ------------------------------------------------------------------------------------- resolution

def _table_classes() -> dict[str, type]:
    hints = get_type_hints(Config)
    return {name: hints[name] for name in TABLES}


def _field_types(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """Check (and, for strings from --set, parse) a value against its field type."""
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{key}: expected {expected}, got {value!r}")

    if get_origin(typ) is list:
        (item,) = get_args(typ)
        if isinstance(value, str):
            parts = [p for p in value.strip("[] ").split(",") if p.strip()]
            value_list: list[Any] = [p.strip() for p in parts]
        elif isinstance(value, (list, tuple)):
            value_list = list(value)
        else:
            raise bad(f"a list of {item.__name__}")
        return [_coerce(key, v, item) for v in value_list]
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise bad("true or false")
    if typ is int:
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                raise bad("an integer") from None
        raise bad("an integer")
    if typ is float:
        if isinstance(value, bool):
            raise bad("a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad("a number") from None
        raise bad("a number")
    if typ is str:
        if isinstance(value, str):
            return value
        raise bad("a string")
    raise TypeError(f"unsupported config type {typ}")  # a bug in this file, not user input


def _apply(cfg: Config, table: str, key: str, value: Any, origin: str, seen: set[str] | None = None) -> None:
    tables = _table_classes()
    if table not in tables:
        raise ConfigError(f"{origin}: unknown config table '{table}'; valid: {', '.join(tables)}")
    types = _field_types(tables[table])
    if key not in types:
        raise ConfigError(f"{origin}: unknown config key '{table}.{key}'; valid: "
                          + ", ".join(f"{table}.{k}" for k in types))
    setattr(getattr(cfg, table), key, _coerce(f"{table}.{key}", value, types[key]))
    if seen is not None:
        seen.add(f"{table}.{key}")


def _apply_toml(cfg: Config, text: str, origin: str, seen: set[str] | None = None) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: not valid TOML ({e})") from None
    for table, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: '{table}' must be a table like [{table}]; "
                              f"valid tables: {', '.join(TABLES)}")
        for key, value in values.items():
            _apply(cfg, table, key, value, origin, seen)


def parse_override(item: str) -> tuple[str, str, str]:
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"--set {item!r}: expected table.key=value, e.g. train.steps=500")
    lhs, value = item.split("=", 1)
    table, key = lhs.strip().split(".", 1)
    return table, key, value.strip()


def resolve(preset: str | None = None, config_file: str | None = None,
            overrides: list[str] = (), seed: int | None = None) -> Config:
    """Build a validated Config from a preset name, a TOML file and ``table.key=value`` strings.

    Keys none of them sets take the recipe's own defaults (``defaults`` of the recipe class, e.g.
    LSGAN and the U-Net for CycleGAN) before the dataclass defaults."""
    cfg = Config()
    seen: set[str] = set()
    if preset is not None or config_file is None:
        name = preset or "digits"
        _apply_toml(cfg, preset_text(name), f"preset '{name}'", seen)
    if config_file is not None:
        path = Path(config_file)
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"--config {config_file}: cannot read ({e.strerror})") from None
        _apply_toml(cfg, text, str(path), seen)
    return override(cfg, overrides, seed, seen)


def override(cfg: Config, overrides: list[str] = (), seed: int | None = None, seen: set[str] | None = None) -> Config:
    """Apply ``table.key=value`` strings (and ``--seed``) to a copy of ``cfg`` and validate it. With
    ``seen`` (the keys set so far), the keys still unset take the recipe's defaults."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        table, key, value = parse_override(item)
        _apply(cfg, table, key, value, f"--set {item}", seen)
    if seed is not None:
        cfg.train.seed = seed
    if seen is not None:
        from .recipes import RECIPES

        for item, value in getattr(RECIPES.get(cfg.train.recipe), "defaults", {}).items():
            if item not in seen:
                table, key = item.split(".")
                _apply(cfg, table, key, value, f"recipe '{cfg.train.recipe}' defaults")
    validate(cfg)
    return cfg


def from_toml(text: str, origin: str) -> Config:
    cfg = Config()
    _apply_toml(cfg, text, origin)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Range checks and names that must exist in a registry."""
    from . import data, nets, objectives, recipes  # registries fill on import

    data.DATASETS.get(cfg.data.name)
    recipe = recipes.RECIPES.get(cfg.train.recipe)
    archs = getattr(recipe, "architectures", nets.NETS)   # image-to-image recipes use nets.TRANSLATORS
    archs.get(cfg.model.arch)
    objectives.OBJECTIVES.get(cfg.loss.name)
    paired = archs is nets.TRANSLATORS
    positive = {"data.batch_size": cfg.data.batch_size, **({} if paired else {"model.z_dim": cfg.model.z_dim}),
                "model.g_width": cfg.model.g_width, "model.d_width": cfg.model.d_width,
                "train.d_steps": cfg.train.d_steps, "train.sample_every": cfg.train.sample_every,
                "train.ckpt_every": cfg.train.ckpt_every, "train.log_every": cfg.train.log_every,
                "train.keep": cfg.train.keep, "train.grid": cfg.train.grid,
                "optim.lr_g": cfg.optim.lr_g, "optim.lr_d": cfg.optim.lr_d}
    for key, v in positive.items():
        if v <= 0:
            raise ConfigError(f"{key}: must be positive, got {v}")
    for key, v in {"train.steps": cfg.train.steps, "train.max_seconds": cfg.train.max_seconds, "model.z_dim": cfg.model.z_dim,
                   "loss.adv": cfg.loss.adv, "loss.l1": cfg.loss.l1, "loss.aux": cfg.loss.aux,
                   "loss.gp": cfg.loss.gp, "loss.r1": cfg.loss.r1, "loss.clip": cfg.loss.clip,
                   "loss.cycle": cfg.loss.cycle, "loss.identity": cfg.loss.identity, "loss.self_reg": cfg.loss.self_reg,
                   "loss.semantic": cfg.loss.semantic, "loss.semantic_im": cfg.loss.semantic_im, "train.pool": cfg.train.pool,
                   "data.size": cfg.data.size, "data.workers": cfg.data.workers}.items():
        if v < 0:
            raise ConfigError(f"{key}: must be zero or positive, got {v}")
    if cfg.eval.every < 0 or cfg.eval.n < 2:
        raise ConfigError(f"eval.every must be ≥ 0 and eval.n ≥ 2, got {cfg.eval.every} and {cfg.eval.n}")
    if cfg.eval.every:
        from .metrics.evaluate import ALL_METRICS

        for m in cfg.eval.metrics:
            if m not in ALL_METRICS:
                raise ConfigError(f"eval.metrics: unknown metric '{m}'; valid: {', '.join(ALL_METRICS)}")
    if cfg.model.pack < 1 or cfg.data.batch_size % cfg.model.pack:
        raise ConfigError(f"model.pack={cfg.model.pack}: must be ≥ 1 and divide data.batch_size={cfg.data.batch_size}")
    if cfg.model.d_norm not in ("batch", "layer", "none"):
        raise ConfigError(f"model.d_norm: unknown normalisation '{cfg.model.d_norm}'; valid: batch, layer, none")
    if cfg.data.split not in DATA_SPLITS:
        raise ConfigError(f"data.split: unknown split '{cfg.data.split}'; valid: {', '.join(DATA_SPLITS)}")
    if cfg.data.direction not in DIRECTIONS:
        raise ConfigError(f"data.direction: unknown direction '{cfg.data.direction}'; valid: {', '.join(DIRECTIONS)}")
    if cfg.data.channels not in (0, 1, 3):
        raise ConfigError(f"data.channels: must be 0 (native), 1 or 3, got {cfg.data.channels}")
    if not 0.0 <= cfg.train.ema < 1.0:
        raise ConfigError(f"train.ema: must be in [0, 1), got {cfg.train.ema}")
    if cfg.sample.method not in SAMPLERS:
        raise ConfigError(f"sample.method: unknown sampler '{cfg.sample.method}'; valid: {', '.join(SAMPLERS)}")
    if not 0.0 < cfg.sample.drs_percentile <= 100.0:
        raise ConfigError(f"sample.drs_percentile: must be in (0, 100], got {cfg.sample.drs_percentile}")
    if cfg.sample.method == "drs" and not drs_applies(cfg):
        raise ConfigError(f"sample.method=drs: needs a discriminator whose logit estimates log p_data/p_g — the gan "
                          f"recipe with loss.name minimax or nonsaturating (got recipe {cfg.train.recipe}, loss {cfg.loss.name})")
    if cfg.optim.decay not in LR_DECAYS:
        raise ConfigError(f"optim.decay: unknown schedule '{cfg.optim.decay}'; valid: {', '.join(LR_DECAYS)}")
    if not 0.0 <= cfg.optim.decay_start < 1.0:
        raise ConfigError(f"optim.decay_start: must be in [0, 1), got {cfg.optim.decay_start}")
    for key in ("betas_g", "betas_d"):
        betas = getattr(cfg.optim, key)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ConfigError(f"optim.{key}: expected two numbers in [0, 1), got {betas}")
    if cfg.train.device not in ("auto", "cpu", "mps") and not cfg.train.device.startswith("cuda"):
        raise ConfigError(f"train.device: unknown device '{cfg.train.device}'; valid: auto, cpu, cuda, cuda:N, mps")


def drs_applies(cfg: Config) -> bool:
    """Can this run sample by discriminator rejection (sample.method=drs)? The gan recipe with a logistic objective."""
    return cfg.train.recipe == "gan" and cfg.loss.name in DRS_OBJECTIVES


def uses_drs(cfg: Config) -> bool:
    """Does this run sample by discriminator rejection: method drs, or auto where drs applies."""
    return cfg.sample.method == "drs" or (cfg.sample.method == "auto" and drs_applies(cfg))


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


def to_toml(cfg: Config) -> str:
    lines = []
    for table, values in cfg.to_dict().items():
        lines.append(f"[{table}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
        lines.append("")
    return "\n".join(lines)


# Keys that may change when a run is resumed (they bound or observe the run, not what it computes).
RESUMABLE_CHANGES = {"eval.every", "eval.n", "eval.metrics", "eval.features", "train.steps", "train.max_seconds", "train.progress", "train.device",
                     "train.sample_every", "train.ckpt_every", "train.log_every", "train.keep",
                     "data.workers", "data.path", "data.download", "sample.method", "sample.drs_percentile",
                     "sample.drs_gamma"}


def incompatible_keys(saved: Config, new: Config) -> list[str]:
    a, b = saved.to_dict(), new.to_dict()
    return [f"{t}.{k}" for t in a for k in a[t]
            if a[t][k] != b[t][k] and f"{t}.{k}" not in RESUMABLE_CHANGES]
