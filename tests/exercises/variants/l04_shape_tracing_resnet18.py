"""Lesson 04: trace_layer_shapes, conv_output_size, resnet18_stage_shapes."""

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import right, wrong


# --------------------------------------------------------------------------- trace_layer_shapes
@right("the lesson's solution: a function that makes each hook, try/finally")
def trace_layer_shapes(model, x):
    rows, handles = [], []

    def record(name):
        def hook(module, inputs, output):
            rows.append((name, tuple(output.shape)))
        return hook

    for name, module in model.named_modules():
        if next(module.children(), None) is None:
            handles.append(module.register_forward_hook(record(name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return rows


@right("one hook for all layers, the name looked up from the module")
def trace_layer_shapes(model, x):
    names = {m: n for n, m in model.named_modules()}
    rows = []

    def hook(module, inputs, output):
        rows.append((names[module], tuple(output.shape)))

    handles = [m.register_forward_hook(hook) for m in model.modules() if len(list(m.children())) == 0]
    model(x)
    for h in handles:
        h.remove()
    return rows


@right("a lambda with the name as a default argument, torch.Size kept")
def trace_layer_shapes(model, x):
    rows = []
    handles = [m.register_forward_hook(lambda mod, inp, out, name=name: rows.append((name, out.shape)))
               for name, m in model.named_modules() if not list(m.children())]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return rows


@right("functools.partial and lists instead of tuples")
def trace_layer_shapes(model, x):
    rows = []

    def hook(name, module, inputs, output):
        rows.append([name, list(output.shape)])

    handles = []
    for name, m in model.named_modules():
        if not any(True for _ in m.children()):
            handles.append(m.register_forward_hook(functools.partial(hook, name)))
    model(x)
    while handles:
        handles.pop().remove()
    return rows


@right("a pre-hook and a hook per layer, keeping only the outputs")
def trace_layer_shapes(model, x):
    rows, handles = [], []
    for name, m in model.named_modules():
        if list(m.children()):
            continue
        handles.append(m.register_forward_pre_hook(lambda mod, inp: None))
        handles.append(m.register_forward_hook(lambda mod, inp, out, n=name: rows.append((n, tuple(out.size())))))
    try:
        model(x)
    finally:
        [h.remove() for h in handles]
    return rows


@wrong("forgot to remove the hooks", mistake="hooks_left")
def trace_layer_shapes(model, x):
    rows = []
    for name, m in model.named_modules():
        if next(m.children(), None) is None:
            m.register_forward_hook(lambda mod, inp, out, name=name: rows.append((name, tuple(out.shape))))
    model(x)
    return rows


@wrong("removed only the last handle (the variable was overwritten in the loop)", mistake="hooks_left")
def trace_layer_shapes(model, x):
    rows = []
    for name, m in model.named_modules():
        if next(m.children(), None) is None:
            handle = m.register_forward_hook(lambda mod, inp, out, name=name: rows.append((name, tuple(out.shape))))
    model(x)
    handle.remove()
    return rows


@wrong("recorded the input shapes", mistake="input_shapes")
def trace_layer_shapes(model, x):
    rows, handles = [], []
    for name, m in model.named_modules():
        if next(m.children(), None) is None:
            handles.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: rows.append((name, tuple(inp[0].shape)))))
    model(x)
    for h in handles:
        h.remove()
    return rows


@wrong("a forward *pre*-hook: it only sees the inputs", mistake="input_shapes")
def trace_layer_shapes(model, x):
    rows, handles = [], []
    for name, m in model.named_modules():
        if not list(m.children()):
            handles.append(m.register_forward_pre_hook(lambda mod, inp, name=name: rows.append((name, tuple(inp[0].shape)))))
    model(x)
    for h in handles:
        h.remove()
    return rows


@wrong("only the top-level modules", mistake="top_level_only")
def trace_layer_shapes(model, x):
    rows, handles = [], []
    for name, m in model.named_children():
        handles.append(m.register_forward_hook(lambda mod, inp, out, name=name: rows.append((name, tuple(out.shape)))))
    model(x)
    for h in handles:
        h.remove()
    return rows


@wrong("every module, containers and the model itself included", mistake="containers_too")
def trace_layer_shapes(model, x):
    rows, handles = [], []
    for name, m in model.named_modules():
        handles.append(m.register_forward_hook(lambda mod, inp, out, name=name: rows.append((name, tuple(out.shape)))))
    model(x)
    for h in handles:
        h.remove()
    return rows


@wrong("a lambda in the loop that reads `name` late", mistake="late_binding")
def trace_layer_shapes(model, x):
    rows, handles = [], []
    for name, m in model.named_modules():
        if next(m.children(), None) is None:
            handles.append(m.register_forward_hook(lambda mod, inp, out: rows.append((name, tuple(out.shape)))))
    model(x)
    for h in handles:
        h.remove()
    return rows


@wrong("a dict keyed by name: a layer called twice keeps one row", mistake="one_row_per_module")
def trace_layer_shapes(model, x):
    shapes, handles = {}, []
    for name, m in model.named_modules():
        if next(m.children(), None) is None:
            handles.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: shapes.__setitem__(name, tuple(out.shape))))
    model(x)
    for h in handles:
        h.remove()
    return list(shapes.items())


