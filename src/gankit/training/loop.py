"""The one training loop, shared by every recipe.

The recipe decides what a step does (its ``phases``); this loop does everything else: data, the
schedule, EMA, checkpoints and exact resume, stats, sample grids, time and step bounds — and, when
torchrun started several processes, data-parallel training (``distributed.py``; rank 0 writes the run).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from .. import config as config_mod
from .. import data
from ..assemble import for_data
from ..config import Config
from ..version import __version__
from ..errors import GankitError, NonFiniteError
from ..data.text import decode_all
from ..images import default_scale, save_grid, save_points_plot
from ..metrics.registry import lower_is_better
from ..recipes import RECIPES
from . import checkpoint, distributed, fast
from .device import ThreadGovernor, pick_device, pick_threads, seed_all
from .ema import attach_emas
from .evaluation import check_eval_metrics, eval_reference, evaluate_recipe
from .guard import FiniteGuard
from .schedule import lr_factor, set_lr_
from .stats import Collector, JsonlSink, TensorBoardSink

GRID_SEED_OFFSET = 7919  # the fixed grid latents come from their own generator, never the global RNG
EVAL_SEED_OFFSET = 104729  # so do the latents of periodic evaluations


class Trainer:
    """Builds everything a run needs from a Config, before anything is written to disk."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.set_threads()
        self.device = distributed.local_device(pick_device(cfg.train.device))
        self.world = distributed.init(self.device)   # one process unless torchrun started several
        data.check_shardable(cfg.data.batch_size, self.world.size)   # before loading any data
        self.source = data.load(cfg.data, cfg.owned.get(cfg.data.name))
        self.info = self.source.info
        self.notes: list[str] = []   # one-line reports run() logs first
        self.cfg = for_data(cfg, self.info)   # gan.condition=auto on labelled data: the conditional recipe
        if self.cfg is not cfg:
            i = self.info
            what = f"{len(i.classes)} classes" if i.classes else f"condition vectors of {i.cond_dim}"
            self.notes.append(f"gan.condition=auto: the data has {what}, so this run is train.recipe=cgan "
                              f"(gan.condition=none ignores them)")
            cfg = self.cfg
        seed_all(cfg.train.seed)
        self.recipe = RECIPES.get(cfg.train.recipe)(cfg, self.info, self.device)
        if cfg.train.sync_bn:
            for net in self.recipe.nets.values():
                distributed.sync_batchnorm(net, self.device)
        distributed.average_gradients(self.recipe.optimizers)
        self.bf16 = cfg.train.fast and fast.bf16_pays(self.recipe.nets, cfg.data.batch_size)   # autocast each phase
        if cfg.train.fast:
            fast.check_device(self.device)
            self.notes += fast.prepare_(self.recipe.nets, self.recipe.optimizers,
                                       points=self.bf16 and self.info.kind == "points",
                                       fuse=self.bf16 and self.device.type == "cpu")
        else:
            fast.foreach_(self.recipe.optimizers)
        self.emas = attach_emas(self.recipe, cfg.train.ema)
        if cfg.eval.every:  # refuse metrics that do not fit the data before anything is written
            check_eval_metrics(self.recipe, cfg, self.info.kind)
        self.batches = data.Batches(self.source, cfg.data.batch_size, cfg.train.seed, self.device,
                                    pair=self.recipe.degradation, by_class=self.recipe.batch_by_class,
                                    shard=(self.world.rank, self.world.size))
        self.step = 0
        self.data_seconds = 0.0          # wall time spent waiting for batches (logged as time/data_share)
        self.best: float | None = None   # best value of cfg.eval.best so far
        self.lr_scale = 1.0              # the learning rates' share of the configured ones after NaN rollbacks
        self._eval_ref = None            # the evaluation's Reference (translation recipes: its data sets), built at the first evaluation
        gen = torch.Generator().manual_seed(cfg.train.seed + GRID_SEED_OFFSET)
        self.grid_z = self.recipe.latents(cfg.train.grid, generator=gen)
        # conditions of the grid's samples (None for unconditional recipes): classes, vectors, image pairs
        self.grid_cond = self.recipe.fixed_conditions(self.source, cfg.train.grid, cfg.train.seed + GRID_SEED_OFFSET)

    # ----------------------------------------------------------------------------------- one step

    def train_step(self) -> None:
        """One generator step with everything scheduled around it."""
        o = self.cfg.optim
        if o.decay != "none":
            set_lr_(self.recipe.optimizers, lr_factor(self.step, self.cfg.train.steps, o.decay, o.decay_start))
        batch = None
        self.recipe.step = self.step
        for phase in self.recipe.phases:
            if not phase.runs_at(self.step):
                continue
            for _ in range(phase.repeat):
                if phase.fresh_batch or batch is None:
                    t0 = time.perf_counter()
                    batch = next(self.batches)
                    if self.cfg.train.fast:
                        batch = fast.batch_(batch)
                    self.data_seconds += time.perf_counter() - t0
                with fast.autocast(self.device, self.bf16):
                    phase.fn(batch)
        for ema in self.emas.values():
            ema.update(self.step)
        self.step += 1

    # ------------------------------------------------------------------------------- disk output

    def save_samples(self, path: Path, sinks: list = (), step: int = 0) -> None:
        """The fixed-z grid at ``path`` (token runs: its .txt), and to TensorBoard among ``sinks``."""
        self._write_samples(path)
        for sink in sinks:
            if isinstance(sink, TensorBoardSink):
                sink.samples(step, path)

    def _write_samples(self, path: Path) -> None:
        x = self.recipe.sample(self.grid_z, self.grid_cond)
        if self.info.kind == "tokens":   # one sequence a line; a translation beside its input
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = (self.recipe.grid_lines(x.cpu(), self.grid_cond) if self.recipe.conditioning == "sentences"
                     else decode_all(x.cpu(), self.info))
            path.with_suffix(".txt").write_text("".join(line + "\n" for line in lines))
        elif self.info.kind == "points":
            real, modes = None, None
            if isinstance(self.source, data.ToySource):  # the true distribution, drawn beside the samples
                real = self.source.distribution.sample(len(x), torch.Generator().manual_seed(1))[0]
                modes = getattr(self.source.distribution, "means", None)
            save_points_plot(x, path, real=real, title=f"step {self.step}", modes=modes)
        else:
            x, nrow = self.recipe.grid_images(x.cpu(), self.grid_cond)
            save_grid(x, path, nrow=nrow, scale=default_scale(self.info.shape[-1]))

    def evaluate(self) -> tuple[dict[str, float], list[str]]:
        """Metrics of cfg.eval on samples of the EMA generator vs the training data (translation recipes:
        ``metrics.translation`` on the held-out split), by ``training.evaluation``. Uses its own latent
        generator and never the global RNG, so an evaluating run resumes exactly."""
        if self._eval_ref is None:   # the reference (translation recipes: the data sets), built at the first evaluation
            self._eval_ref = eval_reference(self.recipe, self.source, self.cfg)
        return evaluate_recipe(self.recipe, self.source, self.cfg, self._eval_ref,
                               seed=self.cfg.train.seed + EVAL_SEED_OFFSET)

    def _maybe_keep_best(self, run: Path, values: dict[str, float], last_ckpt: Path | None,
                         log: Callable[[str], None]) -> Path | None:
        key = self.cfg.eval.best
        if not key:
            return last_ckpt
        if key not in values:
            raise GankitError(f"eval.best={key}: not among the evaluated values ({', '.join(values)})")
        v = values[key]
        better = self.best is None or (v < self.best if lower_is_better(key) else v > self.best)
        if not better:
            return last_ckpt
        self.best = v
        if last_ckpt is None or last_ckpt.name != checkpoint.step_name(self.step):
            last_ckpt = self.save_checkpoint(run)
        checkpoint.copy_as(last_ckpt, run / "checkpoints" / "best")
        log(f"new best {key}={v:.5g} at step {self.step}: {run / 'checkpoints' / 'best'}")
        return last_ckpt

    def save_checkpoint(self, run: Path) -> Path:
        extra = {"data": self.batches.state_dict(), "data_info": asdict(self.info), "best": self.best,
                 "lr_scale": self.lr_scale, "threads": torch.get_num_threads()}
        return checkpoint.save(run / "checkpoints", self.step, self.recipe.nets, self.recipe.optimizers,
                               config_mod.to_toml(self.cfg), extra, keep=self.cfg.train.keep)

    def restore(self, run: Path) -> Path | None:
        """Load the run's newest whole checkpoint; None when it has none yet (killed before its first)."""
        ckpt = checkpoint.latest(run / "checkpoints")
        if ckpt is None:
            return None
        saved_vocab = checkpoint.read_meta(ckpt)["data_info"].get("vocab", [])
        if saved_vocab != self.info.vocab:
            raise GankitError(f"--resume: the vocabulary built from the data ({len(self.info.vocab)} tokens) differs from "
                              f"the run's ({len(saved_vocab)} tokens); resume on the data the run was trained on")
        meta = checkpoint.load(ckpt, self.recipe.nets, self.recipe.optimizers)
        self.step = meta["step"]
        self.batches.load_state_dict(meta["data"])
        self.best = meta.get("best")
        self.lr_scale = meta.get("lr_scale", 1.0)
        if meta.get("threads") and meta["threads"] != torch.get_num_threads():
            self.set_threads(saved=meta["threads"])
        return ckpt

    def set_threads(self, saved: int | None = None) -> None:
        """PyTorch's CPU threads (``device.pick_threads``); ``saved``: the count the resumed run had. With
        train.threads=0 they follow the load during the run (``device.ThreadGovernor``)."""
        n, self.threads_why = pick_threads(self.cfg.train.threads, saved)
        torch.set_num_threads(n)
        self.governor = ThreadGovernor(self.cfg.train.threads == 0 and "OMP_NUM_THREADS" not in os.environ)

    def describe(self) -> str:
        """The run's first log line: the data loaded, the recipe, the device and its threads."""
        i = self.info
        device = str(self.device)
        if self.device.type == "cpu":
            n = torch.get_num_threads()
            device += f", {n} thread{'s' if n > 1 else ''} ({self.threads_why})"
        processes = f", {self.world.size} processes" if self.world.size > 1 else ""
        return (f"gankit {__version__}: {self.cfg.train.recipe} on {i.name} ({i.summary()}); "
                f"{device}{processes}; torch {torch.__version__}")

    def _schedule_change(self, ckpt: Path) -> str | None:
        """One line when a resume changes train.steps under a learning-rate decay: the decay is a function of
        train.steps, so the rate of the next step moves."""
        o, steps = self.cfg.optim, self.cfg.train.steps
        raw = config_mod.read_toml((ckpt / "config.toml").read_text(), str(ckpt / "config.toml"))
        saved = raw.get("train", {}).get("steps", (steps, None))[0]
        if o.decay == "none" or saved == steps:
            return None
        before = lr_factor(self.step, saved, o.decay, o.decay_start)
        after = lr_factor(self.step, steps, o.decay, o.decay_start)
        return (f"train.steps {saved} -> {steps} on resume: optim.decay={o.decay} now spans {steps} steps, so the "
                f"learning rates at step {self.step} go from {before:.3g}x to {after:.3g}x their base")

    def rollback(self, out: Path, error: NonFiniteError, rollbacks: int, log: Callable[[str], None]) -> None:
        """``train.on_nan=rollback``: reload the newest checkpoint and lower every learning rate."""
        t = self.cfg.train
        scale = self.lr_scale * t.nan_lr_factor
        ckpt = self.restore(out)   # its optimisers hold the rates scaled by its own lr_scale
        if ckpt is None:   # run() wrote one at the start; it can only be gone if removed by hand
            raise GankitError(f"{error}; no checkpoint to roll back to under {out / 'checkpoints'}")
        for opt in self.recipe.optimizers.values():
            for group in opt.param_groups:
                group["lr"] *= scale / self.lr_scale
                if "initial_lr" in group:   # the base a decay schedule scales
                    group["initial_lr"] *= scale / self.lr_scale
        self.lr_scale = scale
        log(f"{error}: rolled back to {ckpt.name}, learning rates x{scale:g} of the configured "
            f"(rollback {rollbacks} of at most {t.nan_rollbacks}): {self._rates()}")

    def _rates(self) -> str:
        return ", ".join(f"lr/{k}={v:.3g}" for k, v in self.learning_rates().items())

    def learning_rates(self) -> dict[str, float]:
        """Each optimiser's current learning rate (its first parameter group's), as logged: ``{"G": 2e-4, ...}``."""
        return {name: opt.param_groups[0]["lr"] for name, opt in self.recipe.optimizers.items()}

    # ------------------------------------------------------------------------------------ the run

    def run(self, out: Path, resume: bool = False, log: Callable[[str], None] | None = None) -> Path:
        """Train into run directory ``out`` until train.steps or train.max_seconds; return the last checkpoint
        (with several processes: only rank 0 writes, and logs)."""
        main = self.world.main
        if not main:
            log = lambda s: None  # noqa: E731
        elif log is None:
            log = lambda s: print(s, file=sys.stderr)  # noqa: E731
        ckpt = self.restore(out) if resume else None   # an unusable run is refused before anything is said
        log(self.describe())
        for note in self.notes:
            log(note)
        if resume and ckpt is None:
            log(f"--resume: {out} holds no checkpoint yet (stopped before its first): training from step 0")
            resume = False
        elif resume:
            log(f"resuming {out} from {ckpt.name} (step {self.step})")
            note = self._schedule_change(ckpt)
            if note:
                log(note)
        if not resume:
            self.recipe.begin(self.source)   # what a recipe makes from its whole training set (GLO's PCA)
        created = not out.exists()
        if main and not resume:
            _clear_unfinished(out)
        distributed.barrier()   # every rank has looked at the run directory before rank 0 writes to it
        try:
            sinks = []
            if main:
                out.mkdir(parents=True, exist_ok=True)
                checkpoint.write_text_atomic(out / "config.toml", config_mod.to_toml(self.cfg))
                checkpoint.write_text_atomic(out / "data.json", json.dumps(asdict(self.info), indent=1))
                sinks = [JsonlSink(out / "metrics.jsonl", resume_step=self.step if resume else None),
                         TensorBoardSink(out / "tb", resume_step=self.step if resume else None)]
            return self._loop(out, sinks, log)
        except BaseException:
            if main and created and not checkpoint.has_any(out / "checkpoints"):
                shutil.rmtree(out, ignore_errors=True)  # no half-written run directory
            raise

    def _loop(self, out: Path, sinks: list, log: Callable[[str], None]) -> Path:
        t = self.cfg.train
        main = self.world.main
        bar = _progress(t, self.step, show=main)
        start = time.perf_counter()
        last_t, last_step = start, self.step
        last_ckpt = None
        rollbacks = 0
        with Collector(sinks, reduce=distributed.mean_over_ranks) as stats, _StopAtStepBoundary() as interrupt, \
                FiniteGuard(self.recipe.optimizers, stats, lambda: self.step, distributed.any_rank) as guard:
            if main and t.on_nan == "rollback" and checkpoint.latest(out / "checkpoints") is None:
                last_ckpt = self.save_checkpoint(out)   # something to roll back to
            while self.step < t.steps:
                try:
                    self.train_step()
                    guard.check_losses()
                except NonFiniteError as e:   # nothing of the failed step was applied or written
                    rollbacks += 1
                    if t.on_nan != "rollback" or rollbacks > t.nan_rollbacks:
                        kept = checkpoint.latest(out / "checkpoints")
                        raise NonFiniteError(
                            f"{e}: stopped" + (f" after {t.nan_rollbacks} rollbacks" if rollbacks > 1 else "")
                            + (f"; the last good checkpoint is {kept}" if kept else "; no checkpoint was written yet")
                            + ("; train.on_nan=rollback would reload it with lower learning rates"
                               if kept and t.on_nan == "stop" else "")) from None
                    self.rollback(out, e, rollbacks, log)
                    stats.discard()
                    for sink in sinks:
                        sink.rewind(self.step)
                        sink.write(self.step, {"train/rollbacks": rollbacks})
                    last_t, last_step, last_ckpt = time.perf_counter(), self.step, None
                    continue
                if distributed.any_rank(interrupt.requested):  # Ctrl-C, SIGTERM: finish the step, keep it, let `--resume` continue
                    if main:
                        log(f"{interrupt.name}: interrupted at step {self.step}: checkpoint {self.save_checkpoint(out)}")
                    raise Interrupted(interrupt.signum)
                s = self.step
                timed_out = t.max_seconds > 0 and time.perf_counter() - start >= t.max_seconds
                if t.max_seconds > 0:   # every rank stops at the same step
                    timed_out = distributed.any_rank(timed_out)
                if s % t.log_every == 0 or s == t.steps or timed_out:
                    now = time.perf_counter()
                    it_s = (s - last_step) / max(now - last_t, 1e-9)
                    timing = {"time/step_ms": 1000.0 / it_s, "time/it_per_s": it_s,
                              "time/data_share": self.data_seconds / max(now - last_t, 1e-9),
                              "time/threads": torch.get_num_threads(),
                              **{f"lr/{k}": v for k, v in self.learning_rates().items()}}
                    self.data_seconds = 0.0
                    values = stats.flush(s, timing)
                    last_t, last_step = now, s
                    bar.show(s, values)
                    change = self.governor.adjust() if self.device.type == "cpu" else None
                    if change:
                        log(f"step {s}: {change}")
                if main and s % t.sample_every == 0:   # rank 0 alone writes samples, checkpoints, evaluations
                    self.save_samples(out / "samples" / f"step_{s:07d}.png", sinks, s)
                if main and s % t.ckpt_every == 0:
                    last_ckpt = self.save_checkpoint(out)
                if main and self.cfg.eval.every and s % self.cfg.eval.every == 0:
                    values, _ = self.evaluate()
                    for sink in sinks:
                        sink.write(s, {f"eval/{k}": v for k, v in values.items()})
                    last_ckpt = self._maybe_keep_best(out, values, last_ckpt, log)
                if timed_out:
                    log(f"train.max_seconds={t.max_seconds:g} reached at step {s}")
                    break
        bar.close()
        self.batches.close()
        if main:
            if last_ckpt is None or last_ckpt.name != checkpoint.step_name(self.step):
                last_ckpt = self.save_checkpoint(out)
            self.save_samples(out / "samples" / "final.png")
        distributed.barrier()   # the run is complete on disk when any rank returns
        if not main:
            last_ckpt = checkpoint.latest(out / "checkpoints")
        final = out / "samples" / ("final.txt" if self.info.kind == "tokens" else "final.png")
        log(f"done: step {self.step}; checkpoint {last_ckpt}; samples {final}")
        return last_ckpt


