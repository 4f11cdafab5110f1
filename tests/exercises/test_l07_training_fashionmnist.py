"""Lesson 07's exercises: the learner-style variants, and the references against the package's training loop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_tutorial import exercises as E

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("07")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_training_references_match_the_package_loop_and_evaluate() -> None:
    from resnet_tutorial.train import evaluate, train_steps

    def model_and_opt(seed):
        torch.manual_seed(seed)
        m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 3))
        return m, torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.0)

    x, y = torch.randn(5, 1, 5, 5), torch.tensor([0, 1, 2, 0, 1])
    (m1, o1), (m2, o2) = model_and_opt(0), model_and_opt(0)
    loss = E.get_exercise("train_step").reference(m1, o1, x, y)
    losses = train_steps(m2, (x, y), 1, optimizer=o2)
    assert loss == pytest.approx(losses[0])
    assert all(torch.allclose(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
    acc = E.get_exercise("evaluate_accuracy").reference(m1, x, y)
    assert acc == pytest.approx(evaluate(m1, [(x, y)])["acc"])


def test_label_smoothing_targets_are_pytorchs() -> None:
    ref = E.get_exercise("label_smoothing_targets").reference
    logits, y = torch.randn(4, 6), torch.tensor([0, 5, 2, 2])
    soft = ref(y, 6, 0.2)
    assert torch.allclose(-(soft * logits.log_softmax(1)).sum(1).mean(), F.cross_entropy(logits, y, label_smoothing=0.2))
    assert torch.allclose(soft.sum(1), torch.ones(4))
