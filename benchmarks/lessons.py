"""Wall time of every lesson, top to bottom in a fresh kernel, in FAST and in full mode.

    python benchmarks/lessons.py                          # both modes, every lesson (full mode takes long)
    python benchmarks/lessons.py --mode fast              # only FAST mode; earlier full-mode figures are kept
    python benchmarks/lessons.py --mode fast --notebooks notebooks/00_start_here.ipynb

Each notebook is executed from a copy in memory (the committed notebooks are
never modified) with ``scripts/run_lessons.py``'s ``run_one``: a fresh
kernel of the notebook's kernelspec (``resnet-tutorial``), timed from kernel
start to kernel shutdown. FAST mode sets ``RESNET_TUTORIAL_FAST=1``, full
mode removes it. The thread count is left at the machine's default, which is
what a learner's kernel gets (torch threads are recorded). The executed
copies are written as HTML under ``build/benchmarks/lessons/<mode>/`` (not
timed), so a failure can be read there.

Results merge into ``benchmarks/results/lessons.json`` per mode and per
notebook, each figure with its own date: ``--mode fast`` keeps earlier
full-mode figures, ``--notebooks`` keeps the other lessons' figures. A
failing lesson is recorded as failed with the error's last line; the others
still run, and the exit status is 1.

Target: the FAST series takes ≤ 15 minutes (900 s) in total on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `_common` when run as a script

import _common  # noqa: E402

sys.path.insert(0, str(_common.ROOT / "scripts"))
from run_lessons import run_one  # noqa: E402  (the project's one way to execute a lesson)

NAME = "lessons"
MODES = ("fast", "full")
FAST_ENV = "RESNET_TUTORIAL_FAST"
TARGET_S = 900.0
TARGET = f"FAST series ≤ {TARGET_S / 60:.0f} minutes ({TARGET_S:.0f} s) in total on 2 cores"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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


def load_previous(path: Path) -> dict[str, Any]:
    """The per-mode records of an earlier run (empty when there is none or it cannot be read)."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    modes = old.get("modes") if isinstance(old, dict) else None
    return {m: modes[m] for m in MODES if isinstance(modes, dict) and isinstance(modes.get(m), dict)}


def _date_span(dates: list[str]) -> str:
    dates = sorted(set(dates))
    return "–" if not dates else dates[0] if len(dates) == 1 else f"{dates[0]} … {dates[-1]}"


def build_result(modes: dict[str, Any], lessons: list[Path]) -> dict[str, Any]:
    """Rows (one per lesson), summary, target and target_met from the merged per-mode records."""
    stems = [p.stem for p in lessons]
    for rec in modes.values():
        stems += [s for s in rec.get("notebooks", {}) if s not in stems]
    rows, summary = [], {}
    for stem in stems:
        row: dict[str, Any] = {"notebook": stem}
        notes = []
        for mode in MODES:
            entry = modes.get(mode, {}).get("notebooks", {}).get(stem)
            ok = entry is not None and entry.get("status") == "ok"
            row[f"{mode}_s"] = entry["seconds"] if ok else None
            if entry is not None and not ok:
                notes.append(f"{mode} FAILED after {entry['seconds']:.0f} s: {entry.get('error')}")
        if stem not in {p.stem for p in lessons}:
            notes.append("not in notebooks/ any more")
        row["notes"] = "; ".join(notes)
        rows.append(row)

    in_series = {p.stem for p in lessons}
    fast_ok = fast_failed = 0
    fast_total, fast_missing = 0.0, len(in_series)
    for mode in MODES:
        entries = {s: e for s, e in modes.get(mode, {}).get("notebooks", {}).items() if s in in_series}
        ok = [e for e in entries.values() if e.get("status") == "ok"]
        failed = len(entries) - len(ok)
        missing = len(in_series) - len(entries)
        total = sum(e["seconds"] for e in ok)
        label = "FAST" if mode == "fast" else "full"
        if not entries:
            summary[f"{label} total"] = "not measured"
            continue
        complete = "" if failed == missing == 0 else f" ({len(ok)} of {len(in_series)} lessons ok)"
        summary[f"{label} total"] = f"{total:.0f} s = {total / 60:.1f} min{complete}"
        if failed or missing:
            summary[f"{label} lessons"] = f"{len(ok)} ok, {failed} failed, {missing} not measured"
        summary[f"{label} measured"] = _date_span([e["date"] for e in entries.values()])
        machine = modes[mode].get("machine", {})
        summary[f"{label} machine"] = (
            f"{machine.get('cpu')}, {machine.get('cores')} cores, torch threads {machine.get('torch_threads')}"
            + (f", OMP_NUM_THREADS={modes[mode]['omp_num_threads']}" if modes[mode].get("omp_num_threads") else "")
        )
        if mode == "fast":
            fast_ok, fast_failed, fast_total, fast_missing = len(ok), failed, total, missing

    target_met: bool | None
    if fast_ok == 0 and fast_failed == 0:
        target_met = None
    elif fast_total > TARGET_S or fast_failed:
        target_met = False  # over budget already, or the series does not run through
    elif fast_missing:
        target_met = None  # not every lesson measured yet
    else:
        target_met = True
    if target_met is None:
        summary["target status"] = "not determined: not every lesson has a FAST-mode time yet"
    return {"rows": rows, "summary": summary, "target": TARGET, "target_met": target_met, "modes": modes}


