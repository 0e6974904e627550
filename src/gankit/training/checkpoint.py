"""Checkpoints: safetensors for every tensor, JSON for everything else, never a pickle.

A checkpoint is a directory ``RUN/checkpoints/step_0001000/`` holding

    weights.safetensors   every network's state_dict, keys "G.<param>", "D.<param>", "G_ema.<param>"
    state.safetensors     optimiser tensors ("optim.G.state.0.exp_avg", ...) and RNG states ("rng.torch")
    state.json            step, optimiser hyper-parameters, data position, Python/NumPy RNG, extras
    config.toml           the resolved config

It is written into a hidden temporary directory, its files flushed to disk, then renamed into place
(atomic on POSIX), and ``RUN/checkpoints/latest`` names the newest complete one. ``state.json``, written
last, records each file's size and SHA-256, so a checkpoint truncated or damaged later (a full disk, a bad
copy) is recognised: readers take the newest checkpoint that verifies and say which one they skipped.
Old checkpoints are renamed aside before they are deleted, so a kill at any moment leaves only complete
checkpoints under their ``step_*`` names. Weights that are not finite are never written.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import GankitError, NonFiniteError

LATEST = "latest"
FILES = ("weights.safetensors", "state.safetensors", "config.toml")   # verified by state.json's "files"


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``path`` so that a reader (or a process killed midway) sees the old file or the new one, whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_warned: set[str] = set()


def warn(message: str) -> None:
    """One line on stderr, once per process (a command may look up a run's checkpoint several times)."""
    if message not in _warned:
        _warned.add(message)
        print(f"gankit: warning: {message}", file=sys.stderr, flush=True)


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


def non_finite(nets: dict[str, nn.Module]) -> list[str]:
    """Names of the networks holding a NaN or an Inf in a floating-point parameter or buffer."""
    bad = []
    for n, m in nets.items():
        tensors = [t.detach() for t in m.state_dict().values() if t.is_floating_point()]
        if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
            bad.append(n)
    return bad


def _clean(ckpt_root: Path) -> None:
    """Remove what an interrupted save or clean-up left: hidden temporary and trashed directories."""
    for leftover in ckpt_root.glob(".step_*"):
        shutil.rmtree(leftover, ignore_errors=True)


def weights_of(nets: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Every net's state as one flat dict, each key prefixed by the net's name (``G.main.0.weight``)."""
    return {f"{n}.{k}": v.detach().cpu().contiguous() for n, m in nets.items() for k, v in m.state_dict().items()}


def save(ckpt_root: Path, step: int, nets: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
         config_toml: str, extra: dict[str, Any], keep: int = 2) -> Path:
    """Write checkpoint ``step`` under ``ckpt_root`` atomically; keep the newest ``keep`` checkpoints.
    Refuses (``NonFiniteError``) networks holding NaN or Inf."""
    bad = non_finite(nets)
    if bad:
        raise NonFiniteError(f"not writing checkpoint {step_name(step)}: non-finite weights in {', '.join(bad)}")
    ckpt_root.mkdir(parents=True, exist_ok=True)
    _clean(ckpt_root)
    name = step_name(step)
    final = ckpt_root / name
    tmp = ckpt_root / f".{name}.tmp"
    tmp.mkdir()
    try:
        save_file(weights_of(nets), str(tmp / "weights.safetensors"))

        state_tensors, opt_meta = {}, {}
        for n, opt in optimizers.items():
            t, opt_meta[n] = _optimizer_state(n, opt)
            state_tensors.update(t)
        rng_tensors, rng_meta = _rng_state()
        state_tensors.update(rng_tensors)
        save_file(state_tensors, str(tmp / "state.safetensors"))
        (tmp / "config.toml").write_text(config_toml)
        files = {}
        for f in FILES:
            _fsync(tmp / f)
            files[f] = {"bytes": (tmp / f).stat().st_size, "sha256": _digest(tmp / f)}
        meta = {"step": step, "optimizers": opt_meta, "rng": rng_meta, **extra, "files": files}
        write_text_atomic(tmp / "state.json", json.dumps(meta, indent=1))
    except OSError as e:   # a full disk, a vanished directory: leave no partial checkpoint behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise GankitError(f"could not write checkpoint {final}: {e.strerror or e}") from None

    if final.exists():   # the same step again (a resumed run re-saving): move the old one aside first
        os.rename(final, ckpt_root / f".{name}.old")
    os.rename(tmp, final)
    _fsync(ckpt_root)
    write_text_atomic(ckpt_root / LATEST, name + "\n")
    existing = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir())
    # beyond `keep`, and any newer than this one: left by a timeline the run went back from (a resume past an
    # unusable checkpoint, a NaN rollback)
    older = [p for p in existing if p.name < name]
    for old in older[:max(len(older) - keep + 1, 0)] + [p for p in existing if p.name > name]:
        trash = ckpt_root / f".{old.name}.trash"   # renamed aside first: a kill during the deletion leaves no
        os.rename(old, trash)                      # half checkpoint under a step_* name
        shutil.rmtree(trash, ignore_errors=True)
    _clean(ckpt_root)
    return final


def copy_as(ckpt: Path, dest: Path) -> None:
    """Copy a complete checkpoint directory to ``dest`` (e.g. checkpoints/best), atomically replacing it."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    old = dest.with_name(f".{dest.name}.old")
    if old.exists() and not dest.exists():   # a kill between the two renames below: the old one is still whole
        os.rename(old, dest)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(ckpt, tmp)
    if dest.exists():
        os.rename(dest, old)
    os.rename(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def has_any(ckpt_root: Path) -> bool:
    """Does ``ckpt_root`` hold a checkpoint (whole or not)? A run that does is continued, not overwritten."""
    return ckpt_root.is_dir() and any(p.is_dir() for p in ckpt_root.glob("step_*"))


_verdicts: dict[tuple, str | None] = {}   # a command looks a run's checkpoint up several times: hash its files once


def problem(ckpt: Path) -> str | None:
    """Why checkpoint ``ckpt`` cannot be used (a missing, truncated or altered file), or None when it is whole.
    Checkpoints written before sizes and digests were recorded are checked for readable headers only.
    Remembered for the files as they are (path, size and modification time of each)."""
    key = (str(Path(ckpt).resolve()),) + tuple(_stamp(ckpt / f) for f in FILES + ("state.json",))
    if key not in _verdicts:
        _verdicts[key] = _problem(ckpt)
    return _verdicts[key]


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _problem(ckpt: Path) -> str | None:
    try:
        meta = json.loads((ckpt / "state.json").read_text())
    except FileNotFoundError:
        return "state.json is missing"
    except (OSError, ValueError) as e:
        return f"state.json is unreadable ({type(e).__name__})"
    if not isinstance(meta, dict) or not isinstance(meta.get("step"), int):
        return "state.json holds no step"
    files = meta.get("files")
    for f in FILES:
        path = ckpt / f
        if not path.is_file():
            return f"{f} is missing"
        if isinstance(files, dict) and f in files:
            size = path.stat().st_size
            if size != files[f].get("bytes"):
                return f"{f} has {size} bytes, {files[f].get('bytes')} were written"
            if _digest(path) != files[f].get("sha256"):
                return f"{f} differs from what was written (SHA-256)"
        elif f.endswith(".safetensors"):
            try:
                with safe_open(str(path), framework="pt"):
                    pass
            except Exception as e:   # noqa: BLE001 — safetensors raises its own error types
                return f"{f} is unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    return None


def latest(ckpt_root: Path, warn: Callable[[str], None] = warn) -> Path | None:
    """The newest whole checkpoint under ``ckpt_root`` (the one ``latest`` names first), or None when there
    is none at all. A newer one that fails ``problem`` is skipped with one ``warn`` line naming it; when
    checkpoints exist but none is usable, a GankitError says so."""
    candidates = sorted((p for p in ckpt_root.glob("step_*") if p.is_dir()), reverse=True)
    pointer = ckpt_root / LATEST
    try:
        named = ckpt_root / pointer.read_text().strip() if pointer.is_file() else None
    except (OSError, UnicodeDecodeError):
        named = None
    if named is not None and named in candidates:
        candidates.remove(named)
        candidates.insert(0, named)
    skipped = []
    for ckpt in candidates:
        why = problem(ckpt)
        if why is None:
            for bad, reason in skipped:
                warn(f"checkpoint {bad} is unusable ({reason}); using {ckpt.name}")
            return ckpt
        skipped.append((ckpt, why))
    if skipped:
        bad, reason = skipped[0]
        raise GankitError(f"no usable checkpoint under '{ckpt_root}': {bad.name}: {reason}"
                          + (f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""))
    return None


def read_meta(ckpt: Path) -> dict[str, Any]:
    """state.json of a checkpoint (step, data position, data_info, extras)."""
    return json.loads((ckpt / "state.json").read_text())


def load_weights(ckpt: Path, nets: dict[str, nn.Module], file: str = "weights.safetensors") -> None:
    """Load each network's weights from ``ckpt/file`` (its keys prefixed by the net's name), strictly."""
    try:
        tensors = load_file(str(ckpt / file))
    except (OSError, SafetensorError) as e:
        raise GankitError(f"'{ckpt / file}': not a readable safetensors file ({e})") from None
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
