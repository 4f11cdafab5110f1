"""A "Your turn" exercise done the way a learner does it: JupyterLab in headless Chromium.

Lesson 02 is opened in a real JupyterLab (the suite's shared server, serving a
temporary copy of ``notebooks/``). Only the cells the exercise needs run: the
lesson's import cell, the checker's import cell, then the ``bn_forward_train``
stub and its check cell. Into the stub the test types, in the editor:

1. nothing (the committed stub): the check says "not attempted yet";
2. a BatchNorm that uses the unbiased variance: the check's output names that
   mistake in plain words ("unbiased variance ... divides by m = N·H·W");
3. the right BatchNorm: the check says it passed.

No cell may show an error. The progress file of this kernel goes to a temporary
folder (set in the kernel, not in a cell). Screenshots of the check cell go to
``build/screenshots/02-exercise-*.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .jupyterlab_harness import (
    CHROMIUM,
    KERNEL_NAME,
    NOTEBOOKS_DIR,
    LabServer,
    find_cells,
    open_notebook,
    record_timing,
    run_cell,
    run_in_kernel,
    type_into_cell,
)

if not CHROMIUM.exists():
    pytest.skip(
        f"browser tests need Chromium at {CHROMIUM}: run `apt-get install chromium` (Debian)",
        allow_module_level=True,
    )
pytest.importorskip("playwright.sync_api", reason="browser tests need the `playwright` Python package")

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

LESSON = "02_batch_normalization.ipynb"
EXERCISE = "bn_forward_train"

WRONG_BN = '''import torch


def bn_forward_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), keepdim=True)  # the default: unbiased, divides by m - 1
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return gamma.view(1, -1, 1, 1) * x_hat + beta.view(1, -1, 1, 1)
'''

RIGHT_BN = WRONG_BN.replace("keepdim=True)  # the default: unbiased, divides by m - 1",
                            "keepdim=True, unbiased=False)  # biased: divides by m")


def _shot(page: object, index: int, path: Path) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)  # type: ignore[attr-defined]
    cell.scroll_into_view_if_needed()
    cell.screenshot(path=str(path))


def _no_errors(info: dict) -> None:
    errors = [o for o in info["outputs"] if o.get("output_type") == "error"]
    assert not errors, f"cell shows an error: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    stderr = [o for o in info["outputs"] if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not any("Traceback" in "".join(o.get("text", "")) for o in stderr), stderr


def test_learner_types_a_wrong_then_a_right_batchnorm(lab_server: LabServer, page: object, screenshots_dir: Path,
                                                      tmp_path: Path) -> None:
    rel = f"{NOTEBOOKS_DIR.name}/{LESSON}"
    served = lab_server.root / rel
    assert served.exists(), f"{served} is not served"
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        open_notebook(page, lab_server, rel)
        kernel = page.evaluate(  # type: ignore[attr-defined]
            "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.name")
        assert kernel == KERNEL_NAME
        timings["open_s"] = time.perf_counter() - t0
        progress = tmp_path / "progress.json"
        assert run_in_kernel(page, f"import os; os.environ['RESNET_TUTORIAL_PROGRESS'] = {str(progress)!r}") == "ok"

        lesson_imports = find_cells(page, contains="from resnet_tutorial.lessons import l02_batch_normalization")
        checker_import = find_cells(page, tag="exercise-import")
        stub = find_cells(page, tag="exercise-stub", contains=f"def {EXERCISE}(")
        check = find_cells(page, tag="exercise-check", contains=f'check("{EXERCISE}"')
        assert len(lesson_imports) == len(checker_import) == len(stub) == len(check) == 1, (
            lesson_imports, checker_import, stub, check)
        stub, check = stub[0], check[0]
        assert check == stub + 1, "the check cell follows the stub"
        for index in (lesson_imports[0], checker_import[0]):
            _no_errors(run_cell(page, index))

        # 1. the committed stub: not attempted, no traceback
        _no_errors(run_cell(page, stub))
        info = run_cell(page, check)
        _no_errors(info)
        assert "not attempted yet" in info["text"], info["text"]

        # 2. a wrong BN: the diagnosis names the mistake
        t1 = time.perf_counter()
        assert type_into_cell(page, stub, WRONG_BN).strip() == WRONG_BN.strip()
        _no_errors(run_cell(page, stub))
        info = run_cell(page, check)
        _no_errors(info)
        _shot(page, check, screenshots_dir / "02-exercise-wrong.png")
        text = info["text"]
        assert "✗ bn_forward_train: not right yet." in text, text
        assert "You normalized with the unbiased variance (dividing by m − 1)" in text, text
        assert "divides by m = N·H·W" in text and "Tried" in text and "Expected" in text, text
        timings["wrong_s"] = time.perf_counter() - t1

        # 3. the right BN: passed
        t1 = time.perf_counter()
        assert type_into_cell(page, stub, RIGHT_BN).strip() == RIGHT_BN.strip()
        _no_errors(run_cell(page, stub))
        info = run_cell(page, check)
        _no_errors(info)
        _shot(page, check, screenshots_dir / "02-exercise-right.png")
        assert "✓ bn_forward_train passed" in info["text"], info["text"]
        timings["right_s"] = time.perf_counter() - t1
        assert progress.exists(), "the kernel recorded the attempts in the temporary progress file"
    finally:
        timings["total_s"] = time.perf_counter() - t0
        try:
            lab_server.shutdown_kernels_for(rel)
        except Exception as exc:  # report, but keep the test's own failure visible
            print(f"[browser] exercise: could not shut its kernel down: {exc}")
        record_timing("02-exercise", **timings)
