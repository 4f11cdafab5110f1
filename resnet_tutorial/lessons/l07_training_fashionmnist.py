"""Lesson 07 · Training on FashionMNIST: train a registry model on a subset, the training explorer,
and what one epoch costs for the posts' models.

The training loop itself is :func:`resnet_tutorial.train.fit`; the recipes (the lesson's full-mode
``lesson-bf16`` / ``lesson-fp32``, the explorer's ``short``) are :mod:`resnet_tutorial.recipes`.
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd
import torch
import torch.nn as nn

from ..models import create_model
from ..plots import plot_history
from ..recipes import Recipe, fit_recipe
from ..recipes import get as get_recipe
from ..train import throughput

__all__ = ["train_model", "training_explorer", "throughput_table", "DEFAULT_THROUGHPUT_CONFIGS"]


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


def training_explorer(
    model: str = "resnet20", epochs: int = 2, per_class: int = 100, test_per_class: int = 100,
    progress: bool = False,
):
    """Explorer for lesson 07: train ``model`` on ``per_class`` images per class, plot the curves."""
    _, history = train_model(model, epochs, per_class, test_per_class, progress=progress)
    last = history.iloc[-1]
    return plot_history(
        {model: history},
        title=f"{model}: {10 * per_class} training images, {epochs} epoch(s): "
        f"test accuracy {100 * last['test_acc']:.1f} % on {10 * test_per_class} images "
        f"({history['seconds'].sum():.0f} s)",
    )


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