@wrong("a hook that removes itself after its first call", mistake="one_row_per_module")
def trace_layer_shapes(model, x):
    rows = []

    def record(name):
        def hook(module, inputs, output):
            rows.append((name, tuple(output.shape)))
            handles[name].remove()
        return hook

    handles = {}
    for name, m in model.named_modules():
        if next(m.children(), None) is None:
            handles[name] = m.register_forward_hook(record(name))
    model(x)
    return rows


@wrong("the batch dimension dropped", mistake="no_batch")
def trace_layer_shapes(model, x):
    rows, handles = [], []
    for name, m in model.named_modules():
        if next(m.children(), None) is None:
            handles.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: rows.append((name, tuple(out.shape)[1:]))))
    model(x)
    for h in handles:
        h.remove()
    return rows


@wrong("a fixed list of layer types that misses pooling and Flatten")
def trace_layer_shapes(model, x):
    rows, handles = [], []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Linear)):
            handles.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: rows.append((name, tuple(out.shape)))))
    model(x)
    for h in handles:
        h.remove()
    return rows


@wrong("the module's type instead of its name")
def trace_layer_shapes(model, x):
    rows, handles = [], []
    for name, m in model.named_modules():
        if next(m.children(), None) is None:
            handles.append(m.register_forward_hook(
                lambda mod, inp, out: rows.append((type(mod).__name__, tuple(out.shape)))))
    model(x)
    for h in handles:
        h.remove()
    return rows


# --------------------------------------------------------------------------- conv_output_size
@right("the lesson's solution: floor division")
def conv_output_size(size, kernel, stride=1, padding=0):
    return (size + 2 * padding - kernel) // stride + 1


@right("math.floor of a true division")
def conv_output_size(size, kernel, stride=1, padding=0):
    return math.floor((size + 2 * padding - kernel) / stride) + 1


@right("int() of the whole expression")
def conv_output_size(size, kernel, stride=1, padding=0):
    return int((size - kernel + 2 * padding) / stride + 1)


@right("counting window positions in a loop")
def conv_output_size(size, kernel, stride=1, padding=0):
    count, start = 0, 0
    while start + kernel <= size + 2 * padding:
        count += 1
        start += stride
    return count


@right("asking a real convolution")
def conv_output_size(size, kernel, stride=1, padding=0):
    out = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, kernel, kernel), stride=stride, padding=padding)
    return out.shape[-1]


@wrong("rounded up", mistake="ceil")
def conv_output_size(size, kernel, stride=1, padding=0):
    return math.ceil((size + 2 * padding - kernel) / stride) + 1


