"""``Batches``: an endless stream of training batches that is a pure function of (seed, batches drawn).

Finite sets walk through one permutation per epoch,
``torch.randperm(N, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))``,
concatenated without gaps: batch i holds positions i*B .. i*B+B-1 of that endless sequence, so a
batch that crosses the end of an epoch wraps into the next one (no sample is ever dropped, and sets
smaller than one batch work). Toy batch i is drawn with a generator seeded from (seed, i).
Resuming therefore needs only the batch count and never replays anything; the global torch RNG is
never touched.
"""
from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from ..errors import ConfigError, DataError, GankitError
from .base import Source, StreamSource, TensorSource, ToySource, to_float
from .paired import check_task, degrade

_MASK = (1 << 64) - 1
PAIR_SALT = 0x9A1D   # separates the degradation stream of paired.task from the toy stream


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the permutation used for ``epoch`` of a finite set."""
    return seed * 1_000_003 + epoch


def _splitmix(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def toy_seed(seed: int, batch: int) -> int:
    """Seed (63 bits) of the generator that draws toy batch number ``batch``."""
    return _splitmix(_splitmix(seed & _MASK) ^ batch) >> 1


class Order:
    """Sample indices of batch i for a finite set of n samples: a pure function of (seed, i)."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._perms: dict[int, torch.Tensor] = {}

    def permutation(self, epoch: int) -> torch.Tensor:
        """int64 (n,): the order of epoch ``epoch``."""
        perm = self._perms.get(epoch)
        if perm is None:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
            perm = torch.randperm(self.n, generator=g)
            if len(self._perms) >= 4:  # keep the few epochs a batch can touch
                self._perms.pop(min(self._perms))
            self._perms[epoch] = perm
        return perm

    def indices(self, batch: int) -> torch.Tensor:
        """int64 (batch_size,): the samples of batch number ``batch``."""
        start = batch * self.batch_size
        stop = start + self.batch_size
        parts = []
        while start < stop:
            epoch, offset = divmod(start, self.n)
            take = min(stop - start, self.n - offset)
            parts.append(self.permutation(epoch)[offset:offset + take])
            start += take
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class ClassOrder:
    """Class-balanced batches (``by_class``): batch i holds batch i of every class's own ``Order`` over
    that class's samples, classes in turn — K x batch_size indices, class 0 first. Each class has its
    own epochs, so a small class repeats while a large one is still being walked through (CycleGAN's
    two unaligned domains; StarGAN's domains)."""

    def __init__(self, labels: torch.Tensor, classes: list[str], batch_size: int, seed: int) -> None:
        self.members = [torch.nonzero(labels == k).flatten() for k in range(len(classes))]
        for name, m in zip(classes, self.members):
            if len(m) == 0:
                raise DataError(f"class-balanced batches: class '{name}' has no samples")
        self.orders = [Order(len(m), batch_size, seed * 1_000_003 + 7 * k + 1) for k, m in enumerate(self.members)]
        self.n = len(labels)
        self.batch_size = batch_size * len(classes)

    def indices(self, batch: int) -> torch.Tensor:
        return torch.cat([m[o.indices(batch)] for m, o in zip(self.members, self.orders)])


def rank_rows(n: int, rank: int, size: int) -> slice:
    """The rows of a batch of n that rank ``rank`` of ``size`` training processes keeps."""
    per = n // size
    return slice(rank * per, (rank + 1) * per)


class Shard:
    """One rank's part of every batch of ``order`` (several training processes): rows
    rank·B/size .. (rank+1)·B/size of each batch, per class for a ``ClassOrder``. ``n`` and
    ``batch_size`` stay the global ones, so epochs and the stream position mean the same at any world size."""

    def __init__(self, order: "Order | ClassOrder", rank: int, size: int) -> None:
        self.order, self.rank, self.size = order, rank, size
        self.groups = len(order.orders) if isinstance(order, ClassOrder) else 1
        self.n, self.batch_size = order.n, order.batch_size

    def indices(self, batch: int) -> torch.Tensor:
        grouped = self.order.indices(batch).view(self.groups, -1)
        return grouped[:, rank_rows(grouped.shape[1], self.rank, self.size)].flatten()


class _BatchSampler(Sampler[list[int]]):
    """Endless batch sampler for a DataLoader, starting at batch ``start``."""

    def __init__(self, order: "Order | ClassOrder | Shard", start: int) -> None:
        self.order, self.start = order, start

    def __iter__(self) -> Iterator[list[int]]:
        i = self.start
        while True:
            yield self.order.indices(i).tolist()
            i += 1


def _one_line(e: GankitError) -> GankitError:
    """A gankit error raised in a DataLoader worker comes back with a traceback; keep its last line."""
    text = str(e).strip().splitlines()
    if len(text) <= 1:
        return e
    last = text[-1]
    prefix = f"{type(e).__module__}.{type(e).__name__}: "
    if last.startswith(prefix):
        last = last[len(prefix):]
    return type(e)(last)


def check_shardable(batch_size: int, processes: int) -> None:
    """The global batch must split evenly among the training processes (torchrun)."""
    if batch_size % processes:
        raise ConfigError(f"data.batch_size={batch_size}: the global batch must divide among the {processes} "
                          f"processes; use a multiple of {processes}")


