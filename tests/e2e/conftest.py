"""Fixtures for the browser tests: one JupyterLab server and one Chromium per session.

Both are started lazily by the first browser test, so ``pytest -m "not browser"``
or a run that deselects these tests starts nothing.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Iterator

import pytest

from .jupyterlab_harness import CHROMIUM, CHROMIUM_ARGS, NOTEBOOKS_DIR, REPO_ROOT, TIMINGS_FILE, LabServer, start_lab

SCREENSHOTS = REPO_ROOT / "build" / "screenshots"
_SESSION_START = time.time()


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jupyterlab")


@pytest.fixture(scope="session")
def lab_server(lab_home: Path) -> Iterator[LabServer]:
    server = start_lab(lab_home, NOTEBOOKS_DIR)
    print(f"\n[browser] JupyterLab up on port {server.port} in {server.timings['server_start_s']:.1f} s")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser(lab_home: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    profile = lab_home / "chromium-profile"
    t0 = time.perf_counter()
    with sync_playwright() as pw:
        # A persistent context gives Chromium a fresh --user-data-dir of our choosing.
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        print(f"[browser] Chromium up in {time.perf_counter() - t0:.1f} s")
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh tab per lesson, closed afterwards."""
    tab = browser.new_page()  # type: ignore[attr-defined]
    # Accept "leave page?" prompts so a reload or retry never hangs on one.
    tab.on("dialog", lambda dialog: dialog.accept())
    tab.set_default_timeout(60_000)
    try:
        yield tab
    finally:
        tab.close()


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    try:
        data = json.loads(TIMINGS_FILE.read_text())
    except (OSError, ValueError):
        return
    fresh = {k: v for k, v in data.items() if v.get("finished_at", 0) >= _SESSION_START}
    if not fresh:
        return
    terminalreporter.section("browser: per-lesson timings (s)")
    for name, t in sorted(fresh.items()):
        parts = ", ".join(f"{k} {v}" for k, v in t.items() if k != "finished_at")
        terminalreporter.write_line(f"{name}: {parts}")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep ``--dist loadgroup`` sending all browser tests to one worker.

    pytest-xdist 3.8 groups tests by appending ``@group`` to ``item._nodeid``,
    which pytest >= 9.2 no longer reads (node ids live in ``item._id``), so the
    lessons were spread over both workers: two servers and two lessons training
    at once on 2 cores. Re-apply the suffix where xdist's did not take, for the
    tests in this folder only.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # older pytest: xdist's own suffix works there
        return
    here = Path(__file__).parent
    for item in items:
        if here not in Path(item.path).parents:
            continue
        groups = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(groups)
        if groups and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)  # type: ignore[attr-defined]
