"""Lesson 11 · Residual networks as ensembles of paths, and their loss landscapes.

Two answers from the research after He et al. (2016) to "why do shortcuts
help?" (lesson 10 holds shattered gradients and training without BatchNorm):

1. **Ensembles of shallow paths** (Veit et al., NeurIPS 2016): :func:`path_length_counts`,
   block deletion (:func:`deleted`, :func:`lesion_single`, :func:`lesion_random`) and the gradient
   by path length (:class:`PathGradients`, :func:`gradient_by_path_length`, :func:`effective_paths`).
2. **Loss landscapes** (Li et al., NeurIPS 2018): the computations live in
   :mod:`resnet_tutorial.landscape` (:func:`landscape_1d`, :func:`landscape_2d`, :func:`landscape_stats`,
   re-exported here); the plots and the :class:`LandscapeExplorer` are this lesson's.

:func:`build_cache` computes the tables the notebook reads from
``results/lesson10/`` (shared with lesson 10) from the full degradation run's
trained nets (``python -m resnet_tutorial why``); :func:`load_cache` reads them.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor, nn

from .. import results
from ..blocks import ResidualBlock
from ..checkpoints import load_model
from ..data import stratified_subset
from ..device import autocast, autocast_dtype, machine_line, torch_threads
from ..landscape import (filter_normalized_direction, landscape_1d, landscape_2d, landscape_stats,
                         loss_grid)
from ..live import TRAINING_FRAME_S, LiveFigure, Panel, RunPlot
from ..models import CifarResNet, create_model
from ..train import make_optimizer, train_steps

__all__ = [
    "CACHE_DIR", "LandscapeExplorer", "PathGradients", "WEIGHTS_DIR", "accuracy", "block_table", "build_cache",
    "deleted", "describe_live_lesions", "effective_paths", "filter_normalized_direction",
    "gradient_by_path_length", "landscape_1d", "landscape_2d", "landscape_stats", "lesion_random",
    "lesion_single", "load_cache", "path_length_counts", "plot_landscape_1d", "plot_landscapes_2d",
    "plot_lesions", "plot_path_gradients", "plot_path_lengths", "TwinsRun", "train_twins",
]

#: Where the notebook reads the cache (``lesson10``: the folder lessons 10 and 11 share).
CACHE_DIR = results.path("lesson10")
#: The trained nets of the full degradation run.
WEIGHTS_DIR = results.path("degradation_full")

# ===========================================================================
# 2. Residual networks as ensembles of shallow paths (Veit et al. 2016)
# ===========================================================================
def path_length_counts(n: int) -> pd.DataFrame:
    """Paths through ``n`` residual blocks by length: each block is taken (branch) or skipped (shortcut).

    Columns ``length`` (0..n blocks whose branch the path goes through),
    ``paths`` (``C(n, k)``; the column sums to ``2^n``) and ``fraction``
    (the Binomial(n, 1/2) probabilities).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int (residual blocks), got {n!r}")
    k = np.arange(n + 1)
    paths = [math.comb(n, int(i)) for i in k]
    return pd.DataFrame({"length": k, "paths": paths, "fraction": [p / 2 ** n for p in paths]})


def _blocks_with_names(net: nn.Module) -> list[tuple[str, ResidualBlock]]:
    return [(name, m) for name, m in net.named_modules() if isinstance(m, ResidualBlock)]


def block_table(net: nn.Module) -> pd.DataFrame:
    """One row per residual block in forward order: ``block, name, stage, stride, downsampling, residual``.

    ``downsampling``: the block changes the shape (stride 2 or more channels),
    so it cannot be replaced by the identity. ``residual``: it has a shortcut.
    """
    rows = []
    for i, (name, b) in enumerate(_blocks_with_names(net)):
        rows.append({"block": i, "name": name, "stage": name.split(".")[0], "stride": b.stride,
                     "downsampling": b.stride != 1 or b.in_channels != b.out_channels,
                     "residual": b.shortcut is not None})
    if not rows:
        raise ValueError("the model has no ResidualBlock (build it with CifarResNet / create_model('resnet20'))")
    return pd.DataFrame(rows)


def _deleted_forward(block: ResidualBlock) -> Callable[[Tensor], Tensor]:
    """What a deleted block computes: its shortcut alone (residual), or the identity (plain)."""
    if block.merge != "add":
        raise ValueError("a block that concatenates (merge='cat') changes the channel count: it cannot be deleted")
    if block.shortcut is None:
        if block.stride != 1 or block.in_channels != block.out_channels:
            raise ValueError(
                f"this plain block maps {block.in_channels} -> {block.out_channels} channels with stride "
                f"{block.stride}: the identity cannot replace it (only shape-keeping blocks can be deleted)"
            )
        return lambda x: x
    shortcut = block.shortcut
    if block.preact:
        return lambda x: shortcut(x)
    return lambda x: block.act2(shortcut(x))


