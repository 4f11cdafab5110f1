"""Add versus concatenate, with their channel bookkeeping: merges, Inception cells, dense blocks.

* :func:`draw_merge` -- two (or more) tensors added (channels stay) or
  concatenated (channels add up), as slabs whose heights are the channel counts;
* :func:`draw_inception_cell` -- GoogLeNet's Inception module: parallel branches
  concatenated, read from a module (torchvision's ``googlenet().inception3a``)
  or drawn with the numbers of Szegedy et al. (2015), Table 1;
* :func:`draw_dense_block` -- a DenseNet block: each layer sees the
  concatenation of every earlier feature map, read from a module
  (torchvision's ``densenet121().features.denseblock1``) or from numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle
from torch import nn

from .blockspec import _walk_back
from .layers import CAT_OPS, Layer, node_layer
from .style import FONT, INK, MUTED, arrow, box, canvas, fit_to_axes, fmt_shape, merge_symbol
from .trace import default_input_shape, trace_graph

__all__ = ["CellSpec", "DenseSpec", "describe_cell", "describe_dense_block", "draw_dense_block",
           "draw_inception_cell", "draw_merge"]

TENSOR_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#e15759"]


# --------------------------------------------------------------------------- add vs cat
def _slab(ax: Axes, x: float, y_bottom: float, w: float, h: float, color: str, gid: str | None = None) -> None:
    r = Rectangle((x - w / 2, y_bottom), w, h, facecolor=color, edgecolor="white", lw=0.8, alpha=0.9, zorder=3)
    r.set_gid(gid)
    ax.add_patch(r)


def _merge_texts(kind: str, channels: Sequence[int], size: Sequence[int] | None) -> tuple[list[str], str]:
    """Labels of the input slabs and the note beside the output slab."""
    def label(c: int) -> str:
        return f"{c}×{size[0]}×{size[1]}" if size else f"{c} ch"

    out_c = channels[0] if kind == "add" else sum(channels)
    note = f"{label(out_c)}\n(element-wise sum)" if kind == "add" else \
        f"{label(out_c)}\n{' + '.join(map(str, channels))} = {out_c} ch"
    names = ["x: ", "y: "] if len(channels) == 2 else [""] * len(channels)
    return [n + label(c) for n, c in zip(names, channels)], note


def _panel_width(kind: str, channels: Sequence[int], size: Sequence[int] | None) -> tuple[float, float]:
    """(left margin for the input labels, total width) of one merge panel."""
    labels, note = _merge_texts(kind, channels, size)
    left = max(len(t) for t in labels) * 0.066 + 0.3
    right = max(len(t) for t in note.split("\n")) * 0.066 + 0.3
    return left, left + 2.2 + right


def _merge_panel(ax: Axes, kind: str, channels: Sequence[int], size: Sequence[int] | None, x0: float,
                 top: float, scale: float) -> None:
    """One merge: input slabs (left), the operator, the output slab (right), the bookkeeping."""
    labels, note = _merge_texts(kind, channels, size)
    title = "add: x + y" if kind == "add" else "concatenate: torch.cat([x, y], dim=1)"
    if len(channels) > 2:
        title = "add" if kind == "add" else "concatenate along channels"
    ax.text(x0, top, title, ha="left", va="top", fontsize=FONT["box"], fontweight="bold", color=INK)
    heights = [c * scale for c in channels]
    gap = 0.18
    total = sum(heights) + gap * (len(heights) - 1)
    mid = top - 0.45 - total / 2
    left, _ = _panel_width(kind, channels, size)
    in_x = x0 + left
    sym_x, out_x = in_x + 1.0, in_x + 1.85
    y = mid + total / 2
    for i, (c, h, text) in enumerate(zip(channels, heights, labels)):
        _slab(ax, in_x, y - h, 0.4, h, TENSOR_COLORS[i % len(TENSOR_COLORS)], gid=f"input:{c}")
        ax.text(in_x - 0.28, y - h / 2, text, ha="right", va="center", fontsize=FONT["small"], color=INK)
        ax.add_patch(FancyArrowPatch((in_x + 0.22, y - h / 2), (sym_x - 0.16, mid), arrowstyle="-|>",
                                     mutation_scale=9, color=MUTED, lw=0.9, shrinkA=0, shrinkB=0))
        y -= h + gap
    merge_symbol(ax, sym_x, mid, kind, gid=f"merge:{kind}")
    arrow(ax, (sym_x + 0.15, mid), (out_x - 0.24, mid), color=MUTED)
    out_c = channels[0] if kind == "add" else sum(channels)
    if kind == "add":
        _slab(ax, out_x, mid - heights[0] / 2, 0.4, heights[0], "#8c6bb1", gid=f"output:{out_c}")
    else:
        y = mid + sum(heights) / 2
        for i, h in enumerate(heights):
            _slab(ax, out_x, y - h, 0.4, h, TENSOR_COLORS[i % len(TENSOR_COLORS)])
            y -= h
        frame = Rectangle((out_x - 0.2, mid - sum(heights) / 2), 0.4, sum(heights), fill=False,
                          edgecolor=INK, lw=0.8, zorder=4)
        frame.set_gid(f"output:{out_c}")
        ax.add_patch(frame)
    ax.text(out_x + 0.3, mid, note, ha="left", va="center", fontsize=FONT["small"], color=INK, linespacing=1.35)


def draw_merge(kind: str | Sequence[str] = ("add", "cat"), channels: Sequence[int] = (64, 64), *,
               size: Sequence[int] | None = None, ax: Axes | None = None) -> Figure:
    """Add versus concatenate as tensors: slab heights are channel counts.

    Args:
        kind: ``"add"``, ``"cat"``, or several (default both, side by side).
        channels: channels of each input, e.g. ``(64, 64)`` or ``(64, 128, 32, 32)``.
            ``"add"`` needs them equal (a ValueError says so otherwise).
        size: optional ``(H, W)`` to label the slabs ``C×H×W``.
        ax: draw into these axes (the figure is sized automatically without it).

    Returns:
        The figure; ``fig.diagram`` is ``{"kinds", "channels", "out_channels"}``.

    Example::

        draw_merge(("add", "cat"), (64, 64), size=(28, 28))

    Lessons: 05.
    """
    kinds = [kind] if isinstance(kind, str) else list(kind)
    if not kinds or any(k not in ("add", "cat") for k in kinds):
        raise ValueError(f"kind must be 'add', 'cat' or a list of them, got {kind!r}")
    channels = [int(c) for c in channels]
    if len(channels) < 2 or any(c < 1 for c in channels):
        raise ValueError(f"channels must list two or more positive counts, got {channels}")
    if "add" in kinds and len(set(channels)) > 1:
        raise ValueError(f"add needs equal channel counts, got {channels}: use 'cat', or project the "
                         "inputs to one width with a 1×1 conv first")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"size must be (H, W), got {size!r}")
    scale = min(0.03, 2.4 / sum(channels))
    panel_h = 0.75 + max(sum(channels) * scale + 0.18 * (len(channels) - 1), 0.6) + 0.2
    widths = [_panel_width(k, channels, size)[1] + 0.3 for k in kinds]
    fig, ax = canvas(sum(widths), panel_h, ax)
    x = 0.15
    for k, w in zip(kinds, widths):
        _merge_panel(ax, k, channels, size, x, panel_h - 0.12, scale)
        x += w
    fit_to_axes(ax, sum(widths), panel_h)
    fig.diagram = {"kinds": kinds, "channels": channels,  # type: ignore[attr-defined]
                   "out_channels": {k: channels[0] if k == "add" else sum(channels) for k in kinds}}
    return fig


# --------------------------------------------------------------------------- Inception
@dataclass(frozen=True)
class CellSpec:
    """Parallel branches merged once: ``branches[i]`` are branch i's layers (``()`` = the input itself)."""

    title: str
    in_shape: tuple[int, ...]
    branches: tuple[tuple[Layer, ...], ...]
    merge: str
    out_shape: tuple[int, ...]

    @property
    def branch_channels(self) -> list[int]:
        """Output channels of each branch (the input's for an empty branch)."""
        return [b[-1].out_shape[0] if b and b[-1].out_shape else self.in_shape[0] for b in self.branches]


