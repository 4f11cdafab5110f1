"""Every explorer of every lesson: milliseconds from a control's change to the new PNG, on CPU.

    python benchmarks/explorer_latency.py                       # every lesson, full-mode control ranges
    python benchmarks/explorer_latency.py --lessons 01 04 --points 6      # a quick look at two lessons
    python benchmarks/explorer_latency.py --lessons 04 --update          # re-measure one lesson in the results
    PYTHONPATH=/path/to/old/checkout python benchmarks/explorer_latency.py --out results/x.json  # another version

The explorers and their controls are read from the lessons themselves: each
``notebooks/NN_*.ipynb`` of the checkout the package is imported from, every
code cell that calls ``explore(...)``. The lesson's first code cell after the
setup cell (its imports and settings) runs first, then the explorer cell with ``explore``
replaced by a recorder, so the benchmark gets the draw function (or
``LiveFigure`` / ``RunPlot`` class) and the very widgets the learner gets.
An explorer cell that needs names made by expensive earlier cells gets them
from ``CONTEXT`` below (cheap stand-ins, said there).

Each control is moved across its range while the others stay at their
defaults: a slider through ``--points`` values from its minimum to its
maximum and back to its default, a dropdown or toggle through every option,
a checkbox off and on. Every move is one frame, timed as the explorer makes
it: a ``LiveFigure`` updates its kept figure and renders a PNG
(``view.frame``); a plain function builds a new figure, which is rendered
as ``widgets.explore`` renders it (``live.figure_png``: tight bounding box)
or, in a checkout without ``resnet_tutorial.live``, as IPython's inline
backend did (``print_figure``, tight, zlib level 6), then closed. Each
frame's time is split into *compute* (a LiveFigure's ``compute``; for a
plain function the time before it creates its first figure), *drawing*
(artists, layout, rasterizing) and *encoding* (PNG; for a plain function
estimated by encoding its pixels once more). Not timed: the trip to the
browser and its drawing (the browser test measures the whole path). Each
move's CPU time in the measuring thread is recorded too (``cpu_*_ms``): on a
machine shared with other jobs the wall time grows with the load, the CPU time
of single-threaded work hardly, so it estimates the time on a quiet machine
(it leaves out work on other threads, e.g. torch ops on two threads).

Explorers that train (a ``RunPlot``, or a function in ``TRAINING``) are
not moved: one run with the default values is timed, to the first frame
on screen and to its end. Target: every other explorer within 150 ms
median and 300 ms slowest (issue 22), per explorer over all its moves.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `_common` when run as a script

import _common  # noqa: E402

TARGET_MEDIAN_MS = 150.0
TARGET_SLOWEST_MS = 300.0
TARGET_FIRST_FRAME_S = 1.0
#: Plain draw functions that train (timed as one run, not moved).
TRAINING = {"draw_bn_training"}
#: Code run before a lesson's explorer cells, for names its cells make in expensive earlier cells.
CONTEXT = {
    "11": (
        # the landscape explorer's cached nets; the two nets the lesson trains live are left out
        "l1 = cache['landscape_1d']\n"
        "batch = l1[l1.bn == 'batch']\n"
        "order = [f'{kind}{d}' for d in (shallow, deep) for kind in ('resnet', 'plain')]\n"
        "l2 = cache['landscape_2d']\n"
        "grids = {n: l2[l2.net == n] for n in order}\n"
        "live_grids = {}\n"
    ),
}
EXPLORE_CALL = re.compile(r"^(\w+\s*=\s*)?explore\(", re.MULTILINE)


# --------------------------------------------------------------------------- reading the lessons
def notebooks_dir() -> Path:
    """``notebooks/`` of the checkout ``resnet_tutorial`` is imported from (PYTHONPATH picks the version)."""
    import resnet_tutorial

    return Path(resnet_tutorial.__file__).resolve().parents[1] / "notebooks"


def _code(source: str) -> str:
    """A cell's source without IPython magics and shell lines."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


SETUP_CELL_MARKER = "# Setup (the same in every lesson)"  # scripts/setup_cell.py's MARKER


