"""Gradient diagnostics: exact against hand computations, side-effect free, and the depth facts."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from helpers.state import assert_untouched  # noqa: E402

from resnet_tutorial import data, diagnostics, models  # noqa: E402
from resnet_tutorial.lessons import l01_vanishing_exploding_gradients as L01  # noqa: E402


class Reordered(nn.Module):
    """Registers the output layer first, so registration order != forward order."""

    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Linear(8, 3)
        self.norm = nn.BatchNorm1d(8)
        self.inp = nn.Linear(5, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.norm(self.inp(x))))


class Exploding(nn.Module):
    """A forward pass that fails half-way (after hooks have fired)."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.act(self.first(x))
        raise RuntimeError("boom")


def _batch(n: int = 16, features: int = 5, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=g), torch.randint(0, classes, (n,), generator=g)


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# --------------------------------------------------------------------------- grad_norms
def test_grad_norms_match_manual_backward_in_forward_order() -> None:
    torch.manual_seed(0)
    model = Reordered()
    x, y = _batch()
    ref = Reordered()
    ref.load_state_dict(model.state_dict())
    nn.functional.cross_entropy(ref(x), y).backward()

    model.inp.weight.grad = torch.full_like(model.inp.weight, 123.0)  # stale gradient must not leak in
    df = diagnostics.grad_norms(model, x, y)
    assert list(df.columns) == ["index", "layer", "type", "numel", "param_norm", "grad_norm"]
    assert list(df["layer"]) == ["inp", "out"]  # forward order, not registration order (out, norm, inp)
    assert list(df["index"]) == [0, 1]
    for name in ["inp", "out"]:
        row = df[df["layer"] == name].iloc[0]
        assert row["grad_norm"] == pytest.approx(float(getattr(ref, name).weight.grad.norm()), rel=1e-6)
        assert row["param_norm"] == pytest.approx(float(getattr(model, name).weight.detach().norm()), rel=1e-6)
        # gradients are kept for inspection
        assert torch.allclose(getattr(model, name).weight.grad, getattr(ref, name).weight.grad)
    assert _hook_count(model) == 0


@pytest.mark.parametrize("mode", ["train", "eval", "mixed"])
def test_grad_norms_kinds_none_includes_batchnorm_and_leaves_the_model_untouched(mode: str) -> None:
    torch.manual_seed(0)
    model = Reordered().train(mode != "eval")
    if mode == "mixed":
        model.norm.eval()
    x, y = _batch()
    # gradients are kept on purpose (documented); everything else must be as before
    df = assert_untouched(lambda: diagnostics.grad_norms(model, x, y, kinds=None), model, grads=False)
    assert list(df["layer"]) == ["inp", "norm", "out"]
    # the BN row's gradient is the one of a manual backward in the same mode
    ref = Reordered().train(mode != "eval")
    if mode == "mixed":
        ref.norm.eval()
    ref.load_state_dict(model.state_dict())
    nn.functional.cross_entropy(ref(x), y).backward()
    assert df.set_index("layer").loc["norm", "grad_norm"] == pytest.approx(float(ref.norm.weight.grad.norm()), rel=1e-6)


def test_grad_norms_bad_input_messages() -> None:
    model = Reordered()
    x, y = _batch()
    with pytest.raises(ValueError, match="targets"):
        diagnostics.grad_norms(model, x, y[:-1])
    with pytest.raises(ValueError, match="Tensor"):
        diagnostics.grad_norms(model, x.numpy(), y)


def test_hooks_removed_when_forward_raises() -> None:
    model = Exploding()
    x = torch.randn(2, 4)
    with pytest.raises(RuntimeError, match="boom"):
        diagnostics.grad_norms(model, x, torch.zeros(2, dtype=torch.long))
    assert _hook_count(model) == 0
    with pytest.raises(RuntimeError, match="boom"):
        diagnostics.activation_stats(model, x)
    assert _hook_count(model) == 0


