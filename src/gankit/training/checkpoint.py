"""Checkpoints: safetensors for every tensor, JSON for everything else, never a pickle.

A checkpoint is a directory ``RUN/checkpoints/step_0001000/`` holding

    weights.safetensors   every network's state_dict, keys "G.<param>", "D.<param>", "G_ema.<param>"
    state.safetensors     optimiser tensors ("optim.G.state.0.exp_avg", ...) and RNG states ("rng.torch")
    state.json            step, optimiser hyper-parameters, data position, Python/NumPy RNG, extras
    config.toml           the resolved config

It is written into a hidden temporary directory which is then renamed into place (atomic on POSIX),
and ``RUN/checkpoints/latest`` names the newest complete one.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import GankitError

LATEST = "latest"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------ state to tensors+JSON

def _optimizer_state(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.state.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _load_optimizer_state(name: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                          meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}.state."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, field = key[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[field] = value
    for key, value in meta["scalars"].items():
        idx, field = key.split(".", 1)
        state.setdefault(int(idx), {})[field] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    # Per-parameter state (Adam's moments) in its parameter's memory layout, as the optimiser made it
    # (channels-last under train.fast): the update's rounding depends on the layout, exact resume on both.
    for p, s in opt.state.items():
        for field, v in s.items():
            if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                s[field] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, py_state, gauss_next = random.getstate()
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(cached)],
            "python": [version, list(py_state), gauss_next]}
    return tensors, meta


def _load_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, py_state, gauss_next = meta["python"]
    random.setstate((version, tuple(py_state), gauss_next))


# ------------------------------------------------------------------------------------ save and load

def step_name(step: int) -> str:
    return f"step_{step:07d}"


def save(ckpt_root: Path, step: int, nets: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
         config_toml: str, extra: dict[str, Any], keep: int = 2) -> Path:
    """Write checkpoint ``step`` under ``ckpt_root`` atomically; keep the newest ``keep`` checkpoints."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = step_name(step)
    final = ckpt_root / name
    tmp = ckpt_root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()

    weights = {f"{n}.{k}": v.detach().cpu().contiguous() for n, m in nets.items() for k, v in m.state_dict().items()}
    save_file(weights, str(tmp / "weights.safetensors"))

    state_tensors, opt_meta = {}, {}
    for n, opt in optimizers.items():
        t, opt_meta[n] = _optimizer_state(n, opt)
        state_tensors.update(t)
    rng_tensors, rng_meta = _rng_state()
    state_tensors.update(rng_tensors)
    save_file(state_tensors, str(tmp / "state.safetensors"))

    meta = {"step": step, "optimizers": opt_meta, "rng": rng_meta, **extra}
    (tmp / "state.json").write_text(json.dumps(meta, indent=1))
    (tmp / "config.toml").write_text(config_toml)

    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    _write_atomic(ckpt_root / LATEST, name + "\n")
    existing = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir())
    for old in existing[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def copy_as(ckpt: Path, dest: Path) -> None:
    """Copy a complete checkpoint directory to ``dest`` (e.g. checkpoints/best), atomically replacing it."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(ckpt, tmp)
    old = dest.with_name(f".{dest.name}.old")
    if dest.exists():
        os.rename(dest, old)
    os.rename(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def latest(ckpt_root: Path) -> Path | None:
    """The newest complete checkpoint directory under ``ckpt_root``, or None."""
    pointer = ckpt_root / LATEST
    if pointer.exists():
        path = ckpt_root / pointer.read_text().strip()
        if (path / "state.json").exists():
            return path
    complete = sorted(p for p in ckpt_root.glob("step_*") if (p / "state.json").exists())
    return complete[-1] if complete else None


def read_meta(ckpt: Path) -> dict[str, Any]:
    """state.json of a checkpoint (step, data position, data_info, extras)."""
    return json.loads((ckpt / "state.json").read_text())


def load_weights(ckpt: Path, nets: dict[str, nn.Module]) -> None:
    """Load each network's weights from ``ckpt/weights.safetensors``, strictly."""
    tensors = load_file(str(ckpt / "weights.safetensors"))
    for n, m in nets.items():
        prefix = f"{n}."
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            m.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise GankitError(f"checkpoint '{ckpt}': weights of '{n}' do not fit the configured network ({first})") from None


def load(ckpt: Path, nets: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, Any]:
    """Restore networks, optimisers and every RNG; return state.json (step, data position, extras)."""
    load_weights(ckpt, nets)
    tensors = load_file(str(ckpt / "state.safetensors"))
    meta = read_meta(ckpt)
    for n, opt in optimizers.items():
        _load_optimizer_state(n, opt, tensors, meta["optimizers"][n])
    _load_rng_state(tensors, meta["rng"])
    return meta
