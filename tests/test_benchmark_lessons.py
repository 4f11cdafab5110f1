"""benchmarks/lessons.py: the per-lesson targets and the cell timings, from fake records (no notebook runs)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("bench_lessons", ROOT / "benchmarks" / "lessons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runs(seconds: dict[str, dict[str, float]]) -> dict:
    """{run: {lesson: seconds}} as lessons.json records (all ok)."""
    return {run: {"notebooks": {stem: {"seconds": s, "status": "ok", "date": "2026-12-02 10:00 UTC",
                                       "slowest_cells": [[16, s / 2]]}
                                for stem, s in per.items()}}
            for run, per in seconds.items()}


def test_each_lesson_is_judged_against_its_cpus_limit(bench):
    lessons = [Path("00_a.ipynb"), Path("01_b.ipynb")]
    ok = {"fast": {"00_a": 10, "01_b": 20}, "full": {"00_a": 290, "01_b": 100},
          "fast_avx2": {"00_a": 12, "01_b": 25}, "full_avx2": {"00_a": 590, "01_b": 200}}
    result = bench.build_result(_runs(ok), lessons)
    assert result["target_met"] is True
    row = result["rows"][0]
    assert (row["full_native_ok"], row["full_avx2_ok"]) == (True, True)
    assert "slowest cells: [16] 145 s" in row["notes"]
    # 301 s with native bf16 is over 5 minutes; 601 s under AVX2 over 10
    over = {**ok, "full": {"00_a": 301, "01_b": 100}, "full_avx2": {"00_a": 590, "01_b": 601}}
    result = bench.build_result(_runs(over), lessons)
    assert result["target_met"] is False
    assert [(r["full_native_ok"], r["full_avx2_ok"]) for r in result["rows"]] == [(False, True), (True, False)]
    assert result["summary"]["full: lessons over 5 min"] == "00_a"
    assert result["summary"]["full_avx2: lessons over 10 min"] == "01_b"
    # a column not measured yet leaves the verdict open (unless something is already over)
    partial = {k: v for k, v in ok.items() if k != "full_avx2"}
    assert bench.build_result(_runs(partial), lessons)["target_met"] is None


def test_cell_seconds_come_from_nbclients_timestamps(bench):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("x"), nbformat.v4.new_code_cell("a"), nbformat.v4.new_code_cell("b")]
    nb.cells[1].metadata["execution"] = {"iopub.status.busy": "2026-12-02T10:00:00.000000Z",
                                         "iopub.status.idle": "2026-12-02T10:01:30.500000Z"}
    nb.cells[2].metadata["execution"] = {"iopub.status.busy": "2026-12-02T10:01:31Z",
                                         "iopub.status.idle": "2026-12-02T10:01:33Z"}
    cells = bench.cell_seconds(nb)
    assert cells == [(1, pytest.approx(90.5)), (2, pytest.approx(2.0))]
    assert bench.slowest(cells, k=1) == [[1, 90.5]]
    assert bench.run_name("full", "avx2") == "full_avx2" and bench.run_name("fast", "native") == "fast"
