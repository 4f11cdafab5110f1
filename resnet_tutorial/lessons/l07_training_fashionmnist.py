"""Lesson 07 · Training on FashionMNIST: train a registry model on a subset, the training explorer,
and what one epoch costs for the posts' models.

The training loop itself is :func:`resnet_tutorial.train.fit`.
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd
import torch
import torch.nn as nn

from ..data import fast_loaders
from ..device import get_device
from ..models import create_model
from ..plots import plot_history
from ..train import fit, throughput

__all__ = ["train_model", "training_explorer", "throughput_table", "DEFAULT_THROUGHPUT_CONFIGS"]


def train_model(
    model: str | nn.Module = "resnet20",
    epochs: int = 1,
    per_class: int | None = 100,
    test_per_class: int | None = None,
    *,
    batch_size: int = 32,
    optimizer: str = "adamw",
    lr: float | None = 4e-3,
    augment: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    **fit_kw: Any,
) -> tuple[nn.Module, pd.DataFrame]:
    """Build (by registry name) and train a model on a FashionMNIST subset: ``(model, history)``.

    The recipe the command line uses (AdamW, lr 4e-3, batch 32, cosine decay),
    with the fast on-device loaders; the model is evaluated on ``test_per_class``
    images per class each epoch (``None``: all 10,000 test images).
    """
    device = get_device(device)
    name = model if isinstance(model, str) else type(model).__name__
    if isinstance(model, str):
        torch.manual_seed(seed)
        model = create_model(model, num_classes=10)
    in_channels = next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 1)
    train_loader, test_loader = fast_loaders(
        batch_size=batch_size, per_class=per_class, test_per_class=test_per_class, device=device,
        augment=augment, seed=seed, in_channels=in_channels,
    )
    history = fit(model, train_loader, test_loader, epochs=epochs, optimizer=optimizer, lr=lr,
                  device=device, seed=seed, progress=progress, **fit_kw)
    history.attrs["model"] = name
    return model, history


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
    amp: Any = False,
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
