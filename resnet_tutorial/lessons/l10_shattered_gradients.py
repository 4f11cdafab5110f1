"""Lesson 10 · Shattered gradients, and training without BatchNorm.

Lesson 08 showed that deeper plain nets train worse even with BatchNorm and a
good initialisation, whose gradients do not vanish. This module holds two of
the measurements that answer "then why do shortcuts help?" (lesson 11 holds the
other two, ensembles of paths and loss landscapes):

1. **Shattered gradients** (Balduzzi et al., ICML 2017): :class:`ShatterNet`,
   a one-input, one-output net whose input gradient ``dy/dx``
   (:func:`input_gradient`) is measured on 256 points in [-2, 2];
   :func:`autocorrelation` of that gradient over the input;
   :func:`correlation_vs_depth` for plain and residual variants; the naive
   replication and its fixes (:func:`replication_table`).
2. **Training without BatchNorm** (SkipInit, De & Smith 2020; Fixup, Zhang et
   al. 2019): :func:`init_output_scale`, :func:`train_without_bn`.

:func:`build_cache` computes the cached no-BN runs the notebook reads from
``results/lesson10/`` (``python -m resnet_tutorial why --parts nobn``);
:func:`load_cache` reads them back.
"""

from __future__ import annotations

import itertools
import math
import os
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
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator
from torch import Tensor, nn

from .. import results
from ..data import stratified_subset
from ..device import machine_line, torch_threads
from ..models import CifarResNet, create_model
from ..live import TRAINING_FRAME_S, LiveFigure, Panel, RunPlot, nice_limits
from ..train import make_optimizer, train_steps

__all__ = [
    "CACHE_DIR", "NOBN_VARIANTS", "SHATTER_VARIANTS", "NoBNRun", "ShatterExplorer", "ShatterNet", "autocorrelation",
    "build_cache", "build_nobn_net", "correlation_vs_depth", "describe_nobn_run", "decay_fits",
    "draw_shatter_explorer", "frozen_statistics", "init_output_scale", "input_gradient", "load_cache",
    "naive_autocorrelation", "plot_autocorrelations", "plot_correlation_vs_depth", "plot_naive_vs_fixed", "plot_nobn",
    "plot_shattered", "replication_table", "shatter_gradients", "shatter_inputs", "train_without_bn",
]

#: Where the notebook reads the cache (``lesson10``, found by :func:`resnet_tutorial.results.locate`);
#: lesson 11's tables live in the same folder.
CACHE_DIR = results.path("lesson10")

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
                         lag: int = 1, progress: bool = True) -> pd.DataFrame:
    """Lag-``lag`` autocorrelation of ``dy/dx`` for every variant, depth and seed.

    Columns ``variant, depth, seed, corr, grad_rms, kinks``. ``lag=1`` is a step
    of 4/255 ≈ 0.016 in x. ``progress``: a bar over the nets.
    """
    from tqdm.auto import tqdm

    variants = SHATTER_VARIANTS if variants is None else variants
    rows = []
    combos = list(itertools.product(variants.items(), depths, list(seeds)))
    for (name, kw), depth, seed in tqdm(combos, desc="random nets", disable=not progress):
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
                      far_lag: int = 32, progress: bool = True) -> pd.DataFrame:
    """Plain nets from the naive recipe to the fixed one: gradient size, kinks and correlations.

    Columns ``step, depth, grad_rms, kinks, corr_lag1, corr_far`` (means over
    ``seeds``; ``corr_far`` at lag ``far_lag``, a distance of 0.5 in x), each
    correlation with the estimator of that step. ``progress``: a bar over the steps.
    """
    from tqdm.auto import tqdm

    rows = []
    seeds = list(seeds)
    for name, (kw, estimator) in tqdm(REPLICATION_STEPS.items(), desc="recipes", disable=not progress):
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


