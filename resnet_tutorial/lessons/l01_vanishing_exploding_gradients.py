"""Lesson 01 · Vanishing and exploding gradients: the depth sweep and the explorers.

The measurement tools (``grad_norms``, ``activation_stats``, ``per_layer_factor``,
``update_to_data_ratios``, ``chain_rule_check``) are in
:mod:`resnet_tutorial.diagnostics`, the deep nets in
:func:`resnet_tutorial.models.make_deep_mlp` / ``make_deep_cnn``; this module
holds what only lesson 01 does with them.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from tqdm.auto import tqdm

from ..data import fashion_batch
from ..device import torch_threads
from ..diagnostics import activation_stats, grad_norms, per_layer_factor
from ..models import make_deep_net
from ..plots import _require_columns, plot_grad_norms, plot_layer_stats

__all__ = ["first_layer_grad_vs_depth", "plot_first_layer_grad_vs_depth", "draw_gradient_explorer", "compare_vgg_like",
           "draw_first_layer_grad_vs_depth"]


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
) -> Any:
    """Build one deep net, send one FashionMNIST batch through it, and show what happens.

    Left: per-layer weight-gradient norms (log scale) with the fitted per-layer
    factor. Middle: mean ± std of each activation layer's output. Right: share
    of saturated sigmoid/tanh outputs or of zero (dead) ReLU outputs. The
    model runs in float64 so even 1e-100 gradients are measured, not rounded
    to 0. Without ``inputs``/``targets`` it uses a fixed FashionMNIST batch of
    ``batch_size`` images (default 128 for the MLP, 16 for the CNN). Cheap: one
    forward/backward on one torch thread (restored afterwards), well under
    1.5 s at depth 100 on one CPU core, figure included.
    """
    if inputs is None or targets is None:
        inputs, targets = fashion_batch(batch_size or (128 if arch == "mlp" else 16), seed=0)
    with torch_threads(1):  # tiny net: one thread is enough and does not stall on a busy CPU
        torch.manual_seed(seed)
        model = make_deep_net(arch, depth, activation=activation, init=init, bn=bn, shortcut=shortcut).double()
        model.train()
        grads = grad_norms(model, inputs, targets)
        stats = activation_stats(model, inputs)
    norms = grads["grad_norm"].to_numpy()
    ok = np.isfinite(norms) & (norms > 0)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    variant = f"{arch.upper()}, {activation}, init={init}, {_variant_name(shortcut, bn)}, depth {depth}"
    plot_grad_norms({variant: grads}, ax=axes[0])
    if ok.sum() >= 3:
        fit = per_layer_factor(grads[ok])
        idx = grads["index"][ok].iloc[:-1]
        axes[0].plot(idx, fit.predict(idx.max() - idx), ":", color="gray", label=f"fit: ×{fit.factor:.3g} per layer toward the input")
        axes[0].legend(fontsize=8)
    ratio = norms[0] / norms[-1] if norms[-1] > 0 else float("nan")
    axes[0].set_title(f"first/last layer gradient = {ratio:.2g}", fontsize=10)
    x = stats["index"].to_numpy()
    axes[1].plot(x, stats["mean"], marker="o", markersize=3, label="mean")
    axes[1].fill_between(x, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.25, label="± std")
    axes[1].set_xlabel("activation layer index (input → output)")
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set_ylabel("activation value (unitless)")
    axes[1].set_title("activation mean ± std", fontsize=10)
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3)
    col = "frac_zero" if activation == "relu" else "frac_saturated"
    plot_layer_stats(stats, [col] + (["frac_dead_units"] if activation == "relu" else []), ax=axes[2])
    axes[2].set_title("dead ReLU outputs" if activation == "relu" else "saturated outputs", fontsize=10)
    fig.suptitle(variant, fontsize=11)
    fig.tight_layout()
    return fig


def draw_first_layer_grad_vs_depth(
    depths: Sequence[int] = (2, 5, 10, 20, 30, 50),
    arch: str = "mlp",
    activation: str = "sigmoid",
    init: str = "default",
    seeds: Sequence[int] = (0, 1, 2),
    *,
    inputs: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    progress: bool = False,
) -> Any:
    """The four-curve plot: first-layer gradient norm vs depth, plain/residual × without/with BN."""
    if inputs is None or targets is None:
        inputs, targets = fashion_batch(128 if arch == "mlp" else 32)
    df = first_layer_grad_vs_depth(
        depths, inputs=inputs, targets=targets, arch=arch, activation=activation, init=init, seeds=seeds, progress=progress
    )
    title = f"{arch.upper()}, {activation}, init={init}: gradient reaching the first layer"
    return plot_first_layer_grad_vs_depth(df, title=title)


def plot_first_layer_grad_vs_depth(
    df: pd.DataFrame, *, value: str = "first_grad_norm", title: str | None = None
) -> Figure:
    """Gradient norm at the FIRST layer against depth, one curve per variant (log y).

    Points are the mean over seeds; the band spans min..max over seeds.
    """
    _require_columns(df, ["depth", "variant", value], "plot_first_layer_grad_vs_depth")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    markers = ["o", "s", "^", "D", "v", "P"]
    for i, (variant, part) in enumerate(df.groupby("variant", sort=False)):
        g = part.groupby("depth")[value]
        mean, lo, hi = g.mean(), g.min(), g.max()
        x = mean.index.to_numpy()
        ax.plot(x, mean.to_numpy(), marker=markers[i % len(markers)], label=str(variant))
        if (hi > lo).any():
            ax.fill_between(x, lo.to_numpy(), hi.to_numpy(), alpha=0.15)
    ax.set_yscale("log")
    ax.set_xlabel("depth (number of hidden layers)")
    ax.set_ylabel("first-layer gradient norm ‖∂L/∂W₁‖₂")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


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
