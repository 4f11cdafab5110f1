"""Lesson 08 · The degradation problem: He et al.'s Fig. 6 figures and the depth explorer.

The experiment itself (training, the cache, the trained nets) is
:mod:`resnet_tutorial.degradation`.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FormatStrFormatter, MaxNLocator, NullFormatter

from ..degradation import KINDS, load_degradation

__all__ = ["ERROR_YLIM", "final_errors", "depth_color", "plot_degradation", "plot_final_error_vs_depth", "degradation_explorer"]

#: One error axis (%, log) for every figure of the lesson: the full run, the small run and
#: the live run can be compared at a glance (their errors span 1-60 %).
ERROR_YLIM = (1.0, 70.0)
#: The depths the colour scale spans (6n+2 nets): a depth gets the same colour in every figure.
COLOR_DEPTHS = (8, 110)
_LOG_TICKS = [0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100]


def final_errors(table: pd.DataFrame) -> pd.DataFrame:
    """Last-epoch training and test error per model: rows = depth, columns = (error, kind)."""
    last = table[table["epoch"] == table.groupby("model")["epoch"].transform("max")]
    return last.pivot_table(index="depth", columns="kind", values=["train_error", "test_error"])


def depth_color(depth: int):
    """The colour of a depth, the same in every figure of the lesson (deeper = darker)."""
    lo, hi = (math.log(d) for d in COLOR_DEPTHS)
    t = (math.log(depth) - lo) / (hi - lo)
    return plt.get_cmap("viridis")(0.9 - 0.8 * min(max(t, 0.0), 1.0))


def _error_axis(ax, lo: float, hi: float) -> None:
    """Log axis for errors spanning a factor of 3 or more (first epochs and final gaps both readable)."""
    if hi / lo >= 3:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(FixedLocator(_LOG_TICKS))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(lo / 1.15 if hi / lo >= 3 else 0, hi * 1.15)


def plot_degradation(table: pd.DataFrame, depths: Sequence[int] | None = None, kinds: Sequence[str] = KINDS,
                     ylim: tuple[float, float] | None = None) -> Figure:
    """He et al.'s Fig. 6 layout: one panel per kind, error (%) vs epoch; dashed = train, solid = test.

    Each depth has one colour in every figure (:func:`depth_color`, deeper = darker);
    ``depths`` selects which ones to show. ``ylim`` (in %) fixes the error axis, so that
    two figures (the cached run and a live one) can be compared at a glance.
    """
    all_depths = sorted(table["depth"].unique())
    depths = all_depths if depths is None else [d for d in all_depths if d in set(depths)]
    if not depths:
        raise ValueError(f"none of the requested depths is in the table (it has {all_depths})")
    kinds = [k for k in kinds if k in set(table["kind"])]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for depth in depths:
            run = table[(table["kind"] == kind) & (table["depth"] == depth)].sort_values("epoch")
            if run.empty:
                continue
            color = depth_color(depth)
            ax.plot(run["epoch"], 100 * run["train_error"], "--", color=color, lw=1.5)
            ax.plot(run["epoch"], 100 * run["test_error"], "-", color=color, lw=2.2, label=f"{kind}-{depth}")
        ax.set_title("plain networks" if kind == "plain" else "residual networks (ResNet)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(title="solid: test, dashed: train", fontsize=9, title_fontsize=9)
    shown = table[table["depth"].isin(depths) & table["kind"].isin(kinds)]
    errors = 100 * shown[["train_error", "test_error"]].to_numpy()
    lo, hi = ylim if ylim is not None else (max(errors.min(), 0.3), max(errors.max(), 0.3))
    for ax in axes[0]:
        _error_axis(ax, lo, hi)
    axes[0, 0].set_ylabel("error (%, log scale)" if axes[0, 0].get_yscale() == "log" else "error (%)")
    fig.tight_layout()
    return fig


def plot_final_error_vs_depth(table: pd.DataFrame, final_train_error: dict[str, float] | None = None) -> Figure:
    """He et al.'s message in one picture: final training (and test) error against depth, per family.

    ``final_train_error`` maps model names (``"resnet56"``) to the error of the final
    weights on all training images in eval mode (the cache's ``meta["models"]``);
    without it the last epoch's running training error is used.
    """
    last = table[table["epoch"] == table.groupby("model")["epoch"].transform("max")].sort_values("depth")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for kind, color, marker in (("plain", "C3", "s"), ("resnet", "C0", "o")):
        rows = last[last["kind"] == kind]
        if rows.empty:
            continue
        train = [100 * (final_train_error or {}).get(m, e) for m, e in zip(rows["model"], rows["train_error"])]
        name = "plain" if kind == "plain" else "ResNet"
        ax.plot(rows["depth"], train, marker + "-", color=color, lw=2, label=f"{name}: training error")
        ax.plot(rows["depth"], 100 * rows["test_error"], marker + ":", color=color, lw=1.2, alpha=0.8,
                label=f"{name}: test error")
    ax.set_xticks(sorted(last["depth"].unique()))
    ax.set_xlabel("depth (weighted layers)")
    ax.set_ylabel("final error (%)")
    ax.set_title("final error against depth" + (" (training error of the final weights, eval mode)"
                                                 if final_train_error else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def degradation_explorer(depths: Sequence[int] = (8, 20, 56), path: str | os.PathLike | None = None,
                         show: str = "both", ylim: tuple[float, float] | None = None) -> Figure:
    """Explorer for lesson 08: the cached curves for the chosen ``depths``.

    ``show`` is ``"both"``, ``"plain"`` or ``"resnet"`` (which panels). Reads the
    cache on every call (cheap), so it always shows what is on disk.
    """
    kinds = KINDS if show == "both" else (show,)
    if show not in ("both", *KINDS):
        raise ValueError(f"show must be 'both', 'plain' or 'resnet', got {show!r}")
    if not depths:
        raise ValueError("select at least one depth")
    return plot_degradation(load_degradation(path), depths=depths, kinds=kinds, ylim=ylim)
