"""What a classifier gets wrong: confusion matrix, per-class accuracy, confused pairs, mistakes.

All functions take predicted and true class indices (1-D integer tensors, as
returned by :func:`resnet_tutorial.train.predict`) or a confusion matrix.
Convention: ``cm[i, j]`` counts images of true class ``i`` predicted as ``j``.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch


def _as_labels(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(x).reshape(-1)
    if t.is_floating_point() and t.numel():  # torch.as_tensor([]) is float32: an empty list is no mistake
        raise ValueError(f"{name} must be integer class indices, got dtype {t.dtype} (use logits.argmax(1))")
    return t.to(torch.int64).cpu()


def confusion_matrix(preds, targets, num_classes: int) -> torch.Tensor:
    """``int64 [num_classes, num_classes]``: row = true class, column = predicted class.

    Lessons: 07.
    """
    preds, targets = _as_labels(preds, "preds"), _as_labels(targets, "targets")
    if preds.shape != targets.shape:
        raise ValueError(f"preds and targets differ in length: {len(preds)} vs {len(targets)}")
    for name, t in (("preds", preds), ("targets", targets)):
        if len(t) and (int(t.min()) < 0 or int(t.max()) >= num_classes):
            raise ValueError(f"{name} has values outside 0..{num_classes - 1}; is num_classes={num_classes} right?")
    flat = torch.bincount(targets * num_classes + preds, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _names(cm: torch.Tensor, class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(len(cm))]
    if len(class_names) != len(cm):
        raise ValueError(f"{len(class_names)} class names for a {len(cm)}-class confusion matrix")
    return list(class_names)


def per_class_accuracy(cm: torch.Tensor, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per class: ``class``, ``correct``, ``total``, ``accuracy`` (0..1, NaN if no image).

    Lessons: 07.
    """
    cm = torch.as_tensor(cm)
    correct = cm.diagonal()
    total = cm.sum(1)
    acc = correct.double() / total.double()
    return pd.DataFrame(
        {"class": _names(cm, class_names), "correct": correct.tolist(), "total": total.tolist(),
         "accuracy": acc.tolist()}
    )


def most_confused(cm: torch.Tensor, class_names: Sequence[str] | None = None, k: int = 5) -> pd.DataFrame:
    """The ``k`` largest off-diagonal cells: ``true``, ``predicted``, ``count``, ``share`` of the true class.

    Lessons: 07.
    """
    cm = torch.as_tensor(cm)
    names = _names(cm, class_names)
    off = cm.clone()
    off.fill_diagonal_(0)
    counts, flat = torch.sort(off.reshape(-1), descending=True, stable=True)
    rows = []
    n = len(cm)
    for c, f in zip(counts.tolist(), flat.tolist()):
        if len(rows) == k or c == 0:
            break
        i, j = divmod(f, n)
        rows.append({"true": names[i], "predicted": names[j], "count": c, "share": c / int(cm[i].sum())})
    return pd.DataFrame(rows, columns=["true", "predicted", "count", "share"])


def mistakes(preds, targets, true_class: int | None = None, predicted_class: int | None = None,
             k: int | None = None, seed: int | None = None) -> torch.Tensor:
    """Indices of misclassified samples (optionally one true/predicted class), for a gallery.

    ``k`` keeps at most ``k`` of them: the first ones, or a seeded random choice with ``seed``.

    Lessons: 07.
    """
    preds, targets = _as_labels(preds, "preds"), _as_labels(targets, "targets")
    wrong = preds != targets
    if true_class is not None:
        wrong &= targets == true_class
    if predicted_class is not None:
        wrong &= preds == predicted_class
    idx = torch.nonzero(wrong).reshape(-1)
    if k is not None:
        if seed is not None:
            idx = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))]
            idx = torch.sort(idx[:k]).values
        else:
            idx = idx[:k]
    return idx
