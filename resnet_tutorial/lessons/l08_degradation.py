"""Lesson 08 · The degradation problem: He et al.'s Fig. 6 figures and the depth explorer.

The experiment itself (training, the cache, the trained nets) is
:mod:`resnet_tutorial.degradation`.
"""

from __future__ import annotations

import os
from typing import Sequence

import pandas as pd

from ..degradation import KINDS, load_degradation

__all__ = ["final_errors", "plot_degradation", "degradation_explorer"]


def final_errors(table: pd.DataFrame) -> pd.DataFrame:
    """Last-epoch training and test error per model: rows = depth, columns = (error, kind)."""
    last = table[table["epoch"] == table.groupby("model")["epoch"].transform("max")]
    return last.pivot_table(index="depth", columns="kind", values=["train_error", "test_error"])


def plot_degradation(table: pd.DataFrame, depths: Sequence[int] | None = None, kinds: Sequence[str] = KINDS):
    """He et al.'s Fig. 6 layout: one panel per kind, error (%, log) vs epoch; dashed = train, solid = test.

    Deeper networks are drawn darker; ``depths`` selects which ones to show.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, MaxNLocator, NullFormatter

    all_depths = sorted(table["depth"].unique())
    depths = all_depths if depths is None else [d for d in all_depths if d in set(depths)]
    if not depths:
        raise ValueError(f"none of the requested depths is in the table (it has {all_depths})")
    kinds = [k for k in kinds if k in set(table["kind"])]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, kind in zip(axes[0], kinds):
        for i, depth in enumerate(depths):
            color = cmap(0.85 - 0.75 * all_depths.index(depth) / max(len(all_depths) - 1, 1))
            run = table[(table["kind"] == kind) & (table["depth"] == depth)].sort_values("epoch")
            if run.empty:
                continue
            ax.plot(run["epoch"], 100 * run["train_error"], "--", color=color, lw=1.5)
            ax.plot(run["epoch"], 100 * run["test_error"], "-", color=color, lw=2.2, label=f"{kind}-{depth}")
        ax.set_title("plain networks" if kind == "plain" else "residual networks (ResNet)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(title="solid: test, dashed: train", fontsize=9, title_fontsize=9)
    # A log axis keeps both the first epochs (tens of %) and the final gaps (a few tenths) readable;
    # a short run whose errors span less than a factor of 3 reads better on a linear axis.
    shown = table[table["depth"].isin(depths) & table["kind"].isin(kinds)]
    errors = 100 * shown[["train_error", "test_error"]].to_numpy()
    lo, hi = max(errors.min(), 0.1), max(errors.max(), 0.1)
    log = hi / lo >= 3
    for ax in axes[0]:
        if log:
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(FixedLocator([1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100]))
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(NullFormatter())
    axes[0, 0].set_ylabel("error (%, log scale)" if log else "error (%)")
    fig.tight_layout()
    return fig


def degradation_explorer(depths: Sequence[int] = (8, 20, 56), path: str | os.PathLike | None = None,
                         show: str = "both"):
    """Explorer for lesson 08: the cached curves for the chosen ``depths``.

    ``show`` is ``"both"``, ``"plain"`` or ``"resnet"`` (which panels). Reads the
    cache on every call (cheap), so it always shows what is on disk.
    """
    kinds = KINDS if show == "both" else (show,)
    if show not in ("both", *KINDS):
        raise ValueError(f"show must be 'both', 'plain' or 'resnet', got {show!r}")
    if not depths:
        raise ValueError("select at least one depth")
    return plot_degradation(load_degradation(path), depths=depths, kinds=kinds)
