"""Open a finished (or running) run directory for sampling, interpolation and evaluation."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .assemble import from_toml, override
from .config import Config
from .data import DataInfo
from .errors import GankitError
from .recipes import RECIPES, Recipe, draw_samples
from .training import checkpoint
from .training.device import pick_device
from .training.ema import attach_emas


@dataclass
class LoadedRun:
    cfg: Config
    info: DataInfo
    recipe: Recipe          # the recipe, networks loaded; recipe.sample(z) draws from it
    checkpoint: Path


def class_index(loaded: LoadedRun, name: str) -> int:
    """The index of class ``name`` (a class name or an index) of a class-conditional run."""
    classes = loaded.recipe.classes
    if loaded.recipe.conditioning != "class":
        raise GankitError("--class: this run is not class-conditional (train it with train.recipe=cgan on labelled data)")
    if name in classes:
        return classes.index(name)
    if name.isdigit() and int(name) < len(classes):
        return int(name)
    indices = "" if classes == [str(i) for i in range(len(classes))] else f" (or 0..{len(classes) - 1})"
    raise GankitError(f"--class {name}: not a class of this run; valid: {', '.join(classes)}{indices}")


def run_checkpoint(spec: str | Path) -> Path | None:
    """The checkpoint a run directory stands for — its newest complete one — or ``spec`` itself when it is
    a checkpoint directory (``RUN/checkpoints/step_0005000``); None when it is neither. A damaged newest
    checkpoint is skipped with a warning; a damaged one given by name, or none usable, is a GankitError."""
    spec = Path(spec)
    if (spec / "state.json").exists() and (spec / "config.toml").exists():
        why = checkpoint.problem(spec)
        if why is not None:
            raise GankitError(f"checkpoint '{spec}' is unusable: {why}")
        return spec
    return checkpoint.latest(spec / "checkpoints") if (spec / "checkpoints").is_dir() else None


MODEL_CONFIG, MODEL_WEIGHTS = "config.json", "model.safetensors"   # a model folder (gankit export)
HUB_FILES = [MODEL_CONFIG, MODEL_WEIGHTS, "README.md", "samples.png"]
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_model_folder(path: Path) -> bool:
    return (path / MODEL_CONFIG).is_file() and (path / MODEL_WEIGHTS).is_file()


def fetch_from_hub(repo_id: str) -> Path:
    """The local folder of Hugging Face Hub model ``repo_id`` (downloaded, or from the Hub's cache)."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError
    except ImportError:   # pragma: no cover - a dependency of gankit
        raise GankitError(f"'{repo_id}': loading from the Hub needs huggingface_hub (pip install huggingface_hub)") from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_FILES))
    except LocalEntryNotFoundError:
        raise GankitError(f"'{repo_id}' is no local folder, and the Hugging Face Hub cannot be reached to fetch it "
                          f"(offline?); download the model folder where there is a network and give its path") from None
    except RepositoryNotFoundError:
        raise GankitError(f"'{repo_id}' is no local folder, nor a model repository on the Hugging Face Hub "
                          f"(or it is private: log in with `hf auth login`)") from None


MODEL_KEYS = ("library_name", "config_toml", "data_info", "nets")


