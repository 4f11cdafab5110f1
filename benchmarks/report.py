"""Regenerate benchmarks/README.md from the result files in benchmarks/results/.

    python benchmarks/report.py            # or: make bench-report

Everything in README.md above the marker line
``<!-- generated below by benchmarks/report.py -->`` is hand-written and kept
as it is; everything below it is rewritten. Each benchmark's section is
rendered the same way from its ``results/<name>.json``: the machine and
date, ``rows`` (a list of dicts) as a table whose columns are the dicts'
keys, ``summary`` (a dict) as bullets, and whether ``target_met``. Only the
column order and titles can be set per benchmark (``COLUMNS``). A
benchmark without a result file gets a "not measured yet" line. Reads
files only: it runs no benchmark and imports neither torch nor the package.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MARKER = "<!-- generated below by benchmarks/report.py -->"
# The order of `make benchmarks`; other benchmarks (scripts or result files) follow alphabetically.
ORDER = ("throughput", "throughput_fp32", "time_to_accuracy", "time_to_accuracy_fp32", "explorer_latency", "lessons")
#: Results written by another script than their name says (one script, one result per CPU kind).
SCRIPT_OF = {"time_to_accuracy_fp32": "time_to_accuracy", "throughput_fp32": "throughput",
             "explorer_latency_depth100": "explorer_latency", "explorer_latency_avx2": "explorer_latency"}
# Optional, per benchmark: (key, column title) in the order wanted; keys not named follow as they are.
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "lessons": [("notebook", "lesson"), ("fast_s", "FAST mode (s)"), ("full_s", "full mode (s)"),
                ("fast_avx2_s", "FAST mode, AVX2 (s)"), ("full_avx2_s", "full mode, AVX2 (s)"),
                ("full_native_ok", "full ≤ 5 min"), ("full_avx2_ok", "full, AVX2 ≤ 10 min"), ("notes", "notes")],
}
DEFAULT_HEAD = """# Benchmarks

Speed and scale measurements of the package and the lessons (issue 5). Timings
on a shared 2-core machine are noisy: compare figures from one run, and read
the machine line under each table.
"""


# --------------------------------------------------------------------------- formatting
def fmt(value: Any) -> str:
    """One value as table text: four significant digits for floats, ``–`` for nothing."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == 0:
            return "0"
        if abs(value) >= 999.5:
            return f"{value:,.0f}"
        if abs(value) < 1e-3:
            return f"{value:.2e}"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    return str(value)


