"""Lesson 09's exercises: a 1-channel conv1 from RGB weights, and a new classifier head."""

from __future__ import annotations

import copy
import functools
from typing import Any

import torch
from torch import nn

from .catalogue import Case, Exercise, Mistake, Report, register
from .cases import f32
from .running import Outcome


# --------------------------------------------------------------------------- adapt_conv1_weights
def adapt_conv1_weights(rgb_weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """conv1 weights for ``in_channels`` inputs from RGB ones (out × 3 × k × k): the colour filters summed and
    spread evenly over the new channels, so a gray image fed as R = G = B gets the same response."""
    from ..lessons.l09_torchvision_resnet import (
        adapt_input_channels,  # imports torchvision: lazily
    )

    holder = nn.Module()
    holder.conv1 = nn.Conv2d(3, rgb_weight.shape[0], tuple(rgb_weight.shape[2:]), bias=False, dtype=rgb_weight.dtype)
    with torch.no_grad():
        holder.conv1.weight.copy_(rgb_weight)
    return adapt_input_channels(holder, in_channels).conv1.weight.detach().clone()


def _conv1_family(rgb_weight, in_channels, *, flags=frozenset()):
    w = rgb_weight
    if "red_only" in flags:
        one = w[:, :1]
    elif "mean" in flags:
        one = w.mean(dim=1, keepdim=True)
    else:
        one = w.sum(dim=0 if "wrong_axis" in flags else 1, keepdim=True)
    if "one_channel_only" in flags:
        return one
    spread = one.repeat(1, in_channels, 1, 1)
    if "divided_by_3" in flags:
        return spread / 3
    return spread if "not_spread" in flags else spread / in_channels


register(Exercise(
    "adapt_conv1_weights", "09", "A 1-channel conv1 from RGB weights", adapt_conv1_weights,
    cases=[
        Case("ResNet-style 7×7 filters (8 of them) → 1 gray channel", lambda: ((f32(0, 8, 3, 7, 7), 1), {})),
        Case("3×3 filters → 2 input channels", lambda: ((f32(1, 4, 3, 3, 3), 2), {})),
        Case("1×1 filters → 4 input channels", lambda: ((f32(2, 5, 3, 1, 1), 4), {})),
    ],
    mistakes=[
        Mistake("mean", "You averaged the colour filters: a gray image fed as R = G = B gets W_R·g + W_G·g + W_B·g, "
                        "the *sum* of the filters, so the mean gives a third of the response."),
        Mistake("red_only", "You kept only the first (red) filter: the green and blue filters' response to a gray "
                            "image is lost. Sum the three colour filters."),
        Mistake("not_spread", "With several new channels each gets the full sum, so the response is in_channels "
                              "times too strong: divide the summed filter by in_channels."),
        Mistake("wrong_axis", "You summed over the wrong axis: the weight is out × in × k × k, and the colours are "
                              "axis 1 (dim=1), not the output filters (dim=0)."),
        Mistake("divided_by_3", "Each new filter is the *mean* of the colour filters (their sum divided by 3). A "
                                "gray image fed as R = G = B gets the *sum* W_R + W_G + W_B, and that sum is shared "
                                "among the in_channels new inputs: each gets sum / in_channels."),
        Mistake("one_channel_only", "The result always has one input channel: repeat the summed filter over "
                                    "in_channels channels, (out, in_channels, k, k), each with 1/in_channels of it."),
    ],
    hints=["For R = G = B = g the conv computes (W_R + W_G + W_B) * g: sum over the colour axis, dim=1, keepdim=True.",
           "With k new channels that each receive the gray image, give each 1/k of the sum: .repeat(1, k, 1, 1) / k."],
    family=_conv1_family, keeps_inputs=True,
))


# --------------------------------------------------------------------------- replace_head
class TinyResNet(nn.Module):
    """A stand-in for torchvision's ResNet: a small backbone (with BatchNorm), global average pooling, a head ``fc``."""

    def __init__(self, width: int = 16, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.relu(self.bn1(self.conv1(x)))), 1))


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Give ``model`` a new head ``fc`` for ``num_classes`` classes (same input features); return the model."""
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def _head_family(model, num_classes, *, flags=frozenset()):
    if "changed_backbone" in flags:
        for m in model.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    if "attribute_only" in flags:
        model.fc.out_features = num_classes
        return model
    if "used_out_features" in flags:
        fc = nn.Linear(model.fc.out_features, num_classes)
    elif "swapped" in flags:
        fc = nn.Linear(num_classes, model.fc.in_features)
    else:
        fc = nn.Linear(model.fc.in_features, num_classes)
    model.fc = fc
    if "returns_layer" in flags:
        return fc
    return None if "no_return" in flags else model


def _head_args(seed: int, width: int, classes: int, new: int):
    torch.manual_seed(seed)
    return (TinyResNet(width, classes), new), {}


def _backbone(model: Any) -> dict[str, torch.Tensor]:
    if not isinstance(model, nn.Module):
        return {}
    return {k: p.detach().clone() for k, p in model.named_parameters() if not k.startswith("fc.")}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


_IN, _OUT, _SHAPE = "fc.in_features", "fc.out_features", "the output's shape for a batch of 2 images"
_CALLER, _RETURNED = "the caller's backbone weights unchanged", "the returned model keeps the backbone's weights"


def _run_replace_head(fn, model, num_classes):
    """What the exercise means, measured without side effects: the learnable weights of the caller's backbone
    and of the returned model's, the new head's size, and the output shape (on a copy, in eval mode, so that
    BatchNorm's running statistics are never part of the answer)."""
    original = _backbone(model)
    out = fn(model, num_classes)
    fc = getattr(out, "fc", None)
    try:
        probe = copy.deepcopy(out).eval()
        with torch.no_grad():
            shape: Any = tuple(probe(f32(5, 2, 3, 8, 8)).shape)
    except Exception as err:
        shape = f"the forward pass fails ({type(err).__name__})"
    return Report({"what the function returned": type(out).__name__, _IN: getattr(fc, "in_features", None),
                   _OUT: getattr(fc, "out_features", None), _SHAPE: shape,
                   _CALLER: _same(_backbone(model), original), _RETURNED: _same(_backbone(out), original)})


def _detect_hardcoded(got: list[Outcome], expected: list[Outcome]) -> bool:
    pairs = [(g.value, e.value) for g, e in zip(got, expected) if g.error is None and isinstance(g.value, dict)]
    if len(pairs) < 2:
        return False
    ins = {g.get(_IN) for g, _ in pairs}
    return len(ins) == 1 and isinstance(next(iter(ins)), int) and any(g[_IN] != e[_IN] for g, e in pairs)


register(Exercise(
    "replace_head", "09", "A new classifier head", replace_head,
    cases=[
        Case("a 1000-class model with 16 features before fc → 10 classes", functools.partial(_head_args, 0, 16, 1000, 10),
             run=_run_replace_head),
        Case("a 10-class model with 8 features → 3 classes", functools.partial(_head_args, 1, 8, 10, 3),
             run=_run_replace_head),
        Case("a model with 512 features (like ResNet-18) → 7 classes", functools.partial(_head_args, 2, 512, 1000, 7),
             run=_run_replace_head),
        Case("a model with 2048 features (like ResNet-50) → 10 classes",
             functools.partial(_head_args, 3, 2048, 1000, 10), run=_run_replace_head),
    ],
    mistakes=[
        Mistake("hardcoded_in_features", "The new layer has the same number of inputs whatever the model: read it "
                                         "from the old head, model.fc.in_features (2048 for ResNet-50, 512 for "
                                         "ResNet-18), instead of typing a number in.", detect=_detect_hardcoded),
        Mistake("swapped", "nn.Linear's arguments are (in_features, out_features): the new head takes "
                           "model.fc.in_features inputs and gives num_classes outputs."),
        Mistake("used_out_features", "The new head takes model.fc.out_features inputs, the old number of classes: it "
                                     "must take what the backbone delivers, model.fc.in_features."),
        Mistake("returns_layer", "You returned the new layer only: assign it to model.fc and return the whole "
                                 "model."),
        Mistake("no_return", "Your function replaced fc but returned nothing: end with `return model`."),
        Mistake("changed_backbone", "The backbone's weights changed (were its layers re-initialized?): only the head "
                                    "is new; the rest keeps its (pretrained) weights."),
        Mistake("attribute_only", "Setting model.fc.out_features only changes a number printed in the layer's repr: "
                                  "the weight matrix keeps its old shape. Assign a new layer, "
                                  "model.fc = nn.Linear(model.fc.in_features, num_classes)."),
    ],
    hints=["The old head tells you how many features it receives: model.fc.in_features.",
           "model.fc = nn.Linear(model.fc.in_features, num_classes); return model."],
    family=_head_family,
))
