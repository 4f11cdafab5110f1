"""Experiments and explorers for lesson 04 (shape tracing ResNet-18).

* :func:`trace_layer_shapes` - a shape tracer in a dozen lines: a forward hook
  on every layer records its name and output shape (the lesson's exercise).
* :func:`conv_output_size` - the output-size formula floor((H + 2p - k) / s) + 1.
* :data:`STEMS`, :func:`resnet18_profile`, :func:`resnet_stage_sizes` - that
  formula applied stage by stage to ResNet-18 with any input size and stem,
  with the multiply-adds of every stage (no network needed);
  :func:`stem_model` builds the real network with that stem, and
  :func:`profile_check` compares the two.
* :class:`StageSizeExplorer` / :func:`draw_stage_sizes` - the explorer: input
  size and stem -> every stage's map size and work, against the standard network.
* :func:`pool_comparison` - ``AdaptiveAvgPool2d((1, 1))`` versus ``AvgPool2d(7)``
  at several input sizes.
* :func:`cost_table` / :func:`plot_costs` - parameters and FLOPs of several
  models (ResNet-18 versus VGG-16), including the share held by Linear layers.
* :func:`stem_order_comparison`, :func:`summary_estimates` - the appendix:
  a stem with ReLU before BN, and torchsummary's totals recomputed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torchvision
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from matplotlib.ticker import FixedLocator, NullLocator
from torch import nn

from ..diagnostics import count_flops, count_params, trace_shapes
from ..live import LiveFigure, log_ticks

__all__ = [
    "trace_layer_shapes",
    "conv_output_size",
    "Stem",
    "STEMS",
    "resnet18_profile",
    "resnet_stage_sizes",
    "stem_model",
    "stem_variant",
    "traced_stage_sizes",
    "profile_check",
    "StageSizeExplorer",
    "draw_stage_sizes",
    "pool_comparison",
    "linear_params",
    "cost_table",
    "plot_costs",
    "stem_order_comparison",
    "summary_estimates",
]


def trace_layer_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, output shape)`` of every layer call of ``model`` on ``x``, recorded with forward hooks.

    A layer is a module without children. One forward hook per layer appends
    its row when the layer has run (so the rows come in call order, and a layer
    called twice, like the ReLU a torchvision block shares, gives two rows);
    the hooks are removed afterwards, even when the forward pass fails. This
    is the lesson's exercise; :func:`resnet_tutorial.diagnostics.trace_shapes`
    does the same with more columns (containers, inputs, parameters).
    """
    rows: list[tuple[str, tuple[int, ...]]] = []

    def record(name: str):  # one closure per layer: each hook keeps its own name
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            rows.append((name, tuple(output.shape)))
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules()
               if next(m.children(), None) is None]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return rows


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


@dataclass(frozen=True)
class Stem:
    """A ResNet stem: one ``kernel`` x ``kernel`` conv (``stride``, ``padding``), then the 3x3 max pool or not."""

    label: str
    kernel: int
    stride: int
    padding: int
    maxpool: bool


#: The stems the explorer offers. "imagenet" is torchvision's (He et al. 2016, Table 1).
STEMS: dict[str, Stem] = {
    "imagenet": Stem("7×7 conv, stride 2 + max pool (ImageNet)", 7, 2, 3, True),
    "stride3": Stem("7×7 conv, stride 3 + max pool", 7, 3, 3, True),
    "nopool": Stem("7×7 conv, stride 2, no max pool", 7, 2, 3, False),
    "small": Stem("3×3 conv, stride 1, no max pool (small images)", 3, 1, 1, False),
}

#: ResNet-18's stages after the stem: (name, output channels, stride of its first block).
_STAGES = (("layer1", 64, 1), ("layer2", 128, 2), ("layer3", 256, 2), ("layer4", 512, 2))