def _clear_unfinished(out: Path) -> None:
    """Before a run starts from step 0 in ``out``: remove what a run stopped before its first checkpoint left
    (its logs, events, grids), so the directory reads as one run. Only in a run directory (a run writes its
    config.toml first); nothing else in ``out`` is touched."""
    if checkpoint.has_any(out / "checkpoints"):
        raise GankitError(f"{out}: already holds a run's checkpoints; resume it or choose another directory")
    if not (out / "config.toml").is_file():
        return
    for name in ("config.toml", "data.json", "metrics.jsonl"):
        (out / name).unlink(missing_ok=True)
    for name in ("tb", "samples", "checkpoints"):
        shutil.rmtree(out / name, ignore_errors=True)


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal; the command exits with 128 + ``signum`` (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class _StopAtStepBoundary:
    """While active, the first SIGINT (Ctrl-C) or SIGTERM (what schedulers send) only sets ``requested`` (the
    loop then checkpoints the finished step and stops); a second one interrupts at once — checkpoints are
    written atomically, so that leaves the newest complete one. Only in the main thread."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> "_StopAtStepBoundary":
        self.requested = False
        self.signum = signal.SIGINT
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise Interrupted(signum)
        self.requested, self.signum = True, signum

    def __exit__(self, *exc: object) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)


class _progress:
    """A tqdm bar on a terminal; otherwise a plain line every tenth of the run."""

    def __init__(self, t, initial: int, show: bool = True) -> None:
        self.total = t.steps
        self.quiet = not show
        self.tty = show and t.progress and sys.stderr.isatty()
        self.bar = None
        self.next_line = initial
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=t.steps, initial=initial, unit="step", dynamic_ncols=True)

    def show(self, step: int, values: dict[str, float]) -> None:
        if self.quiet:
            return
        short = {k.split("/")[-1] if k.startswith("loss/") else k: v for k, v in values.items()
                 if k.startswith("loss/")}
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in short.items()}, refresh=False)
        elif step >= self.next_line:
            self.next_line = step + max(1, self.total // 10)
            losses = " ".join(f"{k}={v:.3f}" for k, v in short.items())
            print(f"step {step}/{self.total} {losses} {values.get('time/it_per_s', math.nan):.1f} it/s",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
