"""Draw one block (or several side by side) as the familiar schematic.

Top to bottom, as in He et al. (2016), Fig. 2: the input ``x``, the main path
as a column of boxes (conv k×k / channels / stride, BN, activation), the
shortcut beside it (a plain line for the identity, boxes for a projection or a
zero-padding shortcut), the merge (⊕ for add, © for concatenate) and the
output activation. With known shapes, each arrow carries the tensor shape
``C×H×W`` flowing along it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import nn

from .blockspec import BlockSpec, describe_block
from .layers import Layer
from .style import FONT, INK, MUTED, SHORTCUT_STYLES, arrow, box, canvas, fit_to_axes, fmt_shape, merge_symbol, polyline

__all__ = ["draw_block", "draw_blocks"]

CHAR_W = 0.075  # inches per character of a 9-pt label (DejaVu Sans, average)
BOX_H = 0.34
GAP = 0.34  # length of the arrow between consecutive boxes
MERGE_R = 0.15


def _label_lines(layer: Layer, narrow: bool) -> str:
    """The box text; long shortcut labels go on two lines."""
    if narrow and len(layer.label) > 16 and ", " in layer.label and layer.kind in ("zeropad", "subsample"):
        return layer.label.replace(", ", "\n", 1)
    return layer.label


def _box_h(text: str) -> float:
    """Height of a main-path box: one line, or two for a compact conv + BN + ReLU."""
    return BOX_H + 0.17 * text.count("\n")


def _text_width(text: str, size: float = FONT["box"]) -> float:
    return max(len(line) for line in text.split("\n")) * CHAR_W * size / 9.0


@dataclass
class _Layout:
    """Positions (inches, origin bottom-left of the block's own area) of everything drawn.

    ``col`` is the main column top to bottom: ``(what, top, bottom, layer)`` with
    ``what`` one of input, pre, main, merge, post, output.
    """

    width: float
    height: float
    cx: float
    main_w: float
    col: list[tuple[str, float, float, Layer | None]] = field(default_factory=list)
    split_y: float | None = None
    merge_y: float | None = None
    sx: float = 0.0
    side_w: float = 0.0
    side: list[tuple[Layer, str, float, float]] = field(default_factory=list)  # (layer, text, y, h)


def _side_boxes(spec: BlockSpec, top: float, bottom: float) -> list[tuple[Layer, str, float, float]]:
    """Shortcut boxes centred in the span between the split and the merge."""
    layers = spec.shortcut or ()
    texts = [_label_lines(l, narrow=True) for l in layers]
    heights = [BOX_H + 0.15 * t.count("\n") for t in texts]
    total = sum(heights) + GAP * (len(layers) - 1)
    y = (top + bottom) / 2 + total / 2
    out = []
    for layer, text, h in zip(layers, texts, heights):
        out.append((layer, text, y - h / 2, h))
        y -= h + GAP
    return out


def _main_column(spec: BlockSpec, top: float) -> tuple[list[tuple[str, float, float, Layer | None]], float | None]:
    """Stack input, boxes, merge and output from ``top`` down; returns them and the split y."""
    col: list[tuple[str, float, float, Layer | None]] = []
    y = top
    col.append(("input", y, y - 0.22, None))
    y -= 0.22 + (GAP + 0.22 if spec.has_shortcut and not spec.pre else GAP)
    split = None
    for part, layers in (("pre", spec.pre), ("main", spec.main)):
        if part == "main" and spec.has_shortcut:
            split = y + 0.16 if not spec.pre else y + GAP / 2
        for layer in layers:
            col.append((part, y, y - _box_h(layer.label), layer))
            y -= _box_h(layer.label) + GAP
    if spec.merge:
        col.append(("merge", y, y - 2 * MERGE_R, None))
        y -= 2 * MERGE_R + GAP
    for layer in spec.post:
        col.append(("post", y, y - _box_h(layer.label), layer))
        y -= _box_h(layer.label) + GAP
    col.append(("output", y, y - 0.2, None))
    return col, split


def _layout(spec: BlockSpec, title: str | None, subtitle: str | None = None) -> _Layout:
    labels = [l.label for l in spec.pre + spec.main + spec.post]
    main_w = max(1.45, max((_text_width(t) for t in labels), default=1.0) + 0.3)
    left = 0.5 if spec.has_shortcut else 0.3  # room for the "F(x)" label
    cx = left + main_w / 2
    top_pad = (0.5 if title else 0.12) + (0.2 if subtitle else 0.0)
    boxes = sum(_box_h(l.label) + GAP for l in spec.pre + spec.main + spec.post)
    height = top_pad + 0.22 + GAP + (0.22 if spec.has_shortcut else 0) + boxes \
        + (2 * MERGE_R + GAP if spec.merge else 0.0) + 0.3
    lay = _Layout(width=0.0, height=height, cx=cx, main_w=main_w)
    lay.col, lay.split_y = _main_column(spec, height - top_pad)
    merge = [c for c in lay.col if c[0] == "merge"]
    lay.merge_y = (merge[0][1] + merge[0][2]) / 2 if merge else None
    right = cx + main_w / 2 + 0.3
    if spec.has_shortcut and lay.split_y is not None and lay.merge_y is not None:
        texts = [_label_lines(l, narrow=True) for l in spec.shortcut or ()]
        lay.side_w = max(1.1, max(_text_width(t) for t in texts) + 0.3) if texts else 0.0
        lay.sx = cx + main_w / 2 + 0.4 + lay.side_w / 2
        mains = [c for c in lay.col if c[0] == "main"]
        span = ((mains[0][1] + mains[0][2]) / 2, (mains[-1][1] + mains[-1][2]) / 2) if mains \
            else (lay.split_y, lay.merge_y)
        lay.side = _side_boxes(spec, *span)
        right = lay.sx + (lay.side_w / 2 + 0.2 if texts else 0.35)
    lay.width = max(right + 0.1, _text_width(subtitle or "", FONT["small"]) + 0.3)
    return lay


def _shape_text(ax: Axes, x: float, y: float, shape: tuple[int, ...] | None, gid: str,
                ha: str = "left") -> None:
    if shape is None:
        return
    t = ax.text(x, y, fmt_shape(shape), ha=ha, va="center", fontsize=FONT["shape"], color=MUTED,
                zorder=5, bbox=dict(facecolor="white", edgecolor="none", pad=0.4, alpha=0.85))
    t.set_gid(gid)


def _tensor_after(spec: BlockSpec, what: str, layer: Layer | None) -> tuple[tuple[int, ...] | None, str]:
    """Shape of the tensor leaving a column element, and the gid of its label."""
    if what == "input":
        return spec.in_shape, "shape:input"
    if what == "merge" or layer is None:
        return spec.merge_shape, "shape:merge"
    return layer.out_shape, f"shape:{layer.name}:{layer.call}"


def _draw_column(ax: Axes, spec: BlockSpec, lay: _Layout, ox: float, oy: float, show: bool) -> float:
    """Input, boxes, merge symbol, output and the arrows between them (with shapes)."""
    cx = ox + lay.cx
    col = lay.col
    for (what, top, bottom, payload), (nxt, ntop, _, _) in zip(col, col[1:]):
        start, end = oy + bottom, oy + ntop
        arrow(ax, (cx, start), (cx, end))
        if show:
            shape, gid = _tensor_after(spec, what, payload)
            mid = (start + end) / 2 if not (what == "input" and lay.split_y is not None) \
                else (start + oy + lay.split_y) / 2 + 0.02
            _shape_text(ax, cx + 0.1, mid, shape, gid)
    for what, top, bottom, payload in col:
        y = oy + (top + bottom) / 2
        if what == "input":
            ax.text(cx, oy + bottom + 0.02, "x", ha="center", va="bottom", fontsize=12, style="italic", family="serif", color=INK)
        elif what == "output":
            ax.text(cx, oy + top - 0.02, "out", ha="center", va="top", fontsize=FONT["small"], color=INK)
        elif what == "merge":
            _draw_merge(ax, spec, cx, y)
        else:
            layer = payload
            box(ax, cx, y, lay.main_w, top - bottom, layer.label, kind=layer.kind,  # type: ignore[union-attr]
                gid=f"{what}:{layer.name}:{layer.call}")  # type: ignore[union-attr]
    return cx


def _draw_merge(ax: Axes, spec: BlockSpec, cx: float, y: float) -> None:
    merge_symbol(ax, cx, y, spec.merge, r=MERGE_R, gid=f"merge:{spec.merge}")
    if spec.merge == "cat" and spec.merge_shape:
        a = spec.main[-1].out_shape[0] if spec.main and spec.main[-1].out_shape else None
        note = f"concatenate\n{a} + {spec.merge_shape[0] - a} = {spec.merge_shape[0]} ch" if a else "concatenate"
        ax.text(cx - MERGE_R - 0.12, y, note, ha="right", va="center", fontsize=FONT["small"], color=INK)


def _draw_shortcut(ax: Axes, spec: BlockSpec, lay: _Layout, cx: float, ox: float, oy: float, show: bool) -> None:
    """The skip path: split dot, a line to the right, its boxes (if any), into the merge."""
    if not spec.has_shortcut or lay.split_y is None or lay.merge_y is None:
        return
    color, ls, _ = SHORTCUT_STYLES.get(spec.shortcut_kind, SHORTCUT_STYLES["other"])
    sx, sy, my = ox + lay.sx, oy + lay.split_y, oy + lay.merge_y
    ax.plot([cx], [sy], marker="o", ms=4.5, color=INK, zorder=5)
    gid = f"shortcut:{spec.shortcut_kind}"
    if not lay.side:
        polyline(ax, [(cx, sy), (sx, sy), (sx, my), (cx + MERGE_R, my)], color=color, ls=ls, gid=gid)
        ax.text(sx + 0.08, (sy + my) / 2, "identity", rotation=90, ha="left", va="center",
                fontsize=FONT["small"], color=MUTED, style="italic")
        return
    first_top = oy + lay.side[0][2] + lay.side[0][3] / 2
    polyline(ax, [(cx, sy), (sx, sy), (sx, first_top)], color=color, ls=ls, gid=gid)
    bottom = first_top
    for i, (layer, text, y, h) in enumerate(lay.side):
        box(ax, sx, oy + y, lay.side_w, h, text, kind=layer.kind, gid=f"shortcut:{layer.name}:{layer.call}")
        bottom = oy + y - h / 2
        if i + 1 < len(lay.side):
            nxt = lay.side[i + 1]
            arrow(ax, (sx, bottom), (sx, oy + nxt[2] + nxt[3] / 2), color=color)
            if show:
                _shape_text(ax, sx + 0.1, (bottom + oy + nxt[2] + nxt[3] / 2) / 2, layer.out_shape,
                            f"shape:{layer.name}:{layer.call}")
    polyline(ax, [(sx, bottom), (sx, my), (cx + MERGE_R, my)], color=color, ls=ls)
    last = lay.side[-1][0]
    if show:
        _shape_text(ax, sx + 0.1, (bottom + my) / 2, last.out_shape, f"shape:{last.name}:{last.call}")


def _render(ax: Axes, spec: BlockSpec, lay: _Layout, ox: float, oy: float, title: str | None,
            subtitle: str | None, show_shapes: bool) -> None:
    if title:
        ax.text(ox + lay.width / 2, oy + lay.height - 0.2, title, ha="center", va="center",
                fontsize=FONT["title"], fontweight="bold", color=INK)
    if subtitle:
        ax.text(ox + lay.width / 2, oy + lay.height - 0.43, subtitle, ha="center", va="center",
                fontsize=FONT["small"], color=MUTED)
    show = show_shapes and spec.shapes_known
    cx = _draw_column(ax, spec, lay, ox, oy, show)
    _draw_shortcut(ax, spec, lay, cx, ox, oy, show)
    main_rows = [c for c in lay.col if c[0] == "main"]
    if spec.has_shortcut and main_rows:
        mid = oy + (main_rows[0][1] + main_rows[-1][2]) / 2
        ax.text(cx - lay.main_w / 2 - 0.12, mid, "F(x)", ha="right", va="center", fontsize=10,
                style="italic", family="serif", color=MUTED)


MAX_LAYERS = 24


def _check_size(spec: BlockSpec) -> None:
    """A "block" of dozens of layers is a whole network: send it to draw_network."""
    n = len(spec.pre) + len(spec.main) + len(spec.post)
    if n > MAX_LAYERS:
        raise ValueError(f"{spec.title} has {n} layers in a row, too many for one block picture: "
                         "draw it with draw_network, or pass one of its blocks")


def _default_title(spec: BlockSpec) -> str:
    return spec.title


def describe_shortly(spec: BlockSpec) -> str:
    """One line about the block: ``"16→32 channels, stride 2, projection shortcut"``."""
    parts = [f"{spec.in_channels}→{spec.out_channels} channels" if spec.in_shape and spec.out_shape else ""]
    if spec.stride > 1:
        parts.append(f"stride {spec.stride}")
    parts.append("no shortcut (plain)" if not spec.has_shortcut else f"{spec.shortcut_kind} shortcut")
    if spec.merge == "cat":
        parts.append("concatenated")
    return ", ".join(p for p in parts if p)


def _group(layers: Sequence[Layer]) -> tuple[Layer, ...]:
    """Conv + its BN and activation as one two-line box (BN, ReLU before the conv in pre-activation order)."""
    weight = {"conv", "linear"}
    if not any(l.kind in weight for l in layers):
        return tuple(layers)
    groups: list[list[Layer]] = []
    pre_style = layers[0].kind not in weight
    for layer in layers:
        starts = layer.kind in weight if not pre_style else (not groups or groups[-1][-1].kind in weight)
        if starts or not groups:
            groups.append([layer])
        else:
            groups[-1].append(layer)
    out = []
    for g in groups:
        main = next((l for l in g if l.kind in weight), g[0])
        rest = ", ".join(l.label for l in g if l is not main)
        label = main.label if not rest else (f"{rest}\n{main.label}" if pre_style else f"{main.label}\n{rest}")
        out.append(Layer(main.name, main.kind, label, g[-1].out_shape, main.call, main.stride, main.channels))
    return tuple(out)


def compact_spec(spec: BlockSpec) -> BlockSpec:
    """The same block with each conv, its BN and its activation in one box (He et al.'s Fig. 5 style)."""
    shortcut = _group(spec.shortcut) if spec.shortcut else spec.shortcut
    return replace(spec, pre=_group(spec.pre), main=_group(spec.main), shortcut=shortcut)


def draw_block(block: nn.Module | BlockSpec, *, input_shape: Sequence[int] | None = None,
               ax: Axes | None = None, title: str | None = None, compact: bool = False,
               show_shapes: bool = True) -> Figure:
    """Draw a residual (or plain) block from the module itself.

    Args:
        block: the block (any module that maps one tensor to one tensor through
            at most one skip connection), or a :class:`BlockSpec` from
            :func:`describe_block`.
        input_shape: one example's shape ``(C, H, W)``; then every arrow carries
            the shape flowing along it (equal to ``diagnostics.trace_shapes``).
            Without it the schematic is drawn without shapes.
        ax: draw into these axes (the figure is sized automatically without it).
        title: caption above the block (default: its class name and a line such as
            "64→128 channels, stride 2, projection shortcut"; ``""`` for none).
        compact: one box per conv with its BN and activation (half the height).
        show_shapes: ``False`` hides the shapes even when they are known.

    Returns:
        The figure; ``fig.diagram`` holds the :class:`BlockSpec` it drew.

    Raises:
        ValueError: naming the module it cannot read (see :func:`describe_block`).

    Example::

        draw_block(ResidualBlock(16, 32, stride=2, shortcut="projection"), input_shape=(16, 28, 28))
    """
    spec = block if isinstance(block, BlockSpec) else describe_block(block, input_shape=input_shape)
    _check_size(spec)
    subtitle = describe_shortly(spec) if title is None else None
    title = _default_title(spec) if title is None else title
    shown = compact_spec(spec) if compact else spec
    lay = _layout(shown, title, subtitle)
    fig, ax = canvas(lay.width, lay.height, ax)
    _render(ax, shown, lay, 0.0, 0.0, title, subtitle, show_shapes)
    fit_to_axes(ax, lay.width, lay.height)
    fig.diagram = spec  # type: ignore[attr-defined]
    return fig


def draw_blocks(blocks: Sequence[nn.Module | BlockSpec], *, titles: Sequence[str] | None = None,
                input_shape: Sequence[int] | Sequence[Sequence[int] | None] | None = None,
                ax: Axes | None = None, compact: bool = False, show_shapes: bool = True) -> Figure:
    """Several blocks side by side in one figure, top-aligned (a plain block next to a
    residual one, the three shortcut kinds, basic vs bottleneck).

    ``input_shape`` is one shape for all blocks or a list with one per block;
    ``titles`` one caption per block (default: class names with a one-line
    description). Returns the figure; ``fig.diagram`` is the list of :class:`BlockSpec`.

    Example::

        draw_blocks([ResidualBlock(64, 64, shortcut="none"), ResidualBlock(64, 64)],
                    titles=["plain block", "residual block"], input_shape=(64, 56, 56))

    Lessons: 05.
    """
    blocks = list(blocks)
    if not blocks:
        raise ValueError("draw_blocks needs at least one block")
    if titles is not None and len(titles) != len(blocks):
        raise ValueError(f"got {len(titles)} titles for {len(blocks)} blocks: give one title per block")
    per_block = isinstance(input_shape, (list, tuple)) and input_shape and not isinstance(input_shape[0], int)
    shapes = list(input_shape) if per_block else [input_shape] * len(blocks)  # type: ignore[list-item]
    if len(shapes) != len(blocks):
        raise ValueError(f"got {len(shapes)} input shapes for {len(blocks)} blocks")
    specs = [b if isinstance(b, BlockSpec) else describe_block(b, input_shape=s) for b, s in zip(blocks, shapes)]
    for spec in specs:
        _check_size(spec)
    names = list(titles) if titles is not None else [_default_title(s) for s in specs]
    subs = [None] * len(specs) if titles is not None else [describe_shortly(s) for s in specs]
    shown = [compact_spec(s) if compact else s for s in specs]
    layouts = [_layout(s, n, sub) for s, n, sub in zip(shown, names, subs)]
    gap = 0.3
    width = sum(l.width for l in layouts) + gap * (len(layouts) - 1)
    height = max(l.height for l in layouts)
    fig, ax = canvas(width, height, ax)
    x = 0.0
    for spec, lay, name, sub in zip(shown, layouts, names, subs):
        _render(ax, spec, lay, x, height - lay.height, name, sub, show_shapes)
        x += lay.width + gap
    fit_to_axes(ax, width, height)
    fig.diagram = specs  # type: ignore[attr-defined]
    return fig