def describe_cell(cell: nn.Module, *, input_shape: Sequence[int] | None = None) -> CellSpec:
    """Read a multi-branch cell (branches that split at the input and meet in one merge).

    Raises ValueError naming the module when its output is not one merge of
    paths that each start at the input.
    """
    shape = tuple(input_shape) if input_shape is not None else default_input_shape(cell, size=28)
    trace = trace_graph(cell, shape)
    root = trace.root
    where = f"module {type(cell).__name__}"
    end = root.output_node
    if end is None or len(trace.nodes[end].inputs) < 2:
        raise ValueError(f"cannot place {where}: its output is not a merge of parallel branches")
    merge = trace.nodes[end]
    branches = []
    for src in merge.inputs:
        path = _walk_back(trace, src, set(root.nodes), root.input_node or 0, where)
        if path[-1] != root.input_node:
            raise ValueError(f"cannot place {where}: branch into {merge.name!r} does not start at the input")
        branches.append(tuple(node_layer(trace.nodes[i]) for i in reversed(path[:-1])))
    kind = "cat" if merge.name in CAT_OPS else "add" if merge.name in ("add", "iadd", "add_") else merge.name
    return CellSpec(type(cell).__name__.lstrip("_"), trace.nodes[0].shape[1:], tuple(branches), kind, merge.shape[1:])


