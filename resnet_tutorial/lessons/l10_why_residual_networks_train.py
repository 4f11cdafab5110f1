"""Lesson 10 · Why residual networks train: three answers from the research after He et al. (2016).

Lesson 08 showed that deeper plain nets train worse even with BatchNorm and a
good initialisation, whose gradients do not vanish. This module holds the
measurements that answer "then why do shortcuts help?":

1. **Shattered gradients** (Balduzzi et al., ICML 2017): :class:`ShatterNet`,
   a one-input, one-output net whose input gradient ``dy/dx``
   (:func:`input_gradient`) is measured on 256 points in [-2, 2];
   :func:`autocorrelation` of that gradient over the input;
   :func:`correlation_vs_depth` for plain and residual variants; the naive
   replication and its fixes (:func:`replication_table`).
2. **Ensembles of shallow paths** (Veit et al., NeurIPS 2016):
   :func:`path_length_counts`, block deletion at test time (:func:`deleted`,
   :func:`lesion_single`, :func:`lesion_random`) and the gradient carried by
   paths of each length (:class:`PathGradients`,
   :func:`gradient_by_path_length`, :func:`effective_paths`).
3. **Loss landscapes** (Li et al., NeurIPS 2018):
   :func:`filter_normalized_direction`, :func:`landscape_1d`,
   :func:`landscape_2d` (BatchNorm statistics from the batch at every point, or
   the stale running statistics to show the difference) and
   :func:`landscape_stats`.
4. **Training without BatchNorm** (SkipInit, De & Smith 2020; Fixup, Zhang et
   al. 2019): :func:`train_without_bn`.

:func:`build_cache` computes everything the notebook reads from
``results/lesson10/`` from the trained nets of the full degradation run
(``python -m resnet_tutorial why``); :func:`load_cache` reads it back.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import platform
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from .. import results
from ..blocks import ResidualBlock
from ..checkpoints import load_model
from ..data import stratified_subset
from ..device import autocast, autocast_dtype, machine_line, torch_threads
from ..models import CifarResNet, create_model
from ..train import train_steps

__all__ = [
    "CACHE_DIR", "NOBN_VARIANTS", "build_nobn_net", "init_output_scale", "SHATTER_VARIANTS", "PathGradients", "ShatterNet",
    "accuracy", "autocorrelation", "block_table", "build_cache", "correlation_vs_depth", "deleted",
    "draw_landscape_explorer", "draw_shatter_explorer", "effective_paths", "filter_normalized_direction",
    "frozen_statistics", "gradient_by_path_length", "input_gradient", "landscape_1d", "landscape_2d",
    "landscape_stats", "lesion_random", "lesion_single", "load_cache", "naive_autocorrelation",
    "path_length_counts", "plot_correlation_vs_depth", "plot_landscape_1d", "plot_landscapes_2d",
    "plot_lesions", "plot_naive_vs_fixed", "plot_nobn", "plot_path_gradients", "plot_shattered",
    "replication_table", "shatter_gradients", "train_twins", "train_without_bn",
]

#: Where the notebook reads the cache (``lesson10``, found by :func:`resnet_tutorial.results.locate`).
CACHE_DIR = results.path("lesson10")
#: The trained nets of the full degradation run.
WEIGHTS_DIR = results.path("degradation_full")


# ===========================================================================
# 1. Shattered gradients (Balduzzi et al. 2017)
# ===========================================================================
SHATTER_WIDTH = 200
SHATTER_POINTS = 256
#: The four nets of the lesson: name -> ShatterNet switches.
SHATTER_VARIANTS: dict[str, dict[str, Any]] = {
    "plain, no BN": dict(bn=False, shortcut=False),
    "plain + BN": dict(bn=True, shortcut=False),
    "residual + BN": dict(bn=True, shortcut=True, beta=1.0),
    "residual + BN, β=0.1": dict(bn=True, shortcut=True, beta=0.1),
}
SHATTER_INITS = ("he", "1/D")


class _BatchStatNorm(nn.Module):
    """BatchNorm without affine parameters whose statistics come from the current batch.

    The mean and variance over the batch are *held constant* when
    differentiating (``detach``): the net is then one function of each input,
    the function it computes on this batch, and ``d(sum y)/dx`` is ``dy_i/dx_i``
    for every point. :func:`frozen_statistics` reuses one batch's statistics.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.frozen: tuple[Tensor, Tensor] | None = None
        self.last: tuple[Tensor, Tensor] | None = None

    def forward(self, h: Tensor) -> Tensor:
        if self.frozen is not None:
            mean, var = self.frozen
        else:
            mean, var = h.mean(0).detach(), h.var(0, unbiased=False).detach()
            self.last = (mean, var)
        return (h - mean) / torch.sqrt(var + self.eps)


