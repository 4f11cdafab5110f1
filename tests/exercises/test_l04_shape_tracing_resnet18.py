"""Lesson 04's exercises: the learner-style variants, and the references against real convolutions and ResNet-18."""

from __future__ import annotations

import pytest
import itertools

import torch
import torch.nn.functional as F

from resnet_tutorial import exercises as E

from .corpus import assert_verdict
from .variants import load

VARIANTS = load("04")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_each_variant_gets_its_verdict(variant) -> None:
    assert_verdict(variant)


def test_conv_output_size_matches_real_convolutions() -> None:
    ref = E.get_exercise("conv_output_size").reference
    for size, k, s, p in itertools.product((5, 7, 28, 97), (1, 3, 7), (1, 2, 3), (0, 1, 3)):
        if size + 2 * p >= k:
            out = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s, padding=p)
            assert ref(size, k, s, p) == out.shape[-1], (size, k, s, p)


def test_resnet18_stage_shapes_match_torchvisions_network() -> None:
    import torchvision

    ref = E.get_exercise("resnet18_stage_shapes").reference
    net = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    for n, size in ((1, 224), (2, 100), (1, 97), (3, 32)):
        shapes, h = {}, torch.zeros(n, 3, size, size)
        with torch.no_grad():
            for name, child in net.named_children():
                h = child(torch.flatten(h, 1) if name == "fc" else h)
                shapes[name] = tuple(h.shape)
        want = ref(n, 3, size, 10)
        assert {k: v for k, v in want.items() if k not in ("input", "conv1")} == {
            k: v for k, v in shapes.items() if k not in ("conv1", "bn1", "relu")}
        assert want["conv1"] == shapes["conv1"]


def test_trace_layer_shapes_reference_and_family_match_trace_shapes() -> None:
    """The hook tracer's rows are trace_shapes' leaf rows, in call order (a shared ReLU twice), and no hook stays."""
    import torchvision

    from resnet_tutorial.diagnostics import trace_shapes

    ex = E.get_exercise("trace_layer_shapes")
    net = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(2, 3, 48, 48)
    want = [(r.name, r.output_shape) for r in trace_shapes(net, x, leaves_only=True).itertuples()]
    assert len(want) == 60 and [n for n, _ in want].count("layer2.1.relu") == 2
    for fn in (ex.reference, ex.family):
        assert [(n, tuple(s)) for n, s in fn(net, x)] == want
        assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())