class Batches:
    """Endless, exactly-resumable batches: {"x": float32 (B, *shape), "y": int64 (B,) when labelled,
    "c": float32 (B, C) with condition vectors, "a": the degraded condition with ``pair`` (paired.task),
    "content": int64 (B,) content labels of sets that have them (``TensorSource(content=...)``), "index": int64 (B,)
    each sample's position in a finite set (what GLO's latent table is indexed by)}.

    With ``by_class``, every batch holds ``batch_size`` samples of each class, class by class (``ClassOrder``).
    The stream depends only on (source, batch_size, seed, by_class); ``state_dict()`` is the number of
    batches drawn so far and ``load_state_dict`` jumps there without replaying. ``shard`` = (rank, size):
    with several training processes, each keeps its 1/size of every global batch (``Shard``).
    """

    def __init__(self, source: Source, batch_size: int, seed: int,
                 device: torch.device | str = "cpu", pair: str = "", by_class: bool = False,
                 shard: tuple[int, int] = (0, 1)) -> None:
        if not isinstance(source, (TensorSource, ToySource, StreamSource)):
            raise TypeError(f"Batches needs a TensorSource, ToySource or StreamSource, got {type(source).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ConfigError(f"data.batch_size: must be a positive integer, got {batch_size!r}")
        if pair:
            check_task(pair, source.info.shape)
        self.pair = pair   # paired.task: add the degraded condition "a" to every batch
        self.source = source
        self.batch_size = batch_size
        self.seed = int(seed)
        self.device = torch.device(device)
        self.batches = 0  # batches drawn so far
        self._order: Order | ClassOrder | Shard | None = None
        self.shard = shard
        check_shardable(batch_size, shard[1])
        if by_class:
            labels = None if isinstance(source, ToySource) else source.labels
            if labels is None:
                raise ConfigError(f"data set '{source.info.name}': class-balanced batches need a finite labelled "
                                  f"set (e.g. class sub-folders, or trainA/ and trainB/)")
            self._order = ClassOrder(labels, source.info.classes, batch_size, self.seed)
        elif not isinstance(source, ToySource):
            self._order = Order(len(source), batch_size, self.seed)
        if self._order is not None and shard[1] > 1:
            self._order = Shard(self._order, *shard)
        self._loader_iter: Any = None

    # ------------------------------------------------------------------------------ iteration

    def __iter__(self) -> "Batches":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if isinstance(self.source, ToySource):
            g = torch.Generator().manual_seed(toy_seed(self.seed, self.batches))
            batch = self.source.sample(self.batch_size, g)
            if self.shard[1] > 1:
                rows = rank_rows(self.batch_size, *self.shard)
                batch = {k: v[rows] for k, v in batch.items()}
        elif isinstance(self.source, TensorSource):
            assert self._order is not None
            index = self._order.indices(self.batches)
            batch = {**self.source.get(index), "index": index}
        else:
            batch = {**self._next_streamed(), "index": self._order.indices(self.batches)}
        if self.pair:
            g = torch.Generator().manual_seed(toy_seed(self.seed ^ PAIR_SALT, self.batches * self.shard[1] + self.shard[0]))
            batch["a"] = degrade(batch["x"], self.pair, g)
        self.batches += 1
        if self.device.type != "cpu":
            pinned = self.device.type == "cuda"
            batch = {k: v.to(self.device, non_blocking=pinned) for k, v in batch.items()}
        return batch

    def _next_streamed(self) -> dict[str, torch.Tensor]:
        source = self.source
        assert isinstance(source, StreamSource) and self._order is not None
        if self._loader_iter is None:
            loader = DataLoader(
                source.dataset,
                batch_sampler=_BatchSampler(self._order, self.batches),
                num_workers=source.workers,
                pin_memory=self.device.type == "cuda",
                # our own generator: DataLoader would otherwise draw its worker seed from the global RNG
                generator=torch.Generator().manual_seed(epoch_seed(self.seed, self.batches)),
            )
            self._loader_iter = iter(loader)
        try:
            item = next(self._loader_iter)
        except GankitError as e:
            self.close()
            raise _one_line(e) from None
        if source.info.classes:
            x, y = item
            return {"x": to_float(x), "y": torch.as_tensor(y, dtype=torch.int64)}
        if source.info.cond_dim:
            x, c = item
            return {"x": to_float(x), "c": torch.as_tensor(c, dtype=torch.float32)}
        return {"x": to_float(item)}

    # ------------------------------------------------------------------------------ resume

    @property
    def epoch(self) -> float:
        """Passes over a finite set so far (0.0 for toy distributions)."""
        if self._order is None:
            return 0.0
        return self.batches * self._order.batch_size / self._order.n

    def state_dict(self) -> dict[str, int]:
        """JSON-serialisable position: {"batches": number of batches drawn}."""
        return {"batches": self.batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Jump to the position saved by ``state_dict`` (any Batches with the same source, size, seed)."""
        n = state.get("batches") if isinstance(state, dict) else None
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise DataError(f"data stream state: expected {{'batches': integer >= 0}}, got {state!r}")
        self.close()
        self.batches = n

    # ------------------------------------------------------------------------------ workers

    def close(self) -> None:
        """Stop DataLoader workers, if any (the next batch restarts them)."""
        it, self._loader_iter = self._loader_iter, None
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()

    def __enter__(self) -> "Batches":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
