"""Lesson 00 · Start here: a trained ResNet at work, and the class-examples explorer.

The lesson opens with a result rather than a syllabus: the ResNet-20 trained by
the full degradation run (lesson 08; its weights ship in ``results/degradation_full``)
classifies a few test images, right and wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from .. import results
from ..checkpoints import load_model
from ..data import CLASSES, load_tensors, normalize
from ..live import LiveFigure
from ..plots import plot_image_grid

__all__ = ["ClassExamplesExplorer", "cached_errors", "draw_class_examples", "draw_predictions", "predict", "trained_net"]


def trained_net(name: str = "resnet20") -> nn.Module:
    """One of the nets the full degradation run trained (12 epochs on all of FashionMNIST), in eval mode.

    ``name`` is ``"resnet20"``, ``"plain56"``, ... (a file ``<name>.pt`` of the cached
    ``degradation_full`` folder, found by :func:`resnet_tutorial.results.locate`).
    """
    folder = results.locate("degradation_full")
    path = Path(folder) / f"{name}.pt"
    if not path.is_file():
        known = sorted(p.stem for p in Path(folder).glob("*.pt"))
        raise FileNotFoundError(f"trained_net: no {path.name} in {folder}; choose one of {known}")
    return load_model(path)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted class of every image: uint8 pixels ``[N, 28, 28]`` or ``[N, 1, 28, 28]`` in, ``[N]`` int64 out.

    The images are normalized as in training (:func:`resnet_tutorial.data.normalize`)
    and sent through the model in batches, in eval mode (BatchNorm uses its running statistics).
    """
    if images.dtype != torch.uint8:
        raise ValueError(f"predict expects uint8 pixels 0..255 (as load_tensors gives), got {images.dtype}")
    if batch_size < 1:
        raise ValueError(f"predict: batch_size must be >= 1, got {batch_size}")
    model.eval()
    device = next(model.parameters()).device
    out = [model(normalize(images[i:i + batch_size]).to(device)).argmax(1).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def draw_predictions(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, n: int = 8, seed: int = 0,
                     mistakes: bool = False, preds: torch.Tensor | None = None) -> Figure:
    """A row of ``n`` images with the model's prediction above each (green: right; red: wrong, with the truth).

    The images are drawn at random with ``seed`` (only those are sent through the model);
    with ``mistakes=True`` only from those the model gets wrong, to see *which* classes it
    confuses: that needs every image's prediction, so pass ``preds`` (from :func:`predict`)
    if you have them already.
    """
    if n < 1:
        raise ValueError(f"draw_predictions: n must be >= 1, got {n}")
    if len(images) != len(labels) or (preds is not None and len(preds) != len(labels)):
        raise ValueError(f"draw_predictions: {len(images)} images, {len(labels)} labels"
                         + ("" if preds is None else f", {len(preds)} predictions") + ": give one of each per image")
    if mistakes:
        preds = predict(model, images) if preds is None else preds
        pool = np.flatnonzero((preds != labels).numpy())
    else:
        pool = np.arange(len(images))
    if pool.size == 0:
        raise ValueError("draw_predictions: the model makes no mistake on these images; pass more images")
    pick = np.sort(np.random.default_rng(seed).choice(pool, size=min(n, pool.size), replace=False)).tolist()
    shown = predict(model, images[pick]) if preds is None else preds[pick]
    fig = plot_image_grid(images[pick], labels[pick], preds=shown, class_names=CLASSES, ncols=len(pick))
    right = int((shown == labels[pick]).sum())
    title = (f"{len(pick)} of its mistakes: prediction in red, the true class below it" if mistakes else
             f"{len(pick)} random test images: {right} right (green), {len(pick) - right} wrong (red, true class below)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def cached_errors() -> pd.DataFrame:
    """Final training and test error of every net of the full degradation run, one row per depth.

    Read from the run's JSON record (``degradation_full.json``), no training: columns
    ``plain train``, ``ResNet train``, ``plain test``, ``ResNet test`` (fractions, 0.06 = 6 %).
    """
    models = results.read_json(results.locate("degradation_full.json"))["models"]
    rows: dict[int, dict[str, float]] = {}
    for name, m in models.items():
        kind, depth = ("plain", name[5:]) if name.startswith("plain") else ("ResNet", name[6:])
        row = rows.setdefault(int(depth), {})
        row[f"{kind} train"], row[f"{kind} test"] = m["train_error_eval"], m["test_error"]
    cols = ["plain train", "ResNet train", "plain test", "ResNet test"]
    table = pd.DataFrame.from_dict(rows, orient="index").sort_index()
    return table.dropna()[cols].rename_axis("depth")


class ClassExamplesExplorer(LiveFigure):
    """Explorer for lesson 00: ``n`` random FashionMNIST images of one class, in a kept 4 × 8 grid.

    The grid of image artists is built once; a move only swaps their pixel data,
    hides the unused cells and rewrites the title (tens of milliseconds, where a
    rebuilt grid of up to 32 axes took about 0.3-0.6 s). The images of a class
    are looked up once and cached.
    """

    figsize = (12.0, 6.0)
    ncols, nrows = 8, 4

    def compute(self, class_name: str = "T-shirt/top", n: int = 16, seed: int = 0, train: bool = True) -> dict:
        if class_name not in CLASSES:
            raise ValueError(f"draw_class_examples: class_name must be one of {list(CLASSES)}, got {class_name!r}")
        if not 1 <= n <= self.ncols * self.nrows:
            raise ValueError(f"draw_class_examples: n must be between 1 and {self.ncols * self.nrows}, got {n}")
        images, labels = load_tensors(train=train)
        idx = np.flatnonzero(labels.numpy() == CLASSES.index(class_name))
        pick = np.random.default_rng(seed).choice(idx, size=min(n, idx.size), replace=False)
        return {"images": images[pick.tolist()].numpy(), "of": int(idx.size)}

    def build(self, fig: Figure) -> None:
        axes = fig.subplots(self.nrows, self.ncols)
        blank = np.zeros((28, 28))
        self.cells = []
        for ax in axes.ravel():
            image = ax.imshow(blank, cmap="gray_r", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            self.cells.append((ax, image))
        self.suptitle = fig.suptitle(" ", fontsize=12)
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.92, wspace=0.05, hspace=0.08)
        self.dynamic(*[image for _, image in self.cells], self.suptitle)

    def update(self, data: dict, class_name: str = "T-shirt/top", n: int = 16, seed: int = 0,
               train: bool = True) -> None:
        shown = data["images"]
        for k, (ax, image) in enumerate(self.cells):
            if k < len(shown):
                image.set_data(shown[k])
            ax.set_visible(k < len(shown))
            ax.set_title(class_name if k < len(shown) else "", fontsize=8)
        split = "training" if train else "test"
        self.suptitle.set_text(f"{len(shown)} random {split} images of class {CLASSES.index(class_name)}: "
                               f"{class_name} (of {data['of']:,})")


def draw_class_examples(class_name: str = "T-shirt/top", n: int = 16, seed: int = 0, train: bool = True) -> Figure:
    """The class-examples explorer's figure for one setting (tests and headless runs)."""
    return ClassExamplesExplorer().draw(class_name=class_name, n=n, seed=seed, train=train)