"""Wall time of every lesson, top to bottom in a fresh kernel, in FAST and full mode, on this CPU and under the AVX2 limitation.

    python benchmarks/lessons.py                              # both modes, both CPU kinds, every lesson (long)
    python benchmarks/lessons.py --mode full --cpu avx2       # one column; the other columns' figures are kept
    python benchmarks/lessons.py --mode fast --cpu native --notebooks notebooks/00_start_here.ipynb

Each notebook is executed from a copy in memory (the committed notebooks are
never modified) with ``resnet_tutorial.executor`` (the executor the tests use):
a fresh kernel of the notebook's kernelspec (``resnet-tutorial``), timed from
kernel start to kernel shutdown. FAST mode sets ``RESNET_TUTORIAL_FAST=1``,
full mode removes it. ``--cpu avx2`` runs the kernel as an AVX2 laptop would:
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` (capability AVX2, no native
bf16; on a bf16 CPU this is somewhat slower than a real AVX2 machine), and
records the capability the kernel's torch reported. The thread count is left
at the machine's default, which is what a learner's kernel gets (torch threads
are recorded). Each lesson's three slowest cells are recorded with their
seconds (nbclient's timing of each cell), and every cell that took a second or more. The executed copies are written as
HTML and .ipynb under ``build/benchmarks/lessons/<run>/`` (not timed), so a failure can be
read there.

Results merge into ``benchmarks/results/lessons.json`` per run (``fast``,
``full``, ``fast_avx2``, ``full_avx2``) and per notebook, each figure with its
own date: a partial run keeps the other figures. A failing lesson is recorded
as failed with the error's last line; the others still run, and the exit
status is 1. The machine is shared: say under what load you measured, and
rerun a lesson whose figure looks off.

Targets: every lesson's full mode ≤ 5 min on this 2-core CPU with native bf16
and ≤ 10 min under the AVX2 limitation; the FAST series ≤ 15 min in total.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `_common` when run as a script

import _common  # noqa: E402

NAME = "lessons"
MODES = ("fast", "full")
CPUS = ("native", "avx2")
#: One record per (mode, CPU kind): "fast", "full", "fast_avx2", "full_avx2".
RUNS = tuple(m if c == "native" else f"{m}_{c}" for c in CPUS for m in MODES)
FAST_ENV = "RESNET_TUTORIAL_FAST"
#: What an AVX2-only laptop is emulated with (benchmarks/README.md).
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
FAST_TOTAL_S = 900.0
#: Full mode per lesson: 5 minutes on a CPU with native bf16, 10 under the AVX2 limitation.
FULL_LIMIT_S = {"native": 300.0, "avx2": 600.0}
TARGET = ("every lesson's full mode ≤ 5 min on 2 cores with native bf16 and ≤ 10 min under the AVX2 limitation; "
          f"FAST series ≤ {FAST_TOTAL_S / 60:.0f} min in total")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run_name(mode: str, cpu: str) -> str:
    """``fast`` / ``full`` on this CPU, ``fast_avx2`` / ``full_avx2`` under the AVX2 limitation."""
    return mode if cpu == "native" else f"{mode}_{cpu}"


def series() -> list[Path]:
    """Every lesson, in order."""
    return sorted((_common.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def error_line(exc: BaseException) -> str:
    """The error's last line: ``ename: evalue`` for a failing cell, else the message's last line."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return _ANSI.sub("", f"{ename}: {evalue}".strip())[:300]
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def cell_seconds(nb: Any) -> list[tuple[int, float]]:
    """``(cell index, seconds)`` of every executed code cell, from nbclient's timestamps."""
    out = []
    for i, cell in enumerate(nb.cells):
        t = cell.get("metadata", {}).get("execution", {})
        start, end = t.get("iopub.status.busy"), t.get("iopub.status.idle")
        if cell.cell_type == "code" and start and end:
            parse = _dt.datetime.fromisoformat
            out.append((i, (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()))
    return out


def slowest(cells: list[tuple[int, float]], k: int = 3) -> list[list[float]]:
    """The ``k`` slowest cells as ``[index, seconds]`` (JSON-friendly), slowest first."""
    return [[i, round(s, 1)] for i, s in sorted(cells, key=lambda c: -c[1])[:k]]


def load_previous(path: Path) -> dict[str, Any]:
    """The per-run records of an earlier run (empty when there is none or it cannot be read)."""
    import json

    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    runs = old.get("modes") if isinstance(old, dict) else None
    return {r: runs[r] for r in RUNS if isinstance(runs, dict) and isinstance(runs.get(r), dict)}


def _date_span(dates: list[str]) -> str:
    dates = sorted(set(dates))
    return "–" if not dates else dates[0] if len(dates) == 1 else f"{dates[0]} … {dates[-1]}"


def _within(seconds: float | None, limit: float) -> bool | None:
    return None if seconds is None else seconds <= limit


def _row(stem: str, runs: dict[str, Any], in_series: set[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"notebook": stem}
    notes = []
    for run in RUNS:
        entry = runs.get(run, {}).get("notebooks", {}).get(stem)
        ok = entry is not None and entry.get("status") == "ok"
        row[f"{run}_s"] = entry["seconds"] if ok else None
        if entry is not None and not ok:
            notes.append(f"{run} FAILED after {entry['seconds']:.0f} s: {entry.get('error')}")
    for cpu in CPUS:
        full = row[f"{run_name('full', cpu)}_s"]
        row[f"full_{cpu}_ok"] = _within(full, FULL_LIMIT_S[cpu])
    for cpu in CPUS:
        entry = runs.get(run_name("full", cpu), {}).get("notebooks", {}).get(stem) or {}
        if entry.get("slowest_cells"):
            cells = ", ".join(f"[{int(i)}] {s:.0f} s" for i, s in entry["slowest_cells"])
            notes.append(f"slowest cells{'' if cpu == 'native' else ' (AVX2)'}: {cells}")
        if entry.get("load"):
            notes.append(f"load{'' if cpu == 'native' else ' (AVX2)'} {entry['load'][0]:.0f}→{entry['load'][1]:.0f}")
    if stem not in in_series:
        notes.append("not in notebooks/ any more")
    row["notes"] = "; ".join(notes)
    return row


def build_result(runs: dict[str, Any], lessons: list[Path]) -> dict[str, Any]:
    """Rows (one per lesson), summary, target and target_met from the merged per-run records."""
    stems = [p.stem for p in lessons]
    for rec in runs.values():
        stems += [s for s in rec.get("notebooks", {}) if s not in stems]
    in_series = {p.stem for p in lessons}
    rows = [_row(stem, runs, in_series) for stem in stems]
    summary: dict[str, Any] = {}
    verdicts: list[bool | None] = []
    for run in RUNS:
        entries = {s: e for s, e in runs.get(run, {}).get("notebooks", {}).items() if s in in_series}
        ok = [e for e in entries.values() if e.get("status") == "ok"]
        failed, missing = len(entries) - len(ok), len(in_series) - len(entries)
        total = sum(e["seconds"] for e in ok)
        if not entries:
            summary[f"{run} total"] = "not measured"
            verdicts.append(None)
            continue
        complete = "" if failed == missing == 0 else f" ({len(ok)} of {len(in_series)} lessons ok)"
        summary[f"{run} total"] = f"{total:.0f} s = {total / 60:.1f} min{complete}"
        summary[f"{run} measured"] = _date_span([e["date"] for e in entries.values()])
        machine = runs[run].get("machine", {})
        summary[f"{run} machine"] = (
            f"{machine.get('cpu')}, {machine.get('cores')} cores, torch threads {machine.get('torch_threads')}, "
            f"kernel's CPU capability {runs[run].get('kernel_capability', machine.get('cpu_capability'))}"
        )
        if run.startswith("full"):
            cpu = "avx2" if run.endswith("avx2") else "native"
            over = [r["notebook"] for r in rows if r[f"full_{cpu}_ok"] is False]
            summary[f"{run}: lessons over {FULL_LIMIT_S[cpu] / 60:.0f} min"] = ", ".join(over) or "none"
            verdicts.append(False if over or failed else None if missing else True)
        else:
            verdicts.append(False if failed or (run == "fast" and total > FAST_TOTAL_S) else None if missing else True)
    target_met = False if False in verdicts else None if None in verdicts else True
    if target_met is None:
        summary["target status"] = "not determined: not every lesson has all four figures yet"
    return {"rows": rows, "summary": summary, "target": TARGET, "target_met": target_met, "modes": runs}


def kernel_capability(env: dict[str, str]) -> str:
    """What torch reports as the CPU capability in a fresh process with ``env`` (as the kernel gets it)."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True)
    return out.stdout.strip() or f"unknown ({out.stderr.strip()[-200:]})"


def _write_html(nb: Any, path: Path, out_dir: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    html, _ = HTMLExporter().from_notebook_node(nb)
    (out_dir / f"{path.stem}.html").write_text(html, encoding="utf-8")
    nbformat.write(nb, out_dir / f"{path.stem}.ipynb")  # for scripts/lesson_stats.py and reading


def run_lesson(path: Path, html_dir: Path, timeout: int | None) -> dict[str, Any]:
    """Execute one lesson in a fresh kernel (with the environment as it is now): its record."""
    from resnet_tutorial.executor import execute_notebook

    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    try:
        nb, seconds = execute_notebook(path, timeout=timeout)
        cells = cell_seconds(nb)
        entry = {"seconds": round(seconds, 1), "status": "ok", "error": None, "slowest_cells": slowest(cells),
                 "cells_over_1s": [[i, round(t, 1)] for i, t in cells if t >= 1.0]}
    except Exception as exc:  # report, record and go on with the next lesson
        nb = getattr(exc, "notebook", None)
        entry = {"seconds": round(time.perf_counter() - start, 1), "status": "failed", "error": error_line(exc)}
    if nb is not None:
        _write_html(nb, path, html_dir)
    entry["date"] = _now()
    # the machine is shared: the 1-minute load average before and after says how much to trust the figure
    entry["load"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    return entry


def _set_env(mode: str, cpu: str) -> None:
    if mode == "fast":
        os.environ[FAST_ENV] = "1"
    else:
        os.environ.pop(FAST_ENV, None)
    for key, value in AVX2_ENV.items():
        if cpu == "avx2":
            os.environ[key] = value
        else:
            os.environ.pop(key, None)


def _print_table(result: dict[str, Any]) -> None:
    print(f"\n{'lesson':36s}" + "".join(f" {r:>10s}" for r in RUNS) + "  notes")
    for row in result["rows"]:
        cells = [f"{row[f'{r}_s']:10.1f}" if row[f"{r}_s"] is not None else f"{'–':>10s}" for r in RUNS]
        print(f"{row['notebook']:36s} {' '.join(cells)}  {row['notes']}")
    for key, value in result["summary"].items():
        print(f"{key}: {value}")
    verdict = {True: "met", False: "NOT met", None: "not determined"}[result["target_met"]]
    print(f"target: {TARGET}: {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["fast", "full", "both"], default="both")
    parser.add_argument("--cpu", choices=["native", "avx2", "both"], default="both",
                        help="this CPU as it is, or limited to AVX2 (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2)")
    parser.add_argument("--notebooks", nargs="+", type=Path, default=None, help="default: every notebooks/NN_*.ipynb")
    parser.add_argument("--timeout", type=int, default=None,
                        help="per-cell timeout in seconds (default: 60 in FAST mode, 3600 in full mode)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/lessons.json)")
    parser.add_argument("--html-dir", type=Path, default=_common.ROOT / "build" / "benchmarks" / "lessons")
    args = parser.parse_args(argv)

    import torch

    out = args.out or _common.RESULTS / f"{NAME}.json"
    paths = [p.resolve() for p in (args.notebooks or series())]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        parser.error("no such notebook: " + ", ".join(map(str, missing)))
    os.environ.pop("MPLBACKEND", None)  # the kernel uses the inline backend, as in JupyterLab
    omp = os.environ.get("OMP_NUM_THREADS")
    print(f"torch threads {torch.get_num_threads()}" + (f" (OMP_NUM_THREADS={omp} is set)" if omp else " (machine default)"))

    runs = load_previous(out)
    lessons = series()
    failures = 0
    saved = {k: os.environ.get(k) for k in (FAST_ENV, *AVX2_ENV)}
    cpus = list(CPUS) if args.cpu == "both" else [args.cpu]
    modes = list(MODES) if args.mode == "both" else [args.mode]
    try:
        for cpu in cpus:
            for mode in modes:
                _set_env(mode, cpu)
                run = run_name(mode, cpu)
                rec = runs.setdefault(run, {})
                rec.update(date=_now(), machine=_common.machine_info(), omp_num_threads=omp, timeout_s=args.timeout,
                           kernel_env={k: os.environ[k] for k in AVX2_ENV if k in os.environ},
                           kernel_capability=kernel_capability({}))
                rec.setdefault("notebooks", {})
                for path in paths:
                    entry = run_lesson(path, args.html_dir / run, args.timeout)
                    failures += entry["status"] != "ok"
                    print(f"{run:9s}  {entry['status']:6s}  {path.stem:36s} {entry['seconds']:7.1f} s  "
                          f"{entry.get('error') or entry.get('slowest_cells')}", flush=True)
                    rec["notebooks"][path.stem] = entry
                    # written after every lesson: an interrupted run keeps what it measured
                    _common.write_result(NAME, build_result(runs, lessons), path=out)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    result = build_result(runs, lessons)
    _print_table(result)
    print(f"wrote {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
