"""Loss landscapes (Li et al., NeurIPS 2018): the training loss around trained weights, along random directions.

A trained net's weights ``theta`` are moved to ``theta + a d1 + b d2`` along
random directions :func:`filter_normalized_direction` scales filter by filter
(so a step means the same for every layer, whatever its weights' size), and the
training loss is measured at every point: :func:`landscape_1d` along one
direction, :func:`landscape_2d` on a plane. BatchNorm needs a choice there:
``bn="batch"`` recomputes its statistics from each batch at every point,
``bn="running"`` keeps the trained net's (stale) running statistics.
:func:`landscape_stats` sums a plane up in four numbers (centre, rise, local
minima, share of non-convex points).

Lessons: 11.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .device import autocast, autocast_dtype

__all__ = ["BN_MODES", "filter_normalized_direction", "landscape_1d", "landscape_2d", "landscape_stats", "loss_grid"]

BN_MODES = ("batch", "running")


def filter_normalized_direction(net: nn.Module, seed: int = 0) -> dict[str, Tensor]:
    """A random direction in weight space, one tensor per parameter, scaled filter by filter.

    Each filter (one output channel of a conv, one row of a linear layer) of a
    Gaussian direction is rescaled to the norm of the same filter of the
    trained weights, so the direction is as large as the weights it moves
    wherever they are (ReLU nets are scale invariant filter by filter under
    BN). One-dimensional entries (BN scales and shifts, biases) are zero.
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, p in net.named_parameters():
        p = p.detach()
        if p.dim() <= 1:
            out[name] = torch.zeros_like(p)
            continue
        d = torch.randn(p.shape, generator=g, dtype=torch.float32).to(p)
        scale = p.flatten(1).norm(dim=1) / d.flatten(1).norm(dim=1).clamp_min(1e-12)
        out[name] = d * scale.view(-1, *([1] * (p.dim() - 1)))
    return out


class _Probe:
    """A copy of a trained net whose weights are moved to ``theta + a d1 + b d2`` point by point."""

    def __init__(self, net: nn.Module, directions: Sequence[Mapping[str, Tensor]]) -> None:
        self.net = copy.deepcopy(net)
        self.base = {k: v.detach().clone() for k, v in net.named_parameters()}
        self.buffers = {k: v.detach().clone() for k, v in net.named_buffers()}
        self.directions = directions

    @torch.no_grad()
    def move(self, coeffs: Sequence[float]) -> nn.Module:
        for name, p in self.net.named_parameters():
            p.copy_(self.base[name])
            for c, d in zip(coeffs, self.directions):
                if c:
                    p.add_(d[name], alpha=float(c))
        for name, b in self.net.named_buffers():  # stale statistics are the trained net's, not the last point's
            b.copy_(self.buffers[name])
        return self.net


@torch.no_grad()
def _loss_and_acc(net: nn.Module, x: Tensor, y: Tensor, bn: str, batch_size: int, amp: Any) -> tuple[float, float]:
    """Mean cross-entropy and accuracy; ``bn="batch"``: train-mode BN, statistics of each batch of ``batch_size``."""
    if bn not in BN_MODES:
        raise ValueError(f"bn must be one of {BN_MODES}, got {bn!r}")
    net.train(bn == "batch")
    p = next(net.parameters())
    dtype = autocast_dtype(amp, p.device)
    total, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        xb, yb = x[i:i + batch_size].to(p.device), y[i:i + batch_size].to(p.device)
        with autocast(p.device, dtype):
            out = net(xb).float()
        total += float(F.cross_entropy(out, yb, reduction="sum"))
        correct += int((out.argmax(1) == yb).sum())
    return total / len(y), correct / len(y)