@contextmanager
def deleted(net: nn.Module, blocks: Iterable[int]) -> Iterator[nn.Module]:
    """Inside the block the chosen residual blocks (indices into ``net.blocks()``) are deleted.

    A residual block keeps only its shortcut: its branch output is 0, so it
    computes ``ReLU(s(x))`` (the identity on a ReLU net's non-negative inputs,
    subsample + zero channels at an option-A downsampling block). A plain
    block is replaced by the identity, which only a shape-keeping block allows.
    The net is restored on exit.
    """
    all_blocks = [b for _, b in _blocks_with_names(net)]
    chosen = sorted({int(i) for i in blocks})
    bad = [i for i in chosen if not 0 <= i < len(all_blocks)]
    if bad:
        raise ValueError(f"block indices {bad} out of range: the net has {len(all_blocks)} blocks")
    replaced = []
    try:
        for i in chosen:
            all_blocks[i].forward = _deleted_forward(all_blocks[i])  # an instance attribute shadows the method
            replaced.append(all_blocks[i])
        yield net
    finally:
        for b in replaced:
            vars(b).pop("forward", None)


@torch.no_grad()
def accuracy(net: nn.Module, x: Tensor, y: Tensor, batch_size: int = 500, amp: Any = "off") -> float:
    """Eval-mode accuracy (0..1) of ``net`` on ``(x, y)``, in batches; ``amp`` as in :mod:`resnet_tutorial.device`."""
    p = next(net.parameters())
    dtype = autocast_dtype(amp, p.device)
    was_training = net.training
    net.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        xb = x[i:i + batch_size].to(p.device)
        if xb.dim() == 4 and p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last):
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast(p.device, dtype):
            correct += int((net(xb).argmax(1).cpu() == y[i:i + batch_size]).sum())
    net.train(was_training)
    return correct / len(y)


