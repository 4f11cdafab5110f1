"""Figures that redraw fast: built once, updated in place, sent as PNG frames; runs you watch grow.

An explorer that rebuilds its matplotlib figure on every slider move spends
most of its time laying out ticks and text and encoding the PNG twice
(``bbox_inches="tight"``): 0.4-0.8 s on a 2-core CPU. This module keeps the
figure instead:

* :class:`LiveFigure` — subclass it with ``build(fig)`` (axes, labels,
  empty artists, once), ``compute(**params)`` (the numbers, cached per
  parameter set) and ``update(data, **params)`` (``set_data``,
  ``set_text``, limits). :meth:`LiveFigure.draw` returns the figure (tests,
  headless); :meth:`LiveFigure.frame` returns one PNG. In *live* mode (an
  explorer on screen) the artists registered with :meth:`LiveFigure.dynamic`
  are drawn over a saved background ("blitting", about 1 ms) as long as
  nothing else changed; a change of limits, labels or legend is seen through
  matplotlib's ``stale`` flag and triggers one full draw.
* :class:`RunPlot` — a LiveFigure whose curves grow while a run trains
  (``train(**params)`` calls :meth:`RunPlot.start` and :meth:`RunPlot.add`):
  a frame at most every ``interval_s`` seconds, earlier runs kept as faded
  curves until :meth:`RunPlot.clear`, and a stop request (``stop`` event)
  ends the run at the next point with :class:`StopRun`.

Nothing here imports ipywidgets: :mod:`resnet_tutorial.widgets` puts the
frames on screen. Figures are plain :class:`matplotlib.figure.Figure`
objects with an Agg canvas, never registered with pyplot, so a run drawing
in a background thread cannot be picked up by the notebook's inline backend.
"""

from __future__ import annotations

import io
import math
import struct
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = ["LiveFigure", "RunPlot", "Panel", "StopRun", "TRAINING_FRAME_S", "figure_png", "encode_png", "png_caption", "nice_limits",
           "power_of_ten", "log_ticks", "PNG_LEVEL"]

#: zlib level of the frames: 1 encodes about 2x faster than matplotlib's 6 for 10-25 % more bytes.
PNG_LEVEL = 1


#: seconds between frames of a run that trains for minutes: a frame costs 50-100 ms of a 2-core CPU,
#: so one a second keeps the run fast and the picture alive (RunPlot.interval_s is 0.25 s for short runs)
TRAINING_FRAME_S = 1.0


class StopRun(Exception):
    """Raised inside a run (by :meth:`RunPlot.add`) when its Stop button was pressed."""


def _png_info(caption: str | None) -> Any:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if caption:
        info.add_itxt("Title", caption)
    return info


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png(canvas: FigureCanvasAgg, caption: str | None = None, level: int = PNG_LEVEL) -> bytes:
    """The canvas's current pixels as PNG bytes (8-bit RGB; ``caption`` stored as the PNG's Title).

    Written directly (rows unfiltered, zlib level 1): 1.5-2x faster than
    Pillow's encoder with its per-row filters, for about the same size on
    plots (flat backgrounds compress well without filters). The caption (an
    iTXt chunk) lets a test or a browser check read which parameters a frame
    shows without OCR.
    """
    width, height = canvas.get_width_height(physical=True)
    rgb = np.asarray(canvas.buffer_rgba())[:, :, :3]
    rows = np.empty((height, 3 * width + 1), dtype=np.uint8)
    rows[:, 0] = 0  # filter type None for every row
    rows[:, 1:] = rgb.reshape(height, -1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    text = b"" if not caption else _chunk(b"iTXt", b"Title\0\0\0\0\0" + caption.encode("utf-8"))
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + text
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + _chunk(b"IEND", b""))


def png_caption(data: bytes | memoryview) -> str | None:
    """The Title a frame carries (see :func:`encode_png`, :func:`figure_png`), or None."""
    data = bytes(data)
    pos = 8
    while pos + 8 <= len(data):
        (length,), tag = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if tag in (b"iTXt", b"tEXt") and body.startswith(b"Title\0"):
            if tag == b"tEXt":
                return body[6:].decode("latin-1")
            _, rest = body.split(b"\0", 1)
            return rest[2:].split(b"\0", 2)[2].decode("utf-8")
        pos += 12 + length
    return None