def _stem(stem: str | int | Stem) -> Stem:
    if isinstance(stem, Stem):
        return stem
    if isinstance(stem, (int, np.integer)) and not isinstance(stem, bool):
        if stem < 1:
            raise ValueError(f"a stem stride must be >= 1, got {stem}")
        return Stem(f"7×7 conv, stride {stem} + max pool", 7, int(stem), 3, True)
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}: use one of {sorted(STEMS)} or an int (the 7×7 stem's stride)")
    return STEMS[stem]


def resnet18_profile(input_size: int = 224, stem: str | int | Stem = "imagenet", in_channels: int = 3,
                     num_classes: int = 1000) -> pd.DataFrame:
    """ResNet-18 stage by stage from the formula alone: size, channels and multiply-adds per stage.

    ``stem``: a key of :data:`STEMS` or an int (the stride of the standard 7x7
    stem). One row per top-level stage (``input, conv1, maxpool, layer1..4,
    avgpool, fc``) with ``size`` (height = width of its output; None for fc),
    ``channels``, ``macs`` (multiply-adds of its convs / Linear for one image,
    K^2 * C_in * C_out * H_out * W_out per conv; pooling and BN count 0, as in
    the papers) and ``formula`` (the size step, written out).
    """
    st = _stem(stem)
    if input_size < 1 or in_channels < 1:
        raise ValueError(f"input_size and in_channels must be >= 1, got {input_size}, {in_channels}")
    rows = [("input", input_size, in_channels, 0, "")]

    def conv(h: int, k: int, s: int, p: int) -> tuple[int, str]:
        new = conv_output_size(h, k, s, p)
        return new, f"⌊({h} + 2·{p} − {k}) / {s}⌋ + 1 = {new}"

    h, text = conv(input_size, st.kernel, st.stride, st.padding)
    rows.append(("conv1", h, 64, st.kernel ** 2 * in_channels * 64 * h * h, text))
    if st.maxpool:
        h, text = conv(h, 3, 2, 1)
    else:
        text = "no max pool: unchanged"
    rows.append(("maxpool", h, 64, 0, text))
    c = 64
    for name, out, stride in _STAGES:
        h_in = h
        h, text = conv(h_in, 3, stride, 1)
        macs = 9 * c * out * h * h + 9 * out * out * h * h  # block 0: two 3x3 convs
        if stride != 1 or c != out:
            macs += c * out * h * h  # its 1x1 projection shortcut
        macs += 2 * 9 * out * out * h * h  # block 1: two 3x3 convs
        rows.append((name, h, out, macs, text if stride != 1 else "stride 1: unchanged"))
        c = out
    rows.append(("avgpool", 1, c, 0, "adaptive: always 1"))
    rows.append(("fc", None, num_classes, c * num_classes, "Linear"))
    df = pd.DataFrame(rows, columns=["stage", "size", "channels", "macs", "formula"])
    return df.astype({"size": "Int64"})


def resnet_stage_sizes(input_size: int = 224, stem_stride: int | str = 2) -> pd.DataFrame:
    """Spatial size after each ResNet-18 stage from the formula alone (``stage, size, formula``).

    Stem conv 7x7 (padding 3, stride ``stem_stride``; or a key of :data:`STEMS`),
    max-pool 3x3 (stride 2, padding 1), layer1 keeps the size, layer2..4 start
    with a 3x3 stride-2 conv (padding 1), global average pooling gives 1x1.
    """
    df = resnet18_profile(input_size, stem_stride)
    return df[df["stage"] != "fc"][["stage", "size", "formula"]].astype({"size": int}).reset_index(drop=True)


def stem_model(stem: str | int | Stem = "imagenet", in_channels: int = 3, num_classes: int = 1000) -> nn.Module:
    """torchvision's ResNet-18 (random weights) with the given stem (a key of :data:`STEMS` or a 7x7 stride).

    The stem conv is replaced when it differs from torchvision's; a stem without
    max pool gets ``nn.Identity()`` in its place (the diagram draws it dashed).
    """
    st = _stem(stem)
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    if (st.kernel, st.stride, st.padding, in_channels) != (7, 2, 3, 3):
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=st.kernel, stride=st.stride, padding=st.padding,
                                bias=False)
    if not st.maxpool:
        model.maxpool = nn.Identity()
    return model