class ShatterExplorer(LiveFigure):
    """The explorer: ``dy/dx`` of one 200-wide net on 256 inputs and its autocorrelation, updated in place.

    ``explore(ShatterExplorer, depth=..., bn=..., shortcut=..., beta=..., init=...)``. Each
    parameter set is one forward and one backward pass (cached); the right panel shows both
    estimators, so the naive one's bias is visible next to the fixed one. Without the
    shortcut ``beta`` has nothing to scale, and the title says so.
    """

    figsize = (10.0, 3.4)
    max_lag = 64

    def compute(self, depth: int = 50, bn: bool = True, shortcut: bool = True, beta: float = 1.0,
                init: str = "he", seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        with torch_threads(1):
            x, g = shatter_gradients(depth, seed=seed, bn=bn, shortcut=shortcut, beta=beta, init=init)
        r = autocorrelation(g, self.max_lag) if np.ptp(g) > 0 else np.ones(self.max_lag + 1)
        return x, g, r, naive_autocorrelation(g, self.max_lag)

    def build(self, fig: Figure) -> None:
        self.a, self.b = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
        (self.grad,) = self.a.plot([], [], lw=0.8, color="C0")
        self.a.set_xlabel("input x")
        self.a.set_ylabel("dy/dx")
        self.a.set_xlim(-2, 2)
        self.a.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        lags = np.arange(self.max_lag + 1) * 4.0 / (SHATTER_POINTS - 1)
        (self.fixed,) = self.b.plot(lags, np.zeros_like(lags), color="C0", label="mean removed, overlap-averaged")
        (self.raw,) = self.b.plot(lags, np.zeros_like(lags), "--", color="0.5", label="raw (naive)")
        self.b.axhline(0, color="0.7", lw=0.8)
        self.b.set_xlim(0, lags[-1])
        self.b.set_ylim(-0.4, 1.05)
        self.b.set_xlabel("distance in x")
        self.b.set_ylabel("autocorrelation")
        self.b.legend(fontsize=7, loc="upper right")
        self.b.grid(alpha=0.3)
        self.left = self.a.set_title(" ", fontsize=9, y=1.0, loc="right")  # the left corner holds the axis offset
        self.right = self.b.set_title(" ", fontsize=9, y=1.0)
        self.dynamic(self.grad, self.fixed, self.raw, self.right)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.9, wspace=0.3)

    def update(self, data: tuple, depth: int = 50, bn: bool = True, shortcut: bool = True, beta: float = 1.0,
               init: str = "he", seed: int = 0) -> None:
        x, g, r, raw = data
        self.grad.set_data(x, g)
        self.fixed.set_ydata(r)
        self.raw.set_ydata(raw)
        kind = f"residual, β={beta:g}" if shortcut else "plain (β unused: no branch to scale)"
        self.set_text(self.left, f"{depth} layers, {kind}, {'BN' if bn else 'no BN'}, init {init}")
        self.right.set_text(f"correlation of neighbours r₁ = {r[1]:.2f}")
        lo, hi = float(g.min()), float(g.max())
        pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1e-12)
        self.set_limits(self.a, y=nice_limits(lo - pad, hi + pad))


