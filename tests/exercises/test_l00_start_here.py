"""Lesson 00's exercises: the learner-style variants, and the reference against the data module."""

from __future__ import annotations

import pytest
import torch

from resnet_tutorial import exercises as E
from resnet_tutorial.data import MEAN, STD

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("00")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_normalize_reference_is_the_data_modules_and_standardizes() -> None:
    images = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    out = E.get_exercise("normalize_pixels").reference(images)
    assert out.dtype == torch.float32 and out.shape == images.shape
    assert torch.allclose(out * STD + MEAN, images.float() / 255, atol=1e-6)
