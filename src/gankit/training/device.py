"""The device a run trains on, its CPU threads, and seeding every RNG a run draws from."""
from __future__ import annotations

import functools
import math
import os
import random
import time

import numpy as np
import torch

from ..errors import GankitError


def pick_device(name: str) -> torch.device:
    """train.device: auto (CUDA when available, else the CPU), cpu, cuda, cuda:N or mps."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GankitError(f"train.device={name}: CUDA is not available here; valid: auto, cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise GankitError("train.device=mps: MPS is not available here; valid: auto, cpu")
    return torch.device(name)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


MOST_THREADS = torch.get_num_threads()   # PyTorch's own choice (one per physical core), before any change


def _cpu_seconds() -> tuple[float, float]:
    """(CPU seconds every process has used, CPU seconds this process has used), from Linux's /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    own = os.times()
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK"), own.user + own.system


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@functools.lru_cache(maxsize=1)
def busy_elsewhere(seconds: float = 0.2) -> float:
    """Cores' worth of CPU time that other processes used over ``seconds`` (read once per process; 0.0
    where /proc/stat is missing)."""
    try:
        (all0, own0), t0 = _cpu_seconds(), time.perf_counter()
        time.sleep(seconds)
        (all1, own1), t1 = _cpu_seconds(), time.perf_counter()
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, (all1 - all0) - (own1 - own0)) / (t1 - t0)


def pick_threads(requested: int, saved: int | None = None) -> tuple[int, str]:
    """(CPU threads for PyTorch's intra-op pool, why). ``requested`` > 0 (train.threads) wins; then the count a
    resumed run had (the results of some kernels depend on it); then an OMP_NUM_THREADS the environment set
    (torchrun sets 1); else one per core not busy with other processes."""
    if requested > 0:
        return requested, "train.threads"
    if saved:
        return saved, "as when the run stopped"
    if "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads(), "OMP_NUM_THREADS"
    other = busy_elsewhere()
    return _share(other), f"{other:.1f} of {_cores()} cores busy elsewhere"


def _share(other: float) -> int:
    """Threads for the cores ``other`` processes leave: a core counts as taken once they use over 3/4 of it
    (a script polling a run, a shell, do not take a thread away)."""
    return max(1, min(MOST_THREADS, math.floor(_cores() - other + 0.75)))


class ThreadGovernor:
    """``train.threads=0`` on the CPU: follow the cores other processes leave free. Two OpenMP teams on the
    same cores wait on each other's descheduled threads — a run sharing 2 cores with one other busy process
    slows down far more than the half it loses (``benchmarks/shared_cores.py``) — so at each log interval the
    other processes' CPU use since the last one sets the thread count: fewer when they are busy, back up
    when they stop. ``adjust`` returns a line to log when the count changes."""

    def __init__(self, active: bool) -> None:
        self.active = active and os.path.exists("/proc/stat")
        self._last = self._sample() if self.active else None

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        return (*_cpu_seconds(), time.perf_counter())

    def adjust(self) -> str | None:
        if not self.active:
            return None
        now = self._sample()
        all0, own0, t0 = self._last
        if now[2] - t0 < 0.2:   # too short to tell: measure over this interval and the next ones together
            return None
        self._last = now
        other = max(0.0, (now[0] - all0) - (now[1] - own0)) / (now[2] - t0)
        n, want = torch.get_num_threads(), _share(other)
        # hysteresis: fewer threads as soon as others take a core, more only once they leave it
        if want < n or (want > n and other < 0.25 * _cores()):
            torch.set_num_threads(want)
            return f"threads {n} -> {want}: {other:.1f} of {_cores()} cores busy elsewhere"
        return None