# --------------------------------------------------------------------------- activation_stats
def test_activation_stats_on_hand_made_input() -> None:
    model = nn.Sequential(nn.ReLU(), nn.Sigmoid())
    # 4 samples × 4 units; unit 0 negative for every sample (dead), 6 of 16 entries <= 0 overall.
    x = torch.tensor(
        [
            [-1.0, 2.0, -3.0, 4.0],
            [-2.0, 1.0, 3.0, 4.0],
            [-1.0, 5.0, 3.0, -4.0],
            [-2.0, 1.0, 3.0, 40.0],
        ]
    )
    df = diagnostics.activation_stats(model, x, samples=True)
    relu, sig = df.iloc[0], df.iloc[1]
    assert relu["layer"] == "0" and relu["type"] == "ReLU"
    assert relu["frac_zero"] == pytest.approx(6 / 16)
    assert relu["frac_dead_units"] == pytest.approx(1 / 4)
    r = x.clamp(min=0)
    assert relu["mean"] == pytest.approx(float(r.mean()))
    assert relu["std"] == pytest.approx(float(r.std()))
    assert math.isnan(relu["frac_saturated"])
    # sigmoid of the ReLU output: 0 -> 0.5, 3 -> 0.953 (not saturated); 4, 4, 5, 40 -> > 0.97: 4 of 16
    s = torch.sigmoid(r)
    assert sig["frac_saturated"] == pytest.approx(float(((s < 0.03) | (s > 0.97)).double().mean()))
    assert sig["frac_saturated"] == pytest.approx(4 / 16)
    assert np.allclose(np.sort(sig["samples"]), np.sort(s.numpy().ravel()))


def test_activation_stats_tanh_threshold_and_reused_module() -> None:
    act = nn.Tanh()
    model = nn.Sequential(act, act)  # the same module called twice -> two rows
    x = torch.tensor([[0.0, 3.0], [-3.0, 0.5]])
    df = diagnostics.activation_stats(model, x)
    assert list(df["layer"]) == ["0", "0#2"]
    assert df.iloc[0]["frac_saturated"] == pytest.approx(0.5)  # tanh(±3) = ±0.995 > 0.97
    assert len(df) == 2


def test_activation_stats_dead_channels_of_conv_maps() -> None:
    model = nn.Sequential(nn.ReLU())
    x = torch.randn(3, 4, 5, 5).abs() + 0.1
    x[:, 1] = -1.0  # channel 1 is off everywhere, for every image
    df = diagnostics.activation_stats(model, x)
    assert df.iloc[0]["frac_dead_units"] == pytest.approx(1 / 4)
    assert df.iloc[0]["frac_zero"] == pytest.approx(1 / 4)