def draw_shatter_explorer(depth: int = 50, bn: bool = True, shortcut: bool = True, beta: float = 1.0,
                          seed: int = 0, init: str = "he") -> Figure:
    """The explorer's figure for given settings (tests, headless runs): :class:`ShatterExplorer`."""
    return ShatterExplorer().draw(depth=depth, bn=bn, shortcut=shortcut, beta=beta, seed=seed, init=init)



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
                     progress: Callable[[str], None] | None = None, bar: bool = False,
                     on_step: Callable[[str, int, float], None] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train ``resnet{depth}`` with and without BN from the same init seed: ``(curves, summary)``.

    SGD (momentum 0.9, weight decay 5e-4), each ``lr`` after a linear warm-up
    of ``warmup`` steps, on ``per_class`` training images per class. ``curves``:
    ``variant, lr, seed, step, loss``; ``summary``: ``variant, lr, seed,
    steps_done`` (fewer than ``steps`` when the loss became NaN/inf),
    ``first_loss``, ``final_loss`` (mean of the last 10 % of the steps, NaN
    when it diverged), ``test_acc`` (``test_per_class`` test images per class), ``seconds``.
    ``progress`` gets one line per run; ``bar=True`` shows a progress bar over all steps;
    ``on_step(variant, step, loss)`` runs after every finite step (:class:`NoBNRun` draws it).
    """
    from tqdm.auto import tqdm

    variants = NOBN_VARIANTS if variants is None else variants
    x, y = stratified_subset(True, per_class, seed=0)
    xt, yt = stratified_subset(False, test_per_class, seed=0)
    curves, summary = [], []
    runs = list(itertools.product(lrs, seeds))
    meter = tqdm(total=len(runs) * len(variants) * steps, desc="SGD steps, all runs", disable=not bar)
    for lr, seed in runs:
        batches = _shuffled_batches(x, y, batch_size, seed)
        for name, kw in variants.items():
            net = build_nobn_net(depth, seed=seed, **kw)
            t0 = time.perf_counter()
            def step_done(step: int, loss: float, name: str = name) -> None:
                meter.update()
                if on_step is not None:
                    on_step(name, step, loss)

            losses = _sgd(net, batches, steps, lr, warmup=warmup, amp=amp, on_step=step_done)
            meter.update(steps - len(losses) + (0 if math.isfinite(losses[-1]) else 1))  # a diverged run's rest
            finite = len(losses) == steps and math.isfinite(losses[-1])
            tail = losses[-max(1, steps // 10):]
            curves += [{"variant": name, "lr": lr, "seed": seed, "step": i + 1, "loss": v} for i, v in enumerate(losses)]
            summary.append({"variant": name, "lr": lr, "seed": seed,
                            "steps_done": len(losses) if finite else len(losses) - 1, "first_loss": losses[0],
                            "final_loss": float(np.mean(tail)) if finite else float("nan"),
                            "test_acc": _accuracy(net, xt, yt) if finite else float("nan"),
                            "seconds": round(time.perf_counter() - t0, 1)})
            if progress is not None:
                progress(f"no-BN study: {name}, lr {lr}, seed {seed}: {summary[-1]}")
    meter.close()
    return pd.DataFrame(curves), pd.DataFrame(summary)


class NoBNRun(RunPlot):
    """The no-BN variants of ResNet-``depth`` trained now, one after another: the loss of every step, growing.

    One curve per variant of :data:`NOBN_VARIANTS` (same init seed, same
    batches) on a log loss axis; a run whose loss becomes NaN ends with
    "diverged at step k" in the legend. Earlier runs (another learning rate,
    depth or batch size) stay, faded; Stop ends the run where it is. After a
    run :attr:`curves` and :attr:`summary` hold what :func:`train_without_bn`
    returns, for the variants that finished.
    """

    figsize = (9.0, 4.6)
    top = 50.0  # losses above it are drawn at the top edge, their value in the legend (the explosion reaches 1e19)
    panels = (Panel("training loss (cross-entropy, log scale)", ylim=(0.3, top), yscale="log", legend="upper right"),)
    interval_s = TRAINING_FRAME_S

    def __init__(self) -> None:
        super().__init__()
        self.curves, self.summary = pd.DataFrame(), pd.DataFrame()

    def build(self, fig: Figure) -> None:
        super().build(fig)
        y = self.axes[0].yaxis
        y.set_major_locator(FixedLocator([0.3, 0.5, 1, 2, 5, 10, 20, 50]))
        y.set_major_formatter(FormatStrFormatter("%g"))
        y.set_minor_locator(NullLocator())
        self.axes[0].axhline(math.log(10), color="0.35", lw=1, ls=":", zorder=1)
        self.axes[0].text(0.01, math.log(10) * 0.93, "ln 10 = 2.30: guessing (every class 10 %)", va="top",
                          transform=self.axes[0].get_yaxis_transform(), fontsize=8, color="0.35")
        fig.subplots_adjust(left=0.1, right=0.97, bottom=0.13, top=0.86)

    def train(self, depth: int = 56, lr: float = 0.02, steps: int = 100, batch_size: int = 64, warmup: int = 30,
              per_class: int = 100, test_per_class: int = 50, seed: int = 0) -> None:
        if steps < 1 or batch_size < 1 or per_class < 1 or test_per_class < 1 or not lr > 0:
            raise ValueError(f"steps, batch_size, per_class, test_per_class and lr must be positive, got {steps}, "
                             f"{batch_size}, {per_class}, {test_per_class}, {lr}")
        self.start(f"ResNet-{depth}, lr {lr:g}, batch {batch_size}", steps)
        curves, summary = [], []
        self.curves, self.summary = pd.DataFrame(), pd.DataFrame()
        total = steps * len(NOBN_VARIANTS)

        above: dict[str, str] = {}

        def on_step(name: str, step: int, loss: float) -> None:
            self.add(name, step, min(loss, self.top), style="--" if name == "no BN, last conv = 0" else "-")
            if loss > self.top and name not in above:
                above[name] = f"loss {loss:.3g} at step {step}: above the plot"
                self.series[name].label = f"{name} ({above[name]})"
                self.series[name].line.set(marker="^", markersize=7, clip_on=False)  # seen even as one point
                self._legend_dirty = True
            done = steps * list(NOBN_VARIANTS).index(name) + step
            left = self.seconds_left(done, total)
            self.note(f"{self.label}: {name}, step {step} of {steps}; about {left:.0f} s left")

        for name, kw in NOBN_VARIANTS.items():
            c, s = train_without_bn(depth, steps, seeds=(seed,), lrs=(lr,), batch_size=batch_size, warmup=warmup,
                                    per_class=per_class, test_per_class=test_per_class, variants={name: kw},
                                    on_step=on_step)
            last = c["loss"].iloc[-1]
            if not math.isfinite(last):
                self.add(name, len(c), last)  # ends the curve: "diverged at step k"
                if name in above:
                    self.series[name].label = f"{name} ({above[name]}, NaN at step {len(c)})"
            curves.append(c)
            summary.append(s)
            self.curves, self.summary = pd.concat(curves, ignore_index=True), pd.concat(summary, ignore_index=True)
            self.flush()
        ok = self.summary.dropna(subset=["final_loss"]).sort_values("final_loss")
        best = f"lowest final loss {ok.final_loss.iloc[0]:.2f}: {ok.variant.iloc[0]}" if len(ok) else "every run diverged"
        self.note(f"{self.label}: done in {self.elapsed_s():.0f} s; {best}; "
                  f"{len(self.summary) - len(ok)} of {len(self.summary)} diverged")


def describe_nobn_run(summary: pd.DataFrame) -> str:
    """What a :class:`NoBNRun` (or :func:`train_without_bn` at one learning rate) shows, in markdown bullets.

    Per variant: diverged (and when), still at the loss of guessing (within 0.1 of ln 10 and
    test accuracy within 5 points of 10 %), or learning (final loss and test accuracy).
    """
    missing = {"variant", "steps_done", "final_loss", "test_acc"} - set(summary.columns)
    if missing or summary.empty:
        raise ValueError(f"need the summary of a finished run (columns {sorted(missing)} missing or no rows)")
    lines = []
    for r in summary.itertuples():
        if not math.isfinite(r.final_loss):
            lines.append(f"- **{r.variant}**: diverged, the loss was NaN after {r.steps_done} step(s).")
        elif abs(r.final_loss - math.log(10)) < 0.1 and abs(r.test_acc - 0.1) < 0.05:
            lines.append(f"- **{r.variant}**: still guessing: loss {r.final_loss:.2f} (ln 10 = 2.30), test accuracy "
                         f"{r.test_acc:.0%}, chance level.")
        else:
            lines.append(f"- **{r.variant}**: learning: loss {r.final_loss:.2f}, test accuracy {r.test_acc:.0%}.")
    return "\n".join(lines)


def _mark_divergence(ax: plt.Axes, part: pd.DataFrame, color: str, top: float, row: int) -> bool:
    """Runs that leave the plot or end in NaN/inf: a triangle at the top edge, "value, then NaN at step k"."""
    notes = []
    for _, s in part.groupby("seed"):
        bad = s[~np.isfinite(s["loss"])]
        above = s[np.isfinite(s["loss"]) & (s["loss"] > top)]
        if bad.empty and above.empty:
            continue
        first = s.iloc[0]
        ax.plot([first["step"]], [top], marker="^", color=color, ms=7, clip_on=False)
        end = f"NaN at step {int(bad['step'].iloc[0])}" if not bad.empty else f"above {top:g} until step {int(above['step'].iloc[-1])}"
        notes.append(f"{first['loss']:.0f}, then {end}")
    if notes:
        ax.text(0.99, 0.97 - 0.07 * row, "off the scale: " + "; ".join(notes), transform=ax.transAxes, ha="right",
                va="top", fontsize=7, color=color)
    return bool(notes)


def plot_nobn(curves: pd.DataFrame, summary: pd.DataFrame | None = None, title: str = "", top: float = 50.0) -> Figure:
    """Training loss per step, one panel per learning rate (thin: each seed; thick: mean), log scale.

    Losses above ``top`` and runs that end in NaN are marked at the top edge, with their first
    value and the step where they became NaN (a diverged run would otherwise be invisible).
    """
    lrs = sorted(curves["lr"].unique()) if "lr" in curves else [None]
    fig, axes = plt.subplots(1, len(lrs), figsize=(6.2 * len(lrs), 5.2), sharey=True, squeeze=False)
    for ax, lr in zip(axes[0], lrs):
        part = curves if lr is None else curves[curves["lr"] == lr]
        marked = 0
        for i, (name, t) in enumerate(part.groupby("variant", sort=False)):
            for _, s in t.groupby("seed"):
                ax.plot(s["step"], s["loss"], color=f"C{i}", lw=0.6, alpha=0.5)
            m = t.groupby("step")["loss"].mean()
            label = name
            if summary is not None:
                acc = summary[(summary["variant"] == name) & ((summary["lr"] == lr) if lr is not None else True)]["test_acc"]
                label += f" (test acc {100 * acc.mean():.0f} %)" if acc.notna().all() else " (diverged)"
            ax.plot(m.index, m.to_numpy(), color=f"C{i}", lw=2, label=label)
            marked += _mark_divergence(ax, t, f"C{i}", top, marked)
        ax.axhline(math.log(10), color="0.5", ls=":", lw=1, label="ln 10: guessing")
        ax.set_yscale("log")
        ax.set_ylim(0.2, top)
        ax.set_xlabel("SGD step")
        ax.set_title(f"learning rate {lr:g}" if lr is not None else "", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))  # below the axes, off the data
    axes[0, 0].set_ylabel(f"training loss (log scale, cut at {top:g})")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig



# ===========================================================================
# training helpers and the cache of the full-scale runs
# ===========================================================================
def _shuffled_batches(x: Tensor, y: Tensor, batch_size: int, seed: int) -> list[tuple[Tensor, Tensor]]:
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y) - batch_size + 1, batch_size)]


def _sgd(net: nn.Module, batches: list, steps: int, lr: float, warmup: int = 0, amp: Any = "off",
         on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """``train_steps`` with SGD (momentum 0.9, weight decay 5e-4) after a linear warm-up of ``warmup`` steps."""
    opt = make_optimizer(net, "sgd", lr, 5e-4, 0.9)

    def schedule(step: int, loss: float = 0.0) -> None:
        for group in opt.param_groups:
            group["lr"] = lr * (min(1.0, (step + 1) / warmup) if warmup else 1.0)
        if on_step is not None and step > 0:
            on_step(step, loss)

    schedule(0)
    return train_steps(net, batches, steps, optimizer=opt, amp=amp, on_step=schedule)


@torch.no_grad()
def _accuracy(net: nn.Module, x: Tensor, y: Tensor, batch_size: int = 500) -> float:
    """Eval-mode accuracy (0..1) of ``net`` on ``(x, y)``, in batches."""
    was_training = net.training
    net.eval()
    correct = sum(int((net(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                  for i in range(0, len(y), batch_size))
    net.train(was_training)
    return correct / len(y)


CACHE_FILES = {"nobn_curves": "nobn_curves.csv", "nobn_summary": "nobn_summary.csv"}
#: What `python -m resnet_tutorial why --parts nobn` computes (recorded in meta.json).
CACHE_SETTINGS: dict[str, Any] = {
    "depth": 56, "steps": 200, "seeds": [0, 1], "lrs": [0.005, 0.02], "batch_size": 128, "warmup": 30,
    "per_class": 600, "test_per_class": 100, "amp": "fast",
}


def _cache_nobn(s: Mapping[str, Any], log: Callable[[str], None]) -> dict[str, pd.DataFrame]:
    curves, summary = train_without_bn(
        depth=s["depth"], steps=s["steps"], seeds=s["seeds"], batch_size=s["batch_size"], lrs=s["lrs"],
        warmup=s["warmup"], per_class=s["per_class"], test_per_class=s["test_per_class"], amp=s["amp"], progress=log)
    return {"nobn_curves": curves, "nobn_summary": summary}


def build_cache(out: str | os.PathLike | None = None, force: bool = False, log: Callable[[str], None] = print,
                command: str | None = None) -> dict:
    """Compute the cached no-BN runs of lesson 10 (part ``nobn`` of ``meta.json``); return the metadata.

    Written with :func:`resnet_tutorial.results.save_parts`: skipped when
    already there with the same settings (``force=True`` recomputes it).
    ``out=None``: :func:`resnet_tutorial.results.output_path` ``("lesson10")``.
    """
    out = results.output_path("lesson10") if out is None else Path(out)
    about = {"machine": machine_line(), "torch": torch.__version__}
    job = (dict(CACHE_SETTINGS), tuple(CACHE_FILES), lambda s: _cache_nobn(s, log))
    return results.save_parts(out, {"nobn": job}, CACHE_FILES, force=force, log=log, command=command, about=about)


def load_cache(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The cached no-BN tables (``{name: DataFrame}``, see ``CACHE_FILES``) plus ``"meta"`` (meta.json).

    ``path=None`` looks the cache up with :func:`resnet_tutorial.results.locate`.
    """
    path = results.locate("lesson10") if path is None else Path(path)
    missing = [f for f in [*CACHE_FILES.values(), "meta.json"] if not (path / f).is_file()]
    if missing:
        raise results.missing("lesson10", path, f"lesson 10's cache is incomplete (missing {missing})")
    cache: dict[str, Any] = {name: pd.read_csv(path / f) for name, f in CACHE_FILES.items()}
    cache["meta"] = results.read_json(path / "meta.json")
    return cache
