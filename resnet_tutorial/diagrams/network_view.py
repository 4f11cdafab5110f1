"""Draw a whole network at the block level: one row per section (stem, each stage, head).

Each block is one box coloured by its stage, labelled with the convolutions
of its main path (``3×3, 64`` / ``1×1, 64 · 3×3, 64 · 1×1, 256``); its
shortcut is an arc over the box into the merge (⊕ add, © concatenate):
grey for the identity, red with a square for a 1×1 projection, dashed for
zero-padding, none at all for a plain block. The left column names each
section and gives the feature-map size it outputs. Long rows are shortened:
a run of identical blocks keeps its first two and last one, the rest become
one "⋯ n more" box; rows still too long wrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import nn

from .blockspec import BlockSpec
from .layers import WEIGHT_KINDS, Layer
from .netspec import NetworkSpec, Section, describe_network
from .style import (FONT, HIGHLIGHT, INK, MUTED, SHORTCUT_STYLES, arrow, box, canvas, fit_to_axes, fmt_shape,
                    merge_symbol, polyline, stage_color)

__all__ = ["draw_network"]

CHAR_W = 0.066  # inches per character at 8.5 pt
LABEL_W = 1.35  # the left column with section names and sizes
ARROW = 0.26
MERGE_R = 0.08
ARC_UP = 0.2  # height of a shortcut arc above its box
ROW_GAP = 0.42
BLOCK_W = 0.92


@dataclass
class _Item:
    kind: str  # "input" | "layer" | "block" | "collapsed"
    text: str
    w: float
    h: float
    obj: Layer | BlockSpec | None = None
    count: int = 0
    stage: int | None = None
    hidden: list["_Item"] = field(default_factory=list)  # what a "⋯ n more" item stands for
    keep: bool = False  # highlighted: never hidden in a "⋯ n more" item


@dataclass
class _Row:
    label: str
    sub: str
    items: list[_Item] = field(default_factory=list)

    @property
    def width(self) -> float:
        return sum(i.w + ARROW + (2 * MERGE_R + 0.1 if i.kind == "block" and _merges(i) else 0)
                   for i in self.items)

    @property
    def height(self) -> float:
        return max((i.h for i in self.items), default=0.5)


def _merges(item: _Item) -> bool:
    return isinstance(item.obj, BlockSpec) and item.obj.merge is not None


def _two_lines(label: str) -> str:
    """``"7×7 conv, 64, /2"`` -> ``"7×7 conv\\n64, /2"`` so stem boxes stay narrow."""
    return label.replace(", ", "\n", 1) if len(label) > 9 and ", " in label else label


def _block_text(b: BlockSpec) -> str:
    """Main-path summary: the weight layers (``3×3, 64, /2``), or every layer of a one-weight block."""
    path = b.pre + b.main
    weights = [l for l in path if l.kind in WEIGHT_KINDS]
    if len(weights) >= 2:
        lines = [l.label.replace(" conv", "") for l in weights]
    else:
        lines = [l.label for l in path if l.kind not in ("flatten", "identity")]
    if len(lines) > 4:
        lines = lines[:2] + ["⋯", lines[-1]]
    return "\n".join(lines)


def _text_w(text: str, minimum: float) -> float:
    return max(minimum, max(len(s) for s in text.split("\n")) * CHAR_W + 0.2)


def _item(obj: Layer | BlockSpec, stage: int | None) -> _Item:
    if isinstance(obj, BlockSpec):
        text = _block_text(obj)
        return _Item("block", text, max(BLOCK_W, _text_w(text, 0)), 0.2 + 0.16 * (text.count("\n") + 1),
                     obj, stage=stage)
    text = _two_lines(obj.label)
    return _Item("layer", text, _text_w(text, 0.5), 0.5 if "\n" in text else 0.36, obj)


def _signature(item: _Item) -> object:
    if item.keep:
        return None
    if item.kind == "block":
        return item.obj.signature()  # type: ignore[union-attr]
    if item.kind == "layer":
        return ("layer", item.text, item.obj.out_shape)  # type: ignore[union-attr]
    return None


def _longest_run(items: list[_Item]) -> tuple[int, int, int, int]:
    """(items covered, start, period, repeats) of the longest run of a repeated pattern of 1-3 items."""
    sigs = [_signature(i) for i in items]
    best = (0, 0, 1, 0)
    for p in (1, 2, 3):
        for i in range(len(items) - p + 1):
            pattern = sigs[i:i + p]
            if None in pattern:
                continue
            r = 1
            while sigs[i + r * p:i + (r + 1) * p] == pattern:
                r += 1
            if r * p > best[0] and r >= (5 if p == 1 else 4):
                best = (r * p, i, p, r)
    return best


def _collapse(items: list[_Item], max_items: int) -> list[_Item]:
    """Shorten long runs of a repeated block (or layer pattern): keep the first two
    repeats and the last one, and put one "⋯ n more" item for the others."""
    items = list(items)
    while sum(i.kind != "input" for i in items) > max_items:
        covered, start, p, r = _longest_run(items)
        if not covered:
            break
        keep = 2 if p == 1 else 1  # repeats shown before the "⋯": two single blocks, or one pattern
        hidden = items[start + keep * p:start + (r - 1) * p]
        first = items[start]
        more = _Item("collapsed", f"⋯\n{len(hidden)} more", 0.8, max(i.h for i in hidden),
                     count=len(hidden), stage=first.stage, hidden=hidden)
        items[start + keep * p:start + (r - 1) * p] = [more]
    return items


def _rows(spec: NetworkSpec, max_per_row: int, marks: dict[int, str]) -> list[_Row]:
    rows: list[_Row] = []
    for n, sec in enumerate(spec.sections):
        items = [_item(i, sec.stage) for i in sec.items
                 if not (isinstance(i, Layer) and i.kind == "identity" and id(i) not in marks)]
        for item in items:
            item.keep = id(item.obj) in marks
        if n == 0:
            items.insert(0, _Item("input", f"input\n{fmt_shape(spec.input_shape)}" if spec.shapes_known
                                  else "input", 0.75, 0.4))
        items = _collapse(items, max_per_row)
        name = sec.name.split(".")[-1] if sec.kind == "stage" else sec.name
        size = fmt_shape(sec.out_shape) if spec.shapes_known or (sec.out_shape and len(sec.out_shape) == 1) \
            else (f"{sec.out_shape[0]} ch" if sec.out_shape else "")
        n_blocks = len(sec.blocks)
        sub = size + (f"\n{n_blocks} block{'s' * (n_blocks != 1)}" if n_blocks else "")
        per_row = max_per_row + (items[0].kind == "input" if items else 0)
        for k in range(0, max(len(items), 1), per_row):
            rows.append(_Row(name if k == 0 else f"{name} (cont.)", sub if k == 0 else "",
                             items[k:k + per_row]))
    return rows


def _highlights(spec: NetworkSpec, highlight: Sequence[str] | Mapping[str, str] | None) -> dict[int, str]:
    """id(item object) -> note for every highlighted module (ValueError for unknown names)."""
    if highlight is None:
        return {}
    if isinstance(highlight, str):
        highlight = [highlight]
    notes = highlight if isinstance(highlight, Mapping) else {h: "" for h in highlight}
    return {id(spec.resolve(name)): note for name, note in notes.items()}


def _draw_item(ax: Axes, item: _Item, x: float, y: float, marks: dict[int, str]) -> float:
    """Draw one item with its left edge at ``x`` on the row axis ``y``; returns its right edge."""
    cx = x + item.w / 2
    lit = item.obj is not None and id(item.obj) in marks
    if item.kind == "input":
        ax.text(cx, y, item.text, ha="center", va="center", fontsize=FONT["small"], color=INK)
    elif item.kind == "collapsed":
        box(ax, cx, y, item.w, item.h, item.text, colors=("#ffffff", stage_color(item.stage)[1]),
            dashed=True, fontsize=FONT["small"], gid=f"collapsed:{item.count}")
    elif item.kind == "block":
        b = item.obj
        box(ax, cx, y, item.w, item.h, item.text, colors=stage_color(item.stage), fontsize=FONT["small"],
            gid=f"block:{b.name}", highlight=lit)  # type: ignore[union-attr]
    else:
        layer = item.obj
        box(ax, cx, y, item.w, item.h, item.text, kind=layer.kind, fontsize=FONT["small"],  # type: ignore[union-attr]
            gid=f"layer:{layer.name}:{layer.call}", highlight=lit)  # type: ignore[union-attr]
    name = _caption(item)
    if name:
        ax.text(cx, y - item.h / 2 - 0.05, name, ha="center", va="top", fontsize=FONT["shape"], color=MUTED)
    if lit and marks[id(item.obj)]:
        ax.text(cx, y + item.h / 2 + 0.06, marks[id(item.obj)], ha="center", va="bottom",
                fontsize=FONT["shape"], color=HIGHLIGHT, fontweight="bold")
    return x + item.w


def _caption(item: _Item) -> str:
    """Module names under the blocks of a top-level stage (``hidden2``), where they say more than a path."""
    names = [i.obj.name for i in (item.hidden or [item]) if isinstance(i.obj, BlockSpec)]
    if not names or any("." in n or not n for n in names):
        return ""
    return names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"


def _draw_arc(ax: Axes, b: BlockSpec, x_in: float, x_merge: float, y: float, h: float) -> None:
    color, ls, _ = SHORTCUT_STYLES.get(b.shortcut_kind, SHORTCUT_STYLES["other"])
    top = y + h / 2 + ARC_UP
    lw = 1.6 if b.shortcut_kind == "projection" else 1.1
    polyline(ax, [(x_in, y), (x_in, top), (x_merge, top), (x_merge, y + MERGE_R)], color=color, ls=ls,
             lw=lw, gid=f"shortcut:{b.shortcut_kind}:{b.name}")
    if b.shortcut_kind == "projection":
        ax.plot([(x_in + x_merge) / 2], [top], marker="s", ms=5.5, color=color, zorder=5)


def _draw_row(ax: Axes, row: _Row, x0: float, y: float, marks: dict[int, str]) -> tuple[float, float]:
    """Items left to right with arrows, arcs and merges; returns (first item's left, last right)."""
    x = x0
    prev_end: float | None = None
    for item in row.items:
        if prev_end is not None:
            arrow(ax, (prev_end, y), (x, y))
        x_in = x - ARROW / 2 if prev_end is not None else x - 0.1
        end = _draw_item(ax, item, x, y, marks)
        if item.kind == "block" and _merges(item):
            b = item.obj
            mx = end + 0.1 + MERGE_R
            ax.plot([end, mx - MERGE_R], [y, y], color=INK, lw=1.1, zorder=2)
            merge_symbol(ax, mx, y, b.merge, r=MERGE_R, gid=f"merge:{b.merge}:{b.name}")  # type: ignore[union-attr]
            if b.has_shortcut:  # type: ignore[union-attr]
                _draw_arc(ax, b, x_in, mx, y, item.h)  # type: ignore[arg-type]
            end = mx + MERGE_R
        prev_end = end
        x = end + ARROW
    return x0, prev_end if prev_end is not None else x0


def _legend(ax: Axes, spec: NetworkSpec, y: float, x0: float) -> None:
    kinds = sorted({b.shortcut_kind for b in spec.blocks} - {"none"}, key=list(SHORTCUT_STYLES).index)
    if not spec.blocks:
        return
    if not kinds:
        ax.text(x0, y, "plain network: no shortcuts", fontsize=FONT["small"], color=MUTED,
                va="center", style="italic")
        return
    handles = []
    for k in kinds:
        color, ls, label = SHORTCUT_STYLES[k]
        handles.append(Line2D([0], [0], color=color, ls=ls, lw=1.6 if k == "projection" else 1.1,
                              marker="s" if k == "projection" else None, ms=5, label=label))
    if any(b.merge == "cat" for b in spec.blocks):
        handles.append(Line2D([0], [0], ls="none", marker="o", ms=9, mfc="white", mec=INK,
                              label="C  concatenate (channels add up)"))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(x0, y - 0.2), bbox_transform=ax.transData,
              ncol=len(handles), frameon=False, fontsize=FONT["small"], handlelength=2.4,
              borderaxespad=0, columnspacing=1.5)


