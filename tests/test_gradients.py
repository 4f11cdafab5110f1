"""Gradient diagnostics: exact against hand computations, side-effect free, and the depth facts."""

from __future__ import annotations

import math
import re

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
    assert str(fit).startswith("×0.25 per layer (÷4: the gradient shrinks; R² = ")
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


# =========================================================================== exact values, edge cases, messages
# (added for mutation testing: each test pins a documented fact with a value computed here by hand)


class DetachedFirst(nn.Module):
    """The first layer runs in the forward pass, but its output is detached: no gradient reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(5, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.first(x).detach()))


class PassThroughSigmoid(nn.Sigmoid):
    """Counts as a sigmoid but outputs its input, so a test can put outputs exactly on the thresholds."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class PassThroughTanh(nn.Tanh):
    """Counts as a tanh but outputs its input, so a test can put outputs exactly on the threshold."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


STATS_COLUMNS = ["index", "layer", "type", "mean", "std", "frac_zero", "frac_dead_units", "frac_saturated"]
RATIO_COLUMNS = ["step", "index", "layer", "type", "ratio", "log10_ratio", "loss"]


# --------------------------------------------------------------------------- input checks (all diagnostics)
def test_non_tensor_inputs_message_names_the_function_and_the_type() -> None:
    x, y = _batch()
    with pytest.raises(ValueError, match=r"^grad_norms: inputs must be a torch\.Tensor batch, got ndarray$"):
        diagnostics.grad_norms(Reordered(), x.numpy(), y)
    with pytest.raises(ValueError, match=r"^activation_stats: inputs must be a torch\.Tensor batch, got list$"):
        diagnostics.activation_stats(nn.Sequential(nn.ReLU()), x.tolist())
    with pytest.raises(ValueError, match=r"^update_to_data_ratios: inputs must be a torch\.Tensor batch, got ndarray$"):
        diagnostics.update_to_data_ratios(nn.Linear(5, 3), [(x.numpy(), y)], steps=1, progress=False)


def test_inputs_without_batch_dimension_message_gives_the_shape() -> None:
    with pytest.raises(ValueError, match=r"^grad_norms: inputs need a batch dimension first, got shape \(5,\)$"):
        diagnostics.grad_norms(Reordered(), torch.randn(5), torch.zeros(1, dtype=torch.long))


def test_integer_inputs_stay_integer_and_uint8_images_become_float() -> None:
    # token ids for an embedding must not be turned into floats
    torch.manual_seed(0)
    emb = nn.Sequential(nn.Embedding(6, 3), nn.ReLU())
    ids = torch.tensor([[0, 5], [2, 2]])
    df = diagnostics.activation_stats(emb, ids)
    relu_out = emb[0].weight.detach()[ids].clamp(min=0)
    assert df.loc[0, "mean"] == pytest.approx(float(relu_out.double().mean()), rel=1e-12)
    # uint8 pixels are cast to the model's dtype (float64 here) before the forward pass
    lin = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU()).double()
    pixels = torch.tensor([[[0, 255], [17, 128]], [[3, 4], [250, 9]]], dtype=torch.uint8)
    df = diagnostics.activation_stats(lin, pixels)
    with torch.no_grad():
        ref = torch.relu(pixels.reshape(2, 4).double() @ lin[1].weight.T + lin[1].bias)
    assert df.loc[0, "mean"] == pytest.approx(float(ref.mean()), rel=1e-12)


# --------------------------------------------------------------------------- grad_norms
def test_grad_norms_type_and_numel_columns_are_hand_counts() -> None:
    x, y = _batch()
    df = diagnostics.grad_norms(Reordered(), x, y)
    assert list(df["type"]) == ["Linear", "Linear"]
    assert list(df["numel"]) == [5 * 8, 8 * 3]  # inp: 8x5 weight, out: 3x8 weight


def test_grad_norms_with_no_matching_layer_is_an_empty_table_with_the_columns() -> None:
    x, y = _batch()
    df = diagnostics.grad_norms(Reordered(), x, y, kinds=(nn.Conv2d,))
    assert len(df) == 0
    assert list(df.columns) == ["index", "layer", "type", "numel", "param_norm", "grad_norm"]


def test_grad_norms_layer_without_gradient_is_nan_and_stale_grad_cleared() -> None:
    torch.manual_seed(0)
    model = DetachedFirst()
    model.first.weight.grad = torch.ones_like(model.first.weight)  # stale, from an earlier backward
    x, y = _batch()
    df = diagnostics.grad_norms(model, x, y)
    assert list(df["layer"]) == ["first", "head"]
    assert math.isnan(df.loc[0, "grad_norm"])  # no gradient reached it: NaN, not 0 and not the stale norm
    assert model.first.weight.grad is None
    assert df.loc[1, "grad_norm"] > 0


def test_grad_norms_messages_give_counts_and_the_fix() -> None:
    x, y = _batch()
    with pytest.raises(ValueError, match=r"^grad_norms: 16 inputs but 15 targets; give one target per input$"):
        diagnostics.grad_norms(Reordered(), x, y[:-1])
    with pytest.raises(ValueError, match=r"^grad_norms: targets must be a torch\.Tensor, got list$"):
        diagnostics.grad_norms(Reordered(), x, y.tolist())
    per_sample = nn.CrossEntropyLoss(reduction="none")
    with pytest.raises(ValueError, match=r"^grad_norms: loss_fn must return a scalar \(use reduction='mean'\)$"):
        diagnostics.grad_norms(Reordered(), x, y, loss_fn=per_sample)


# --------------------------------------------------------------------------- activation_stats
def test_activation_stats_columns_index_and_empty_table() -> None:
    x = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    df = diagnostics.activation_stats(nn.Sequential(nn.ReLU(), nn.Tanh()), x)
    assert list(df.columns) == STATS_COLUMNS  # no samples column unless asked for
    assert list(df["index"]) == [0, 1]
    assert list(df["type"]) == ["ReLU", "Tanh"]
    # a model without activation modules: no rows, but the same columns
    empty = diagnostics.activation_stats(nn.Sequential(nn.Linear(2, 2)), x)
    assert len(empty) == 0 and list(empty.columns) == STATS_COLUMNS
    empty = diagnostics.activation_stats(nn.Sequential(nn.Linear(2, 2)), x, samples=True)
    assert list(empty.columns) == STATS_COLUMNS + ["samples"]


def test_activation_stats_empty_kinds_message() -> None:
    message = r"^activation_stats: kinds must name at least one activation module class, e\.g\. \(nn\.ReLU,\)$"
    with pytest.raises(ValueError, match=message):
        diagnostics.activation_stats(nn.Sequential(nn.ReLU()), torch.ones(2, 2), kinds=())


def test_activation_stats_std_of_one_and_two_values() -> None:
    relu = nn.Sequential(nn.ReLU())
    one = diagnostics.activation_stats(relu, torch.tensor([[2.0]])).iloc[0]
    assert one["mean"] == 2.0 and one["std"] == 0.0  # a single value has no spread (not NaN)
    two = diagnostics.activation_stats(relu, torch.tensor([[1.0, 4.0]])).iloc[0]
    assert two["std"] == pytest.approx(math.sqrt(((1 - 2.5) ** 2 + (4 - 2.5) ** 2) / 1))  # unbiased, n - 1 = 1


def test_activation_stats_flat_output_has_no_units_and_relu_has_no_saturation() -> None:
    model = nn.Sequential(nn.Flatten(0), nn.ReLU())  # the ReLU sees a 1-D tensor of 6 values
    df = diagnostics.activation_stats(model, torch.tensor([[1.0, -1.0, 0.0], [2.0, 3.0, -4.0]]))
    row = df.iloc[0]
    assert row["frac_zero"] == pytest.approx(3 / 6)
    assert df["frac_dead_units"].dtype == np.float64 and np.isnan(row["frac_dead_units"])
    assert df["frac_saturated"].dtype == np.float64 and np.isnan(row["frac_saturated"])


def test_activation_stats_saturation_thresholds_are_strict() -> None:
    # outputs exactly on 0.03 / 0.97 are not saturated; just past them they are
    sig = torch.tensor([[0.03, 0.97, 0.0299, 0.9701, 0.5]])
    row = diagnostics.activation_stats(nn.Sequential(PassThroughSigmoid()), sig).iloc[0]
    assert row["frac_saturated"] == pytest.approx(2 / 5)
    tanh = torch.tensor([[0.97, -0.97, 0.9701, -0.9701, 0.0]])
    row = diagnostics.activation_stats(nn.Sequential(PassThroughTanh()), tanh).iloc[0]
    assert row["frac_saturated"] == pytest.approx(2 / 5)


def test_activation_stats_samples_are_2000_reproducible_and_leave_the_global_rng() -> None:
    relu = nn.Sequential(nn.ReLU())
    x = torch.arange(1.0, 2501.0).reshape(25, 100)  # 2500 distinct positive outputs
    df = assert_untouched(lambda: diagnostics.activation_stats(relu, x, samples=True), relu)
    s = df.loc[0, "samples"]
    assert len(s) == 2000 and len(np.unique(s)) == 2000
    assert set(s.tolist()) <= set(x.reshape(-1).tolist())
    again = diagnostics.activation_stats(relu, x, samples=True).loc[0, "samples"]
    seed0 = diagnostics.activation_stats(relu, x, samples=True, seed=0).loc[0, "samples"]
    seed1 = diagnostics.activation_stats(relu, x, samples=True, seed=1).loc[0, "samples"]
    assert np.array_equal(s, again) and np.array_equal(s, seed0)  # the default seed is 0
    assert not np.array_equal(s, seed1)


def test_activation_stats_samples_keep_every_value_in_order_when_they_fit() -> None:
    x = torch.arange(1.0, 13.0).reshape(3, 4)
    s = diagnostics.activation_stats(nn.Sequential(nn.ReLU()), x, samples=True, max_samples=12).loc[0, "samples"]
    assert np.array_equal(s, x.reshape(-1).numpy())


# --------------------------------------------------------------------------- fit_exponential / ExponentialFit
def test_fit_exponential_r2_of_an_imperfect_fit_by_hand() -> None:
    # log10 norms 0, 1, 1 at x = 0, 1, 2: least-squares slope 1/2, intercept 1/6;
    # residuals -1/6, 1/3, -1/6 (sum of squares 1/6); total sum of squares 2/3; R² = 1 - (1/6)/(2/3) = 0.75
    fit = diagnostics.fit_exponential([0, 1, 2], [1.0, 10.0, 10.0])
    assert fit.log10_slope == pytest.approx(0.5, rel=1e-12)
    assert fit.log10_intercept == pytest.approx(1 / 6, rel=1e-12)
    assert fit.factor == pytest.approx(10**0.5, rel=1e-12)
    assert fit.r2 == pytest.approx(0.75, rel=1e-12)
    assert str(fit) == "×3.16 per layer (the gradient grows; R² = 0.750)"


def test_fit_exponential_constant_norms_give_factor_one_and_r2_one() -> None:
    fit = diagnostics.fit_exponential([0, 1, 2], [10.0, 10.0, 10.0])  # no variation to explain
    assert fit.r2 == 1.0
    assert fit.factor == pytest.approx(1.0, abs=1e-12)
    assert fit.log10_intercept == pytest.approx(1.0, abs=1e-12)


def test_fit_exponential_two_points_are_enough_and_repeated_x_is_not() -> None:
    fit = diagnostics.fit_exponential([0, 1], [1.0, 0.5])
    assert fit.factor == pytest.approx(0.5, rel=1e-12)
    fit = diagnostics.fit_exponential([0, 1, 1], [1.0, 0.5, 0.5])
    assert fit.factor == pytest.approx(0.5, rel=1e-12)
    with pytest.raises(ValueError, match=r"^fit_exponential needs at least two distinct x values$"):
        diagnostics.fit_exponential([1, 1], [1.0, 2.0])


def test_fit_exponential_messages_show_the_bad_points() -> None:
    with pytest.raises(ValueError, match=r"^fit_exponential: 3 x values but 2 norms$"):
        diagnostics.fit_exponential([0, 1, 2], [1.0, 2.0])
    # integer input is reported as floats; only the first three bad points are shown
    with pytest.raises(ValueError, match=r"got \[0\.\] at x = \[1\.\] "):
        diagnostics.fit_exponential([0, 1, 2], [1, 0, 4])
    with pytest.raises(
        ValueError,
        match=r"^fit_exponential: norms must be positive and finite; got \[0\. 0\. 0\.\] at x = \[0\. 1\. 2\.\] "
        r"\(underflow\? build the model in float64, or drop those points\)$",
    ):
        diagnostics.fit_exponential([0, 1, 2, 3, 4], [0, 0, 0, 0, 1])


def test_exponential_fit_text_for_growth_shrinkage_and_no_change() -> None:
    fit = diagnostics.ExponentialFit
    shrinking = fit(0.25, math.log10(0.25), 0.0, 0.99)
    assert str(shrinking) == "×0.25 per layer (÷4: the gradient shrinks; R² = 0.990)"
    assert str(fit(1.5, math.log10(1.5), 0.0, 1.0)) == "×1.5 per layer (the gradient grows; R² = 1.000)"
    assert str(fit(1.0, 0.0, 0.0, 1.0)) == "×1 per layer (the gradient keeps its size; R² = 1.000)"


def test_exponential_fit_predict_works_in_float64_for_float32_x() -> None:
    fit = diagnostics.fit_exponential(np.arange(10), 3.0 * 0.3**np.arange(10))
    k32 = torch.arange(10, dtype=torch.float32)  # e.g. layer indices as a float32 tensor
    pred = fit.predict(k32)
    assert pred.dtype == np.float64
    np.testing.assert_allclose(pred, 3.0 * 0.3 ** np.arange(10.0), rtol=1e-12)


# --------------------------------------------------------------------------- per_layer_factor
def _grads(norms: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"index": range(len(norms)), "grad_norm": norms})


def test_per_layer_factor_leaves_out_only_the_head() -> None:
    # hidden layers 0, 1, 2 are 2, 1, 0 layers back: log10 norms -2, -1, 1 -> slope -3/2 (by hand)
    fit = diagnostics.per_layer_factor(_grads([1e-2, 1e-1, 1e1, 77.0]))
    assert fit.log10_slope == pytest.approx(-1.5, rel=1e-12)
    assert fit.factor == pytest.approx(10**-1.5, rel=1e-12)


def test_per_layer_factor_keeps_the_head_when_there_are_only_two_rows() -> None:
    assert diagnostics.per_layer_factor(_grads([0.1, 1.0])).factor == pytest.approx(0.1, rel=1e-12)
    # with three rows the head is dropped: 0.01 and 0.1 remain
    assert diagnostics.per_layer_factor(_grads([0.01, 0.1, 123.0])).factor == pytest.approx(0.1, rel=1e-12)


# --------------------------------------------------------------------------- layer_jacobians / chain_rule_check
def _tanh_net() -> tuple[nn.Sequential, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double(), torch.tensor(
        [0.5, -1.0, 2.0], dtype=torch.float64
    )


def _by_hand(model: nn.Sequential, x: torch.Tensor, target: int) -> dict[str, torch.Tensor]:
    """Activations and input gradients of Linear -> Tanh -> Linear -> cross-entropy, written out."""
    w1, b1, w2, b2 = (p.detach() for p in (model[0].weight, model[0].bias, model[2].weight, model[2].bias))
    a1 = w1 @ x + b1
    a2 = torch.tanh(a1)
    a3 = w2 @ a2 + b2
    g3 = torch.softmax(a3, 0) - nn.functional.one_hot(torch.tensor(target), 2).double()
    g2 = g3 @ w2
    g1 = g2 * (1 - a2**2)
    g0 = g1 @ w1
    return {"a1": a1, "a2": a2, "g0": g0, "g1": g1, "g2": g2, "dtanh": 1 - a2**2}


def test_layer_jacobians_inputs_and_matrices_by_hand() -> None:
    model, x = _tanh_net()
    h = _by_hand(model, x, 1)
    (n0, in0, j0), (n1, in1, j1), (n2, in2, j2) = diagnostics.layer_jacobians(model, x)
    assert (n0, n1, n2) == ("0", "1", "2")
    torch.testing.assert_close(in0, x)  # each layer's input, one sample without batch dimension
    torch.testing.assert_close(in1, h["a1"])
    torch.testing.assert_close(in2, h["a2"])
    torch.testing.assert_close(j0, model[0].weight.detach())
    torch.testing.assert_close(j1, torch.diag(h["dtanh"]))
    torch.testing.assert_close(j2, model[2].weight.detach())
    with pytest.raises(ValueError, match=r"^layer_jacobians needs an nn\.Sequential \(a chain of layers\)"):
        diagnostics.layer_jacobians(Reordered(), torch.randn(5))


def test_chain_rule_check_table_by_hand() -> None:
    model, x = _tanh_net()
    h = _by_hand(model, x, 1)
    df = diagnostics.chain_rule_check(model, x, target=1)
    assert list(df.columns) == [
        "index", "layer", "jacobian_spectral_norm", "chain_grad_norm", "autograd_grad_norm", "max_abs_diff",
    ]
    assert list(df["index"]) == [0, 1, 2] and list(df["layer"]) == ["0", "1", "2"]
    assert list(df.index) == [0, 1, 2]
    w1, w2 = model[0].weight.detach(), model[2].weight.detach()
    spectral = [torch.linalg.svdvals(w1)[0], h["dtanh"].abs().max(), torch.linalg.svdvals(w2)[0]]
    for k, (s, g) in enumerate(zip(spectral, [h["g0"], h["g1"], h["g2"]])):
        assert df.loc[k, "jacobian_spectral_norm"] == pytest.approx(float(s), rel=1e-10)
        assert df.loc[k, "chain_grad_norm"] == pytest.approx(float(g.norm()), rel=1e-10)
        assert df.loc[k, "autograd_grad_norm"] == pytest.approx(float(g.norm()), rel=1e-10)
    assert df["max_abs_diff"].max() < 1e-12


# --------------------------------------------------------------------------- update_to_data_ratios
def _linear_net(dtype: torch.dtype = torch.float64) -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Linear(3, 2).to(dtype)
    g = torch.Generator().manual_seed(1)
    return model, torch.randn(8, 3, generator=g).to(dtype), torch.randint(0, 2, (8,), generator=g)


def _grad_of(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor, loss_fn=None) -> tuple:
    """Loss and weight/bias gradients of the linear net at (w, b), by autograd on fresh leaves."""
    w, b = w.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    loss = (loss_fn or nn.functional.cross_entropy)(x @ w.T + b, y)
    gw, gb = torch.autograd.grad(loss, [w, b])
    return float(loss.detach()), gw, gb


def test_update_ratios_sgd_three_steps_by_hand_and_in_place() -> None:
    model, x, y = _linear_net()
    w, b = model.weight.detach().clone(), model.bias.detach().clone()
    df = diagnostics.update_to_data_ratios(model, [(x, y)], steps=3, lr=0.5, copy_model=False, progress=False)
    assert list(df.columns) == RATIO_COLUMNS
    assert list(df["type"]) == ["Linear"] * 3
    assert df.attrs["diverged_at_step"] is None
    for step in range(3):
        loss, gw, gb = _grad_of(w, b, x, y)
        assert df.loc[step, "loss"] == pytest.approx(loss, rel=1e-5)
        assert df.loc[step, "ratio"] == pytest.approx(float(0.5 * gw.std() / w.std()), rel=1e-5)
        w, b = w - 0.5 * gw, b - 0.5 * gb
    # copy_model=False trained the model itself: plain SGD, no momentum
    torch.testing.assert_close(model.weight.detach(), w, rtol=1e-5, atol=1e-6)


def test_update_ratios_sgd_uses_lr_times_grad_even_below_float32_resolution() -> None:
    model, x, y = _linear_net(torch.float32)
    w0 = model.weight.detach().clone()
    df = diagnostics.update_to_data_ratios(model, [(x, y)], steps=1, lr=1e-12, copy_model=False, progress=False)
    assert torch.equal(model.weight.detach(), w0)  # the step was too small to change any float32 weight
    _, gw, _ = _grad_of(w0.double(), model.bias.double(), x.double(), y)
    expected = 1e-12 * float(gw.std() / w0.double().std())
    assert df.loc[0, "ratio"] == pytest.approx(expected, rel=1e-4)
    assert df.loc[0, "log10_ratio"] == pytest.approx(math.log10(expected), abs=1e-4)


def test_update_ratios_momentum_is_the_actual_weight_change() -> None:
    model, x, y = _linear_net()
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    df = diagnostics.update_to_data_ratios(model, [(x, y)], steps=2, lr=0.5, optimizer="momentum", progress=False)
    _, g1, gb1 = _grad_of(w0, b0, x, y)
    w1, b1 = w0 - 0.5 * g1, b0 - 0.5 * gb1
    _, g2, _ = _grad_of(w1, b1, x, y)
    w2 = w1 - 0.5 * (0.9 * g1 + g2)  # velocity 0.9 * g1 + g2
    assert df.loc[0, "ratio"] == pytest.approx(float((w1 - w0).std() / w0.std()), rel=1e-5)
    assert df.loc[1, "ratio"] == pytest.approx(float((w2 - w1).std() / w1.std()), rel=1e-5)


def test_update_ratios_adam_first_step_is_lr_times_sign() -> None:
    model, x, y = _linear_net()
    w0 = model.weight.detach().clone()
    df = diagnostics.update_to_data_ratios(model, [(x, y)], steps=1, lr=0.01, optimizer="adam", progress=False)
    _, g, _ = _grad_of(w0, model.bias, x, y)
    step = 0.01 * g / (g.abs() + 1e-8)  # Adam's bias-corrected first step
    assert df.loc[0, "ratio"] == pytest.approx(float(step.std() / w0.std()), rel=1e-6)


def test_update_ratios_use_the_given_loss() -> None:
    model, x, _ = _linear_net()
    targets = torch.linspace(-1, 1, 16, dtype=torch.float64).reshape(8, 2)
    w, b = model.weight.detach().clone(), model.bias.detach().clone()
    df = diagnostics.update_to_data_ratios(model, [(x, targets)], steps=1, lr=0.5, loss_fn=nn.MSELoss(), progress=False)
    loss, gw, _ = _grad_of(w, b, x, targets, nn.functional.mse_loss)
    assert df.loc[0, "loss"] == pytest.approx(loss, rel=1e-5)
    assert df.loc[0, "ratio"] == pytest.approx(float(0.5 * gw.std() / w.std()), rel=1e-5)


def test_update_ratios_defaults_are_50_sgd_steps_at_lr_0_1_with_a_progress_bar(capsys) -> None:
    model, x, y = _linear_net()
    w, b = model.weight.detach().clone(), model.bias.detach().clone()
    df = diagnostics.update_to_data_ratios(model, (x, y))
    assert list(df["step"]) == list(range(1, 51))
    _, gw, _ = _grad_of(w, b, x, y)
    assert df.loc[0, "ratio"] == pytest.approx(float(0.1 * gw.std() / w.std()), rel=1e-5)
    assert re.search(r"(^|\r)update ratios: ", capsys.readouterr().err)
    diagnostics.update_to_data_ratios(model, (x, y), steps=2, progress=False)
    assert "update ratios" not in capsys.readouterr().err


def test_update_ratios_follow_linear_layers_not_batchnorm() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    x, y = _batch(n=8, features=3, classes=2)
    df = diagnostics.update_to_data_ratios(model, [(x, y)], steps=1, progress=False)
    assert list(df["layer"]) == ["0", "3"]  # BatchNorm has a weight too, but is not a Linear/Conv layer
    assert (df["ratio"] > 0).all()


def test_update_ratios_of_a_dead_relu_net_are_zero_with_log_minus_infinity() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # every ReLU is off for every input: no weight gradient anywhere
    x, y = _batch(n=8, features=3, classes=2)
    df = diagnostics.update_to_data_ratios(model, [(x, y)], steps=1, progress=False)
    assert list(df["ratio"]) == [0.0, 0.0]
    assert list(df["log10_ratio"]) == [float("-inf"), float("-inf")]


def test_update_ratios_without_weight_layers_is_an_empty_table() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(5, 3), nn.Flatten())  # integer ids in, no Linear or Conv
    ids, y = torch.tensor([[0], [4], [2], [1]]), torch.tensor([0, 1, 2, 0])
    df = diagnostics.update_to_data_ratios(model, [(ids, y)], steps=2, progress=False)
    assert len(df) == 0 and list(df.columns) == RATIO_COLUMNS
    assert df.attrs["diverged_at_step"] is None


def test_update_ratios_accept_the_three_optimizer_names() -> None:
    model, x, y = _linear_net()
    for name in ["sgd", "momentum", "adam"]:
        df = diagnostics.update_to_data_ratios(model, [(x, y)], steps=1, optimizer=name, progress=False)
        assert len(df) == 1, name
    message = r"^update_to_data_ratios: optimizer must be 'sgd', 'momentum' or 'adam', got 'Adam'$"
    with pytest.raises(ValueError, match=message):
        diagnostics.update_to_data_ratios(model, [(x, y)], steps=1, optimizer="Adam", progress=False)