@wrong("+ 1 forgotten", mistake="no_plus_one")
def conv_output_size(size, kernel, stride=1, padding=0):
    return (size + 2 * padding - kernel) // stride


@wrong("padding counted once", mistake="one_side_padding")
def conv_output_size(size, kernel, stride=1, padding=0):
    return (size + padding - kernel) // stride + 1


@wrong("true division: a float", mistake="float")
def conv_output_size(size, kernel, stride=1, padding=0):
    return (size + 2 * padding - kernel) / stride + 1


@wrong("round() instead of floor", mistake="rounded")
def conv_output_size(size, kernel, stride=1, padding=0):
    return round((size + 2 * padding - kernel) / stride) + 1


@wrong("stride ignored", mistake="no_stride")
def conv_output_size(size, kernel, stride=1, padding=0):
    return size + 2 * padding - kernel + 1


@wrong("+ 1 inside the division", mistake="plus_one_inside")
def conv_output_size(size, kernel, stride=1, padding=0):
    return (size + 2 * padding - kernel + 1) // stride


@wrong("numpy's floor: a numpy float", mistake="float_for_int")
def conv_output_size(size, kernel, stride=1, padding=0):
    return np.floor((size + 2 * padding - kernel) / stride) + 1


# --------------------------------------------------------------------------- resnet18_stage_shapes
@right("the lesson's solution")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    def out(h, k, s, p):
        return (h + 2 * p - k) // s + 1

    shapes = {"input": (n, channels, size, size)}
    h = out(size, 7, 2, 3)
    shapes["conv1"] = (n, 64, h, h)
    h = out(h, 3, 2, 1)
    shapes["maxpool"] = shapes["layer1"] = (n, 64, h, h)
    c = 64
    for stage in ("layer2", "layer3", "layer4"):
        h, c = out(h, 3, 2, 1), 2 * c
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"] = (n, 512, 1, 1)
    shapes["fc"] = (n, num_classes)
    return shapes


@right("every stride-2 layer with padding rounds up: ceil(h / 2)")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    sizes = [size]
    for _ in range(5):
        sizes.append(math.ceil(sizes[-1] / 2))
    names = ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    hs = [sizes[1], sizes[2], sizes[2], sizes[3], sizes[4], sizes[5]]
    cs = [64, 64, 64, 128, 256, 512]
    result = {"input": (n, channels, size, size)}
    for name, h, c in zip(names, hs, cs):
        result[name] = (n, c, h, h)
    result["avgpool"] = (n, 512, 1, 1)
    result["fc"] = (n, num_classes)
    return result


@right("asking torchvision's network with a dummy batch")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    import torchvision

    net = torchvision.models.resnet18(weights=None, num_classes=num_classes).eval()
    if channels != 3:
        net.conv1 = torch.nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
    h = torch.zeros(n, channels, size, size)
    shapes = {"input": tuple(h.shape)}
    with torch.no_grad():
        for name, child in net.named_children():
            h = child(torch.flatten(h, 1) if name == "fc" else h)
            if name not in ("bn1", "relu"):
                shapes[name] = tuple(h.shape)
    return shapes


@wrong("no max pool shrinkage", mistake="no_maxpool")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    h = (size + 6 - 7) // 2 + 1
    shapes = {"input": (n, channels, size, size), "conv1": (n, 64, h, h), "maxpool": (n, 64, h, h),
              "layer1": (n, 64, h, h)}
    for stage, c in (("layer2", 128), ("layer3", 256), ("layer4", 512)):
        h = (h + 2 - 3) // 2 + 1
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"], shapes["fc"] = (n, 512, 1, 1), (n, num_classes)
    return shapes


