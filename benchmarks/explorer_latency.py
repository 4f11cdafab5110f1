"""Lesson-01 gradient explorer: seconds from a slider move to a new PNG, on CPU.

    python benchmarks/explorer_latency.py                     # MLP + CNN at depth 20/56/100, toggles at 56
    python benchmarks/explorer_latency.py --repeats 1 --depths 20 --no-cnn --no-toggles   # smoke test

What a learner waits for after moving a slider of the explorer in
``notebooks/01_vanishing_exploding_gradients.ipynb``: ``widgets.explore``
calls ``L01.draw_gradient_explorer`` (build the net, one forward and
backward pass in float64, activation statistics, three panels), IPython's
inline backend turns the figure into a PNG (``print_figure`` with the
``InlineBackend`` defaults: dpi = ``figure.dpi``, ``bbox_inches="tight"``),
and ``plt.close("all")`` drops it. All three are timed. Not timed: sending
the PNG to the browser and drawing it there.

One untimed warm-up call per architecture comes first (loads and caches the
FashionMNIST batch, parses mathtext, fills font caches); its time is
reported separately. Then every setting is measured in ``--repeats``
interleaved rounds, so a neighbour's load spike hits all settings alike;
median, min and max are reported. Per row the median time is split into
*compute* (batch, model, ``grad_norms``, ``activation_stats``), *figure*
(the rest of the draw call: axes, lines, ``tight_layout``) and *render*
(PNG). Torch runs with the machine's default thread count unless
``--threads`` says otherwise: that is what a learner's kernel gets.

Target: median ≤ 1.0 s at depth 56 with the notebook's defaults (MLP,
sigmoid, default init, no BN, no shortcut).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `_common` when run as a script

import _common  # noqa: E402

TARGET_S = 1.0
TARGET_DEPTH = 56
# The notebook's defaults (cell 17 of lesson 01).
DEFAULTS: dict[str, Any] = dict(activation="sigmoid", init="default", bn=False, shortcut=False, arch="mlp")


def settings(depths: list[int], cnn: bool, toggles: bool) -> list[dict[str, Any]]:
    """The explorer states to time: defaults at each depth (MLP, then CNN), then toggles at depth 56."""
    out = [{**DEFAULTS, "depth": d} for d in depths]
    if cnn:
        out += [{**DEFAULTS, "arch": "cnn", "depth": d} for d in depths]
    if toggles:
        for arch in ("mlp", "cnn") if cnn else ("mlp",):
            base = {**DEFAULTS, "arch": arch, "depth": TARGET_DEPTH}
            out += [{**base, "bn": True}, {**base, "shortcut": True}]
        out.append({**DEFAULTS, "depth": TARGET_DEPTH, "activation": "relu", "init": "kaiming"})
    return out


class _Clock:
    """Adds up the wall time spent inside the wrapped functions (the compute part of a draw)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Any) -> Any:
        def timed(*args: Any, **kw: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


@contextlib.contextmanager
def _compute_clock(lesson: Any) -> Iterator[_Clock]:
    """Time the compute steps that ``draw_gradient_explorer`` looks up in its module, then restore them."""
    clock = _Clock()
    names = ("fashion_batch", "make_deep_net", "grad_norms", "activation_stats")
    saved = {n: getattr(lesson, n) for n in names}
    try:
        for n, fn in saved.items():
            setattr(lesson, n, clock.wrap(fn))
        yield clock
    finally:
        for n, fn in saved.items():
            setattr(lesson, n, fn)


def inline_display_settings() -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """Formats, ``print_figure`` kwargs and rcParams of IPython's inline backend (its defaults)."""
    from matplotlib_inline.config import InlineBackend

    cfg = InlineBackend()
    return sorted(cfg.figure_formats), dict(cfg.print_figure_kwargs), dict(cfg.rc)


def one_redraw(lesson: Any, params: dict[str, Any], formats: list[str], print_kwargs: dict[str, Any]) -> dict[str, float]:
    """What one slider move costs: draw, render as the notebook's display would, close."""
    import matplotlib.pyplot as plt
    from IPython.core.pylabtools import print_figure

    with _compute_clock(lesson) as clock:
        t0 = time.perf_counter()
        fig = lesson.draw_gradient_explorer(**params)
        t1 = time.perf_counter()
    png_bytes = 0
    for fmt in formats:  # IPython runs one formatter per enabled format
        data = print_figure(fig, fmt, base64=True, **print_kwargs)
        png_bytes += len(data or "") * 3 // 4
    t2 = time.perf_counter()
    plt.close("all")  # what widgets._show does after display
    t3 = time.perf_counter()
    return {
        "total": t3 - t0,
        "compute": clock.seconds,
        "figure": (t1 - t0) - clock.seconds,
        "render": t2 - t1,
        "close": t3 - t2,
        "png_kib": png_bytes / 1024,
    }


def _label(p: dict[str, Any]) -> str:
    flags = [n for n in ("bn", "shortcut") if p[n]]
    return f"{p['arch']} {p['activation']}/{p['init']}" + (" +" + "+".join(flags) if flags else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 56, 100])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per setting (median, min, max)")
    parser.add_argument("--no-cnn", dest="cnn", action="store_false", help="skip the CNN rows")
    parser.add_argument("--no-toggles", dest="toggles", action="store_false", help="skip BN/shortcut/ReLU rows at depth 56")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the machine's default)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/explorer_latency.json)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    load_before = os.getloadavg()
    t_import = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")  # the inline backend renders with Agg too
    import matplotlib.pyplot as plt
    import torch

    from resnet_tutorial.lessons import l01_vanishing_exploding_gradients as L01

    import_s = time.perf_counter() - t_import
    if args.threads:
        torch.set_num_threads(args.threads)
    formats, print_kwargs, rc = inline_display_settings()
    matplotlib.rcParams.update(rc)

    todo = settings(args.depths, args.cnn, args.toggles)
    warmup: dict[str, float] = {}
    for arch in dict.fromkeys(p["arch"] for p in todo):  # first use of each arch (its own batch size)
        warmup[arch] = one_redraw(L01, {**DEFAULTS, "arch": arch, "depth": min(args.depths)}, formats, print_kwargs)["total"]
    print(f"import {import_s:.2f} s; warm-up (untimed) " + ", ".join(f"{a} {s:.2f} s" for a, s in warmup.items()))

    samples: list[list[dict[str, float]]] = [[] for _ in todo]
    for _ in range(args.repeats):
        for i, params in enumerate(todo):
            samples[i].append(one_redraw(L01, params, formats, print_kwargs))
    load_after = os.getloadavg()

    rows = []
    for params, runs in zip(todo, samples):
        totals = [r["total"] for r in runs]
        med = {k: statistics.median(r[k] for r in runs) for k in ("compute", "figure", "render", "close", "png_kib")}
        rows.append(
            {
                "setting": _label(params),
                "depth": params["depth"],
                "median_s": statistics.median(totals),
                "min_s": min(totals),
                "max_s": max(totals),
                "compute_s": med["compute"],
                "figure_s": med["figure"],
                "render_s": med["render"] + med["close"],
                "png_kib": med["png_kib"],
                "params": params,
            }
        )

    head = f"{'setting':30s} {'depth':>5s} {'median':>8s} {'min':>7s} {'max':>7s} | {'compute':>8s} {'figure':>7s} {'render':>7s}"
    print(f"\nseconds per redraw, {args.repeats} round(s), torch threads {torch.get_num_threads()}:")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['setting']:30s} {r['depth']:5d} {r['median_s']:8.3f} {r['min_s']:7.3f} {r['max_s']:7.3f} | "
            f"{r['compute_s']:8.3f} {r['figure_s']:7.3f} {r['render_s']:7.3f}"
        )

    key = next((r for r in rows if r["params"] == {**DEFAULTS, "depth": TARGET_DEPTH}), None)
    target = f"median redraw ≤ {TARGET_S:.1f} s at depth {TARGET_DEPTH} (MLP, sigmoid, default init, no BN, no shortcut)"
    target_met = key is not None and key["median_s"] <= TARGET_S
    if key is None:
        print(f"\ntarget not checked: depth {TARGET_DEPTH} with the default settings was not measured")
    else:
        print(f"\ntarget: {target}: {key['median_s']:.3f} s -> {'met' if target_met else 'NOT met'}")
    summary: dict[str, Any] = {
        f"median at depth {TARGET_DEPTH} (s)": key["median_s"] if key else None,
        "warm-up, first call (s)": {a: round(s, 3) for a, s in warmup.items()},
        "import (s)": import_s,
        "rounds": args.repeats,
        "torch threads": torch.get_num_threads(),
        "inline display": f"{'+'.join(formats)}, dpi {plt.rcParams['figure.dpi']:g}, {print_kwargs}",
        "load average before/after (1 min)": f"{load_before[0]:.2f} / {load_after[0]:.2f}",
    }
    for r in rows:
        r.pop("params")
    result = {"rows": rows, "summary": summary, "target": target, "target_met": target_met}
    path = _common.write_result("explorer_latency", result, path=args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