def lesion_single(net: nn.Module, x: Tensor, y: Tensor, amp: Any = "off", progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Delete each block in turn and measure the test accuracy (Veit et al.'s Fig. 3).

    Returns :func:`block_table` plus ``deletable`` (False for a plain net's
    downsampling blocks, whose ``acc`` is NaN), ``acc`` and ``baseline`` (the
    intact net's accuracy).
    """
    table = block_table(net)
    base = accuracy(net, x, y, amp=amp)
    accs, ok = [], []
    for i, row in table.iterrows():
        if not row["residual"] and row["downsampling"]:
            accs.append(float("nan"))
            ok.append(False)
            continue
        with deleted(net, [i]):
            accs.append(accuracy(net, x, y, amp=amp))
        ok.append(True)
        if progress is not None:
            progress(f"deleted block {i}: {accs[-1]:.4f}")
    return table.assign(deletable=ok, acc=accs, baseline=base)


def lesion_random(net: nn.Module, x: Tensor, y: Tensor, ks: Sequence[int] | None = None, draws: int = 5,
                  seed: int = 0, amp: Any = "off") -> pd.DataFrame:
    """Delete ``k`` blocks chosen at random among the shape-keeping ones; ``draws`` choices per ``k``.

    Columns ``k, draw, blocks, acc`` (``k = 0`` is the intact net). The same
    seed draws the same block sets in nets of the same depth, so a residual
    net and its plain twin lose the same blocks.
    """
    candidates = block_table(net).query("not downsampling")["block"].tolist()
    ks = range(1, len(candidates) + 1) if ks is None else ks
    rng = np.random.default_rng(seed)
    rows = [{"k": 0, "draw": 0, "blocks": "", "acc": accuracy(net, x, y, amp=amp)}]
    for k in ks:
        if not 0 < k <= len(candidates):
            raise ValueError(f"k must be between 1 and {len(candidates)} (shape-keeping blocks), got {k}")
        for d in range(draws if k < len(candidates) else 1):
            chosen = sorted(int(i) for i in rng.choice(candidates, size=k, replace=False))
            with deleted(net, chosen):
                rows.append({"k": int(k), "draw": d, "blocks": " ".join(map(str, chosen)),
                             "acc": accuracy(net, x, y, amp=amp)})
    return pd.DataFrame(rows)


def _stem(net: CifarResNet, x: Tensor) -> Tensor:
    return net.act1(net.bn1(net.conv1(x)))


def _head(net: CifarResNet, h: Tensor) -> Tensor:
    return net.fc(torch.flatten(net.avgpool(net.final_norm(h)), 1))


class PathGradients:
    """One forward pass of a CifarResNet; then the gradient at the first block's input through chosen branches.

    Veit et al.'s method: the forward pass is the usual one; in the backward
    pass each residual block passes the gradient either through its branch
    ``F`` or through its shortcut, never both. ``grad(through)`` does that for
    the blocks in ``through`` (branch) and the rest (shortcut): the gradient
    carried by the one path of length ``len(through)`` that uses exactly those
    branches. ``grad(None)`` is the full gradient: the sum over all ``2^n`` paths,
    because each block's Jacobian is the sum of its branch's and its shortcut's.
    The loss is the summed cross-entropy of the batch; the net is used in the
    mode it is in (eval: BatchNorm is a fixed affine map).
    """

    def __init__(self, net: CifarResNet, x: Tensor, y: Tensor) -> None:
        blocks = [b for _, b in _blocks_with_names(net)]
        if not blocks or any(b.shortcut is None or b.merge != "add" for b in blocks):
            raise ValueError("PathGradients needs a residual net whose every block adds a shortcut (not a plain net)")
        self.n = len(blocks)
        self._parts: list[tuple[Tensor, Tensor, Tensor, Tensor, Tensor]] = []
        with torch.enable_grad():
            self.h0 = _stem(net, x).detach()
            h = self.h0
            for b in blocks:
                xi = h.detach().requires_grad_(True)
                f, s = b.residual(xi), b.shortcut(xi)
                pre = f + s
                out = pre if b.preact else b.act2(pre)
                self._parts.append((xi, f, s, pre, out))
                h = out
            top = h.detach().requires_grad_(True)
            loss = F.cross_entropy(_head(net, top), y, reduction="sum")
            (self._g_top,) = torch.autograd.grad(loss, top)

    def grad(self, through: Iterable[int] | None = None) -> Tensor:
        """Gradient of the loss at the first block's input ``[N, C, H, W]`` along the chosen branches."""
        chosen = None if through is None else {int(i) for i in through}
        g = self._g_top
        for i in reversed(range(self.n)):
            xi, f, s, pre, out = self._parts[i]
            g_pre = g if out is pre else torch.autograd.grad(out, pre, g, retain_graph=True)[0]
            target = pre if chosen is None else (f if i in chosen else s)
            g = torch.autograd.grad(target, xi, g_pre, retain_graph=True, allow_unused=True)[0]
            if g is None:  # the shortcut of a block whose input does not reach its output
                g = torch.zeros_like(xi)
        return g

    def norm(self, through: Iterable[int] | None = None) -> float:
        """Mean over the batch of each image's gradient norm along the chosen path."""
        return float(self.grad(through).flatten(1).norm(dim=1).mean())

    def gains(self) -> pd.DataFrame:
        """Per block, with the true gradient arriving from above: how much passes its branch vs its shortcut.

        Columns ``block, branch, shortcut, ratio`` (norms of the two
        vector-Jacobian products, means over the batch; ``ratio`` = branch /
        shortcut). A ratio below 1 makes every extra branch on a path shrink
        that path's gradient, so long paths carry little (Veit et al.'s finding).
        """
        rows, g = [], self._g_top
        for i in reversed(range(self.n)):
            xi, f, s, pre, out = self._parts[i]
            g_pre = g if out is pre else torch.autograd.grad(out, pre, g, retain_graph=True)[0]
            through_f = torch.autograd.grad(f, xi, g_pre, retain_graph=True)[0].flatten(1).norm(dim=1).mean()
            through_s = torch.autograd.grad(s, xi, g_pre, retain_graph=True)[0].flatten(1).norm(dim=1).mean()
            rows.append({"block": i, "branch": float(through_f), "shortcut": float(through_s),
                         "ratio": float(through_f / through_s)})
            g = torch.autograd.grad(pre, xi, g_pre, retain_graph=True)[0]
        return pd.DataFrame(rows[::-1])


def gradient_by_path_length(net: CifarResNet, x: Tensor, y: Tensor, ks: Sequence[int] | None = None,
                            draws: int = 8, seed: int = 0) -> pd.DataFrame:
    """Gradient norm carried by single paths of each length ``k`` (``draws`` random branch sets per ``k``).

    Columns ``k, draw, grad_norm``. ``k = 0`` (shortcuts only) and ``k = n``
    (every branch) have one path each, so one draw.
    """
    pg = PathGradients(net, x, y)
    ks = range(pg.n + 1) if ks is None else ks
    rng = np.random.default_rng(seed)
    rows = []
    for k in ks:
        for d in range(draws if 0 < k < pg.n else 1):
            chosen = rng.choice(pg.n, size=int(k), replace=False)
            rows.append({"k": int(k), "draw": d, "grad_norm": pg.norm(chosen)})
    return pd.DataFrame(rows)


def effective_paths(table: pd.DataFrame, n: int, mass: float = 0.9) -> tuple[pd.DataFrame, tuple[int, int]]:
    """Per path length: mean gradient of one path × number of paths = the gradient that length carries.

    Returns the table (``k, grad_per_path, paths, total, share``) and the
    shortest range of lengths holding ``mass`` of the total (Veit et al.
    report 5-17 of 54 blocks for ResNet-110).
    """
    per = table.groupby("k")["grad_norm"].mean()
    counts = path_length_counts(n).set_index("length")["paths"].astype(float)
    out = pd.DataFrame({"grad_per_path": per, "paths": counts.reindex(per.index)})
    out["total"] = out["grad_per_path"] * out["paths"]
    out["share"] = out["total"] / out["total"].sum()
    out.index.name = "k"
    share = out["share"].to_numpy()
    ks = out.index.to_numpy()
    best = (int(ks[0]), int(ks[-1]))
    for i in range(len(ks)):
        for j in range(i, len(ks)):
            if share[i:j + 1].sum() >= mass:
                if ks[j] - ks[i] < best[1] - best[0]:
                    best = (int(ks[i]), int(ks[j]))
                break
    return out.reset_index(), best


def describe_live_lesions(single: pd.DataFrame) -> str:
    """What a :func:`lesion_single` table of one or more nets (column ``net``) shows, in markdown bullets.

    Per net: the intact accuracy, the median and the range over the shape-keeping blocks
    deleted one at a time, and the block whose deletion hurts most (the first block of a
    ResNet often does: it is the only one whose input comes straight from the stem).
    """
    if single.empty or not {"net", "block", "acc", "baseline", "downsampling"} <= set(single.columns):
        raise ValueError("need a lesion_single table with a 'net' column (one or more nets)")
    lines = []
    for name, t in single.groupby("net", sort=False):
        inner = t[~t.downsampling & t.acc.notna()]
        if inner.empty:
            continue
        worst = inner.loc[inner.acc.idxmin()]
        lines.append(f"- **{name}**: {t.baseline.iloc[0]:.0%} intact; one shape-keeping block deleted: median "
                     f"{inner.acc.median():.0%} (from {inner.acc.min():.0%} to {inner.acc.max():.0%}); the worst is "
                     f"block {int(worst.block)} ({worst.acc:.0%}).")
    return "\n".join(lines)


def plot_path_lengths(n: int, ax: plt.Axes | None = None) -> Figure:
    """Number of paths of each length through ``n`` blocks (Binomial(n, 1/2) × 2^n)."""
    fig, ax = (plt.subplots(figsize=(5, 3.2)) if ax is None else (ax.figure, ax))
    t = path_length_counts(n)
    ax.bar(t["length"], t["paths"], color="C0")
    ax.set_xlabel("path length k (residual branches on the path)")
    ax.set_ylabel("number of paths")
    ax.set_title(f"{n} blocks: $2^{{{n}}}$ = {2 ** n:,} paths", fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def plot_lesions(single: pd.DataFrame, random: pd.DataFrame) -> Figure:
    """Left: accuracy after deleting each block (Veit Fig. 3); right: after deleting k random blocks (Fig. 5).

    ``single`` / ``random``: concatenated :func:`lesion_single` / :func:`lesion_random`
    tables with a ``net`` column (e.g. ``resnet56``, ``plain56``).
    """
    from matplotlib.ticker import MaxNLocator

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.6))
    for i, (name, t) in enumerate(single.groupby("net", sort=False)):
        ok = (t["deletable"] & ~t["downsampling"]).to_numpy()
        down = t[t["deletable"] & t["downsampling"]]
        # the line breaks at the downsampling blocks (NaN): they are a different kind of deletion
        a.plot(t["block"], np.where(ok, 100 * t["acc"], np.nan), "o-", ms=3, color=f"C{i}", label=f"{name}")
        if len(down):
            a.plot(down["block"], 100 * down["acc"], "s", ms=7, mfc="none", color=f"C{i}",
                   label=f"{name}: downsampling block (only the zero-pad shortcut left)")
        a.axhline(100 * t["baseline"].iloc[0], ls="--", lw=1, color=f"C{i}")
    for _, r in single[single["downsampling"]].drop_duplicates("block").iterrows():
        a.axvline(r["block"], color="0.85", lw=4, zorder=0)
    a.axhline(10, color="0.5", lw=0.8, ls=":")
    a.set_xlabel("deleted block (0 = first; grey: downsampling)")
    a.set_ylabel("test accuracy (%)")
    a.set_title("Delete one block (dashed: intact net; dotted: chance)", fontsize=9)
    # legends under the axes: inside they hid the lowest points (the lesions that matter most)
    a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2, frameon=False)
    a.grid(alpha=0.3)
    for i, (name, t) in enumerate(random.groupby("net", sort=False)):
        s = t.groupby("k")["acc"].agg(["mean", "min", "max"])
        b.plot(s.index, 100 * s["mean"], "o-", ms=3, color=f"C{i}", label=name)
        b.fill_between(s.index, 100 * s["min"], 100 * s["max"], color=f"C{i}", alpha=0.2)
    b.axhline(10, color="0.5", lw=0.8, ls=":")
    b.set_xlabel("blocks deleted at random (shape-keeping ones)")
    b.set_ylabel("test accuracy (%)")
    b.set_title("Delete k random blocks (band: min-max over draws)", fontsize=9)
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    b.xaxis.set_major_locator(MaxNLocator(integer=True))
    b.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=3, frameon=False)
    b.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_path_gradients(table: pd.DataFrame, n: int, label: str = "") -> Figure:
    """Veit et al.'s Fig. 6: paths per length, gradient of one path, and gradient of all paths of that length."""
    eff, (lo, hi) = effective_paths(table, n)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    plot_path_lengths(n, axes[0])
    axes[1].plot(table["k"], table["grad_norm"], ".", ms=4, color="C0", alpha=0.35, label="one random path")
    mean = table.groupby("k")["grad_norm"].mean()
    axes[1].plot(mean.index, mean.to_numpy(), "-", color="C0", lw=1.8, label="mean over the draws")
    axes[1].legend(fontsize=7)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("path length k")
    axes[1].set_ylabel("gradient norm of one path")
    axes[1].set_title("one path of length k", fontsize=9)
    axes[2].bar(eff["k"], eff["share"], color="C2")
    axes[2].axvspan(lo - 0.5, hi + 0.5, color="C2", alpha=0.15)
    axes[2].set_xlabel("path length k")
    axes[2].set_ylabel("share of the total gradient")
    # the shaded band is named in the title: a legend inside covered the tallest bars
    axes[2].set_title(f"all paths of length k: one path × number of paths\n(shaded: 90 % of the gradient, "
                      f"k = {lo}-{hi})", fontsize=9)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if label:
        fig.suptitle(label, fontsize=10)
    fig.tight_layout()
    return fig


