"""shapes_and_counts on tiny hand-checked models: exact tables, exact error messages, edge cases.

tests/test_diagnostics.py checks the helpers on ResNets (post 002's table, torchvision's
resnet18 counts); this file pins every row and every message down on models small enough to
count by hand, so a wrong number or a garbled hint for the learner shows up.
"""

from __future__ import annotations

import re
import sys

import pytest
import torch
from torch import nn

from resnet_tutorial import diagnostics
from resnet_tutorial.diagnostics import shapes_and_counts

TRACE_COLUMNS = ["name", "type", "depth", "is_leaf", "call", "input_shape", "output_shape", "params"]


def _small_cnn() -> nn.Sequential:
    # conv: 2 filters of 1x3x3 + 2 biases = 20 params; linear: 8*3 + 3 = 27 params
    return nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)), nn.Flatten(), nn.Linear(8, 3)
    )


def _raises(message: str):
    """pytest.raises(ValueError) whose message starts with ``message``, taken literally (it is full of brackets)."""
    return pytest.raises(ValueError, match="^" + re.escape(message))


# --------------------------------------------------------------------------- trace_shapes: exact rows
def test_trace_of_a_small_cnn_row_by_row():
    df = diagnostics.trace_shapes(_small_cnn(), (2, 1, 6, 6))
    assert list(df.columns) == TRACE_COLUMNS
    assert df.values.tolist() == [
        ["0", "Conv2d", 1, True, 0, (2, 1, 6, 6), (2, 2, 4, 4), 20],
        ["1", "Sequential", 1, False, 0, (2, 2, 4, 4), (2, 2, 2, 2), 0],
        ["1.0", "ReLU", 2, True, 0, (2, 2, 4, 4), (2, 2, 4, 4), 0],
        ["1.1", "MaxPool2d", 2, True, 0, (2, 2, 4, 4), (2, 2, 2, 2), 0],
        ["2", "Flatten", 1, True, 0, (2, 2, 2, 2), (2, 8), 0],
        ["3", "Linear", 1, True, 0, (2, 8), (2, 3), 27],
    ]


def test_trace_filters_keep_a_fresh_index():
    model = _small_cnn()
    top = diagnostics.trace_shapes(model, (2, 1, 6, 6), depth=1)
    assert top["name"].tolist() == ["0", "1", "2", "3"] and top.index.tolist() == [0, 1, 2, 3]
    leaves = diagnostics.trace_shapes(model, (2, 1, 6, 6), leaves_only=True)
    assert leaves["name"].tolist() == ["0", "1.0", "1.1", "2", "3"] and leaves.index.tolist() == [0, 1, 2, 3, 4]
    assert list(leaves.columns) == TRACE_COLUMNS


def test_trace_depth_zero_is_an_empty_table_and_negative_depth_is_refused():
    empty = diagnostics.trace_shapes(_small_cnn(), (2, 1, 6, 6), depth=0)
    assert len(empty) == 0 and list(empty.columns) == TRACE_COLUMNS
    with _raises("depth must be None or >= 0, got -1"):
        diagnostics.trace_shapes(_small_cnn(), (2, 1, 6, 6), depth=-1)


def test_trace_of_a_model_without_submodules_is_empty_with_all_columns():
    df = diagnostics.trace_shapes(nn.Linear(3, 2), (1, 3))  # the root itself gets no row
    assert len(df) == 0 and list(df.columns) == TRACE_COLUMNS


def test_trace_refuses_what_is_not_a_module():
    with _raises("model must be an nn.Module, got str"):
        diagnostics.trace_shapes("resnet18", (1, 3, 32, 32))


def test_module_registered_twice_keeps_its_first_name():
    lin = nn.Linear(3, 3)
    df = diagnostics.trace_shapes(nn.Sequential(lin, nn.ReLU(), lin), (1, 3))
    assert df["name"].tolist() == ["0", "1", "0"]
    assert df["call"].tolist() == [0, 0, 1]


class _Heads(nn.Module):
    """Returns a dict with nested containers, plain Python values and None beside the tensors."""

    def forward(self, x, scale):
        return {
            "logits": x[:, :3] * scale,
            "extra": {"feat": x, "note": "text"},
            "pair": (x, (x[:, :1], None)),
            "none": None,
        }


class _Split(nn.Module):
    def forward(self, x):
        return x[:, :1], x[:, 2:]


class _WithHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = _Heads()
        self.split = _Split()

    def forward(self, x):
        out = self.heads(x, 2.0)
        a, b = self.split(out["logits"])
        return a + b


def test_shapes_of_nested_outputs_keep_their_structure():
    df = diagnostics.trace_shapes(_WithHeads(), (2, 5)).set_index("name")
    # only the tensors count: the float argument, the string and the Nones are left out
    assert df.loc["heads", "input_shape"] == (2, 5)
    assert df.loc["heads", "output_shape"] == {
        "logits": (2, 3),
        "extra": {"feat": (2, 5)},
        "pair": ((2, 5), (2, 1)),  # the inner (tensor, None) pair reduces to its one tensor's shape
    }
    assert df.loc["split", "output_shape"] == ((2, 1), (2, 1))


# --------------------------------------------------------------------------- trace_shapes: messages
def test_hard_coded_flatten_size_is_reported_with_the_model_and_input():
    class Flattener(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            y = self.conv(x)  # (1, 2, 3, 3): 18 numbers per image, not 8
            return self.fc(y.view(y.shape[0], 8))

    # the failing view is in the model's own forward, after conv finished: no layer is running
    with _raises("forward pass of Flattener failed on input shape (1, 1, 5, 5): "
                 "shape '[1, 8]' is invalid for input of size 18"):
        diagnostics.trace_shapes(Flattener(), (1, 1, 5, 5))


class _PoolWithFallback(nn.Module):
    """Tries a 7x7 average pool and falls back on a global one when the map is smaller than 7x7."""

    def __init__(self) -> None:
        super().__init__()
        self.big = nn.AvgPool2d(7)
        self.small = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        try:
            return self.big(x)
        except RuntimeError:  # the error is handled here: the forward pass goes on
            return self.small(x)


class _FallbackThenFlatten(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.pool = _PoolWithFallback()
        self.fc = nn.Linear(features, 2)

    def forward(self, x):
        y = self.pool(x)
        return self.fc(y.reshape(y.shape[0], 4))  # a hard-coded size: 4 channels, pooled to 1x1


def test_a_call_whose_error_was_caught_has_no_output_shape():
    df = diagnostics.trace_shapes(_FallbackThenFlatten(4), (1, 4, 5, 5))
    assert df["name"].tolist() == ["pool", "pool.big", "pool.small", "fc"]
    assert df.loc[1, "output_shape"] is None  # pool.big raised: it produced nothing
    assert df.loc[2, "output_shape"] == (1, 4, 1, 1)


def test_a_caught_error_does_not_hide_a_later_failure():
    # 3 channels after the fallback pool give 3 numbers per image; the forward asks for 4
    with _raises("forward pass of _FallbackThenFlatten failed on input shape (1, 3, 5, 5): "
                 "shape '[1, 4]' is invalid for input of size 3"):
        diagnostics.trace_shapes(_FallbackThenFlatten(4), (1, 3, 5, 5))


def test_conv_gets_unbatched_input():
    model = nn.Sequential(nn.Conv2d(3, 4, 3))
    df = diagnostics.trace_shapes(model, torch.randn(3, 8, 8))  # (C, H, W) is valid for Conv2d
    assert df.loc[0, "output_shape"] == (4, 6, 6)
    with _raises("layer '0' (Conv2d) expects 3 input channels but was given 2 (input shape (2, 8, 8)). "
                 "Give the input 3 channels or build the model for 2 input channels."):
        diagnostics.trace_shapes(model, torch.randn(2, 8, 8))


def test_conv_with_too_few_dimensions_names_the_expected_layout():
    with _raises("layer '0' (Conv2d) expects a 4-D input (batch, channels, H, W) but got shape (3, 8)"):
        diagnostics.trace_shapes(nn.Sequential(nn.Conv2d(3, 4, 3)), (3, 8))


def test_linear_accepts_one_or_three_dimensional_input():
    model = nn.Sequential(nn.Linear(4, 3))
    assert diagnostics.trace_shapes(model, torch.randn(4)).loc[0, "output_shape"] == (3,)
    assert diagnostics.trace_shapes(model, (2, 5, 4)).loc[0, "output_shape"] == (2, 5, 3)


def test_linear_with_wrong_features_tells_what_to_check():
    model = nn.Sequential(nn.Linear(4, 3))
    with _raises("layer '0' (Linear) expects 4 input features but was given 6 (input shape (2, 5, 6)); the "
                 "layers before it produce a different size (check input size and pooling)."):
        diagnostics.trace_shapes(model, (2, 5, 6))
    with _raises("layer '0' (Linear) expects 4 input features but was given 0 (input shape ())"):
        diagnostics.trace_shapes(model, torch.tensor(1.0))


def test_batchnorm_with_wrong_channels_names_both_numbers():
    with _raises("layer '0' (BatchNorm1d) normalizes 4 channels but was given 3 (input shape (2, 3))."):
        diagnostics.trace_shapes(nn.Sequential(nn.BatchNorm1d(4)), (2, 3))
    with _raises("layer '0' (BatchNorm2d) normalizes 4 channels but was given 3 (input shape (1, 3, 5, 6))."):
        diagnostics.trace_shapes(nn.Sequential(nn.BatchNorm2d(4)), (1, 3, 5, 6))


# --------------------------------------------------------------------------- stage_table
def test_stage_table_of_a_small_cnn():
    table = diagnostics.stage_table(_small_cnn(), (2, 1, 6, 6))
    assert list(table.columns) == ["stage", "output_shape", "params"]
    assert table.values.tolist() == [
        ["input", (2, 1, 6, 6), 0],
        ["0", (2, 2, 4, 4), 20],
        ["1", (2, 2, 2, 2), 0],
        ["2", (2, 8), 0],
        ["3", (2, 3), 27],
    ]


# --------------------------------------------------------------------------- make_input / model_device_dtype
def test_shape_becomes_the_seeded_normal_tensor():
    model = nn.Linear(3, 2)
    expected = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))  # default seed is 0
    assert torch.equal(diagnostics.make_input(model, (2, 3)), expected)
    expected7 = torch.randn(2, 3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(diagnostics.make_input(model, [2, 3], seed=7), expected7)


def test_input_follows_the_model_dtype():
    double = nn.Linear(3, 2).double()
    assert diagnostics.make_input(double, (2, 3)).dtype == torch.float64
    x64 = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    x = diagnostics.make_input(nn.Linear(3, 2), x64)
    assert x.dtype == torch.float32 and x.tolist() == [[0.5, -1.0, 2.0]]
    assert diagnostics.trace_shapes(nn.Sequential(nn.Linear(3, 2)), x64).loc[0, "output_shape"] == (1, 2)


def test_integer_input_stays_integer_for_an_embedding():
    tokens = torch.tensor([[1, 2, 3]])
    model = nn.Sequential(nn.Embedding(10, 4))
    assert diagnostics.make_input(model, tokens).dtype == torch.int64
    assert diagnostics.trace_shapes(model, tokens).loc[0, "output_shape"] == (1, 3, 4)


def test_input_moves_to_the_model_device():
    # the 'meta' device stands in for a GPU: it exists on every machine
    model = nn.Linear(3, 2, device="meta")
    assert diagnostics.model_device_dtype(model) == (torch.device("meta"), torch.float32)
    assert diagnostics.make_input(model, (2, 3)).device.type == "meta"
    assert diagnostics.make_input(model, torch.ones(2, 3)).device.type == "meta"


def test_model_without_parameters_gets_cpu_float_input():
    assert diagnostics.model_device_dtype(nn.ReLU()) == (torch.device("cpu"), torch.float32)
    x = diagnostics.make_input(nn.ReLU(), (2, 3))
    assert x.device.type == "cpu" and x.dtype == torch.float32


def test_shape_with_non_integer_sizes_is_refused():
    with _raises("input must be a tensor or a shape tuple such as (1, 3, 224, 224), got tuple"):
        diagnostics.make_input(nn.Linear(3, 2), (2.5, 3))


# --------------------------------------------------------------------------- parameter counts
class _Scaled(nn.Module):
    """A learnable per-channel scale registered on the root, beside three children."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))  # 4
        self.conv = nn.Conv2d(1, 4, 3)  # 4 * 1 * 3 * 3 + 4 = 40
        self.act = nn.ReLU()  # 0
        self.head = nn.Linear(4, 2)  # 4 * 2 + 2 = 10


def test_num_params_total_trainable_and_none():
    model = _small_cnn()
    assert diagnostics.num_params(model) == 20 + 27
    model[0].weight.requires_grad_(False)  # 18 conv weights frozen
    assert diagnostics.num_params(model) == 47
    assert diagnostics.num_params(model, trainable_only=True) == 47 - 18
    assert diagnostics.num_params(None) == 0


def test_count_params_puts_root_parameters_first():
    model = _Scaled()
    model.conv.requires_grad_(False)
    counts = diagnostics.count_params(model)
    assert counts == {
        "total": 54, "trainable": 14, "frozen": 40,
        "per_child": {"(root)": 4, "conv": 40, "act": 0, "head": 10},
    }


def test_count_params_refuses_what_is_not_a_module():
    with _raises("model must be an nn.Module, got dict"):
        diagnostics.count_params({"weight": torch.ones(3)})


def test_params_table_rows_of_a_model_with_root_parameters():
    table = diagnostics.params_table(_Scaled())
    assert list(table.columns) == ["name", "type", "params", "percent"]
    assert table["name"].tolist() == ["(root)", "conv", "act", "head"]
    assert table["type"].tolist() == ["_Scaled", "Conv2d", "ReLU", "Linear"]
    assert table["params"].tolist() == [4, 40, 0, 10]
    assert table["percent"].tolist() == pytest.approx([100 * 4 / 54, 100 * 40 / 54, 0.0, 100 * 10 / 54])


def test_params_table_without_parameters():
    table = diagnostics.params_table(nn.Sequential(nn.ReLU(), nn.Flatten()))
    assert table.values.tolist() == [["0", "ReLU", 0, 0.0], ["1", "Flatten", 0, 0.0]]
    empty = diagnostics.params_table(nn.ReLU())  # no children, no parameters: no rows, same columns
    assert len(empty) == 0 and list(empty.columns) == ["name", "type", "params", "percent"]
    assert empty["params"].sum() == 0


# --------------------------------------------------------------------------- count_flops
def test_flops_of_a_model_without_matrix_ops_are_zero():
    res = diagnostics.count_flops(nn.Sequential(nn.ReLU(), nn.Flatten()), (2, 3, 4))
    assert res == {"flops": 0, "macs": 0, "per_child": {"0": 0, "1": 0}, "by_op": {}}


def test_macs_are_a_whole_number():
    res = diagnostics.count_flops(nn.Linear(20, 5), (2, 20))
    # the lessons print it with f"{macs:,}": a float would show as '200.0'
    assert f"{res['macs']:,}" == "200" and f"{res['flops']:,}" == "400"


def test_count_flops_refuses_what_is_not_a_module():
    with _raises("model must be an nn.Module, got list"):
        diagnostics.count_flops([nn.Linear(2, 2)], (1, 2))


# --------------------------------------------------------------------------- summary
class _TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 2)  # 8 params
        self.b = nn.Linear(5, 2)  # 12 params

    def forward(self, x, y):
        return self.a(x) + self.b(y)


def test_summary_of_a_model_with_two_inputs():
    text = diagnostics.summary(_TwoInputs(), [(3,), (5,)], device="cpu")
    assert "Total params: 20" in text
    assert re.search(r"Linear-1\s+\[-1, 2\]\s+8", text) and re.search(r"Linear-2\s+\[-1, 2\]\s+12", text)


def test_summary_shows_the_given_batch_size():
    text = diagnostics.summary(nn.Sequential(nn.Conv2d(3, 4, 3)), (3, 8, 8), device="cpu", batch_size=4)
    assert re.search(r"Conv2d-1\s+\[4, 4, 6, 6\]\s+112", text)


def test_summary_wrong_channels_error_shows_the_traced_shape():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with _raises("layer '0' (Conv2d) expects 3 input channels but was given 1 (input shape (2, 1, 8, 8))"):
        diagnostics.summary(model, (1, 8, 8), device="cpu")


def test_summary_refuses_sizes_that_are_not_positive():
    model = nn.Sequential(nn.Conv2d(3, 4, 3))
    with _raises("input_size must be positive ints without the batch dim, e.g. (1, 224, 224); got (3, 0, 8)"):
        diagnostics.summary(model, (3, 0, 8), device="cpu")


def test_summary_of_a_cpu_model_with_device_cuda_says_how_to_fix_it():
    # torch.device('cuda') exists without a GPU: this runs on any machine
    with _raises("the model's parameters are on cpu but device='cuda'; "
                 "move the model (model.to('cuda')) or pass device='cpu'"):
        diagnostics.summary(nn.Sequential(nn.Linear(3, 2)), (3,), device="cuda")


def test_summary_of_a_cpu_model_on_a_machine_with_cuda(monkeypatch):
    # torchsummary on its own (device='cuda' by default) would feed CUDA tensors to the CPU model
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    text = diagnostics.summary(nn.Sequential(nn.Linear(3, 2)), (3,))
    assert "Total params: 8" in text


def test_summary_without_torchsummary_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchsummary", None)  # makes `import torchsummary` fail
    with pytest.raises(ImportError, match=r"^summary\(\) needs torchsummary: pip install torchsummary$"):
        diagnostics.summary(nn.Sequential(nn.Linear(3, 2)), (3,), device="cpu")


def test_new_hooks_of_every_kind_are_removed_and_old_ones_kept():
    model = nn.Sequential(nn.Linear(3, 2))
    old = model[0].register_forward_hook(lambda *a: None, always_call=True)
    before = {m: (set(m._forward_hooks), set(m._forward_pre_hooks)) for m in model.modules()}
    model[0].register_forward_hook(lambda *a: None, always_call=True)
    model[0].register_forward_pre_hook(lambda *a: None)
    model.register_forward_hook(lambda *a: None)
    shapes_and_counts._remove_new_hooks(before)
    assert list(model[0]._forward_hooks) == [old.id]
    assert list(model[0]._forward_hooks_always_called) == [old.id]
    assert not model[0]._forward_pre_hooks and not model._forward_hooks