def figure_caption(fig: Figure) -> str:
    """The figure's suptitle, else its first axes title: what a frame is about, in words."""
    sup = getattr(fig, "_suptitle", None)
    if sup is not None and sup.get_text():
        return sup.get_text()
    for ax in fig.axes:
        if ax.get_title():
            return ax.get_title()
    return ""


def figure_png(fig: Figure, *, tight: bool = True, level: int = PNG_LEVEL) -> bytes:
    """PNG of any figure the way the inline backend shows it (``bbox_inches="tight"``), for rebuilt figures.

    ``tight=False`` skips the second layout pass (about a fifth of the time) for
    figures that were laid out already.
    """
    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight" if tight else None,
                pil_kwargs={"compress_level": level, "pnginfo": _png_info(figure_caption(fig))})
    return out.getvalue()


def nice_limits(lo: float, hi: float, *, pad: float = 0.0, steps: Sequence[float] = (1, 2, 2.5, 5)) -> tuple[float, float]:
    """``(lo, hi)`` widened by ``pad`` and snapped outward to a multiple of a round step.

    The step is about a fifth of the span, so limits move only when the data
    crosses a round number: consecutive frames mostly keep their axes, and
    keep-the-axes frames are the cheap ones (blitting).
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"nice_limits needs finite bounds, got {lo!r}, {hi!r}")
    lo, hi = min(lo, hi) - pad, max(lo, hi) + pad
    span = hi - lo
    if span <= 0:
        span = abs(hi) or 1.0
        lo, hi = lo - span / 2, hi + span / 2
    raw = span / 5
    base = 10.0 ** math.floor(math.log10(raw))
    step = next((s * base for s in steps if s * base >= raw), 10 * base)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(value: float, _pos: int | None = None) -> str:
    """Tick label ``10⁻⁵`` for a whole power of ten, in plain Unicode (empty otherwise).

    Matplotlib's default log labels are mathtext, which costs a layout pass per
    label on every full draw; these are ordinary text.
    """
    if not value > 0 or not math.isfinite(value):
        return ""
    exponent = round(math.log10(value))
    if abs(math.log10(value) - exponent) > 1e-6:
        return ""
    return "1" if exponent == 0 else "10" + str(exponent).translate(_SUPERSCRIPTS)


def log_ticks(axis: Any, numticks: int = 7) -> None:
    """Whole-decade ticks with :func:`power_of_ten` labels and no minor ticks on a log ``axis`` (cheap to draw)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    axis.set_major_locator(LogLocator(numticks=numticks))
    axis.set_major_formatter(FuncFormatter(power_of_ten))
    axis.set_minor_locator(NullLocator())


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for a parameter value (lists and sets as tuples), or raise TypeError."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(_freeze(v) for v in value)
    hash(value)
    return value


