"""Lesson 08 · The degradation problem: the figures, tables and the run explorer of the notebook.

* :func:`draw_twins` -- plain-20 and ResNet-20 side by side, drawn from the
  trained nets of the full run (``resnet_tutorial.diagrams``).
* :func:`final_table`, :func:`plot_final_error_vs_depth` -- the headline:
  training error of the final weights against depth, per family.
* :func:`plot_degradation` -- He et al.'s Fig. 6 layout (error against epoch),
  on an axis that covers every curve (1-100 %, chance at 90 % marked).
* :func:`recipe_differences` -- what the small and the full run do
  differently (more than the budget: the honest caveat of the lesson).
* :class:`DegradationExplorer` -- switch between the cached runs and families
  and see where ResNet-56 vs ResNet-20 flips (a ``LiveFigure``).
* :class:`LiveDegradationRun` -- the experiment in miniature, trained while
  you watch (a ``RunPlot``: Stop keeps what trained, earlier runs fade).

The experiment itself (training, the cache, the trained nets) is
:mod:`resnet_tutorial.degradation`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FormatStrFormatter, MaxNLocator, NullFormatter, NullLocator

from matplotlib.lines import Line2D

from ..checkpoints import load_model
from ..degradation import (DEFAULT_PATH, FULL_PATH, FULL_WEIGHTS, KINDS, check_depths, load_degradation,
                           run_degradation)
from ..diagrams import draw_network
from ..live import TRAINING_FRAME_S, LiveFigure, Panel, RunPlot

__all__ = ["CHANCE_ERROR", "ERROR_YLIM", "RUNS", "DegradationExplorer", "LiveDegradationRun", "depth_color", "depth_verdict",
           "draw_degradation_explorer", "draw_twins", "final_errors", "final_table", "last_epoch_errors",
           "plot_degradation", "plot_final_error_vs_depth", "recipe_differences"]

#: One error axis (%, log) for every curve figure of the lesson: it covers every run's curves,
#: from the full run's 1-2 % to the small run's first epochs near chance (82 %).
ERROR_YLIM = (1.0, 100.0)
#: Error of guessing among 10 equally frequent classes.
CHANCE_ERROR = 0.9
#: The depths the colour scale spans (6n+2 nets): a depth gets the same colour in every figure.
COLOR_DEPTHS = (8, 110)
_LOG_TICKS = [1, 2, 5, 10, 20, 50, 100]
#: The cached runs the explorer switches between: (label, table path).
RUNS = {"full": ("full run: 60,000 images, 12 epochs", FULL_PATH),
        "small": ("small run: 12,000 images, 15 epochs", DEFAULT_PATH)}
FAMILY_NAMES = {"plain": "plain", "resnet": "ResNet"}


def final_errors(table: pd.DataFrame) -> pd.DataFrame:
    """Last-epoch training and test error per model: rows = depth, columns = (error, kind)."""
    last = table[table["epoch"] == table.groupby("model")["epoch"].transform("max")]
    return last.pivot_table(index="depth", columns="kind", values=["train_error", "test_error"])


def last_epoch_errors(table: pd.DataFrame, kind: str, column: str = "train_error") -> dict[int, float]:
    """``{depth: error}`` at each ``kind`` model's last epoch (fractions), from a degradation table."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if column not in ("train_error", "test_error"):
        raise ValueError(f"column must be 'train_error' or 'test_error', got {column!r}")
    rows = table[table["kind"] == kind]
    last = rows[rows["epoch"] == rows.groupby("model")["epoch"].transform("max")]
    return {int(d): float(e) for d, e in sorted(zip(last["depth"], last[column]))}


def depth_verdict(errors: dict[int, float], shallow: int = 20, deep: int = 56) -> str:
    """``"better"``, ``"worse"`` or ``"the same"``: how the ``deep`` net's error compares with the ``shallow`` one's.

    Errors within 0.05 percentage points count as the same (a single seed cannot tell them apart).
    """
    missing = [d for d in (shallow, deep) if d not in errors]
    if missing:
        raise ValueError(f"depths {missing} are not in this run (it has {sorted(errors)})")
    gap = errors[deep] - errors[shallow]
    return "the same" if abs(gap) < 5e-4 else ("worse" if gap > 0 else "better")


