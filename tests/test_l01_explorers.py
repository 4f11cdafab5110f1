"""Lesson 01's explorers: the kept-figure gradient explorer and the live gradient heat map."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from resnet_tutorial.data import fashion_batch
from resnet_tutorial.diagnostics import activation_stats, grad_norms
from resnet_tutorial.lessons import l01_vanishing_exploding_gradients as L01
from resnet_tutorial.models import make_deep_net

X, Y = torch.randn(12, 1, 28, 28), torch.randint(0, 10, (12,))


@pytest.mark.parametrize("arch, activation, bn", [("mlp", "sigmoid", False), ("mlp", "relu", True),
                                                  ("cnn", "tanh", False), ("cnn", "relu", True)])
def test_one_pass_gives_what_grad_norms_and_activation_stats_give(arch: str, activation: str, bn: bool) -> None:
    data = L01.gradient_explorer_data(5, activation, "default", bn, False, arch, 0, inputs=X, targets=Y)
    torch.manual_seed(0)
    model = make_deep_net(arch, 5, activation=activation, init="default", bn=bn, shortcut=False).double().train()
    grads, stats = grad_norms(model, X, Y), activation_stats(model, X)
    assert np.allclose(data["grad_norm"], grads["grad_norm"].to_numpy())
    assert list(data["index"]) == list(grads["index"])
    for col in ("mean", "std", "frac_zero", "frac_dead_units", "frac_saturated"):
        assert np.allclose(data[col], stats[col].to_numpy(dtype=float), equal_nan=True), col


def test_the_explorer_keeps_its_figure_and_shows_every_point() -> None:
    view = L01.GradientExplorer(inputs=X, targets=Y)
    fig = view.draw(depth=6)
    for kw in ({"depth": 30}, {"depth": 30, "shortcut": True}, {"depth": 12, "activation": "relu", "init": "kaiming"},
               {"depth": 9, "arch": "cnn", "bn": True}):
        assert view.draw(**kw) is fig  # updated in place, not rebuilt
        depth = kw["depth"]
        assert fig._suptitle.get_text().endswith(f"depth {depth}")
        x, y = (np.asarray(a, dtype=float) for a in view.grad_line.get_data())
        assert len(x) == depth + 1  # every hidden layer and the head (nothing underflows in float64 here)
        (x0, x1), (y0, y1) = view.axes[0].get_xlim(), view.axes[0].get_ylim()
        assert x0 <= x.min() and x.max() <= x1 and y0 <= y.min() and y.max() <= y1  # no point clipped
        mean_x, mean_y = (np.asarray(a, dtype=float) for a in view.mean_line.get_data())
        (a0, a1), (b0, b1) = view.axes[1].get_xlim(), view.axes[1].get_ylim()
        assert a0 <= mean_x.min() and mean_x.max() <= a1 and b0 <= mean_y.min() and mean_y.max() <= b1
        shown = [line for line in view.share_lines.values() if line.get_visible()]
        assert len(shown) == (2 if kw.get("activation") == "relu" else 1)  # ReLU: zero outputs and dead units
    assert L01.draw_gradient_explorer(depth=6, inputs=X, targets=Y) is not L01.draw_gradient_explorer(
        depth=6, inputs=X, targets=Y)  # the plain function returns a new figure each time


def test_heat_map_records_each_layers_gradient_and_the_plain_nets_early_layers_go_dark() -> None:
    depth, steps, batch = 8, 3, 32
    view = L01.GradientHeatmapRun()
    view.draw(depth=depth, steps=steps, batch_size=batch, lr=0.1)
    plain, residual = view.maps
    assert plain.shape == residual.shape == (depth + 1, steps) and np.isfinite(plain).all()
    # step 1, measured independently: the same seeded nets, the first batch, one backward pass
    x, y = fashion_batch(batch * 16, seed=0)
    for values, shortcut in ((plain, False), (residual, True)):
        torch.manual_seed(0)
        net = make_deep_net("mlp", depth, activation="sigmoid", shortcut=shortcut)
        nn.CrossEntropyLoss()(net(x[:batch]), y[:batch]).backward()
        expected = [float(m.weight.grad.norm()) for m in net.modules() if isinstance(m, nn.Linear)]
        assert np.allclose(values[:, 0], np.log10(expected), atol=1e-4)
    # the lesson's point: the plain sigmoid net's first layer gets orders of magnitude less gradient
    assert (residual[0] - plain[0]).min() > 2
    assert [s for s in view.series] == ["plain", "residual"] and len(view.series["plain"].xs) == steps


def test_heat_map_refuses_an_empty_run() -> None:
    with pytest.raises(ValueError, match="steps"):
        L01.GradientHeatmapRun().draw(steps=0)


def test_depth_sweep_streams_the_library_numbers_and_stops_where_it_is() -> None:
    view = L01.DepthSweepRun(inputs=X, targets=Y)
    sent: list[bytes] = []
    view.go_live()
    view.sink = sent.append
    view.run(depths=(3, 2, 5), seeds=(0, 1))
    df = L01.first_layer_grad_vs_depth([2, 3, 5], inputs=X, targets=Y, seeds=(0, 1), progress=False)
    for variant, s in view.series.items():
        expected = df[df.variant == variant].groupby("depth")["first_grad_norm"].mean()
        assert s.xs == [2, 3, 5] and np.allclose(s.ys, expected.loc[[2, 3, 5]].to_numpy())
    assert len(view.series) == 4 and len(sent) >= 4  # the start, a frame per depth, the end

    class StopAfterFirstDepth(L01.DepthSweepRun):
        def note(self, text: str) -> None:
            super().note(text)
            if "depth 2 measured" in text:
                self.stop.set()  # Stop, pressed while depth 2 is measured

    stopping = StopAfterFirstDepth(inputs=X, targets=Y)
    assert stopping.run(depths=(2, 3, 5), seeds=(0,)) == "stopped"
    assert all(s.xs == [2] for s in stopping.series.values())


def test_the_relative_panel_divides_each_curve_by_its_first_depth() -> None:
    df = pd.DataFrame({"depth": [2, 5, 10, 2, 5, 10], "variant": ["plain"] * 3 + ["residual"] * 3,
                       "first_grad_norm": [1e-2, 1e-5, 1e-9, 4.0, 8.0, 44.0]})
    fig = L01.plot_first_layer_grad_vs_depth(df, relative=True)
    left, right = fig.axes[0], fig.axes[1]
    assert [list(line.get_ydata()) for line in left.get_lines()] == [[1e-2, 1e-5, 1e-9], [4.0, 8.0, 44.0]]
    assert [list(np.round(line.get_ydata(), 12)) for line in right.get_lines()] == [[1.0, 1e-3, 1e-7], [1.0, 2.0, 11.0]]
    low, high = right.get_ylim()
    assert 1e-3 < low <= 1.0 and high >= 11.0  # zoomed on the residual curve; plain falls out of the panel
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["plain (falls out of this panel)", "residual"]
    assert len(L01.plot_first_layer_grad_vs_depth(df).axes) == 1
    plt.close("all")


def test_the_signal_of_a_deep_narrow_relu_cnn_fades_and_a_wider_one_keeps_it() -> None:
    """Kaiming init keeps the variance only on average: with 8 channels the last std is tiny for every seed."""
    stds = L01.last_activation_std(channels=(8, 32), seeds=(0, 1, 2))
    assert list(stds.index) == ["8 channels", "32 channels"] and stds.shape == (2, 3)
    assert (stds.loc["8 channels"] < 0.1).all() and (stds.loc["32 channels"] > 0.3).all()
    with pytest.raises(ValueError, match="seed"):
        L01.last_activation_std(seeds=())
