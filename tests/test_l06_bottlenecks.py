"""Lesson 06's block designer, cost tables and diagrams.

Expectations are independent of the code under test: the formulas are checked
against real modules (parameters counted by PyTorch, MACs by FlopCounterMode),
and the break-even reduction factor against the inequality worked out by hand.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_tutorial.blocks import BasicBlock, Bottleneck
from resnet_tutorial.diagnostics import count_flops
from resnet_tutorial.lessons import l06_bottlenecks as L06


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _macs(module: nn.Module, channels: int, size: int) -> int:
    module.eval()
    with torch.no_grad():
        return count_flops(module, torch.randn(1, channels, size, size))["macs"]


def _hand_bottleneck(channels: int, width: int) -> nn.Sequential:
    """A bottleneck's main path written out layer by layer (any inner width)."""
    return nn.Sequential(
        nn.Conv2d(channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, channels, 1, bias=False), nn.BatchNorm2d(channels))


@pytest.mark.parametrize("channels,size", [(16, 8), (64, 7), (40, 5)])
def test_basic_block_cost_matches_the_module(channels: int, size: int) -> None:
    block = BasicBlock(channels, channels)
    assert L06.basic_block_cost(channels, size) == {"params": _params(block), "macs": _macs(block, channels, size)}


@pytest.mark.parametrize("channels,width,size", [(256, 64, 7), (64, 64, 4), (96, 32, 6), (48, 16, 5)])
def test_bottleneck_cost_matches_the_modules(channels: int, width: int, size: int) -> None:
    hand = _hand_bottleneck(channels, width)
    expected = {"params": _params(hand), "macs": _macs(hand, channels, size)}
    assert L06.bottleneck_cost(channels, width, size) == expected
    if channels % 4 == 0 and width * 4 == channels:  # torchvision's own block: width = planes
        tv = Bottleneck(channels, channels // 4)
        assert expected == {"params": _params(tv), "macs": _macs(tv, channels, size)}


def test_bad_designs_raise() -> None:
    with pytest.raises(ValueError, match="must not exceed"):
        L06.bottleneck_cost(64, 128)
    with pytest.raises(ValueError, match="positive whole number"):
        L06.basic_block_cost(0)
    with pytest.raises(ValueError, match="at least the largest reduction"):
        L06.reduction_sweep(8)
    with pytest.raises(ValueError, match="'macs' or 'params'"):
        L06.break_even_reduction(256, measure="flops")


def test_reduction_sweep_rows() -> None:
    sweep = L06.reduction_sweep(256, 14)
    assert sweep["reduction"].tolist() == list(range(1, 17))
    assert sweep["width"].tolist() == [256 // r for r in range(1, 17)]
    assert sweep["basic_full_macs"].nunique() == 1
    row = sweep.set_index("reduction").loc[4]
    assert row["bottleneck_macs"] == 14 * 14 * (256 * 64 + 9 * 64 * 64 + 64 * 256)
    assert row["basic_inner_macs"] == 14 * 14 * 2 * 9 * 64 * 64


def test_break_even_is_where_two_one_by_ones_outweigh_the_saved_three_by_three() -> None:
    # Bottleneck C -> w -> C: 2Cw + 9w² MACs per position; a basic block at w: 18w².
    # It costs more once 2C >= 9w. For C = 1024: r = 4 (w = 256): 2048 < 2304, cheaper;
    # r = 5 (w = 204): 2048 >= 1836, dearer.
    assert L06.break_even_reduction(1024) == 5
    for channels in (64, 256, 2048):
        first = next(r for r in range(1, 17) if 2 * channels >= 9 * (channels // r))
        assert L06.break_even_reduction(channels, 7) == first
    # BN's parameters are linear in the width: they do not move the break-even at these widths
    assert L06.break_even_reduction(256, measure="params") == 5


def test_block_designer_shows_the_costs() -> None:
    view = L06.BlockDesigner()
    fig = view.draw(channels=256, reduction=4, size=56)
    params_ax, macs_ax, ratio_ax = fig.axes
    heights = [b.get_height() for b in params_ax.patches]
    assert heights == [_params(BasicBlock(256, 256)),
                       _params(Bottleneck(256, 64)), _params(BasicBlock(64, 64))]
    macs = [b.get_height() for b in macs_ax.patches]
    assert macs[1] == 56 * 56 * (256 * 64 + 9 * 64 * 64 + 64 * 256)
    dot = ratio_ax.lines[-1]
    assert list(dot.get_xdata()) == [4]
    assert dot.get_ydata()[0] == pytest.approx((2 * 256 * 64 + 9 * 64 * 64) / (18 * 64 * 64))
    assert "cheaper" in ratio_ax.get_title()
    # a smaller map moves the MACs bars (by 4x per halving), never the parameter bars
    view.draw(channels=256, reduction=4, size=28)
    assert [b.get_height() for b in params_ax.patches] == heights
    assert [b.get_height() for b in macs_ax.patches] == [m / 4 for m in macs]
    # every bar stays inside the fixed axes at the extreme settings
    for channels, reduction, size in ((2048, 1, 112), (64, 16, 7)):
        view.draw(channels=channels, reduction=reduction, size=size)
        for ax in (params_ax, macs_ax):
            lo, hi = ax.get_ylim()
            assert all(lo < b.get_height() < hi for b in ax.patches)
    view.draw(channels=256, reduction=8, size=56)
    assert "dearer" in ratio_ax.get_title()
    with pytest.raises(ValueError, match="reduction must be one of"):
        view.draw(channels=256, reduction=17, size=56)


def test_comparison_blocks_are_drawn_and_measured() -> None:
    fig = L06.draw_comparison_blocks(size=14)
    specs = fig.diagram
    widths = [[layer.channels for layer in spec.main if layer.kind == "conv"] for spec in specs]
    assert widths == [[64, 64], [64, 64, 256], [256, 256]]
    assert [spec.in_shape for spec in specs] == [(64, 14, 14), (256, 14, 14), (256, 14, 14)]
    table = L06.block_comparison(size=14)
    assert table["params"].tolist() == [_params(m) for _, m, _ in L06.comparison_blocks()]


def test_depth_summary_and_stage_figure() -> None:
    tables = {d: L06.stage_costs(d, input_size=64) for d in (18, 50)}
    summary = L06.depth_summary(tables)
    assert summary.loc["ResNet-50", "blocks per stage"] == "3/4/6/3"
    assert summary.loc["ResNet-18", "block"] == "basic"
    assert summary.loc["ResNet-50", "params (M)"] == round(25_557_032 / 1e6, 2)
    assert summary.loc["ResNet-50", "output of layer4"] == "2048×2×2"
    fig = L06.draw_stage_costs(tables)
    bars = [b.get_height() for b in fig.axes[0].patches]
    assert len(bars) == 2 * len(L06.STAGES)
    assert sum(bars) == pytest.approx((11_689_512 + 25_557_032) / 1e6)


def test_v1_moves_the_stride_to_the_first_one_by_one_conv() -> None:
    from resnet_tutorial.models import create_model

    x = torch.randn(1, 3, 64, 64)  # stage inputs: layer2 16x16, layer3 8x8, layer4 4x4
    deltas = {}
    for depth in (50, 101):
        v15 = count_flops(create_model(f"resnet{depth}").eval(), x)["macs"]
        v1_model = L06.to_v1(create_model(f"resnet{depth}")).eval()
        assert v1_model(x).shape == (1, 1000)
        deltas[depth] = v15 - count_flops(v1_model, x)["macs"]
    # v1.5's first 1x1 conv (C_in -> w) runs on the full map H², v1's on (H/2)²: C_in·w·(H² - H²/4) per stage
    by_hand = sum(c_in * w * (h * h - (h // 2) ** 2) for c_in, w, h in ((256, 128, 16), (512, 256, 8), (1024, 512, 4)))
    assert deltas == {50: by_hand, 101: by_hand}
    basic = create_model("resnet18")
    before = count_flops(basic, x)["macs"]
    assert count_flops(L06.to_v1(basic), x)["macs"] == before
