"""The one place a run's configuration is assembled: from the raw layers (preset, ``--config`` file,
``--set``) to a checked ``Config``, asking each owner for its table and its rules.

1. the recipe (``train.recipe``) says which shared tables it reads, which architecture registry
   ``model.arch`` is looked up in, and its defaults for shared keys;
2. the recipe, the architecture and the data set each bring their own option table, if they have one
   (``[cyclegan]``, ``[mlp]``, ``[pairs]``);
3. keys of the old layout in files are moved to their new homes (``config.OLD_KEYS``);
4. every table is parsed and range-checked against its declaration; a table of another recipe,
   architecture or data set, an unknown table or key, a wrong type or a bad value is one ConfigError
   naming ``table.key`` and the valid choices;
5. names that must exist in a registry are looked up, and the recipe's ``check`` runs its rules.
"""
from __future__ import annotations

import copy
from pathlib import Path

from . import config as C
from .config import Config, Raw
from .data import DATASETS, DataInfo
from .errors import ConfigError
from .metrics.registry import METRICS, is_output_key, output_keys
from .objectives import OBJECTIVES
from .options import check, fields, help_of, parse
from .nets.base import NETS
from .recipes import RECIPES
from .registry import Registry


def _lookup(registry: Registry, name: str, key: str):
    if name not in registry:
        raise ConfigError(f"{key}: unknown {registry.kind} '{name}'; valid: {', '.join(registry.names())}")
    return registry.get(name)


def _owners(raw: Raw, recipe_name: str, recipe) -> tuple[dict[str, type], set[str]]:
    """The run's own tables (name -> options class) and the owner tags of the old layout, for ``raw`` with
    the recipe's defaults applied."""
    archs = recipe.architectures
    arch = C.value(raw, "model", "arch", C.ModelConfig.arch)
    _lookup(archs, arch, "model.arch")
    data = C.value(raw, "data", "name", C.DataConfig.name)
    _lookup(DATASETS, data, "data.name")
    owned: dict[str, type] = {}
    tags = {recipe_name}
    for name, cls, tag in ((recipe_name, RECIPES.options(recipe_name), recipe_name),
                           (arch, archs.options(arch), f"arch:{arch}"),
                           (data, DATASETS.options(data), f"data:{data}")):
        if cls is not None:
            owned[name] = cls
            tags.add(tag)
    return owned, tags


def _others(owned: dict[str, type]) -> dict[str, tuple[str, type]]:
    """Option tables of the recipes, architectures and data sets this run does not use: name -> (what, class)."""
    registries = [RECIPES, *{id(r.architectures): r.architectures for r in map(RECIPES.get, RECIPES.names())}.values(),
                  DATASETS]
    out: dict[str, tuple[str, type]] = {}
    for registry in registries:
        for name, cls in registry.with_options().items():
            if name not in owned:
                out.setdefault(name, (registry.kind, cls))
    return out


def _with_defaults(raw: Raw, layers: list[Raw], recipe_name: str, recipe) -> Raw:
    """``raw`` with the recipe's defaults for the shared keys left unset — or set by a preset made for
    another recipe (the default preset, under train.recipe=cyclegan), which gives way to them."""
    raw = {t: dict(v) for t, v in raw.items()}
    foreign = {o for layer in layers for values in layer.values() for _, o in values.values()
               if o.startswith("preset '") and C.value(layer, "train", "recipe", C.TrainConfig.recipe) != recipe_name}
    for item, v in recipe.defaults.items():
        table, key = item.split(".")
        current = raw.get(table, {}).get(key)
        if current is None or current[1] in foreign:
            raw.setdefault(table, {})[key] = (v, f"recipe '{recipe_name}' defaults")
    return raw


def _route_data_set_options(raw: Raw, owned: dict[str, type]) -> Raw:
    """A data set whose options say ``TABLE = "data"`` reads them from ``[data]`` (``data.level``): those keys
    move to its own table; the ``[data]`` keys it ``REFUSES`` (image options on a text run) are an error
    when given, and dropped when a preset gave them."""
    data = C.value(raw, "data", "name", C.DataConfig.name)
    cls = owned.get(data)
    if cls is None or getattr(cls, "TABLE", None) != "data":
        return raw
    raw = {t: dict(v) for t, v in raw.items()}
    table = raw.get("data", {})
    mine = set(fields(cls))
    for key in list(table):
        if key in mine:
            raw.setdefault(data, {})[key] = table.pop(key)
        elif key in getattr(cls, "REFUSES", ()):
            value, origin = table.pop(key)
            if not origin.startswith("preset '"):
                raise ConfigError(f"{origin}: data.{key} does not apply to data set '{data}' (token sequences); "
                                  f"its own keys: {', '.join(f'data.{k}' for k in fields(cls))}")
    return raw


