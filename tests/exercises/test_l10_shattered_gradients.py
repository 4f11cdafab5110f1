"""Lesson 10's exercises: the learner-style variants, and the references against the lesson's own functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resnet_tutorial import exercises as E

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("10")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_the_autocorrelation_reference_agrees_with_the_lesson_and_with_known_signals() -> None:
    from resnet_tutorial.lessons.l10_shattered_gradients import autocorrelation as lesson_autocorrelation

    reference = E.get_exercise("autocorrelation").reference
    g = torch.randn(200, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert np.allclose(reference(g, 12).numpy(), lesson_autocorrelation(g.numpy(), 12))
    # a pure sinusoid of period 8 samples: r(4) = -1 (half a period), r(8) = +1, up to the overlap's edge effects
    wave = torch.cos(2 * torch.pi * torch.arange(256, dtype=torch.float64) / 8)
    r = reference(wave, 8)
    assert r[0] == pytest.approx(1.0) and r[4] == pytest.approx(-1.0, abs=0.02) and r[8] == pytest.approx(1.0, abs=0.02)


def test_the_input_gradient_reference_matches_finite_differences() -> None:
    from resnet_tutorial.lessons.l10_shattered_gradients import ShatterNet

    net = ShatterNet(4, width=16, seed=5).double()
    x = torch.linspace(-1.9, 1.9, 39, dtype=torch.float64).unsqueeze(1)
    eps = 1e-6
    with torch.no_grad():
        fd = (net(x + eps) - net(x - eps)) / (2 * eps)
    got = E.get_exercise("input_gradient").reference(net, x)
    kinks = (fd - got).abs() > 1e-4  # a kink inside [x - eps, x + eps] is possible but rare
    assert got.shape == x.shape and kinks.sum() <= 1
