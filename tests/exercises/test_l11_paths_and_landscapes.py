"""Lesson 11's exercises: the learner-style variants, and the references against brute-force enumeration."""

from __future__ import annotations

import pytest
import itertools
import math

from resnet_tutorial import exercises as E

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("11")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_path_counts_by_brute_force_and_lesson_11() -> None:
    from resnet_tutorial.lessons.l11_paths_and_landscapes import (
        path_length_counts as lesson_counts,
    )

    count = E.get_exercise("count_residual_paths").reference
    lengths = E.get_exercise("path_length_counts").reference
    for n in range(7):
        paths = list(itertools.product((0, 1), repeat=n))  # 1 = through the unit's branch
        assert count(n) == len(paths)
        assert lengths(n) == [sum(1 for p in paths if sum(p) == k) for k in range(n + 1)]
        assert lengths(n) == lesson_counts(n)["paths"].tolist()


def test_the_largest_case_is_where_float_arithmetic_fails() -> None:
    """The float formula is exact up to ResNet-110's 54 units and wrong at 600: the case set must reach it."""
    def float_formula(n):
        f = math.factorial
        return [int(f(n) / (f(k) * f(n - k))) for k in range(n + 1)]

    reference = E.get_exercise("path_length_counts").reference
    assert float_formula(54) == reference(54) and float_formula(600) != reference(600)
    assert max(c.make()[0][0] for c in E.get_exercise("path_length_counts").cases) >= 600


def test_the_hook_deletion_matches_the_lessons_own_lesion() -> None:
    """delete_block's reference computes what lesson 11's `deleted` computes, on a whole net, and undoes cleanly."""
    import torch

    from resnet_tutorial.lessons.l11_paths_and_landscapes import deleted
    from resnet_tutorial.models import CifarResNet

    torch.manual_seed(0)
    net = CifarResNet(14, in_channels=1).eval()
    x = torch.randn(3, 1, 12, 12)
    reference = E.get_exercise("delete_block").reference
    with torch.no_grad():
        intact = net(x)
        for i in (0, 2, 3):  # a shape-keeping block and the two downsampling ones
            with deleted(net, [i]):
                expected = net(x)
            handle = reference(net.blocks()[i])
            got = net(x)
            handle.remove()
            assert torch.allclose(got, expected, atol=1e-6) and not torch.allclose(got, intact)
        assert torch.equal(net(x), intact)
