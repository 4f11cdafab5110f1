"""Lesson 07 · Training on FashionMNIST: train a registry model on a subset, watch runs side by side,
read a run's numbers (overfitting, the plain twin's gap), and price large inputs before running them.

The training loop itself is :func:`resnet_tutorial.train.fit`; the recipes (the lesson's full mode
``lesson``, the tiny-budget ``short``) are :mod:`resnet_tutorial.recipes`. The sentences the lesson
shows about its own runs are built here from the run's numbers (never typed), so they read right in
FAST and full mode on every CPU.
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd
import torch
import torch.nn as nn
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..live import Panel, RunPlot
from ..models import create_model
from ..recipes import Recipe, fit_recipe
from ..recipes import get as get_recipe
from ..train import SCHEDULES, throughput

__all__ = [
    "train_model", "TrainingRun", "draw_training_run", "throughput_table", "DEFAULT_THROUGHPUT_CONFIGS",
    "describe_costs", "overfitting", "describe_overfitting", "describe_gap", "describe_class",
]

#: A training loss above this ends an explorer run as diverged (chance is ln 10 = 2.3; the axis stays readable).
DIVERGED_LOSS = 25.0
#: The networks the explorer offers: twins with and without shortcuts at two depths.
EXPLORER_MODELS = ("resnet20", "plain20", "resnet56", "plain56")


def train_model(
    model: str | nn.Module = "resnet20",
    epochs: int = 1,
    per_class: int | None = 100,
    test_per_class: int | None = None,
    *,
    recipe: str | Recipe = "short",
    device: str | torch.device | None = None,
    progress: bool = True,
    **overrides: Any,
) -> tuple[nn.Module, pd.DataFrame]:
    """Build (by registry name) and train a model on a FashionMNIST subset: ``(model, history)``.

    By ``recipe`` of :mod:`resnet_tutorial.recipes`, the tiny-budget ``"short"``
    by default (AdamW, lr 4e-3, batch 32, cosine decay), with the given budget;
    ``overrides`` replace further fields (``lr=1e-3``, ``batch_size=64``, ...).
    The model is evaluated on ``test_per_class`` images per class each epoch
    (``None``: all 10,000 test images).
    """
    base = get_recipe(recipe)
    if isinstance(model, str):
        name = model
        overrides["model"] = model  # recorded in the recipe
        torch.manual_seed(overrides.get("seed", base.seed))
        model = create_model(model, num_classes=10)
    else:
        name = type(model).__name__
    run = fit_recipe(base, model, device=device, progress=progress, epochs=epochs, per_class=per_class,
                     test_per_class=test_per_class, **overrides)
    run.history.attrs["model"] = name
    return model, run.history


# ====================================================================== the explorer
class TrainingRun(RunPlot):
    """Train one model by the lesson's recipe and watch it: loss per step, accuracy per epoch, the schedule.

    Left: the training loss after every step (label smoothing 0.1 keeps it
    above about 0.5 even for a perfect fit). Middle: accuracy after every
    epoch, on the test images (solid, dots) and on the training batches as
    they were trained (dashed). Right: the learning rate of every step, the
    schedule itself. One colour per run, the same in all three panels; each
    new run fades the earlier ones (up to four), so ``resnet20`` against
    ``plain20``, or one-cycle against a constant rate, sit on one plot.
    A learning rate that is too large ends its curve with "diverged at ..."
    (a loss that is NaN or above :data:`DIVERGED_LOSS`).
    """

    figsize = (15.0, 4.4)
    panels = (Panel("training loss (cross-entropy)", title="training loss, every step", ylim=(0.0, None)),
              Panel("accuracy (%)", title="accuracy after each epoch", ylim=(0.0, 100.0), legend="lower right"),
              Panel("learning rate", title="the schedule: learning rate of every step", ylim=(0.0, None)))
    xlabel = "epoch"

    def build(self, fig: Figure) -> None:
        super().build(fig)
        fig.subplots_adjust(left=0.05, right=0.985, bottom=0.14, top=0.82, wspace=0.25)

    def train(self, model: str = "resnet20", schedule: str = "onecycle", lr: float = 0.2, epochs: int = 3,
              per_class: int = 200, test_per_class: int = 100, recipe: str | Recipe = "lesson") -> None:
        """One run of ``recipe`` (the lesson's by default) with these settings changed."""
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if epochs < 1 or per_class < 1 or test_per_class < 1:
            raise ValueError(f"epochs, per_class and test_per_class must be >= 1, got {epochs}, {per_class}, "
                             f"{test_per_class}")
        name = f"{model}, {schedule}, lr {lr:g}"
        color = self._color_of.setdefault(name, self.colors[len({*self._color_of.values()}) % len(self.colors)])
        for part in ("test", "train", "lr"):
            self._color_of[f"{name}: {part}"] = color  # one colour per run in every panel
        self.start(f"{name}: {10 * per_class:,} images, {epochs} epoch(s)", epochs)
        self.note(f"{self.label}: loading the images, building the network")
        self.flush()  # the first run of a kernel reads the data set: a few seconds without new points
        base = get_recipe(recipe)
        steps: list[int] = []
        tested = [""]

        def on_step(info: dict) -> None:
            if not steps:
                steps.append(-(-10 * per_class // base.batch_size))  # batches per epoch (the last one partial)
            x = info["epoch"] - 1 + info["batch"] / steps[0]
            self.note(f"{self.label}: epoch {info['epoch']}, step {info['batch']} of {steps[0]}{tested[0]}")
            self.add(f"{name}: lr", x, info["lr"], panel=2)
            if not info["loss"] < DIVERGED_LOSS:  # NaN, inf or far above chance: the run is lost, end it
                self.add(name, x, float("nan"))
                raise FloatingPointError(f"training loss {info['loss']:.3g} at epoch {x:.2f}")
            self.add(name, x, info["loss"])

        def on_epoch_end(row: dict) -> None:
            self.add(f"{name}: train", row["epoch"], 100 * row["train_acc"], panel=1, style="--")
            self.add(f"{name}: test", row["epoch"], 100 * row["test_acc"], panel=1, marker="o")
            tested[0] = f"; after epoch {row['epoch']}: test accuracy {100 * row['test_acc']:.1f} %"
            self.note(f"{self.label}{tested[0]}")
            self.flush()

        try:
            run = fit_recipe(base, progress=False, on_step=on_step, on_epoch_end=on_epoch_end, model=model,
                             schedule=schedule, lr=lr, epochs=epochs, per_class=per_class,
                             test_per_class=test_per_class)
        except FloatingPointError:  # a learning rate too large: the curve says "diverged at ..."
            if name not in self.series or not self.series[name].diverged:
                self.add(name, self.series[name].xs[-1] if name in self.series else 0.0, float("nan"))
            self.note(f"{self.label}: diverged (the loss became NaN); try a smaller learning rate")
            return
        last = run.history.iloc[-1]
        self.note(f"{self.label}: test accuracy {100 * last['test_acc']:.1f} % on {10 * test_per_class:,} images "
                  f"({run.seconds:.0f} s)")

    def _draw_legends(self) -> None:
        """Every run named once, earlier ones too (left panel); the middle panel says which line measures what."""
        for ax in self.axes:
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        handles, labels = [], []
        for run in self.runs:  # earlier runs, faded, by name: "resnet20 ..." against "plain20 ..."
            for name, s in run["series"].items():
                if ":" not in name:
                    handles.append(Line2D([], [], color=s.line.get_color(), alpha=self.faded_alpha + 0.2, lw=1.0))
                    labels.append(f"{s.label} (earlier)")
        for s in self.series.values():
            if s.panel == 0:
                handles.append(s.line)
                labels.append(s.label)
        if handles:
            self.axes[0].legend(handles, labels, fontsize=8, loc="upper right")
        kinds = [Line2D([], [], color="gray", marker="o", markersize=4), Line2D([], [], color="gray", ls="--")]
        self.axes[1].legend(kinds, ["test images", "training batches"], fontsize=8, loc="lower right")


def draw_training_run(model: str = "resnet20", schedule: str = "onecycle", lr: float = 0.2, epochs: int = 3,
                      per_class: int = 200, test_per_class: int = 100) -> Figure:
    """:class:`TrainingRun` trained to the end (tests and headless runs): the figure."""
    return TrainingRun().draw(model=model, schedule=schedule, lr=lr, epochs=epochs, per_class=per_class,
                              test_per_class=test_per_class)


# ====================================================================== what a run says
def overfitting(history: pd.DataFrame) -> dict[str, float]:
    """The signs of overfitting in a :func:`~resnet_tutorial.train.fit` history.

    ``train_acc`` / ``test_acc``: the last epoch's; ``gap``: their difference
    (points of accuracy as a fraction); ``best_epoch``: the epoch of the lowest
    test loss; ``loss_rise``: how far the last test loss is above that lowest
    one (0 when the last epoch is the best).
    """
    missing = {"epoch", "train_acc", "test_acc", "test_loss"} - set(history.columns)
    if missing or history.empty:
        raise ValueError(f"need a fit history with test results (columns {sorted(missing)} missing or no rows)")
    last = history.iloc[-1]
    best = history.loc[history["test_loss"].idxmin()]
    return {"train_acc": float(last["train_acc"]), "test_acc": float(last["test_acc"]),
            "gap": float(last["train_acc"] - last["test_acc"]), "best_epoch": int(best["epoch"]),
            "loss_rise": float(last["test_loss"] - best["test_loss"])}


def describe_overfitting(history: pd.DataFrame) -> str:
    """One paragraph (markdown) on this run's train-test gap and whether its test loss rose."""
    o = overfitting(history)
    epochs = int(history["epoch"].iloc[-1])
    text = (f"In the last epoch the network classified **{o['train_acc']:.1%}** of its training batches correctly "
            f"and **{o['test_acc']:.1%}** of the test images: a gap of {100 * o['gap']:.1f} points. ")
    if o["gap"] > 0.02:
        text += "It fits the images it trains on better than new ones: the first sign of **overfitting**. "
    else:
        text += "Training and test accuracy are close: this short run has not started to memorize. "
    if o["loss_rise"] > 0.01 and o["best_epoch"] < epochs:
        text += (f"The test loss was lowest after epoch {o['best_epoch']} and rose by {o['loss_rise']:.3f} since: "
                 "the network grows more confident on test images it gets wrong, even where accuracy still holds.")
    else:
        text += (f"The test loss still fell in the last epoch (lowest after epoch {o['best_epoch']} of {epochs}): "
                 "longer training on the same images is where it would start to rise.")
    return text


def describe_gap(res: pd.DataFrame, plain: pd.DataFrame, names: tuple[str, str] = ("ResNet-20", "plain-20")) -> str:
    """Markdown comparing the final training error of a ResNet and its plain twin (the degradation sign)."""
    r_err, p_err = 1 - float(res["train_acc"].iloc[-1]), 1 - float(plain["train_acc"].iloc[-1])
    r_test, p_test = float(res["test_acc"].iloc[-1]), float(plain["test_acc"].iloc[-1])
    text = (f"Final **training** error: {names[0]} **{r_err:.1%}**, {names[1]} **{p_err:.1%}** "
            f"(final training loss {res['train_loss'].iloc[-1]:.3f} against {plain['train_loss'].iloc[-1]:.3f}); "
            f"test accuracy {r_test:.1%} against {p_test:.1%}. ")
    if p_err > r_err:
        text += ("The plain net fits its own training images worse, with the same layers and the same recipe. "
                 "Overfitting cannot explain that (it would make the training error *lower*): without shortcuts "
                 "the same layers are harder to *optimize*. That difficulty is what lies behind **degradation** "
                 "(a deeper plain net training worse than a shallower one), which lesson 08 measures from 20 to "
                 "56 layers.")
    else:
        text += ("Here the plain net fits its training images as well as the ResNet: at 20 layers, with BatchNorm "
                 "and this short budget, the gap is within what one seed varies. Lesson 08 goes to 56 layers, "
                 "where it is not.")
    return text


def describe_class(per_class_acc: pd.DataFrame, name: str = "Shirt") -> str:
    """Markdown: one class's accuracy against the best and the overall mean (from ``metrics.per_class_accuracy``)."""
    table = per_class_acc.set_index("class") if "class" in per_class_acc.columns else per_class_acc
    if name not in table.index or "accuracy" not in table.columns:
        raise ValueError(f"need a per-class table with an 'accuracy' column and a class {name!r}; "
                         f"classes: {list(table.index)}")
    acc = table["accuracy"]
    best = acc.idxmax()
    rank = int((acc < acc[name]).sum()) + 1
    return (f"*{name}* is right on **{acc[name]:.1%}** of its test images (rank {rank} of {len(acc)} from the "
            f"bottom); the best class, *{best}*, on {acc[best]:.1%}; the mean over the classes is {acc.mean():.1%}.")


# ====================================================================== what large inputs cost
DEFAULT_THROUGHPUT_CONFIGS: tuple[tuple[str, int], ...] = (
    ("resnet20", 28),
    ("post_fashion_resnet18", 96),
    ("post_fashion_resnet18", 224),
)


def throughput_table(
    configs: Iterable[tuple[str, int]] = DEFAULT_THROUGHPUT_CONFIGS,
    batch_size: int = 32,
    steps: int = 2,
    device: str | torch.device | None = "cpu",
    channels_last: bool = False,
    amp: Any = "off",
    train_images: int = 60_000,
) -> pd.DataFrame:
    """Training speed of ``(model name, image side)`` pairs and what one epoch would cost.

    Columns: ``model``, ``input`` (side in pixels), ``params``, ``images_per_s``,
    ``epoch_minutes`` (``train_images`` images at that speed), ``relative``
    (cost of one image relative to the first row).
    """
    rows = []
    for name, side in configs:
        torch.manual_seed(0)
        model = create_model(name, num_classes=10)
        ch = next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 1)
        rate = throughput(model, (ch, side, side), batch_size, steps=steps, device=device,
                          channels_last=channels_last, amp=amp)
        rows.append({"model": name, "input": side, "params": sum(p.numel() for p in model.parameters()),
                     "images_per_s": rate, "epoch_minutes": train_images / rate / 60})
    table = pd.DataFrame(rows)
    table["relative"] = table["images_per_s"].iloc[0] / table["images_per_s"]
    return table


def _minutes(m: float) -> str:
    return f"{60 * m:.0f} s" if m < 1.5 else (f"{m:.0f} min" if m < 90 else f"{m / 60:.1f} h")


def describe_costs(table: pd.DataFrame) -> str:
    """Markdown read from :func:`throughput_table`: speed, one epoch's time and relative cost, row by row."""
    missing = {"model", "input", "params", "images_per_s", "epoch_minutes", "relative"} - set(table.columns)
    if missing or len(table) < 2:
        raise ValueError(f"need a throughput_table with at least two rows (columns {sorted(missing)} missing)")
    first = table.iloc[0]
    parts = [f"{r.model} at {r.input}×{r.input}: {r.images_per_s:,.0f} images/s, one epoch {_minutes(r.epoch_minutes)}, "
             f"**{r.relative:.1f}×** the cost per image" for r in table.iloc[1:].itertuples()]
    last = table.iloc[-1]
    return (f"Measured just now: {first.model} at {first.input}×{first.input} trains {first.images_per_s:,.0f} "
            f"images/s, one epoch of 60,000 images in {_minutes(first.epoch_minutes)}. " + "; ".join(parts) + ". "
            f"The large network has {last.params / first.params:.0f}× the parameters, and the upscaled pixels "
            "carry no new information.")
