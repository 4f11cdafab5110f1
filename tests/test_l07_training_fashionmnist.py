"""Lesson 07's module: the training explorer (a RunPlot) and the sentences rendered from a run's numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from resnet_tutorial.lessons import l07_training_fashionmnist as L07


def _history(train_acc, test_acc, test_loss, train_loss=None) -> pd.DataFrame:
    n = len(train_acc)
    return pd.DataFrame({"epoch": np.arange(1, n + 1), "train_loss": train_loss or [1.0] * n,
                         "train_acc": train_acc, "test_loss": test_loss, "test_acc": test_acc})


# ---------------------------------------------------------------- the explorer
@pytest.fixture(scope="module")
def two_runs() -> L07.TrainingRun:
    torch.manual_seed(0)
    view = L07.TrainingRun()
    view.draw(model="resnet20", epochs=2, per_class=30, test_per_class=5)  # 300 images: 3 batches of <= 128
    view.draw(model="plain20", schedule="none", lr=0.05, epochs=1, per_class=10, test_per_class=5)
    return view


def test_a_run_records_every_step_and_every_epoch(two_runs):
    # the current run: plain20, 100 images at batch 128 = 1 step per epoch, 1 epoch
    s = two_runs.series
    name = "plain20, none, lr 0.05"
    assert set(s) == {name, f"{name}: lr", f"{name}: train", f"{name}: test"}
    assert s[name].xs == [1.0] and len(s[f"{name}: test"].xs) == 1
    assert s[f"{name}: lr"].ys == [pytest.approx(0.05)]  # schedule "none": the constant rate
    assert 0 <= s[f"{name}: test"].ys[0] <= 100


def test_earlier_runs_stay_faded_with_their_schedule(two_runs):
    assert len(two_runs.runs) == 1
    earlier = two_runs.runs[0]["series"]
    name = "resnet20, onecycle, lr 0.2"
    lr = earlier[f"{name}: lr"].ys
    # one-cycle over 6 steps: it starts at max_lr / 25 (PyTorch's div_factor), peaks at 0.2, ends near 0
    assert len(lr) == 6 and lr[0] == pytest.approx(0.2 / 25)
    assert max(lr) <= 0.2 + 1e-9 and max(lr) > 0.1 and lr[-1] < lr[0]
    assert earlier[name].xs == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    assert earlier[name].line.get_alpha() == pytest.approx(two_runs.faded_alpha)
    # the left legend names both runs, the earlier one marked as such
    labels = [t.get_text() for t in two_runs.axes[0].get_legend().get_texts()]
    assert labels == [f"{name} (earlier)", "plain20, none, lr 0.05"]


def test_one_colour_per_run_in_every_panel(two_runs):
    current = {s.line.get_color() for s in two_runs.series.values()}
    earlier = {s.line.get_color() for s in two_runs.runs[0]["series"].values()}
    assert len(current) == 1 and len(earlier) == 1 and current != earlier


def test_a_too_large_learning_rate_is_marked_diverged():
    view = L07.TrainingRun()
    view.draw(model="plain20", schedule="none", lr=1e6, epochs=1, per_class=20, test_per_class=5)
    loss = view.series["plain20, none, lr 1e+06"]
    assert loss.diverged and "diverged" in loss.label
    assert "diverged" in view._status.get_text()


def test_the_explorer_rejects_bad_settings():
    with pytest.raises(ValueError, match="schedule"):
        L07.TrainingRun().draw(schedule="step")
    with pytest.raises(ValueError, match="epochs"):
        L07.TrainingRun().draw(epochs=0)


# ---------------------------------------------------------------- what a run says
def test_overfitting_finds_the_gap_and_the_rising_test_loss():
    h = _history([0.8, 0.9, 0.97], [0.85, 0.9, 0.9], [0.40, 0.30, 0.36])
    o = L07.overfitting(h)
    assert o["gap"] == pytest.approx(0.07) and o["best_epoch"] == 2 and o["loss_rise"] == pytest.approx(0.06)
    text = L07.describe_overfitting(h)
    assert "97.0%" in text and "90.0%" in text and "7.0 points" in text
    assert "overfitting" in text and "lowest after epoch 2" in text and "rose by 0.060" in text


def test_no_overfitting_is_said_when_there_is_none():
    text = L07.describe_overfitting(_history([0.6, 0.7], [0.65, 0.71], [0.9, 0.8]))
    assert "not started to memorize" in text and "still fell" in text and "rose" not in text
    with pytest.raises(ValueError, match="test_loss"):
        L07.overfitting(pd.DataFrame({"epoch": [1], "train_acc": [0.5], "test_acc": [0.5]}))


def test_describe_gap_names_degradation_only_when_the_plain_net_fits_worse():
    res = _history([0.9, 0.98], [0.9, 0.91], [0.3, 0.3], train_loss=[0.6, 0.55])
    plain = _history([0.85, 0.96], [0.88, 0.9], [0.3, 0.3], train_loss=[0.7, 0.6])
    text = L07.describe_gap(res, plain)
    assert "2.0%" in text and "4.0%" in text and "degradation" in text and "0.550" in text
    assert "degradation" not in L07.describe_gap(plain, res).split("Lesson 08")[0]


def test_describe_class_reads_the_per_class_table():
    from resnet_tutorial import metrics

    cm = torch.tensor([[9, 1, 0], [0, 5, 5], [0, 0, 10]])
    table = metrics.per_class_accuracy(cm, ["A", "Shirt", "C"])
    text = L07.describe_class(table, "Shirt")
    assert "**50.0%**" in text and "rank 1 of 3" in text and "*C*, on 100.0%" in text
    assert f"{(0.9 + 0.5 + 1.0) / 3:.1%}" in text
    with pytest.raises(ValueError, match="Dress"):
        L07.describe_class(table, "Dress")


def test_describe_costs_is_rendered_from_the_table():
    table = pd.DataFrame({"model": ["resnet20", "big", "big"], "input": [28, 96, 224],
                          "params": [270_000, 11_000_000, 11_000_000], "images_per_s": [500.0, 100.0, 20.0]})
    table["epoch_minutes"] = 60_000 / table["images_per_s"] / 60
    table["relative"] = 500.0 / table["images_per_s"]
    text = L07.describe_costs(table)
    # 60,000 / 500 = 120 s = 2 min; / 20 = 3000 s = 50 min; 500 / 20 = 25x; 11 M / 0.27 M = 41x
    assert "500 images/s" in text and "2 min" in text and "50 min" in text
    assert "**25.0×**" in text and "**5.0×**" in text and "41×" in text
    with pytest.raises(ValueError, match="two rows"):
        L07.describe_costs(table.iloc[:1])
    assert math.isclose(table["epoch_minutes"].iloc[0], 2.0)