@wrong("layer1 halves the size too", mistake="layer1_halves")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    h = (size + 6 - 7) // 2 + 1
    shapes = {"input": (n, channels, size, size), "conv1": (n, 64, h, h)}
    h = (h + 2 - 3) // 2 + 1
    shapes["maxpool"] = (n, 64, h, h)
    for stage, c in (("layer1", 64), ("layer2", 128), ("layer3", 256), ("layer4", 512)):
        h = (h + 2 - 3) // 2 + 1
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"], shapes["fc"] = (n, 512, 1, 1), (n, num_classes)
    return shapes


@wrong("halving with h // 2", mistake="floor_halving")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    h = size // 2
    shapes = {"input": (n, channels, size, size), "conv1": (n, 64, h, h)}
    h //= 2
    shapes["maxpool"] = shapes["layer1"] = (n, 64, h, h)
    for stage, c in (("layer2", 128), ("layer3", 256), ("layer4", 512)):
        h //= 2
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"], shapes["fc"] = (n, 512, 1, 1), (n, num_classes)
    return shapes


@wrong("64 channels all the way", mistake="same_channels")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    h = (size + 6 - 7) // 2 + 1
    shapes = {"input": (n, channels, size, size), "conv1": (n, 64, h, h)}
    h = (h + 2 - 3) // 2 + 1
    shapes["maxpool"] = shapes["layer1"] = (n, 64, h, h)
    for stage in ("layer2", "layer3", "layer4"):
        h = (h + 2 - 3) // 2 + 1
        shapes[stage] = (n, 64, h, h)
    shapes["avgpool"], shapes["fc"] = (n, 64, 1, 1), (n, num_classes)
    return shapes


@wrong("fc always 1000 classes", mistake="fc_1000")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    h = (size + 6 - 7) // 2 + 1
    shapes = {"input": (n, channels, size, size), "conv1": (n, 64, h, h)}
    h = (h + 2 - 3) // 2 + 1
    shapes["maxpool"] = shapes["layer1"] = (n, 64, h, h)
    for stage, c in (("layer2", 128), ("layer3", 256), ("layer4", 512)):
        h = (h + 2 - 3) // 2 + 1
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"], shapes["fc"] = (n, 512, 1, 1), (n, 1000)
    return shapes


@wrong("avgpool flattens to (n, 512)", mistake="avgpool_flat")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    h = (size + 6 - 7) // 2 + 1
    shapes = {"input": (n, channels, size, size), "conv1": (n, 64, h, h)}
    h = (h + 2 - 3) // 2 + 1
    shapes["maxpool"] = shapes["layer1"] = (n, 64, h, h)
    for stage, c in (("layer2", 128), ("layer3", 256), ("layer4", 512)):
        h = (h + 2 - 3) // 2 + 1
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"], shapes["fc"] = (n, 512), (n, num_classes)
    return shapes


@wrong("max pool without its padding", mistake="maxpool_no_padding")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    h = (size + 6 - 7) // 2 + 1
    shapes = {"input": (n, channels, size, size), "conv1": (n, 64, h, h)}
    h = (h - 3) // 2 + 1
    shapes["maxpool"] = shapes["layer1"] = (n, 64, h, h)
    for stage, c in (("layer2", 128), ("layer3", 256), ("layer4", 512)):
        h = (h + 2 - 3) // 2 + 1
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"], shapes["fc"] = (n, 512, 1, 1), (n, num_classes)
    return shapes


@wrong("stem with stride 1", mistake="stem_stride_1")
def resnet18_stage_shapes(n, channels, size, num_classes=1000):
    h = size + 6 - 7 + 1
    shapes = {"input": (n, channels, size, size), "conv1": (n, 64, h, h)}
    h = (h + 2 - 3) // 2 + 1
    shapes["maxpool"] = shapes["layer1"] = (n, 64, h, h)
    for stage, c in (("layer2", 128), ("layer3", 256), ("layer4", 512)):
        h = (h + 2 - 3) // 2 + 1
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"], shapes["fc"] = (n, 512, 1, 1), (n, num_classes)
    return shapes
