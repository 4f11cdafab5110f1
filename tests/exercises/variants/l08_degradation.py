"""Lesson 08: degradation_or_overfitting, deepen_with_identity_blocks."""

import copy

import torch
from torch import nn

from resnet_tutorial.blocks import ResidualBlock

from . import right, wrong


# --------------------------------------------------------------------------- degradation_or_overfitting
@right("the lesson's solution")
def degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep):
    if train_err_deep > train_err_shallow:
        return "degradation"
    if test_err_deep > test_err_shallow:
        return "overfitting"
    return "deeper is better"


@right("one conditional expression")
def degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep):
    return ("degradation" if train_err_deep > train_err_shallow
            else "overfitting" if test_err_deep > test_err_shallow else "deeper is better")


@right("named booleans")
def degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep):
    fits_worse = train_err_deep - train_err_shallow > 0
    tests_worse = test_err_deep - test_err_shallow > 0
    if fits_worse:
        return "degradation"
    return "overfitting" if tests_worse else "deeper is better"


@wrong("judged from the test errors only", mistake="test_only")
def degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep):
    if test_err_deep > test_err_shallow:
        return "degradation"
    return "deeper is better"


@wrong("the two words swapped", mistake="swapped")
def degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep):
    if train_err_deep > train_err_shallow:
        return "overfitting"
    if test_err_deep > test_err_shallow:
        return "degradation"
    return "deeper is better"


@wrong("overfitting checked before degradation", mistake="overfitting_first")
def degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep):
    if test_err_deep > test_err_shallow:
        return "overfitting"
    if train_err_deep > train_err_shallow:
        return "degradation"
    return "deeper is better"


@wrong("compares the train-test gaps", mistake="gap")
def degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep):
    if train_err_deep > train_err_shallow:
        return "degradation"
    if test_err_deep - train_err_deep > test_err_shallow - train_err_shallow:
        return "overfitting"
    return "deeper is better"


@wrong("capitalized words", mistake="spelling")
def degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep):
    if train_err_deep > train_err_shallow:
        return "Degradation"
    if test_err_deep > test_err_shallow:
        return "Overfitting"
    return "Deeper is better"


@wrong("never says overfitting", mistake="never_overfitting")
def degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep):
    if train_err_deep > train_err_shallow or test_err_deep > test_err_shallow:
        return "degradation"
    return "deeper is better"


# --------------------------------------------------------------------------- deepen_with_identity_blocks
@right("the lesson's solution")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[-1].out_channels
    new = []
    for _ in range(extra):
        block = ResidualBlock(c, c)
        block.zero_init_residual()
        new.append(block)
    return nn.Sequential(*shallow, *new)


@right("zeroes the last BN's gamma and beta by hand")
def deepen_with_identity_blocks(shallow, extra):
    blocks = list(shallow.children())
    c = blocks[-1].out_channels
    for _ in range(extra):
        b = ResidualBlock(c, c)
        with torch.no_grad():
            b.bn2.weight.zero_()
            b.bn2.bias.zero_()
        blocks.append(b)
    return nn.Sequential(*blocks)


@right("a deep copy of the shallow net, then the new blocks")
def deepen_with_identity_blocks(shallow, extra):
    deep = copy.deepcopy(shallow)
    c = shallow[-1].out_channels
    for _ in range(extra):
        block = ResidualBlock(c, c)
        block.zero_init_residual()
        deep.append(block)
    return deep


@right("zeroes the branch's last conv instead")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[-1].out_channels
    new = []
    for _ in range(extra):
        block = ResidualBlock(c, c)
        nn.init.zeros_(block.conv2.weight)
        new.append(block)
    return nn.Sequential(*list(shallow), *new)


@wrong("new blocks keep their random weights", mistake="random_extra")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[-1].out_channels
    return nn.Sequential(*shallow, *[ResidualBlock(c, c) for _ in range(extra)])


@wrong("plain blocks (no shortcut), zeroed", mistake="plain_extra")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[-1].out_channels
    new = [ResidualBlock(c, c, shortcut="none") for _ in range(extra)]
    for b in new:
        b.zero_init_residual()
    return nn.Sequential(*shallow, *new)


@wrong("zero-initializes the shallow blocks too", mistake="changed_shallow")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[-1].out_channels
    deep = nn.Sequential(*shallow, *[ResidualBlock(c, c) for _ in range(extra)])
    for b in deep:
        b.zero_init_residual()
    return deep


@wrong("one block too many", mistake="wrong_count")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[-1].out_channels
    new = [ResidualBlock(c, c) for _ in range(extra + 1)]
    for b in new:
        b.zero_init_residual()
    return nn.Sequential(*shallow, *new)


@wrong("nn.Identity() instead of residual blocks", mistake="not_residual_blocks", defect="deepen: nn.Identity")
def deepen_with_identity_blocks(shallow, extra):
    return nn.Sequential(*shallow, *[nn.Identity() for _ in range(extra)])


@wrong("the new blocks in front", mistake="in_front", defect="deepen: blocks in front")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[0].in_channels
    new = [ResidualBlock(c, c) for _ in range(extra)]
    for b in new:
        b.zero_init_residual()
    return nn.Sequential(*new, *shallow)


@wrong("one block object repeated", mistake="same_block", defect="deepen: one block repeated")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[-1].out_channels
    block = ResidualBlock(c, c)
    block.zero_init_residual()
    return nn.Sequential(*shallow, *[block] * extra)


@wrong("appends to the caller's network", mistake="changed_caller", defect="deepen: appends to the caller's net")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[-1].out_channels
    for _ in range(extra):
        block = ResidualBlock(c, c)
        block.zero_init_residual()
        shallow.append(block)
    return shallow


@wrong("returns a list of blocks", mistake="not_sequential")
def deepen_with_identity_blocks(shallow, extra):
    c = shallow[-1].out_channels
    new = [ResidualBlock(c, c) for _ in range(extra)]
    for b in new:
        b.zero_init_residual()
    return list(shallow) + new
