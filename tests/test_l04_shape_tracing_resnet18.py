"""Lesson 04's new parts: the hook tracer, the stage profile per stem, and the stage-size explorer.

Expectations come from independent sources: the real torchvision network traced
by ``diagnostics.trace_shapes`` (its own hooks) and counted by
``diagnostics.count_flops`` (PyTorch's FlopCounterMode), never from the
formula under test.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

from resnet_tutorial.diagnostics import count_flops, trace_shapes  # noqa: E402
from resnet_tutorial.lessons import l04_shape_tracing_resnet18 as L04  # noqa: E402

_SPATIAL = ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool")


def _hooks_left(model: nn.Module) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


# ----------------------------------------------------------------- the hook tracer
def test_trace_layer_shapes_equals_trace_shapes_leaf_rows() -> None:
    net = torchvision.models.resnet18(weights=None, num_classes=7).eval()
    x = torch.randn(3, 3, 40, 40)
    want = [(r.name, r.output_shape) for r in trace_shapes(net, x, leaves_only=True).itertuples()]
    got = L04.trace_layer_shapes(net, x)
    assert got == want
    assert got[0] == ("conv1", (3, 64, 20, 20)) and got[-1] == ("fc", (3, 7))
    assert [n for n, _ in got].count("layer3.0.relu") == 2  # a block's ReLU runs twice
    assert not _hooks_left(net)


def test_trace_layer_shapes_removes_its_hooks_when_the_forward_pass_fails() -> None:
    net = torchvision.models.resnet18(weights=None).eval()
    with pytest.raises(RuntimeError):
        L04.trace_layer_shapes(net, torch.randn(1, 1, 32, 32))  # 1 channel into an RGB stem
    assert not _hooks_left(net)


# ----------------------------------------------------------------- the profile
@pytest.mark.parametrize("stem", sorted(L04.STEMS))
def test_profile_matches_the_traced_and_counted_network(stem: str) -> None:
    model = L04.stem_model(stem)
    for size in (16, 33, 97):
        profile = L04.resnet18_profile(size, stem).set_index("stage")
        traced = {r.name: r.output_shape for r in trace_shapes(model, (1, 3, size, size), depth=1).itertuples()}
        for stage in _SPATIAL:
            assert profile.loc[stage, "size"] == traced[stage][-1], (stem, size, stage)
            assert profile.loc[stage, "channels"] == traced[stage][1], (stem, size, stage)
        counted = count_flops(model, (1, 3, size, size))
        for stage, flops in counted["per_child"].items():  # bn1 and relu: no multiply-adds, no row in the profile
            assert (profile.loc[stage, "macs"] if stage in profile.index else 0) == flops // 2, (stem, size, stage)
        assert profile["macs"].sum() == counted["macs"]


def test_profile_of_the_standard_network_at_224() -> None:
    profile = L04.resnet18_profile(224).set_index("stage")
    assert profile.loc[list(_SPATIAL), "size"].tolist() == [112, 56, 56, 28, 14, 7, 1]  # He et al., Table 1
    # conv1 by hand: 7*7 * 3 * 64 weights, applied at 112*112 positions
    assert profile.loc["conv1", "macs"] == 7 * 7 * 3 * 64 * 112 * 112
    assert profile.loc["fc", "macs"] == 512 * 1000
    assert profile["macs"].sum() == count_flops(torchvision.models.resnet18(weights=None), (1, 3, 224, 224))["macs"]


def test_stage_sizes_keep_their_old_interface_and_refuse_unknown_stems() -> None:
    assert L04.resnet_stage_sizes(224, 3)["size"].tolist() == [224, 75, 38, 38, 19, 10, 5, 1]
    assert L04.resnet_stage_sizes(28, "small")["size"].tolist() == [28, 28, 28, 28, 14, 7, 4, 1]
    with pytest.raises(ValueError, match="unknown stem"):
        L04.resnet18_profile(224, "cifar")
    with pytest.raises(ValueError, match="stride"):
        L04.resnet18_profile(224, 0)


def test_stem_model_builds_each_stem() -> None:
    standard = L04.stem_model("imagenet")
    reference = torchvision.models.resnet18(weights=None)
    assert [(n, p.shape) for n, p in standard.named_parameters()] == [(n, p.shape) for n, p in reference.named_parameters()]
    small = L04.stem_model("small", in_channels=1)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1) and small.conv1.in_channels == 1
    assert isinstance(small.maxpool, nn.Identity)
    assert isinstance(L04.stem_model("stride3").maxpool, nn.MaxPool2d)


def test_profile_check_reports_agreement() -> None:
    table = L04.profile_check(stems=("imagenet", "small"), sizes=(28,))
    assert table["agree"].all() and len(table) == 2
    assert table.set_index("stem").loc["small", "layer4 size (traced)"] == 4


# ----------------------------------------------------------------- the explorer
def test_explorer_shows_the_profile_and_covers_it_with_its_axes() -> None:
    view = L04.StageSizeExplorer()
    for size, stem in ((28, "imagenet"), (16, "stride3"), (320, "small"), (224, "nopool")):
        view.draw(input_size=size, stem=stem)
        profile = L04.resnet18_profile(size, stem).set_index("stage")
        sizes = profile.loc[["input", *_SPATIAL], "size"].astype(float).to_numpy()
        np.testing.assert_array_equal(view.line.get_ydata(), sizes)
        macs = profile.loc[["conv1", "layer1", "layer2", "layer3", "layer4", "fc"], "macs"].to_numpy(float)
        np.testing.assert_array_equal([b.get_height() for b in view.bars], macs)
        lo, hi = view.a0.get_ylim()
        assert lo < sizes.min() and sizes.max() * 1.12 < hi  # the value labels sit above the points
        lo, hi = view.a1.get_ylim()
        assert lo < macs.min() and macs.max() < hi
        h4 = int(profile.loc["layer4", "size"])
        assert f"layer4 sees {h4}×{h4}" in view.suptitle.get_text()


def test_explorer_frames_follow_the_controls_and_keep_the_axes() -> None:
    view = L04.StageSizeExplorer()
    view.draw()
    view.go_live()
    first = view.frame(input_size=28, stem="imagenet")
    frames = [view.frame(input_size=s, stem=stem) for s in (64, 160, 320) for stem in L04.STEMS]
    assert len(set(frames)) == len(frames) and first not in frames
    assert view.full_draws == 1 and view.blits == len(frames)  # fixed axes: every move redraws only the data


def test_standard_band_stays_visible_where_the_choice_coincides_with_it() -> None:
    """At 224 px with the ImageNet stem the blue line runs inside the grey band: the band's pixels still show."""
    view = L04.StageSizeExplorer()
    fig = view.draw(input_size=224, stem="imagenet")
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(int)
    x0, y0, x1, y1 = view.a0.get_window_extent().extents.astype(int)
    height = rgb.shape[0]
    panel = rgb[height - y1:height - y0, x0:x1]
    grey = (np.ptp(panel, axis=2) < 6) & (panel[:, :, 0] > 200) & (panel[:, :, 0] < 228)  # band: ~215, grid ~237
    assert grey.sum() > 2000
    band, choice = view.a0.lines[0], view.line
    assert band.get_linewidth() > 3 * choice.get_linewidth() and band.get_zorder() < choice.get_zorder()
