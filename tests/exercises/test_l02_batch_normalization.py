"""Lesson 02's exercises: the learner-style variants, and the references against nn.BatchNorm2d."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_tutorial import exercises as E

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("02")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_batchnorm_references_match_nn_batchnorm() -> None:
    x = torch.randn(6, 3, 5, 4, dtype=torch.float64) * 2 + 1
    bn = nn.BatchNorm2d(3, momentum=0.3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 1.5, -2.0]))
        bn.bias.copy_(torch.tensor([1.0, 0.0, 3.0]))
        bn.running_mean.copy_(torch.tensor([0.1, 0.2, 0.3]))
        bn.running_var.copy_(torch.tensor([1.0, 2.0, 0.5]))
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    y = bn.train()(x)

    def get(i):
        return E.get_exercise(i).reference

    assert torch.allclose(get("bn_forward_train")(x, bn.weight, bn.bias), y, atol=1e-12)
    new_mean, new_var = get("bn_running_update")(rm, rv, x, momentum=0.3)
    assert torch.allclose(new_mean, bn.running_mean) and torch.allclose(new_var, bn.running_var)
    z = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    expected = bn.eval()(z)
    assert torch.allclose(get("bn_forward_eval")(z, bn.running_mean, bn.running_var, bn.weight, bn.bias), expected)
    gamma, beta = get("bn_identity_params")(x)
    identity = nn.BatchNorm2d(3).double()
    with torch.no_grad():
        identity.weight.copy_(gamma)
        identity.bias.copy_(beta)
    assert torch.allclose(identity.train()(x), x, atol=1e-10)


def test_an_in_place_batchnorm_is_named_though_its_output_is_right() -> None:
    def bn_forward_train(x, gamma, beta, eps=1e-5):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
        x.sub_(mean).div_(torch.sqrt(var + eps))
        return gamma.view(1, -1, 1, 1) * x + beta.view(1, -1, 1, 1)

    result = E.check("bn_forward_train", bn_forward_train)
    assert result.mistakes == ["mutated_input"] and result.difference.endswith("changed its input x in place")


def test_fold_reference_matches_conv_then_nn_batchnorm_in_eval_mode() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1).double()
    bn = nn.BatchNorm2d(5).double()
    with torch.no_grad():
        bn.weight.copy_(torch.randn(5))
        bn.bias.copy_(torch.randn(5))
        bn.running_mean.copy_(torch.randn(5))
        bn.running_var.copy_(torch.rand(5) + 0.1)
    bn.eval()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    w, b = E.get_exercise("fold_bn_into_conv").reference(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                         bn.weight, bn.bias, eps=bn.eps)
    folded = nn.functional.conv2d(x, w, b, padding=1)
    assert torch.allclose(folded, bn(conv(x)), atol=1e-10)
