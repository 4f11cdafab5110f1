"""Lesson 06 ("Bottlenecks and deeper ResNets"): cost tables, the block designer, parity checks.

* :func:`comparison_blocks`, :func:`block_comparison`, :func:`draw_comparison_blocks` --
  a basic block vs a bottleneck block (the paper's Figure 5): the modules,
  their parameters, multiply-accumulates (MACs) and FLOPs (1 MAC = 2 FLOPs),
  and their diagram.
* :func:`basic_block_cost`, :func:`bottleneck_cost`, :func:`reduction_sweep`,
  :func:`break_even_reduction` -- the same counts as formulas, for any width,
  reduction factor and map size; :class:`BlockDesigner` is the explorer built
  on them (:func:`draw_block_designer` draws it once).
* :func:`stage_costs`, :func:`depth_summary`, :func:`draw_stage_costs` --
  parameters and FLOPs of every stage of ResNet-18/34/50/101/152 (stem,
  layer1..layer4, head), a one-row-per-depth summary and the bar chart.
* :func:`torchvision_parity` -- our ResNet vs torchvision's: parameter count
  and identical outputs after loading torchvision's ``state_dict``.

Measured FLOPs come from :func:`resnet_tutorial.diagnostics.count_flops`.
"""

from __future__ import annotations

import functools
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from ..blocks import BasicBlock, Bottleneck, ConvBlock
from ..diagnostics import count_flops, num_params
from ..diagrams import draw_blocks
from ..live import LiveFigure, log_ticks
from ..models import ResNet, create_model

__all__ = [
    "DEPTHS",
    "PAPER_GMACS",
    "REDUCTIONS",
    "BlockDesigner",
    "basic_block_cost",
    "block_comparison",
    "bottleneck_cost",
    "break_even_reduction",
    "chain_conv_blocks",
    "comparison_blocks",
    "depth_summary",
    "draw_block_designer",
    "draw_comparison_blocks",
    "draw_stage_costs",
    "reduction_sweep",
    "stage_costs",
    "stage_inputs",
    "to_v1",
    "torchvision_parity",
]

DEPTHS = (18, 34, 50, 101, 152)
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4", "head")
REDUCTIONS = tuple(range(1, 17))  # the designer's reduction factors r (inner width = channels // r)
BASIC_COLOR, BOTTLENECK_COLOR = "C0", "C1"  # one colour per block kind, in every figure of the lesson


def _costs(module: nn.Module, x: torch.Tensor) -> dict[str, int]:
    module.eval()
    with torch.no_grad():
        c = count_flops(module, x)
    return {"macs": int(c["macs"]), "flops": int(c["flops"])}


def comparison_blocks() -> list[tuple[str, nn.Module, int]]:
    """The three blocks of the paper's Figure 5 comparison, as ``(name, module, input channels)``.

    * a basic block at 64 channels (ResNet-18/34's first stage),
    * the bottleneck 256 -> 64 -> 64 -> 256 (ResNet-50's first stage): 4x the
      channels for about the same cost,
    * a basic block at 256 channels: what 256 channels cost without the 1x1 convs.

    The same modules are measured (:func:`block_comparison`) and drawn
    (:func:`draw_comparison_blocks`).
    """
    torch.manual_seed(0)
    return [
        ("basic block, 64 ch", BasicBlock(64, 64), 64),
        ("bottleneck 256→64→64→256", Bottleneck(256, 64), 256),
        ("basic block, 256 ch", BasicBlock(256, 256), 256),
    ]


def block_comparison(size: int = 56) -> pd.DataFrame:
    """The paper's Fig. 5 comparison, measured on a ``size x size`` feature map:
    parameters, MACs and FLOPs of each of :func:`comparison_blocks` (MACs and
    FLOPs from ``count_flops``, which counts the convolutions)."""
    rows = []
    for name, block, channels in comparison_blocks():
        x = torch.randn(1, channels, size, size)
        rows.append({"block": name, "channels": channels, "params": num_params(block),
                     **_costs(block, x)})
    return pd.DataFrame(rows)


