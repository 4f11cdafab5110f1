"""Lesson 01's exercises: the learner-style variants, and the references against autograd and the diagnostics tool."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_tutorial import exercises as E

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("01")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_chain_rule_product_is_what_autograd_computes() -> None:
    ref = E.get_exercise("chain_rule_product").reference
    torch.manual_seed(0)
    layers = [nn.Sequential(nn.Linear(5, 4), nn.Tanh()), nn.Sequential(nn.Linear(4, 3), nn.Sigmoid()), nn.Linear(3, 2)]
    layers = [m.double() for m in layers]
    a = torch.randn(5, dtype=torch.float64)
    jacobians, h = [], a
    for layer in layers:
        jacobians.append(torch.autograd.functional.jacobian(layer, h))
        h = layer(h).detach()
    w = torch.randn(2, dtype=torch.float64)
    x = a.clone().requires_grad_(True)
    out = x
    for layer in layers:
        out = layer(out)
    (out @ w).backward()
    assert torch.allclose(ref(jacobians, w), x.grad)


def test_weight_grad_norms_matches_the_diagnostics_tool() -> None:
    from resnet_tutorial.diagnostics import grad_norms

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    x, y = torch.randn(4, 1, 6, 6), torch.tensor([0, 1, 2, 3])
    ours = E.get_exercise("weight_grad_norms").reference(model, x, y)
    theirs = grad_norms(model, x, y)["grad_norm"].tolist()
    assert ours == pytest.approx(theirs, rel=1e-6)
