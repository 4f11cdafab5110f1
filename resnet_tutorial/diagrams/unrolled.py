"""Veit et al. (2016)'s unrolled view: n residual blocks are a sum over 2^n paths.

``y = (1 + f_n) ∘ ... ∘ (1 + f_1) (x)``: multiplying out, every subset of
the blocks is one path from input to output (a block is either passed
through or skipped), so there are 2^n paths and C(n, k) of them have length
k. :func:`draw_unrolled` draws the compact net above and the unrolled paths
below, coloured by length; ``lesion=k`` removes block k and greys out the
2^(n-1) paths that went through it (the other half still reach the output,
which is why deleting one block of a ResNet costs little).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .style import FONT, INK, MUTED, arrow, box, canvas, fit_to_axes, merge_symbol, polyline

__all__ = ["UnrolledSpec", "describe_unrolled", "draw_unrolled"]

LANE = 0.3  # vertical distance between two paths
COL = 1.0  # horizontal distance between two blocks
LESION_RED = "#c92a2a"


@dataclass(frozen=True)
class UnrolledSpec:
    """The paths of ``n`` unrolled residual blocks.

    ``paths`` lists each path as the (1-based) blocks it passes through, sorted
    by length then order: ``()`` is the path that skips every block.
    ``lesion`` is the removed block (``None``: none); ``alive`` tells, per path,
    whether it still reaches the output.
    """

    n: int
    paths: tuple[tuple[int, ...], ...]
    lesion: int | None = None

    @property
    def alive(self) -> tuple[bool, ...]:
        return tuple(self.lesion not in p for p in self.paths)

    def length_counts(self, alive_only: bool = False) -> dict[int, int]:
        """``{k: number of paths of length k}`` (C(n, k) without a lesion)."""
        counts = {k: 0 for k in range(self.n + 1)}
        for path, ok in zip(self.paths, self.alive):
            if ok or not alive_only:
                counts[len(path)] += 1
        return counts


def describe_unrolled(n_blocks: int, *, lesion: int | None = None) -> UnrolledSpec:
    """The 2^n paths of ``n_blocks`` residual blocks (1 <= n <= 4 for drawing; up to 10 here).

    Example::

        describe_unrolled(3).length_counts()   # {0: 1, 1: 3, 2: 3, 3: 1}
    """
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or not 1 <= n_blocks <= 10:
        raise ValueError(f"n_blocks must be an int from 1 to 10, got {n_blocks!r}")
    if lesion is not None and (isinstance(lesion, bool) or not isinstance(lesion, int)
                               or not 1 <= lesion <= n_blocks):
        raise ValueError(f"lesion must be a block number from 1 to {n_blocks} (or None), got {lesion!r}")
    blocks = range(1, n_blocks + 1)
    paths = [p for k in range(n_blocks + 1) for p in itertools.combinations(blocks, k)]
    return UnrolledSpec(n_blocks, tuple(paths), lesion)


def length_colors(n: int) -> list[tuple[float, float, float, float]]:
    """One colour per path length 0..n (short: light, long: dark)."""
    cmap = mpl.colormaps["viridis"]
    return [cmap(0.9 - 0.75 * k / max(n, 1)) for k in range(n + 1)]


def _columns(n: int, x0: float) -> list[float]:
    """x of block i's boxes, shared by the compact net and the lanes so they line up."""
    return [x0 + 1.15 + COL * i for i in range(n)]


def _compact(ax: Axes, spec: UnrolledSpec, y: float, x0: float) -> None:
    """The residual net itself: x -> f1 -> ⊕ -> ... -> fn -> ⊕ -> y, with skip arcs."""
    ax.text(x0 - 0.12, y, "x", ha="right", va="center", fontsize=12, style="italic", family="serif")
    x = x0
    for i, bx in enumerate(_columns(spec.n, x0), start=1):
        start = x
        arrow(ax, (x, y), (bx - 0.25, y))
        cut = spec.lesion == i
        box(ax, bx, y, 0.5, 0.32, f"$f_{i}$", colors=("#f1f3f5", "#adb5bd") if cut else ("#dbe8f6", "#4a78a8"),
            gid=f"compact:f{i}", dashed=cut)
        if cut:
            ax.plot([bx - 0.2, bx + 0.2], [y - 0.13, y + 0.13], color=LESION_RED, lw=2.2, zorder=6)
            ax.plot([bx - 0.2, bx + 0.2], [y + 0.13, y - 0.13], color=LESION_RED, lw=2.2, zorder=6)
        mx = bx + 0.25 + 0.24
        arrow(ax, (bx + 0.25, y), (mx - 0.11, y))
        merge_symbol(ax, mx, y, "add", r=0.11)
        sx = start + 0.1 if i > 1 else bx - 0.45
        polyline(ax, [(sx, y), (sx, y + 0.38), (mx, y + 0.38), (mx, y + 0.11)], color="#555555")
        x = mx + 0.11
    arrow(ax, (x, y), (x + 0.3, y))
    ax.text(x + 0.4, y, "y", ha="left", va="center", fontsize=12, style="italic", family="serif")