# ===========================================================================
# 3. Loss landscapes (Li et al. 2018): the computations are resnet_tutorial.landscape
# ===========================================================================
def plot_landscape_1d(slices: Mapping[str, pd.DataFrame], title: str = "", log: bool = True) -> Figure:
    """Loss (and accuracy) along a 1-D slice for several nets: ``{label: landscape_1d table}``."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (name, t) in enumerate(slices.items()):
        ls = "--" if "stale" in name or "running" in name else "-"
        a.plot(t["alpha"], t["loss"], ls, color=f"C{i}", label=name)
        b.plot(t["alpha"], 100 * t["acc"], ls, color=f"C{i}", label=name)
    if log:
        a.set_yscale("log")
    a.set_ylabel("training loss (cross-entropy)" + (", log" if log else ""))
    b.set_ylabel("training accuracy (%)")
    for ax in (a, b):
        ax.set_xlabel("α: step along a filter-normalised direction")
        ax.grid(alpha=0.3, which="both")
    a.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _contour(ax: plt.Axes, table: pd.DataFrame, title: str, vmin: float = 0.05, vmax: float = 10.0) -> Any:
    """Filled contours of the loss on a log scale (shared levels ``vmin..vmax`` so panels compare)."""
    from matplotlib.colors import LogNorm

    a, b, z = loss_grid(table)
    levels = np.geomspace(vmin, vmax, 21)
    cs = ax.contourf(a, b, np.clip(z, vmin, vmax), levels=levels, norm=LogNorm(vmin, vmax), cmap="viridis")
    ax.contour(a, b, np.clip(z, vmin, vmax), levels=levels[::2], colors="white", linewidths=0.4, alpha=0.7)
    ax.plot(0, 0, "r+", ms=9, mew=1.5)
    stats = landscape_stats(table)
    ax.set_title(f"{title}\ncentre {stats['center']:.2f}, rise at r=0.5: {stats['rise']:.2f}, "
                 f"{stats['local_minima']} local min.", fontsize=8)
    ax.set_aspect("equal")
    ax.set_xlabel("α (direction 1)", fontsize=8)
    ax.set_ylabel("β (direction 2)", fontsize=8)
    ax.tick_params(labelsize=7)
    return cs


def plot_landscapes_2d(grids: Mapping[str, pd.DataFrame], vmin: float = 0.05, vmax: float = 10.0) -> Figure:
    """Li et al.'s Fig. 5 layout: loss contours around the trained weights (red +), one panel per net.

    All panels share the colour scale (log, ``vmin``..``vmax``; larger losses are drawn at ``vmax``).
    """
    n = len(grids)
    cols = 2 if n == 4 else min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols + 1.2, 3.5 * rows), squeeze=False,
                             constrained_layout=True)
    cs = None
    for ax, (name, t) in zip(axes.flat, grids.items()):
        cs = _contour(ax, t, name, vmin, vmax)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if cs is not None:
        _loss_colorbar(fig, cs, axes.ravel().tolist())
    return fig


def _loss_colorbar(fig: Figure, cs: Any, axes: Any) -> None:
    ticks = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10]
    cbar = fig.colorbar(cs, ax=axes, shrink=0.85, ticks=ticks)
    cbar.ax.set_yticklabels([f"{t:g}" for t in ticks[:-1]] + ["≥10"])
    cbar.ax.minorticks_off()
    cbar.set_label("training loss (log scale)", fontsize=8)


class LandscapeExplorer(LiveFigure):
    """The landscape explorer: one net's 1-D slice (left) and 2-D contour (right); a switch replaces the
    slice's data and redraws only the contour panel (contours cannot be updated in place)."""

    figsize = (10.0, 4.0)

    def __init__(self, grids: Mapping[str, pd.DataFrame], slices: Mapping[str, pd.DataFrame]) -> None:
        if not grids:
            raise ValueError("LandscapeExplorer needs at least one 2-D landscape table in grids")
        super().__init__()
        self.grids, self.slices = dict(grids), dict(slices)

    def compute(self, net: str = "resnet56") -> tuple[np.ndarray, np.ndarray, str]:
        if net not in self.grids:
            raise ValueError(f"no landscape for {net!r}; choose one of {sorted(self.grids)}")
        t = self.slices.get(net)
        if t is not None and len(t):
            return t["alpha"].to_numpy(), t["loss"].to_numpy(), ""
        a_, b_, z = loss_grid(self.grids[net])  # a live grid has no separate slice: the row through the centre
        return a_, z[int(np.argmin(np.abs(b_))), :], "o"

    def build(self, fig: Figure) -> None:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import LogNorm
        self.a, self.b = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
        (self.line,) = self.a.plot([], [], "-", ms=3, color="C0")
        self.a.set(yscale="log", ylim=(0.05, 20), xlabel="α along a filter-normalised direction",
                   ylabel="training loss (log)")
        self.a.grid(alpha=0.3, which="both")
        _loss_colorbar(fig, ScalarMappable(norm=LogNorm(0.05, 10.0), cmap="viridis"), self.b)
        fig.subplots_adjust(left=0.08, right=0.97, bottom=0.13, top=0.86, wspace=0.25)

    def update(self, data: tuple[np.ndarray, np.ndarray, str], net: str = "resnet56") -> None:
        x, y, marker = data
        self.line.set_data(x, y)
        self.line.set_marker(marker)
        self.a.set_xlim(float(np.min(x)), float(np.max(x)))
        self.a.set_title(f"{net}: 1-D slice", fontsize=9)
        self.b.cla()
        _contour(self.b, self.grids[net], f"{net}: 2-D contour")


# ===========================================================================
# small nets trained live (FAST mode) and the cache of the full-scale numbers
# ===========================================================================
def train_twins(depth: int = 20, steps: int = 200, batch_size: int = 64, per_class: int = 300, lr: float = 0.1,
                seed: int = 0, amp: Any = "fast", kinds: Sequence[str] = ("resnet", "plain"),
                progress: bool = True, on_step: Callable[[str, int, float], None] | None = None
                ) -> dict[str, CifarResNet]:
    """A residual net and its plain twin (same init seed, same batches), trained briefly: ``{"resnet", "plain"}``.

    The live stand-ins for the cached nets: ``steps`` SGD steps (momentum 0.9,
    weight decay 5e-4) with a cosine schedule on ``per_class`` training images
    per class. ``kinds`` trains only some of the two (one call per kind keeps
    each call short; the twins are the same either way). ``progress``: a bar over the steps;
    ``on_step(kind, step, loss)`` after every step (:class:`TwinsRun` draws it).
    """
    x, y = stratified_subset(True, per_class, seed=seed)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    batches = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y) - batch_size + 1, batch_size)]
    nets = {}
    with torch_threads(1):
        for kind in kinds:
            torch.manual_seed(seed)
            net = create_model(f"{kind}_cifar", depth=depth, num_classes=10, in_channels=1)
            opt = make_optimizer(net, "sgd", lr, 5e-4, 0.9)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
            def step_done(step: int, loss: float, kind: str = kind, sched: Any = sched) -> None:
                sched.step()
                if on_step is not None:
                    on_step(kind, step, loss)

            train_steps(net, batches, steps, optimizer=opt, amp=amp, on_step=step_done, progress=progress,
                        desc=f"training {kind}-{depth}")
            nets[kind] = net.eval()
    return nets