def draw_comparison_blocks(size: int = 56) -> Figure:
    """The three blocks of :func:`comparison_blocks` side by side, traced on a
    ``size x size`` map (one box per conv + BN + ReLU, the shapes on the arrows)."""
    cases = comparison_blocks()
    titles = ["basic block, 64 channels", "bottleneck, 256 → 64 → 64 → 256", "basic block, 256 channels"]
    return draw_blocks([block for _, block, _ in cases], titles=titles,
                       input_shape=[(channels, size, size) for _, _, channels in cases], compact=True)


def stage_inputs(model: ResNet, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input tensor of every top-level stage (forward pre-hooks on layer1..4
    and avgpool; the stem's input is ``x``)."""
    seen: dict[str, torch.Tensor] = {"stem": x}
    handles = []
    for name in ("layer1", "layer2", "layer3", "layer4", "avgpool"):
        def hook(_m: nn.Module, args: tuple, _name: str = name) -> None:
            seen[_name] = args[0].detach()

        handles.append(getattr(model, name).register_forward_pre_hook(hook))
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    seen["head"] = seen.pop("avgpool")
    return seen


@functools.lru_cache(maxsize=16)
def _stage_costs_cached(depth: int, input_size: int, num_classes: int) -> pd.DataFrame:
    model = create_model(f"resnet{depth}", num_classes=num_classes)
    x = torch.randn(1, 3, input_size, input_size)
    inputs = stage_inputs(model, x)
    parts: dict[str, nn.Module] = {
        "stem": nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool),
        "layer1": model.layer1, "layer2": model.layer2, "layer3": model.layer3,
        "layer4": model.layer4,
        "head": nn.Sequential(model.avgpool, nn.Flatten(), model.fc),
    }
    rows = []
    for stage in STAGES:
        part = parts[stage]
        blocks = len(part) if stage.startswith("layer") else 0
        with torch.no_grad():
            out_shape = tuple(part(inputs[stage]).shape[1:])
        rows.append({"depth": depth, "stage": stage, "blocks": blocks, "params": num_params(part),
                     "output": "×".join(map(str, out_shape)), **_costs(part, inputs[stage])})
    return pd.DataFrame(rows)


def stage_costs(depth: int = 50, input_size: int = 224, num_classes: int = 1000) -> pd.DataFrame:
    """Per stage of ResNet-``depth``: blocks, parameters, output shape, MACs, FLOPs
    for one ``3 x input_size x input_size`` image (cached)."""
    if depth not in DEPTHS:
        raise ValueError(f"depth must be one of {DEPTHS}, got {depth}")
    return _stage_costs_cached(depth, input_size, num_classes).copy()


PAPER_GMACS = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}  # He et al. (2016), Table 1 ("FLOPs" = multiply-adds)


def to_v1(model: ResNet) -> ResNet:
    """Move the stride of every stage's first bottleneck from the 3x3 conv back to the
    first 1x1 conv, as in the paper (ResNet "v1"; torchvision's layout is "v1.5").

    Only the first 1x1 conv's cost changes: in v1.5 it runs on the stage's full
    input map, in v1 on every second pixel (a quarter of the positions). Changes
    ``model`` in place and returns it; basic-block nets have no such conv and are
    returned unchanged.
    """
    for stage in (model.layer2, model.layer3, model.layer4):
        first = stage[0]
        if isinstance(first, Bottleneck):
            first.conv1.stride, first.conv2.stride = first.conv2.stride, (1, 1)
    return model


def torchvision_parity(depth: int = 50, input_size: int = 64, seed: int = 0) -> dict[str, float]:
    """Load torchvision's randomly initialised ``resnet{depth}`` weights into ours and
    compare outputs on a random batch (eval mode). Returns parameter counts and the
    largest absolute output difference."""
    import torchvision

    torch.manual_seed(seed)
    theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
    ours = create_model(f"resnet{depth}").eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, input_size, input_size)
    with torch.no_grad():
        diff = (ours(x) - theirs(x)).abs().max().item()
    return {"params_ours": num_params(ours), "params_torchvision": num_params(theirs), "max_abs_diff": diff}


