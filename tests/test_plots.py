"""Plots: each returns a Figure with labeled axes, draws exactly the data it was given, runs on Agg."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from resnet_tutorial import plots as P  # noqa: E402
from resnet_tutorial.lessons import l00_start_here as L00  # noqa: E402
from resnet_tutorial.data import CLASSES, load_tensors  # noqa: E402
from resnet_tutorial.lessons import l01_vanishing_exploding_gradients as L01  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labeled(fig: Figure) -> None:
    assert isinstance(fig, Figure)
    for ax in fig.axes:
        if ax.get_visible() and ax.axison and ax.get_label() != "<colorbar>":
            assert ax.get_xlabel() and ax.get_ylabel(), ax


def _history(offset: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "epoch": [1, 2, 3],
            "train_loss": [1.0 + offset, 0.6, 0.4],
            "train_acc": [0.6, 0.8, 0.9],
            "test_loss": [1.1, 0.7, 0.6],
            "test_acc": [0.55, 0.75, 0.8],
            "lr": [0.1, 0.05, 0.01],
            "seconds": [1.0, 1.0, 1.0],
        }
    )


def test_plot_history_train_dashed_test_solid_and_data() -> None:
    h = _history()
    fig = P.plot_history(h)
    _labeled(fig)
    loss_ax, acc_ax = fig.axes
    lines = {ln.get_label(): ln for ln in loss_ax.get_lines()}
    assert lines["train"].get_linestyle() == "--" and lines["test"].get_linestyle() == "-"
    assert np.allclose(lines["train"].get_ydata(), h["train_loss"])
    assert np.allclose(lines["test"].get_xdata(), h["epoch"])
    assert "fraction" in acc_ax.get_ylabel()


def test_plot_history_overlays_runs_and_rejects_unknown_metric() -> None:
    fig = P.plot_history({"plain": _history(), "resnet": _history(0.5)}, metrics=("loss",))
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert labels == ["plain train", "plain test", "resnet train", "resnet test"]
    assert fig.axes[0].get_lines()[2].get_ydata()[0] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="metric"):
        P.plot_history(_history(), metrics=("f1",))
    with pytest.raises(ValueError, match="DataFrame"):
        P.plot_history([1, 2, 3])


def test_plot_grad_norms_log_scale_and_overlay() -> None:
    a = pd.DataFrame({"index": [0, 1, 2], "layer": list("abc"), "grad_norm": [1e-6, 1e-3, 1.0]})
    b = a.assign(grad_norm=[0.5, 0.6, 0.7])
    fig = P.plot_grad_norms({"plain": a, "residual": b})
    _labeled(fig)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    ys = [ln.get_ydata() for ln in ax.get_lines()]
    assert np.allclose(ys[0], a["grad_norm"]) and np.allclose(ys[1], b["grad_norm"])
    assert np.allclose(ax.get_lines()[0].get_xdata(), [0, 1, 2])
    assert P.plot_grad_norms(a, logy=False).axes[0].get_yscale() == "linear"
    with pytest.raises(ValueError, match="grad_norm"):
        P.plot_grad_norms(pd.DataFrame({"x": [1]}))


def test_plot_activation_histograms_counts_match() -> None:
    rng = np.random.default_rng(0)
    samples = [rng.normal(size=300), rng.uniform(size=200)]
    stats = pd.DataFrame({"layer": ["relu1", "sig2"], "samples": samples})
    fig = P.plot_activation_histograms(stats, bins=10)
    _labeled(fig)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
    for ax, s in zip(visible, samples):
        heights = [p.get_height() for p in ax.patches]
        assert sum(heights) == len(s)
        assert np.allclose(heights, np.histogram(s, bins=10)[0])
    fig2 = P.plot_activation_histograms({"a": torch.randn(50)})
    assert sum(p.get_height() for p in fig2.axes[0].patches) == 50
    with pytest.raises(ValueError, match="samples"):
        P.plot_activation_histograms(pd.DataFrame({"layer": ["x"]}))


def test_plot_confusion_matrix_normalizes_rows() -> None:
    cm = np.array([[8, 2], [1, 9]])
    fig = P.plot_confusion_matrix(cm, ["cat", "dog"])
    _labeled(fig)
    mesh = fig.axes[0].collections[0]
    assert np.allclose(np.asarray(mesh.get_array()).reshape(2, 2), [[0.8, 0.2], [0.1, 0.9]])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["cat", "dog"]
    raw = P.plot_confusion_matrix(torch.tensor(cm), ["cat", "dog"], normalize=False)
    assert np.allclose(np.asarray(raw.axes[0].collections[0].get_array()).reshape(2, 2), cm)
    with pytest.raises(ValueError, match="square"):
        P.plot_confusion_matrix(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class names"):
        P.plot_confusion_matrix(cm, ["a", "b", "c"])


def test_plot_image_grid_unnormalizes_and_marks_mistakes() -> None:
    mean, std = 0.5, 0.25
    pixels = torch.rand(5, 1, 4, 4)
    images = (pixels - mean) / std
    fig = P.plot_image_grid(images, labels=[0, 1, 2, 0, 1], preds=[0, 2, 2, 0, 1], class_names=["a", "b", "c"], ncols=3, mean=mean, std=std)
    axes = fig.axes
    assert len(axes) == 6  # 2 rows × 3 columns, the last one empty
    shown = axes[0].get_images()[0].get_array()
    assert np.allclose(shown, pixels[0, 0].numpy(), atol=1e-6)
    assert axes[1].title.get_color() == "red" and "true: b" in axes[1].get_title()
    assert axes[0].title.get_color() == "green" and axes[0].get_title() == "a"
    assert not axes[5].get_images()
    plain = P.plot_image_grid(torch.randint(0, 256, (3, 4, 4), dtype=torch.uint8), labels=[1, 2, 3])
    assert plain.axes[0].get_title() == "1"
    with pytest.raises(ValueError, match="labels"):
        P.plot_image_grid(images, labels=[0, 1])
    with pytest.raises(ValueError, match="shape"):
        P.plot_image_grid(torch.rand(4, 4))


def test_plot_update_ratios_reference_line_and_data() -> None:
    df = pd.DataFrame(
        {
            "step": [1, 2, 3, 1, 2, 3],
            "index": [0, 0, 0, 1, 1, 1],
            "layer": ["a"] * 3 + ["b"] * 3,
            "log10_ratio": [-5.0, -4.5, -4.0, -3.0, -2.9, -2.8],
        }
    )
    fig = P.plot_update_ratios(df)
    _labeled(fig)
    lines = fig.axes[0].get_lines()
    assert np.allclose(lines[0].get_ydata(), [-5.0, -4.5, -4.0])
    assert np.allclose(lines[1].get_xdata(), [1, 2, 3])
    ref = lines[-1]
    assert np.allclose(ref.get_ydata(), [-3, -3]) and ref.get_linestyle() == "--"


def test_plot_first_layer_grad_vs_depth_mean_over_seeds() -> None:
    df = pd.DataFrame(
        {
            "depth": [2, 2, 8, 8] * 2,
            "seed": [0, 1, 0, 1] * 2,
            "variant": ["plain"] * 4 + ["residual"] * 4,
            "first_grad_norm": [1e-1, 3e-1, 1e-8, 3e-8, 1.0, 1.0, 2.0, 2.0],
        }
    )
    fig = L01.plot_first_layer_grad_vs_depth(df)
    _labeled(fig)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    plain, res = ax.get_lines()
    assert plain.get_label() == "plain"
    assert np.allclose(plain.get_ydata(), [2e-1, 2e-8]) and np.allclose(res.get_xdata(), [2, 8])


def test_plot_layer_stats_in_percent() -> None:
    stats = pd.DataFrame({"index": [0, 1], "frac_zero": [0.25, 0.5]})
    fig = P.plot_layer_stats(stats, ["frac_zero"])
    _labeled(fig)
    assert np.allclose(fig.axes[0].get_lines()[0].get_ydata(), [25, 50])


def test_plot_step_losses_one_point_per_step_and_chance_line() -> None:
    df = pd.DataFrame({"step": [1, 1, 2, 2, 3, 3], "index": [0, 1] * 3, "loss": [2.3, 2.3, 2.0, 2.0, 1.5, 1.5]})
    fig = P.plot_step_losses({"run": df}, chance_level=2.302585)
    _labeled(fig)
    line, chance = fig.axes[0].get_lines()
    assert np.allclose(line.get_xdata(), [1, 2, 3]) and np.allclose(line.get_ydata(), [2.3, 2.0, 1.5])
    assert np.allclose(chance.get_ydata(), [2.302585, 2.302585])


def test_plot_class_examples_only_that_class() -> None:
    images = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 1, 2, 2) / 10
    labels = torch.tensor([0, 1, 0, 1, 0, 2])
    fig = P.plot_class_examples(images, labels, 0, ["a", "b", "c"], n=5, seed=1)
    shown = [ax for ax in fig.axes if ax.get_images()]
    assert len(shown) == 3  # only three images of class 0 exist
    assert {ax.get_title() for ax in shown} == {"a"}
    values = sorted(round(float(ax.get_images()[0].get_array()[0, 0]), 3) for ax in shown)
    assert values == [0.0, 0.2, 0.4]  # images 0, 2, 4
    with pytest.raises(ValueError, match="no image"):
        P.plot_class_examples(images, labels, 7)


def test_draw_class_examples_changes_with_the_class() -> None:
    a = L00.draw_class_examples("Sneaker", n=4)
    b = L00.draw_class_examples("Bag", n=4, seed=1)
    assert [ax.get_title() for ax in a.axes if ax.get_visible()] == ["Sneaker"] * 4  # n=4 cells shown, the rest hidden
    assert [ax.get_title() for ax in b.axes if ax.get_visible()] == ["Bag"] * 4
    assert not np.allclose(a.axes[0].get_images()[0].get_array(), b.axes[0].get_images()[0].get_array())
    # the pixels shown are the dataset's own images of that class
    images, labels = load_tensors(train=True)
    sneakers = images[labels == CLASSES.index("Sneaker")].numpy()
    shown = np.asarray(a.axes[0].get_images()[0].get_array())
    assert any(np.array_equal(shown, s) for s in sneakers)
    with pytest.raises(ValueError, match="class_name"):
        L00.draw_class_examples("Hat")
    with pytest.raises(ValueError, match="n must be between"):
        L00.draw_class_examples("Bag", n=33)


def test_class_examples_explorer_moves_redraw_only_the_images() -> None:
    view = L00.ClassExamplesExplorer()
    first = view.frame(class_name="Shirt", n=16, seed=0)
    second = view.frame(class_name="Shirt", n=16, seed=1)
    assert first != second  # another seed, other images
    assert sum(ax.get_visible() for ax in view.fig.axes) == 16


def test_plot_class_balance_bar_heights() -> None:
    fig = P.plot_class_balance({"train": [6, 6, 6], "test": torch.tensor([1, 2, 3])}, ["a", "b", "c"])
    _labeled(fig)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [6, 6, 6, 1, 2, 3]