def explorers_of(notebook: Path) -> list[dict[str, Any]]:
    """Every ``explore(...)`` call of a lesson: ``{lesson, cell, name, draw, controls, options}``."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    code_cells = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    # the setup cell of scripts/setup_cell.py (it installs only on Colab/Kaggle) comes before the imports
    code_cells = [(i, src) for i, src in code_cells if not src.startswith(SETUP_CELL_MARKER)]
    lesson = notebook.name[:2]
    found: list[dict[str, Any]] = []

    def recorder(draw: Any, **kwargs: Any) -> None:
        options = {k: kwargs.pop(k) for k in ("manual", "continuous", "autorun", "title") if k in kwargs}
        found.append({"draw": draw, "controls": kwargs, "options": options})

    namespace: dict[str, Any] = {"__name__": f"lesson_{lesson}"}
    with contextlib.redirect_stdout(io.StringIO()):
        for _, source in code_cells[:1]:
            exec(compile(_code(source), f"{notebook.name}[setup]", "exec"), namespace)
        if lesson in CONTEXT:
            exec(compile(CONTEXT[lesson], f"CONTEXT[{lesson}]", "exec"), namespace)
        namespace["explore"] = recorder
        for index, source in code_cells[1:]:
            if EXPLORE_CALL.search(source):
                before = len(found)
                exec(compile(_code(source), f"{notebook.name}[{index}]", "exec"), namespace)
                for entry in found[before:]:
                    entry.update(lesson=lesson, cell=index, name=_name(entry["draw"]))
    import matplotlib.pyplot as plt

    plt.close("all")
    return found


def _name(draw: Any) -> str:
    return getattr(draw, "__name__", type(draw).__name__)


def sweep(control: Any, points: int) -> list[Any]:
    """The values a control is moved through: across its range, then back to its default."""
    import ipywidgets as W

    default = control.value
    if isinstance(control, W.Checkbox):
        values = [not default]
    elif isinstance(control, W.SelectMultiple):
        opts = [o[1] if isinstance(o, tuple) else o for o in control.options]
        values = [(o,) for o in opts] + [tuple(opts)]
    elif isinstance(control, (W.Dropdown, W.ToggleButtons, W.RadioButtons, W.Select, W.SelectionSlider)):
        values = [o[1] if isinstance(o, tuple) else o for o in control.options]
    elif isinstance(control, W.FloatLogSlider):
        values = [control.base ** (control.min + (control.max - control.min) * i / (points - 1)) for i in range(points)]
    elif isinstance(control, (W.IntSlider, W.FloatSlider)):
        lo, hi, step = control.min, control.max, control.step
        n = int(round((hi - lo) / step)) + 1
        idx = sorted({round(i * (n - 1) / (points - 1)) for i in range(points)}) if n > points else range(n)
        values = [lo + i * step for i in idx]
        values = [int(v) if isinstance(control, W.IntSlider) else round(v, 10) for v in values]
    else:
        raise ValueError(f"explorer_latency: no sweep for {type(control).__name__}; add one to sweep()")
    return [v for v in values if v != default] + [default]


# --------------------------------------------------------------------------- timing one frame
@contextlib.contextmanager
def _first_figure_clock() -> Iterator[list[float]]:
    """Record when the first matplotlib Figure is created (the end of a plain draw function's computing)."""
    from matplotlib.figure import Figure

    stamps: list[float] = []
    original = Figure.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        stamps.append(time.perf_counter())
        original(self, *args, **kwargs)

    Figure.__init__ = init
    try:
        yield stamps
    finally:
        Figure.__init__ = original


def _encode_estimate(fig: Any) -> float:
    """Seconds to PNG-encode the figure's last rendered pixels once (what a savefig spends encoding)."""
    import numpy as np
    from PIL import Image

    canvas = fig.canvas
    if not hasattr(canvas, "buffer_rgba"):
        return 0.0
    t0 = time.perf_counter()
    Image.fromarray(np.asarray(canvas.buffer_rgba())).save(io.BytesIO(), format="png", compress_level=_LEVEL)
    return time.perf_counter() - t0


_LEVEL = 6  # set in main: the zlib level the explorer uses


class Frame:
    """Makes one frame of an explorer the way ``widgets.explore`` does, and times its parts."""

    def __init__(self, draw: Any) -> None:
        self.view = None
        self.draw = draw
        try:
            from resnet_tutorial.live import LiveFigure, figure_png
        except ImportError:  # a checkout from before live.py: the inline backend's path
            from IPython.core.pylabtools import print_figure

            self.render_png = lambda fig: print_figure(fig, "png", bbox_inches="tight")
            return
        self.render_png = figure_png
        if isinstance(draw, type) and issubclass(draw, LiveFigure):
            self.view = draw()
        elif isinstance(draw, LiveFigure):
            self.view = draw
        if self.view is not None:
            self.view.go_live()

    def __call__(self, params: dict[str, Any]) -> dict[str, float]:
        cpu0 = time.thread_time()
        times = self._frame(params)
        times["cpu"] = time.thread_time() - cpu0 - times.pop("_extra_cpu", 0.0)
        return times

    def _frame(self, params: dict[str, Any]) -> dict[str, float]:
        if self.view is not None:
            t0 = time.perf_counter()
            self.view.frame(**params)
            total = time.perf_counter() - t0
            t = self.view.timings
            return {"total": total, "compute": t["compute_s"], "drawing": t["update_s"] + t["draw_s"],
                    "encoding": t["encode_s"]}
        import matplotlib.pyplot as plt
        from matplotlib.figure import Figure

        with _first_figure_clock() as stamps:
            t0 = time.perf_counter()
            result = self.draw(**params)
            t1 = time.perf_counter()
        if isinstance(result, Figure):
            self.render_png(result)
        t2 = time.perf_counter()
        cpu = time.thread_time()
        encoding = _encode_estimate(result) if isinstance(result, Figure) else 0.0  # not part of the frame
        extra_cpu = time.thread_time() - cpu
        t3 = time.perf_counter()
        plt.close("all")
        total = (t2 - t0) + (time.perf_counter() - t3)
        compute = (stamps[0] - t0) if stamps else (t1 - t0)
        return {"total": total, "compute": compute, "drawing": total - compute - encoding, "encoding": encoding,
                "_extra_cpu": extra_cpu}


# --------------------------------------------------------------------------- one explorer
def _is_training(entry: dict[str, Any]) -> bool:
    try:
        from resnet_tutorial.live import RunPlot
    except ImportError:
        RunPlot = None  # noqa: N806
    draw = entry["draw"]
    if RunPlot is not None and (isinstance(draw, RunPlot) or (isinstance(draw, type) and issubclass(draw, RunPlot))):
        return True
    return _name(draw) in TRAINING


def split_controls(controls: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(widgets, constants) of an explorer's keyword arguments."""
    import ipywidgets as W

    live = {k: c for k, c in controls.items() if isinstance(c, W.ValueWidget)}
    return live, {k: c for k, c in controls.items() if k not in live}


def measure_moves(entry: dict[str, Any], points: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Move every control of a non-training explorer across its range; per control and per explorer stats."""
    live, fixed = split_controls(entry["controls"])
    defaults = {k: c.value for k, c in live.items()}
    frame = Frame(entry["draw"])
    t0 = time.perf_counter()
    frame({**defaults, **fixed})  # the first frame, shown when the cell runs (untimed in the stats)
    first_s = time.perf_counter() - t0
    controls = []
    for name, control in live.items():
        samples, errors = [], []
        for value in sweep(control, points):
            try:
                samples.append(frame({**defaults, name: value, **fixed}))
            except Exception as exc:  # the explorer shows this error instead of a frame: reported, not timed
                errors.append(f"{name}={value!r}: {type(exc).__name__}: {exc}")
        totals = [s["total"] * 1000 for s in samples] or [float("nan")]
        cpu = [s["cpu"] * 1000 for s in samples] or [float("nan")]
        controls.append({
            "control": name, "kind": type(control).__name__, "moves": len(samples),
            "median_ms": statistics.median(totals), "slowest_ms": max(totals),
            "cpu_median_ms": statistics.median(cpu), "cpu_slowest_ms": max(cpu),
            **{f"{k}_ms": statistics.median(s[k] * 1000 for s in samples) if samples else float("nan")
               for k in ("compute", "drawing", "encoding")},
            "errors": len(errors), "first_error": errors[0][:200] if errors else "",
            "_totals": [t for t in totals if t == t], "_cpu": [t for t in cpu if t == t],
        })
        log(f"  {name:14s} {len(samples):3d} moves  median {controls[-1]['median_ms']:7.1f} ms  "
            f"slowest {controls[-1]['slowest_ms']:7.1f} ms" + (f"  {len(errors)} errors: {errors[0][:120]}" if errors else ""))
    every = [t for c in controls for t in c.pop("_totals")]
    every_cpu = [t for c in controls for t in c.pop("_cpu")]
    median = statistics.median(every) if every else float("nan")
    slowest = max(every) if every else float("nan")
    return {"kind": "LiveFigure" if frame.view is not None else "rebuilt figure", "first_frame_ms": first_s * 1000,
            "median_ms": median, "slowest_ms": slowest, "moves": len(every), "controls": controls,
            "cpu_median_ms": statistics.median(every_cpu) if every_cpu else float("nan"),
            "cpu_slowest_ms": max(every_cpu) if every_cpu else float("nan"),
            "met": bool(every) and median <= TARGET_MEDIAN_MS and slowest <= TARGET_SLOWEST_MS,
            "met_by_cpu": bool(every_cpu) and statistics.median(every_cpu) <= TARGET_MEDIAN_MS
            and max(every_cpu) <= TARGET_SLOWEST_MS}


def measure_run(entry: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """One run of a training explorer with its default values: time to the first frame and to the end."""
    live, fixed = split_controls(entry["controls"])
    params = {**{k: c.value for k, c in live.items()}, **fixed}
    frame = Frame(entry["draw"])
    stamps: list[float] = []
    t0 = time.perf_counter()
    if frame.view is not None:
        frame.view.sink = lambda png: stamps.append(time.perf_counter())
        frame.view.run(**params)
    else:
        frame(params)  # a plain function: its only frame comes at the end
        stamps.append(time.perf_counter())
    end = time.perf_counter()
    first = (stamps[0] - t0) if stamps else end - t0
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    log(f"  one run: first frame {first:.2f} s, end {end - t0:.1f} s, {len(stamps)} frames")
    return {"kind": "RunPlot" if frame.view is not None else "rebuilt figure (trains)", "first_frame_ms": first * 1000,
            "run_s": end - t0, "frames": len(stamps), "longest_gap_s": max(gaps) if gaps else None,
            "met": first <= TARGET_FIRST_FRAME_S}


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lessons", nargs="+", default=None, help="lesson numbers (default: all)")
    parser.add_argument("--points", type=int, default=12, help="values per slider, ends included (default 12)")
    parser.add_argument("--fast", action="store_true", help="FAST-mode control ranges (RESNET_TUTORIAL_FAST=1)")
    parser.add_argument("--no-training", dest="training", action="store_false", help="skip the training explorers")
    parser.add_argument("--base", nargs="+", default=[], metavar="NAME=VALUE",
                        help="start every explorer that has control NAME at VALUE instead of its default (depth=100)")
    parser.add_argument("--note", default="", help="a line about the conditions (e.g. 'machine loaded by 7 jobs')")
    parser.add_argument("--update", action="store_true",
                        help="keep the other lessons' rows of the existing result file (re-measure only --lessons)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/explorer_latency.json)")
    args = parser.parse_args(argv)
    if args.points < 2:
        parser.error("--points must be at least 2")
    os.environ["RESNET_TUTORIAL_FAST"] = "1" if args.fast else "0"

    import matplotlib

    matplotlib.use("Agg")
    import torch

    global _LEVEL
    try:
        from resnet_tutorial.live import PNG_LEVEL as _LEVEL  # noqa: N811
    except ImportError:
        _LEVEL = 6
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    rows, runs = [], []
    for notebook in sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        if args.lessons and notebook.name[:2] not in args.lessons:
            continue
        for index, entry in enumerate(explorers_of(notebook)):
            _apply_base(entry, args.base)
            print(f"{entry['lesson']} {entry['name']} (cell {entry['cell']})", flush=True)
            where = {"lesson": entry["lesson"], "index": index, "explorer": entry["name"], "cell": entry["cell"]}
            if _is_training(entry):
                if args.training:
                    runs.append({**where, **measure_run(entry, print)})
                continue
            rows.append({**where, **measure_moves(entry, args.points, print)})
    load_after = os.getloadavg()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for row in rows + runs:
        row["measured_utc"] = stamp
    controls_kept: list[dict[str, Any]] = []
    if args.update:
        rows, runs, controls_kept = _kept_rows(args.out, {r["lesson"] for r in rows + runs} | set(args.lessons or []),
                                               rows, runs, keep_runs=not args.training)
    result = build_result(rows, runs, args, load_before, load_after, time.perf_counter() - t_start)
    result["controls"] = sorted(controls_kept + result["controls"], key=lambda c: (c["lesson"], c.get("index", 0)))
    result["summary"]["torch threads"] = torch.get_num_threads()
    browser = _browser_drag()
    if browser:
        result["browser_drag"] = browser
    path = _common.write_result("explorer_latency", result, path=args.out)
    print(f"wrote {path}")
    return 0


def _kept_rows(out: Path | None, measured: set[str], rows: list[dict[str, Any]], runs: list[dict[str, Any]],
               keep_runs: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """``--update``: the existing result's rows of the lessons not measured now, merged with the new ones
    (all its training runs too with ``keep_runs``: ``--no-training`` measured none)."""
    path = out or _common.RESULTS / "explorer_latency.json"
    try:
        old = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return rows, runs, []
    def keep(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in items if r.get("lesson") not in measured]
    order = lambda r: (r["lesson"], r.get("index", 0))  # noqa: E731
    old_runs = old.get("training", []) if keep_runs else keep(old.get("training", []))
    return (sorted(keep(old.get("rows", [])) + rows, key=order), sorted(old_runs + runs, key=order),
            keep(old.get("controls", [])))


def _apply_base(entry: dict[str, Any], base: list[str]) -> None:
    """Move the named controls to the given values before measuring (``--base depth=100``)."""
    import ast

    for item in base:
        name, _, text = item.partition("=")
        control = entry["controls"].get(name)
        if control is not None and hasattr(control, "value"):
            control.value = ast.literal_eval(text)


def build_result(rows: list[dict[str, Any]], runs: list[dict[str, Any]], args: Any, load_before: tuple[float, ...],
                 load_after: tuple[float, ...], seconds: float) -> dict[str, Any]:
    """The JSON: one row per explorer, per-control detail, the training runs, summary and target."""
    met = [bool(r["met"]) for r in rows]
    summary = {
        "explorers (moved)": len(rows),
        "meeting 150 ms median / 300 ms slowest": f"{sum(met)} of {len(met)}",
        "meeting it by CPU time (the estimate for a quiet machine)": f"{sum(bool(r.get('met_by_cpu')) for r in rows)} of {len(rows)}",
        "training explorers (one run each)": len(runs),
        "mode": "FAST" if args.fast else "full",
        "values per slider": args.points,
        "controls started at": ", ".join(args.base) or "the lesson's defaults",
        "load average before/after (1 min)": f"{load_before[0]:.2f} / {load_after[0]:.2f}",
        "benchmark wall time (s)": round(seconds, 1),
    }
    if args.note:
        summary["conditions"] = args.note
    table = [{k: v for k, v in r.items() if k != "controls"} for r in rows]
    detail = [{"lesson": r["lesson"], "index": r.get("index", 0), "explorer": r["explorer"], **c}
              for r in rows for c in r.get("controls", [])]
    return {
        "rows": table,
        "controls": detail,
        "training": runs,
        "summary": summary,
        "target": f"each explorer that does not train: median ≤ {TARGET_MEDIAN_MS:.0f} ms and slowest ≤ "
                  f"{TARGET_SLOWEST_MS:.0f} ms per move; each training explorer: first frame ≤ {TARGET_FIRST_FRAME_S:g} s",
        "target_met": bool(rows) and all(met) and all(r["met"] for r in runs),
    }


def _browser_drag() -> dict[str, Any] | None:
    """The browser test's drag of lesson 01's depth slider (build/explorer_drag.json), if it ran."""
    path = _common.ROOT / "build" / "explorer_drag.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    sys.exit(main())
