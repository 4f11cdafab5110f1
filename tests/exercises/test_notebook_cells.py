"""Every lesson's "Your turn" cells: well formed, and (marked ``notebooks``) their folded solutions pass their
checks when executed in a fresh kernel.

The solutions tests: the folded solution of every exercise, pasted as a learner
would, passes its check (no kernel needed: fast, with a clear message); and
each lesson's import and exercise cells, with every stub replaced by its folded
solution, run in a fresh kernel in FAST mode with every check passed and
recorded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from resnet_tutorial import exercises as E

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ALL_IDS = E.list_exercises()
CHECK_CALL = re.compile(r'^\s*(?:exercises\.)?check\("(?P<id>\w+)",\s*(?P<fn>\w+)\)', re.MULTILINE)


def _entries(path: Path) -> dict:
    return json.loads(path.read_text())["exercises"]


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _solution_code(markdown: str) -> str:
    match = re.search(r"<details><summary>Solution</summary>\s*```python\n(.*?)```", markdown, re.DOTALL)
    assert match, f"no ```python block in the folded solution:\n{markdown[:300]}"
    return match.group(1)


def your_turns(nb) -> list[dict]:
    """The lesson's exercises: per stub cell, the exercise id and the indices of its four cells."""
    blocks = []
    for i, cell in enumerate(nb.cells):
        if "exercise-stub" in _tags(cell):
            intro, check_cell, solution = nb.cells[i - 1], nb.cells[i + 1], nb.cells[i + 2]
            call = CHECK_CALL.search(check_cell.source)
            blocks.append({"id": call.group("id") if call else None, "fn": call.group("fn") if call else None,
                           "intro": intro, "stub": cell, "check": check_cell, "solution": solution, "index": i})
    return blocks


def _lesson(path: Path) -> str:
    return path.name[:2]


LESSONS_WITH_EXERCISES = [p for p in NOTEBOOKS if E.list_exercises(_lesson(p))]


def test_every_lesson_has_your_turn_exercises_where_its_module_has_them() -> None:
    total = 0
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        found = [b["id"] for b in your_turns(nb)]
        lesson = _lesson(path)
        assert sorted(found) == sorted(E.list_exercises(lesson)), f"{path.name}: exercises {found}"
        assert len(found) >= (1 if lesson == "00" else 2), f"{path.name}: at least two 'Your turn' exercises"
        total += len(found) if lesson != "00" else 0
    assert total >= 18


@pytest.mark.parametrize("path", LESSONS_WITH_EXERCISES, ids=[p.stem for p in LESSONS_WITH_EXERCISES])
def test_your_turn_cells_are_well_formed(path: Path) -> None:
    import ast

    nb = nbformat.read(path, as_version=4)
    # the lesson's own code cells: after the setup cell every lesson starts with (scripts/setup_cell.py)
    code_cells = [c for c in nb.cells if c.cell_type == "code" and not c.source.startswith("# Setup (the same")]
    assert "exercise-import" in _tags(code_cells[1]), "the checker is imported right after the lesson's imports"
    assert "from resnet_tutorial.exercises import check, hint" in code_cells[1].source
    for b in your_turns(nb):
        ex_id = b["id"]
        assert ex_id in ALL_IDS and b["fn"] == ex_id, f"{path.name}: check cell {b['check'].source!r}"
        assert E.get_exercise(ex_id).lesson == _lesson(path)
        assert b["intro"].cell_type == "markdown" and b["intro"].source.startswith("### Your turn")
        assert "exercise-intro" in _tags(b["intro"]) and f'hint("{ex_id}")' in b["intro"].source
        assert "exercise-check" in _tags(b["check"]) and b["check"].cell_type == "code"
        stub = next(n for n in ast.walk(ast.parse(b["stub"].source)) if isinstance(n, ast.FunctionDef))
        assert stub.name == ex_id and ast.get_docstring(stub), f"{ex_id}: the stub needs the signature and a docstring"
        last = stub.body[-1]
        assert isinstance(last, ast.Raise) and "NotImplementedError" in ast.unparse(last) and len(stub.body) == 2
        assert b["solution"].cell_type == "markdown" and "exercise-solution" in _tags(b["solution"])
        solution = ast.parse(_solution_code(b["solution"].source))
        assert any(isinstance(n, ast.FunctionDef) and n.name == ex_id for n in solution.body)


def test_lesson_00_explains_exercises_and_shows_progress() -> None:
    nb = nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4)
    about = "\n".join(c.source for c in nb.cells if "exercise-about" in _tags(c))
    for word in ("Your turn", "raise NotImplementedError", "check(", "hint(", "Solution", "progress"):
        assert word in about, word
    assert any(c.source.strip() == "exercises.progress()" for c in nb.cells if "exercise-progress" in _tags(c))
    demo = [c for c in nb.cells if "exercise-demo" in _tags(c)]
    assert demo and "record=False" in demo[0].source, "the demonstration must not count as the learner's attempt"


@pytest.mark.parametrize("path", LESSONS_WITH_EXERCISES, ids=[p.stem for p in LESSONS_WITH_EXERCISES])
def test_folded_solutions_pass_their_checks(path: Path) -> None:
    """The solutions as a learner would paste them (no kernel needed: fast, and a clear message)."""
    for b in your_turns(nbformat.read(path, as_version=4)):
        scope: dict = {}
        exec(compile(_solution_code(b["solution"].source), f"<solution of {b['id']}>", "exec"), scope)
        result = E.check(b["id"], scope[b["id"]])
        assert result.passed, f"{path.name}: the folded solution of {b['id']} fails:\n{result.message}"


def solutions_notebook(path: Path):
    """The lesson's import cell(s) and exercise cells only, every stub replaced by its folded solution."""
    nb = nbformat.read(path, as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    cells = [first_code] + [c for c in nb.cells if set(_tags(c)) & {"exercise-import", "exercise-demo"}]
    for b in your_turns(nb):
        cells += [nbformat.v4.new_code_cell(_solution_code(b["solution"].source)), b["check"]]
    cells += [c for c in nb.cells if "exercise-progress" in _tags(c)]
    out = nbformat.v4.new_notebook(metadata=nb.metadata)
    out.cells = [nbformat.v4.new_code_cell(c.source, metadata=dict(c.metadata)) for c in cells]
    return out


@pytest.mark.notebooks
@pytest.mark.parametrize("path", LESSONS_WITH_EXERCISES, ids=[p.stem for p in LESSONS_WITH_EXERCISES])
def test_solutions_pass_in_a_fresh_kernel(path: Path, tmp_path: Path, monkeypatch, private_progress) -> None:
    """FAST mode, the project's executor: every check of the lesson, fed its folded solution, says passed."""
    from resnet_tutorial.executor import execute_notebook

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    built = tmp_path / path.name
    nbformat.write(solutions_notebook(path), built)
    nb, _ = execute_notebook(built, fast=True)
    ids = [b["id"] for b in your_turns(nbformat.read(path, as_version=4))]
    seen = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{path.name}: {out.get('ename')}: {out.get('evalue')}"
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                assert not re.search(r"\b\w*Warning\b|Traceback", out.get("text", "")), out["text"][:2000]
        call = CHECK_CALL.search(cell.source)
        if call and "exercise-check" in _tags(cell):
            text = "".join(o["data"].get("text/plain", "") for o in cell.outputs if o.get("output_type") == "execute_result")
            assert text.startswith(f"✓ {call.group('id')} passed"), f"{path.name}: {text[:1500]}"
            seen.append(call.group("id"))
    assert seen == ids
    assert all(_entries(private_progress)[i]["passed"] for i in ids), "the kernel recorded the passes"