class TwinsRun(RunPlot):
    """:func:`train_twins` while you watch: the ResNet, then its plain twin, the loss of every step.

    Same seed, same batches, same schedule: the two curves differ only by the
    shortcuts. Thin lines are every step's loss, thick ones the mean of the
    last 20 steps. Earlier runs (another depth or length) stay, faded; Stop
    ends the run (the nets trained so far stay in :attr:`nets`, unfinished).
    After a run :attr:`nets` is ``{"resnet": ..., "plain": ...}`` in eval mode (:meth:`pair`).
    """

    figsize = (9.0, 4.4)
    panels = (Panel("training loss (cross-entropy)", ylim=(0.0, 2.6), legend="upper right"),)
    interval_s = TRAINING_FRAME_S
    smooth = 20

    def __init__(self) -> None:
        super().__init__()
        self.nets: dict[str, CifarResNet] = {}

    def build(self, fig: Figure) -> None:
        super().build(fig)
        fig.subplots_adjust(left=0.09, right=0.97, bottom=0.13, top=0.86)

    def train(self, depth: int = 20, steps: int = 300, batch_size: int = 64, per_class: int = 600, lr: float = 0.1,
              seed: int = 0) -> None:
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.start(f"ResNet-{depth} vs plain-{depth}, {steps} steps", steps)
        self.nets = {}
        recent: dict[str, list[float]] = {}

        def on_step(kind: str, step: int, loss: float) -> None:
            name = f"{'ResNet' if kind == 'resnet' else 'plain'}-{depth}"
            self._color_of.setdefault(name, "C0" if kind == "resnet" else "C3")
            self._color_of.setdefault(f"{name}: every step", self._color_of[name])
            last = recent.setdefault(kind, [])
            last.append(loss)
            del last[:-self.smooth]
            self.add(f"{name}: every step", step, loss, style="-")
            self.series[f"{name}: every step"].line.set(lw=0.5, alpha=0.45)
            self.add(name, step, sum(last) / len(last))
            done = step + (steps if kind == "plain" else 0)
            self.note(f"{self.label}: {name}, step {step}; about {self.seconds_left(done, 2 * steps):.0f} s left")

        for kind in ("resnet", "plain"):  # one call per net: a stopped run keeps the ResNet
            self.nets.update(train_twins(depth, steps, batch_size, per_class, lr, seed, kinds=(kind,),
                                         progress=False, on_step=on_step))
            self.flush()
        means = {k: v[-1] for k, v in ((k, s.ys) for k, s in self.series.items() if ":" not in k)}
        self.note(f"{self.label}: done in {self.elapsed_s():.0f} s · mean of the last {self.smooth} steps: "
                  + ", ".join(f"{k.split('-')[0]} {v:.2f}" for k, v in means.items()))

    def pair(self) -> dict[str, CifarResNet]:
        """``{"resnet": ..., "plain": ...}`` of the latest run; a ``ValueError`` if it did not train both."""
        if set(self.nets) != {"resnet", "plain"}:
            raise ValueError("the latest run did not train both nets (stopped, or not run yet): press Run and let it "
                             "finish, then run this cell again")
        return dict(self.nets)

    def _draw_legends(self) -> None:
        """The smoothed curves by name (the thin every-step lines share their colour), and the faded runs."""
        ax = self.axes[0]
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        shown = [s for k, s in self.series.items() if ":" not in k]
        handles, labels = [s.line for s in shown], [f"{s.label} (mean of {self.smooth} steps)" for s in shown]
        if self.runs:
            handles.append(Line2D([], [], color="gray", alpha=self.faded_alpha + 0.2, lw=1.0))
            labels.append("earlier runs (faded)")
        if handles:
            ax.legend(handles, labels, fontsize=8, loc=self.panels[0].legend)