def _row_headroom(row: _Row, marks: dict[int, str]) -> float:
    arcs = any(i.kind == "block" and isinstance(i.obj, BlockSpec) and i.obj.has_shortcut for i in row.items)
    notes = any(i.obj is not None and marks.get(id(i.obj)) for i in row.items)
    return max(ARC_UP + 0.1 if arcs else 0.0, 0.22 if notes else 0.0)


def _default_title(spec: NetworkSpec) -> str:
    n = len(spec.blocks)
    parts = [spec.title] + ([f"{n} blocks"] if n else [])
    if spec.shapes_known:
        parts.append(f"input {fmt_shape(spec.input_shape)}")
    return "  ·  ".join(parts)


def _layout_rows(rows: list[_Row], marks: dict[int, str], top: float) -> list[float]:
    """The y of each row's axis, top to bottom, starting below ``top``."""
    ys, y = [], top
    for row in rows:
        y -= _row_headroom(row, marks) + row.height / 2
        ys.append(y)
        y -= row.height / 2 + ROW_GAP
    return ys


def _draw_labels(ax: Axes, row: _Row, y: float, stage: int | None) -> None:
    color = stage_color(stage)[1] if stage is not None else INK
    ax.text(0.12, y + 0.02, row.label, ha="left", va="bottom", fontsize=FONT["section"], fontweight="bold",
            color=color)
    if row.sub:
        ax.text(0.12, y - 0.02, row.sub, ha="left", va="top", fontsize=FONT["shape"], color=MUTED,
                linespacing=1.3)