def _set_mode(mode: str) -> None:
    if mode == "fast":
        os.environ[FAST_ENV] = "1"
    else:
        os.environ.pop(FAST_ENV, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["fast", "full", "both"], default="both")
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
    modes_to_run = list(MODES) if args.mode == "both" else [args.mode]
    os.environ.pop("MPLBACKEND", None)  # the kernel uses the inline backend, as in JupyterLab
    omp = os.environ.get("OMP_NUM_THREADS")
    print(f"torch threads {torch.get_num_threads()}" + (f" (OMP_NUM_THREADS={omp} is set)" if omp else " (machine default)"))

    modes = load_previous(out)
    lessons = series()
    failures = 0
    saved_fast = os.environ.get(FAST_ENV)
    try:
        for mode in modes_to_run:
            _set_mode(mode)
            rec = modes.setdefault(mode, {})
            rec.update(date=_now(), machine=_common.machine_info(), omp_num_threads=omp, timeout_s=args.timeout)
            rec.setdefault("notebooks", {})
            for path in paths:
                start = time.perf_counter()
                try:
                    seconds = run_one(path, args.html_dir / mode, images=False, timeout=args.timeout)
                    entry = {"seconds": round(seconds, 1), "status": "ok", "error": None}
                    print(f"{mode:4s}  ok      {path.stem:36s} {seconds:7.1f} s", flush=True)
                except Exception as exc:  # report, record and go on with the next lesson
                    failures += 1
                    entry = {"seconds": round(time.perf_counter() - start, 1), "status": "failed", "error": error_line(exc)}
                    print(f"{mode:4s}  FAILED  {path.stem:36s} {entry['seconds']:7.1f} s  {entry['error']}", flush=True)
                entry["date"] = _now()
                rec["notebooks"][path.stem] = entry
                # Written after every lesson: an interrupted full-mode run keeps what it measured.
                _common.write_result(NAME, build_result(modes, lessons), path=out)
    finally:
        if saved_fast is None:
            os.environ.pop(FAST_ENV, None)
        else:
            os.environ[FAST_ENV] = saved_fast

    result = build_result(modes, lessons)
    print(f"\n{'lesson':36s} {'FAST (s)':>9s} {'full (s)':>9s}  notes")
    for row in result["rows"]:
        cells = [f"{row[f'{m}_s']:9.1f}" if row[f"{m}_s"] is not None else f"{'–':>9s}" for m in MODES]
        print(f"{row['notebook']:36s} {cells[0]} {cells[1]}  {row['notes']}")
    for key, value in result["summary"].items():
        print(f"{key}: {value}")
    verdict = {True: "met", False: "NOT met", None: "not determined"}[result["target_met"]]
    print(f"target: {TARGET}: {verdict}")
    print(f"wrote {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
