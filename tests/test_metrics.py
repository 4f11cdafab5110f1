"""metrics: confusion matrix, per-class accuracy, confused pairs and mistakes, on hand-counted examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from resnet_tutorial import metrics

# 10 predictions of a 3-class problem, counted by hand:
# true 0: predicted 0, 0, 1        -> row [2, 1, 0]
# true 1: predicted 1, 2, 2, 0     -> row [1, 1, 2]
# true 2: predicted 2, 2, 1        -> row [0, 1, 2]
TARGETS = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
PREDS = [0, 0, 1, 1, 2, 2, 0, 2, 2, 1]
CM = [[2, 1, 0], [1, 1, 2], [0, 1, 2]]


def test_confusion_matrix_counts_rows_true_columns_predicted():
    cm = metrics.confusion_matrix(torch.tensor(PREDS), torch.tensor(TARGETS), 3)
    assert cm.tolist() == CM and cm.dtype == torch.int64
    # lists, numpy arrays and 2-D inputs are flattened; a class nobody predicted gets a zero column
    cm4 = metrics.confusion_matrix(np.array(PREDS).reshape(2, 5), TARGETS, 4)
    assert cm4.tolist() == [row + [0] for row in CM] + [[0, 0, 0, 0]]
    assert metrics.confusion_matrix([], [], 2).tolist() == [[0, 0], [0, 0]]


def test_confusion_matrix_rejects_what_it_cannot_count():
    with pytest.raises(ValueError, match=r"^preds must be integer class indices, got dtype torch.float32 \(use logits.argmax\(1\)\)$"):
        metrics.confusion_matrix(torch.rand(4, 3), torch.zeros(4, dtype=torch.long), 3)
    with pytest.raises(ValueError, match=r"^targets must be integer class indices"):
        metrics.confusion_matrix([0, 1], [0.0, 1.0], 2)
    with pytest.raises(ValueError, match=r"^preds and targets differ in length: 3 vs 2$"):
        metrics.confusion_matrix([0, 1, 1], [0, 1], 2)
    with pytest.raises(ValueError, match=r"^preds has values outside 0\.\.2; is num_classes=3 right\?$"):
        metrics.confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match=r"^targets has values outside 0\.\.2"):
        metrics.confusion_matrix([0, 1], [-1, 1], 3)
    # the largest valid class is fine (an off-by-one in the range check would reject it)
    assert metrics.confusion_matrix([2], [2], 3)[2, 2] == 1
    assert metrics.confusion_matrix([0], [0], 3)[0, 0] == 1


def test_per_class_accuracy_by_hand():
    df = metrics.per_class_accuracy(torch.tensor(CM), ["cat", "dog", "emu"])
    assert list(df.columns) == ["class", "correct", "total", "accuracy"]
    assert df["class"].tolist() == ["cat", "dog", "emu"]
    assert df["correct"].tolist() == [2, 1, 2] and df["total"].tolist() == [3, 4, 3]
    assert df["accuracy"].tolist() == pytest.approx([2 / 3, 1 / 4, 2 / 3])
    unnamed = metrics.per_class_accuracy([[1, 0], [0, 0]])  # class 1 has no image: NaN, not 0
    assert unnamed["class"].tolist() == ["0", "1"]
    assert unnamed["accuracy"][0] == 1.0 and math.isnan(unnamed["accuracy"][1])
    with pytest.raises(ValueError, match=r"^2 class names for a 3-class confusion matrix$"):
        metrics.per_class_accuracy(torch.tensor(CM), ["a", "b"])


def test_most_confused_orders_by_count_and_breaks_ties_in_reading_order():
    df = metrics.most_confused(torch.tensor(CM), ["cat", "dog", "emu"], k=3)
    assert list(df.columns) == ["true", "predicted", "count", "share"]
    # off-diagonal counts: (dog->emu) 2, then the 1s in row-major order: (cat->dog), (dog->cat), (emu->dog)
    assert list(zip(df["true"], df["predicted"], df["count"])) == [("dog", "emu", 2), ("cat", "dog", 1), ("dog", "cat", 1)]
    assert df["share"].tolist() == pytest.approx([2 / 4, 1 / 3, 1 / 4])  # of the true class's images
    everything = metrics.most_confused(torch.tensor(CM))  # default k=5, names "0".."2"
    assert len(everything) == 4  # only 4 non-zero off-diagonal cells: zeros are never listed
    assert everything["true"].tolist() == ["1", "0", "1", "2"]
    assert metrics.most_confused(torch.eye(3, dtype=torch.long)).empty
    assert list(metrics.most_confused(torch.eye(3, dtype=torch.long)).columns) == ["true", "predicted", "count", "share"]
    assert len(metrics.most_confused(torch.tensor(CM), k=1)) == 1


def test_mistakes_filters_and_samples():
    wrong = [2, 4, 5, 6, 9]  # the indices where PREDS != TARGETS
    assert metrics.mistakes(PREDS, TARGETS).tolist() == wrong
    assert metrics.mistakes(PREDS, TARGETS, true_class=1).tolist() == [4, 5, 6]
    assert metrics.mistakes(PREDS, TARGETS, predicted_class=2).tolist() == [4, 5]
    assert metrics.mistakes(PREDS, TARGETS, true_class=1, predicted_class=0).tolist() == [6]
    assert metrics.mistakes(PREDS, TARGETS, true_class=0, predicted_class=0).tolist() == []  # correct ones never
    assert metrics.mistakes(PREDS, TARGETS, k=2).tolist() == [2, 4]  # the first k
    picked = metrics.mistakes(PREDS, TARGETS, k=3, seed=0)
    order = torch.randperm(5, generator=torch.Generator().manual_seed(0))
    assert picked.tolist() == sorted(torch.tensor(wrong)[order][:3].tolist())  # a seeded choice, sorted
    assert torch.equal(picked, metrics.mistakes(PREDS, TARGETS, k=3, seed=0))
    assert {tuple(metrics.mistakes(PREDS, TARGETS, k=3, seed=s).tolist()) for s in range(8)} != {tuple(picked.tolist())}
    assert metrics.mistakes(PREDS, TARGETS, k=10, seed=1).tolist() == wrong
    with pytest.raises(ValueError, match="preds must be integer"):
        metrics.mistakes(torch.rand(3), [0, 1, 2])


def test_most_confused_default_k_and_ties_on_a_large_matrix():
    cm = torch.ones(10, 10, dtype=torch.long)  # 90 tied off-diagonal cells
    df = metrics.most_confused(cm)
    assert len(df) == 5  # default k
    # ties keep reading order: (0->1), (0->2), ... as a stable sort gives
    assert list(zip(df["true"], df["predicted"])) == [("0", "1"), ("0", "2"), ("0", "3"), ("0", "4"), ("0", "5")]
    top = metrics.most_confused(cm, k=90)
    assert list(zip(top["true"].astype(int), top["predicted"].astype(int))) == [
        (i, j) for i in range(10) for j in range(10) if i != j]


def test_mistakes_names_the_bad_argument():
    with pytest.raises(ValueError, match=r"^targets must be integer class indices"):
        metrics.mistakes([0, 1], [0.5, 1.0])
