"""Lesson 05's exercises: the learner-style variants, and the references against torch's own merges and DenseNet-121."""

from __future__ import annotations

import pytest
import torch

from resnet_tutorial import exercises as E

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("05")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_merge_shapes_follow_what_torch_does_without_broadcasting() -> None:
    ref = E.get_exercise("merge_output_shape").reference
    a, b = torch.zeros(2, 8, 5, 5), torch.zeros(2, 3, 5, 5)
    assert ref(a.shape, b.shape, "cat") == tuple(torch.cat([a, b], 1).shape)
    assert ref(a.shape, a.shape, "add") == tuple((a + a).shape)
    with pytest.raises(RuntimeError):
        a + b
    with pytest.raises(ValueError):
        ref(a.shape, b.shape, "add")
    with pytest.raises(RuntimeError):
        torch.cat([a, torch.zeros(2, 3, 4, 4)], 1)
    with pytest.raises(ValueError):
        ref(a.shape, (2, 3, 4, 4), "cat")
    with pytest.raises(RuntimeError):
        torch.cat([a, torch.zeros(3, 8, 5, 5)], 1)
    with pytest.raises(ValueError):
        ref(a.shape, (3, 8, 5, 5), "cat")
    one = torch.zeros(2, 1, 5, 5)
    assert (one + a).shape == a.shape, "torch broadcasts this add"
    with pytest.raises(ValueError):  # a residual add does not: the shortcut must have the branch's shape
        ref(one.shape, a.shape, "add")


def test_dense_block_channels_match_torchvisions_densenet() -> None:
    import torchvision

    net = torchvision.models.densenet121(weights=None)
    block = net.features.denseblock1
    entering = [layer.norm1.num_features for layer in block.children()]
    leaving = net.features.transition1.norm.num_features
    assert E.get_exercise("dense_block_channels").reference(64, 32, len(entering)) == entering + [leaving]
