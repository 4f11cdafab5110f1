"""Every lesson, run the way a learner runs it: JupyterLab in headless Chromium.

For each ``notebooks/NN_*.ipynb`` (collected when pytest starts, so the suite
grows with the lessons) the test opens the lesson in a real JupyterLab served
from a temporary copy of ``notebooks/``, runs "Restart Kernel and Run All
Cells…", and fails on any error output, any stderr traceback, any cell that
did not run, or any "Error displaying widget". It then moves the lesson's
first explorer (``resnet_tutorial.widgets.explore``) with mouse and keyboard
and checks that the figure is redrawn in place: new content, still one figure.

Screenshots go to ``build/screenshots/`` (the whole lesson, and the explorer
before/after); per-lesson timings to ``build/browser_timings.json`` and the
end of the pytest report.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import warnings
from pathlib import Path

import nbformat
import pytest

from .jupyterlab_harness import (
    CHROMIUM,
    KERNEL_NAME,
    KernelStuck,
    NOTEBOOKS_DIR,
    LabServer,
    describe_progress,
    explorer_is_manual,
    explorer_snapshot,
    nudge_explorer,
    open_notebook,
    problems,
    record_timing,
    restart_and_run_all,
    screenshot_whole_notebook,
    wait_for_redraw,
    wait_kernel_idle,
    warnings_printed,
)

if not CHROMIUM.exists():
    pytest.skip(
        f"browser tests need Chromium at {CHROMIUM}: run `apt-get install chromium` (Debian)",
        allow_module_level=True,
    )
pytest.importorskip("playwright.sync_api", reason="browser tests need the `playwright` Python package")

LESSONS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
# Lessons whose first explorer must redraw on its own when a control moves.
AUTO_EXPLORER_LESSONS = {"01", "02", "03", "04", "05"}
# FAST lessons take up to ~3 min on 2 busy cores; leave room for a loaded machine.
RUN_TIMEOUT_S = float(os.environ.get("RESNET_TUTORIAL_BROWSER_TIMEOUT", "600"))

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]
# a code cell that calls explore(...) as a statement (optionally assigning its handle)
EXPLORE_CALL = re.compile(r"^(\w+\s*=\s*)?explore\(", re.MULTILINE)


def expected_explorers(notebook: Path) -> list[int]:
    """Per code cell of the committed notebook: 1 if it calls ``explore(...)``, else 0."""
    nb = nbformat.read(notebook, as_version=4)
    return [1 if EXPLORE_CALL.search(c.source) else 0 for c in nb.cells if c.cell_type == "code"]


def explorers_on_page(page: object) -> list[int]:
    """Per code cell on the page: how many rendered explorers (``.rt-explorer``) its outputs hold."""
    return page.evaluate(  # type: ignore[attr-defined]
        "() => Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell'))"
        ".map(cell => cell.querySelectorAll('.rt-explorer').length)"
    )


def _check_first_explorer(page: object, lesson: str, shots: Path) -> str:
    """Move the lesson's first explorer and check that it redraws in place; return a note."""
    explorers = page.locator(".jp-Notebook .rt-explorer")  # type: ignore[attr-defined]
    if explorers.count() == 0:
        assert lesson[:2] not in AUTO_EXPLORER_LESSONS, (
            f"{lesson}: no rendered explorer (.rt-explorer) found; lessons 01-05 must show one "
            "(is ipywidgets' JupyterLab extension missing, or did explore() fall back to a static figure?)"
        )
        return "no explorer"
    explorer = explorers.first
    explorer.scroll_into_view_if_needed()
    before = explorer_snapshot(explorer)
    assert before is not None, f"{lesson}: first explorer has no .rt-explorer-output area"
    assert before["outputs"] >= 1, f"{lesson}: first explorer drew nothing after run-all"
    explorer.screenshot(path=str(shots / f"{lesson}-explorer-before.png"))

    if explorer_is_manual(explorer):
        if lesson[:2] in AUTO_EXPLORER_LESSONS:
            warnings.warn(
                f"{lesson}: the first explorer uses a Run button (manual=True); lessons 01-05 should "
                "open with one that redraws on change",
                stacklevel=1,
            )
        return "first explorer is manual (Run button): interaction not tested"

    action = nudge_explorer(page, explorer)
    after = wait_for_redraw(explorer, before)
    wait_kernel_idle(page)  # several key presses may queue several redraws: let them all finish
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    after = explorer_snapshot(explorer) or after
    explorer.screenshot(path=str(shots / f"{lesson}-explorer-after.png"))

    if before["imgs"] or after["imgs"]:
        assert after["imgs"] != before["imgs"], f"{lesson}: explorer image unchanged after {action}"
        assert len(after["imgs"]) == 1, (
            f"{lesson}: explorer output holds {len(after['imgs'])} images after {action}; "
            "expected exactly one figure redrawn in place"
        )
    else:
        assert after["html"] != before["html"], f"{lesson}: explorer output unchanged after {action}"
    assert after["outputs"] == 1, (
        f"{lesson}: explorer output area holds {after['outputs']} outputs after {action}; "
        "expected one (figures piling up instead of being replaced?)"
    )
    return action


