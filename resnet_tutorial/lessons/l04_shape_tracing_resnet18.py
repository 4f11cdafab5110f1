"""Experiments and explorers for lesson 04 (shape tracing ResNet-18).

* :func:`conv_output_size` - the output-size formula floor((H + 2p - k) / s) + 1.
* :func:`resnet_stage_sizes` - that formula applied stage by stage to a
  ResNet-18 with any input size and stem stride (no network needed).
* :func:`stem_variant` / :func:`draw_stage_sizes` - a real ResNet-18 with a
  chosen stem stride and input channels, traced, next to the formula.
* :func:`pool_comparison` - ``AdaptiveAvgPool2d((1, 1))`` versus ``AvgPool2d(7)``
  at several input sizes.
* :func:`cost_table` / :func:`plot_costs` - parameters and FLOPs of several
  models (ResNet-18 versus VGG-16), including the share held by Linear layers.
"""

from __future__ import annotations

import copy
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torchvision
from matplotlib.figure import Figure
from torch import nn

from ..diagnostics import count_flops, count_params, trace_shapes

__all__ = [
    "conv_output_size",
    "resnet_stage_sizes",
    "stem_variant",
    "traced_stage_sizes",
    "draw_stage_sizes",
    "pool_comparison",
    "linear_params",
    "cost_table",
    "plot_costs",
    "stem_order_comparison",
    "summary_estimates",
]


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output height (or width) of a conv or pooling layer: floor((H + 2p - d(k-1) - 1) / s) + 1.

    With ``dilation=1`` this is the familiar floor((H + 2p - k) / s) + 1.
    Raises ValueError when the window does not fit even once.
    """
    if min(size, kernel, stride, dilation) < 1 or padding < 0:
        raise ValueError(
            f"size, kernel, stride, dilation must be >= 1 and padding >= 0, got "
            f"size={size}, kernel={kernel}, stride={stride}, padding={padding}, dilation={dilation}"
        )
    span = dilation * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(
            f"a {kernel}x{kernel} window (padding {padding}) does not fit in a {size}x{size} map; "
            "use a larger input or a smaller kernel"
        )
    return (size + 2 * padding - span) // stride + 1


def resnet_stage_sizes(input_size: int = 224, stem_stride: int = 2) -> pd.DataFrame:
    """Spatial size after each ResNet-18 stage from the formula alone.

    Stem conv 7x7 (padding 3, stride ``stem_stride``), max-pool 3x3 (stride 2,
    padding 1), layer1 keeps the size, layer2..4 start with a 3x3 stride-2 conv
    (padding 1), global average pooling gives 1x1. Columns ``stage, size, formula``.
    """
    rows = [("input", input_size, "")]
    h = input_size

    def step(stage: str, k: int, s: int, p: int) -> None:
        nonlocal h
        new = conv_output_size(h, k, s, p)
        rows.append((stage, new, f"⌊({h} + 2·{p} − {k}) / {s}⌋ + 1 = {new}"))
        h = new

    step("conv1", 7, stem_stride, 3)
    step("maxpool", 3, 2, 1)
    step("layer1", 3, 1, 1)
    step("layer2", 3, 2, 1)
    step("layer3", 3, 2, 1)
    step("layer4", 3, 2, 1)
    rows.append(("avgpool", 1, "adaptive: always 1"))
    return pd.DataFrame(rows, columns=["stage", "size", "formula"])


def stem_variant(stem_stride: int = 2, in_channels: int = 3, num_classes: int = 1000) -> nn.Module:
    """torchvision's ResNet-18 (random weights) with a 7x7 stem of the given stride and input channels."""
    if stem_stride < 1 or in_channels < 1:
        raise ValueError(f"stem_stride and in_channels must be >= 1, got {stem_stride}, {in_channels}")
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=stem_stride, padding=3, bias=False)
    return model


def traced_stage_sizes(model: nn.Module, input: torch.Tensor | Sequence[int]) -> pd.DataFrame:
    """Top-level stages traced on ``model``: ``stage, type, output_shape, size, params``.

    ``size`` is the spatial height of the stage output (None after flattening).
    """
    df = trace_shapes(model, input, depth=1)
    out = df.rename(columns={"name": "stage"})[["stage", "type", "output_shape", "params"]].copy()
    out["size"] = [s[2] if isinstance(s, tuple) and len(s) == 4 else None for s in out["output_shape"]]
    return out


_BASE_CACHE: dict[int, nn.Module] = {}


