"""Lesson 05's control experiment (a 1x1 conv in every block), its explorer and its helpers.

Expected values are counted by hand or measured by a separate path (a fresh
backward pass, PyTorch's own parameter count), never read back from the code
under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from resnet_tutorial.blocks import ResidualBlock
from resnet_tutorial.lessons import l05_add_vs_concat as L05


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_add_net_parameters_counted_by_hand():
    # depth 8: stem conv 1->16 + BN, then one block per stage (16, 32, 64 channels), fc 64->10
    stem = 9 * 16 + 2 * 16
    block1 = 2 * 9 * 16 * 16 + 2 * 2 * 16                           # identity shortcut
    block2 = 9 * 16 * 32 + 9 * 32 * 32 + 2 * 2 * 32 + 16 * 32 + 2 * 32  # 1x1 projection + BN
    block3 = 9 * 32 * 64 + 9 * 64 * 64 + 2 * 2 * 64 + 32 * 64 + 2 * 64
    fc = 64 * 10 + 10
    totals = L05.param_totals((8,))
    assert totals.loc[8, "add"] == stem + block1 + block2 + block3 + fc == 77_754
    # the cat net: block1 emits 32 channels, block2 reads 32 and emits 64, block3 reads 64 and emits 128
    cat_block1 = block1
    cat_block2 = 9 * 32 * 32 + 9 * 32 * 32 + 2 * 2 * 32 + 32 * 32 + 2 * 32
    cat_block3 = 9 * 64 * 64 + 9 * 64 * 64 + 2 * 2 * 64 + 64 * 64 + 2 * 64
    assert totals.loc[8, "cat"] == stem + cat_block1 + cat_block2 + cat_block3 + 128 * 10 + 10
    assert totals.loc[8, "cat / add"] == pytest.approx(totals.loc[8, "cat"] / totals.loc[8, "add"])


def test_project_every_block_leaves_no_identity_and_adds_a_1x1_conv_each():
    plain = L05.merge_network("add", 14)
    projected = L05.merge_network("add", 14, shortcuts="every block")
    identities = [b for b in plain.blocks() if isinstance(b.shortcut, nn.Identity)]
    assert len(identities) == 4                       # two blocks per stage, the first of stages 2 and 3 project
    assert not any(isinstance(b.shortcut, nn.Identity) for b in projected.blocks())
    extra = sum(b.in_channels * b.branch_channels + 2 * b.branch_channels for b in identities)
    assert _params(projected) - _params(plain) == extra
    x = torch.randn(2, 1, 28, 28)
    assert projected(x).shape == plain(x).shape == (2, 10)


def test_bad_shortcuts_and_depth_are_refused():
    with pytest.raises(ValueError, match="shortcuts must be one of"):
        L05.merge_network("add", 8, shortcuts="always")
    with pytest.raises(ValueError, match="6n\\+2"):
        L05.MergeExplorer(batch_size=4, depths=[10])
    with pytest.raises(ValueError, match="merge must be"):
        L05.MergeExplorer(batch_size=4, depths=[8]).draw(merge="mul", depth=8)


def test_block_input_gradients_match_a_separate_backward_pass():
    from resnet_tutorial.data import fashion_batch

    x, y = fashion_batch(8, 0)
    table = L05.block_input_grad_norms("cat", 14, batch_size=8)
    net = L05.merge_network("cat", 14).train()
    # feed block 3's input by hand: run the stem and the first blocks, then the rest
    stem = net.act1(net.bn1(net.conv1(x)))
    blocks = net.blocks()
    h = blocks[1](blocks[0](stem))
    h.retain_grad()
    out = h
    for b in blocks[2:]:
        out = b(out)
    logits = net.fc(torch.flatten(net.avgpool(net.final_norm(out)), 1))
    nn.functional.cross_entropy(logits, y).backward()
    assert table.loc[2, "grad_norm"] == pytest.approx(float(h.grad.norm()), rel=1e-4)
    assert list(table["shortcut"]) == ["identity"] + ["1x1 projection"] * 5   # only the cat net's first block
    assert list(table["params"]) == [_params(b) for b in blocks]


def test_explorer_draws_the_chosen_net_and_every_control_changes_it():
    view = L05.MergeExplorer(batch_size=8, depths=[8, 14])
    fig = view.draw(merge="cat", shortcuts="where needed", depth=14)
    measured = L05.block_input_grad_norms("cat", 14, batch_size=8)
    assert np.allclose(view.line.get_ydata(), measured["grad_norm"])
    assert len(view.ident.get_xdata()) == 1 and len(view.proj.get_xdata()) == 5
    reference = L05.block_input_grad_norms("add", 14, batch_size=8)
    assert np.allclose(view.ref_line.get_ydata(), reference["grad_norm"])
    ymin, ymax = view.grad_ax.get_ylim()
    assert ymin <= measured["grad_norm"].min() and ymax >= measured["grad_norm"].max()
    spread = measured["grad_norm"].iloc[0] / measured["grad_norm"].iloc[-1]
    assert f"×{spread:,.0f}" in view.grad_title.get_text()
    before = {"grad": view.line.get_ydata().copy(), "params": np.asarray(view.params.get_ydata()).copy()}
    view.draw(merge="add", shortcuts="where needed", depth=14)      # the merge changes the net
    assert not np.allclose(view.line.get_ydata(), before["grad"])
    assert np.asarray(view.params.get_ydata()).sum() < before["params"].sum()
    view.draw(merge="add", shortcuts="every block", depth=14)       # the shortcuts change it
    assert len(view.ident.get_xdata()) == 0 and len(view.proj.get_xdata()) == 6
    view.draw(merge="add", shortcuts="every block", depth=8)        # and the depth
    assert len(view.line.get_xdata()) == 3
    assert "8 layers" in fig._suptitle.get_text()


def test_explorer_frames_blit_when_only_the_toggle_moves():
    view = L05.MergeExplorer(batch_size=8, depths=[8]).precompute(progress=False)
    view.go_live()
    view.frame(merge="cat", shortcuts="where needed", depth=8)
    view.frame(merge="add", shortcuts="every block", depth=8)
    assert view.full_draws == 1 and view.blits == 1


def test_gradient_measures_use_the_same_batch_as_the_block_gradients():
    table = L05.gradient_measures(depth=14, batch_size=8)
    g = L05.block_input_grad_norms("add", 14, batch_size=8)["grad_norm"]
    assert table.loc["add", "input gradient, first ÷ last block"] == pytest.approx(g.iloc[0] / g.iloc[-1], rel=1e-4)
    assert (table > 0).all().all()


def test_merge_blocks_are_the_nets_blocks():
    (add, cat), shapes = L05.merge_blocks(14, size=8)
    assert isinstance(add.shortcut, nn.Identity) and not isinstance(cat.shortcut, nn.Identity)
    assert shapes == [(16, 8, 8), (32, 8, 8)]
    assert cat(torch.randn(1, *shapes[1])).shape == (1, 32, 8, 8)
    assert isinstance(add, ResidualBlock) and cat.merge == "cat"


def test_final_accuracy_and_live_plot():
    rows = [{"merge": m, "seed": s, "epoch": e, "params": p, "test_acc": a, "train_loss": 1.0 / e,
             "test_loss": 5.5 if e == 1 else 0.5, "seconds": 2.0}
            for m, p, accs in (("add", 10, (0.80, 0.84)), ("cat", 15, (0.78, 0.86)))
            for s, a in enumerate(accs) for e in (1, 2)]
    table = pd.DataFrame(rows)
    final = L05.final_accuracy(table)
    assert final.loc["add", "test_acc_mean"] == pytest.approx(0.82)
    assert (final.loc["cat", "test_acc_min"], final.loc["cat", "test_acc_max"]) == (0.78, 0.86)
    fig = L05.plot_live_runs(table[table["seed"] == 0])
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_yscale() == "log"
    low, high = loss_ax.get_ylim()
    assert low <= 0.5 and high >= 5.5                       # the early test loss and the rest both on the axis
    assert acc_ax.get_ylim() == (0, 100)