# --------------------------------------------------------------------------- builders
def test_deep_mlp_and_cnn_structure() -> None:
    m = models.make_deep_mlp(7, width=16, activation="tanh", bn=True, shortcut=True)
    linears = [n for n, mod in m.named_modules() if isinstance(mod, nn.Linear)]
    assert len(linears) == 8  # 7 hidden + head
    assert sum(isinstance(mod, models.AddShortcut) for mod in m.modules()) == 6  # hidden1 changes width
    assert m(torch.randn(4, 1, 28, 28)).shape == (4, 10)
    c = models.make_deep_cnn(5, channels=4, activation="relu")
    assert sum(isinstance(mod, nn.Conv2d) for mod in c.modules()) == 5
    assert c(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_inits_set_the_documented_scale() -> None:
    torch.manual_seed(0)

    def hidden_weight(init: str) -> torch.Tensor:
        return models.make_deep_mlp(3, width=256, init=init).hidden2.linear.weight.detach()

    assert float(hidden_weight("small").std()) == pytest.approx(0.01, rel=0.05)
    assert float(hidden_weight("large").std()) == pytest.approx(1.0, rel=0.05)
    assert float(hidden_weight("kaiming").std()) == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    assert float(hidden_weight("xavier").std()) == pytest.approx(math.sqrt(2 / 512), rel=0.05)
    # PyTorch's default: uniform with std 1/sqrt(3 fan_in)
    assert float(hidden_weight("default").std()) == pytest.approx(1 / math.sqrt(3 * 256), rel=0.05)
    assert float(models.make_deep_mlp(3, init="kaiming").hidden2.linear.bias.detach().abs().max()) == 0.0


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"depth": 0}, "depth"),
        ({"depth": 3.5}, "depth"),
        ({"depth": 3, "activation": "softmax"}, "activation"),
        ({"depth": 3, "init": "orthogonal"}, "init"),
        ({"depth": 3, "width": 0}, "width"),
    ],
)
def test_builders_reject_bad_options(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        models.make_deep_mlp(**kw)
    with pytest.raises(ValueError, match="arch"):
        models.make_deep_net("rnn", 3)


# --------------------------------------------------------------------------- the depth facts
def _first_over_last(shortcut: bool, bn: bool, depth: int = 30) -> float:
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    model = models.make_deep_mlp(depth, activation="sigmoid", bn=bn, shortcut=shortcut).double()
    df = diagnostics.grad_norms(model, x, y)
    return float(df["grad_norm"].iloc[0] / df["grad_norm"].iloc[-1])


def test_deep_sigmoid_gradient_vanishes_but_not_with_shortcut_or_bn() -> None:
    assert _first_over_last(False, False) < 1e-12  # plain: many orders of magnitude
    for shortcut, bn in [(True, False), (False, True), (True, True)]:
        assert _first_over_last(shortcut, bn) > 1e-3, (shortcut, bn)


def test_first_layer_grad_vs_depth_table_and_trend() -> None:
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    df = L01.first_layer_grad_vs_depth([2, 8, 16], inputs=x, targets=y, seeds=(0, 1), progress=False)
    assert len(df) == 3 * 4 * 2
    assert set(df["variant"]) == {"plain", "plain + BN", "residual", "residual + BN"}
    plain = df[df["variant"] == "plain"].groupby("depth")["first_grad_norm"].mean()
    assert plain[16] < plain[8] < plain[2]
    assert plain[16] < 1e-6 * plain[2]
    res = df[df["variant"] == "residual"].groupby("depth")["first_grad_norm"].mean()
    assert res[16] > 1e-2 * res[2]
    fit = diagnostics.fit_exponential(plain.index, plain.to_numpy())
    assert fit.factor < 0.5  # each extra sigmoid layer costs more than half the gradient


def test_fit_exponential_recovers_the_factor() -> None:
    k = np.arange(10)
    fit = diagnostics.fit_exponential(k, 3.0 * 0.25**k)
    assert fit.factor == pytest.approx(0.25)
    assert fit.log10_intercept == pytest.approx(math.log10(3.0))
    assert fit.r2 == pytest.approx(1.0)
    assert np.allclose(fit.predict(k), 3.0 * 0.25**k)
    assert "shrinks by a factor of 4" in str(fit)
    with pytest.raises(ValueError, match="positive"):
        diagnostics.fit_exponential([0, 1, 2], [1.0, 0.0, 1e-3])
    with pytest.raises(ValueError, match="two distinct"):
        diagnostics.fit_exponential([1], [1.0])


# --------------------------------------------------------------------------- update ratios
def test_update_to_data_ratios_shape_and_value() -> None:
    torch.manual_seed(0)
    model = models.make_deep_mlp(3, width=16, in_features=5, activation="relu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _batch(n=32, features=5, classes=10)
    df = diagnostics.update_to_data_ratios(model, [(x, y)], steps=4, lr=0.05, progress=False)
    assert len(df) == 4 * 4  # 4 steps × (3 hidden + head)
    assert list(df["step"].unique()) == [1, 2, 3, 4]
    assert list(df[df["step"] == 1]["layer"]) == ["hidden1.linear", "hidden2.linear", "hidden3.linear", "head.linear"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])  # a copy was trained
    # step 1, plain SGD: the ratio is std(W after - W before) / std(W before); one step taken here by hand
    w = model.hidden1.linear.weight
    (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), [w])
    with torch.no_grad():
        after = w.double() - 0.05 * grad.double()
        expected = float((after - w.double()).std() / w.double().std())
    row = df[(df["step"] == 1) & (df["index"] == 0)].iloc[0]
    assert row["ratio"] == pytest.approx(expected, rel=1e-4)
    # the plotted column is the log of that hand-computed ratio (not the column it is derived from)
    assert row["log10_ratio"] == pytest.approx(math.log10(expected), abs=1e-4)
    with pytest.raises(ValueError, match="optimizer"):
        diagnostics.update_to_data_ratios(model, [(x, y)], steps=1, optimizer="lbfgs")