def _default_inception() -> CellSpec:
    """Inception (3a) of GoogLeNet, Szegedy et al. (2015), Table 1, on 192×28×28."""
    s = (28, 28)

    def conv(k: int, c: int, name: str) -> Layer:
        return Layer(name, "conv", f"{k}×{k} conv, {c}", (c, *s), channels=c)

    pool = Layer("pool", "pool", "3×3 max pool", (192, *s))
    branches = ((conv(1, 64, "b1"),), (conv(1, 96, "b2a"), conv(3, 128, "b2b")),
                (conv(1, 16, "b3a"), conv(5, 32, "b3b")), (pool, conv(1, 32, "b4")))
    return CellSpec("Inception (3a)", (192, *s), branches, "cat", (256, *s))


def draw_inception_cell(cell: nn.Module | CellSpec | None = None, *, input_shape: Sequence[int] | None = None,
                        ax: Axes | None = None, title: str | None = None) -> Figure:
    """An Inception module: parallel branches (BN and ReLU left out), concatenated.

    Without ``cell`` it draws GoogLeNet's Inception (3a) with the paper's
    numbers (192 channels in; 64 + 128 + 32 + 32 = 256 out). With a module it
    reads the branches from it, e.g. ``torchvision.models.googlenet(weights=None,
    init_weights=False).inception3a`` with ``input_shape=(192, 28, 28)``.

    Example::

        draw_inception_cell()

    Lessons: 05.
    """
    spec = cell if isinstance(cell, CellSpec) else _default_inception() if cell is None \
        else describe_cell(cell, input_shape=input_shape)
    shown = [tuple(l for l in b if l.kind in ("conv", "pool", "linear")) for b in spec.branches]
    hidden = any(l.kind in ("norm", "act") for b in spec.branches for l in b)
    n, depth = len(shown), max((len(b) for b in shown), default=1)
    col_w, row = 1.55, 0.62
    width = max(n * col_w + 0.4, 5.0)
    title = spec.title if title is None else title
    top_pad = 0.5 if title else 0.15
    height = top_pad + 0.4 + 0.55 + depth * row + 0.35 + 0.55 + (0.3 if hidden else 0.05)
    fig, ax = canvas(width, height, ax)
    if title:
        ax.text(0.15, height - 0.27, title, ha="left", va="center", fontsize=FONT["title"], fontweight="bold")
    y_in = height - top_pad - 0.2
    box(ax, width / 2, y_in, 2.2, 0.36, f"input  {fmt_shape(spec.in_shape)}", kind="identity", gid="cell:input")
    xs = [width / 2 + (i - (n - 1) / 2) * col_w for i in range(n)]
    y_bus = y_in - 0.38
    ax.plot([width / 2, width / 2], [y_in - 0.18, y_bus], color=INK, lw=1.1, zorder=2)
    ax.plot([xs[0], xs[-1]], [y_bus, y_bus], color=INK, lw=1.1, zorder=2)
    y_cat = y_bus - 0.25 - depth * row - 0.35
    for i, (x, layers) in enumerate(zip(xs, shown)):
        y = y_bus
        for j, layer in enumerate(layers):
            yb = y_bus - 0.42 - j * row
            arrow(ax, (x, y), (x, yb + 0.17))
            box(ax, x, yb, col_w - 0.2, 0.34, layer.label, kind=layer.kind, gid=f"branch{i}:{layer.name}",
                fontsize=FONT["small"])
            y = yb - 0.17
        arrow(ax, (x, y), (x, y_cat + 0.2))
        ax.text(x + 0.06, (y + y_cat + 0.2) / 2, f"{spec.branch_channels[i]} ch", ha="left", va="center",
                fontsize=FONT["shape"], color=MUTED)
    sym = "concatenate" if spec.merge == "cat" else spec.merge
    sums = " + ".join(map(str, spec.branch_channels))
    box(ax, width / 2, y_cat, min(width - 0.3, n * col_w), 0.4,
        f"{sym}: {sums} = {spec.out_shape[0]} channels", kind="other", gid=f"merge:{spec.merge}")
    arrow(ax, (width / 2, y_cat - 0.2), (width / 2, y_cat - 0.5))
    ax.text(width / 2 + 0.08, y_cat - 0.38, fmt_shape(spec.out_shape), ha="left", va="center",
            fontsize=FONT["shape"], color=MUTED)
    if hidden:
        ax.text(0.15, 0.1, "each conv is followed by BN and ReLU (not drawn)", fontsize=FONT["shape"],
                color=MUTED, style="italic", va="bottom")
    fit_to_axes(ax, width, height)
    fig.diagram = spec  # type: ignore[attr-defined]
    return fig