def assemble(layers: list[Raw], seed: int | None = None) -> Config:
    """A checked Config from raw layers (presets, files, --set; later ones win)."""
    recipe_name = C.value(C.merge(*layers), "train", "recipe", C.TrainConfig.recipe)
    recipe = _lookup(RECIPES, recipe_name, "train.recipe")
    owned, tags = _owners(_with_defaults(C.merge(*layers), layers, recipe_name, recipe), recipe_name, recipe)
    used = tuple(t for t in C.SHARED if t in recipe.tables)
    raw = C.merge(*(C.migrate(layer, tags, set(C.SHARED) - set(used)) for layer in layers))
    raw = _with_defaults(raw, layers, recipe_name, recipe)
    for table, values in raw.items():   # old-layout names given with --set: say where they went
        for key, (_, origin) in values.items():
            if f"{table}.{key}" in C.OLD_KEYS and origin.startswith("--set"):
                home = C.old_key_home(f"{table}.{key}", tags)
                raise ConfigError(f"{origin}: '{table}.{key}' is now "
                                  + (f"'{home}'" if home else f"an option of {', '.join(C.OLD_KEYS[f'{table}.{key}'])} "
                                     f"(not of this run: train.recipe={recipe_name})"))
    raw = _route_data_set_options(raw, owned)
    cfg = Config(owned={name: cls() for name, cls in owned.items()}, shared=used)
    others = _others(owned)
    for table, values in raw.items():
        origins = {k: o for k, (_, o) in values.items()}
        plain = {k: v for k, (v, _) in values.items()}
        given = [o for o in origins.values() if not o.startswith("preset '")] or list(origins.values())
        where = f"{given[0]}: "
        if table in C.SHARED and table in used:
            parse(C.SHARED[table], table, plain, origins, into=getattr(cfg, table))
        elif table in cfg.owned:   # (a data set's options are named as the [data] keys they are given as)
            cls = type(cfg.owned[table])
            parse(cls, getattr(cls, "TABLE", None) or table, plain, origins, into=cfg.owned[table])
        elif all(o.startswith("preset '") for o in origins.values()) and (table in C.SHARED or table in others):
            continue   # a preset's table for what another choice replaced (--set model.arch=dcgan on an MLP preset)
        elif table in C.SHARED:
            raise ConfigError(f"{where}[{table}] does not apply to train.recipe={recipe_name}; its tables: "
                              f"{', '.join(cfg.tables())}")
        elif table in others:
            what, _ = others[table]
            raise ConfigError(f"{where}[{table}] holds the options of {what} '{table}', which this run does not use "
                              f"(train.recipe={recipe_name}); its tables: {', '.join(cfg.tables())}")
        else:
            raise ConfigError(f"{where}unknown config table [{table}]; this run's tables: {', '.join(cfg.tables())}")
    if seed is not None:
        cfg.train.seed = seed
    validate(cfg, recipe)
    return cfg


G_TRICKS = ("feature_matching", "ortho")   # [loss] keys a recipe's G step must add itself (Recipe.g_tricks)


def validate(cfg: Config, recipe=None) -> None:
    """Every table's declared ranges and rules, the names that must exist in a registry, the recipe's rules."""
    recipe = recipe or _lookup(RECIPES, cfg.train.recipe, "train.recipe")
    for name, obj in cfg.tables().items():
        check(obj, getattr(type(obj), "TABLE", None) or name)
    if "loss" in cfg.shared:
        objective = _lookup(OBJECTIVES, cfg.loss.name, "loss.name")
        if objective.relativistic and not recipe.relativistic_ok:
            able = ", ".join(n for n, r in RECIPES.items() if r.relativistic_ok)
            raise ConfigError(f"loss.name={cfg.loss.name}: a relativistic objective needs D's scores of real data in "
                              f"G's step, which train.recipe={cfg.train.recipe} does not give; recipes that do: {able}")
        for key in G_TRICKS:
            if getattr(cfg.loss, key) > 0 and not recipe.g_tricks:
                able = ", ".join(n for n, r in RECIPES.items() if r.g_tricks)
                raise ConfigError(f"loss.{key}: applies to the noise-to-image recipes ({able}), not train.recipe="
                                  f"{cfg.train.recipe}; set loss.{key}=0")
    if "model" in cfg.shared and cfg.model.mbstd and recipe.architectures is not NETS:
        raise ConfigError(f"model.mbstd: the minibatch-std layer is in the noise-to-image discriminators (mlp, dcgan, "
                          f"resnet), not those of train.recipe={cfg.train.recipe}; set model.mbstd=0")
    for m in cfg.eval.metrics:
        _lookup(METRICS, m, "eval.metrics")
    if cfg.eval.best and not is_output_key(cfg.eval.best):
        raise ConfigError(f"eval.best: unknown value '{cfg.eval.best}'; valid: {', '.join(output_keys())}")
    recipe.check(cfg)


def _file_layer(config_file: str) -> Raw:
    path = Path(config_file)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"--config {config_file}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config {config_file}: not a text file") from None
    return C.read_toml(text, str(path))


def resolve(preset: str | None = None, config_file: str | None = None, overrides: list[str] = (),
            seed: int | None = None) -> Config:
    """A checked Config from a preset (the default preset when none is named), a TOML file and
    ``table.key=value`` strings, later ones winning."""
    name = preset or C.DEFAULT_PRESET
    layers = [C.read_toml(C.preset_text(name), f"preset '{name}'")]
    if config_file is not None:
        layers.append(_file_layer(config_file))
    layers.append(C.read_overrides(list(overrides)))
    return assemble(layers, seed)


def as_raw(cfg: Config, origin: str) -> Raw:
    return {t: {k: (v, origin) for k, v in values.items()} for t, values in cfg.to_dict().items()}


def override(cfg: Config, overrides: list[str] = (), seed: int | None = None, origin: str = "the run's config") -> Config:
    """``cfg`` with ``table.key=value`` strings (and ``--seed``) applied, checked again."""
    return assemble([as_raw(copy.deepcopy(cfg), origin), C.read_overrides(list(overrides))], seed)


def from_toml(text: str, origin: str) -> Config:
    """The Config of a saved ``config.toml`` (a run's, in the current or the old layout)."""
    return assemble([C.read_toml(text, origin)])


def for_data(cfg: Config, info: DataInfo) -> Config:
    """The run's configuration once its data is known. ``gan.condition=auto`` on data with class labels (class
    sub-folders) or condition vectors (``data.labels``) is ``train.recipe=cgan`` with its default conditioning
    and ``gan.reuse_fake``; the run's config.toml then says what ran, so sampling, evaluation and resume read it
    as any conditional run. Any other configuration is returned as it is."""
    if cfg.train.recipe != "gan" or cfg.table("gan").condition != "auto" or not (info.classes or info.cond_dim):
        return cfg
    origin = "gan.condition=auto"
    kept = RECIPES.get("cgan").tables   # [sample]: the conditional recipe draws G's samples directly
    raw = {t: v for t, v in as_raw(cfg, origin).items() if t not in C.SHARED or t in kept}
    gan = raw.pop("gan")
    raw["train"]["recipe"] = ("cgan", origin)
    raw["cgan"] = {"reuse_fake": gan["reuse_fake"]}
    return assemble([raw])


def describe(cfg: Config) -> str:
    """What ``--dry-run`` prints: the run's tables, then every other option table with its defaults,
    commented out."""
    lines = [C.to_toml(cfg).rstrip(), "",
             "# Not used by this run — the other tables, with their defaults:"]
    for table in C.SHARED:
        if table not in cfg.shared:
            lines += C.table_toml(table, C.as_dict(C.SHARED[table]()), prefix="# ")
    for name, (what, cls) in _others(cfg.owned).items():
        lines.append(f"# ({what} '{name}')")
        helps = help_of(cls)
        values = C.as_dict(cls())
        lines += [f"# [{name}]"] + [f"# {k} = {C._toml_value(v)}    # {helps[k]}" for k, v in values.items()] + [""]
    return "\n".join(lines).rstrip() + "\n"