def final_table(meta: dict) -> pd.DataFrame:
    """Per model of a run cached with its nets (``meta["models"]``): kind, depth, final errors (%), parameters.

    "train error, final weights" is the error of the final weights on all training
    images, measured again in eval mode after training (the per-epoch training error
    is a running average while the weights still change).
    """
    models = meta.get("models")
    if not models:
        raise ValueError("this run has no per-model summaries (meta['models']): it was cached without "
                         "--weights-dir; use the full run (degradation.FULL_PATH)")
    rows = []
    for name, s in models.items():
        kind = name.rstrip("0123456789")
        rows.append({"model": name, "kind": kind, "depth": int(name[len(kind):]),
                     "train error, final weights (%)": 100 * s["train_error_eval"],
                     "test error (%)": 100 * s["test_error"], "params": s["params"]})
    return pd.DataFrame(rows).set_index("model").sort_values(["kind", "depth"])


def depth_color(depth: int):
    """The colour of a depth, the same in every figure of the lesson (deeper = darker)."""
    lo, hi = (math.log(d) for d in COLOR_DEPTHS)
    t = (math.log(depth) - lo) / (hi - lo)
    # plasma changes hue along its length (viridis stays teal in the middle, where 20 and 32 fall)
    return plt.get_cmap("plasma")(0.88 * (1.0 - min(max(t, 0.0), 1.0)))