class _Dense(nn.Module):
    """``x W^T + b`` with given weights (``nn.Linear`` would first draw its own, a third of the build time)."""

    def __init__(self, weight: Tensor, bias: Tensor) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(weight), nn.Parameter(bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


class ShatterNet(nn.Module):
    """A net from one input to one output: ``depth`` hidden layers of ``width`` ReLU units.

    Layout (pre-activation, as lesson 03's blocks)::

        h_0 = W_0 x + b_0                              (input layer, 1 -> width)
        u_l = W_l ReLU(N(h_{l-1})) + b_l               (l = 1 .. depth; N = BN or nothing)
        h_l = u_l            (plain)   or   h_{l-1} + beta * u_l   (residual)
        y   = W_out h_depth + b_out

    ``init="he"`` draws every weight *and bias* from N(0, 2/fan_in) (He et al.
    2015; fan_in is 1 for the input layer); ``init="1/D"`` uses N(0, 1/width)
    for every layer, the input layer included, as a naive replication does.
    ``biases=False`` sets all biases to zero. ``seed`` fixes all draws.
    """

    def __init__(self, depth: int, width: int = SHATTER_WIDTH, *, bn: bool = False, shortcut: bool = False,
                 beta: float = 1.0, init: str = "he", biases: bool = True, seed: int = 0) -> None:
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"depth must be a non-negative int (hidden layers), got {depth!r}")
        if init not in SHATTER_INITS:
            raise ValueError(f"init must be one of {SHATTER_INITS}, got {init!r}")
        if width < 1 or not beta > 0:
            raise ValueError(f"width must be >= 1 and beta > 0, got width={width}, beta={beta}")
        self.depth, self.width, self.bn, self.shortcut, self.beta = depth, width, bn, shortcut, float(beta)
        g = torch.Generator().manual_seed(seed)

        def layer(fan_in: int, fan_out: int) -> _Dense:
            std = math.sqrt(2.0 / fan_in if init == "he" else 1.0 / width)
            weight = torch.randn(fan_out, fan_in, generator=g) * std
            bias = torch.randn(fan_out, generator=g) * std
            return _Dense(weight, bias if biases else torch.zeros_like(bias))

        self.stem = layer(1, width)
        self.layers = nn.ModuleList(layer(width, width) for _ in range(depth))
        self.norms = nn.ModuleList(_BatchStatNorm() if bn else nn.Identity() for _ in range(depth))
        self.head = layer(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)
        for norm, lin in zip(self.norms, self.layers):
            u = lin(torch.relu(norm(h)))
            h = h + self.beta * u if self.shortcut else u
        return self.head(h)


def shatter_inputs(n: int = SHATTER_POINTS) -> Tensor:
    """``n`` evenly spaced inputs in [-2, 2] as one batch ``[n, 1]`` (float64 is not needed)."""
    return torch.linspace(-2.0, 2.0, n).unsqueeze(1)


def input_gradient(net: nn.Module, x: Tensor | None = None) -> Tensor:
    """``dy/dx`` at every input of the batch ``x`` ``[n, 1]`` by autograd: a tensor ``[n]``."""
    x = (shatter_inputs() if x is None else x).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(net(x).sum(), x)
    return g.squeeze(1)


@contextmanager
def frozen_statistics(net: nn.Module, x: Tensor) -> Iterator[nn.Module]:
    """Inside the block the net's batch norms use the statistics of batch ``x`` for any input."""
    norms = [m for m in net.modules() if isinstance(m, _BatchStatNorm)]
    with torch.no_grad():
        net(x)
    for m in norms:
        m.frozen = m.last
    try:
        yield net
    finally:
        for m in norms:
            m.frozen = None