def draw_stage_sizes(input_size: int = 224, stem_stride: int = 2, in_channels: int = 3) -> Figure:
    """Explorer: spatial size per stage for a chosen input size, stem stride and channel count.

    Left: traced sizes of a real ResNet-18 (dots) on the formula's prediction
    (line), against the standard 224 / stride-2 network. Right: the traced table.
    """
    if in_channels not in _BASE_CACHE:  # the layers after the stem never change: build once
        _BASE_CACHE[in_channels] = stem_variant(2, in_channels)
    model = copy.copy(_BASE_CACHE[in_channels])
    model._modules = dict(model._modules)
    model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=stem_stride, padding=3, bias=False)
    traced = traced_stage_sizes(model, (1, in_channels, input_size, input_size))
    formula = resnet_stage_sizes(input_size, stem_stride)
    reference = resnet_stage_sizes(224, 2)

    fig, (ax, axt) = plt.subplots(1, 2, figsize=(11.5, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})
    stages = formula["stage"].tolist()
    xs = np.arange(len(stages))
    ax.plot(xs, reference["size"], color="gray", linestyle="--", marker="s", label="standard: 224 px, stride 2")
    ax.plot(xs, formula["size"], color="C0", label="formula ⌊(H + 2p − k)/s⌋ + 1")
    traced_sizes = dict(zip(traced["stage"], traced["size"]))
    ys = [input_size] + [int(traced_sizes[s]) for s in stages[1:]]
    ax.plot(xs, ys, "o", color="C1", label="traced (forward hooks)")
    for x, y in zip(xs, ys):
        ax.annotate(str(y), (x, y), textcoords="offset points", xytext=(4, 5), fontsize=8)
    ax.set_xticks(xs, stages, rotation=30)
    ax.set_yscale("log", base=2)
    ax.set_ylabel("feature-map height = width (pixels, log₂ scale)")
    ax.set_xlabel("stage")
    ax.set_title(f"input {input_size}×{input_size}, stem stride {stem_stride}, {in_channels} channel(s)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)

    axt.axis("off")
    cells = [[r.stage, "×".join(map(str, r.output_shape)), f"{r.params:,}"] for r in traced.itertuples()]
    table = axt.table(cellText=[["input", f"1×{in_channels}×{input_size}×{input_size}", "0"]] + cells,
                      colLabels=["stage", "output shape", "params"], loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.3)
    fig.tight_layout()
    return fig


def pool_comparison(input_sizes: Sequence[int] = (224, 256, 320, 160, 448), seed: int = 0) -> pd.DataFrame:
    """ResNet-18 with ``AdaptiveAvgPool2d((1, 1))`` versus the same weights with ``AvgPool2d(7)``.

    For each input size: the layer4 map size, the adaptive model's output shape,
    the fixed-pool model's output shape or its error, and the largest logit
    difference between the two when both run (0 at 224: identical). At some
    sizes ``AvgPool2d(7)`` fails loudly (map smaller than 7, or more than one
    7x7 window so ``fc`` gets the wrong size); at others it runs but silently
    averages only the top-left 7x7 corner of a larger map.
    """
    torch.manual_seed(seed)
    adaptive = torchvision.models.resnet18(weights=None).eval()
    fixed = copy.deepcopy(adaptive)
    fixed.avgpool = nn.AvgPool2d(7)
    rows = []
    for size in input_sizes:
        x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            feats = adaptive.layer4(adaptive.layer3(adaptive.layer2(adaptive.layer1(
                adaptive.maxpool(adaptive.relu(adaptive.bn1(adaptive.conv1(x))))))))
            ya = adaptive(x)
        row = {"input": size, "layer4_map": feats.shape[-1], "adaptive_output": tuple(ya.shape)}
        try:
            trace_shapes(fixed, x)  # gives a readable error naming the layer
            with torch.no_grad():
                yf = fixed(x)
            row["avgpool7_output"] = tuple(yf.shape)
            row["max_difference"] = float((ya - yf).abs().max())
            row["avgpool7_error"] = ""
        except ValueError as err:
            row["avgpool7_output"] = None
            row["max_difference"] = float("nan")
            row["avgpool7_error"] = str(err).split(":")[0]
        rows.append(row)
    cols = ["input", "layer4_map", "adaptive_output", "avgpool7_output", "max_difference", "avgpool7_error"]
    return pd.DataFrame(rows, columns=cols)


def linear_params(model: nn.Module) -> int:
    """Parameters held by ``nn.Linear`` layers (the fully connected part)."""
    return sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters())


def cost_table(models: dict[str, nn.Module], input_size: Sequence[int] = (1, 3, 224, 224)) -> pd.DataFrame:
    """Parameters, FC share and FLOPs of each model for one input.

    Columns ``model, params, fc_params, fc_share`` (percent), ``macs``
    (multiply-adds, what papers call "FLOPs") and ``flops`` (2 x MACs).
    """
    rows = []
    for name, model in models.items():
        total = count_params(model)["total"]
        fc = linear_params(model)
        f = count_flops(model, input_size)
        rows.append(
            {
                "model": name,
                "params": total,
                "fc_params": fc,
                "fc_share": 100.0 * fc / total if total else 0.0,
                "macs": f["macs"],
                "flops": f["flops"],
            }
        )
    return pd.DataFrame(rows)