def cell(value: Any) -> str:
    """``fmt`` made safe for a markdown table cell."""
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]] | None = None) -> str:
    """A markdown table: the named columns first (key, title), then every other key as it appears."""
    if not rows:
        return "_(no rows)_"
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    chosen = [(k, t) for k, t in (columns or []) if k in keys]
    chosen += [(k, k) for k in keys if k not in {c for c, _ in chosen}]
    numeric = {k for k, _ in chosen if all(isinstance(r.get(k), (int, float)) or r.get(k) is None for r in rows)}
    lines = [
        "| " + " | ".join(t.replace("|", "\\|") for _, t in chosen) + " |",
        "| " + " | ".join("---:" if k in numeric else "---" for k, _ in chosen) + " |",
    ]
    lines += ["| " + " | ".join(cell(row.get(k)) for k, _ in chosen) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(machine: Any) -> str:
    """Where and when: ``cpu, cores, memory, GPU, torch (threads), Python · date``."""
    if not isinstance(machine, dict) or not machine:
        return "Machine: not recorded."
    parts = []
    if machine.get("cpu"):
        parts.append(str(machine["cpu"]))
    if machine.get("cores") is not None:
        parts.append(f"{machine['cores']} cores")
    if machine.get("memory_gib") is not None:
        parts.append(f"{fmt(machine['memory_gib'])} GiB RAM")
    parts.append(f"GPU: {machine.get('gpu') or 'none'}")
    if machine.get("torch"):
        n = machine.get("torch_threads")
        threads = f" ({n} thread{'' if n == 1 else 's'})" if n is not None else ""
        parts.append(f"torch {machine['torch']}{threads}")
    if machine.get("python"):
        parts.append(f"Python {machine['python']}")
    # the two facts that change CPU speed 3-4x (older results did not record them)
    if "cpu_capability" in machine:
        bf16 = {True: "yes", False: "no"}.get(machine.get("native_bf16"), "unknown")
        parts.append(f"CPU capability {machine['cpu_capability']}, native bf16 {bf16}")
    else:
        parts.append("CPU capability not recorded")
    date = f"; measured {machine['date']}" if machine.get("date") else ""
    return "Machine: " + ", ".join(parts) + date + "."


def verdict(met: Any) -> str:
    """``target_met`` in words: met, not met, or not determined (missing or null)."""
    return "met" if met is True else "not met" if met is False else "not determined"


def target_line(result: dict[str, Any]) -> str:
    """The target and whether it is met."""
    target = result.get("target")
    if not target and "target_met" not in result:
        return "Target: none set."
    return f"Target{': ' + str(target) if target else ''} — **{verdict(result.get('target_met'))}**."


def script_name(name: str) -> str:
    """The script behind a result: ``time_to_accuracy_fp32`` comes from ``time_to_accuracy.py``."""
    return SCRIPT_OF.get(name, name)


def description(name: str, benchmarks_dir: Path, result: dict[str, Any] | None = None) -> str:
    """The first paragraph of the benchmark script's docstring (or the result's ``description``)."""
    script = benchmarks_dir / f"{script_name(name)}.py"
    try:
        doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    except (OSError, SyntaxError, ValueError):
        doc = None
    if doc:
        return " ".join(doc.strip().split("\n\n", 1)[0].split())  # the first paragraph, on one line
    return str((result or {}).get("description") or "")


def run_command(name: str) -> str:
    return f".venv/bin/python benchmarks/{script_name(name)}.py"


# --------------------------------------------------------------------------- explorer latency (issue 22)
#: Result files that may hold the same benchmark measured on the code before a change (shown side by side).
EXPLORER_BEFORE = "explorer_latency_before.json"


def _ms(value: Any) -> str:
    return "–" if not isinstance(value, (int, float)) or value != value else f"{value:,.0f}"


def _explorer_key(row: dict[str, Any]) -> tuple[str, int]:
    return str(row.get("lesson")), int(row.get("index", 0))


def explorer_tables(result: dict[str, Any], results_dir: Path) -> str:
    """``explorer_latency``: per explorer (with the numbers before, if measured), training runs, per control."""
    before_path = results_dir / EXPLORER_BEFORE
    same_settings = "controls started at" not in (result.get("summary") or {}) or \
        str(result["summary"]["controls started at"]).startswith("the lesson")
    before_result = load(before_path)[0] if before_path.exists() and same_settings else None
    capability = (result.get("machine") or {}).get("cpu_capability")
    if before_result is not None and capability != (before_result.get("machine") or {}).get("cpu_capability", capability):
        before_result = None  # measured on another kind of CPU: not comparable
    before = {_explorer_key(r): r for r in (before_result or {}).get("rows", []) if isinstance(r, dict)}
    before_runs = {_explorer_key(r): r for r in (before_result or {}).get("training", []) if isinstance(r, dict)}
    out = ["Per explorer: every move of every control, milliseconds from the change to the PNG (kernel side, "
           "wall time; *CPU*: the measuring thread's CPU time, an estimate for a quiet machine)."]
    head = ("| lesson | explorer | kind | moves | median (ms) | slowest (ms) | 150/300 ms met "
            "| CPU: median (ms) | CPU: slowest (ms) | met by CPU time |")
    if before:
        head += " before: median (ms) | before: slowest (ms) |"
    out += ["", head, "| " + " | ".join(["---"] * (head.count("|") - 1)) + " |"]
    for r in result.get("rows", []):
        b = before.get(_explorer_key(r), {})
        line = (f"| {r.get('lesson')} | {cell(r.get('explorer'))} | {cell(r.get('kind'))} | {r.get('moves')} | "
                f"{_ms(r.get('median_ms'))} | {_ms(r.get('slowest_ms'))} | {verdict(r.get('met'))} | "
                f"{_ms(r.get('cpu_median_ms'))} | {_ms(r.get('cpu_slowest_ms'))} | {verdict(r.get('met_by_cpu'))} |")
        if before:
            line += f" {_ms(b.get('median_ms'))} | {_ms(b.get('slowest_ms'))} |"
        out.append(line)
    runs = result.get("training") or []
    if runs:
        out += ["", "Explorers that train: one run with the default values (target: first frame within 1 s).", "",
                "| lesson | explorer | kind | first frame (ms) | run (s) | frames | longest gap (s) | met | before: first frame (ms) |",
                "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: |"]
        for r in runs:
            b = before_runs.get(_explorer_key(r), {})
            out.append(f"| {r.get('lesson')} | {cell(r.get('explorer'))} | {cell(r.get('kind'))} | "
                       f"{_ms(r.get('first_frame_ms'))} | {fmt(r.get('run_s'))} | {fmt(r.get('frames'))} | "
                       f"{fmt(r.get('longest_gap_s'))} | {verdict(r.get('met'))} | {_ms(b.get('first_frame_ms'))} |")
    controls = result.get("controls") or []
    if controls:
        columns = [("lesson", "lesson"), ("explorer", "explorer"), ("control", "control"), ("moves", "moves"),
                   ("median_ms", "median (ms)"), ("slowest_ms", "slowest (ms)"), ("cpu_median_ms", "CPU median (ms)"),
                   ("cpu_slowest_ms", "CPU slowest (ms)"), ("compute_ms", "compute (ms)"),
                   ("drawing_ms", "drawing (ms)"), ("encoding_ms", "encoding (ms)"), ("errors", "errors")]
        out += ["", "Per control (medians of the split):", "",
                table([{k: c.get(k) for k, _ in columns} for c in controls], columns)]
    drag = result.get("browser_drag")
    if isinstance(drag, dict):
        out += ["", f"In the browser (tests/e2e/test_explorer_drag.py, {drag.get('measured_utc', 'date not recorded')}): "
                    f"lesson {drag.get('lesson')}'s {drag.get('control')} slider dragged in {drag.get('drag_moves')} moves "
                    f"over {fmt(drag.get('drag_s'))} s showed {drag.get('frames_seen_during_drag')} different pictures during "
                    f"the drag; the picture of the final value ({drag.get('final_value')}) was on screen "
                    f"{_ms(drag.get('last_move_to_final_image_ms'))} ms after the last move ({drag.get('note', '')})."]
    if before_result is not None:
        summary = before_result.get("summary") or {}
        out += ["", f"Before: `results/{EXPLORER_BEFORE}`, {machine_line(before_result.get('machine'))[9:]} "
                    f"{fmt(summary.get('conditions', ''))}"]
    return "\n".join(out)


#: Benchmarks whose result is rendered by their own function instead of the generic rows table.
CUSTOM_TABLES = {name: explorer_tables for name in ("explorer_latency", "explorer_latency_depth100", "explorer_latency_avx2")}


# --------------------------------------------------------------------------- sections
def benchmark_names(results_dir: Path, benchmarks_dir: Path) -> list[str]:
    """``ORDER`` first, then any other result file or benchmark script, alphabetically."""
    found = {p.stem for p in results_dir.glob("*.json") if p.name != EXPLORER_BEFORE}
    found |= {p.stem for p in benchmarks_dir.glob("*.py") if not p.stem.startswith("_") and p.stem != "report"}
    return list(ORDER) + sorted(found - set(ORDER))


def load(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(result, None), or (None, why it could not be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    return data, None


def section(name: str, results_dir: Path, benchmarks_dir: Path) -> str:
    """One benchmark's part of the README."""
    path = results_dir / f"{name}.json"
    out = [f"## {name}", ""]
    result, error = load(path) if path.exists() else (None, None)
    desc = description(name, benchmarks_dir, result)
    if desc:
        out += [desc, ""]
    if not path.exists():
        out.append(f"not measured yet: run `{run_command(name)}`")
        return "\n".join(out)
    if result is None:
        out.append(f"could not read `results/{path.name}` ({error}): run `{run_command(name)}` again")
        return "\n".join(out)
    out += [machine_line(result.get("machine"))]
    if result.get("command"):
        out += ["", f"Command: `{result['command']}`"]
    rows = result.get("rows")
    if name in CUSTOM_TABLES:
        out += ["", CUSTOM_TABLES[name](result, results_dir)]
    elif isinstance(rows, list) and all(isinstance(r, dict) for r in rows):
        out += ["", table(rows, COLUMNS.get(name))]
    if result.get("figure"):  # a PNG beside the result file
        out += ["", f"![{name}](results/{result['figure']})"]
    summary = result.get("summary")
    if isinstance(summary, dict) and summary:
        out += [""] + [f"- {k}: {fmt(v)}" for k, v in summary.items()]
    out += ["", target_line(result)]
    return "\n".join(out)


def generated(results_dir: Path, benchmarks_dir: Path) -> str:
    """Everything below the marker: how to run, one line per benchmark, then each section."""
    names = benchmark_names(results_dir, benchmarks_dir)
    out = [
        "<!-- Do not edit below this line: `make bench-report` rewrites it from benchmarks/results/*.json. -->",
        "",
        "Run every benchmark, then regenerate this page (takes long: it runs every lesson in full mode too):",
        "",
        "```bash",
        "make benchmarks",
        "```",
        "",
        "One benchmark: `.venv/bin/python benchmarks/<name>.py` (each has `--help`); only this page: `make bench-report`.",
        "",
        "| benchmark | what it measures | target met |",
        "| --- | --- | --- |",
    ]
    for name in names:
        path = results_dir / f"{name}.json"
        result = load(path)[0] if path.exists() else None
        met = "not measured" if result is None else verdict(result.get("target_met"))
        out.append(f"| [{name}](#{name}) | {cell(description(name, benchmarks_dir, result))} | {met} |")
    for name in names:
        out += ["", section(name, results_dir, benchmarks_dir)]
    return "\n".join(out) + "\n"


def render(readme: Path, results_dir: Path, benchmarks_dir: Path = HERE) -> str:
    """The new README text: the hand-written head kept, the part below the marker regenerated."""
    if readme.exists():
        text = readme.read_text(encoding="utf-8")
        head = text.split(MARKER, 1)[0] if MARKER in text else text
    else:
        head = DEFAULT_HEAD
    return head.rstrip("\n") + "\n\n" + MARKER + "\n" + generated(results_dir, benchmarks_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=HERE / "results", help="folder of <name>.json files")
    parser.add_argument("--readme", type=Path, default=HERE / "README.md")
    args = parser.parse_args(argv)
    text = render(args.readme, args.results)
    args.readme.write_text(text, encoding="utf-8")
    print(f"wrote {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
