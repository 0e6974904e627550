"""gankit's trainer against a plain hand-written PyTorch loop, side by side in one process.

    python benchmarks/speed_vs_plain.py [--steps 40] [--rounds 5] [--threads N] [--cases 0 1 ...] [--set train.fast=true]

The same networks (built by gankit.nets from the same config, same initial weights), the same Adam
settings and the same in-memory data, trained for ``rounds`` x ``steps`` generator steps each,
interleaved round by round (gankit, plain, gankit, plain, ...) so both see the same machine state.

* gankit: ``Trainer.train_step`` as ``gankit train`` runs it — phases, the step-derived learning-rate
  schedule, stats reported into a Collector and flushed to a metrics.jsonl every ``train.log_every``
  steps, batches from ``Batches``, the loop's NaN/Inf guard (``--no-guard``: without it) — with EMA off (``train.ema=0``; the plain loop has none). Like the
  plain loop, gankit's G step trains on the D step's G(z) (``gan.reuse_fake``, the default);
  ``--set gan.reuse_fake=false`` draws new latents for it (one more G forward).
* plain: the loop of pytorch/examples ``dcgan/main.py`` — one D step on a real batch (label 1) and on
  G(z).detach() (label 0), then one G step on the *same* G(z) (label 1), BCE-with-logits, batches drawn
  by random indexing of the in-memory tensor (a faster data path than the example's DataLoader).

Cases: DCGAN on 28x28x1 and 32x32x3 images (scikit-learn's digits resized; the image content does not
change the cost) at batch 64 and 256, and the 2-D toy MLP GAN (grid25 preset's networks) at batch 256 and 1024.
Prints one markdown row per case: img/s of each and the ratio gankit / plain (median over rounds).
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gankit import nets
from gankit.assemble import resolve
from gankit.training.loop import Trainer
from gankit.training.guard import FiniteGuard
from gankit.training.stats import Collector, JsonlSink

DCGAN = ["model.arch=dcgan", "model.z_dim=100", "model.g_width=64", "model.d_width=64"]   # pytorch/examples: nz 100, ngf = ndf = 64
TOY = ["gan.reuse_fake=true"]   # the library's default (the grid25 preset pins a fresh z for its sample quality)
CASES = [
    ("DCGAN 28x28x1", "digits", DCGAN + ["data.size=28", "data.channels=1"], 64),
    ("DCGAN 28x28x1", "digits", DCGAN + ["data.size=28", "data.channels=1"], 256),
    ("DCGAN 32x32x3", "digits", DCGAN + ["data.size=32", "data.channels=3"], 64),
    ("DCGAN 32x32x3", "digits", DCGAN + ["data.size=32", "data.channels=3"], 256),
    ("toy MLP (grid25)", "grid25", TOY, 256),
    ("toy MLP (grid25)", "grid25", TOY, 1024),
]


class PlainLoop:
    """pytorch/examples dcgan/main.py, on the same networks and data."""

    def __init__(self, cfg, x: torch.Tensor, seed: int) -> None:
        torch.manual_seed(seed)
        self.G, self.D = nets.build(cfg.model, tuple(x.shape[1:]), options=cfg.owned.get(cfg.model.arch))
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr_g, betas=tuple(o.betas_g))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d, betas=tuple(o.betas_d))
        self.x, self.b, self.z_dim = x, cfg.data.batch_size, cfg.model.z_dim

    def step(self) -> None:
        real = self.x[torch.randint(0, len(self.x), (self.b,))]
        ones, zeros = torch.ones(self.b), torch.zeros(self.b)
        self.D.zero_grad()
        loss_real = F.binary_cross_entropy_with_logits(self.D(real), ones)
        fake = self.G(torch.randn(self.b, self.z_dim))
        loss_fake = F.binary_cross_entropy_with_logits(self.D(fake.detach()), zeros)
        (loss_real + loss_fake).backward()
        self.opt_d.step()
        self.G.zero_grad()
        F.binary_cross_entropy_with_logits(self.D(fake), ones).backward()
        self.opt_g.step()


def timed(f, n: int = 50) -> float:
    """Median microseconds of f() over 5 rounds of n calls, after 3 warm-up calls."""
    for _ in range(3):
        f()
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        rounds.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(rounds)


def real_data(trainer: Trainer, n: int = 4096) -> torch.Tensor:
    """n real samples of the trainer's data, as float tensors (for the plain loop's indexing)."""
    return torch.cat([next(trainer.batches)["x"] for _ in range(-(-n // trainer.cfg.data.batch_size))])[:n]


def time_rounds(cfg, steps: int, rounds: int, guard: bool = True) -> tuple[list[float], list[float]]:
    trainer = Trainer(cfg)
    plain = PlainLoop(cfg, real_data(trainer), cfg.train.seed)
    b = cfg.data.batch_size
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp, Collector([JsonlSink(Path(tmp) / "metrics.jsonl")]) as stats:
        check = FiniteGuard(trainer.recipe.optimizers, stats, lambda: trainer.step) if guard else None
        for _ in range(2):   # warm-up: allocator, oneDNN kernels
            trainer.train_step()
            plain.step()
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(steps):
                trainer.train_step()
                if check is not None:   # as the loop does: gradients before each update, losses after the step
                    check.check_losses()
                if trainer.step % cfg.train.log_every == 0:
                    stats.flush(trainer.step)
            ours.append(steps * b / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for _ in range(steps):
                plain.step()
            theirs.append(steps * b / (time.perf_counter() - t0))
    return ours, theirs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="train.threads (0: gankit's default)")
    ap.add_argument("--no-guard", action="store_true", help="gankit's side without the NaN/Inf guard of the loop")
    ap.add_argument("--set", action="append", default=[], help="extra table.key=value for gankit's side, e.g. "
                                                                "gan.reuse_fake=false")
    ap.add_argument("--cases", type=int, nargs="+", default=list(range(len(CASES))), help="which of CASES (0-5)")
    a = ap.parse_args()
    if a.threads:
        a.set.append(f"train.threads={a.threads}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.rounds} rounds x {a.steps} steps")
    print("| case | batch | gankit img/s | plain img/s | gankit / plain |")
    print("|---|---|---|---|---|")
    for name, preset, sets, batch in (CASES[c] for c in a.cases):
        cfg = resolve(preset, overrides=sets + [f"data.batch_size={batch}", "train.ema=0", "train.progress=false",
                                                "optim.decay=none", "sample.method=direct"] + a.set)
        ours, theirs = time_rounds(cfg, a.steps, a.rounds, guard=not a.no_guard)
        ratio = statistics.median(o / t for o, t in zip(ours, theirs))
        print(f"| {name} | {batch} | {statistics.median(ours):.0f} | {statistics.median(theirs):.0f} | "
              f"{ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