# --------------------------------------------------------------------------- chain rule
def test_product_of_jacobians_equals_autograd() -> None:
    torch.manual_seed(0)
    model = models.make_deep_mlp(6, width=12, in_features=7, activation="sigmoid").double()
    df = diagnostics.chain_rule_check(model, torch.randn(7, dtype=torch.float64), target=2)
    assert len(df) == len(list(model.children()))
    assert np.allclose(df["chain_grad_norm"], df["autograd_grad_norm"], rtol=1e-10, atol=0)
    assert df["max_abs_diff"].max() < 1e-12
    # sigmoid' <= 1/4, so each hidden layer's Jacobian norm is at most ||W||_2 / 4
    for name, _, jac in diagnostics.layer_jacobians(model, torch.randn(7, dtype=torch.float64)):
        if name != "hidden1" and name.startswith(("hidden", "head")):  # hidden1 has no activation
            w = getattr(model, name).linear.weight.detach()
            bound = float(torch.linalg.matrix_norm(w, ord=2)) / 4
            assert float(torch.linalg.matrix_norm(jac, ord=2)) <= bound + 1e-12
    with pytest.raises(ValueError, match="Sequential"):
        diagnostics.layer_jacobians(Reordered(), torch.randn(5))


# --------------------------------------------------------------------------- explorers
def _line_data(fig: plt.Figure) -> list[np.ndarray]:
    return [np.asarray(line.get_ydata(), dtype=float) for ax in fig.axes for line in ax.get_lines()]


def test_gradient_explorer_responds_to_every_control() -> None:
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    base = L01.draw_gradient_explorer(depth=6, inputs=x, targets=y)
    assert isinstance(base, plt.Figure)
    ref = _line_data(base)
    assert base.axes[0].get_yscale() == "log"
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in base.axes)
    for kw in [
        {"depth": 9},
        {"activation": "relu"},
        {"init": "xavier"},
        {"bn": True},
        {"shortcut": True},
        {"arch": "cnn"},
        {"seed": 1},
    ]:
        fig = L01.draw_gradient_explorer(**{"depth": 6, **kw}, inputs=x, targets=y)
        data = _line_data(fig)
        differs = len(data) != len(ref) or any(a.shape != b.shape or not np.allclose(a, b) for a, b in zip(data, ref))
        assert differs, kw
        plt.close(fig)
    plt.close(base)


def test_first_layer_explorer_has_four_curves() -> None:
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    fig = L01.draw_first_layer_grad_vs_depth(depths=(2, 4), seeds=(0,), inputs=x, targets=y)
    assert len(fig.axes[0].get_lines()) == 4
    assert fig.axes[0].get_yscale() == "log"
    plt.close(fig)


def test_fashion_batch_is_normalized_real_data() -> None:
    x, y = data.fashion_batch(64)  # make test's setup installs FashionMNIST: missing data is a failure
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (64,) and int(y.max()) <= 9
    # exactly 64 training images drawn with seed 0, scaled by the training set's own mean and std
    images, labels = data.load_tensors(train=True)
    idx = torch.randperm(60000, generator=torch.Generator().manual_seed(0))[:64]
    torch.testing.assert_close(x, (images[idx].unsqueeze(1).float() / 255 - 0.2860) / 0.3530)
    assert torch.equal(y, labels[idx])


def test_per_layer_factor_counts_layers_back_from_the_output() -> None:
    idx = np.arange(6)
    # hidden layers 0..4 shrink by 5x per layer toward the input; the head (5) has its own scale
    norms = np.r_[5.0 ** -(4 - idx[:5]), 123.0]
    df = pd.DataFrame({"index": idx, "grad_norm": norms})
    fit = diagnostics.per_layer_factor(df)
    assert fit.factor == pytest.approx(0.2)
    assert diagnostics.per_layer_factor(df, skip_head=False).factor != pytest.approx(0.2)
    with pytest.raises(ValueError, match="grad_norms"):
        diagnostics.per_layer_factor(pd.DataFrame({"x": [1]}))


def test_update_ratios_stop_when_training_diverges() -> None:
    torch.manual_seed(0)
    model = models.make_deep_mlp(4, width=16, in_features=5, activation="relu")
    x, y = _batch(n=32, features=5, classes=10)
    df = diagnostics.update_to_data_ratios(model, [(x, y)], steps=50, lr=1000.0, progress=False)
    at = df.attrs["diverged_at_step"]
    assert at is not None and 1 < at <= 50
    assert df["step"].max() == at - 1
    assert np.isfinite(df["loss"]).all()