@pytest.mark.parametrize("notebook", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_jupyterlab(notebook: Path, lab_server: LabServer, page: object, screenshots_dir: Path) -> None:
    lesson = notebook.stem
    rel = f"{NOTEBOOKS_DIR.name}/{notebook.name}"
    served = lab_server.root / rel
    if not served.exists():  # the lesson appeared after the server copied notebooks/
        served.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(notebook, served)

    for old in [screenshots_dir / f"{lesson}.png", *screenshots_dir.glob(f"{lesson}-explorer-*.png")]:
        old.unlink(missing_ok=True)  # never leave an earlier run's picture looking like this run's

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    shot_taken = False
    try:
        for attempt in (1, 2):
            try:
                t1 = time.perf_counter()
                open_notebook(page, lab_server, rel)
                timings["open_s"] = time.perf_counter() - t1
                kernel = page.evaluate(  # type: ignore[attr-defined]
                    "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.name"
                )
                assert kernel == KERNEL_NAME, f"{lesson} opened with kernel {kernel!r}, expected {KERNEL_NAME!r}"
                t1 = time.perf_counter()
                state = restart_and_run_all(page, RUN_TIMEOUT_S)
                timings["run_all_s"] = time.perf_counter() - t1
                break
            except KernelStuck as exc:
                # A JupyterLab hiccup, not the lesson's fault: start over once with a new kernel.
                if attempt == 2:
                    raise
                print(f"[browser] {lesson}: {exc}; retrying with a fresh kernel")
                timings["retries"] = attempt
                lab_server.shutdown_kernels_for(rel)
        print(f"[browser] {lesson}: {describe_progress(state)} in {timings['run_all_s']:.1f} s")
        for line in warnings_printed(state):
            print(f"[browser] {lesson}: warning printed: {line}")

        screenshot_whole_notebook(page, screenshots_dir / f"{lesson}.png")
        shot_taken = True
        found = problems(state)
        assert not found, f"{lesson} fails after Restart Kernel and Run All:\n" + "\n".join(found)
        expected, shown = expected_explorers(notebook), explorers_on_page(page)
        assert shown == expected, (
            f"{lesson}: explorers per code cell {shown}, expected {expected} (each explorer cell shows "
            "exactly one; 2 means the explorer was displayed twice)"
        )

        t2 = time.perf_counter()
        note = _check_first_explorer(page, lesson, screenshots_dir)
        timings["explorer_s"] = time.perf_counter() - t2
        print(f"[browser] {lesson}: explorer: {note}")
    finally:
        timings["total_s"] = time.perf_counter() - t0
        if not shot_taken:
            try:  # show what the page looked like when it failed
                screenshot_whole_notebook(page, screenshots_dir / f"{lesson}.png")
            except Exception:
                pass
        try:
            lab_server.shutdown_kernels_for(rel)
        except Exception as exc:  # report, but keep the test's own failure visible
            print(f"[browser] {lesson}: could not shut its kernel down: {exc}")
        record_timing(lesson, **timings)
