"""Lesson 09's exercises: the learner-style variants, and the references against convolutions and torchvision's ResNet."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from resnet_tutorial import exercises as E

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("09")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_adapted_conv1_gives_the_rgb_response_to_gray_images() -> None:
    ref = E.get_exercise("adapt_conv1_weights").reference
    w, gray = torch.randn(6, 3, 5, 5, dtype=torch.float64), torch.rand(2, 1, 12, 12, dtype=torch.float64)
    rgb = F.conv2d(gray.expand(-1, 3, -1, -1), w)
    for k in (1, 2, 5):
        assert torch.allclose(F.conv2d(gray.expand(-1, k, -1, -1), ref(w, k)), rgb)


def test_replace_head_on_torchvisions_resnets() -> None:
    import torchvision

    for build, features in ((torchvision.models.resnet18, 512), (torchvision.models.resnet50, 2048)):
        net = E.get_exercise("replace_head").reference(build(weights=None), 10)
        assert net.fc.in_features == features and net.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 10)


def test_a_backbone_left_untouched_is_accepted_in_training_mode_too() -> None:
    """The probe runs on a copy in eval mode: BatchNorm's running statistics never count as a change."""
    import copy

    from torch import nn

    def replace_head(model, num_classes):
        new = copy.deepcopy(model).train()
        new(torch.randn(4, 3, 8, 8))  # a learner's sanity check in training mode updates the copy's statistics
        new.fc = nn.Linear(new.fc.in_features, num_classes)
        return new

    assert E.check("replace_head", replace_head).passed