def landscape_1d(net: nn.Module, x: Tensor, y: Tensor, alphas: Sequence[float] = tuple(np.linspace(-1, 1, 41)),
                 seed: int = 0, bn: str = "batch", batch_size: int = 256, amp: Any = "off") -> pd.DataFrame:
    """Training loss along one filter-normalised direction: ``L(theta + alpha d)``; columns ``alpha, loss, acc``.

    ``bn="batch"`` computes BatchNorm's statistics from each batch at every
    point (train mode on fixed batches); ``bn="running"`` keeps the trained
    net's running statistics (eval mode), which no longer fit the moved weights.
    """
    probe = _Probe(net, [filter_normalized_direction(net, seed)])
    rows = []
    for a in alphas:
        loss, acc = _loss_and_acc(probe.move([a]), x, y, bn, batch_size, amp)
        rows.append({"alpha": float(a), "loss": loss, "acc": acc})
    return pd.DataFrame(rows)


def landscape_2d(net: nn.Module, x: Tensor, y: Tensor, alphas: Sequence[float] = tuple(np.linspace(-1, 1, 21)),
                 seed: int = 0, bn: str = "batch", batch_size: int = 256, amp: Any = "off",
                 progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Training loss on the plane ``theta + a d1 + b d2`` (directions from ``seed`` and ``seed + 1``).

    Long format: columns ``a, b, loss, acc``, one row per grid point
    (``alphas`` × ``alphas``).
    """
    probe = _Probe(net, [filter_normalized_direction(net, seed), filter_normalized_direction(net, seed + 1)])
    rows = []
    for i, a in enumerate(alphas):
        for b in alphas:
            loss, acc = _loss_and_acc(probe.move([a, b]), x, y, bn, batch_size, amp)
            rows.append({"a": float(a), "b": float(b), "loss": loss, "acc": acc})
        if progress is not None:
            progress(f"row {i + 1}/{len(alphas)}")
    return pd.DataFrame(rows)


def loss_grid(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A :func:`landscape_2d` table as arrays ``(a, b, loss[b, a])``, both axes ascending (for contour plots)."""
    g = table.pivot(index="b", columns="a", values="loss").sort_index().sort_index(axis=1)
    return g.columns.to_numpy(), g.index.to_numpy(), g.to_numpy()


def landscape_stats(table: pd.DataFrame, radius: float = 0.5) -> dict[str, float]:
    """Numbers that describe a 2-D landscape (a :func:`landscape_2d` table).

    ``center``: loss at the trained weights; ``rise``: mean loss on the ring
    at ``radius`` (±0.05) minus ``center`` (how steep the basin is);
    ``local_minima``: grid points lower than all 8 neighbours (1 for a single
    basin); ``nonconvex``: share of the interior points within ``radius`` where
    the finite-difference Hessian has a negative eigenvalue below -5 % of the
    largest one (Li et al. map ``|λmin/λmax|`` the same way).
    """
    a, b, z = loss_grid(table)
    A, B = np.meshgrid(a, b)
    r = np.hypot(A, B)
    center = float(z[np.unravel_index(np.argmin(r), r.shape)])
    ring = np.abs(r - radius) <= 0.05 + 1e-9
    padded = np.pad(z, 1, constant_values=np.inf)
    neighbours = [padded[1 + di:1 + di + z.shape[0], 1 + dj:1 + dj + z.shape[1]]
                  for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]
    minima = int((z < np.min(neighbours, axis=0)).sum())
    ha, hb = a[1] - a[0], b[1] - b[0]
    zaa = (z[1:-1, 2:] - 2 * z[1:-1, 1:-1] + z[1:-1, :-2]) / ha ** 2
    zbb = (z[2:, 1:-1] - 2 * z[1:-1, 1:-1] + z[:-2, 1:-1]) / hb ** 2
    zab = (z[2:, 2:] - z[2:, :-2] - z[:-2, 2:] + z[:-2, :-2]) / (4 * ha * hb)
    mean, dev = (zaa + zbb) / 2, np.sqrt(((zaa - zbb) / 2) ** 2 + zab ** 2)
    lmax, lmin = mean + dev, mean - dev
    inner = r[1:-1, 1:-1] <= radius + 1e-9
    bad = (lmin < -0.05 * np.abs(lmax)) & inner
    return {"center": center, "rise": float(z[ring].mean() - center), "local_minima": minima,
            "nonconvex": float(bad.sum() / max(inner.sum(), 1))}