def chain_conv_blocks(channels: int = 64, filters: int = 64) -> str:
    """Try to chain two identical ConvBlocks; return the error message (or "works")."""
    first = ConvBlock(channels, filters, stride=1)
    x = torch.randn(1, channels, 8, 8)
    try:
        first(first(x))
    except ValueError as err:
        return str(err)
    return "works"


# --------------------------------------------------------------------------- the block designer
def _check_design(channels: int, width: int, size: int) -> None:
    for name, value in (("channels", channels), ("width", width), ("size", size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    if width > channels:
        raise ValueError(f"the inner width ({width}) must not exceed the block's channels ({channels}): "
                         "a bottleneck reduces the width, use a reduction factor of 1 or more")


def basic_block_cost(channels: int, size: int = 56) -> dict[str, int]:
    """Parameters and MACs of a basic block at ``channels`` on a ``size x size`` map (stride 1).

    Two 3x3 convs ``channels -> channels`` (``9·C²`` weights each, no bias) and
    two BatchNorms (γ and β: ``2·C`` each). Every weight is used once per output
    position, so MACs = conv weights × ``size²`` (BN, ReLU and the addition are
    not counted, as in the papers and in ``count_flops``).
    """
    _check_design(channels, channels, size)
    convs = 2 * 9 * channels * channels
    return {"params": convs + 2 * 2 * channels, "macs": convs * size * size}


def bottleneck_cost(channels: int, width: int, size: int = 56) -> dict[str, int]:
    """Parameters and MACs of a bottleneck ``channels -> width -> width -> channels`` on a ``size x size`` map.

    A 1x1 conv reduces to ``width`` (``C·w`` weights), a 3x3 conv works at
    ``width`` (``9·w²``), a 1x1 conv expands back (``w·C``); a BatchNorm after
    each (``2·(w + w + C)``). MACs = conv weights × ``size²`` (stride 1, identity
    shortcut). ResNet-50's blocks have ``width = channels / 4``.
    """
    _check_design(channels, width, size)
    convs = channels * width + 9 * width * width + width * channels
    return {"params": convs + 2 * (width + width + channels), "macs": convs * size * size}


def reduction_sweep(channels: int = 256, size: int = 56,
                    reductions: tuple[int, ...] = REDUCTIONS) -> pd.DataFrame:
    """For every reduction factor r: the bottleneck ``channels -> channels // r -> channels``
    against a basic block at the full width ``channels`` and one at the inner width
    ``channels // r`` (the width its 3x3 conv works at). Columns ``reduction``,
    ``width``, and ``params``/``macs`` of ``bottleneck``, ``basic_full``, ``basic_inner``."""
    if channels < max(reductions):
        raise ValueError(f"channels ({channels}) must be at least the largest reduction factor "
                         f"({max(reductions)}), so that the inner width is at least 1")
    full = basic_block_cost(channels, size)
    rows = []
    for r in reductions:
        width = channels // r
        bott, inner = bottleneck_cost(channels, width, size), basic_block_cost(width, size)
        rows.append({"reduction": r, "width": width,
                     "bottleneck_params": bott["params"], "bottleneck_macs": bott["macs"],
                     "basic_full_params": full["params"], "basic_full_macs": full["macs"],
                     "basic_inner_params": inner["params"], "basic_inner_macs": inner["macs"]})
    return pd.DataFrame(rows)


def break_even_reduction(channels: int = 256, size: int = 56, measure: str = "macs") -> int | None:
    """The smallest reduction factor at which the bottleneck costs more (``measure``:
    ``"macs"`` or ``"params"``) than a basic block at its inner width; None if it never does."""
    if measure not in ("macs", "params"):
        raise ValueError(f"measure must be 'macs' or 'params', got {measure!r}")
    sweep = reduction_sweep(channels, size)
    dearer = sweep[sweep[f"bottleneck_{measure}"] >= sweep[f"basic_inner_{measure}"]]
    return int(dearer["reduction"].iloc[0]) if len(dearer) else None


def _si(value: float) -> str:
    """1234567 -> '1.23 M' (k, M, G, T)."""
    for factor, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {unit}"
    return f"{value:.0f}"


_BARS = (("basic_full", "basic block\nat C", BASIC_COLOR, 1.0),
         ("bottleneck", "bottleneck\nC → C/r → C", BOTTLENECK_COLOR, 1.0),
         ("basic_inner", "basic block\nat C/r", BASIC_COLOR, 0.45))
# fixed log axes that hold every setting of the controls (64..2048 channels, 7..112 maps, r 1..16)
_YLIM = {"params": (1e2, 1e9), "macs": (1e4, 1e13)}
_RATIO_MAX = 2.5


class BlockDesigner(LiveFigure):
    """Lesson 06's explorer: design a block from its width C, reduction factor r and map size.

    Left and middle: parameters and multiply-accumulates (MACs) of three blocks
    (log scale, axes fixed for every setting, so a change of C or of the map
    size moves the bars, not the axes): a basic block at C channels, the
    bottleneck C -> C/r -> C, and a basic block at C/r channels (the width the
    bottleneck's 3x3 conv works at). Right: the bottleneck's MACs divided by
    those of the basic block at its inner width, for every r, the chosen r
    marked: above 1 the 1x1 convs cost more than the narrower 3x3 saves.
    """

    figsize = (12.0, 4.4)

    def compute(self, channels: int = 256, reduction: int = 4, size: int = 56) -> pd.DataFrame:
        return reduction_sweep(channels, size)

    def build(self, fig: Figure) -> None:
        grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1.3], left=0.07, right=0.99, bottom=0.2, top=0.82,
                                wspace=0.32)
        self.axes = [fig.add_subplot(grid[0, i]) for i in range(3)]
        self.bars: dict[str, Any] = {}
        self.labels: dict[tuple[str, str], Any] = {}
        for ax, measure, label in zip(self.axes, ("params", "macs"), ("parameters", "multiply-accumulates (MACs)")):
            bars = ax.bar(range(len(_BARS)), [1.0] * len(_BARS), color=[c for _, _, c, _ in _BARS], width=0.7)
            for bar, (key, _, _, alpha) in zip(bars, _BARS):
                bar.set_alpha(alpha)
                self.labels[key, measure] = ax.text(bar.get_x() + bar.get_width() / 2, 1.0, "", ha="center",
                                                    va="bottom", fontsize=9)
            self.bars[measure] = bars
            ax.set_yscale("log")
            ax.set_ylim(*_YLIM[measure])
            log_ticks(ax.yaxis)
            ax.set_xticks(range(len(_BARS)), [name for _, name, _, _ in _BARS], fontsize=8)
            ax.set_xlim(-0.6, len(_BARS) - 0.4)
            ax.set_title(f"{label} per block", fontsize=10, y=1.0)
            ax.grid(alpha=0.3, axis="y")
        ratio = self.axes[2]
        ratio.axhline(1.0, color="gray", lw=1)
        ratio.text(max(REDUCTIONS), 1.03, "same cost", ha="right", va="bottom", fontsize=8, color="gray")
        ratio.axvline(4, color="gray", lw=1, ls=":")
        ratio.text(4.2, 0.08, "ResNet-50..152: r = 4", fontsize=8, color="gray")
        (self.ratio_line,) = ratio.plot([], [], "-", color=BOTTLENECK_COLOR, lw=2)
        (self.ratio_dot,) = ratio.plot([], [], "o", color=BOTTLENECK_COLOR, ms=9)
        ratio.set_xlim(0.5, max(REDUCTIONS) + 0.5)
        ratio.set_ylim(0, _RATIO_MAX)
        ratio.set_xticks([1, 2, 4, 6, 8, 10, 12, 14, 16])
        ratio.set_xlabel("reduction factor r (inner width = C / r)")
        ratio.set_ylabel("bottleneck MACs ÷ basic block at C/r")
        ratio.grid(alpha=0.3)
        self.ratio_title = ratio.set_title(" ", fontsize=10, y=1.0)
        self.suptitle = fig.suptitle(" ", fontsize=11)
        self.dynamic(*self.bars["params"], *self.bars["macs"], *self.labels.values(), self.ratio_line,
                     self.ratio_dot, self.ratio_title, self.suptitle)

    def update(self, data: pd.DataFrame, channels: int = 256, reduction: int = 4, size: int = 56) -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS[0]}..{REDUCTIONS[-1]}, got {reduction}")
        row = data.set_index("reduction").loc[reduction]
        for measure in ("params", "macs"):
            for bar, (key, _, _, _) in zip(self.bars[measure], _BARS):
                value = float(row[f"{key}_{measure}"])
                bar.set_height(value)
                self.labels[key, measure].set_position((bar.get_x() + bar.get_width() / 2, value * 1.15))
                self.labels[key, measure].set_text(_si(value))
        ratios = (data["bottleneck_macs"] / data["basic_inner_macs"]).to_numpy()
        self.ratio_line.set_data(data["reduction"].to_numpy(), np.minimum(ratios, _RATIO_MAX))
        here = float(row["bottleneck_macs"] / row["basic_inner_macs"])
        self.ratio_dot.set_data([reduction], [min(here, _RATIO_MAX)])
        verdict = "cheaper" if here < 1 else "dearer"
        self.ratio_title.set_text(f"at r = {reduction}: ×{here:.2f}, the bottleneck is {verdict}")
        self.suptitle.set_text(f"C = {channels} channels, r = {reduction} → inner width {int(row['width'])}, "
                               f"{size}×{size} map")


