"""Lesson 03's exercises: the learner-style variants, and the references against torchvision's block and the unrolled sum."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_tutorial import exercises as E

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("03")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_block_and_shortcut_references_match_torchvision_and_the_definition() -> None:
    from torchvision.models.resnet import BasicBlock as TVBasicBlock

    ref = E.get_exercise("residual_block_forward").reference
    down = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8))
    tv = TVBasicBlock(4, 8, stride=2, downsample=down)
    x = torch.randn(2, 4, 7, 7)
    assert torch.allclose(ref(x, tv.conv1, tv.bn1, tv.conv2, tv.bn2, tv.downsample), tv(x), atol=1e-6)
    pad = E.get_exercise("zero_pad_shortcut").reference(x, 10, 3)
    assert pad.shape == (2, 10, 3, 3) and torch.equal(pad[:, :4], x[:, :, ::3, ::3]) and not pad[:, 4:].any()
    assert E.get_exercise("zero_pad_shortcut").reference(x.double(), 10, 3).dtype == torch.float64


def test_residual_stack_is_the_product_of_identity_plus_branch() -> None:
    ref = E.get_exercise("residual_stack").reference
    mats = [torch.randn(3, 3, dtype=torch.float64) * 0.3 for _ in range(4)]
    branches = [lambda h, a=a: h @ a.T for a in mats]
    x = torch.randn(2, 3, dtype=torch.float64)
    product, plain = torch.eye(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)
    for a in mats:
        product, plain = (torch.eye(3, dtype=torch.float64) + a) @ product, a @ plain
    assert torch.allclose(ref(x, branches), x @ product.T)
    assert torch.allclose(ref(x, branches, shortcut=False), x @ plain.T)