def plot_costs(table: pd.DataFrame) -> Figure:
    """Bars: parameters (millions, FC part hatched) and GFLOPs / G MACs per model."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    x = np.arange(len(table))
    a1.bar(x, table["params"] / 1e6, color="C0", label="all parameters")
    a1.bar(x, table["fc_params"] / 1e6, color="C1", hatch="//", label="in Linear (FC) layers")
    for xi, (p, s) in enumerate(zip(table["params"], table["fc_share"])):
        a1.text(xi, p / 1e6, f"{p / 1e6:.1f} M\n(FC {s:.1f} %)", ha="center", va="bottom", fontsize=8)
    a1.set_ylabel("parameters (millions)")
    a1.set_ylim(0, table["params"].max() / 1e6 * 1.25)
    a2.bar(x - 0.2, table["flops"] / 1e9, width=0.4, label="FLOPs (FlopCounterMode, 2 per multiply-add)")
    a2.bar(x + 0.2, table["macs"] / 1e9, width=0.4, label="multiply-adds (the papers' \"FLOPs\")")
    for xi, (f, m) in enumerate(zip(table["flops"], table["macs"])):
        a2.text(xi - 0.2, f / 1e9, f"{f / 1e9:.1f}", ha="center", va="bottom", fontsize=8)
        a2.text(xi + 0.2, m / 1e9, f"{m / 1e9:.1f}", ha="center", va="bottom", fontsize=8)
    a2.set_ylabel("billions per 224×224 image")
    a2.set_ylim(0, table["flops"].max() / 1e9 * 1.25)
    for a in (a1, a2):
        a.set_xticks(x, table["model"])
        a.legend(fontsize=8, loc="upper left")
        a.grid(alpha=0.3, axis="y")
    fig.suptitle("Cost of one forward pass", fontsize=11)
    fig.tight_layout()
    return fig


def stem_order_comparison(x: torch.Tensor, channels: int = 64, seed: int = 0) -> pd.DataFrame:
    """Post 000's stem order Conv -> ReLU -> BN versus the usual Conv -> BN -> ReLU, then the max pool.

    Both stems share the same 7x7 stride-3 conv weights and run in train mode
    (batch statistics) on ``x``. One row per order and place: ``"before the max pool"``
    (the normalised/rectified stem output) and ``"after the max pool"`` (what the
    first block receives), with the ``negative_fraction`` and ``zero_fraction``
    of the values, their ``mean`` and ``std``. With ReLU first, BN re-centres
    the rectified values, so about half are negative again and the exact zeros are
    gone; the 3x3 max pool then keeps mostly the positive maxima.
    """
    if x.dim() != 4:
        raise ValueError(f"x must be N x C x H x W, got shape {tuple(x.shape)}")
    torch.manual_seed(seed)
    conv = nn.Conv2d(x.shape[1], channels, 7, stride=3, padding=3)
    stems = {
        "Conv → ReLU → BN (post 000)": nn.Sequential(conv, nn.ReLU(), nn.BatchNorm2d(channels)),
        "Conv → BN → ReLU (usual)": nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU()),
    }
    pool = nn.MaxPool2d(3, stride=2, padding=1)
    rows = []
    for name, stem in stems.items():
        stem.train()
        with torch.no_grad():
            y = stem(x)
            for where, v in (("before the max pool", y), ("after the max pool", pool(y))):
                rows.append({"order": name, "where": where, "negative_fraction": float((v < 0).float().mean()),
                             "zero_fraction": float((v == 0).float().mean()), "mean": float(v.mean()),
                             "std": float(v.std())})
    return pd.DataFrame(rows)


def summary_estimates(model: nn.Module, input_size: Sequence[int]) -> dict[str, float]:
    """Recompute torchsummary's totals from our own trace (``input_size`` without batch).

    torchsummary hooks every module except ``Sequential``/``ModuleList`` and the
    root (so a residual block counts as a layer of its own, and a module called
    twice is listed twice), adds up the elements of all their outputs for one
    sample, and assumes 4 bytes per number:

    * input size = elements of one input x 4 bytes;
    * forward/backward pass size = 2 x (sum of output elements) x 4 bytes
      (the 2: one copy for activations, one for their gradients);
    * params size = parameters x 4 bytes. All in MiB (2^20 bytes).
    """
    df = trace_shapes(model, (1, *input_size))
    layers = df[~df["type"].isin(["Sequential", "ModuleList"])]
    total_output = sum(int(np.prod(s)) for s in layers["output_shape"])
    mib = 4.0 / 2**20
    params = count_params(model)["total"]
    out = {
        "total_params": params,
        "input_mb": float(np.prod(input_size)) * mib,
        "forward_backward_mb": 2.0 * total_output * mib,
        "params_mb": params * mib,
    }
    out["total_mb"] = out["input_mb"] + out["forward_backward_mb"] + out["params_mb"]
    return out
