"""Lesson 03: the identity experiment, the input-gradient measurement, the twin nets and the explorer.

Expectations are computed here independently of the lesson module: a hand-built
identity block, products of Jacobian matrices, a gradient taken by hand with
autograd on the same batch.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_tutorial.lessons import l03_residual_block as L03


# ---------------------------------------------------------------- the pictures
def test_pictures_are_drawn_from_the_blocks_the_lesson_runs():
    fig = L03.draw_plain_and_residual(channels=16, size=8)
    plain, residual = fig.diagram
    assert plain.shortcut_kind == "none" and residual.shortcut_kind == "identity"
    assert plain.in_shape == residual.out_shape == (16, 8, 8)
    fig3 = L03.draw_shortcut_kinds(16, 32, 28)
    assert [s.shortcut_kind for s in fig3.diagram] == ["identity", "zeropad", "projection"]
    assert [s.out_shape for s in fig3.diagram] == [(16, 28, 28), (32, 14, 14), (32, 14, 14)]
    plt.close("all")


# ---------------------------------------------------------------- learning the identity
def test_plain_and_residual_blocks_start_from_the_same_weights_and_size():
    plain, residual = L03.identity_block("plain", 8), L03.identity_block("residual", 8)
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in residual.parameters()) \
        == 2 * (8 * 8 * 9) + 2 * 2 * 8  # two bias-free 3x3 convs, two BNs (gamma, beta)
    for a, b in zip(plain.parameters(), residual.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="plain"):
        L03.identity_block("dense")


def test_a_residual_block_with_a_zeroed_last_bn_is_exactly_the_identity_on_relu_outputs():
    """What the residual block can reach by shrinking 2C numbers: written out by hand here."""
    block = L03.identity_block("residual", 8).train()
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    x = torch.relu(torch.randn(4, 8, 6, 6))
    h = torch.relu(block.bn1(F.conv2d(x, block.conv1.weight, padding=1)))
    branch = block.bn2(F.conv2d(h, block.conv2.weight, padding=1))
    assert torch.equal(branch, torch.zeros_like(branch))
    assert torch.equal(torch.relu(branch + x), x) and torch.equal(block(x), x)


def test_the_residual_block_learns_the_identity_far_better_than_the_plain_block():
    curves, summary = L03.identity_fit_experiment(steps=120)
    assert list(curves.columns) == ["step", "plain", "residual"] and len(curves) == 120
    # same weights at the start: same parameter count; the losses start in the same range
    assert summary.loc["plain", "params"] == summary.loc["residual", "params"]
    assert 0.2 < summary.loc["plain", "start"] < 2 and 0.2 < summary.loc["residual", "start"] < 2
    # the claim of the lesson, with a wide margin (measured: about 100x at 120 steps)
    assert summary.loc["residual", "final"] < summary.loc["plain", "final"] / 10
    # how: the residual block switched its branch off by shrinking bn2's gamma
    assert summary.loc["residual", "gamma_after"] < 0.3 * summary.loc["residual", "gamma_before"]
    assert summary.loc["residual", "gamma_before"] == 1.0  # BN's default init
    fig = L03.plot_identity_fit(curves)
    lo, hi = fig.axes[0].get_ylim()
    assert lo <= curves[["plain", "residual"]].min().min() and hi >= curves[["plain", "residual"]].max().max()
    plt.close(fig)


def test_fit_identity_rejects_no_steps():
    with pytest.raises(ValueError, match="steps"):
        L03.fit_identity("plain", steps=0)


# ---------------------------------------------------------------- the gradient at a stack's input
def _linear_branches(mats):
    return [lambda h, a=a: h @ a.T for a in mats]


@pytest.mark.parametrize("shortcut", [True, False])
def test_stack_input_gradient_is_a_product_of_jacobians(shortcut):
    g = torch.Generator().manual_seed(0)
    mats = [0.4 * torch.randn(3, 3, generator=g, dtype=torch.float64) for _ in range(4)]
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64)
    jac = eye.clone()
    for a in mats:  # d x_L / d x = prod (I + A_i) with shortcuts, prod A_i without
        jac = ((eye + a) if shortcut else a) @ jac
    expected = torch.ones(5, 3, dtype=torch.float64) @ jac  # L = sum(x_L): dL/dx_L = 1
    before = x.clone()
    got = L03.stack_input_gradient(x, _linear_branches(mats), shortcut=shortcut)
    assert torch.allclose(got, expected)
    assert torch.equal(x, before) and not x.requires_grad


def test_zeroed_branches_pass_exactly_the_shortcut():
    x = torch.randn(4, 16)
    zero = L03.tanh_branches(5, 16, zero=True)
    assert torch.equal(L03.stack_input_gradient(x, zero, shortcut=True), torch.ones(4, 16))
    assert torch.equal(L03.stack_input_gradient(x, zero, shortcut=False), torch.zeros(4, 16))


def test_input_gradient_by_depth_vanishes_only_without_shortcuts():
    t = L03.input_gradient_by_depth((1, 4, 16)).set_index("depth")
    assert (np.diff(t["plain"].to_numpy()) < 0).all()         # shrinks with every added unit
    assert t.loc[16, "plain"] < 1e-3 * t.loc[1, "plain"]
    assert (t["residual"] > 0.5).all()                         # never vanishes
    z = L03.input_gradient_by_depth((1, 4, 16), zero=True)
    assert (z["residual"] == 1.0).all() and (z["plain"] == 0.0).all()
    fig = L03.plot_input_gradient(t.reset_index(), z)
    assert len(fig.axes[0].lines) >= 3
    plt.close(fig)


# ---------------------------------------------------------------- three nets with the same weights
def test_twin_nets_share_every_common_weight():
    nets = L03.twin_nets(14)
    ref = nets["zeropad"].state_dict()
    assert set(nets["none"].state_dict()) == set(ref)
    extra = set(nets["projection"].state_dict()) - set(ref)
    assert extra and all(".shortcut." in k for k in extra)
    for kind in ("projection", "none"):
        state = nets[kind].state_dict()
        for k, v in ref.items():
            assert torch.equal(state[k], v), (kind, k)


def test_explorer_numbers_match_a_gradient_taken_by_hand():
    view = L03.ShortcutExplorer(batch_size=8, depths=[8, 14])
    data = view.depth_data(14)
    net = L03.twin_nets(14)["none"].train()
    loss = F.cross_entropy(net(view.inputs), view.targets)
    stem, fc = torch.autograd.grad(loss, [net.conv1.weight, net.fc.weight])
    assert data["none"]["conv"][0] == pytest.approx(float(stem.norm()), rel=1e-5)
    assert data["none"]["fc"] == pytest.approx(float(fc.norm()), rel=1e-5)
    for kind in view.kinds:
        assert len(data[kind]["conv"]) == 14 - 1  # the stem and 2 convs per block; the fc is apart
    assert len(data["projection"]["short"]) == 2 and len(data["zeropad"]["short"]) == 0
    assert list(data["projection"]["short_x"]) == [1 + 4 + 0.5, 1 + 8 + 0.5]  # beside stage 2's, 3's first conv


def test_explorer_redraws_the_block_and_keeps_every_point_inside_its_axes():
    view = L03.ShortcutExplorer(batch_size=8, depths=[8, 14])
    view.precompute(progress=False)
    fig = view.draw(shortcut="zeropad", depth=14)
    pic_zeropad = np.asarray(view.image.get_array()).copy()
    view.draw(shortcut="projection", depth=14)
    assert not np.array_equal(pic_zeropad, np.asarray(view.image.get_array()))  # the diagram changed
    x_lo, x_hi = view.ax.get_xlim()
    y_lo, y_hi = view.ax.get_ylim()
    for line in view.ax.lines:
        if line in view.stage_lines:  # vertical markers in axes coordinates
            continue
        xs, ys = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        if xs.size:
            assert x_lo <= xs.min() and xs.max() <= x_hi and y_lo <= ys.min() and ys.max() <= y_hi
    # the fc marker is not joined to the conv curve
    conv_x = view.lines["projection"].get_xdata()
    assert max(conv_x) == 12 and list(view.fc["projection"].get_xdata()) == [13]
    assert view.lines["projection"].get_linewidth() > view.lines["zeropad"].get_linewidth()
    with pytest.raises(ValueError, match="shortcut"):
        view.draw(shortcut="identity", depth=14)
    with pytest.raises(ValueError, match="6n"):
        L03.ShortcutExplorer(depths=[10])
    assert fig is view.fig


def test_gradient_spread_plain_spreads_far_more():
    view = L03.ShortcutExplorer(batch_size=8, depths=[38])
    t = L03.gradient_spread(view, depths=(38,))
    plain = t.loc[(L03.SHORTCUT_NAMES["none"], 38), "max / min over convs"]
    res = t.loc[(L03.SHORTCUT_NAMES["zeropad"], 38), "max / min over convs"]
    assert plain > 10 * res
    parts = L03.projection_vs_zeropad(view, 38)
    assert parts["convs"].sum() == 38 - 1