def _lanes(ax: Axes, spec: UnrolledSpec, top: float, x0: float) -> float:
    """Every path as one horizontal lane from the input fan to the output ⊕; returns the sink x."""
    colors = length_colors(spec.n)
    n_paths = len(spec.paths)
    ys = [top - LANE * k for k in range(n_paths)]
    mid = (ys[0] + ys[-1]) / 2
    cols = _columns(spec.n, x0)
    src, lane0 = x0, cols[0] - 0.45
    lane1 = cols[-1] + 0.45
    sink = lane1 + 0.7
    ax.text(src - 0.12, mid, "x", ha="right", va="center", fontsize=12, style="italic", family="serif")
    for path, ok, y in zip(spec.paths, spec.alive, ys):
        color = colors[len(path)] if ok else "#ced4da"
        ls = "-" if ok else (0, (3, 2))
        ax.plot([src, lane0], [mid, y], color=color, lw=1.2, ls=ls, zorder=1)
        line = ax.plot([lane0, lane1], [y, y], color=color, lw=1.6 if ok else 1.1, ls=ls, zorder=1)[0]
        line.set_gid(f"path:{'-'.join(map(str, path)) or 'skip-all'}:{'alive' if ok else 'lesioned'}")
        ax.plot([lane1, sink - 0.14], [y, mid], color=color, lw=1.2, ls=ls, zorder=1)
        for i in path:
            cut = i == spec.lesion
            box(ax, cols[i - 1], y, 0.42, 0.21, f"$f_{i}$", colors=("white", color), fontsize=7.5,
                gid=f"pathblock:{i}", text_color=LESION_RED if cut else INK, lw=1.3)
    merge_symbol(ax, sink, mid, "add", r=0.14, gid="merge:add")
    arrow(ax, (sink + 0.14, mid), (sink + 0.45, mid))
    ax.text(sink + 0.55, mid, "y", ha="left", va="center", fontsize=12, style="italic", family="serif")
    _length_labels(ax, spec, ys, sink + 0.95, colors)
    return sink


def _length_labels(ax: Axes, spec: UnrolledSpec, ys: list[float], x: float, colors: list) -> None:
    """A bracket and "length k: m paths" beside each group of lanes."""
    lengths = [len(p) for p in spec.paths]
    for k in range(spec.n + 1):
        rows = [y for y, L in zip(ys, lengths) if L == k]
        alive = spec.length_counts(alive_only=True)[k]
        text = f"length {k}: {len(rows)} path{'s' * (len(rows) != 1)}"
        if spec.lesion is not None:
            text += f" ({alive} left)"
        hi, lo = max(rows) + 0.1, min(rows) - 0.1
        ax.plot([x - 0.08, x, x, x - 0.08], [hi, hi, lo, lo], color=colors[k], lw=1.4)
        ax.text(x + 0.1, (hi + lo) / 2, text, ha="left", va="center", fontsize=FONT["small"], color=INK)


def draw_unrolled(n_blocks: int = 3, *, lesion: int | None = None, ax: Axes | None = None,
                  title: str | None = None) -> Figure:
    """Veit et al.'s unrolled view of ``n_blocks`` residual blocks (1 to 4).

    Top: the residual net ``x -> f1 -> ⊕ -> ... -> y``. Below: its 2^n paths,
    one lane each, coloured by length (the number of blocks the path goes
    through), with the count per length (C(n, k)) on the right.

    Args:
        n_blocks: number of residual blocks, 1 to 4 (16 paths).
        lesion: a block number (1-based) to delete: it is crossed out above and
            the 2^(n-1) paths through it are greyed and dashed; the counts give
            the paths left per length.
        ax: draw into these axes (the figure is sized automatically without it).
        title: caption (default says what is drawn; ``""`` for none).

    Returns:
        The figure; ``fig.diagram`` holds the :class:`UnrolledSpec`.

    Example::

        draw_unrolled(3, lesion=2)

    Lessons: 11.
    """
    spec = describe_unrolled(n_blocks, lesion=lesion)
    if n_blocks > 4:
        raise ValueError(f"draw_unrolled draws 1 to 4 blocks (16 paths); got {n_blocks}: "
                         "use describe_unrolled for the counts of more")
    n_paths = 2 ** n_blocks
    if title is None:
        title = f"{n_blocks} residual blocks = {n_paths} paths"
        if lesion is not None:
            title += f"; deleting block {lesion} removes {n_paths // 2} of them"
    x0 = 0.45
    width = _columns(n_blocks, x0)[-1] + 0.45 + 0.7 + 0.95 + 2.2
    top_pad = 0.5 if title else 0.15
    height = top_pad + 1.57 + LANE * (n_paths - 1) + 0.3
    fig, ax = canvas(width, height, ax)
    if title:
        ax.text(0.15, height - 0.27, title, ha="left", va="center", fontsize=FONT["title"],
                fontweight="bold", color=INK)
    ax.text(0.15, height - top_pad, "the network", ha="left", va="top", fontsize=FONT["small"],
            color=MUTED, style="italic")
    y_net = height - top_pad - 0.62
    _compact(ax, spec, y_net, x0)
    ax.text(0.15, y_net - 0.38, "unrolled: every path from x to y", ha="left", va="top",
            fontsize=FONT["small"], color=MUTED, style="italic")
    top = y_net - 0.95
    _lanes(ax, spec, top, x0)
    fit_to_axes(ax, width, height)
    fig.diagram = spec  # type: ignore[attr-defined]
    return fig
