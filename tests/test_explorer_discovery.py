"""benchmarks/explorer_latency.py finds every explorer of every lesson (a lesson change must not hide one)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _benchmark():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("explorer_latency", ROOT / "benchmarks" / "explorer_latency.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("notebook", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_explore_call_is_found(notebook: Path, monkeypatch) -> None:
    monkeypatch.setenv("RESNET_TUTORIAL_FAST", "1")
    bench = _benchmark()
    cells = [c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    expected = sum(len(bench.EXPLORE_CALL.findall(src)) for src in cells)
    found = bench.explorers_of(notebook)
    assert len(found) == expected, f"{notebook.name}: {expected} explore(...) calls, the benchmark found {len(found)}"
    for entry in found:
        assert entry["controls"], f"{notebook.name} cell {entry['cell']}: an explorer without controls"