def shatter_gradients(depth: int, seed: int = 0, n_points: int = SHATTER_POINTS, **net_kw: Any) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and ``dy/dx`` of a fresh ``ShatterNet(depth, seed=seed, **net_kw)``, as NumPy arrays."""
    x = shatter_inputs(n_points)
    with torch_threads(1):
        g = input_gradient(ShatterNet(depth, seed=seed, **net_kw), x)
    return x.squeeze(1).numpy(), g.numpy().astype(np.float64)


def autocorrelation(g: Sequence[float] | np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """Autocorrelation of a sequence over its index: mean removed, each lag averaged over its overlap.

    ``r[k] = mean_i (g_i - m)(g_{i+k} - m) / mean_i (g_i - m)^2`` for ``k = 0 .. max_lag``
    (``m`` the mean; the numerator averages the ``n - k`` overlapping pairs),
    so ``r[0] = 1``, white noise gives about 0 at every other lag and a constant
    offset changes nothing. ``max_lag`` defaults to ``n // 2``.
    """
    g = np.asarray(g, dtype=np.float64).ravel()
    n = len(g)
    max_lag = n // 2 if max_lag is None else int(max_lag)
    if n < 2 or not 0 <= max_lag < n:
        raise ValueError(f"need at least 2 values and 0 <= max_lag < {n}, got n={n}, max_lag={max_lag}")
    d = g - g.mean()
    c0 = float(d @ d) / n
    if c0 == 0:
        raise ValueError("the sequence is constant: its autocorrelation is undefined")
    return np.array([float(d[: n - k] @ d[k:]) / (n - k) for k in range(max_lag + 1)]) / c0


def naive_autocorrelation(g: Sequence[float] | np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """The shortcut estimate: ``sum_i g_i g_{i+k} / sum_i g_i^2`` (no mean removed, no overlap average).

    What ``np.correlate(g, g, "same")`` normalised at lag 0 gives. A mean
    that is not zero makes it decay like the overlap ``(n - k) / n`` whatever
    the fluctuations do, so it reports correlation where there is none.
    """
    g = np.asarray(g, dtype=np.float64).ravel()
    n = len(g)
    max_lag = n // 2 if max_lag is None else int(max_lag)
    full = np.correlate(g, g, mode="full")[n - 1:]
    return full[: max_lag + 1] / full[0]


def _kinks(g: np.ndarray, rel: float = 1e-4) -> int:
    """Steps between neighbouring points where a piecewise-constant gradient changes value."""
    scale = max(float(np.abs(g).max()), 1e-30)
    return int((np.abs(np.diff(g)) > rel * scale).sum())


CORR_DEPTHS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 50)


def correlation_vs_depth(variants: Mapping[str, Mapping[str, Any]] | None = None,
                         depths: Sequence[int] = CORR_DEPTHS, seeds: Iterable[int] = range(10),
                         lag: int = 1) -> pd.DataFrame:
    """Lag-``lag`` autocorrelation of ``dy/dx`` for every variant, depth and seed.

    Columns ``variant, depth, seed, corr, grad_rms, kinks``. ``lag=1`` is a step
    of 4/255 ≈ 0.016 in x.
    """
    variants = SHATTER_VARIANTS if variants is None else variants
    rows = []
    for (name, kw), depth, seed in itertools.product(variants.items(), depths, list(seeds)):
        _, g = shatter_gradients(depth, seed=seed, **kw)
        rows.append({"variant": name, "depth": depth, "seed": seed, "corr": autocorrelation(g, lag)[lag],
                     "grad_rms": float(np.sqrt(np.mean(g ** 2))), "kinks": _kinks(g)})
    return pd.DataFrame(rows)


def decay_fits(table: pd.DataFrame, min_depth: int = 4) -> pd.DataFrame:
    """Per variant: the mean correlation's fitted per-layer factor (``c ~ a q^L``) and power (``c ~ a L^-p``).

    Fitted on depths ``>= min_depth`` where the mean correlation is above 0.05
    (below that it is noise). Balduzzi et al.: feedforward ``q = 1/2``, residual ``p = 1/2``.
    """
    rows = []
    for name, t in table.groupby("variant", sort=False):
        m = t.groupby("depth")["corr"].mean()
        m = m[(m.index >= min_depth) & (m > 0.05)]
        if len(m) < 2:
            rows.append({"variant": name, "per_layer_factor": float("nan"), "power": float("nan")})
            continue
        L, c = np.asarray(m.index, float), np.log(m.to_numpy())
        rows.append({"variant": name, "per_layer_factor": float(np.exp(np.polyfit(L, c, 1)[0])),
                     "power": float(-np.polyfit(np.log(L), c, 1)[0]), "depths": f"{int(L.min())}-{int(L.max())}"})
    return pd.DataFrame(rows).set_index("variant")


def plot_shattered(depths: Sequence[int] = (1, 24, 50), variants: Mapping[str, Mapping[str, Any]] | None = None,
                   seed: int = 0) -> Figure:
    """Balduzzi et al.'s Fig. 1 layout: ``dy/dx`` against ``x``, one row per variant, one column per depth."""
    variants = SHATTER_VARIANTS if variants is None else variants
    fig, axes = plt.subplots(len(variants), len(depths), figsize=(3.3 * len(depths), 1.9 * len(variants)),
                             squeeze=False, sharex=True)
    for r, (name, kw) in enumerate(variants.items()):
        for c, depth in enumerate(depths):
            x, g = shatter_gradients(depth, seed=seed, **kw)
            ax = axes[r, c]
            ax.plot(x, g, lw=0.8, color=f"C{r}")
            ax.set_title(f"{name}, {depth} layer{'s' if depth > 1 else ''}  (r₁ = {autocorrelation(g, 1)[1]:.2f})",
                         fontsize=8)
            ax.tick_params(labelsize=7)
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            ax.yaxis.get_offset_text().set_fontsize(7)
            if c == 0:
                ax.set_ylabel("dy/dx", fontsize=8)
            if r == len(variants) - 1:
                ax.set_xlabel("input x", fontsize=8)
    fig.suptitle("Gradient of the output with respect to the input, 256 points, width 200, He init "
                 "(r₁: correlation of neighbouring gradients)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_autocorrelations(depths: Sequence[int] = (1, 24, 50), variants: Mapping[str, Mapping[str, Any]] | None = None,
                          seeds: Iterable[int] = range(10), max_lag: int = 64) -> Figure:
    """Mean autocorrelation of ``dy/dx`` over ``seeds`` against the distance in x, one panel per variant."""
    variants = SHATTER_VARIANTS if variants is None else variants
    seeds = list(seeds)
    fig, axes = plt.subplots(1, len(variants), figsize=(3.2 * len(variants), 2.8), sharey=True, squeeze=False)
    step = 4.0 / (SHATTER_POINTS - 1)
    for ax, (name, kw) in zip(axes[0], variants.items()):
        for j, depth in enumerate(depths):
            acs = [autocorrelation(shatter_gradients(depth, seed=s, **kw)[1], max_lag) for s in seeds]
            ax.plot(np.arange(max_lag + 1) * step, np.mean(acs, axis=0), color=plt.get_cmap("viridis")(0.1 + 0.8 * j / max(len(depths) - 1, 1)),
                    label=f"{depth} layer{'s' if depth > 1 else ''}")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("distance in x")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"autocorrelation of dy/dx\n(mean of {len(seeds)} nets)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_correlation_vs_depth(table: pd.DataFrame) -> Figure:
    """Mean ± std over seeds of the lag-1 correlation against depth, with the paper's two rates."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, t) in enumerate(table.groupby("variant", sort=False)):
        s = t.groupby("depth")["corr"].agg(["mean", "std"])
        ax.errorbar(s.index, s["mean"], yerr=s["std"], marker="o", ms=4, capsize=2, color=f"C{i}", label=name)
    L = np.arange(1, 51)
    ax.plot(L, 2.0 ** -L, ":", color="k", lw=1, label="paper, feedforward: $2^{-L}$")
    ax.plot(L, 1 / np.sqrt(L), "--", color="k", lw=1, label=r"paper, residual: $1/\sqrt{L}$")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xscale("log")
    ax.set_ylim(-0.25, 1.05)
    ax.set_xlabel("depth L (hidden layers, log scale)")
    ax.set_ylabel("correlation of dy/dx at neighbouring\ninputs (Δx = 0.016)")
    ax.set_title(f"Shattering against depth ({table['seed'].nunique()} random nets per point, ±1 std)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


#: The naive replication, one fix at a time: name -> (ShatterNet switches, estimator).
REPLICATION_STEPS: dict[str, tuple[dict[str, Any], str]] = {
    "naive: σ²=1/D, no BN, raw autocorrelation": (dict(init="1/D"), "naive"),
    "σ²=1/D, no BN, proper autocorrelation": (dict(init="1/D"), "proper"),
    "He init, no biases, no BN": (dict(init="he", biases=False), "proper"),
    "He init, no BN": (dict(init="he"), "proper"),
    "He init + BN (fixed)": (dict(init="he", bn=True), "proper"),
}


def replication_table(depths: Sequence[int] = (1, 24, 50), seeds: Iterable[int] = range(6), lag: int = 1,
                      far_lag: int = 32) -> pd.DataFrame:
    """Plain nets from the naive recipe to the fixed one: gradient size, kinks and correlations.

    Columns ``step, depth, grad_rms, kinks, corr_lag1, corr_far`` (means over
    ``seeds``; ``corr_far`` at lag ``far_lag``, a distance of 0.5 in x), each
    correlation with the estimator of that step.
    """
    rows = []
    seeds = list(seeds)
    for name, (kw, estimator) in REPLICATION_STEPS.items():
        est = naive_autocorrelation if estimator == "naive" else autocorrelation
        for depth in depths:
            vals = []
            for s in seeds:
                _, g = shatter_gradients(depth, seed=s, **kw)
                r = est(g, far_lag)
                vals.append((float(np.sqrt(np.mean(g ** 2))), _kinks(g), r[lag], r[far_lag]))
            v = np.mean(vals, axis=0)
            rows.append({"step": name, "depth": depth, "grad_rms": v[0], "kinks": v[1], "corr_lag1": v[2],
                         "corr_far": v[3]})
    return pd.DataFrame(rows)


def plot_naive_vs_fixed(depth: int = 50, seed: int = 0, max_lag: int = 128) -> Figure:
    """Side by side: the naive replication and the fixed one at ``depth`` layers (gradients, autocorrelations)."""
    x, g_naive = shatter_gradients(depth, seed=seed, init="1/D")
    _, g_fixed = shatter_gradients(depth, seed=seed, init="he", bn=True)
    lags = np.arange(max_lag + 1) * 4.0 / (SHATTER_POINTS - 1)
    fig, axes = plt.subplots(2, 2, figsize=(10, 5.2))
    axes[0, 0].plot(x, g_naive, lw=0.9, color="C3")
    axes[0, 0].set_title(f"naive: σ² = 1/D everywhere, no BN ({depth} layers)", fontsize=9)
    axes[0, 1].plot(x, g_fixed, lw=0.8, color="C1")
    axes[0, 1].set_title(f"fixed: He init (σ² = 2/fan_in) + BN ({depth} layers)", fontsize=9)
    for ax in axes[0]:
        ax.set_xlabel("input x")
        ax.set_ylabel("dy/dx")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    for ax, g, color in ((axes[1, 0], g_naive, "C3"), (axes[1, 1], g_fixed, "C1")):
        ax.plot(lags, naive_autocorrelation(g, max_lag), "--", color="0.4", label="raw: no mean removed, no overlap average")
        ax.plot(lags, autocorrelation(g, max_lag), color=color, label="mean removed, overlap-averaged")
        ax.axhline(0, color="0.7", lw=0.8)
        ax.set_xlabel("distance in x")
        ax.set_ylabel("autocorrelation")
        ax.set_ylim(-0.3, 1.05)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def draw_shatter_explorer(depth: int = 24, bn: bool = True, shortcut: bool = False, beta: float = 1.0,
                          seed: int = 0, init: str = "he") -> Figure:
    """The explorer: ``dy/dx`` of one net and its autocorrelation (both estimators), redrawn in place."""
    x, g = shatter_gradients(depth, seed=seed, bn=bn, shortcut=shortcut, beta=beta, init=init)
    max_lag = 64
    lags = np.arange(max_lag + 1) * 4.0 / (SHATTER_POINTS - 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [1.4, 1]})
    a.plot(x, g, lw=0.8, color="C0")
    kind = f"residual, β={beta:g}" if shortcut else "plain"
    a.set_title(f"{depth} layers, {kind}, {'BN' if bn else 'no BN'}, init {init}: dy/dx", fontsize=9)
    a.set_xlabel("input x")
    a.set_ylabel("dy/dx")
    a.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    r = autocorrelation(g, max_lag) if np.ptp(g) > 0 else np.ones(max_lag + 1)
    b.plot(lags, r, color="C0", label="mean removed, overlap-averaged")
    b.plot(lags, naive_autocorrelation(g, max_lag), "--", color="0.5", label="raw (naive)")
    b.axhline(0, color="0.7", lw=0.8)
    b.set_ylim(-0.4, 1.05)
    b.set_xlabel("distance in x")
    b.set_ylabel("autocorrelation")
    b.set_title(f"correlation of neighbours r₁ = {r[1]:.2f}", fontsize=9)
    b.legend(fontsize=7)
    b.grid(alpha=0.3)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.9, wspace=0.3)  # tight_layout: +0.5 s a redraw
    return fig


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

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, (name, t) in enumerate(single.groupby("net", sort=False)):
        ok = t[t["deletable"] & ~t["downsampling"]]
        down = t[t["deletable"] & t["downsampling"]]
        a.plot(ok["block"], 100 * ok["acc"], "o-", ms=3, color=f"C{i}", label=f"{name}")
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
    a.legend(fontsize=7, loc="best", framealpha=0.9)
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
    b.legend(fontsize=8)
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
    axes[2].axvspan(lo - 0.5, hi + 0.5, color="C2", alpha=0.15, label=f"90 % of the gradient: k = {lo}-{hi}")
    axes[2].set_xlabel("path length k")
    axes[2].set_ylabel("share of the total gradient")
    axes[2].set_title("all paths of length k: one path × number of paths", fontsize=9)
    axes[2].legend(fontsize=8)
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if label:
        fig.suptitle(label, fontsize=10)
    fig.tight_layout()
    return fig


# ===========================================================================
# 3. Loss landscapes (Li et al. 2018)
# ===========================================================================
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


def _grid(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    a, b, z = _grid(table)
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

    a, b, z = _grid(table)
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


def draw_landscape_explorer(grids: Mapping[str, pd.DataFrame], slices: Mapping[str, pd.DataFrame],
                            net: str = "resnet56") -> Figure:
    """The landscape explorer: the 1-D slice (where one was computed) and the 2-D contour of one net."""
    if net not in grids:
        raise ValueError(f"no landscape for {net!r}; choose one of {sorted(grids)}")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1.2, 1]})
    t = slices.get(net)
    if t is not None:
        a.plot(t["alpha"], t["loss"], color="C0")
    else:  # a live grid has no separate slice: take the row through the centre
        a_, b_, z = _grid(grids[net])
        a.plot(a_, z[int(np.argmin(np.abs(b_))), :], "o-", ms=3, color="C0")
    a.set_yscale("log")
    a.set_ylim(0.05, 20)
    a.set_xlabel("α along a filter-normalised direction")
    a.set_ylabel("training loss (log)")
    a.set_title(f"{net}: 1-D slice", fontsize=9)
    a.grid(alpha=0.3, which="both")
    cs = _contour(b, grids[net], f"{net}: 2-D contour")
    _loss_colorbar(fig, cs, b)
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.13, top=0.86, wspace=0.25)
    return fig


# ===========================================================================
# 4. Training without BatchNorm (SkipInit / Fixup)
# ===========================================================================
#: name -> CifarResNet switches for the no-BN comparison (``branch_scale``: Fixup's rescaling, see :func:`build_nobn_net`).
NOBN_VARIANTS: dict[str, dict[str, Any]] = {
    "BN (reference)": dict(bn=True),
    "no BN, default init": dict(bn=False),
    "no BN, last conv = 0": dict(bn=False, zero_init_residual=True),
    "no BN, last conv = 0, first conv × n^-½": dict(bn=False, zero_init_residual=True, branch_scale=True),
}


def build_nobn_net(depth: int, bn: bool = True, zero_init_residual: bool = False, branch_scale: bool = False,
                   seed: int = 0) -> CifarResNet:
    """``resnet{depth}`` with or without BN; optionally each branch's last conv zeroed (SkipInit's idea).

    ``branch_scale=True`` also multiplies each branch's first conv by
    ``n^(-1/2)`` for ``n`` blocks, Fixup's rule for two-layer branches (Zhang et
    al. 2019: without it the ``n`` branches' first updates add up to a change
    ``n`` times larger than one block's).
    """
    torch.manual_seed(seed)
    net = create_model("resnet_cifar", depth=depth, num_classes=10, in_channels=1, bn=bn,
                       zero_init_residual=zero_init_residual)
    if branch_scale:
        blocks = net.blocks()
        with torch.no_grad():
            for b in blocks:
                b.conv1.weight.mul_(len(blocks) ** -0.5)
    return net


@torch.no_grad()
def init_output_scale(depths: Sequence[int] = (8, 20, 32, 44, 56), images: int = 64,
                      variants: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Standard deviation of the logits at initialisation for every variant and depth (one batch)."""
    variants = NOBN_VARIANTS if variants is None else variants
    x, _ = stratified_subset(True, max(1, images // 10), seed=0)
    rows = []
    with torch_threads(1):
        for name, kw in variants.items():
            for depth in depths:
                net = build_nobn_net(depth, **kw).train()
                rows.append({"variant": name, "depth": depth, "logit_std": float(net(x).std())})
    return pd.DataFrame(rows)


def train_without_bn(depth: int = 56, steps: int = 200, seeds: Iterable[int] = (0,), lrs: Sequence[float] = (0.02,),
                     batch_size: int = 128, warmup: int = 30, per_class: int = 600, test_per_class: int = 100,
                     variants: Mapping[str, Mapping[str, Any]] | None = None, amp: Any = "fast",
                     progress: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train ``resnet{depth}`` with and without BN from the same init seed: ``(curves, summary)``.

    SGD (momentum 0.9, weight decay 5e-4), each ``lr`` after a linear warm-up
    of ``warmup`` steps, on ``per_class`` training images per class. ``curves``:
    ``variant, lr, seed, step, loss``; ``summary``: ``variant, lr, seed,
    steps_done`` (fewer than ``steps`` when the loss became NaN/inf),
    ``first_loss``, ``final_loss`` (mean of the last 10 % of the steps, NaN
    when it diverged), ``test_acc`` (``test_per_class`` test images per class), ``seconds``.
    """
    variants = NOBN_VARIANTS if variants is None else variants
    x, y = stratified_subset(True, per_class, seed=0)
    xt, yt = stratified_subset(False, test_per_class, seed=0)
    curves, summary = [], []
    for lr, seed in itertools.product(lrs, seeds):
        batches = _shuffled_batches(x, y, batch_size, seed)
        for name, kw in variants.items():
            net = build_nobn_net(depth, seed=seed, **kw)
            t0 = time.perf_counter()
            losses = _sgd(net, batches, steps, lr, warmup=warmup, amp=amp)
            finite = len(losses) == steps and math.isfinite(losses[-1])
            tail = losses[-max(1, steps // 10):]
            curves += [{"variant": name, "lr": lr, "seed": seed, "step": i + 1, "loss": v} for i, v in enumerate(losses)]
            summary.append({"variant": name, "lr": lr, "seed": seed,
                            "steps_done": len(losses) if finite else len(losses) - 1, "first_loss": losses[0],
                            "final_loss": float(np.mean(tail)) if finite else float("nan"),
                            "test_acc": accuracy(net, xt, yt) if finite else float("nan"),
                            "seconds": round(time.perf_counter() - t0, 1)})
            if progress is not None:
                progress(f"no-BN study: {name}, lr {lr}, seed {seed}: {summary[-1]}")
    return pd.DataFrame(curves), pd.DataFrame(summary)


def plot_nobn(curves: pd.DataFrame, summary: pd.DataFrame | None = None, title: str = "") -> Figure:
    """Training loss per step, one panel per learning rate (thin: each seed; thick: mean), log scale."""
    lrs = sorted(curves["lr"].unique()) if "lr" in curves else [None]
    fig, axes = plt.subplots(1, len(lrs), figsize=(6.2 * len(lrs), 4), sharey=True, squeeze=False)
    for ax, lr in zip(axes[0], lrs):
        part = curves if lr is None else curves[curves["lr"] == lr]
        for i, (name, t) in enumerate(part.groupby("variant", sort=False)):
            for _, s in t.groupby("seed"):
                ax.plot(s["step"], s["loss"], color=f"C{i}", lw=0.6, alpha=0.5)
            m = t.groupby("step")["loss"].mean()
            label = name
            if summary is not None:
                acc = summary[(summary["variant"] == name) & ((summary["lr"] == lr) if lr is not None else True)]["test_acc"]
                label += f" (test acc {100 * acc.mean():.0f} %)" if acc.notna().all() else " (diverged)"
            ax.plot(m.index, m.to_numpy(), color=f"C{i}", lw=2, label=label)
        ax.axhline(math.log(10), color="0.5", ls=":", lw=1, label="ln 10: guessing")
        ax.set_yscale("log")
        ax.set_ylim(0.2, 50)
        ax.set_xlabel("SGD step")
        ax.set_title(f"learning rate {lr:g}" if lr is not None else "", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("training loss (log; clipped at 50)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ===========================================================================
# small nets trained live (FAST mode) and the cache of the full-scale numbers
# ===========================================================================
def _shuffled_batches(x: Tensor, y: Tensor, batch_size: int, seed: int) -> list[tuple[Tensor, Tensor]]:
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y) - batch_size + 1, batch_size)]


def _sgd(net: nn.Module, batches: list, steps: int, lr: float, warmup: int = 0, cosine: bool = False,
         amp: Any = "off") -> list[float]:
    """``train_steps`` with SGD (momentum 0.9, weight decay 5e-4), linear warm-up and optional cosine decay."""
    from ..train import make_optimizer

    opt = make_optimizer(net, "sgd", lr, 5e-4, 0.9)

    def schedule(step: int, _loss: float = 0.0) -> None:
        f = min(1.0, (step + 1) / warmup) if warmup else 1.0
        if cosine:
            f *= 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
        for group in opt.param_groups:
            group["lr"] = lr * f

    schedule(0)
    return train_steps(net, batches, steps, optimizer=opt, amp=amp, on_step=schedule)


def train_twins(depth: int = 20, steps: int = 200, batch_size: int = 64, per_class: int = 300, lr: float = 0.1,
                seed: int = 0, amp: Any = "fast", kinds: Sequence[str] = ("resnet", "plain")) -> dict[str, CifarResNet]:
    """A residual net and its plain twin (same init seed, same batches), trained briefly: ``{"resnet", "plain"}``.

    The live stand-ins for the cached nets: ``steps`` SGD steps with a cosine
    schedule on ``per_class`` training images per class. ``kinds`` trains only
    some of the two (one call per kind keeps each call short; the twins are the
    same either way).
    """
    x, y = stratified_subset(True, per_class, seed=seed)
    batches = _shuffled_batches(x, y, batch_size, seed)
    nets = {}
    with torch_threads(1):
        for kind in kinds:
            torch.manual_seed(seed)
            net = create_model(f"{kind}_cifar", depth=depth, num_classes=10, in_channels=1)
            _sgd(net, batches, steps, lr, cosine=True, amp=amp)
            nets[kind] = net.eval()
    return nets


CACHE_FILES = {
    "lesion_single": "lesion_single.csv", "lesion_random": "lesion_random.csv",
    "path_gradients": "path_gradients.csv", "landscape_1d": "landscape_1d.csv",
    "landscape_2d": "landscape_2d.csv", "nobn_curves": "nobn_curves.csv", "nobn_summary": "nobn_summary.csv",
}
PARTS = ("lesion", "paths", "landscape", "nobn")
PART_TABLES = {"lesion": ("lesion_single", "lesion_random"), "paths": ("path_gradients",),
               "landscape": ("landscape_1d", "landscape_2d"), "nobn": ("nobn_curves", "nobn_summary")}
#: What `python -m resnet_tutorial why` computes, part by part (recorded in meta.json).
CACHE_SETTINGS: dict[str, dict[str, Any]] = {
    "lesion": {"test_per_class": 100, "draws": 5, "seed": 0, "amp": "fast"},
    "paths": {"images": 64, "draws": 8, "seed": 0},
    "landscape": {"images": 256, "batch_size": 256, "points_1d": 41, "points_2d": 21, "span": 1.0,
                  "seed": 0, "amp": "fast"},
    "nobn": {"depth": 56, "steps": 200, "seeds": [0, 1], "lrs": [0.005, 0.02], "batch_size": 128, "warmup": 30,
             "per_class": 600, "test_per_class": 100, "amp": "fast"},
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


def _cache_nobn(s: Mapping[str, Any], log: Callable[[str], None]) -> dict[str, pd.DataFrame]:
    curves, summary = train_without_bn(
        depth=s["depth"], steps=s["steps"], seeds=s["seeds"], batch_size=s["batch_size"], lrs=s["lrs"],
        warmup=s["warmup"], per_class=s["per_class"], test_per_class=s["test_per_class"], amp=s["amp"], progress=log)
    return {"nobn_curves": curves, "nobn_summary": summary}


def _part_done(out: Path, meta: dict, part: str, settings: dict) -> bool:
    done = meta.get("parts", {}).get(part)
    return (done is not None and done.get("settings") == settings
            and all((out / CACHE_FILES[t]).is_file() for t in PART_TABLES[part]))


def build_cache(weights: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
                depths: Sequence[int] = (20, 56), parts: Sequence[str] = PARTS, force: bool = False,
                log: Callable[[str], None] = print, command: str | None = None) -> dict:
    """Compute the cached tables of lesson 10 from the trained nets in ``weights``; return the metadata.

    Each part (``lesion``, ``paths``, ``landscape``, ``nobn``) is written as
    soon as it is done, with its settings, wall time and machine in
    ``out/meta.json``; a part already there with the same settings is skipped
    (``force=True`` recomputes it), so an interrupted run continues.
    ``weights=None``: the trained nets found by :func:`resnet_tutorial.results.locate`;
    ``out=None``: :func:`resnet_tutorial.results.output_path`.
    """
    weights = results.path("degradation_full") if weights is None else Path(weights)
    out = results.output_path("lesson10") if out is None else Path(out)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown part(s) {unknown}: choose from {PARTS}")
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    meta = results.read_json(meta_path)
    meta.setdefault("parts", {})
    nets: dict[str, CifarResNet] | None = None
    for part in parts:
        settings = {**CACHE_SETTINGS[part], **({"depths": list(depths)} if part != "nobn" else {})}
        if not force and _part_done(out, meta, part, settings):
            log(f"{part}: already in {out} with these settings (pass force=True / --force to redo)")
            continue
        t0 = time.perf_counter()
        if part == "nobn":
            tables = _cache_nobn(settings, log)
        else:
            nets = _load_nets(weights, depths) if nets is None else nets
            tables = {"lesion": _cache_lesion, "paths": _cache_paths, "landscape": _cache_landscape}[part](
                nets, settings, log)
        for name, table in tables.items():
            results.save_table(table, out / CACHE_FILES[name])
        meta["parts"][part] = {"settings": settings, "seconds": round(time.perf_counter() - t0, 1),
                               "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                               "machine": machine_line(), "torch": torch.__version__,
                               "python": platform.python_version()}
        meta["command"] = command or " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
        meta["weights"] = str(weights)
        results.write_json(meta_path, meta)
        log(f"{part}: done in {meta['parts'][part]['seconds']:.0f} s")
    return meta


def load_cache(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The cached tables (``{name: DataFrame}``, see ``CACHE_FILES``) plus ``"meta"`` (meta.json).

    ``path=None`` looks the cache up with :func:`resnet_tutorial.results.locate`.
    """
    path = results.locate("lesson10") if path is None else Path(path)
    missing = [f for f in [*CACHE_FILES.values(), "meta.json"] if not (path / f).is_file()]
    if missing:
        raise results.missing("lesson10", path, f"lesson 10's cache is incomplete (missing {missing})")
    cache: dict[str, Any] = {name: pd.read_csv(path / f) for name, f in CACHE_FILES.items()}
    cache["meta"] = results.read_json(path / "meta.json")
    return cache