# --------------------------------------------------------------------------- DenseNet
@dataclass(frozen=True)
class DenseSpec:
    """A dense block: ``in_channels``, then layer i adds ``growth[i]`` channels.

    Layer i sees ``in_channels + sum(growth[:i])`` channels (the concatenation
    of the input and every earlier layer's output); the block outputs
    ``in_channels + sum(growth)``.
    """

    title: str
    in_channels: int
    growth: tuple[int, ...]
    layer_labels: tuple[str, ...]

    @property
    def layer_inputs(self) -> list[int]:
        return [self.in_channels + sum(self.growth[:i]) for i in range(len(self.growth))]

    @property
    def out_channels(self) -> int:
        return self.in_channels + sum(self.growth)


def describe_dense_block(block: nn.Module, *, input_shape: Sequence[int] | None = None) -> DenseSpec:
    """Read a dense block: its layers are its direct children, each fed the concatenation
    of the input and all earlier outputs, and the block returns the concatenation of all.

    Raises ValueError naming the module when the output is not such a concatenation.
    """
    shape = tuple(input_shape) if input_shape is not None else default_input_shape(block, size=16)
    trace = trace_graph(block, shape)
    root = trace.root
    layers = [trace.calls[i] for i in root.children]
    end = trace.nodes[root.output_node] if root.output_node is not None else None
    if end is None or end.name not in CAT_OPS or len(end.inputs) != len(layers) + 1 or not layers:
        raise ValueError(f"cannot place module {type(block).__name__} as a dense block: its output is not "
                         "torch.cat of its input and every child's output")
    growth, labels = [], []
    for call in layers:
        out = trace.nodes[call.output_node] if call.output_node is not None else None
        if out is None or out.shape is None:
            raise ValueError(f"cannot place {call.name!r} of {type(block).__name__}: it returns no tensor")
        growth.append(out.shape[1])
        convs = [node_layer(trace.nodes[i]) for i in call.nodes]
        labels.append(" → ".join(l.label.replace(" conv", "") for l in convs if l.kind in ("conv", "linear")))
    return DenseSpec(type(block).__name__.lstrip("_"), shape[0] if len(shape) != 4 else shape[1], tuple(growth), tuple(labels))


def _dense_layout(spec: DenseSpec) -> tuple[list[float], list[float], float]:
    """x of each feature map (slab) and of each layer box, and the total width."""
    step = 1.45
    slabs = [0.9 + i * step for i in range(len(spec.growth) + 1)]
    boxes = [(a + b) / 2 for a, b in zip(slabs, slabs[1:])]
    return slabs, boxes, slabs[-1] + 2.2


