"""Lesson 00 · Start here: the class-examples explorer."""

from __future__ import annotations

from matplotlib.figure import Figure

from ..data import CLASSES, load_tensors
from ..plots import plot_class_examples

__all__ = ["draw_class_examples"]


def draw_class_examples(class_name: str = "T-shirt/top", n: int = 16, seed: int = 0, train: bool = True) -> Figure:
    """Explorer for lesson 00: a grid of random FashionMNIST images of one class."""
    if class_name not in CLASSES:
        raise ValueError(f"draw_class_examples: class_name must be one of {list(CLASSES)}, got {class_name!r}")
    images, labels = load_tensors(train=train)
    return plot_class_examples(images, labels, CLASSES.index(class_name), CLASSES, n=n, seed=seed)
