"""Experiments and explorers of lessons 02 (bn_demos) and 04 (tracing)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

from resnet_tutorial.lessons import l02_batch_normalization as L02  # noqa: E402
from resnet_tutorial.lessons import l04_shape_tracing_resnet18 as L04  # noqa: E402
from resnet_tutorial import bn as bn_module  # noqa: E402
from resnet_tutorial.bn import BatchNorm2d  # noqa: E402


def _fig_data(fig) -> np.ndarray:
    """Everything plotted: line y-values and bar/patch heights, flattened."""
    parts = []
    for ax in fig.axes:
        for line in ax.lines:
            parts.append(np.asarray(line.get_ydata(), dtype=float).ravel())
        for patch in ax.patches:
            if hasattr(patch, "get_height"):
                parts.append(np.array([patch.get_height()], dtype=float))
    plt.close(fig)
    return np.concatenate(parts) if parts else np.array([])


def _differs(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape != b.shape or not np.allclose(a, b, equal_nan=True)


# ----------------------------------------------------------------- lesson 02
def test_affine_recovery_learns_target_mean_and_std():
    res = L02.affine_recovery(2.0, 0.5)
    assert res["gamma"] == pytest.approx(0.5, abs=0.01)
    assert res["beta"] == pytest.approx(2.0, abs=0.01)
    assert abs(res["normalized"].mean()) < 1e-5 and res["normalized"].std() == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(res["recovered"], res["ideal"], atol=0.02)
    h = res["history"]
    assert h["loss"].iloc[-1] < 1e-3 * h["loss"].iloc[0]
    with pytest.raises(ValueError, match="target_std"):
        L02.affine_recovery(0.0, -1.0)


def test_draw_affine_recovery_changes_with_sliders():
    a = _fig_data(L02.draw_affine_recovery())
    b = _fig_data(L02.draw_affine_recovery(target_mean=-1.0, target_std=2.0))
    assert _differs(a, b)


def test_batch_stat_noise_shrinks_like_one_over_sqrt_b():
    df = L02.batch_stat_noise(batch_sizes=(4, 16, 64, 256), trials=400)
    expected = 1 / np.sqrt(df["batch_size"])  # N(0, 1) samples: std of the mean is 1/sqrt(B)
    np.testing.assert_allclose(df["mean_std"], expected, rtol=0.15)
    slope = np.polyfit(np.log(df["batch_size"]), np.log(df["var_std"]), 1)[0]
    assert slope == pytest.approx(-0.5, abs=0.1)
    images = torch.randn(500, 1, 4, 4)
    df_img = L02.batch_stat_noise(images, batch_sizes=(2, 8), trials=200)
    assert (df_img["mean_std"].diff().dropna() < 0).all()
    fig = L02.plot_batch_stat_noise(df)
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    plt.close(fig)
    with pytest.raises(ValueError, match="values must be"):
        L02.batch_stat_noise(torch.randn(2, 2, 2, 2, 2))


def test_draw_batch_mean_spread_changes_with_batch_size():
    def counts(b: int) -> np.ndarray:
        fig = L02.draw_batch_mean_spread(b)
        return np.concatenate([p.get_data().values for ax in fig.axes for p in ax.patches])

    assert _differs(counts(4), counts(128))


def test_batch_dependence_train_vs_eval():
    torch.manual_seed(0)
    model = L02.SmallBNNet(width=4)
    model.train()
    for _ in range(3):  # give the running statistics non-default values
        model(torch.randn(8, 1, 28, 28))
    before = model.features[1].running_mean.clone()
    df = L02.batch_dependence(model, torch.randn(9, 1, 28, 28)).set_index("mode")["max_logit_difference"]
    assert df["train"] > 1e-3 and df["eval"] < 1e-5
    assert torch.equal(model.features[1].running_mean, before) and model.training


def test_recompute_bn_stats_gives_the_data_average():
    model = nn.Sequential(BatchNorm2d(2), nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2, momentum=0.3))
    x = torch.randn(64, 2, 3, 3) * 2 + 5
    bn_module.recompute_bn_stats(model, x, batch_size=16)
    torch.testing.assert_close(model[0].running_mean, x.mean(dim=(0, 2, 3)), rtol=1e-5, atol=1e-5)
    assert not model.training and model[2].momentum == 0.3 and model[0].momentum == 0.1
    with pytest.raises(ValueError, match="no batch-norm"):
        bn_module.recompute_bn_stats(nn.Linear(2, 2), torch.randn(3, 2))


def test_train_eval_experiment_small():
    res = L02.train_eval_experiment(steps=60, per_class=30, test_per_class=20, progress=False)
    acc = res["accuracy"].set_index("scenario")["accuracy"]
    assert acc["eval mode (correct)"] > 0.4  # it learned something in 60 steps
    assert acc["train mode, one-class batches of 32"] < acc["eval mode (correct)"] - 0.15
    assert res["running_mean_changed"]
    assert len(res["losses"]) == 60 and np.mean(res["losses"][-10:]) < np.mean(res["losses"][:10])
    plt.close(L02.plot_train_eval(res["accuracy"]))


def test_bn_keeps_gradients_alive_in_a_deep_relu_cnn():
    norms = L02.bn_grad_norms(depth=20, activation="relu", n=32)
    first_plain = norms["no BN"]["grad_norm"].iloc[0]
    first_bn = norms["with BN"]["grad_norm"].iloc[0]
    assert first_bn > 1e4 * first_plain


def test_bn_training_curves_bn_learns_faster():
    runs = L02.bn_training_curves(depth=12, steps=40, per_class=30, channels=8, progress=False)
    end = {k: v["loss"].iloc[-10:].mean() for k, v in runs.items()}
    assert end["with BN"] < end["no BN"] - 0.2
    assert list(runs["with BN"].columns) == ["step", "loss"]


def test_draw_bn_training_changes_with_depth():
    a = _fig_data(L02.draw_bn_training(depth=3, steps=8))
    b = _fig_data(L02.draw_bn_training(depth=6, steps=8, lr=0.01))
    assert _differs(a, b)


# ----------------------------------------------------------------- lesson 04
def test_conv_output_size_formula():
    assert L04.conv_output_size(224, 7, 2, 3) == 112
    assert L04.conv_output_size(224, 7, 3, 3) == 75
    assert L04.conv_output_size(75, 3, 2, 1) == 38
    assert L04.conv_output_size(10, 3, 1, 0, dilation=2) == 6
    for h, k, s, p in [(224, 7, 3, 3), (31, 5, 2, 1), (9, 3, 4, 0)]:
        conv = nn.Conv2d(1, 1, k, stride=s, padding=p)
        assert conv(torch.zeros(1, 1, h, h)).shape[-1] == L04.conv_output_size(h, k, s, p)
    with pytest.raises(ValueError, match="does not fit"):
        L04.conv_output_size(5, 7)


def test_stage_sizes_stride3_vs_stride2_and_traced_agree():
    assert L04.resnet_stage_sizes(224, 3)["size"].tolist() == [224, 75, 38, 38, 19, 10, 5, 1]
    assert L04.resnet_stage_sizes(224, 2)["size"].tolist() == [224, 112, 56, 56, 28, 14, 7, 1]
    for size, stride, ch in [(224, 3, 1), (100, 2, 3)]:
        traced = L04.traced_stage_sizes(L04.stem_variant(stride, ch), (1, ch, size, size))
        formula = L04.resnet_stage_sizes(size, stride).set_index("stage")["size"]
        for row in traced.itertuples():
            if row.size is not None and row.stage in formula.index:
                assert row.size == formula[row.stage], (size, stride, row.stage)


def test_draw_stage_sizes_changes_with_sliders():
    a = _fig_data(L04.draw_stage_sizes())
    b = _fig_data(L04.draw_stage_sizes(input_size=96, stem="stride3"))
    assert _differs(a, b)


def test_pool_comparison_adaptive_vs_fixed():
    df = L04.pool_comparison((224, 320, 160, 448)).set_index("input")
    assert df.loc[224, "max_difference"] < 1e-4  # identical at 7x7
    assert df.loc[320, "max_difference"] > 1e-2  # runs, but averages only a 7x7 corner of 10x10
    assert "avgpool" in df.loc[160, "avgpool7_error"]
    assert "'fc'" in df.loc[448, "avgpool7_error"] and "2048" in df.loc[448, "avgpool7_error"]
    assert (df["adaptive_output"] == (1, 1000)).all()


def test_cost_table_small_models_analytic():
    models = {"conv": nn.Conv2d(3, 4, 3, padding=1), "mlp": nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))}
    tab = L04.cost_table(models, (1, 3, 8, 8)).set_index("model")
    assert tab.loc["conv", "macs"] == 4 * 8 * 8 * 27 and tab.loc["conv", "fc_share"] == 0
    assert tab.loc["mlp", "fc_share"] == 100 and tab.loc["mlp", "flops"] == 2 * 192 * 5
    plt.close(L04.plot_costs(tab.reset_index()))


def test_vgg16_versus_resnet18_claims():
    tab = L04.cost_table(
        {"ResNet-18": torchvision.models.resnet18(weights=None), "VGG-16": torchvision.models.vgg16(weights=None)}
    ).set_index("model")
    vgg = tab.loc["VGG-16"]
    assert vgg["params"] == 138_357_544
    assert vgg["fc_params"] == 123_642_856 and 89 < vgg["fc_share"] < 90  # the post's "over 90%" is wrong
    assert vgg["macs"] == pytest.approx(15.5e9, rel=0.01)  # the post's "15.5G FLOPs" are multiply-adds
    assert vgg["flops"] == pytest.approx(30.9e9, rel=0.01)
    assert tab.loc["ResNet-18", "macs"] == pytest.approx(1.82e9, rel=0.01)
    assert math.isclose(tab.loc["ResNet-18", "params"], 11_689_512)


def test_stem_order_comparison():
    x = torch.randn(4, 1, 40, 40)
    df = L04.stem_order_comparison(x, channels=8)
    assert set(df["where"]) == {"before the max pool", "after the max pool"}
    df = df[df["where"] == "before the max pool"].set_index("order")
    relu_first = df.loc["Conv → ReLU → BN (ReLU first)"]
    bn_first = df.loc["Conv → BN → ReLU (usual)"]
    assert bn_first["negative_fraction"] == 0 and bn_first["zero_fraction"] > 0.3
    assert relu_first["negative_fraction"] > 0.3 and relu_first["zero_fraction"] == 0
    assert abs(relu_first["mean"]) < 1e-4


def test_summary_estimates_match_torchsummary_text():
    from resnet_tutorial.diagnostics import summary

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(x + self.relu(self.conv(x)))  # shared ReLU: listed twice

    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), Block(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    est = L04.summary_estimates(model, (1, 33, 33))
    text = summary(model, (1, 33, 33))

    def number(label: str) -> float:
        line = next(l for l in text.splitlines() if l.startswith(label))
        return float(line.split(":")[1].replace(",", ""))

    assert number("Total params") == est["total_params"] == sum(p.numel() for p in model.parameters())
    assert number("Forward/backward pass size (MB)") == pytest.approx(est["forward_backward_mb"], abs=0.006)
    assert number("Params size (MB)") == pytest.approx(est["params_mb"], abs=0.006)
    assert number("Input size (MB)") == pytest.approx(est["input_mb"], abs=0.006)


def test_bn_gradients_grow_toward_the_input_with_depth():
    growth = L02.bn_gradient_growth(depths=(10, 40), n=32)
    assert list(growth["depth"]) == [10, 40]
    # at 10 layers the first and last layer get gradients of the same order; at 40 the first gets far more
    assert 0.1 < growth["first_over_last"].iloc[0] < 10
    assert growth["first_over_last"].iloc[1] > 10 * growth["first_over_last"].iloc[0]