def _error_axis(ax, lo: float, hi: float, label: bool = True) -> None:
    """Log error axis (%) from ``lo`` to ``hi`` with round ticks and the chance level marked (and named)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(FixedLocator(_LOG_TICKS))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(lo, hi)
    ax.axhline(100 * CHANCE_ERROR, color="0.35", lw=1, ls=":", zorder=1)
    if not label:
        return
    ax.text(0.99, 100 * CHANCE_ERROR * 0.93, "chance (guessing): 90 %", transform=ax.get_yaxis_transform(),
            ha="right", va="top", fontsize=8, color="0.35")


def plot_degradation(table: pd.DataFrame, depths: Sequence[int] | None = None, kinds: Sequence[str] = KINDS,
                     ylim: tuple[float, float] = ERROR_YLIM) -> Figure:
    """He et al.'s Fig. 6 layout: one panel per kind, error (%) vs epoch; dashed = train, solid = test.

    Each depth has one colour in every figure (:func:`depth_color`, deeper = darker);
    ``depths`` selects which ones to show. ``ylim`` (in %, log axis) is widened where a
    curve would leave it, so no curve is ever clipped; the chance level (90 %) is marked.
    """
    all_depths = sorted(table["depth"].unique())
    depths = all_depths if depths is None else [d for d in all_depths if d in set(depths)]
    if not depths:
        raise ValueError(f"none of the requested depths is in the table (it has {all_depths})")
    kinds = [k for k in kinds if k in set(table["kind"])]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4.4), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for depth in depths:
            run = table[(table["kind"] == kind) & (table["depth"] == depth)].sort_values("epoch")
            if run.empty:
                continue
            color = depth_color(depth)
            ax.plot(run["epoch"], 100 * run["train_error"], "--", color=color, lw=1.5)
            ax.plot(run["epoch"], 100 * run["test_error"], "-", color=color, lw=2.2,
                    label=f"{FAMILY_NAMES[kind]}-{depth}")
        ax.set_title("plain networks" if kind == "plain" else "residual networks (ResNet)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(title="solid: test, dashed: training", fontsize=9, title_fontsize=9, loc="upper center",
                  bbox_to_anchor=(0.5, -0.16), ncol=len(depths), frameon=False)
    shown = table[table["depth"].isin(depths) & table["kind"].isin(kinds)]
    errors = 100 * shown[["train_error", "test_error"]].to_numpy()
    lo, hi = min(ylim[0], errors.min() / 1.15), max(ylim[1], errors.max() * 1.05)
    for ax in axes[0]:
        _error_axis(ax, lo, hi)
    axes[0, 0].set_ylabel("error (%, log scale)")
    fig.tight_layout()
    return fig


def plot_final_error_vs_depth(table: pd.DataFrame, final_train_error: dict[str, float] | None = None) -> Figure:
    """He et al.'s message in one picture: final training (and test) error against depth, per family.

    ``final_train_error`` maps model names (``"resnet56"``) to the error of the final
    weights on all training images in eval mode (the cache's ``meta["models"]``);
    without it the last epoch's running training error is used.
    """
    last = table[table["epoch"] == table.groupby("model")["epoch"].transform("max")].sort_values("depth")
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for kind, color, marker in (("plain", "C3", "s"), ("resnet", "C0", "o")):
        rows = last[last["kind"] == kind]
        if rows.empty:
            continue
        train = [100 * (final_train_error or {}).get(m, e) for m, e in zip(rows["model"], rows["train_error"])]
        name = FAMILY_NAMES[kind]
        ax.plot(rows["depth"], train, marker + "-", color=color, lw=2, label=f"{name}: training error")
        ax.plot(rows["depth"], 100 * rows["test_error"], marker + ":", color=color, lw=1.2, alpha=0.8,
                label=f"{name}: test error")
    ax.set_xticks(sorted(last["depth"].unique()))
    ax.set_xlabel("depth (weighted layers)")
    ax.set_ylabel("final error (%)")
    ax.set_ylim(0, None)
    ax.set_title("final error against depth" + (" (training error: final weights, eval mode)"
                                                 if final_train_error else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.tight_layout()
    return fig


# ====================================================================== the two runs, honestly compared
def _images(per_class: int | None, total: int) -> int:
    return total if per_class is None else 10 * int(per_class)


def recipe_differences(small: dict, full: dict, names: tuple[str, str] = ("small run", "full run")) -> pd.DataFrame:
    """Side by side, what two cached runs did (their JSON ``meta``): rows = setting, plus ``differs``.

    More than the budget separates the lesson's two runs: the learning rate, its
    schedule, Nesterov momentum, label smoothing, augmentation and the size of the
    test set differ too, and with augmentation the per-epoch training error is
    measured on randomly cropped and flipped batches. Settings a run did not record
    (``nesterov``, ``label_smoothing`` in runs cached before they existed) are off.
    """
    columns = {}
    for name, meta in zip(names, (small, full)):
        s = meta.get("settings")
        if not s:
            raise ValueError(f"{name}: the run's meta has no 'settings' (read it with degradation.load_degradation)")
        images = _images(s["per_class"], 60_000)
        augmented = s.get("augment", "none") != "none"
        columns[name] = {
            "training images": f"{images:,}",
            "epochs": s["epochs"],
            "SGD steps": f"{math.ceil(images / s['batch_size']) * s['epochs']:,} of {s['batch_size']} images",
            "peak learning rate": s["lr"],
            "schedule": s["schedule"],
            "Nesterov momentum": "yes" if s.get("nesterov") else "no",
            "label smoothing": s.get("label_smoothing") or 0,
            "augmentation": s.get("augment", "none"),
            "test images": f"{_images(s['test_per_class'], 10_000):,}",
            "per-epoch training error measured on": ("augmented batches" if augmented else "the images as they are")
                                                    + ", while the weights change",
            "final weights re-measured (eval mode)": "yes" if meta.get("models") else "no",
        }
    table = pd.DataFrame(columns).astype(str)
    table.index.name = "setting"
    table["differs"] = table[names[0]] != table[names[1]]
    return table


# ====================================================================== the twins, drawn from the trained nets
def draw_twins(depth: int = 20, weights: str | os.PathLike | None = None) -> Figure:
    """Plain-``depth`` and ResNet-``depth`` side by side, drawn from the full run's trained nets.

    ``weights`` is the folder of the nets (``degradation.FULL_WEIGHTS`` by default,
    ``plain20.pt``, ``resnet20.pt``, ...). ``fig.diagrams`` holds what each panel drew.
    """
    folder = Path(weights) if weights is not None else FULL_WEIGHTS
    nets = {}
    for kind in KINDS:
        path = folder / f"{kind}{depth}.pt"
        if not path.is_file():
            have = sorted(p.stem for p in folder.glob("*.pt"))
            raise FileNotFoundError(f"no trained {kind}{depth} in {folder} (it has {have or 'none'}); "
                                    "pick a depth the run trained")
        nets[kind] = load_model(path)
    # each panel as wide as the diagram's own size, so both are drawn at the same scale
    sizes = {}
    for kind in KINDS:
        alone = draw_network(nets[kind], input_shape=(1, 28, 28), title="x")
        sizes[kind] = alone.get_size_inches()
        plt.close(alone)
    width = sum(w for w, _ in sizes.values())
    fig, axes = plt.subplots(1, 2, figsize=(width + 0.4, max(h for _, h in sizes.values()) + 0.2),
                             gridspec_kw={"width_ratios": [sizes[k][0] for k in KINDS]})
    titles = {"plain": f"plain-{depth}: no shortcuts", "resnet": f"ResNet-{depth}: the same layers + shortcuts"}
    fig.diagrams = {}  # type: ignore[attr-defined]
    for ax, kind in zip(axes, KINDS):
        drawn = draw_network(nets[kind], input_shape=(1, 28, 28), ax=ax, title=titles[kind])
        fig.diagrams[kind] = drawn.diagram  # type: ignore[attr-defined]
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.01, wspace=0.04)
    return fig


# ====================================================================== the explorer
def _spread(values: list[float], gap: float) -> list[float]:
    """``values`` moved apart (in order, as little as possible, upwards) so neighbours are at least ``gap`` apart."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = list(values)
    for a, b in zip(order, order[1:]):
        out[b] = max(out[b], out[a] + gap)
    return out


class DegradationExplorer(LiveFigure):
    """Error against epoch of every depth of one cached run and one family, training or test error.

    ``explore(DegradationExplorer, run=..., family=..., error=...)``. Only what the
    runs have is offered: the run's depths are all drawn (small run 8/20/56, full run
    20/32/56), so no control can ask for a net that was never trained. The line under
    the plot compares the depths both runs have (20 and 56) at the last epoch: switch
    the run and ResNet-56 vs ResNet-20 flips. Both tables are read once; every frame
    only updates lines and texts on fixed axes (blitted).
    """

    figsize = (10.0, 4.8)
    compare = (20, 56)

    def __init__(self, paths: dict[str, str | os.PathLike] | None = None) -> None:
        super().__init__()
        paths = paths if paths is not None else {k: p for k, (_, p) in RUNS.items()}
        if not paths:
            raise ValueError("give at least one run: paths={'full': path_to_csv}")
        self.tables = {k: load_degradation(p) for k, p in paths.items()}
        self.n_lines = max(t["depth"].nunique() for t in self.tables.values())
        self.max_epoch = max(int(t["epoch"].max()) for t in self.tables.values())
        lowest = min(100 * t[["train_error", "test_error"]].to_numpy().min() for t in self.tables.values())
        self.ylim = (min(ERROR_YLIM[0], lowest / 1.15), ERROR_YLIM[1])

    def compute(self, run: str = "full", family: str = "resnet", error: str = "training") -> dict[str, Any]:
        if run not in self.tables:
            raise ValueError(f"run must be one of {sorted(self.tables)}, got {run!r}")
        if error not in ("training", "test"):
            raise ValueError(f"error must be 'training' or 'test', got {error!r}")
        column = "train_error" if error == "training" else "test_error"
        table = self.tables[run]
        errors = last_epoch_errors(table, family, column)  # checks family
        curves = []
        for depth in errors:
            rows = table[(table["kind"] == family) & (table["depth"] == depth)].sort_values("epoch")
            curves.append((depth, rows["epoch"].to_numpy(float), 100 * rows[column].to_numpy(float)))
        name = FAMILY_NAMES[family]
        shallow, deep = self.compare
        if shallow in errors and deep in errors:
            verdict = depth_verdict(errors, shallow, deep)
            text = (f"last epoch, {error} error: {name}-{shallow} {100 * errors[shallow]:.2f} %, "
                    f"{name}-{deep} {100 * errors[deep]:.2f} %: the deeper net is {verdict}")
        else:
            text = f"this run has no {name}-{shallow} and {name}-{deep} to compare"
        return {"curves": curves, "verdict": text, "errors": errors}

    def build(self, fig: Figure) -> None:
        self.ax = ax = fig.subplots()
        ax.set_xlim(0.5, self.max_epoch + 3.2)
        ax.xaxis.set_major_locator(FixedLocator(range(1, self.max_epoch + 1, 1 if self.max_epoch <= 16 else 2)))
        ax.set_xlabel("epoch")
        ax.set_ylabel("error (%, log scale)")
        ax.grid(alpha=0.3)
        _error_axis(ax, *self.ylim)
        self.lines = [ax.plot([], [], lw=2.2)[0] for _ in range(self.n_lines)]
        self.labels = [ax.text(0, 1, "", fontsize=9, va="center", ha="left") for _ in range(self.n_lines)]
        self.title = fig.suptitle(" ", fontsize=11, y=0.97)
        self.verdict = fig.text(0.5, 0.025, " ", ha="center", fontsize=10, fontweight="bold")
        self.dynamic(*self.lines, *self.labels, self.title, self.verdict)
        fig.subplots_adjust(left=0.08, right=0.97, top=0.88, bottom=0.2)

    def update(self, data: dict[str, Any], run: str = "full", family: str = "resnet", error: str = "training") -> None:
        curves = data["curves"]
        lo, hi = (math.log10(v) for v in self.ylim)
        gap = 0.055 * (hi - lo)  # about one line of text on this axis
        ends = _spread([math.log10(errs[-1]) for _, _, errs in curves], gap)
        for i, (line, label) in enumerate(zip(self.lines, self.labels)):
            if i >= len(curves):
                line.set_data([], [])
                label.set_text("")
                continue
            depth, epochs, errs = curves[i]
            color = depth_color(depth)
            line.set_data(epochs, errs)
            line.set_color(color)
            line.set_linestyle("--" if error == "training" else "-")
            label.set_position((epochs[-1] + 0.25, 10 ** ends[i]))
            label.set_text(f"{FAMILY_NAMES[family]}-{depth}: {errs[-1]:.2f} %")
            label.set_color(color)
        run_label = RUNS[run][0] if run in RUNS else run
        self.title.set_text(f"{run_label} · {FAMILY_NAMES[family]} nets · {error} error "
                            f"({'dashed' if error == 'training' else 'solid'})")
        self.verdict.set_text(data["verdict"])


def draw_degradation_explorer(run: str = "full", family: str = "resnet", error: str = "training") -> Figure:
    """The explorer's figure for one choice of controls (tests, headless runs)."""
    return DegradationExplorer().draw(run=run, family=family, error=error)


# ====================================================================== the live run
class LiveDegradationRun(RunPlot):
    """The degradation experiment in miniature, trained now: plain and ResNet at each depth, curves that grow.

    Left the plain nets, right the ResNets, on the lesson's error axis (%, log;
    chance marked), one colour per depth as in every figure of the lesson:
    training error of each epoch dashed (measured on the batches as they were
    trained), test error solid with dots. The nets train one after another
    (plain-8, ResNet-8, plain-20, ...: :func:`~resnet_tutorial.degradation.run_degradation`
    with the small run's recipe, scaled down); the line on top says which net
    trains, where it is and about how long is left. Stop ends the run where it
    is and keeps every finished epoch; a new run fades the earlier ones.
    After a run :attr:`table` holds its epochs (the columns of
    :func:`~resnet_tutorial.degradation.run_degradation`'s table except
    ``params``), also when it was stopped.
    """

    figsize = (11.0, 4.6)
    panels = (Panel("error (%, log scale)", title="plain networks", ylim=(None, 100.0), yscale="log",
                    legend="lower left"),
              Panel("error (%, log scale)", title="residual networks (ResNet)", ylim=(None, 100.0), yscale="log",
                    legend="lower left"))  # the bottom follows the data: a decade below the lowest error
    xlabel = "epoch"
    interval_s = TRAINING_FRAME_S
    x_start, x_pad = 0.8, 0.2  # epochs 1..n, the last markers whole

    def __init__(self) -> None:
        super().__init__()
        self.table = pd.DataFrame()

    def build(self, fig: Figure) -> None:
        super().build(fig)
        for ax in self.axes:
            _error_axis(ax, *ERROR_YLIM, label=False)  # named in the legend: the curves start near it
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.84, wspace=0.2)

    def train(self, depths: Sequence[int] = (8, 20, 56), epochs: int = 4, per_class: int = 200,
              test_per_class: int = 100, batch_size: int = 64, seed: int = 0) -> None:
        """Train plain and ResNet at every depth (6n+2) for ``epochs`` on ``10 * per_class`` images."""
        if epochs < 1 or per_class < 1 or test_per_class < 1 or batch_size < 1:
            raise ValueError(f"epochs, per_class, test_per_class and batch_size must be >= 1, got {epochs}, "
                             f"{per_class}, {test_per_class}, {batch_size}")
        depths = sorted(set(check_depths(depths)))
        self.start(f"{10 * per_class:,} images, {epochs} epoch(s), depths {', '.join(map(str, depths))}", epochs)
        self.note(f"{self.label}: loading the images")
        self.flush()
        for depth in depths:
            for kind in KINDS:
                for part in ("train", "test"):
                    self._color_of[f"{FAMILY_NAMES[kind]}-{depth}: {part}"] = depth_color(depth)
        per_epoch = -(-10 * per_class // batch_size)
        work = {f"{k}{d}": d * epochs * per_epoch for d in depths for k in KINDS}  # cost ~ depth × steps
        done = {"work": 0.0}
        rows: list[dict[str, Any]] = []
        self.table = pd.DataFrame(rows)

        def on_step(model: str, info: dict) -> None:
            x = info["epoch"] - 1 + info["batch"] / per_epoch
            self.check_stop(x)
            done["work"] += work[model] / (epochs * per_epoch)
            left = self.seconds_left(done["work"], sum(work.values()))
            self.note(f"{self.label}: {_pretty(model)} epoch {info['epoch']}, step {info['batch']} of "
                      f"{per_epoch}; about {left:.0f} s left")
            self.tick()

        def on_epoch_end(model: str, row: dict) -> None:
            kind, depth = model.rstrip("0123456789"), int(model.lstrip("abcdefghijklmnopqrstuvwxyz"))
            name, panel = _pretty(model), KINDS.index(kind)
            rows.append({"kind": kind, "depth": depth, "model": model, **row, "train_error": 1 - row["train_acc"],
                         "test_error": 1 - row["test_acc"]})
            self.table = pd.DataFrame(rows)
            # a finished epoch goes on the plot whole, Stop or not (the next step's check ends the run)
            self.add(f"{name}: train", row["epoch"], 100 * (1 - row["train_acc"]), panel=panel, style="--", check=False)
            self.add(f"{name}: test", row["epoch"], 100 * (1 - row["test_acc"]), panel=panel, marker="o", check=False)
            self.flush()

        run_degradation(depths, epochs=epochs, per_class=per_class, test_per_class=test_per_class,
                        batch_size=batch_size, seed=seed, progress=False, on_step=on_step,
                        on_epoch_end=on_epoch_end)
        last = {k: last_epoch_errors(self.table, k) for k in KINDS}
        self.note(f"done in {self.elapsed_s():.0f} s. Training error, last epoch: " + "; ".join(
            f"{FAMILY_NAMES[k]} " + " → ".join(f"{100 * e:.0f} %" for e in last[k].values()) for k in KINDS)
            + f" (depths {', '.join(map(str, depths))})")

    def _draw_legends(self) -> None:
        """Per panel: one entry per depth (its colour), what dashed and solid mean, the faded runs."""
        for i, ax in enumerate(self.axes):
            if ax.get_legend() is not None:
                ax.get_legend().remove()
            names = [k[:-len(": test")] for k, s in self.series.items() if s.panel == i and k.endswith(": test")]
            handles = [Line2D([], [], color=self._color_of[f"{n}: test"], lw=2.2) for n in names]
            labels = list(names)
            handles += [Line2D([], [], color="0.4", ls="--"), Line2D([], [], color="0.4", marker="o", markersize=4),
                        Line2D([], [], color="0.35", lw=1, ls=":")]
            labels += ["training error", "test error", "chance (guessing): 90 %"]
            if any(s.panel == i for run in self.runs for s in run["series"].values()):
                handles.append(Line2D([], [], color="gray", alpha=self.faded_alpha + 0.2, lw=1.0))
                labels.append("earlier runs (faded)")
            ax.legend(handles, labels, fontsize=8, loc=self.panels[i].legend, ncol=2)


def _pretty(model: str) -> str:
    """``"resnet20"`` -> ``"ResNet-20"``, ``"plain8"`` -> ``"plain-8"``."""
    kind = model.rstrip("0123456789")
    return f"{FAMILY_NAMES[kind]}-{model[len(kind):]}"