def model_meta(folder: Path) -> dict:
    """The config.json of a model folder, checked: a GankitError naming the file when it is not a gankit model's."""
    path = folder / MODEL_CONFIG
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GankitError(f"'{path}': not readable JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("library_name") != "gankit":
        raise GankitError(f"'{folder}': its {MODEL_CONFIG} is not a gankit model's (no library_name = gankit)")
    missing = [k for k in MODEL_KEYS if k not in meta]
    if missing:
        raise GankitError(f"'{path}': lacks {', '.join(missing)}; re-export the run with gankit export")
    return meta


def saved_config(spec: str | Path) -> tuple[Config, dict] | None:
    """(config, the data's description as saved) of a run directory, a checkpoint directory or a model folder,
    read without building anything; None when ``spec`` is none of them."""
    spec = Path(spec)
    if spec.is_dir() and is_model_folder(spec):
        meta = model_meta(spec)
        return from_toml(meta["config_toml"], str(spec / MODEL_CONFIG)), meta["data_info"]
    ckpt = run_checkpoint(spec)
    if ckpt is None:
        return None
    cfg = from_toml((ckpt / "config.toml").read_text(), str(ckpt / "config.toml"))
    return cfg, checkpoint.read_meta(ckpt)["data_info"]


def open_model_folder(folder: Path, device: str = "cpu") -> LoadedRun:
    """A model folder written by ``gankit export``: config.json (the run's config, its data's description, the
    nets kept) and model.safetensors (those nets; the EMA average where the run kept one)."""
    meta = model_meta(folder)
    cfg = from_toml(meta["config_toml"], str(folder / MODEL_CONFIG))
    info = DataInfo.from_dict(meta["data_info"])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        recipe = RECIPES.get(cfg.train.recipe)(cfg, info, pick_device(device))
    nets = {name: recipe.nets[name] for name in meta["nets"] if name in recipe.nets}
    missing = sorted(set(meta["nets"]) - set(nets))
    if missing:
        raise GankitError(f"'{folder}': nets {', '.join(missing)} are not parts of a {cfg.train.recipe} model")
    checkpoint.load_weights(folder, nets, MODEL_WEIGHTS)
    return LoadedRun(cfg, info, recipe, folder)


def open_run(run: str | Path, device: str = "cpu", sampler: str | None = None) -> LoadedRun:
    """Rebuild a run's recipe from its newest checkpoint (config and weights), or from the checkpoint
    directory given, without loading data. ``sampler`` overrides the run's sample.method (direct | drs).
    ``run`` may also be a model folder (``gankit export``) or, when no such local folder exists, the id
    ``owner/name`` of one on the Hugging Face Hub."""
    spec = str(run)
    run = Path(run)
    if not run.exists() and REPO_ID.fullmatch(spec):
        run = fetch_from_hub(spec)
    if not run.is_dir():
        raise GankitError(f"run directory '{run}' does not exist")
    if is_model_folder(run):
        if sampler is not None:
            raise GankitError("--sampler: a model folder samples as it was exported (its config's sample.method)")
        return open_model_folder(run, device)
    ckpt = run_checkpoint(run)
    if ckpt is None:
        raise GankitError(f"'{run}' holds no checkpoint (expected {run}/checkpoints/step_*/); is it a gankit run directory?")
    cfg = from_toml((ckpt / "config.toml").read_text(), str(ckpt / "config.toml"))   # an old layout is migrated
    if sampler is not None:
        if "sample" not in cfg.shared:
            raise GankitError(f"--sampler: only for runs of the gan recipe (this run: {cfg.train.recipe})")
        cfg = override(cfg, [f"sample.method={sampler}"])
    meta = json.loads((ckpt / "state.json").read_text())
    info = DataInfo.from_dict(meta["data_info"])
    with torch.random.fork_rng():  # construction draws initial weights (overwritten below): leave the caller's RNG alone
        torch.manual_seed(0)
        recipe = RECIPES.get(cfg.train.recipe)(cfg, info, pick_device(device))
        attach_emas(recipe, cfg.train.ema)
    checkpoint.load_weights(ckpt, recipe.nets)
    return LoadedRun(cfg, info, recipe, ckpt)


def check_truncation(loaded: LoadedRun, truncation: float | None) -> None:
    """--truncation psi: positive, and only for runs whose latents are normal draws decoded directly."""
    if truncation is None:
        return
    if not truncation > 0:
        raise GankitError(f"--truncation: must be positive (the bound psi of |z|, e.g. 0.5 to 1.5), got {truncation}")
    if loaded.info.kind == "tokens":
        raise GankitError("--truncation: token runs draw uniforms, not normal latents; use --temperature")
    if loaded.recipe.rejection:
        raise GankitError("--truncation: this run samples by discriminator rejection; add --sampler direct")


def draw(loaded: LoadedRun, n: int, seed: int = 0, ema: bool = True, batch: int = 500,
         labels: torch.Tensor | None = None, truncation: float | None = None) -> torch.Tensor:
    """n samples (n, *shape) on the CPU, from latents drawn with their own generator seeded ``seed``;
    ``labels``: the conditions of a conditional run (default: its classes in turn); ``truncation``: psi of
    the truncation trick (``recipes.base.truncate_``)."""
    check_truncation(loaded, truncation)
    out = draw_samples(loaded.recipe, n, seed, ema=ema, batch=batch, labels=labels, truncation=truncation)
    return torch.cat(out) if out else torch.empty(0, *loaded.info.shape)
