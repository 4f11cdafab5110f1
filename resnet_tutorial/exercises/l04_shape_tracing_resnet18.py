"""Lesson 04's exercises: a shape tracer with forward hooks, the output-size formula, ResNet-18's stage shapes."""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from .catalogue import Case, Exercise, Mistake, Report, register
from .cases import f32, plain_case


# --------------------------------------------------------------------------- trace_layer_shapes
def trace_layer_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, output shape)`` of every layer call of ``model`` on ``x``, recorded with forward hooks."""
    from ..lessons.l04_shape_tracing_resnet18 import trace_layer_shapes as lesson_tracer  # torchvision: lazily

    return lesson_tracer(model, x)


def _is_layer(module: nn.Module) -> bool:
    return next(module.children(), None) is None


def _tracer_family(model, x, *, flags=frozenset()):
    if "top_level_only" in flags:
        modules = list(model.named_children())
    elif "containers_too" in flags:
        modules = list(model.named_modules())
    else:
        modules = [(n, m) for n, m in model.named_modules() if _is_layer(m)]
    rows: Any = {} if "one_row_per_module" in flags else []

    def shape(inputs, output):
        t = inputs[0] if "input_shapes" in flags else output
        return tuple(t.shape[1:]) if "no_batch" in flags else tuple(t.shape)

    def record(name):
        def hook(module, inputs, output):
            if isinstance(rows, dict):
                rows[name] = shape(inputs, output)
            else:
                rows.append((name, shape(inputs, output)))
        return hook

    handles = []
    for name, module in modules:
        if "late_binding" in flags:  # the lambda reads `name` when it runs: by then the loop has ended
            handles.append(module.register_forward_hook(
                lambda m, i, o: rows.append((name, shape(i, o)))))  # noqa: B023 (the mistake itself)
        else:
            handles.append(module.register_forward_hook(record(name)))
    with torch.no_grad():
        model(x)
    if "hooks_left" not in flags:
        for h in handles:
            h.remove()
    return list(rows.items()) if isinstance(rows, dict) else rows


def _hooks_left(model: nn.Module) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def _run_tracer(fn, model, x):
    rows = fn(model, x)
    return Report({"the (name, output shape) pairs returned": rows,
                   "hooks still attached to the model afterwards": _hooks_left(model)})


def _small_cnn(seed: int):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU()),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()
    return (model, f32(seed + 1, 2, 1, 12, 12)), {}


def _basic_block(seed: int):
    from torchvision.models.resnet import BasicBlock

    torch.manual_seed(seed)
    down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
    return (BasicBlock(8, 16, stride=2, downsample=down).eval(), f32(seed + 1, 1, 8, 10, 10)), {}


def _resnet18(seed: int):
    import torchvision

    torch.manual_seed(seed)
    return (torchvision.models.resnet18(weights=None, num_classes=10).eval(), f32(seed + 1, 1, 3, 64, 64)), {}


register(Exercise(
    "trace_layer_shapes", "04", "A shape tracer with forward hooks", trace_layer_shapes,
    cases=[
        Case("a small CNN with a nested Sequential, a batch of 2 gray 12×12 images", functools.partial(_small_cnn, 0),
             run=_run_tracer),
        Case("torchvision's BasicBlock with stride 2 and a projection shortcut (its relu runs twice), 1×8×10×10",
             functools.partial(_basic_block, 1), run=_run_tracer),
        Case("torchvision's ResNet-18 (10 classes), one 3×64×64 image", functools.partial(_resnet18, 2),
             run=_run_tracer),
    ],
    mistakes=[
        Mistake("hooks_left", "The right rows, but your hooks stay on the model: every later forward pass runs "
                              "them again (and keeps appending to your list). Keep the handle that "
                              "register_forward_hook returns and call handle.remove() before returning."),
        Mistake("input_shapes", "These are the layers' *input* shapes: a forward hook gets (module, inputs, output), "
                                "and inputs is a tuple of the arguments. Record output.shape."),
        Mistake("top_level_only", "Only the top-level modules are traced (model.named_children()): a stage such as "
                                  "a Sequential or a residual block gives one row, its layers none. "
                                  "model.named_modules() walks the whole tree; keep the modules without children."),
        Mistake("containers_too", "Containers are traced too (the model itself, a Sequential, a block): their rows "
                                  "come after their layers' and repeat shapes. Hook only the layers, the modules "
                                  "without children: next(module.children(), None) is None."),
        Mistake("late_binding", "Every row has the same name: the hook's lambda reads the loop variable `name` when "
                                "it runs, after the loop has ended, so all hooks see the last name. Give each hook "
                                "its own name: a function that makes the hook (def record(name): def hook(...): ..."
                                "; return hook), functools.partial, or lambda m, i, o, name=name: ..."),
        Mistake("one_row_per_module", "A layer called twice (the block's relu) has one row: a dict keyed by name "
                                      "keeps only one entry per layer. Append (name, shape) to a list, one row per "
                                      "call."),
        Mistake("no_batch", "The batch dimension is missing: record the whole tuple(output.shape), batch first."),
    ],
    hints=["module.register_forward_hook(fn) returns a handle; PyTorch calls fn(module, inputs, output) after "
           "the module's forward. Collect the handles, call model(x), then handle.remove() each.",
           "The layers: [(name, m) for name, m in model.named_modules() if next(m.children(), None) is None].",
           "To give each hook its own name, make it in a function: def record(name): def hook(module, inputs, "
           "output): rows.append((name, tuple(output.shape))); return hook."],
    family=_tracer_family,
))


# --------------------------------------------------------------------------- conv_output_size
def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output height (or width) of a conv or pooling layer: ⌊(H + 2p − k) / s⌋ + 1."""
    from ..lessons.l04_shape_tracing_resnet18 import (
        conv_output_size as lesson_formula,  # imports torchvision: lazily
    )

    return lesson_formula(size, kernel, stride, padding)


