"""benchmarks/report.py: README rendering from fake result files (no benchmark runs, no notebooks)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MACHINE = {"cpu": "Test CPU 9000", "cores": 2, "memory_gib": 7.5, "gpu": None, "torch": "2.14.1", "torch_threads": 2,
           "python": "3.11.7", "date": "2026-01-02 03:04 UTC"}


def _write(results: Path, name: str, **payload) -> None:
    results.mkdir(exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps({"benchmark": name, "machine": MACHINE, **payload}))


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    results, scripts = tmp_path / "results", tmp_path / "scripts"
    results.mkdir()
    scripts.mkdir()
    (scripts / "throughput.py").write_text('"""Training images per second\nunder three settings.\n\nMore text."""\n')
    return tmp_path / "README.md", results, scripts


def test_rows_summary_machine_and_target(report, dirs) -> None:
    readme, results, scripts = dirs
    _write(
        results,
        "throughput",
        rows=[{"setting": "eager", "img_per_s": 812.3456, "ratio": 1.0}, {"setting": "a|b", "img_per_s": 1523.9, "ratio": 1.8759}],
        summary={"best": "channels_last", "rounds": 3},
        target="x1.5 over eager",
        target_met=True,
    )
    text = report.render(readme, results, scripts)
    assert "| setting | img_per_s | ratio |" in text
    assert "| eager | 812.3 | 1 |" in text
    assert "| a\\|b | 1,524 | 1.876 |" in text  # a pipe in a cell is escaped
    assert "- best: channels_last" in text and "- rounds: 3" in text
    assert "Test CPU 9000, 2 cores" in text and "GPU: none" in text and "torch 2.14.1 (2 threads)" in text
    assert "2026-01-02 03:04 UTC" in text
    assert "Target: x1.5 over eager — **met**." in text
    assert "Training images per second under three settings." in text  # docstring's first paragraph


def test_missing_unreadable_and_undetermined(report, dirs) -> None:
    readme, results, scripts = dirs
    (results / "explorer_latency.json").write_text("{ half a file")
    _write(results, "lessons", rows=[{"notebook": "00_start_here", "fast_s": 8.1, "full_s": None}], target="FAST ≤ 900 s",
           target_met=None)
    text = report.render(readme, results, scripts)
    assert "not measured yet: run `.venv/bin/python benchmarks/throughput.py`" in text
    assert "not measured yet: run `.venv/bin/python benchmarks/time_to_accuracy.py`" in text
    assert "could not read `results/explorer_latency.json`" in text
    assert "| lesson | FAST mode (s) | full mode (s) |" in text  # per-benchmark column titles
    assert "| 00_start_here | 8.1 | – |" in text
    assert "Target: FAST ≤ 900 s — **not determined**." in text
    order = [text.index(f"## {n}") for n in ("throughput", "time_to_accuracy", "explorer_latency", "lessons")]
    assert order == sorted(order)


def test_hand_written_head_is_kept(report, dirs) -> None:
    readme, results, scripts = dirs
    readme.write_text(f"# My benchmarks\n\nHand-written notes.\n\n{report.MARKER}\nstale generated text\n")
    _write(results, "throughput", rows=[{"x": 1}], target_met=False)
    report.main(["--results", str(results), "--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith("# My benchmarks\n\nHand-written notes.\n\n" + report.MARKER + "\n")
    assert "stale generated text" not in text
    assert text.count(report.MARKER) == 1
    assert "— **not met**." in text
    assert report.render(readme, results, scripts) == report.render(readme, results, scripts)  # stable


def test_new_readme_gets_default_head(report, dirs) -> None:
    readme, results, scripts = dirs
    text = report.render(readme, results, scripts)
    assert text.startswith(report.DEFAULT_HEAD.rstrip("\n") + "\n\n" + report.MARKER)
    assert "make benchmarks" in text


@pytest.mark.parametrize(
    "value, text",
    [(None, "–"), (True, "yes"), (3, "3"), (123456, "123,456"), (0.0, "0"), (0.67432, "0.6743"), (8.1, "8.1"),
     (1234.5, "1,234"), (999.7, "1,000"), (1.5e-85, "1.50e-85"), ([1, 2.5], "1, 2.5"), ({"mlp": 4.05}, "mlp: 4.05")],
)
def test_fmt(report, value, text) -> None:
    assert report.fmt(value) == text
