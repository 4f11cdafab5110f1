"""Training on several processes with PyTorch's own launcher (``torchrun``).

``torchrun --nproc_per_node=N -m resnet_tutorial train ...`` starts N copies of
the command and tells each one its place through environment variables
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).
:func:`init_from_env` reads them and joins the process group (gloo on CPU, nccl
on CUDA); without them everything here is a no-op and training runs in one
process as before.

What data parallelism needs, and where it happens:

* each process sees a different shard of every epoch: ``TensorLoader`` draws
  its indices from :class:`torch.utils.data.DistributedSampler`;
* gradients are averaged after every backward pass: ``fit`` wraps the model in
  :class:`~torch.nn.parallel.DistributedDataParallel`;
* metrics are sums over all processes: :func:`all_reduce_sum`;
* BatchNorm's running statistics, which each process updates from its own
  batches, are averaged at the end of every epoch (:func:`average_buffers`) so
  that every process evaluates, and rank 0 saves, the same model;
* optionally BatchNorm normalizes with the statistics of the *global* batch:
  :func:`convert_sync_batchnorm` (PyTorch's ``SyncBatchNorm`` on GPUs, the
  :class:`CPUSyncBatchNorm` below on the CPU, where PyTorch's refuses to run).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from .device import get_device

__all__ = [
    "DistContext",
    "init_from_env",
    "is_distributed",
    "rank",
    "world_size",
    "is_main_process",
    "all_reduce_sum",
    "average_buffers",
    "params_checksum",
    "CPUSyncBatchNorm",
    "convert_sync_batchnorm",
    "shutdown",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, its ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 prints, shows progress bars and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer (torchrun sets it)") from None


def init_from_env(device: str | torch.device | None = None) -> DistContext:
    """Join the process group that ``torchrun`` describes, or return a one-process context.

    The backend follows the device: ``nccl`` for CUDA (each process takes the
    GPU ``LOCAL_RANK``), ``gloo`` for the CPU. Calling it again in a process
    that already joined returns the same context.
    """
    world = _env_int("WORLD_SIZE", 1)
    _env_int("RANK", 0)  # checked here (a readable error); the process group reads it itself
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = get_device(device)
    if world <= 1:
        return DistContext(0, 1, 0, dev)
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run one process")
    if dev.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) here: "
                f"use --nproc_per_node <= {torch.cuda.device_count()}"
            )
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    elif dev.type != "cpu":
        raise ValueError(f"multi-process training supports 'cpu' and 'cuda' devices, got {dev.type!r}")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev)


def is_distributed() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def all_reduce_sum(*values: float, device: torch.device | str = "cpu") -> list[float]:
    """Sum plain numbers over all processes (returned unchanged in one process).

    One collective for all values: metrics such as ``(loss_sum, correct, n)``
    travel together.
    """
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


@torch.no_grad()
def average_buffers(model: nn.Module) -> None:
    """Average floating-point buffers (BN running mean/var) over all processes.

    Each process updates BatchNorm's running statistics from its own shard;
    averaging them makes every copy of the model identical again, and is a
    better estimate than any one process's.
    """
    if not is_distributed():
        return
    world = dist.get_world_size()
    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(world)


@torch.no_grad()
def params_checksum(model: nn.Module) -> float:
    """A number that changes with any parameter or buffer: their float64 sums, position-weighted."""
    total = 0.0
    for i, t in enumerate(list(model.parameters()) + list(model.buffers())):
        total += (i + 1) * float(t.detach().double().sum())
    return total


class CPUSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the batch over *all* processes.

    Works with the gloo backend (CPU), where ``nn.SyncBatchNorm`` raises. The
    mean and variance come from two all-reduced sums, ``Σx`` and ``Σx²`` per
    channel, together with the global count; the all-reduce is the
    differentiable one from ``torch.distributed.nn``, so gradients also see the
    whole batch: training gives the same numbers as one ``BatchNorm2d`` over
    the concatenated batch. Evaluation, and training in a single process,
    is plain BatchNorm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        if x.dim() != 4:
            raise ValueError(f"CPUSyncBatchNorm expects [N, C, H, W] input, got shape {tuple(x.shape)}")
        from torch.distributed.nn.functional import all_reduce

        xf = x.float()
        count = torch.tensor([x.shape[0] * x.shape[2] * x.shape[3]], dtype=torch.float32, device=x.device)
        stats = torch.cat([xf.sum(dim=(0, 2, 3)), (xf * xf).sum(dim=(0, 2, 3)), count])
        stats = all_reduce(stats)  # sums over every process, with a backward pass
        c = self.num_features
        n = stats[2 * c]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0)  # biased, as BN normalizes with
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                unbiased = var.detach() * n / (n - 1).clamp_min(1)
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        y = (xf - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def convert_sync_batchnorm(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Replace every ``BatchNorm2d`` with a synchronized one for ``device``.

    CUDA: PyTorch's ``nn.SyncBatchNorm``; CPU: :class:`CPUSyncBatchNorm` (same
    weights, buffers and state-dict keys, so checkpoints load into the plain model).
    """
    if torch.device(device).type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _swap_bn(model)


def _swap_bn(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, CPUSyncBatchNorm):
        new = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new  # CPU only: CUDA models get nn.SyncBatchNorm
    for name, child in module.named_children():
        setattr(module, name, _swap_bn(child))
    return module


def shutdown() -> None:
    """Leave the process group (if this process joined one), once every process got here.

    The barrier keeps a fast process from tearing down its connections while a
    slower one still talks to it (gloo aborts the slower one then).
    """
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            # DistributedDataParallel wrappers and pending collective work hold references to the
            # group; freeing them now, not during interpreter teardown, avoids gloo's
            # "terminate called without an active exception" abort at exit
            gc.collect()
            dist.destroy_process_group()

