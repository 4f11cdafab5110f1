"""benchmarks/report.py's explorer-latency section: per explorer with its numbers before, runs, controls."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _report():
    spec = importlib.util.spec_from_file_location("bench_report_explorers", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_explorer_section_shows_each_explorer_beside_its_before_numbers(tmp_path: Path) -> None:
    report = _report()
    results = tmp_path / "results"
    results.mkdir()
    after = {
        "benchmark": "explorer_latency",
        "rows": [{"lesson": "01", "index": 0, "explorer": "GradientExplorer", "kind": "LiveFigure", "moves": 26,
                  "median_ms": 96.4, "slowest_ms": 210.0, "cpu_median_ms": 80.0, "cpu_slowest_ms": 150.0, "met": True,
                  "met_by_cpu": True},
                 {"lesson": "04", "index": 0, "explorer": "draw_stage_sizes", "kind": "rebuilt figure", "moves": 19,
                  "median_ms": 640.0, "slowest_ms": 900.0, "met": False}],
        "training": [{"lesson": "01", "index": 1, "explorer": "GradientHeatmapRun", "kind": "RunPlot",
                      "first_frame_ms": 400.0, "run_s": 3.9, "frames": 11, "longest_gap_s": 0.5, "met": True}],
        "controls": [{"lesson": "01", "explorer": "GradientExplorer", "control": "depth", "moves": 12, "median_ms": 99.0,
                      "slowest_ms": 210.0, "compute_ms": 30.0, "drawing_ms": 55.0, "encoding_ms": 10.0, "errors": 0}],
        "browser_drag": {"lesson": "01", "control": "depth", "drag_moves": 24, "drag_s": 1.6,
                         "frames_seen_during_drag": 11, "final_value": 70, "last_move_to_final_image_ms": 240},
        "summary": {"mode": "full"},
        "target_met": False,
    }
    before = {"rows": [{"lesson": "01", "index": 0, "explorer": "draw_gradient_explorer", "median_ms": 1198.0,
                        "slowest_ms": 9244.0}],
              "training": [{"lesson": "01", "index": 1, "first_frame_ms": 5000.0}],
              "summary": {"conditions": "loaded machine"}}
    (results / "explorer_latency.json").write_text(json.dumps(after))
    (results / report.EXPLORER_BEFORE).write_text(json.dumps(before))
    text = report.render(tmp_path / "README.md", results, ROOT / "benchmarks")
    assert "| 01 | GradientExplorer | LiveFigure | 26 | 96 | 210 | met | 80 | 150 | met | 1,198 | 9,244 |" in text
    assert "| 04 | draw_stage_sizes | rebuilt figure | 19 | 640 | 900 | not met | – | – | not determined | – | – |" in text
    assert "| 01 | GradientHeatmapRun | RunPlot | 400 | 3.9 | 11 | 0.5 | met | 5,000 |" in text
    assert "| 01 | GradientExplorer | depth | 12 | 99 | 210 |" in text
    assert "showed 11 different pictures" in text and "240 ms after the last move" in text
    assert "loaded machine" in text
    assert "## explorer_latency_before" not in text  # the before file is not a benchmark of its own
