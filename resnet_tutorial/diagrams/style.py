"""Colours, fonts and the few shapes every diagram is made of (boxes, arrows, ⊕, ©).

Drawing happens in inches: one data unit is one inch of the figure, so a
9-point label always fits its box, whatever the diagram's size. A diagram
computes its extent, then :func:`canvas` makes a figure of exactly that size
(or fits the extent into the caller's axes).
"""

from __future__ import annotations

import matplotlib

if matplotlib.get_backend().lower() in {"", "template"}:  # pragma: no cover - headless safety
    matplotlib.use("Agg")
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

__all__ = [
    "FONT", "KIND_COLORS", "STAGE_COLORS", "SHORTCUT_STYLES", "arrow", "box", "canvas", "fit_to_axes",
    "fmt_shape", "merge_symbol", "polyline", "stage_color",
]

FONT = {"box": 9.0, "small": 8.0, "shape": 7.5, "title": 11.0, "section": 9.5}
INK = "#333333"
MUTED = "#777777"
HIGHLIGHT = "#5b3cc4"  # violet: apart from the red of projection shortcuts and the stage colours

# face, edge colour per layer kind: one colour per concept across every diagram
KIND_COLORS: dict[str, tuple[str, str]] = {
    "conv": ("#dbe8f6", "#4a78a8"),
    "linear": ("#d7ece9", "#3f8a80"),
    "norm": ("#fff1c7", "#b38f1d"),
    "act": ("#f9d9d6", "#b5534b"),
    "pool": ("#e6def3", "#6f5b9e"),
    "zeropad": ("#ffffff", "#888888"),
    "subsample": ("#ffffff", "#888888"),
    "pad": ("#ffffff", "#888888"),
    "flatten": ("#eeeeee", "#888888"),
    "dropout": ("#eeeeee", "#888888"),
    "identity": ("#ffffff", "#aaaaaa"),
    "other": ("#eeeeee", "#777777"),
}
# block fill / edge per stage (tableau colours, lightened fills)
STAGE_COLORS: list[tuple[str, str]] = [
    ("#dce7f3", "#4e79a7"), ("#dcefd9", "#59a14f"), ("#fde4cc", "#e07b16"),
    ("#eadcea", "#9c6b98"), ("#d6eeec", "#4a9d96"), ("#f8efc8", "#b8960f"),
]
# colour, linestyle, label of a skip path by kind
SHORTCUT_STYLES: dict[str, tuple[str, str, str]] = {
    "identity": ("#555555", "-", "identity shortcut"),
    "projection": ("#c0392b", "-", "projection shortcut (1×1 conv)"),
    "zeropad": ("#555555", (0, (4, 2)), "zero-padding shortcut"),
    "other": ("#7d3c98", (0, (1, 1.5)), "other shortcut"),
}


def stage_color(index: int | None) -> tuple[str, str]:
    """(face, edge) colour of stage ``index`` (grey for ``None``)."""
    if index is None:
        return ("#eeeeee", "#777777")
    return STAGE_COLORS[index % len(STAGE_COLORS)]


def fmt_shape(shape: tuple[int, ...] | None) -> str:
    """``(64, 56, 56)`` -> ``"64×56×56"``; ``None`` -> ``""``."""
    return "" if shape is None else "×".join(str(s) for s in shape)


def canvas(width: float, height: float, ax: Axes | None = None) -> tuple[Figure, Axes]:
    """Axes whose data units are inches, spanning ``[0, width] × [0, height]``.

    Without ``ax`` a new figure of exactly ``width × height`` inches is made (the
    axes fill it, no frame). With ``ax`` the extent is fitted into it (equal
    aspect), so fonts may be relatively larger if the axes are small.
    """
    if ax is None:
        fig = plt.figure(figsize=(width, height))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_gid(OWN_AXES)
    else:
        fig = ax.figure
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal", adjustable="box" if ax.figure is not None else "datalim")
    ax.axis("off")
    return fig, ax


OWN_AXES = "diagram-canvas"


