"""Lesson 01 · Vanishing and exploding gradients: the depth sweep and the explorers.

The measurement tools (``grad_norms``, ``activation_stats``, ``per_layer_factor``,
``update_to_data_ratios``, ``chain_rule_check``) are in
:mod:`resnet_tutorial.diagnostics`, the deep nets in
:func:`resnet_tutorial.models.make_deep_mlp` / ``make_deep_cnn``; this module
holds what only lesson 01 does with them.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from tqdm.auto import tqdm

from ..data import fashion_batch
from ..device import torch_threads
from ..diagnostics import SIGMOID_SATURATION, TANH_SATURATION, activation_stats, grad_norms, per_layer_factor
from ..live import LiveFigure, Panel, RunPlot, log_ticks, nice_limits
from ..models import make_deep_net
from ..plots import _require_columns

__all__ = ["first_layer_grad_vs_depth", "plot_first_layer_grad_vs_depth", "draw_gradient_explorer",
           "draw_first_layer_grad_vs_depth", "GradientExplorer", "gradient_explorer_data", "GradientHeatmapRun",
           "draw_gradient_heatmap_run", "DepthSweepRun", "compare_vgg_like", "last_activation_std"]


def _variant_name(shortcut: bool, bn: bool) -> str:
    return ("residual" if shortcut else "plain") + (" + BN" if bn else "")


def _as_bools(value: bool | Sequence[bool], name: str) -> list[bool]:
    vals = [value] if isinstance(value, bool) else list(value)
    if not vals or not all(isinstance(v, bool) for v in vals):
        raise ValueError(f"{name} must be a bool or a sequence of bools, got {value!r}")
    return vals


def first_layer_grad_vs_depth(
    depths: Iterable[int],
    *,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    arch: str = "mlp",
    activation: str = "sigmoid",
    init: str = "default",
    bn: bool | Sequence[bool] = (False, True),
    shortcut: bool | Sequence[bool] = (False, True),
    seeds: Sequence[int] = (0, 1, 2),
    dtype: torch.dtype = torch.float64,
    progress: bool = True,
    **model_kw: Any,
) -> pd.DataFrame:
    """Gradient norm at the FIRST and LAST weight layer for nets of growing depth.

    For every depth × shortcut × bn × seed a fresh net is built (seeded),
    one batch goes forward and backward, and the first hidden layer's and the
    head's weight-gradient norms are recorded. ``bn``/``shortcut`` take a bool
    or a sequence (the default runs all four variants). Models are built in
    ``dtype`` (float64 by default: a plain sigmoid net's first-layer gradient
    drops below float32's smallest number, 1e-45, around depth 40-60).

    Columns: ``depth, seed, shortcut, bn, variant, first_grad_norm,
    last_grad_norm, first_over_last``.
    """
    depths = [int(d) for d in depths]
    if not depths:
        raise ValueError("first_layer_grad_vs_depth: give at least one depth")
    if not seeds:
        raise ValueError("first_layer_grad_vs_depth: give at least one seed")
    combos = [
        (d, s, b, seed)
        for s in _as_bools(shortcut, "shortcut")
        for b in _as_bools(bn, "bn")
        for d in depths
        for seed in seeds
    ]
    rows = []
    for d, s, b, seed in tqdm(combos, desc="depth sweep", disable=not progress):
        torch.manual_seed(seed)
        model = make_deep_net(arch, d, activation=activation, init=init, bn=b, shortcut=s, **model_kw)
        model.to(device=inputs.device, dtype=dtype)
        df = grad_norms(model, inputs, targets)
        first, last = float(df["grad_norm"].iloc[0]), float(df["grad_norm"].iloc[-1])
        rows.append(
            {
                "depth": d,
                "seed": seed,
                "shortcut": s,
                "bn": b,
                "variant": _variant_name(s, b),
                "first_grad_norm": first,
                "last_grad_norm": last,
                "first_over_last": first / last if last > 0 else float("nan"),
            }
        )
    return pd.DataFrame(rows)


#: Shares of activation outputs the right panel shows, per activation (labels as in :func:`plot_layer_stats`).
_SHARE_COLUMNS = {"relu": ("frac_zero", "frac_dead_units"), "sigmoid": ("frac_saturated",), "tanh": ("frac_saturated",)}
_SHARE_LABELS = {"frac_zero": "outputs exactly 0 (ReLU off)", "frac_dead_units": "dead units (0 for the whole batch)",
                 "frac_saturated": "saturated (sigmoid < 0.03 or > 0.97, |tanh| > 0.97)"}
_SHARE_TITLES = {"relu": "dead ReLU outputs", "sigmoid": "saturated outputs (sigmoid < 0.03 or > 0.97)",
                 "tanh": "saturated outputs (|tanh| > 0.97)"}


def _activation_shares(outs: list[torch.Tensor]) -> dict[str, np.ndarray]:
    """Per activation output: mean, std, share of zeros, of dead units and of saturated values (one pass).

    The numbers :func:`~resnet_tutorial.diagnostics.activation_stats` gives, computed from outputs
    caught during the gradient pass (no second forward) and for all layers at once when their shapes agree.
    """
    groups = [torch.stack(outs)] if len({o.shape for o in outs}) == 1 else [o.unsqueeze(0) for o in outs]
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("mean", "std", "frac_zero", "frac_dead_units", "sig", "tanh")}
    for y in groups:  # y: layers × batch × units (× H × W)
        flat = y.reshape(y.shape[0], -1)
        cols["mean"].append(flat.mean(1).numpy())
        cols["std"].append(flat.std(1).numpy())
        cols["frac_zero"].append((flat == 0).double().mean(1).numpy())
        alive = (y != 0).transpose(1, 2).reshape(y.shape[0], y.shape[2], -1).any(dim=2)
        cols["frac_dead_units"].append((~alive).double().mean(1).numpy())
        cols["sig"].append(((flat < SIGMOID_SATURATION) | (flat > 1 - SIGMOID_SATURATION)).double().mean(1).numpy())
        cols["tanh"].append((flat.abs() > TANH_SATURATION).double().mean(1).numpy())
    return {k: np.concatenate(v) for k, v in cols.items()}


def gradient_explorer_data(
    depth: int = 20, activation: str = "sigmoid", init: str = "default", bn: bool = False, shortcut: bool = False,
    arch: str = "mlp", seed: int = 0, *, inputs: torch.Tensor, targets: torch.Tensor,
) -> dict[str, Any]:
    """What the gradient explorer shows for one net: gradient norm per weight layer and activation statistics.

    One forward and backward pass in float64 on one torch thread: the
    per-layer weight-gradient norms of :func:`~resnet_tutorial.diagnostics.grad_norms`
    (``index``, ``grad_norm``), the fitted per-layer factor (``fit``, or
    ``None`` with fewer than 3 usable layers), and per activation layer
    (``act_index``) the ``mean``, ``std``, ``frac_zero``, ``frac_dead_units``
    and ``frac_saturated`` that :func:`~resnet_tutorial.diagnostics.activation_stats`
    would give, caught from the same forward pass.
    """
    outs: list[torch.Tensor] = []
    with torch_threads(1):  # tiny net: one thread is enough and does not stall on a busy CPU
        torch.manual_seed(seed)
        model = make_deep_net(arch, depth, activation=activation, init=init, bn=bn, shortcut=shortcut).double()
        model.train()
        hooks = [m.register_forward_hook(lambda _m, _a, out: outs.append(out.detach()))
                 for m in model.modules() if isinstance(m, nn.Sigmoid | nn.Tanh | nn.ReLU)]
        try:
            grads = grad_norms(model, inputs, targets)
        finally:
            for h in hooks:
                h.remove()
        shares = _activation_shares(outs)
    norms = grads["grad_norm"].to_numpy(dtype=float)
    ok = np.isfinite(norms) & (norms > 0)
    fit = per_layer_factor(grads[ok]) if ok.sum() >= 3 else None
    sig, tanh = shares.pop("sig"), shares.pop("tanh")
    shares["frac_saturated"] = tanh if activation == "tanh" else sig if activation == "sigmoid" else np.full_like(sig, np.nan)
    return {"index": grads["index"].to_numpy(), "grad_norm": norms, "fit": fit,
            "act_index": np.arange(len(outs)), **shares}


class GradientExplorer(LiveFigure):
    """Lesson 01's gradient explorer, built once and updated in place (``explore(GradientExplorer, ...)``).

    Left: per-layer weight-gradient norms (log scale) with the fitted
    per-layer factor. Middle: mean ± std of each activation layer's output.
    Right: share of saturated sigmoid/tanh outputs or of zero (dead) ReLU
    outputs. Without ``inputs``/``targets`` it uses a fixed FashionMNIST
    batch of ``batch_size`` images (default 128 for the MLP, 8 for the CNN: 14×14 maps give each BN
    channel 1,568 values, and depth 100 stays within a frame's budget).
    Axis limits snap to round values, so most moves redraw only the curves.
    """

    figsize = (15.0, 4.2)

    def __init__(self, *, inputs: torch.Tensor | None = None, targets: torch.Tensor | None = None,
                 batch_size: int | None = None) -> None:
        super().__init__()
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size

    def compute(self, depth: int = 20, activation: str = "sigmoid", init: str = "default", bn: bool = False,
                shortcut: bool = False, arch: str = "mlp", seed: int = 0) -> dict[str, Any]:
        x, y = self.inputs, self.targets
        if x is None or y is None:
            x, y = fashion_batch(self.batch_size or (128 if arch == "mlp" else 8), seed=0)
        return gradient_explorer_data(depth, activation, init, bn, shortcut, arch, seed, inputs=x, targets=y)

    def build(self, fig: Figure) -> None:
        a0, a1, a2 = self.axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.3, 1, 1]})
        (self.grad_line,) = a0.plot([], [], marker="o", markersize=3, color="C0")
        (self.fit_line,) = a0.plot([], [], ":", color="gray")
        a0.set_yscale("log")
        log_ticks(a0.yaxis)  # plain-text 10⁻¹² labels: no mathtext layout per tick
        a0.set_xlabel("layer index (0 = first layer, input → output)")
        a0.set_ylabel("gradient norm ‖∂L/∂W‖₂ (L2, per layer)")
        (self.mean_line,) = a1.plot([], [], marker="o", markersize=3, color="C0")
        self.band = a1.fill_between([0, 1], [0, 0], [0, 0], alpha=0.25, color="C0")
        a1.set_xlabel("activation layer index (input → output)")
        a1.set_ylabel("activation value (unitless)")
        a1.set_title("activation mean (line) ± std (band)", fontsize=10, y=1.0)
        self.share_lines = {c: a2.plot([], [], marker="o", markersize=3, color=f"C{i}", label=_SHARE_LABELS[c])[0]
                            for i, c in enumerate(("frac_saturated", "frac_zero", "frac_dead_units"))}
        a2.set_xlabel("activation layer index (input → output)")
        a2.set_ylabel("share of outputs (%)")
        a2.set_ylim(-2, 102)
        for ax in self.axes:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
            ax.grid(alpha=0.3)
        # y=1.0: titles sit at a fixed place, matplotlib need not measure the tick labels to place them
        self.grad_title = a0.set_title(" ", fontsize=10, y=1.0)
        self.share_title = a2.set_title(" ", fontsize=10, y=1.0)
        self.suptitle = fig.suptitle(" ", fontsize=11)
        self.dynamic(self.grad_line, self.fit_line, self.mean_line, self.band, self.grad_title, self.suptitle,
                     *self.share_lines.values())
        fig.subplots_adjust(left=0.06, right=0.99, bottom=0.13, top=0.84, wspace=0.26)

    def update(self, data: dict[str, Any], depth: int = 20, activation: str = "sigmoid", init: str = "default",
               bn: bool = False, shortcut: bool = False, arch: str = "mlp", seed: int = 0) -> None:
        idx, norms, fit = data["index"], data["grad_norm"], data["fit"]
        ok = np.isfinite(norms) & (norms > 0)
        self.grad_line.set_data(idx[ok], norms[ok])
        if fit is not None:
            fx = idx[ok][:-1]
            self.fit_line.set_data(fx, fit.predict(fx.max() - fx))
        self.fit_line.set_visible(fit is not None)
        ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
        factor = f"; dotted: fit, ×{fit.factor:.3g} per layer" if fit is not None else ""
        self.grad_title.set_text(f"first/last layer gradient = {ratio:.2g}{factor}")
        self.suptitle.set_text(f"{arch.upper()}, {activation}, init={init}, {_variant_name(shortcut, bn)}, depth {depth}")
        n_layers = len(idx)
        x_hi = n_layers - 1 if n_layers <= 12 else nice_limits(0, n_layers - 1)[1]
        self.set_limits(self.axes[0], x=(-0.5, x_hi + 0.5), y=_decade_limits(norms[ok]))
        self._update_activations(data, activation, x_hi)

    def _update_activations(self, data: dict[str, Any], activation: str, x_hi: float) -> None:
        x, mean, std = data["act_index"], data["mean"], data["std"]
        self.mean_line.set_data(x, mean)
        lo, hi = mean - std, mean + std
        self.band.set_verts([np.column_stack([np.r_[x, x[::-1]], np.r_[hi, lo[::-1]]])])
        y_lo, y_hi = (float(np.nanmin(lo)), float(np.nanmax(hi))) if len(x) else (0.0, 1.0)
        self.set_limits(self.axes[1], x=(-0.5, x_hi + 0.5), y=nice_limits(y_lo, y_hi) if np.isfinite([y_lo, y_hi]).all() else None)
        shown = _SHARE_COLUMNS[activation]
        for col, line in self.share_lines.items():
            line.set_visible(col in shown)
            line.set_data(x, 100 * data[col])
        self.set_text(self.share_title, _SHARE_TITLES[activation])
        legend = self.axes[2].get_legend()  # two curves (ReLU) need one; one curve is named by the title
        if len(shown) > 1 and legend is None:
            self.axes[2].legend([self.share_lines[c] for c in shown], [_SHARE_LABELS[c] for c in shown],
                                fontsize=8, loc="center right")
        elif len(shown) == 1 and legend is not None:
            legend.remove()
            self.axes[2].stale = True
        self.set_limits(self.axes[2], x=(-0.5, x_hi + 0.5))


def _decade_limits(values: np.ndarray) -> tuple[float, float] | None:
    """Log-axis limits at whole decades around ``values`` (2, 5 or 10 decades a step for wide ranges)."""
    if values.size == 0:
        return None
    lo, hi = math.log10(float(values.min())), math.log10(float(values.max()))
    step = 1 if hi - lo <= 12 else 5 if hi - lo <= 60 else 10
    a, b = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return 10.0 ** a, 10.0 ** max(b, a + 1)


def draw_gradient_explorer(
    depth: int = 20,
    activation: str = "sigmoid",
    init: str = "default",
    bn: bool = False,
    shortcut: bool = False,
    arch: str = "mlp",
    seed: int = 0,
    *,
    inputs: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    batch_size: int | None = None,
) -> Figure:
    """Build one deep net, send one FashionMNIST batch through it, and show what happens (a new figure).

    The figure of :class:`GradientExplorer` (the notebook's explorer keeps one
    and updates it): per-layer gradient norms with the fitted per-layer
    factor, activation mean ± std, and the share of saturated or dead
    outputs. The model runs in float64 so even 1e-100 gradients are measured,
    not rounded to 0.
    """
    view = GradientExplorer(inputs=inputs, targets=targets, batch_size=batch_size)
    return view.draw(depth=depth, activation=activation, init=init, bn=bn, shortcut=shortcut, arch=arch, seed=seed)


class GradientHeatmapRun(RunPlot):
    """A plain and a residual net train side by side; every step adds a column of per-layer gradient norms.

    Left and middle: ``log10 ‖∂L/∂W‖₂`` of every weight layer (rows, input
    at the bottom) at every step (columns) for the plain net and for the same
    net with shortcuts ``x + f(x)``, on one colour scale: dark is a layer that
    gets almost no gradient, so it barely learns. Right: both training losses;
    earlier runs stay there, faded, for comparison. ``explore(GradientHeatmapRun, ...)``
    streams it while it trains (Stop ends the run, what trained stays);
    :func:`draw_gradient_heatmap_run` runs it to the end and returns the figure.
    """

    figsize = (15.0, 4.4)
    panels = (Panel("training loss (cross-entropy)", title="loss of both nets (chance: ln 10 ≈ 2.3)", ylim=(0.0, 3.0)),)
    xlabel = "step"
    nets = (("plain", False), ("residual", True))

    def __init__(self) -> None:
        super().__init__()
        self.maps: list[np.ndarray] = []  # per net: layers × steps of log10 gradient norms (NaN: not yet)

    def build(self, fig: Figure) -> None:
        grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 0.05], left=0.05, right=0.64, bottom=0.13, top=0.82,
                                wspace=0.3)
        self.heat_axes = [fig.add_subplot(grid[0, i]) for i in range(2)]
        self.images = []
        for ax, (name, shortcut) in zip(self.heat_axes, self.nets):
            image = ax.imshow(np.full((2, 2), np.nan), aspect="auto", origin="lower", cmap="magma",
                              interpolation="nearest", vmin=-8, vmax=0)
            self.images.append(self.dynamic(image))
            ax.set_title(f"{name} net" + (" (x + f(x))" if shortcut else ""), fontsize=10, y=1.0)
            ax.set_xlabel("training step")
            ax.set_ylabel("weight layer (0 = input side)")
            ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        self.colorbar = fig.colorbar(self.images[0], cax=fig.add_subplot(grid[0, 2]))
        self.colorbar.set_label("log₁₀ ‖∂L/∂W‖₂")
        self.colorbar.locator = MaxNLocator(nbins=6, integer=True)
        self.axes = [fig.add_axes((0.745, 0.13, 0.24, 0.69))]
        self._style_axes(self.axes[0], self.panels[0])
        self._status = self.dynamic(fig.suptitle(" ", fontsize=11))

    def train(self, depth: int = 20, activation: str = "sigmoid", steps: int = 200, lr: float = 0.1,
              batch_size: int = 64, seed: int = 0) -> None:
        if steps < 1 or depth < 1:
            raise ValueError(f"steps and depth must be at least 1, got steps={steps}, depth={depth}")
        self.maps = [np.full((depth + 1, steps), np.nan) for _ in self.nets]  # depth hidden layers + the head
        self.start(f"depth {depth}, {activation}, SGD lr {lr:g}", steps)  # the first frame, before any work
        x_all, y_all = fashion_batch(batch_size * 16, seed=seed)
        nets, optimizers = [], []
        for _, shortcut in self.nets:
            torch.manual_seed(seed)  # the same weights in both nets: only the shortcut differs
            nets.append(make_deep_net("mlp", depth, activation=activation, shortcut=shortcut))
            optimizers.append(torch.optim.SGD(nets[-1].parameters(), lr=lr))
        weights = [[m.weight for m in net.modules() if isinstance(m, nn.Linear)] for net in nets]
        loss_fn = nn.CrossEntropyLoss()
        with torch_threads(1):
            for step in range(steps):
                lo = (step * batch_size) % len(x_all)
                x, y = x_all[lo:lo + batch_size], y_all[lo:lo + batch_size]
                for k, (net, opt) in enumerate(zip(nets, optimizers)):
                    opt.zero_grad(set_to_none=True)
                    loss = loss_fn(net(x), y)
                    loss.backward()
                    norms = torch.stack([w.grad.norm() for w in weights[k]])
                    self.maps[k][:, step] = torch.log10(norms.clamp_min(1e-30)).numpy()
                    opt.step()
                    self.add(self.nets[k][0], step + 1, loss.item())
                self.note(f"{self.label}: step {step + 1} of {steps}")
        self.note(f"{self.label}: {steps} steps done")

    def start(self, label: str, x_max: float) -> None:
        """A new run: empty heat maps of this run's size, then :meth:`RunPlot.start` (the loss curves fade)."""
        with self.lock:
            self._ensure_built()
            for ax, image, values in zip(self.heat_axes, self.images, self.maps):
                image.set_data(values)
                image.set_extent((0.5, x_max + 0.5, -0.5, values.shape[0] - 0.5))
                self.set_limits(ax, x=(0.5, x_max + 0.5), y=(-0.5, values.shape[0] - 0.5))
        super().start(label, x_max)

    def _refresh(self) -> None:
        super()._refresh()
        maps = self.maps
        if not maps:
            return
        for image, values in zip(self.images, maps):
            image.set_data(values)
        first = np.concatenate([m[:, 0] for m in maps])
        first = first[np.isfinite(first)]
        if first.size:  # one colour scale per run, fixed by its first step: later steps stay comparable
            lo, hi = math.floor(first.min()) - 1, math.ceil(first.max()) + 1
            if (lo, hi) != self.images[0].get_clim():
                for image in self.images:
                    image.set_clim(lo, hi)  # the colour bar changes with it: one full draw


def draw_gradient_heatmap_run(depth: int = 20, activation: str = "sigmoid", steps: int = 200, lr: float = 0.1,
                              batch_size: int = 64, seed: int = 0) -> Figure:
    """:class:`GradientHeatmapRun` trained to the end: per-layer gradient norms per step, plain vs residual."""
    return GradientHeatmapRun().draw(depth=depth, activation=activation, steps=steps, lr=lr, batch_size=batch_size,
                                     seed=seed)


class DepthSweepRun(RunPlot):
    """The depth sweep you watch: first-layer gradient norm vs depth, one curve per variant, growing.

    For each depth (shallow first, so the first points come at once) and each
    of plain / residual × without / with BN, a fresh seeded net measures the
    gradient reaching its first layer (:func:`first_layer_grad_vs_depth`, mean
    over ``seeds``) and the point appears. Earlier sweeps stay, faded, so a
    sigmoid sweep and a ReLU sweep can be compared on one plot; Stop ends a
    sweep where it is. Without ``inputs``/``targets`` it uses a fixed
    FashionMNIST batch (128 images for the MLP, 32 for the CNN).
    """

    figsize = (7.5, 4.4)
    panels = (Panel("first-layer gradient norm ‖∂L/∂W₁‖₂", yscale="log", legend="lower left"),)
    xlabel = "depth (number of hidden layers)"
    variants = ((False, False), (False, True), (True, False), (True, True))  # (shortcut, bn)
    interval_s = 1.0  # points come depth by depth (a frame each): timed frames only for the slow CNN depths

    def __init__(self, *, inputs: torch.Tensor | None = None, targets: torch.Tensor | None = None) -> None:
        super().__init__()
        self.inputs, self.targets = inputs, targets

    def build(self, fig: Figure) -> None:
        super().build(fig)
        fig.subplots_adjust(left=0.14, right=0.97, bottom=0.13, top=0.86)

    def train(self, depths: Sequence[int] = (2, 5, 10, 20, 30, 50), arch: str = "mlp", activation: str = "sigmoid",
              init: str = "default", seeds: Sequence[int] = (0, 1, 2)) -> None:
        depths = sorted(int(d) for d in depths)
        if not depths or not seeds:
            raise ValueError("the depth sweep needs at least one depth and one seed")
        self.start(f"{arch.upper()}, {activation}, init={init}", max(depths) * 1.05)
        x, y = self.inputs, self.targets
        if x is None or y is None:
            x, y = fashion_batch(128 if arch == "mlp" else 32)
        for depth in depths:
            for shortcut, bn in self.variants:
                with torch_threads(1):  # tiny nets: a second thread costs more than it brings (4-10x on 2 busy cores)
                    df = first_layer_grad_vs_depth([depth], inputs=x, targets=y, arch=arch, activation=activation,
                                                   init=init, bn=bn, shortcut=shortcut, seeds=seeds, progress=False)
                self.add(_variant_name(shortcut, bn), depth, float(df["first_grad_norm"].mean()), marker="o")
            self.note(f"{self.label}: depth {depth} measured")
            self.flush()
        self.note(f"{self.label}: gradient reaching the first layer")


def draw_first_layer_grad_vs_depth(
    depths: Sequence[int] = (2, 5, 10, 20, 30, 50),
    arch: str = "mlp",
    activation: str = "sigmoid",
    init: str = "default",
    seeds: Sequence[int] = (0, 1, 2),
    *,
    inputs: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
) -> Figure:
    """The four-curve plot: first-layer gradient norm vs depth, plain/residual × without/with BN (a new figure).

    :class:`DepthSweepRun` run to its end; the notebook's explorer streams it instead.
    """
    return DepthSweepRun(inputs=inputs, targets=targets).draw(depths=depths, arch=arch, activation=activation,
                                                              init=init, seeds=seeds)


def plot_first_layer_grad_vs_depth(
    df: pd.DataFrame, *, value: str = "first_grad_norm", title: str | None = None, relative: bool = False
) -> Figure:
    """Gradient norm at the FIRST layer against depth, one curve per variant (log y).

    Points are the mean over seeds; the band spans min..max over seeds. With
    ``relative`` a second panel divides each variant by its own value at the
    smallest depth, so that changes of 10x stay visible next to a curve that
    falls by 80 decades.
    """
    _require_columns(df, ["depth", "variant", value], "plot_first_layer_grad_vs_depth")
    fig, axes = plt.subplots(1, 2 if relative else 1, figsize=(12 if relative else 7, 4.2), squeeze=False)
    markers = ["o", "s", "^", "D", "v", "P"]
    for k, ax in enumerate(axes[0]):
        for i, (variant, part) in enumerate(df.groupby("variant", sort=False)):
            g = part.groupby("depth")[value]
            mean, lo, hi = g.mean(), g.min(), g.max()
            scale = float(mean.iloc[0]) if k == 1 else 1.0
            x = mean.index.to_numpy()
            ax.plot(x, mean.to_numpy() / scale, marker=markers[i % len(markers)], label=str(variant))
            if (hi > lo).any():
                ax.fill_between(x, lo.to_numpy() / scale, hi.to_numpy() / scale, alpha=0.15)
        ax.set_yscale("log")
        ax.set_xlabel("depth (number of hidden layers)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("first-layer gradient norm ‖∂L/∂W₁‖₂")
    if relative:  # zoom on the curves that stay within 3 decades of their start; the others leave the panel
        ratios = [line.get_ydata() for line in axes[0][1].get_lines()]
        kept = [r for r in ratios if np.min(r) >= 1e-3] or ratios
        axes[0][1].set_ylim(min(np.min(r) for r in kept) / 2, max(np.max(r) for r in kept) * 2)
        for line, r in zip(axes[0][1].get_lines(), ratios):
            if np.min(r) < 1e-3:
                line.set_label(f"{line.get_label()} (falls out of this panel)")
        axes[0][1].legend(fontsize=8)
        first = int(df["depth"].min())
        axes[0][1].set_ylabel(f"first-layer gradient / its value at depth {first}")
        axes[0][1].set_title(f"the same, each curve divided by its value at depth {first}", fontsize=10)
    if title:
        axes[0][0].set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def last_activation_std(channels: Sequence[int] = (8, 32), seeds: Sequence[int] = range(5), depth: int = 19,
                        init: str = "kaiming", inputs: torch.Tensor | None = None) -> pd.DataFrame:
    """Std of the last hidden activations of a deep plain ReLU CNN at initialization: one row per width.

    How much of the input's signal survives ``depth`` conv layers, for each number of
    ``channels`` and each seed (columns), measured in float64 on ``inputs`` (default:
    32 images of :func:`~resnet_tutorial.data.fashion_batch`). The inputs have std 1.
    """
    from ..models import make_deep_cnn

    x = fashion_batch(32)[0] if inputs is None else inputs
    if not channels or not list(seeds):
        raise ValueError("last_activation_std: give at least one width (channels) and one seed")
    rows = {}
    with torch_threads(1):
        for c in channels:
            row = {}
            for seed in seeds:
                torch.manual_seed(seed)
                net = make_deep_cnn(depth, channels=c, activation="relu", init=init).double()
                row[f"seed {seed}"] = float(activation_stats(net, x.double())["std"].iloc[-1])
            rows[f"{c} channels"] = row
    return pd.DataFrame(rows).T


#: The three 19-layer plain ReLU CNNs of the VGG-style comparison: name -> make_deep_cnn options.
VGG_LIKE: dict[str, dict[str, Any]] = {
    "default init": {}, "Kaiming init": {"init": "kaiming"}, "default init + BN": {"bn": True},
}


def compare_vgg_like(
    batches: Any,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    steps: int = 200,
    lr: float = 0.1,
    depth: int = 19,
    channels: int = 8,
    variants: dict[str, dict[str, Any]] | None = None,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """A 19-layer plain ReLU CNN (VGG-like depth) with default init, Kaiming init and BN: ``(table, runs)``.

    For each variant: the first-over-last weight-gradient ratio and the std of
    the last activation at initialization (float64, one batch of ``inputs``),
    and ``steps`` SGD steps on ``batches``
    (:func:`~resnet_tutorial.diagnostics.update_to_data_ratios`, float32 as in
    real training). ``table`` has one row per variant: ``first / last
    gradient``, ``first layer log10 update ratio`` (median over the steps),
    ``loss, last 10 steps``, ``last activation std``; ``runs`` holds each
    variant's per-step ratios.

    Runs on one torch thread (restored afterwards). These nets are tiny (8
    channels at 14×14): with two threads every small op waits for the other
    thread, and on a busy 2-core CPU that made the comparison 7-9x slower
    (measured: 190-200 s of CPU time instead of 27 s, native bf16 CPU and AVX2
    alike); on one thread it takes the same time on both CPU kinds.
    """
    from ..diagnostics import update_to_data_ratios
    from ..models import make_deep_cnn

    rows, runs = {}, {}
    with torch_threads(1):
        for name, kw in (VGG_LIKE if variants is None else variants).items():
            torch.manual_seed(0)
            probe = make_deep_cnn(depth, channels=channels, activation="relu", **kw).double()
            g = grad_norms(probe, inputs, targets)
            torch.manual_seed(0)
            net = make_deep_cnn(depth, channels=channels, activation="relu", **kw)
            runs[name] = update_to_data_ratios(net, batches, steps=steps, lr=lr, progress=False)
            rows[name] = {
                "first / last gradient": g["grad_norm"].iloc[0] / g["grad_norm"].iloc[-1],
                "first layer log10 update ratio": runs[name][runs[name]["index"] == 0]["log10_ratio"].median(),
                "loss, last 10 steps": runs[name].groupby("step")["loss"].first().iloc[-10:].mean(),
                # how much of the signal reaches the last hidden layer (std of its activations at initialization)
                "last activation std": activation_stats(probe, inputs)["std"].iloc[-1],
            }
    return pd.DataFrame(rows).T, runs
