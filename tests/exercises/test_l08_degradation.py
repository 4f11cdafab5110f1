"""Lesson 08's exercises: the learner-style variants, and the references against the cached run and the shallow net."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_tutorial import exercises as E
from resnet_tutorial.blocks import ResidualBlock

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("08")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_degradation_reference_reads_the_cached_run_as_degradation() -> None:
    from resnet_tutorial import degradation
    from resnet_tutorial.lessons.l08_degradation import final_errors

    final = final_errors(degradation.load_degradation())
    ref = E.get_exercise("degradation_or_overfitting").reference
    args = (final.loc[20, ("train_error", "plain")], final.loc[56, ("train_error", "plain")],
            final.loc[20, ("test_error", "plain")], final.loc[56, ("test_error", "plain")])
    assert ref(*args) == "degradation"


def test_deepened_network_computes_the_shallow_one_exactly() -> None:
    torch.manual_seed(0)
    shallow = nn.Sequential(ResidualBlock(4, 4), ResidualBlock(4, 4))
    x = torch.randn(3, 4, 6, 6)  # negative values too: the new blocks see the shallow net's ReLU output
    deep = E.get_exercise("deepen_with_identity_blocks").reference(shallow, 3)
    assert len(deep) == 5 and len(shallow) == 2 and len({id(b) for b in deep}) == 5
    for mode in (True, False):
        shallow.train(mode), deep.train(mode)
        assert torch.equal(deep(x), shallow(x))