class LiveFigure:
    """A figure built once and updated in place; :meth:`frame` gives the next PNG fast.

    Subclasses set ``figsize`` and implement:

    * ``build(fig)`` — axes, labels, legends, and the artists that will
      change, created empty and registered with :meth:`dynamic`; a fixed
      layout (``fig.subplots_adjust``) or ``tight = True`` (one
      ``tight_layout`` after the first update);
    * ``compute(**params)`` — the numbers to show (optional; cached for the
      last ``cache_size`` parameter sets, so moving back to a value is free);
    * ``update(data, **params)`` — put ``data`` into the artists
      (``set_data``, ``set_text``, ``set_verts``...) and set limits with
      :meth:`set_limits` (which leaves unchanged limits alone).

    :meth:`draw` returns the :class:`~matplotlib.figure.Figure` (for tests and
    headless runs: every artist is a normal one). After :meth:`go_live`
    (done by the explorer) dynamic artists are animated: a frame redraws only
    them over the saved background unless something else went stale.
    ``timings`` holds the last call's ``compute_s``, ``update_s``,
    ``draw_s``, ``encode_s``; ``full_draws`` and ``blits`` count frames.
    """

    figsize: tuple[float, float] = (12.0, 3.6)
    dpi: float = 100.0
    cache_size: int = 64
    tight: bool = False

    def __init__(self) -> None:
        self.fig = Figure(figsize=self.figsize, dpi=self.dpi)
        self.canvas = FigureCanvasAgg(self.fig)
        self.lock = threading.RLock()
        self.timings: dict[str, float] = {}
        self.full_draws = 0
        self.blits = 0
        self._dynamic: list[Artist] = []
        self._live = False
        self._built = False
        self._background: Any = None
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()

    # ------------------------------------------------------------------ to override
    def build(self, fig: Figure) -> None:
        """Create the axes and (empty) artists once."""
        raise NotImplementedError

    def compute(self, **params: Any) -> Any:
        """The numbers a frame shows for ``params`` (default: nothing to compute)."""
        return None

    def update(self, data: Any, **params: Any) -> None:
        """Put ``data`` (from :meth:`compute`) into the artists."""
        raise NotImplementedError

    def caption(self) -> str:
        """What the current frame shows, in words (stored in the PNG; default: the suptitle)."""
        return figure_caption(self.fig)

    # ------------------------------------------------------------------ helpers for subclasses
    def dynamic(self, *artists: Artist) -> Any:
        """Register artists that change from frame to frame; returns the first (or the tuple)."""
        for artist in artists:
            if artist not in self._dynamic:
                self._dynamic.append(artist)
                if self._live:
                    artist.set_animated(True)
        return artists[0] if len(artists) == 1 else artists

    def forget(self, artist: Artist) -> None:
        """Remove a dynamic artist from the figure and from the frame list."""
        if artist in self._dynamic:
            self._dynamic.remove(artist)
        artist.remove()

    @staticmethod
    def set_limits(ax: Axes, x: tuple[float, float] | None = None, y: tuple[float, float] | None = None) -> bool:
        """Set axis limits only where they differ (an unchanged axis keeps the cheap frame); True if changed."""
        changed = False
        if x is not None and tuple(ax.get_xlim()) != (float(x[0]), float(x[1])):
            ax.set_xlim(*x)
            changed = True
        if y is not None and tuple(ax.get_ylim()) != (float(y[0]), float(y[1])):
            ax.set_ylim(*y)
            changed = True
        return changed

    @staticmethod
    def set_text(text: Any, value: str) -> None:
        """``text.set_text(value)`` only if it differs (a static text that changes costs a full draw)."""
        if text.get_text() != value:
            text.set_text(value)

    # ------------------------------------------------------------------ the engine
    def data(self, **params: Any) -> Any:
        """:meth:`compute` for ``params``, from the cache when these parameters were seen lately."""
        try:
            key: Hashable | None = _freeze(tuple(sorted(params.items())))
        except TypeError:  # an unhashable constant (a dict of results): no caching
            key = None
        if key is not None and key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        value = self.compute(**params)
        if key is not None and self.cache_size > 0:
            self._cache[key] = value
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return value

    def _ensure_built(self) -> bool:
        if self._built:
            return False
        self.build(self.fig)
        self._built = True
        return True

    def draw(self, **params: Any) -> Figure:
        """Show ``params``: build on the first call, then update in place; returns the figure."""
        with self.lock:
            t0 = time.perf_counter()
            data = self.data(**params)
            t1 = time.perf_counter()
            first = self._ensure_built()
            self.update(data, **params)
            if first and self.tight:
                self.fig.tight_layout()
            self.timings.update(compute_s=t1 - t0, update_s=time.perf_counter() - t1)
            return self.fig

    def go_live(self) -> None:
        """Switch to frames for a screen: dynamic artists become animated (blitted from now on)."""
        with self.lock:
            self._live = True
            for artist in self._dynamic:
                artist.set_animated(True)
            self._background = None

    @property
    def live(self) -> bool:
        return self._live

    def render(self) -> None:
        """Draw the canvas: blit the dynamic artists if nothing else changed, else draw everything.

        Spines and legends of axes that hold dynamic artists are drawn after them
        in every frame (animated too), as a full draw would put them on top:
        a curve never runs over a legend and a blitted frame equals a full draw.
        """
        with self.lock:
            if not self._live:
                self.canvas.draw()
                self.full_draws += 1
                return
            artists = sorted((a for a in self._dynamic if a.figure is not None), key=lambda a: a.get_zorder())
            overlays = self._overlays(artists)
            new = [a for a in overlays if not a.get_animated()]
            for artist in new:
                artist.set_animated(True)
            if new or self._background is None or self.fig.stale:
                self.canvas.draw()  # animated artists are skipped: this is the background
                self._background = self.canvas.copy_from_bbox(self.fig.bbox)
                self.full_draws += 1
            else:
                self.canvas.restore_region(self._background)
                self.blits += 1
            for artist in artists + overlays:
                self.fig.draw_artist(artist)
            # drawing a legend marks its box stale; the canvas is current, so the next frame may blit
            self.fig.stale = False

    @staticmethod
    def _overlays(artists: list[Artist]) -> list[Artist]:
        """What a full draw puts over the dynamic artists of an axes: its spines, then its legend."""
        out: list[Artist] = []
        for ax in dict.fromkeys(a.axes for a in artists if a.axes is not None):
            out += sorted(ax.spines.values(), key=lambda a: a.get_zorder())
            if ax.get_legend() is not None:
                out.append(ax.get_legend())
        return out

    def png(self) -> bytes:
        """The current state as one PNG frame (no second layout pass; caption in the PNG's Title)."""
        with self.lock:
            t0 = time.perf_counter()
            self.render()
            t1 = time.perf_counter()
            data = encode_png(self.canvas, self.caption())
            self.timings.update(draw_s=t1 - t0, encode_s=time.perf_counter() - t1)
            return data

    def frame(self, **params: Any) -> bytes:
        """:meth:`draw` then :meth:`png`: what one slider move costs."""
        with self.lock:
            self.draw(**params)
            return self.png()


# ====================================================================== runs you watch
@dataclass(frozen=True)
class Panel:
    """One axes of a :class:`RunPlot`: y label, title, fixed limits (``None`` ends follow the data), y scale."""

    ylabel: str
    title: str = ""
    ylim: tuple[float | None, float | None] = (None, None)
    yscale: str = "linear"
    legend: str = "upper right"


@dataclass
class _Series:
    line: Line2D
    panel: int
    xs: list[float]
    ys: list[float]
    label: str
    diverged: bool = False


class RunPlot(LiveFigure):
    """Curves that grow while a run trains; earlier runs stay on the plot, faded, until cleared.

    Subclass it with ``panels`` (one :class:`Panel` per axes), ``xlabel`` and
    ``train(**params)``: the run, which calls :meth:`start` once (label and
    the x range) and :meth:`add` for every new point (a series name, x, y).
    Headless, :meth:`draw` runs ``train`` to the end and returns the figure.
    Under an explorer (``sink`` set, :meth:`go_live` done) :meth:`add` sends
    a frame at most every ``interval_s`` seconds (and :meth:`flush` at once,
    e.g. at the end of an epoch), and raises :class:`StopRun` once ``stop``
    is set, so the run ends where it is and keeps what it drew.

    A series keeps its colour across runs (by name); ``style`` sets its line
    style (``"-"``, ``"--"``...) and ``marker`` its marker. A NaN or infinite
    ``y`` ends that series and puts "diverged at x" into its legend label.
    """

    panels: tuple[Panel, ...] = (Panel("loss"),)
    xlabel: str = "step"
    keep_runs: int = 4
    interval_s: float = 0.25
    x_start: float = 0.0  # the left end of the x axis (1 for epochs: there is no epoch 0)
    x_pad: float = 0.0  # room right of the last x, so the last markers are not cut in half
    faded_alpha: float = 0.3
    colors: tuple[str, ...] = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7")

    def __init__(self) -> None:
        super().__init__()
        self.sink: Callable[[bytes], None] | None = None
        self.stop = threading.Event()
        self.axes: list[Axes] = []
        self.runs: list[dict[str, Any]] = []  # earlier runs: {"label", "series": {name: _Series}}
        self.series: dict[str, _Series] = {}
        self.label = ""
        self.x_max = 1.0
        self._color_of: dict[str, str] = {}
        self._legend_dirty = False
        self._last_frame = 0.0
        self._started = time.perf_counter()
        self._status: Any = None

    # ------------------------------------------------------------------ to override
    def train(self, **params: Any) -> None:
        """The run: call :meth:`start`, then :meth:`add` for each new point."""
        raise NotImplementedError

    def build(self, fig: Figure) -> None:
        """One axes per panel in a row, a status line on top."""
        self.axes = list(np.atleast_1d(fig.subplots(1, len(self.panels))))
        for ax, panel in zip(self.axes, self.panels):
            self._style_axes(ax, panel)
        self._status = self.dynamic(fig.suptitle(" ", fontsize=11))
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.82, wspace=0.28)

    def _style_axes(self, ax: Axes, panel: Panel) -> None:
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.set_yscale(panel.yscale)
        if panel.yscale == "log":
            log_ticks(ax.yaxis)
        if panel.title:
            ax.set_title(panel.title, fontsize=10)
        ax.grid(alpha=0.3)
        lo, hi = panel.ylim
        if lo is not None and hi is not None:
            ax.set_ylim(lo, hi)

    # ------------------------------------------------------------------ called by train()
    def start(self, label: str, x_max: float) -> None:
        """Begin a new run called ``label`` over x in ``[0, x_max]``: earlier curves fade, a frame goes out."""
        if not x_max > 0:
            raise ValueError(f"x_max must be > 0 (the last step or epoch of the run), got {x_max!r}")
        with self.lock:
            self._ensure_built()
            self._retire_current()
            self.label, self.x_max = label, float(x_max)
            self._started = time.perf_counter()
            self.note(f"{label}: starting")
            self._refresh()
        self.flush()

    def add(self, series: str, x: float, y: float, *, panel: int = 0, style: str = "-",
            marker: str | None = None, check: bool = True) -> None:
        """Append the point ``(x, y)`` to ``series`` in ``panel``; maybe send a frame; stop if asked.

        ``check=False`` adds the point even when Stop was pressed (points that belong together,
        such as one epoch's training and test error, then never end up half drawn).
        """
        if check:
            self.check_stop(x)
        with self.lock:
            s = self.series.get(series)
            if s is None:
                s = self._new_series(series, panel, style, marker)
            if not s.diverged:
                if math.isfinite(y):
                    s.xs.append(float(x))
                    s.ys.append(float(y))
                else:
                    s.diverged = True
                    s.label = f"{series} (diverged at {self.xlabel} {x:g})"
                    self._legend_dirty = True
        self.tick()

    def elapsed_s(self) -> float:
        """Seconds since the run's :meth:`start` (for "done in N s")."""
        return time.perf_counter() - self._started

    def seconds_left(self, done: float, total: float) -> float:
        """About how long the run needs still: the time since :meth:`start`, scaled by the work left.

        ``done`` and ``total`` are in any unit of work (steps, or steps weighted by depth);
        before any work is done there is no estimate (``inf``).
        """
        if not done > 0:
            return math.inf
        return self.elapsed_s() * max(total / done - 1.0, 0.0)

    def check_stop(self, x: float) -> None:
        """Raise :class:`StopRun` if Stop was pressed (``x``: where the run is, for the message)."""
        if self.stop.is_set():
            raise StopRun(f"stopped at {self.xlabel} {x:g}")

    def tick(self) -> None:
        """Send a frame if ``interval_s`` has passed since the last one (for subclasses that record more than curves)."""
        if self.sink is not None and time.perf_counter() - self._last_frame >= self.interval_s:
            self.flush()

    def note(self, text: str) -> None:
        """The status line above the panels (what runs, where it is, how it ended)."""
        with self.lock:
            self._ensure_built()
            self.set_text(self._status, text)

    def flush(self) -> None:
        """Send a frame now (if an explorer listens)."""
        if self.sink is None:
            return
        with self.lock:
            self._refresh()
            data = self.png()
            self._last_frame = time.perf_counter()
        self.sink(data)

    def clear(self) -> None:
        """Remove the earlier (faded) runs; the current one stays."""
        with self.lock:
            for run in self.runs:
                for s in run["series"].values():
                    s.line.remove()
            self.runs = []
            self._legend_dirty = True
            self._background = None
            self._refresh()

    # ------------------------------------------------------------------ machinery
    def draw(self, **params: Any) -> Figure:
        """Run ``train(**params)`` to its end (or its stop) and return the figure."""
        self.run(**params)
        return self.fig

    def run(self, **params: Any) -> str:
        """Run ``train(**params)``; returns ``"done"``, ``"stopped"`` (Stop or Ctrl-C: the curves stay)."""
        t0 = time.perf_counter()
        with self.lock:
            self._ensure_built()
        self.stop.clear()
        outcome = "done"
        try:
            self.train(**params)
        except StopRun as stop:
            outcome = "stopped"
            self.note(f"{self._prefix()}{stop} (Stop pressed)")
        except KeyboardInterrupt:
            self.note(f"{self._prefix()}interrupted")
            self._finish()
            raise
        self._finish()
        self.timings["run_s"] = time.perf_counter() - t0
        return outcome

    def _prefix(self) -> str:
        """``"label: "`` for the status line, or nothing before the run has started."""
        return f"{self.label}: " if self.label else ""

    def _finish(self) -> None:
        with self.lock:
            self._refresh()
        self.flush()

    def _new_series(self, name: str, panel: int, style: str, marker: str | None) -> _Series:
        if not 0 <= panel < len(self.axes):
            raise ValueError(f"panel must be 0..{len(self.axes) - 1} ({len(self.panels)} panels), got {panel}")
        color = self._color_of.setdefault(name, self.colors[len(self._color_of) % len(self.colors)])
        (line,) = self.axes[panel].plot([], [], style, color=color, marker=marker, markersize=4, lw=1.6, label=name)
        self.dynamic(line)
        s = _Series(line, panel, [], [], name)
        self.series[name] = s
        self._legend_dirty = True
        return s

    def _retire_current(self) -> None:
        """The current run's curves become an earlier run: faded, static (drawn into the background)."""
        if self.series:
            for s in self.series.values():
                s.line.set_data(s.xs, s.ys)
                s.line.set(alpha=self.faded_alpha, lw=1.0, markersize=2, label="_faded")
                if s.line in self._dynamic:
                    self._dynamic.remove(s.line)
                s.line.set_animated(False)
            self.runs.append({"label": self.label, "series": self.series, "x_max": self.x_max})
        while len(self.runs) > self.keep_runs:
            for s in self.runs.pop(0)["series"].values():
                s.line.remove()
        self.series = {}
        self._legend_dirty = True
        self._background = None  # the faded curves now belong to the background: draw it again

    def _refresh(self) -> None:
        """Lines get their data; limits and legends follow (a change there means one full draw)."""
        for s in self.series.values():
            s.line.set_data(s.xs, s.ys)
        x_max = max([self.x_max, *(run["x_max"] for run in self.runs)])
        for i, (ax, panel) in enumerate(zip(self.axes, self.panels)):
            self.set_limits(ax, x=(self.x_start, x_max + self.x_pad), y=self._ylim(i, panel))
        if self._legend_dirty:
            self._draw_legends()
            self._legend_dirty = False

    def _ylim(self, index: int, panel: Panel) -> tuple[float, float] | None:
        lo, hi = panel.ylim
        if lo is not None and hi is not None:
            return None
        ys = [y for s in self._all_series() if s.panel == index for y in s.ys]
        if not ys:
            return None
        if panel.yscale == "log":
            pos = [y for y in ys if y > 0]
            if not pos:
                return None
            a, b = math.floor(math.log10(min(pos))), math.ceil(math.log10(max(pos)))
            return (10.0 ** a if lo is None else lo, 10.0 ** max(b, a + 1) if hi is None else hi)
        a, b = nice_limits(min(ys) if lo is None else lo, max(ys) if hi is None else hi)
        return (a if lo is None else lo, b if hi is None else hi)

    def _all_series(self) -> list[_Series]:
        return [*self.series.values(), *(s for run in self.runs for s in run["series"].values())]

    def _draw_legends(self) -> None:
        for i, ax in enumerate(self.axes):
            handles = [s.line for s in self.series.values() if s.panel == i]
            labels = [s.label for s in self.series.values() if s.panel == i]
            if any(s.panel == i for run in self.runs for s in run["series"].values()):
                handles.append(Line2D([], [], color="gray", alpha=self.faded_alpha + 0.2, lw=1.0))
                labels.append("earlier runs (faded)")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
            if handles:
                ax.legend(handles, labels, fontsize=8, loc=self.panels[i].legend)