CACHE_FILES = {
    "lesion_single": "lesion_single.csv", "lesion_random": "lesion_random.csv",
    "path_gradients": "path_gradients.csv", "landscape_1d": "landscape_1d.csv", "landscape_2d": "landscape_2d.csv",
}
PARTS = ("lesion", "paths", "landscape")
PART_TABLES = {"lesion": ("lesion_single", "lesion_random"), "paths": ("path_gradients",),
               "landscape": ("landscape_1d", "landscape_2d")}
#: What `python -m resnet_tutorial why` computes, part by part (recorded in meta.json).
CACHE_SETTINGS: dict[str, dict[str, Any]] = {
    "lesion": {"test_per_class": 100, "draws": 5, "seed": 0, "amp": "fast"},
    "paths": {"images": 64, "draws": 8, "seed": 0},
    "landscape": {"images": 256, "batch_size": 256, "points_1d": 41, "points_2d": 21, "span": 1.0,
                  "seed": 0, "amp": "fast"},
}
def _mixed_subset(train: bool, n: int, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` images, every class equally often (up to one), in random order (so each batch mixes classes)."""
    x, y = stratified_subset(train, math.ceil(n / 10), seed=seed)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n]
    return x[perm], y[perm]


def _load_nets(weights: Path, depths: Sequence[int]) -> dict[str, CifarResNet]:
    nets = {}
    for depth in depths:
        for kind in ("resnet", "plain"):
            path = weights / f"{kind}{depth}.pt"
            if not path.is_file():
                raise results.missing("degradation_full", weights, f"no trained net {path.name}")
            nets[f"{kind}{depth}"] = load_model(path)
    return nets


def _cache_lesion(nets: Mapping[str, CifarResNet], s: Mapping[str, Any], log: Callable[[str], None]) -> dict[str, pd.DataFrame]:
    x, y = stratified_subset(False, s["test_per_class"], seed=s["seed"])
    single, random = [], []
    for name, net in nets.items():
        net = net.to(memory_format=torch.channels_last)
        single.append(lesion_single(net, x, y, amp=s["amp"]).assign(net=name))
        random.append(lesion_random(net, x, y, draws=s["draws"], seed=s["seed"], amp=s["amp"]).assign(net=name))
        log(f"lesions of {name}: intact {single[-1]['baseline'].iloc[0]:.4f}, "
            f"{len(random[-1])} random deletions")
    return {"lesion_single": pd.concat(single, ignore_index=True),
            "lesion_random": pd.concat(random, ignore_index=True)}


def _cache_paths(nets: Mapping[str, CifarResNet], s: Mapping[str, Any], log: Callable[[str], None]) -> dict[str, pd.DataFrame]:
    x, y = _mixed_subset(False, s["images"], s["seed"])
    tables = []
    for name, net in nets.items():
        if not name.startswith("resnet"):
            continue
        t = gradient_by_path_length(net.eval(), x, y, draws=s["draws"], seed=s["seed"])
        _, span = effective_paths(t, len(net.blocks()))
        tables.append(t.assign(net=name, blocks=len(net.blocks())))
        log(f"path gradients of {name}: 90 % of the gradient from paths of length {span[0]}-{span[1]}")
    return {"path_gradients": pd.concat(tables, ignore_index=True)}


def _cache_landscape(nets: Mapping[str, CifarResNet], s: Mapping[str, Any], log: Callable[[str], None]) -> dict[str, pd.DataFrame]:
    x, y = _mixed_subset(True, s["images"], s["seed"])
    kw = dict(seed=s["seed"], batch_size=s["batch_size"], amp=s["amp"])
    line = tuple(np.linspace(-s["span"], s["span"], s["points_1d"]))
    plane = tuple(np.linspace(-s["span"], s["span"], s["points_2d"]))
    ones, twos = [], []
    stale = f"plain{max(s['depths'])}"  # the deepest plain net also gets the slice with stale BN statistics
    for name, net in nets.items():
        modes = ("batch", "running") if name == stale else ("batch",)
        for bn in modes:
            ones.append(landscape_1d(net, x, y, line, bn=bn, **kw).assign(net=name, bn=bn))
        twos.append(landscape_2d(net, x, y, plane, **kw).assign(net=name))
        log(f"landscape of {name}: {landscape_stats(twos[-1])}")
    return {"landscape_1d": pd.concat(ones, ignore_index=True), "landscape_2d": pd.concat(twos, ignore_index=True)}


def build_cache(weights: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
                depths: Sequence[int] = (20, 56), parts: Sequence[str] = PARTS, force: bool = False,
                log: Callable[[str], None] = print, command: str | None = None) -> dict:
    """Compute the cached tables of lesson 11 from the trained nets in ``weights``; return the metadata.

    Each part (``lesion``, ``paths``, ``landscape``) is written as soon as it is
    done, with its settings, wall time and machine in ``out/meta.json``
    (:func:`resnet_tutorial.results.save_parts`); a part already there with the
    same settings is skipped (``force=True`` recomputes it), so an interrupted
    run continues. ``weights=None``: the trained nets found by
    :func:`resnet_tutorial.results.locate`; ``out=None``:
    :func:`resnet_tutorial.results.output_path`.
    """
    weights = results.path("degradation_full") if weights is None else Path(weights)
    out = results.output_path("lesson10") if out is None else Path(out)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}: choose from {PARTS}")
    nets: dict[str, CifarResNet] = {}
    compute = {"lesion": _cache_lesion, "paths": _cache_paths, "landscape": _cache_landscape}

    def job(part: str) -> Callable[[dict], Mapping]:
        def run(settings: dict) -> Mapping:
            nets.update(nets or _load_nets(weights, depths))
            return compute[part](nets, settings, log)
        return run

    jobs = {p: ({**CACHE_SETTINGS[p], "depths": list(depths)}, PART_TABLES[p], job(p)) for p in parts}
    about = {"machine": machine_line(), "torch": torch.__version__, "weights": str(weights)}
    return results.save_parts(out, jobs, CACHE_FILES, force=force, log=log, command=command, about=about)


def load_cache(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The cached tables (``{name: DataFrame}``, see ``CACHE_FILES``) plus ``"meta"`` (meta.json).

    ``path=None`` looks the cache up with :func:`resnet_tutorial.results.locate`.
    """
    path = results.locate("lesson10") if path is None else Path(path)
    missing = [f for f in [*CACHE_FILES.values(), "meta.json"] if not (path / f).is_file()]
    if missing:
        raise results.missing("lesson10", path, f"lesson 11's cache is incomplete (missing {missing})")
    cache: dict[str, Any] = {name: pd.read_csv(path / f) for name, f in CACHE_FILES.items()}
    cache["meta"] = results.read_json(path / "meta.json")
    return cache
