"""Data-parallel training over the processes ``torchrun`` starts.

``torchrun --nproc_per_node=N -m gankit train ...`` (several machines: torchrun's ``--nnodes``/
``--rdzv-endpoint``) sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT; ``init`` joins the process
group (NCCL on CUDA, gloo on CPU). The run is then the one-process run of the same config, split:

* data: every rank walks the same global batch stream (``data.Batches``, a function of (seed, batches
  drawn)) and keeps its 1/N of each batch (``Batches(shard=...)``), so the stream position in a checkpoint means the
  same thing at any world size — a run resumes with more or fewer processes;
* randomness: ranks start from the same seed (identical initial weights) and draw per-sample noise for
  the whole global batch, keeping their rows (``rows``), so their RNGs stay in step;
* gradients: before every optimiser step, each parameter's gradient is averaged over the ranks with
  one all-reduce of a flat buffer per optimiser (``average_gradients``) — what DistributedDataParallel's
  reducer does, done at the optimiser because a GAN step backpropagates through a frozen D into G and
  runs several forwards per backward, which DDP's per-module hooks are not built for. Losses are means
  over the local batch, so the averaged gradient is the gradient of the global batch's mean;
* BatchNorm: per rank by default; ``train.sync_bn`` makes it use statistics of the global batch
  (``torch.nn.SyncBatchNorm`` on GPUs, ``GlobalBatchNorm`` here otherwise);
* logged values are averaged over the ranks; checkpoints, logs, samples and evaluations are written by
  rank 0 only; stopping (train.max_seconds, Ctrl-C) is agreed by all ranks at a step boundary.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..runtime import World, set_shards, set_world, world




def launched() -> bool:
    """Whether torchrun (or another launcher using its environment variables) started several processes."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device) -> World:
    """Join the process group torchrun describes in the environment (once); the World of this process."""
    if not launched():
        return world()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    set_world(World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))))
    return world()


@contextmanager
def shared_evaluation() -> Iterator[bool]:
    """Under torchrun, an evaluation spread over the processes (``gankit eval``): join the process group
    and share out the batches of samples and features (``runtime.set_shards``); yields whether this
    process is the one that reports (rank 0). One process: yields True and changes nothing."""
    if not launched():
        yield True
        return
    from .device import pick_device

    w = init(local_device(pick_device("auto")))
    set_world(World())   # no training: per-sample noise is this process's own
    set_shards(w)
    try:
        yield w.main
    finally:
        set_shards(World())
        shutdown()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
    set_world(World())


def local_device(device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` when training on CUDA with several processes."""
    if device.type == "cuda" and launched() and device.index is None:
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def barrier() -> None:
    if world().size > 1:
        dist.barrier()


def average_gradients(optimizers: dict[str, torch.optim.Optimizer]) -> list:
    """Before each ``step()`` of these optimisers, replace every gradient by its mean over the ranks
    (one all-reduce per step per optimiser). Returns the hook handles."""
    if world().size == 1:
        return []

    def hook(opt, args, kwargs) -> None:
        grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= world().size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    return [opt.register_step_pre_hook(hook) for opt in optimizers.values()]


def mean_over_ranks(x: Tensor) -> Tensor:
    """x averaged over the ranks (x itself in one process)."""
    if world().size == 1:
        return x
    x = x.clone()
    dist.all_reduce(x)
    return x / world().size


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank (every rank must call it at the same point)."""
    if world().size == 1:
        return flag
    t = torch.tensor([float(flag)])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch: per-channel sums and sums of
    squares are all-reduced (differentiably, so gradients flow through the shared statistics as in one
    process). For any input rank (N, C, ...) and any process-group backend, gloo on CPU included."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected an input of shape (N, C, ...), got {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and world().size > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims = [0, *range(2, x.dim())]
        xf = x.float()   # statistics in float32, also under bf16 autocast
        count = torch.tensor([x.numel() / x.shape[1]], dtype=xf.dtype, device=x.device)
        total = all_reduce(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
        c = x.shape[1]
        n = total[-1]
        mean = total[:c] / n
        var = (total[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
        shape = (1, c) + (1,) * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Swap every BatchNorm in ``module`` (in place; parameters and buffers kept) for one that uses the
    global batch's statistics."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, GlobalBatchNorm):
            new = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            if child.track_running_stats:
                new.running_mean, new.running_var = child.running_mean, child.running_var
                new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            module.add_module(name, new)
        else:
            sync_batchnorm(child, device)
    return module
