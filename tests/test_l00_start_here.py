"""Lesson 00's demos: the trained ResNet-20 and its predictions, the cached degradation errors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from resnet_tutorial import results  # noqa: E402
from resnet_tutorial.data import CLASSES, load_tensors  # noqa: E402
from resnet_tutorial.lessons import l00_start_here as L00  # noqa: E402


class BrightestPixel(nn.Module):
    """Predicts the index of the brightest of the first ten pixels (normalization keeps the order)."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))  # predict() reads the device from a parameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :10] + 0 * self.dummy


def _images(classes: list[int]) -> torch.Tensor:
    x = torch.zeros(len(classes), 28, 28, dtype=torch.uint8)
    for i, k in enumerate(classes):
        x[i, 0, k] = 255
    return x


def test_predict_follows_the_model_in_any_batch_size() -> None:
    classes = [3, 0, 9, 9, 1, 7, 2]
    x = _images(classes)
    for batch_size in (1, 3, 100):
        assert L00.predict(BrightestPixel(), x, batch_size=batch_size).tolist() == classes
    with pytest.raises(ValueError, match="uint8"):
        L00.predict(BrightestPixel(), x.float())


def test_draw_predictions_colours_right_green_and_wrong_red() -> None:
    predicted = [0, 1, 2, 3, 4, 5]
    labels = torch.tensor([0, 1, 9, 3, 8, 5])  # two mistakes: images 2 and 4
    fig = L00.draw_predictions(BrightestPixel(), _images(predicted), labels, n=6)
    titles = [(ax.get_title(), mcolors.to_hex(ax.title.get_color())) for ax in fig.axes if ax.get_images()]
    assert titles == [
        (CLASSES[0], "#008000"), (CLASSES[1], "#008000"), (f"{CLASSES[2]}\n(true: {CLASSES[9]})", "#ff0000"),
        (CLASSES[3], "#008000"), (f"{CLASSES[4]}\n(true: {CLASSES[8]})", "#ff0000"), (CLASSES[5], "#008000")]
    only = L00.draw_predictions(BrightestPixel(), _images(predicted), labels, n=6, mistakes=True)
    assert sorted(ax.get_title() for ax in only.axes if ax.get_images()) == sorted([
        f"{CLASSES[2]}\n(true: {CLASSES[9]})", f"{CLASSES[4]}\n(true: {CLASSES[8]})"])
    given = L00.draw_predictions(BrightestPixel(), _images(predicted), labels, n=6, mistakes=True,
                                 preds=torch.tensor([9, 1, 2, 3, 4, 5]))  # the predictions passed are the ones shown
    assert sorted(ax.get_title() for ax in given.axes if ax.get_images()) == sorted([
        f"{CLASSES[9]}\n(true: {CLASSES[0]})", f"{CLASSES[2]}\n(true: {CLASSES[9]})", f"{CLASSES[4]}\n(true: {CLASSES[8]})"])
    with pytest.raises(ValueError, match="no mistake"):
        L00.draw_predictions(BrightestPixel(), _images(predicted), torch.tensor(predicted), mistakes=True)
    plt.close("all")


def test_the_shipped_resnet20_scores_what_its_training_run_recorded() -> None:
    """Accuracy on the whole test set matches the run's JSON record (same weights, same images)."""
    recorded = results.read_json(results.locate("degradation_full.json"))["models"]["resnet20"]["test_error"]
    images, labels = load_tensors(train=False)
    accuracy = float((L00.predict(L00.trained_net("resnet20"), images) == labels).float().mean())
    assert abs((1 - accuracy) - recorded) < 0.005  # the run evaluated in bf16, we in float32
    with pytest.raises(FileNotFoundError, match="resnet20"):
        L00.trained_net("resnet21")


def test_cached_errors_are_the_last_epoch_of_the_run() -> None:
    table = L00.cached_errors()
    log = pd.read_csv(results.locate("degradation_full.csv"))
    last = log.sort_values("epoch").groupby("model").last()
    for depth in table.index:
        assert table.loc[depth, "plain test"] == pytest.approx(last.loc[f"plain{depth}", "test_error"], abs=1e-6)
        assert table.loc[depth, "ResNet test"] == pytest.approx(last.loc[f"resnet{depth}", "test_error"], abs=1e-6)
    assert list(table.index) == sorted(table.index) and len(table) >= 2
