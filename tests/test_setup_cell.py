"""The setup cell that heads every lesson (scripts/setup_cell.py): present and current in every
notebook, silent where the package is importable, installing on Colab/Kaggle, explaining elsewhere."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
_spec = importlib.util.spec_from_file_location("setup_cell", ROOT / "scripts" / "setup_cell.py")
setup_cell = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(setup_cell)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_lesson_starts_with_the_canonical_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == setup_cell.SOURCE, f"run python scripts/setup_cell.py ({path.name} lacks the current cell)"
    assert sum(setup_cell.is_setup_cell(c) for c in code) == 1


def _nb(*cells: tuple[str, str]) -> nbformat.NotebookNode:
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    return nbformat.v4.new_notebook(cells=[make[kind](src) for kind, src in cells])


def test_the_script_inserts_once_updates_old_versions_and_moves_stray_copies():
    nb = _nb(("markdown", "# Title"), ("code", "x = 1"))
    assert setup_cell.apply(nb)
    assert [c.source for c in nb.cells] == ["# Title", setup_cell.SOURCE, "x = 1"]
    assert not setup_cell.apply(nb)  # idempotent
    nb.cells[1].source = setup_cell.MARKER + ": an older version"
    nb.cells[1].id = "7"  # as nbstripout renumbers ids
    assert setup_cell.apply(nb)
    assert nb.cells[1].source == setup_cell.SOURCE and nb.cells[1].id == "7"
    moved = _nb(("code", "y = 2"), ("code", setup_cell.SOURCE))
    assert setup_cell.apply(moved)
    assert [c.source for c in moved.cells] == [setup_cell.SOURCE, "y = 2"]


def test_the_cell_is_self_contained():
    """It must run before anything of the course can be imported: only the standard library."""
    assert "resnet_tutorial import" not in setup_cell.SOURCE and "import resnet_tutorial" not in setup_cell.SOURCE
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", setup_cell.SOURCE],  # -S: no site-packages
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "ModuleNotFoundError: resnet_tutorial is not installed for this kernel" in proc.stderr
    assert "'Python (resnet-tutorial)'" in proc.stderr and "%pip install" in proc.stderr


def test_silent_where_the_package_is_importable(capsys, monkeypatch):
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("installed although importable"))
    exec(setup_cell.SOURCE, {})
    assert capsys.readouterr() == ("", "")


def _hide_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "resnet_tutorial" else real(name, *a))


def test_kaggle_installs_from_the_repository_in_one_line(capsys, monkeypatch):
    _hide_package(monkeypatch)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    exec(setup_cell.SOURCE, {})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and setup_cell.REPOSITORY in out
    assert calls == [([sys.executable, "-m", "pip", "install", "-q", f"resnet-tutorial @ git+{setup_cell.REPOSITORY}"],
                      {"check": True})]


def test_colab_installs_and_turns_on_its_widget_manager(capsys, monkeypatch):
    _hide_package(monkeypatch)
    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    enabled = []
    output = types.SimpleNamespace(enable_custom_widget_manager=lambda: enabled.append(True))
    colab = types.ModuleType("google.colab")
    colab.output = output
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    exec(setup_cell.SOURCE, {})
    assert len(calls) == 1 and calls[0][-1] == f"resnet-tutorial @ git+{setup_cell.REPOSITORY}"
    assert enabled == [True] and capsys.readouterr().out.startswith("Installing the course package")


def test_the_repository_placeholder_is_defined_once():
    """The URL lives in scripts/setup_cell.py; the notebooks carry the generated text."""
    assert setup_cell.SOURCE.count(setup_cell.REPOSITORY) == 1
