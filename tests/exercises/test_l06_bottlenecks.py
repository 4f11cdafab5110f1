"""Lesson 06's exercises: the learner-style variants, and the references against torchvision's ResNets."""

from __future__ import annotations

import pytest

from resnet_tutorial import exercises as E

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("06")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_parameter_counts_match_torchvisions_resnets() -> None:
    import torchvision

    def count(m):
        return sum(p.numel() for p in m.parameters())

    r50, r18 = torchvision.models.resnet50(weights=None), torchvision.models.resnet18(weights=None)
    bottleneck = E.get_exercise("bottleneck_params").reference
    assert bottleneck(64, 64) == count(r50.layer1[0]) and bottleneck(256, 64) == count(r50.layer1[1])
    assert bottleneck(1024, 512) == count(r50.layer4[0]) and bottleneck(2048, 512) == count(r50.layer4[2])
    conv = E.get_exercise("conv_params").reference
    assert conv(3, 64, 7, bias=False) == count(r18.conv1) == 9408
    assert conv(512, 1000, 1) == count(r18.fc)  # a 1x1 conv on a 1x1 map is the fc layer
