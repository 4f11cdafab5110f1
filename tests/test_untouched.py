"""Read-only promises: evaluate and the exercise check leave the model and the notebook's state alone.

The diagnostics' promises (count_flops, trace_shapes, summary, grad_norms) are
tested beside their other tests in test_diagnostics.py and test_gradients.py,
with the same helper; this file also checks that the helper itself notices each
kind of change, so that a passing assert_untouched means something.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn
from helpers.state import assert_untouched

from resnet_tutorial import exercises as E
from resnet_tutorial import train


def _bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 3),
    )


def _batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(5, 1, 6, 6, generator=g), torch.randint(0, 3, (5,), generator=g)) for _ in range(3)]


# --------------------------------------------------------------------------- the helper can fail
@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m(torch.randn(4, 1, 6, 6)), "buffer:1.running_mean changed"),
        (lambda m: m.eval(), "training of <root>: True -> False"),
        (lambda m: m[1].eval(), "training of 1: True -> False"),
        (lambda m: m[0].weight.data.add_(1e-7), "param:0.weight changed"),
        (lambda m: m[5].weight.requires_grad_(False), "requires_grad of 5.weight"),
        (lambda m: m(torch.randn(4, 1, 6, 6)).sum().backward(), ".grad of 0.weight changed"),
        (lambda m: m[0].register_forward_hook(lambda *a: None), "hooks of 0"),
        (lambda m: torch.rand(1), "torch random generator advanced"),
        (lambda m: np.random.rand(), "numpy's global random generator advanced"),
        (lambda m: random.random(), "Python's random generator advanced"),
        (lambda m: torch.set_grad_enabled(False), "grad mode True -> False"),
    ],
)
def test_assert_untouched_names_each_kind_of_change(change, message) -> None:
    model = _bn_net().train()
    try:
        with pytest.raises(AssertionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            assert_untouched(lambda: change(model), model)
    finally:
        torch.set_grad_enabled(True)


def test_assert_untouched_passes_a_pure_read_and_returns_its_value() -> None:
    model = _bn_net().train()
    x = torch.randn(2, 1, 6, 6)
    model.eval()
    out = assert_untouched(lambda: model(x), model)
    assert out.shape == (2, 3)


# --------------------------------------------------------------------------- evaluate
EVALUATE_MODES = ["train", "eval", "mixed"]  # mixed: a frozen (eval-mode) BN inside a training model


@pytest.mark.parametrize("mode", EVALUATE_MODES)
@pytest.mark.parametrize("tta", [False, True])
def test_evaluate_leaves_the_model_untouched_and_computes_the_mean_loss(mode: str, tta: bool) -> None:
    model = _bn_net()
    model.train(mode == "train")
    if mode == "mixed":
        model.train()
        model[1].eval()  # frozen BN inside a training model must stay frozen
    batches = _batches()
    out = assert_untouched(lambda: train.evaluate(model, batches, device="cpu", tta=tta), model)
    # the same numbers computed here, one batch at a time, in eval mode
    ref = _bn_net().eval()
    ref.load_state_dict(model.state_dict())
    losses, correct, n = [], 0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = ref(x)
            if tta:
                p = (logits.softmax(1) + ref(torch.flip(x, dims=[3])).softmax(1)) / 2
                logits = p.log()
            losses.append(nn.functional.cross_entropy(logits, y, reduction="none"))
            correct += int((logits.argmax(1) == y).sum())
            n += len(y)
    assert out["loss"] == pytest.approx(float(torch.cat(losses).mean()), rel=1e-6)
    assert out["acc"] == correct / n


# --------------------------------------------------------------------------- the exercise check
@pytest.fixture
def private_progress(tmp_path, monkeypatch):
    monkeypatch.setenv(E.PROGRESS_ENV, str(tmp_path / "progress.json"))


@pytest.mark.parametrize("ex_id", E.list_exercises())
@pytest.mark.parametrize("grad_enabled", [True, False])
def test_check_keeps_the_notebooks_random_stream_and_grad_mode(ex_id: str, grad_enabled: bool,
                                                                private_progress) -> None:
    torch.manual_seed(123)
    with torch.set_grad_enabled(grad_enabled):
        result = assert_untouched(lambda: E.check(ex_id, E.get_exercise(ex_id).reference, record=False))
    assert result.passed


def test_one_numpy_draw_is_noticed_wherever_the_generator_stands() -> None:
    from helpers.state import global_differences, global_state

    np.random.seed(5)
    np.random.rand()                # the generator now stands inside its 624-value block
    before = global_state()
    np.random.rand()                # one more draw: the key array stays, the position moves
    assert global_differences(before, global_state()) == ["numpy's global random generator advanced"]