def draw_network(model: nn.Module | NetworkSpec, *, input_shape: Sequence[int] | None = None,
                 ax: Axes | None = None, highlight: Sequence[str] | Mapping[str, str] | None = None,
                 title: str | None = None, max_per_row: int = 8) -> Figure:
    """Draw a network at the block level, read from the model itself.

    One row per section: the stem, each stage (one box per block, coloured by
    stage, its shortcut as an arc: grey identity, red projection, dashed
    zero-padding, none for a plain block), the head. The left column gives
    each section's output size (``C×H×W`` with ``input_shape``, channels without).

    Args:
        model: any ``nn.Module`` taking one tensor, or a :class:`NetworkSpec`
            from :func:`describe_network`.
        input_shape: one example's shape, e.g. ``(3, 224, 224)`` or ``(1, 28, 28)``.
        ax: draw into these axes (the figure is sized automatically without it).
        highlight: module names to emphasise (violet outline), e.g. ``["conv1", "fc"]``;
            a mapping adds a note above each, ``{"fc": "new head: 10 classes"}``. A
            module inside a block highlights its block; unknown names raise ValueError.
        title: caption (default: class name, number of blocks, input shape; ``""`` for none).
        max_per_row: items per row before runs of identical blocks are shortened
            (first two, "⋯ n more", last) and, if still too long, the row wraps.

    Returns:
        The figure; ``fig.diagram`` holds the :class:`NetworkSpec` it drew.

    Example::

        draw_network(create_model("resnet18"), input_shape=(3, 224, 224))

    Lessons: 00, 01, 04, 06, 07, 09.
    """
    if max_per_row < 4:
        raise ValueError(f"max_per_row must be at least 4, got {max_per_row}")
    spec = model if isinstance(model, NetworkSpec) else describe_network(model, input_shape=input_shape)
    marks = _highlights(spec, highlight)
    rows = _rows(spec, max_per_row, marks)
    sections = _row_sections(spec, rows)
    title = _default_title(spec) if title is None else title
    top_pad = 0.55 if title else 0.15
    ys = _layout_rows(rows, marks, 0.0)
    height = top_pad - (ys[-1] - rows[-1].height / 2) + (0.55 if spec.blocks else 0.2)
    x0 = LABEL_W + 0.3
    width = x0 + max(r.width for r in rows) + 0.1
    fig, ax = canvas(width, height, ax)
    ys = [y + height - top_pad for y in ys]
    if title:
        ax.text(0.12, height - 0.28, title, ha="left", va="center", fontsize=FONT["title"], fontweight="bold",
                color=INK)
    previous: tuple[float, float] | None = None
    for row, y, sec in zip(rows, ys, sections):
        _draw_labels(ax, row, y, sec.stage)
        start, end = _draw_row(ax, row, x0, y, marks)
        if previous is not None:
            _connector(ax, previous, (start, y), rows[rows.index(row) - 1].height, row, marks)
        previous = (end, y)
    _legend(ax, spec, 0.3, 0.12)
    fit_to_axes(ax, width, height)
    fig.diagram = spec  # type: ignore[attr-defined]
    return fig


def _row_sections(spec: NetworkSpec, rows: list[_Row]) -> list[Section]:
    """The section each row belongs to (a wrapped stage has several rows)."""
    out, k = [], -1
    for row in rows:
        if not row.label.endswith("(cont.)"):
            k += 1
        out.append(spec.sections[k])
    return out


def _connector(ax: Axes, end: tuple[float, float], start: tuple[float, float], h_prev: float, row: _Row,
               marks: dict[int, str]) -> None:
    """A thin line from the end of one row to the start of the next (text-like wrapping)."""
    (xe, ye), (xs, ys) = end, start
    y_mid = ((ye - h_prev / 2) + (ys + row.height / 2 + _row_headroom(row, marks))) / 2
    x_left = xs - 0.24
    polyline(ax, [(xe, ye), (xe + 0.1, ye), (xe + 0.1, y_mid), (x_left, y_mid), (x_left, ys), (xs, ys)],
             color="#9a9a9a", lw=0.9)