def stem_variant(stem_stride: int = 2, in_channels: int = 3, num_classes: int = 1000) -> nn.Module:
    """torchvision's ResNet-18 (random weights) with a 7x7 stem of the given stride and input channels."""
    if stem_stride < 1 or in_channels < 1:
        raise ValueError(f"stem_stride and in_channels must be >= 1, got {stem_stride}, {in_channels}")
    return stem_model(stem_stride, in_channels, num_classes)


def traced_stage_sizes(model: nn.Module, input: torch.Tensor | Sequence[int]) -> pd.DataFrame:
    """Top-level stages traced on ``model``: ``stage, type, output_shape, size, params``.

    ``size`` is the spatial height of the stage output (None after flattening).
    """
    df = trace_shapes(model, input, depth=1)
    out = df.rename(columns={"name": "stage"})[["stage", "type", "output_shape", "params"]].copy()
    out["size"] = [s[2] if isinstance(s, tuple) and len(s) == 4 else None for s in out["output_shape"]]
    return out


def profile_check(stems: Sequence[str] = tuple(STEMS), sizes: Sequence[int] = (28, 97, 224)) -> pd.DataFrame:
    """The formula (:func:`resnet18_profile`) against the real network (:func:`stem_model`), traced and counted.

    One row per stem and input size: layer4's map size from the formula and
    from :func:`~resnet_tutorial.diagnostics.trace_shapes`, the total
    multiply-adds from the formula and from
    :func:`~resnet_tutorial.diagnostics.count_flops` (FlopCounterMode), and
    ``agree``: every stage's size and every stage's multiply-adds match.
    """
    rows = []
    for stem in stems:
        model = stem_model(stem)
        for size in sizes:
            formula = resnet18_profile(size, stem).set_index("stage")
            traced = traced_stage_sizes(model, (1, 3, size, size)).set_index("stage")
            counted = count_flops(model, (1, 3, size, size))
            macs = {name: flops // 2 for name, flops in counted["per_child"].items()}
            sizes_ok = all(traced.loc[s, "size"] == formula.loc[s, "size"]
                           for s in ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"))
            macs_ok = all(macs.get(s, 0) == formula.loc[s, "macs"] for s in formula.index if s != "input")
            rows.append({"stem": stem, "input": size,
                         "layer4 size (formula)": int(formula.loc["layer4", "size"]),
                         "layer4 size (traced)": int(traced.loc["layer4", "size"]),
                         "multiply-adds (formula)": int(formula["macs"].sum()),
                         "multiply-adds (counted)": int(counted["macs"]), "agree": sizes_ok and macs_ok})
    return pd.DataFrame(rows)


#: Stages of the explorer's two panels.
_SIZE_STAGES = ("input", "conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool")
_COST_STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4", "fc")


class StageSizeExplorer(LiveFigure):
    """Input size and stem -> every stage's feature-map size and multiply-adds, against the standard ResNet-18.

    Left: the map size after each stage (log2 axis), the standard network
    (224 pixels, ImageNet stem) as a wide grey band under the chosen one, so the
    two stay visible where they coincide. Right: multiply-adds per stage for one
    image (log axis), standard (grey) beside chosen (blue). Every number comes
    from :func:`resnet18_profile` (microseconds per move; :func:`profile_check`
    shows it equals the traced and counted network). Fixed axes: every move
    redraws only the data (blitting).
    """

    figsize = (12.0, 4.3)

    def compute(self, input_size: int = 28, stem: str = "imagenet") -> dict[str, Any]:
        df = resnet18_profile(input_size, stem).set_index("stage")
        return {"sizes": df.loc[list(_SIZE_STAGES), "size"].astype(float).to_numpy(),
                "macs": df.loc[list(_COST_STAGES), "macs"].astype(float).to_numpy(),
                "total": float(df["macs"].sum()), "layer4": int(df.loc["layer4", "size"])}

    def build(self, fig: Figure) -> None:
        ref = resnet18_profile(224, "imagenet").set_index("stage")
        self.a0, self.a1 = a0, a1 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
        xs = np.arange(len(_SIZE_STAGES))
        a0.plot(xs, ref.loc[list(_SIZE_STAGES), "size"].astype(float), color="0.55", lw=11, alpha=0.35,
                solid_capstyle="round", label="standard: 224 px, ImageNet stem", zorder=1)
        (self.line,) = a0.plot([], [], "o-", color="C0", lw=2, markersize=5, label="your choice", zorder=3)
        self.labels = [a0.text(x, 1, "", ha="center", va="bottom", fontsize=8, color="C0", zorder=4) for x in xs]
        a0.set_yscale("log", base=2)
        a0.yaxis.set_major_locator(FixedLocator([2.0 ** k for k in range(10)]))
        a0.yaxis.set_major_formatter(lambda v, _: f"{v:g}")
        a0.yaxis.set_minor_locator(NullLocator())
        a0.set_ylim(0.7, 720)
        a0.set_xticks(xs, _SIZE_STAGES)
        a0.set_xlim(-0.5, len(xs) - 0.5)
        a0.set_ylabel("feature-map height = width (pixels)")
        a0.set_title("map size after each stage", fontsize=10, y=1.0)
        xc = np.arange(len(_COST_STAGES))
        standard = a1.bar(xc - 0.2, ref.loc[list(_COST_STAGES), "macs"].astype(float), width=0.4, color="0.6")
        self.bars = a1.bar(xc + 0.2, np.ones(len(xc)), width=0.4, color="C0").patches
        a1.set_yscale("log")
        log_ticks(a1.yaxis)
        a1.set_ylim(1e5, 1e12)
        a1.set_xticks(xc, _COST_STAGES)
        a1.set_ylabel("multiply-adds per image")
        a1.set_title("work per stage", fontsize=10, y=1.0)
        # one legend for both panels, above them: a legend inside an axes would be redrawn with every frame
        fig.legend([(a0.lines[0], standard), (self.line, self.bars[0])],
                   ["standard ResNet-18: 224 px, ImageNet stem (grey)", "your choice (blue)"],
                   loc="upper center", bbox_to_anchor=(0.5, 0.925), ncol=2, fontsize=9, frameon=False,
                   handler_map={tuple: HandlerTuple(ndivide=None, pad=0.6)})
        for ax in (a0, a1):
            ax.grid(alpha=0.3, axis="y")
        self.suptitle = fig.suptitle(" ", fontsize=11, y=0.985)
        self.dynamic(self.line, *self.labels, *self.bars, self.suptitle)
        self.reference_macs = float(ref["macs"].sum())
        fig.subplots_adjust(left=0.065, right=0.99, bottom=0.1, top=0.8, wspace=0.2)

    def update(self, data: dict[str, Any], input_size: int = 28, stem: str = "imagenet") -> None:
        sizes = data["sizes"]
        self.line.set_data(np.arange(len(sizes)), sizes)
        for text, s in zip(self.labels, sizes):
            text.set_position((text.get_position()[0], s * 1.12))
            text.set_text(f"{s:g}")
        for bar, m in zip(self.bars, data["macs"]):
            bar.set_height(m)
        ratio, h4 = data["total"] / self.reference_macs, data["layer4"]
        times = f"{ratio:.0f}" if ratio >= 10 else f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.3f}"
        self.suptitle.set_text(
            f"{input_size}×{input_size} input, {_stem(stem).label}: layer4 sees {h4}×{h4}, "
            f"{_amount(data['total'])} multiply-adds ({times}× the standard's)")


def _amount(n: float) -> str:
    """A count in words people read: 34.7 M, 1.81 G."""
    return f"{n / 1e9:.3g} G" if n >= 1e9 else f"{n / 1e6:.3g} M"


def draw_stage_sizes(input_size: int = 28, stem: str = "imagenet") -> Figure:
    """The explorer's figure for one setting (tests and headless runs): see :class:`StageSizeExplorer`."""
    return StageSizeExplorer().draw(input_size=input_size, stem=stem)


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
        "Conv → ReLU → BN (ReLU first)": nn.Sequential(conv, nn.ReLU(), nn.BatchNorm2d(channels)),
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