def draw_dense_block(block: nn.Module | DenseSpec | None = None, *, input_shape: Sequence[int] | None = None,
                     in_channels: int = 64, growth: int = 32, n_layers: int = 4, ax: Axes | None = None,
                     title: str | None = None) -> Figure:
    """A DenseNet block: every layer gets the concatenation of all earlier feature maps.

    Slab heights are channel counts; under each layer its input width
    (``64 + 2×32 = 128``). Without ``block`` it draws ``n_layers`` layers of
    growth rate ``growth`` on ``in_channels`` (DenseNet-121's first block has 6
    layers, 64 channels in, growth 32); with a module it reads those numbers,
    e.g. ``torchvision.models.densenet121(weights=None).features.denseblock1``
    with ``input_shape=(64, 56, 56)``.

    Example::

        draw_dense_block(in_channels=64, growth=32, n_layers=4)

    Lessons: 05.
    """
    if isinstance(block, DenseSpec):
        spec = block
    elif block is not None:
        spec = describe_dense_block(block, input_shape=input_shape)
    else:
        if not 1 <= n_layers <= 8 or growth < 1 or in_channels < 1:
            raise ValueError("need 1 <= n_layers <= 8 and positive growth and in_channels")
        spec = DenseSpec("dense block", in_channels, (growth,) * n_layers,
                         ("BN → ReLU → 3×3 conv",) * n_layers)
    if len(spec.growth) > 8:
        raise ValueError(f"draw_dense_block draws up to 8 layers, the block has {len(spec.growth)}")
    slabs, boxes, width = _dense_layout(spec)
    title = (f"{spec.title}: growth rate {spec.growth[0]}" if len(set(spec.growth)) == 1 else spec.title) \
        if title is None else title
    scale = min(0.012, 1.3 / max(spec.in_channels, max(spec.growth)))
    top_pad = 0.5 if title else 0.15
    arcs_h = 0.2 + 0.17 * len(spec.growth)
    height = top_pad + arcs_h + 0.6 + 1.15
    fig, ax = canvas(width, height, ax)
    if title:
        ax.text(0.15, height - 0.27, title, ha="left", va="center", fontsize=FONT["title"], fontweight="bold")
    y = height - top_pad - arcs_h - 0.6
    _dense_maps(ax, spec, slabs, boxes, y, scale)
    _dense_arcs(ax, spec, slabs, boxes, y, scale)
    sums = f"{spec.in_channels} + " + (f"{len(spec.growth)}×{spec.growth[0]}" if len(set(spec.growth)) == 1
                                       else " + ".join(map(str, spec.growth)))
    ax.text(slabs[-1] + 0.45, y, f"block output:\nconcatenate all\n{sums}\n= {spec.out_channels} ch",
            ha="left", va="center", fontsize=FONT["small"], color=INK, linespacing=1.35)
    fit_to_axes(ax, width, height)
    fig.diagram = spec  # type: ignore[attr-defined]
    return fig


def _dense_maps(ax: Axes, spec: DenseSpec, slabs: list[float], boxes: list[float], y: float,
                scale: float) -> None:
    """Feature-map slabs x0..xL, layer boxes H1..HL, straight arrows between neighbours."""
    chans = [spec.in_channels, *spec.growth]
    for j, (x, c) in enumerate(zip(slabs, chans)):
        h = c * scale
        _slab(ax, x, y - h / 2, 0.22, h, TENSOR_COLORS[j % len(TENSOR_COLORS)], gid=f"map:{j}")
        ax.text(x, y - h / 2 - 0.08, f"$x_{j}$\n{c} ch", ha="center", va="top", fontsize=FONT["small"])
    for i, bx in enumerate(boxes):
        box(ax, bx, y, 0.62, 0.42, f"$H_{i + 1}$", kind="conv", gid=f"layer:{i + 1}")
        ax.text(bx, y - 0.3, f"in: {spec.layer_inputs[i]} ch", ha="center", va="top",
                fontsize=FONT["shape"], color=MUTED)
        arrow(ax, (slabs[i] + 0.12, y), (bx - 0.31, y))
        arrow(ax, (bx + 0.31, y), (slabs[i + 1] - 0.12, y))
    label = spec.layer_labels[0] if len(set(spec.layer_labels)) == 1 else ""
    if label:
        ax.text(boxes[0] - 0.31, y - 0.95, f"each $H_i$: {label}", ha="left", va="top",
                fontsize=FONT["shape"], color=MUTED, style="italic")


def _dense_arcs(ax: Axes, spec: DenseSpec, slabs: list[float], boxes: list[float], y: float,
                scale: float) -> None:
    """Every earlier map x_j (j < i-1) into layer H_i, as an arc above, in x_j's colour."""
    chans = [spec.in_channels, *spec.growth]
    for i in range(1, len(boxes)):
        for j in range(i):
            start = (slabs[j], y + chans[j] * scale / 2 + 0.02)
            end = (boxes[i] - 0.2 + 0.4 * j / max(i, 1), y + 0.21)
            rise = 0.3 + 0.17 * (i - j)  # arcs over longer distances sit higher, never far above
            rad = 2 * rise / (end[0] - start[0])
            patch = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=8, lw=1.0,
                                    color=TENSOR_COLORS[j % len(TENSOR_COLORS)],
                                    connectionstyle=f"arc3,rad=-{rad:.3f}", shrinkA=0, shrinkB=0,
                                    zorder=2, alpha=0.9)
            patch.set_gid(f"dense:{j}->{i + 1}")
            ax.add_patch(patch)