def _conv_size_family(size, kernel, stride=1, padding=0, *, flags=frozenset()):
    span = size + (padding if "one_side_padding" in flags else 2 * padding) - kernel
    if "no_stride" in flags:
        stride = 1
    if "plus_one_inside" in flags:
        return (span + 1) // stride
    if "float" in flags:
        q = span / stride
    elif "ceil" in flags:
        q = -(-span // stride)
    elif "rounded" in flags:
        q = round(span / stride)
    else:
        q = span // stride
    return q if "no_plus_one" in flags else q + 1


register(Exercise(
    "conv_output_size", "04", "The output-size formula", conv_output_size,
    cases=[
        plain_case("ResNet's stem: 224 px, 7×7 kernel, stride 2, padding 3", 224, 7, 2, 3),
        plain_case("the max pool after it: 112 px, 3×3, stride 2, padding 1", 112, 3, 2, 1),
        plain_case("a 3×3 conv that keeps the size: 28 px, stride 1, padding 1", 28, 3, 1, 1),
        plain_case("a stride-3 stem: 224 px, 7×7, stride 3, padding 3", 224, 7, 3, 3),
        plain_case("an odd 7×7 map, 3×3 kernel, stride 2, no padding", 7, 3, 2, 0),
        plain_case("stride 3 without padding: 10 px, 3×3 kernel", 10, 3, 3, 0),
        plain_case("a kernel as large as the map: 5 px, 5×5 (padding and stride left at their defaults)", 5, 5),
    ],
    mistakes=[
        Mistake("ceil", "You rounded up. The window only counts where it fits completely, so the formula rounds "
                        "*down*: ⌊(H + 2p − k) / s⌋ + 1, which is (H + 2 * p - k) // s + 1 in Python."),
        Mistake("no_plus_one", "The \"+ 1\" is missing: ⌊(H + 2p − k) / s⌋ counts the steps the window can move; "
                               "the first position comes on top of them."),
        Mistake("one_side_padding", "Padding is counted on one side only: p pixels are added on *both* sides, "
                                    "so the padded size is H + 2p."),
        Mistake("float", "The answer is a float: / is true division in Python 3. Use // (floor division), which "
                         "rounds down and keeps an int."),
        Mistake("rounded", "round() rounds to the nearest int (55.5 → 56): the formula rounds *down*, because a "
                           "window only counts where it fits completely. Use // ."),
        Mistake("no_stride", "The stride is missing: the window moves s pixels at a time, so divide by s, "
                             "⌊(H + 2p − k) / s⌋ + 1."),
        Mistake("plus_one_inside", "The + 1 belongs outside the division: ⌊(H + 2p − k) / s⌋ + 1, not "
                                   "⌊(H + 2p − k + 1) / s⌋."),
    ],
    hints=["Pad first: the map is H + 2p wide. How many positions can a window of k fit in it at stride s?",
           "Python's // divides and rounds down, on ints."],
    family=_conv_size_family,
))


# --------------------------------------------------------------------------- resnet18_stage_shapes
def resnet18_stage_shapes(n: int, channels: int, size: int, num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """The output shape of every top-level stage of torchvision's ResNet-18 for an n×channels×size×size batch."""
    shapes: dict[str, tuple[int, ...]] = {"input": (n, channels, size, size)}
    h = conv_output_size(size, 7, 2, 3)
    shapes["conv1"] = (n, 64, h, h)
    h = conv_output_size(h, 3, 2, 1)
    shapes["maxpool"] = shapes["layer1"] = (n, 64, h, h)
    for c, stage in ((128, "layer2"), (256, "layer3"), (512, "layer4")):
        h = conv_output_size(h, 3, 2, 1)
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"], shapes["fc"] = (n, 512, 1, 1), (n, num_classes)
    return shapes


def _stages_family(n, channels, size, num_classes=1000, *, flags=frozenset()):
    def down(h: int, k: int, p: int, s: int = 2) -> int:
        return h // 2 if "floor_halving" in flags and s == 2 else (h + 2 * p - k) // s + 1

    shapes = {"input": (n, channels, size, size)}
    h = down(size, 7, 3, 1 if "stem_stride_1" in flags else 2)
    shapes["conv1"] = (n, 64, h, h)
    if "maxpool_no_padding" in flags:
        h = (h - 3) // 2 + 1
    elif "no_maxpool" not in flags:
        h = down(h, 3, 1)
    shapes["maxpool"] = (n, 64, h, h)
    h = down(h, 3, 1) if "layer1_halves" in flags else h
    shapes["layer1"] = (n, 64, h, h)
    c = 64
    for stage in ("layer2", "layer3", "layer4"):
        h, c = down(h, 3, 1), c if "same_channels" in flags else 2 * c
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"] = (n, c) if "avgpool_flat" in flags else (n, c, 1, 1)
    shapes["fc"] = (n, 1000 if "fc_1000" in flags else num_classes)
    return shapes


register(Exercise(
    "resnet18_stage_shapes", "04", "ResNet-18's stage shapes by hand", resnet18_stage_shapes,
    cases=[
        plain_case("one 3×224×224 image", 1, 3, 224),
        plain_case("a batch of 2 gray 100×100 images, 10 classes (odd sizes on the way)", 2, 1, 100, 10),
        plain_case("a batch of 4 CIFAR-sized 32×32 images", 4, 3, 32),
        plain_case("a batch of 3 odd-sized 97×97 images", 3, 3, 97),
    ],
    mistakes=[
        Mistake("no_maxpool", "The max pool does not shrink the map here: after conv1 the 3×3 max pool with "
                              "stride 2 (padding 1) halves it again, so layer1 sees 56×56 for a 224 input."),
        Mistake("layer1_halves", "layer1 keeps the size: its blocks have stride 1. Only layer2, layer3 and layer4 "
                                 "start with a stride-2 block."),
        Mistake("floor_halving", "You halved with size // 2. A stride-2 layer with padding gives "
                                 "⌊(H + 2p − k)/2⌋ + 1, which rounds *up* for odd sizes (25 → 13, not 12)."),
        Mistake("same_channels", "The channel count never changes in your answer: each of layer2, layer3, layer4 "
                                 "doubles it (64 → 128 → 256 → 512) while halving the size."),
        Mistake("fc_1000", "fc gives num_classes outputs, not always 1000: (n, num_classes)."),
        Mistake("avgpool_flat", "The adaptive average pool keeps four dimensions, (n, 512, 1, 1); the flattening to "
                                "(n, 512) happens inside forward, between avgpool and fc."),
        Mistake("maxpool_no_padding", "The max pool has padding 1: ⌊(112 + 2 − 3)/2⌋ + 1 = 56, not 55."),
        Mistake("stem_stride_1", "conv1 has stride 2 (7×7, padding 3): it halves the size, 224 → 112."),
    ],
    hints=["conv1 is 7×7, stride 2, padding 3; the max pool 3×3, stride 2, padding 1.",
           "layer1 keeps size and channels; layer2-4 each halve the size (3×3, stride 2, padding 1) and double the "
           "channels.",
           "avgpool is adaptive: always 1×1. fc gives (n, num_classes). Use your conv_output_size."],
    family=_stages_family,
))