def fit_to_axes(ax: Axes, width: float, height: float) -> float:
    """Shrink fonts, line widths and arrow heads when the diagram was drawn into the
    caller's axes and those are smaller than its natural ``width × height`` inches.

    Returns the factor applied (1.0 for a figure made by :func:`canvas`). The axes
    are assumed to hold only the diagram.
    """
    if ax.get_gid() == OWN_AXES:
        return 1.0
    ax.apply_aspect()
    bbox = ax.get_window_extent().transformed(ax.figure.dpi_scale_trans.inverted())
    scale = min(bbox.width / width, bbox.height / height, 1.0)
    if scale >= 0.999:
        return 1.0
    texts = list(ax.texts)
    lines = list(ax.lines)
    legend = ax.get_legend()
    if legend is not None:
        texts += legend.get_texts()
        lines += [h for h in legend.legend_handles if isinstance(h, matplotlib.lines.Line2D)]
    for t in texts:
        t.set_fontsize(t.get_fontsize() * scale)
    for line in lines:
        line.set_linewidth(line.get_linewidth() * scale)
        line.set_markersize(line.get_markersize() * scale)
    for p in ax.patches:
        p.set_linewidth(p.get_linewidth() * scale)
        if isinstance(p, FancyArrowPatch):
            p.set_mutation_scale(p.get_mutation_scale() * scale)
    return scale


def box(ax: Axes, x: float, y: float, w: float, h: float, text: str, *, kind: str = "other",
        colors: tuple[str, str] | None = None, gid: str | None = None, fontsize: float | None = None,
        dashed: bool = False, bold: bool = False, highlight: bool = False, text_color: str = INK,
        lw: float = 1.0) -> FancyBboxPatch:
    """A rounded box centred at ``(x, y)`` with centred text; ``gid`` tags it for tests."""
    face, edge = colors or KIND_COLORS.get(kind, KIND_COLORS["other"])
    if kind in ("zeropad", "subsample", "pad", "identity"):
        dashed = True
    patch = FancyBboxPatch(
        (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.06",
        facecolor=face, edgecolor=HIGHLIGHT if highlight else edge,
        linewidth=2.4 if highlight else lw, linestyle=(0, (3, 2)) if dashed else "-", zorder=3,
    )
    patch.set_gid(gid)
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize or FONT["box"], color=text_color,
            fontweight="bold" if bold else "normal", zorder=4, linespacing=1.25)
    return patch


def arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], *, color: str = INK,
          lw: float = 1.1, ls: object = "-", gid: str | None = None, head: bool = True,
          connection: str = "arc3,rad=0") -> FancyArrowPatch:
    """A straight (or, with ``connection``, curved) arrow from ``start`` to ``end``."""
    patch = FancyArrowPatch(start, end, arrowstyle="-|>,head_length=0.28,head_width=0.14" if head else "-",
                            mutation_scale=12, color=color, linewidth=lw, linestyle=ls,
                            shrinkA=0, shrinkB=0, zorder=2, connectionstyle=connection)
    patch.set_gid(gid)
    ax.add_patch(patch)
    return patch


def polyline(ax: Axes, points: list[tuple[float, float]], *, color: str = INK, lw: float = 1.1,
             ls: object = "-", gid: str | None = None, head: bool = True) -> None:
    """Straight segments through ``points``, with an arrow head on the last one."""
    xs, ys = zip(*points[:-1]) if len(points) > 2 else ((), ())
    if len(points) > 2:
        line = ax.plot(xs, ys, color=color, lw=lw, ls=ls, zorder=2, solid_capstyle="round")[0]
        line.set_gid(gid)
    arrow(ax, points[-2], points[-1], color=color, lw=lw, ls=ls, gid=gid, head=head)


def merge_symbol(ax: Axes, x: float, y: float, kind: str | None, *, r: float = 0.15,
                 gid: str | None = None) -> None:
    """⊕ for ``add``, a circled © for ``cat``, the function name in a circle otherwise."""
    circle = Circle((x, y), r, facecolor="white", edgecolor=INK, linewidth=1.2, zorder=3)
    circle.set_gid(gid)
    ax.add_patch(circle)
    if kind == "add":
        ax.plot([x - r * 0.62, x + r * 0.62], [y, y], color=INK, lw=1.3, zorder=4)
        ax.plot([x, x], [y - r * 0.62, y + r * 0.62], color=INK, lw=1.3, zorder=4)
    else:
        text = "C" if kind == "cat" else (kind or "?")[:3]
        ax.text(x, y, text, ha="center", va="center", fontsize=FONT["box"] * (r / 0.15),
                fontweight="bold", color=INK, zorder=4)