def draw_block_designer(channels: int = 256, reduction: int = 4, size: int = 56) -> Figure:
    """The :class:`BlockDesigner` figure for one setting (for tests and headless runs)."""
    return BlockDesigner().draw(channels=channels, reduction=reduction, size=size)


# --------------------------------------------------------------------------- whole networks
def depth_summary(tables: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """One row per ResNet depth from :func:`stage_costs` tables: block kind,
    blocks per stage, parameters (M), GMACs, GFLOPs and the output of layer4."""
    return pd.DataFrame({
        f"ResNet-{d}": {
            "block": "basic" if d < 50 else "bottleneck",
            "blocks per stage": "/".join(map(str, t["blocks"].iloc[1:5])),
            "params (M)": round(t["params"].sum() / 1e6, 2),
            "GMACs": round(t["macs"].sum() / 1e9, 2),
            "GFLOPs": round(t["flops"].sum() / 1e9, 2),
            "output of layer4": t["output"].iloc[4],
        }
        for d, t in tables.items()
    }).T


def _depth_colors(depths: list[int]) -> dict[int, Any]:
    """Blues for the basic-block nets, oranges for the bottleneck nets (the lesson's block colours)."""
    basic = [d for d in depths if d < 50]
    bott = [d for d in depths if d >= 50]
    blues, oranges = plt.get_cmap("Blues"), plt.get_cmap("Oranges")
    colors = {d: blues(0.5 + 0.35 * i / max(1, len(basic) - 1)) for i, d in enumerate(basic)}
    colors.update({d: oranges(0.4 + 0.45 * i / max(1, len(bott) - 1)) for i, d in enumerate(bott)})
    return colors


def draw_stage_costs(tables: dict[int, pd.DataFrame]) -> Figure:
    """Grouped bars: parameters (millions) and GMACs of every stage, one bar per depth
    (blue: basic-block nets, orange: bottleneck nets)."""
    depths = list(tables)
    colors = _depth_colors(depths)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / len(depths)
    for i, (d, t) in enumerate(tables.items()):
        pos = np.arange(len(STAGES)) + (i - (len(depths) - 1) / 2) * width
        for ax, column, scale in zip(axes, ("params", "macs"), (1e6, 1e9)):
            ax.bar(pos, t.set_index("stage").loc[list(STAGES), column] / scale, width,
                   color=colors[d], label=f"ResNet-{d}")
    for ax, label in zip(axes, ("parameters (millions)", "GMACs per 3×224×224 image")):
        ax.set_xticks(range(len(STAGES)), STAGES)
        ax.set_xlabel("stage (input → output)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Where the cost of a ResNet sits, stage by stage (1 MAC = 2 FLOPs)")
    fig.tight_layout()
    return fig
