"""Generic figures: training curves, gradient norms, activations, confusion matrices, images.

Every function returns its :class:`matplotlib.figure.Figure` (it never calls
``plt.show``), labels its axes with units, and works headless (Agg). The data
frames they take are the ones the package produces:

* :func:`plot_history` — ``train.fit`` (columns ``epoch, train_loss, train_acc,
  test_loss, test_acc, ...``);
* :func:`plot_grad_norms` — ``diagnostics.grad_norms`` (``index, layer, type,
  param_norm, grad_norm``);
* :func:`plot_activation_histograms` — ``diagnostics.activation_stats`` with
  ``samples=True`` (a ``samples`` column of 1-D arrays);
* :func:`plot_update_ratios` — ``diagnostics.update_to_data_ratios`` (``step,
  index, layer, log10_ratio``).

Figures that only one lesson draws live in that lesson's module under
:mod:`resnet_tutorial.lessons`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

if matplotlib.get_backend().lower() in {"", "template"}:  # pragma: no cover - headless safety
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

__all__ = [
    "plot_history",
    "plot_grad_norms",
    "plot_activation_histograms",
    "plot_confusion_matrix",
    "plot_image_grid",
    "plot_update_ratios",
    "plot_layer_stats",
    "plot_step_losses",
    "plot_class_examples",
    "plot_class_balance",
]

_METRIC_LABELS = {
    "loss": "cross-entropy loss (nats per image)",
    "acc": "accuracy",
    "lr": "learning rate",
    "seconds": "time per epoch (s)",
}


def _to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of a tensor, array, list or DataFrame (detached, on the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    elif isinstance(x, (pd.DataFrame, pd.Series)):
        x = x.to_numpy()
    return np.asarray(x)


def _as_named_frames(data: Any, what: str) -> dict[str, pd.DataFrame]:
    """``DataFrame`` or ``{name: DataFrame}`` → ``{name: DataFrame}`` (with a clear error)."""
    if isinstance(data, pd.DataFrame):
        return {"": data}
    if isinstance(data, Mapping) and data and all(isinstance(v, pd.DataFrame) for v in data.values()):
        return {str(k): v for k, v in data.items()}
    raise ValueError(f"{what} expects a DataFrame or a non-empty dict name -> DataFrame, got {type(data).__name__}")


def _require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: the DataFrame lacks columns {missing}; it has {list(df.columns)}")


# --------------------------------------------------------------------------- training curves
def plot_history(
    history: pd.DataFrame | Mapping[str, pd.DataFrame],
    metrics: Sequence[str] = ("loss", "acc"),
    *,
    title: str | None = None,
) -> Figure:
    """Training curves from ``train.fit``: one panel per metric, train dashed, test solid.

    ``history`` is one DataFrame or a dict ``name -> DataFrame`` (runs overlaid,
    one colour per run). A metric ``m`` plots the columns ``train_m`` and
    ``test_m`` where present (or the column ``m`` itself, e.g. ``lr``).
    Accuracies at most 1 are shown as fractions, larger ones as percent.

    Lessons: 07.
    """
    runs = _as_named_frames(history, "plot_history")
    if isinstance(metrics, str):
        metrics = (metrics,)
    if not metrics:
        raise ValueError("plot_history: give at least one metric, e.g. metrics=('loss', 'acc')")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], metrics):
        found = False
        ymax, ymin, xs = -math.inf, math.inf, set()
        for i, (name, df) in enumerate(runs.items()):
            x = df["epoch"].to_numpy() if "epoch" in df.columns else np.arange(1, len(df) + 1)
            color = colors[i % len(colors)]
            for split, style in (("train", "--"), ("test", "-")):
                col = f"{split}_{metric}"
                if col not in df.columns or df[col].isna().all():
                    continue
                y = df[col].to_numpy(dtype=float)
                ymax, ymin = max(ymax, np.nanmax(y)), min(ymin, np.nanmin(y))
                xs |= set(x.tolist())
                label = f"{name} {split}".strip()
                ax.plot(x, y, style, color=color, marker="o", markersize=3, label=label)
                found = True
            if metric in df.columns:
                y = df[metric].to_numpy(dtype=float)
                ymax = max(ymax, np.nanmax(y))
                ax.plot(x, y, "-", color=color, marker="o", markersize=3, label=name or metric)
                found = True
        if not found:
            cols = sorted({c for df in runs.values() for c in df.columns})
            raise ValueError(f"plot_history: no column for metric {metric!r}; columns are {cols}")
        ylabel = _METRIC_LABELS.get(metric, metric)
        if metric == "acc":
            ylabel += " (%)" if ymax > 1.0 else " (fraction correct)"
            full = 100.0 if ymax > 1.0 else 1.0  # never zoom into a +-4 % band around one point
            pad = max(0.05 * full, 0.1 * (ymax - ymin))
            ax.set_ylim(max(0.0, ymin - pad), min(full, ymax + pad) + 0.01 * full)
        if len(xs) == 1:  # a one-epoch run: one point per curve, centred in a readable axis
            x0 = next(iter(xs))
            ax.set_xlim(x0 - 1, x0 + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if metric == "lr":
            ax.set_yscale("log")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- gradients
def plot_grad_norms(
    grad_norms: pd.DataFrame | Mapping[str, pd.DataFrame],
    logy: bool = True,
    *,
    ax: plt.Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Per-layer gradient L2 norms, x = layer index from input to output.

    Takes ``gradients.grad_norms`` output, or a dict ``name -> DataFrame`` to
    overlay several models. A log y-axis is the default because the norms
    of a deep plain net span many decades.

    Lessons: 01, 02.
    """
    runs = _as_named_frames(grad_norms, "plot_grad_norms")
    own_figure = ax is None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    for name, df in runs.items():
        _require_columns(df, ["grad_norm"], "plot_grad_norms")
        x = df["index"].to_numpy() if "index" in df.columns else np.arange(len(df))
        y = df["grad_norm"].to_numpy(dtype=float)
        ax.plot(x, y, marker="o", markersize=3, label=name or None)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("layer index (0 = first layer, input → output)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are counted, not measured
    ax.set_ylabel("gradient norm ‖∂L/∂W‖₂ (L2, per layer)")
    ax.grid(alpha=0.3, which="both")
    if len(runs) > 1 or next(iter(runs)):
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    if own_figure:
        fig.tight_layout()
    return fig


_STAT_LABELS = {
    "frac_zero": "outputs exactly 0 (ReLU off)",
    "frac_dead_units": "dead units (0 for the whole batch)",
    "frac_saturated": "saturated (sigmoid < 0.03 or > 0.97, |tanh| > 0.97)",
}


def plot_layer_stats(stats: pd.DataFrame, columns: Sequence[str], *, ax: plt.Axes | None = None) -> Figure:
    """Fractions per activation layer (e.g. ``frac_saturated``, ``frac_zero``) against layer index."""
    _require_columns(stats, list(columns), "plot_layer_stats")
    own_figure = ax is None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3))
    else:
        fig = ax.figure
    x = stats["index"].to_numpy() if "index" in stats.columns else np.arange(len(stats))
    for col in columns:
        ax.plot(x, 100 * stats[col].to_numpy(dtype=float), marker="o", markersize=3, label=_STAT_LABELS.get(col, col))
    ax.set_xlabel("activation layer index (input → output)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("share of outputs (%)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if own_figure:
        fig.tight_layout()
    return fig


def plot_activation_histograms(
    stats: pd.DataFrame | Mapping[str, Any],
    *,
    bins: int = 50,
    ncols: int = 4,
    max_layers: int = 12,
) -> Figure:
    """Histograms of activation values, one panel per activation layer.

    ``stats`` is ``gradients.activation_stats(..., samples=True)`` (needs its
    ``samples`` column) or a dict ``layer name -> tensor/array`` of outputs.
    With more than ``max_layers`` layers, evenly spaced ones are shown
    (always the first and the last).

    Lessons: 01.
    """
    if isinstance(stats, pd.DataFrame):
        _require_columns(stats, ["samples"], "plot_activation_histograms (call activation_stats(..., samples=True))")
        names = [str(n) for n in stats["layer"]] if "layer" in stats.columns else [str(i) for i in range(len(stats))]
        values = [_to_numpy(s).ravel() for s in stats["samples"]]
    elif isinstance(stats, Mapping) and stats:
        names = [str(k) for k in stats]
        values = [_to_numpy(v).ravel() for v in stats.values()]
    else:
        raise ValueError("plot_activation_histograms expects activation_stats(..., samples=True) or a dict name -> array")
    if not values:
        raise ValueError("plot_activation_histograms: no activation layers to show")
    keep = np.unique(np.linspace(0, len(values) - 1, min(max_layers, len(values))).round().astype(int))
    n = len(keep)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.5 * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, i in zip(axes.flat, keep):
        v = values[i]
        ax.hist(v, bins=bins, color="tab:blue", alpha=0.85)
        ax.set_title(f"{names[i]}\nmean {v.mean():.2f}, std {v.std():.2f}", fontsize=8)
        ax.set_xlabel("activation value")
        ax.set_ylabel("count")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def plot_update_ratios(
    df: pd.DataFrame, *, reference: float = -3.0, max_layers: int = 12, title: str | None = None
) -> Figure:
    """log10(update std / weight std) per layer against the training step, with the 1e-3 line.

    A ratio near 1e-3 (Karpathy's rule of thumb) means each step changes the
    weights by about a thousandth of their size; far below it the layer
    barely learns, far above it the step is too large.

    Lessons: 01.
    """
    _require_columns(df, ["step", "log10_ratio"], "plot_update_ratios")
    key = "index" if "index" in df.columns else "layer"
    layers = list(dict.fromkeys(df[key]))
    keep = [layers[i] for i in np.unique(np.linspace(0, len(layers) - 1, min(max_layers, len(layers))).round().astype(int))]
    fig, ax = plt.subplots(figsize=(9, 4))
    cmap = plt.get_cmap("viridis")
    for j, layer in enumerate(keep):
        part = df[df[key] == layer].sort_values("step")
        name = part["layer"].iloc[0] if "layer" in part.columns else str(layer)
        label = f"{layer}: {name}" if key == "index" else str(name)
        color = cmap(j / max(1, len(keep) - 1))
        ax.plot(part["step"].to_numpy(), part["log10_ratio"].to_numpy(dtype=float), color=color, label=label)
    ax.axhline(reference, color="black", linestyle="--", linewidth=1, label=f"reference 1e{reference:g}")
    ax.set_xlabel("training step (optimizer updates)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("log10(update std / weight std)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="layer (input → output)", title_fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_step_losses(
    runs: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    chance_level: float | None = None,
    title: str | None = None,
) -> Figure:
    """Training loss against the step, one curve per run (``step`` and ``loss`` columns).

    Takes ``update_to_data_ratios`` output (one row per layer and step; the
    loss is read once per step). ``chance_level`` draws a dotted line, e.g.
    ``math.log(10)`` = 2.303, the cross-entropy of a uniform guess over 10 classes.

    Lessons: 01, 02.
    """
    named = _as_named_frames(runs, "plot_step_losses")
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, df in named.items():
        _require_columns(df, ["step", "loss"], "plot_step_losses")
        per_step = df.groupby("step", sort=True)["loss"].first()
        ax.plot(per_step.index.to_numpy(), per_step.to_numpy(dtype=float), label=name or None)
    if chance_level is not None:
        ax.axhline(chance_level, color="gray", linestyle=":", label=f"chance level ({chance_level:.3f})")
    ax.set_xlabel("training step (optimizer updates)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("training loss (cross-entropy, nats)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- classification
def plot_confusion_matrix(
    cm: Any,
    class_names: Sequence[str] | None = None,
    normalize: bool = True,
    *,
    title: str | None = None,
) -> Figure:
    """Heatmap of a confusion matrix (rows = true class, columns = predicted class).

    ``normalize=True`` divides each row by its total so a cell reads "share of
    the images of this true class that got this prediction".

    Lessons: 07.
    """
    import seaborn as sns

    m = _to_numpy(cm).astype(float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"plot_confusion_matrix expects a square matrix, got shape {m.shape}")
    if class_names is None:
        class_names = [str(i) for i in range(m.shape[0])]
    if len(class_names) != m.shape[0]:
        raise ValueError(f"plot_confusion_matrix: {len(class_names)} class names for a {m.shape[0]}x{m.shape[0]} matrix")
    if normalize:
        totals = m.sum(axis=1, keepdims=True)
        m = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)
    size = max(5.0, 0.6 * m.shape[0] + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    sns.heatmap(
        m,
        annot=m.shape[0] <= 12,
        fmt=".2f" if normalize else ".0f",
        cmap="Blues",
        xticklabels=list(class_names),
        yticklabels=list(class_names),
        cbar_kws={"label": "share of the true class" if normalize else "number of images"},
        ax=ax,
        annot_kws={"fontsize": 7},
    )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.tick_params(axis="x", rotation=45)
    ax.tick_params(axis="y", rotation=0)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_image_grid(
    images: Any,
    labels: Any = None,
    preds: Any = None,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
) -> Figure:
    """A grid of images with their labels; mistakes (``preds != labels``) in red.

    ``images`` is ``[N, C, H, W]`` or ``[N, H, W]`` (tensor or array; uint8 is
    read as 0..255). Pass the normalization ``mean``/``std`` to undo it for
    display. Titles read ``class`` or, with ``preds``, ``pred (true: label)``.

    Lessons: 00, 07.
    """
    x = _to_numpy(images)
    if x.ndim == 4:
        x = np.transpose(x, (0, 2, 3, 1))  # N, H, W, C
    elif x.ndim == 3:
        x = x[..., None]
    else:
        raise ValueError(f"plot_image_grid expects images [N, C, H, W] or [N, H, W], got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("plot_image_grid: no images to show")
    if x.shape[-1] not in (1, 3):
        raise ValueError(f"plot_image_grid: images need 1 or 3 channels, got {x.shape[-1]}")
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if std is not None:
        x = x * np.asarray(std, dtype=np.float32).reshape(1, 1, 1, -1)
    if mean is not None:
        x = x + np.asarray(mean, dtype=np.float32).reshape(1, 1, 1, -1)
    x = np.clip(x, 0.0, 1.0)
    n = x.shape[0]
    lab = None if labels is None else _to_numpy(labels).ravel()
    pr = None if preds is None else _to_numpy(preds).ravel()
    for name, arr in (("labels", lab), ("preds", pr)):
        if arr is not None and len(arr) != n:
            raise ValueError(f"plot_image_grid: {len(arr)} {name} for {n} images")

    def name_of(k: Any) -> str:
        return str(class_names[int(k)]) if class_names is not None else str(int(k))

    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    # two-line titles ("pred (true: ...)") need more room above each image than one-line labels
    row_height = 2.1 if pr is not None else 1.7
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols, row_height * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = x[i]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0.0, vmax=1.0)
        if pr is not None:
            wrong = lab is not None and int(pr[i]) != int(lab[i])
            text = name_of(pr[i]) + (f"\n(true: {name_of(lab[i])})" if wrong else "")
            ax.set_title(text, fontsize=7, color="red" if wrong else "green")
        elif lab is not None:
            ax.set_title(name_of(lab[i]), fontsize=7)
    fig.tight_layout(h_pad=0.6)
    return fig


def plot_class_examples(
    images: Any,
    labels: Any,
    class_index: int,
    class_names: Sequence[str] | None = None,
    n: int = 16,
    seed: int = 0,
    ncols: int = 8,
) -> Figure:
    """``n`` random images of one class (drawn with ``seed``), titled with the class name."""
    lab = _to_numpy(labels).ravel()
    if len(lab) != len(images):
        raise ValueError(f"plot_class_examples: {len(images)} images but {len(lab)} labels")
    idx = np.flatnonzero(lab == int(class_index))
    if idx.size == 0:
        raise ValueError(f"plot_class_examples: no image has label {class_index}")
    if n < 1:
        raise ValueError(f"plot_class_examples: n must be >= 1, got {n}")
    pick = np.random.default_rng(seed).choice(idx, size=min(n, idx.size), replace=False)
    pick_t = pick.tolist()
    fig = plot_image_grid(images[pick_t], lab[pick], class_names=class_names, ncols=ncols)
    name = class_names[int(class_index)] if class_names is not None else str(class_index)
    fig.suptitle(f"{len(pick)} random images of class {int(class_index)}: {name} (of {idx.size})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_class_balance(counts: Mapping[str, Any], class_names: Sequence[str] | None = None) -> Figure:
    """Grouped bars: images per class for each split, e.g. ``{"train": counts, "test": counts}``.

    Lessons: 00.
    """
    if not isinstance(counts, Mapping) or not counts:
        raise ValueError("plot_class_balance expects a dict split name -> per-class counts")
    arrays = {k: _to_numpy(v).ravel() for k, v in counts.items()}
    k = len(next(iter(arrays.values())))
    if any(len(a) != k for a in arrays.values()):
        raise ValueError("plot_class_balance: every split needs one count per class")
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(9, 3.5))
    width = 0.8 / len(arrays)
    x = np.arange(k)
    for i, (split, a) in enumerate(arrays.items()):
        ax.bar(x + (i - (len(arrays) - 1) / 2) * width, a, width=width, label=split)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_xlabel("class")
    ax.set_ylabel("number of images")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig
