"""Lesson 03/05/06/09 helpers: the facts the lessons state, and explorers that react."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from resnet_tutorial.lessons import l03_residual_block as L03
from resnet_tutorial.lessons import l05_add_vs_concat as L05
from resnet_tutorial.lessons import l06_bottlenecks as L06
from resnet_tutorial.lessons import l09_torchvision_resnet as L09
from resnet_tutorial.train import train_steps


def _lines(fig: Figure) -> list[np.ndarray]:
    return [np.asarray(line.get_ydata(), dtype=float) for ax in fig.axes for line in ax.lines]


def _differs(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    if len(a) != len(b):
        return True
    return any(x.shape != y.shape or not np.allclose(x, y) for x, y in zip(a, b))


# ---------------------------------------------------------------- lesson 03
def test_post_blocks_differ_by_biases_and_shortcut_bn():
    t = L03.compare_post_blocks(64, 128, 2).set_index("block")
    assert t.loc["post 000 Residual", "conv_bias"] == 128 + 128 + 128
    assert t.loc["torchvision BasicBlock", "conv_bias"] == 0
    assert not t.loc["post 000 Residual", "shortcut_bn"]
    assert t.loc["post 002 BasicBlock", "shortcut_bn"]
    # post 002 = post 000 + a BN (2 x 128) in the shortcut
    assert t.loc["post 002 BasicBlock", "total"] - t.loc["post 000 Residual", "total"] == 256
    # torchvision = post 002 without the 3 conv biases
    assert t.loc["post 002 BasicBlock", "total"] - t.loc["torchvision BasicBlock", "total"] == 384


def test_shortcut_table_costs():
    t = L03.shortcut_table(16, 32, 2).set_index("shortcut")
    assert not t.loc["identity", "works"] and "projection" in t.loc["identity", "note"]
    assert t.loc["zeropad", "shortcut_params"] == 0
    assert t.loc["projection", "shortcut_params"] == 16 * 32 + 2 * 32
    assert t.loc["zeropad", "output_shape"] == (2, 32, 14, 14)


@pytest.mark.parametrize("zero_branch", [False, True])
def test_shortcut_gradient_identity(zero_branch):
    r = L03.shortcut_gradient_check(zero_branch=zero_branch)
    assert r["max_abs_error"] < 1e-4
    assert r["full_norm"] > 0
    if zero_branch:
        assert r["branch_norm"] == 0
        assert torch.equal(r["full"], r["shortcut"])
    else:
        assert r["branch_norm"] > 0.1 * r["shortcut_norm"]  # the branches really add something


def _numerical_directional_derivative(shortcut: str, v: torch.Tensor, h: float = 1e-5) -> float:
    """<dL/dx, v> by central differences in float64, L = <w, stack(x)> with shortcut_gradient_check's x and w."""
    stack = L03.block_stack(4, 8, shortcut, 0).train().double()
    g = torch.Generator().manual_seed(1)  # shortcut_gradient_check draws x, then w, from seed + 1
    x = torch.randn(4, 8, 6, 6, generator=g).double()
    w = torch.randn(4, 8, 6, 6, generator=g).double()
    with torch.no_grad():
        return float(((stack(x + h * v) - stack(x - h * v)) * w).sum() / (2 * h))


@pytest.mark.parametrize("shortcut", ["identity", "none"])
def test_shortcut_gradient_check_against_a_numerical_gradient(shortcut):
    """CS231n's check: the autograd gradient agrees with central differences along random directions;
    the identity-path formula w + (branch terms) agrees too with shortcuts and is far off without them."""
    r = L03.shortcut_gradient_check(shortcut=shortcut)
    formula = (r["shortcut"] + r["branch"]).double()
    g = torch.Generator().manual_seed(5)
    for _ in range(3):
        v = torch.randn(4, 8, 6, 6, generator=g, dtype=torch.float64)
        numeric = _numerical_directional_derivative(shortcut, v)
        assert float((r["full"].double() * v).sum()) == pytest.approx(numeric, rel=1e-3, abs=1e-3)
        if shortcut == "identity":
            assert float((formula * v).sum()) == pytest.approx(numeric, rel=1e-3, abs=1e-3)
        else:
            assert abs(float((formula * v).sum()) - numeric) > 0.2 * abs(numeric) + 1.0


def test_shortcut_explorer_reacts():
    a = _lines(L03.draw_shortcut_explorer("zeropad", 8, batch_size=8))
    b = _lines(L03.draw_shortcut_explorer("none", 14, batch_size=8))
    assert _differs(a, b)  # the curves get longer with depth (more tests in tests/test_l03_residual_block.py)


def test_plain_gradients_spread_more_than_residual():
    res = L03.shortcut_grad_norms("zeropad", 56, batch_size=16)["grad_norm"].to_numpy()
    plain = L03.shortcut_grad_norms("none", 56, batch_size=16)["grad_norm"].to_numpy()
    spread = lambda g: np.log10(g.max() / g.min())  # noqa: E731
    assert spread(plain) > spread(res) + 1


# ---------------------------------------------------------------- lesson 05
def test_merge_shapes_and_downstream_params():
    t = L05.merge_shapes(64, 8)
    shapes = dict(zip(t["expression"], t["shape"]))
    assert shapes["x + y"] == (1, 64, 8, 8)
    assert shapes["torch.cat([x, y], dim=1)"] == (1, 128, 8, 8)
    assert "RuntimeError" in shapes["x + z (128 channels)"]
    d = L05.downstream_params(64).set_index("merge")
    assert d.loc["cat", "next_conv_params"] == 2 * d.loc["add", "next_conv_params"]


def test_cat_network_has_more_parameters_and_double_channels():
    t = L05.network_table(8)
    add = t[(t["merge"] == "add") & (t["layer"] != "fc")]
    cat = t[(t["merge"] == "cat") & (t["layer"] != "fc")]
    assert len(add) == len(cat) == 3
    assert list(cat.out_channels) == [2 * c for c in add.out_channels]
    assert cat.params.sum() > add.params.sum()


def test_merge_explorer_reacts():
    a = _lines(L05.draw_merge_explorer("add", depth=8, batch_size=8))
    b = _lines(L05.draw_merge_explorer("cat", depth=14, batch_size=8))
    assert _differs(a, b)


def test_inception_and_densenet_bookkeeping():
    inc = L05.inception_bookkeeping()
    assert inc.channels.iloc[-1] == inc.channels.iloc[:-1].sum() == 256
    dense = L05.densenet_bookkeeping()
    assert list(dense.channels_in[:6]) == [64 + 32 * i for i in range(6)]
    assert dense.channels_in.iloc[-1] == 256


def test_compare_add_cat_trains_both():
    h = L05.compare_add_cat(depth=8, epochs=2, per_class=10, test_per_class=5,
                              batch_size=20, progress=False)
    assert set(h["merge"]) == {"add", "cat"}
    for _, g in h.groupby("merge"):
        assert g.train_loss.iloc[-1] < g.train_loss.iloc[0]
    assert h[h["merge"] == "cat"].params.iloc[0] > h[h["merge"] == "add"].params.iloc[0]


# ---------------------------------------------------------------- lesson 06
def test_chaining_conv_blocks_fails_with_clear_message():
    assert "IdentityBlock(256)" in L06.chain_conv_blocks(64, 64)


def test_torchvision_resnet50_parity():
    r = L06.torchvision_parity(50, input_size=32)
    assert r["params_ours"] == r["params_torchvision"] == 25_557_032
    assert r["max_abs_diff"] == 0.0


def test_block_comparison_bottleneck_is_cheap():
    t = L06.block_comparison(size=14).set_index("block")
    basic64, bott, basic256 = (t.loc["basic block, 64 ch"], t.loc["bottleneck 256→64→64→256"],
                               t.loc["basic block, 256 ch"])
    assert bott.params == 256 * 64 + 9 * 64 * 64 + 64 * 256 + 2 * (64 + 64 + 256)
    assert bott.params < 1.2 * basic64.params < basic256.params / 10
    # multiply-adds counted by hand on a 14x14 map: outputs x (input channels x kernel area) per conv
    hw = 14 * 14
    assert basic64.macs == 2 * hw * 64 * (64 * 9)
    assert bott.macs == hw * (64 * 256 + 64 * (64 * 9) + 256 * 64)
    assert basic256.macs == 2 * hw * 256 * (256 * 9)
    assert t.flops.tolist() == [2 * 14_450_688, 2 * 13_647_872, 2 * 231_211_008]  # FLOPs: 2 per multiply-add


def test_stage_costs():
    t = L06.stage_costs(18, input_size=64)
    assert list(t.stage) == list(L06.STAGES)
    assert t.params.sum() == 11_689_512
    # the stem: a 7x7 conv 3 -> 64 on a 32x32 output (64 px input, stride 2), counted by hand
    assert t.set_index("stage").loc["stem", "macs"] == 7 * 7 * 3 * 64 * 32 * 32
    with pytest.raises(ValueError, match="depth must be one of"):
        L06.stage_costs(20)


# ---------------------------------------------------------------- lesson 09
def test_weights_are_never_downloaded_when_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert not L09.weights_cached("DEFAULT")

    def no_download(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    model, w, msg = L09.load_resnet50("DEFAULT", num_classes=10)
    assert w is None and "not cached" in msg
    assert model.fc.out_features == 10


def test_adapted_conv1_keeps_gray_response():
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(weights=None).eval()
    gray = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        before = model(gray.expand(-1, 3, -1, -1))
        L09.adapt_input_channels(model, 1)
        after = model(gray)
    assert model.conv1.in_channels == 1
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)


def test_feature_map_sizes_unmodified_vs_adapted():
    from torchvision.models import resnet50

    model = L09.adapt_input_channels(resnet50(weights=None, num_classes=10), 1)
    t = L09.feature_map_sizes(model, 28).set_index("stage")
    assert t.loc["layer4", "height"] == 1 and t.loc["maxpool", "height"] == 7
    L09.adapt_for_small_images(model)
    t = L09.feature_map_sizes(model, 28).set_index("stage")
    assert t.loc["layer4", "height"] == 4 and t.loc["maxpool", "height"] == 28
    a = _lines(L09.draw_feature_map_sizes(28))
    b = _lines(L09.draw_feature_map_sizes(96))
    assert _differs(a, b)


@pytest.mark.parametrize("size", [17, 28, 33, 64, 224])
def test_stage_size_formula_equals_the_traced_net(size):
    """The explorer's formula against hooks on a real torchvision net, both stems."""
    from torchvision.models import resnet18

    model = L09.adapt_input_channels(resnet18(weights=None, num_classes=10), 1)
    assert L09.stage_sizes(size) == L09.feature_map_sizes(model, size)["height"].tolist()
    L09.adapt_for_small_images(model)
    assert L09.stage_sizes(size, adapted=True) == L09.feature_map_sizes(model, size)["height"].tolist()
    assert L09.stage_sizes(224)[-1] == 7 and L09.stage_sizes(33)[-1] == 2 and L09.stage_sizes(32)[-1] == 1


def test_freeze_backbone_trains_only_fc():
    from torchvision.models import resnet18

    model = L09.adapt_input_channels(resnet18(weights=None, num_classes=10), 1)
    bn_count = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    L09.freeze_backbone(model)
    assert L09.trainable_params(model) == 512 * 10 + 10
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    backbone = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    fc = model.fc.weight.clone()
    losses = train_steps(model, (torch.randn(8, 1, 32, 32), torch.arange(8)), 2, optimizer="adamw", lr=1e-2)
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in backbone.items())  # BN statistics too
    assert not torch.equal(model.fc.weight, fc)
    assert bn_count == 20 and len(losses) == 2


def test_freeze_without_bn_stats_lets_running_stats_move():
    from torchvision.models import resnet18

    model = L09.freeze_backbone(resnet18(weights=None, num_classes=10), freeze_bn_stats=False)
    before = model.bn1.running_mean.clone()
    model.train()
    model(torch.randn(4, 3, 32, 32))
    assert not torch.equal(model.bn1.running_mean, before)
