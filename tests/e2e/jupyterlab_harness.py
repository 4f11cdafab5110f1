"""Start a throwaway JupyterLab server and drive lessons in it with Playwright.

The server runs from the project's own environment (the venv of
``sys.executable``) with every Jupyter directory (config, data, runtime,
settings, workspaces) pointed into a temporary folder, so a test run neither
reads nor changes the user's Jupyter setup. Kernel specs installed with
``--sys-prefix`` (the ``resnet-tutorial`` kernel) stay visible because
``sys.prefix/share/jupyter`` is always on Jupyter's data path.

The page helpers talk to JupyterLab through ``window.jupyterapp``
(``--LabApp.expose_app_in_browser=True``): that is more robust than clicking
menus, and it lets the test read cell models (execution counts, error
outputs) instead of scraping text.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
# The lessons to serve; another folder can be tried with RESNET_TUTORIAL_BROWSER_NOTEBOOKS.
NOTEBOOKS_DIR = Path(os.environ.get("RESNET_TUTORIAL_BROWSER_NOTEBOOKS", REPO_ROOT / "notebooks")).resolve()
# Per-lesson timings, merged by whichever process ran the test (an xdist worker
# or pytest itself) and printed by the controller at the end.
TIMINGS_FILE = REPO_ROOT / "build" / "browser_timings.json"
KERNEL_NAME = "resnet-tutorial"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Settings every test server gets: no news popup, no update check, and every
# cell rendered (windowing would leave off-screen cells and widgets unrendered).
OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}

ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def venv_bin(name: str) -> Path:
    """A script of the environment running the tests (``.venv/bin/<name>``)."""
    return Path(sys.executable).parent / name


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab serving a copy of the lessons; stop it with :meth:`stop`."""

    root: Path
    port: int
    token: str
    process: subprocess.Popen
    log_path: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lab_url(self, path: str) -> str:
        """Browser URL that opens ``path`` (relative to the served root) in JupyterLab."""
        return f"{self.base_url}/lab/tree/{urllib.parse.quote(path)}?token={self.token}&reset"

    def api(self, method: str, path: str, timeout: float = 10.0) -> Any:
        """Call the server's REST API and return the decoded JSON (None for empty bodies)."""
        req = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def shutdown_kernels_for(self, path: str) -> None:
        """Shut down every session (and so its kernel) opened on ``path``."""
        for session in self.api("GET", "/api/sessions"):
            if session.get("path") == path or session.get("notebook", {}).get("path") == path:
                try:
                    self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
                except urllib.error.HTTPError:
                    pass

    def shutdown_all_kernels(self) -> None:
        for kernel in self.api("GET", "/api/kernels"):
            try:
                self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)
            except urllib.error.HTTPError:
                pass

    def stop(self) -> None:
        """Shut kernels down politely, then end the server's whole process group."""
        if self.process.poll() is None:
            try:
                self.shutdown_all_kernels()
            except Exception:  # the server may already be half gone; the kill below still runs
                pass
        _kill_group(self.process)


def _kill_group(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, the process group the server leads (kernels included)."""
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; kernels in the same group may linger a moment.
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: SIGTERM the server if pytest itself is killed (no orphan servers or kernels)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def server_env(home: Path) -> dict[str, str]:
    """Environment for the server and its kernels: FAST lessons, private Jupyter dirs."""
    env = dict(os.environ)
    for var in ("MPLBACKEND", "JUPYTER_PATH", "JUPYTER_PREFER_ENV_PATH", "JUPYTER_TOKEN", "PYTEST_XDIST_WORKER"):
        env.pop(var, None)
    env.update(
        {
            "RESNET_TUTORIAL_FAST": "1",
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "IPYTHONDIR": str(home / "ipython"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def start_lab(home: Path, notebooks_dir: Path, timeout: float = 90.0) -> LabServer:
    """Copy ``notebooks_dir`` under ``home/root`` and start JupyterLab serving it.

    Waits until ``/api/status`` answers and the ``resnet-tutorial`` kernel spec
    is listed; raises ``RuntimeError`` with the server log otherwise (and then
    nothing is left running).
    """
    home.mkdir(parents=True, exist_ok=True)
    root = home / "root"
    shutil.copytree(notebooks_dir, root / notebooks_dir.name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    app_settings = home / "app_settings"
    for sub in ("config", "data", "runtime", "settings", "workspaces", "ipython", "app_settings"):
        (home / sub).mkdir(exist_ok=True)
    (app_settings / "overrides.json").write_text(json.dumps(OVERRIDES, indent=2))

    port = free_port()
    token = secrets.token_hex(24)
    lab = venv_bin("jupyter-lab")
    cmd = [str(lab)] if lab.exists() else [sys.executable, "-m", "jupyterlab"]
    cmd += [
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabServerApp.app_settings_dir={app_settings}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--ServerApp.open_browser=False",
        f"--MappingKernelManager.default_kernel_name={KERNEL_NAME}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")

    log_path = home / "jupyterlab.log"
    log = open(log_path, "wb")  # noqa: SIM115 - the server writes to it for its whole life
    t0 = time.perf_counter()
    process = subprocess.Popen(
        cmd,
        cwd=root,
        env=server_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: one killpg ends server and kernels
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    log.close()
    server = LabServer(root=root, port=port, token=token, process=process, log_path=log_path)
    try:
        _wait_ready(server, timeout)
        specs = server.api("GET", "/api/kernelspecs")["kernelspecs"]
        if KERNEL_NAME not in specs:
            raise RuntimeError(
                f"kernel spec {KERNEL_NAME!r} not found (have {sorted(specs)}); install it with "
                f"`{sys.executable} -m ipykernel install --sys-prefix --name {KERNEL_NAME} "
                f'--display-name "Python (resnet-tutorial)"`'
            )
    except BaseException:
        server.stop()
        raise
    server.timings["server_start_s"] = time.perf_counter() - t0
    return server


def _wait_ready(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            server.api("GET", f"/api/status?token={server.token}", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.3)
    raise RuntimeError(f"JupyterLab did not answer /api/status within {timeout:.0f} s:\n{server.log_tail()}")


def record_timing(name: str, **seconds: float) -> None:
    """Add one lesson's timings (seconds) to build/browser_timings.json."""
    TIMINGS_FILE.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(TIMINGS_FILE.read_text())
    except (OSError, ValueError):
        data = {}
    data[name] = {"finished_at": time.time(), **{k: round(v, 1) for k, v in seconds.items()}}
    TIMINGS_FILE.write_text(json.dumps(data, indent=2, sort_keys=True))


# --------------------------------------------------------------------------- page helpers

# Summary of the open notebook: per code cell its prompt and error outputs.
_NOTEBOOK_STATE_JS = r"""
() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = [];
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    const prompt = cell.node.querySelector('.jp-InputPrompt');
    const errors = [];
    const stderr = [];
    const outputs = cell.model.outputs;
    for (let i = 0; i < outputs.length; i++) {
      const o = outputs.get(i).toJSON();
      if (o.output_type === 'error') {
        errors.push({ename: o.ename, evalue: o.evalue, traceback: (o.traceback || []).join('\n')});
      } else if (o.output_type === 'stream' && o.name === 'stderr') {
        stderr.push(Array.isArray(o.text) ? o.text.join('') : o.text);
      }
    }
    cells.push({
      index,
      source: cell.model.sharedModel.getSource(),
      count: cell.model.executionCount,
      prompt: prompt ? prompt.textContent.trim() : '',
      errors,
      stderr,
    });
  });
  const widgetErrors = Array.from(document.querySelectorAll('.jp-OutputArea-output'))
    .map(n => n.textContent)
    .filter(t => t.includes('Error displaying widget'));
  const domTracebacks = Array.from(document.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'))
    .map(n => n.textContent)
    .filter(t => t.includes('Traceback'));
  return {
    kernelStatus: kernel ? kernel.status : 'no-kernel',
    sessionStatus: panel.sessionContext.kernelDisplayStatus,
    kernelName: kernel ? kernel.name : null,
    cells,
    widgetErrors,
    domTracebacks,
  };
}
"""


def clean(text: str) -> str:
    """Text without ANSI colour codes."""
    return ANSI_RE.sub("", text)


def open_notebook(page: Any, server: LabServer, path: str, timeout_ms: float = 120_000) -> None:
    """Open ``path`` in JupyterLab and wait until its kernel session is ready."""
    page.goto(server.lab_url(path), wait_until="domcontentloaded", timeout=timeout_ms)
    page.wait_for_function(
        """(path) => {
          const app = window.jupyterapp;
          const w = app && app.shell && app.shell.currentWidget;
          return !!(w && w.context && w.context.path === path && w.sessionContext
                    && w.sessionContext.session && w.sessionContext.session.kernel);
        }""",
        arg=path,
        timeout=timeout_ms,
        polling=250,
    )
    # The ready promise resolves when the kernel connection is usable; await it here
    # (it is bounded by Playwright's own timeout, unlike a command's promise).
    page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.context.sessionContext.ready
                 .then(() => window.jupyterapp.shell.currentWidget.context.ready)
                 .then(() => true)"""
    )
    # Fold the file browser away: the lesson gets the whole width in screenshots.
    page.evaluate("() => { window.jupyterapp.shell.collapseLeft(); }")
    # Restarting a kernel that is still finishing its first start-up can leave the
    # page on "starting" forever (seen once: the websocket dropped on reconnect).
    wait_kernel_idle(page, timeout_s=timeout_ms / 1000)


def kernel_status(page: Any) -> str:
    """The open notebook's kernel status as the page sees it ("idle", "busy", "starting"...)."""
    return page.evaluate(
        """() => {
          const w = window.jupyterapp.shell.currentWidget;
          const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
          return k ? k.status : 'no-kernel';
        }"""
    )


def wait_kernel_idle(page: Any, polls: int = 3, timeout_s: float = 60.0) -> None:
    """Wait until the kernel reports idle for ``polls`` checks in a row (0.4 s apart)."""
    deadline = time.monotonic() + timeout_s
    idle = 0
    status = "?"
    while time.monotonic() < deadline:
        status = kernel_status(page)
        idle = idle + 1 if status == "idle" else 0
        if idle >= polls:
            return
        time.sleep(0.4)
    raise KernelStuck(f"kernel not idle after {timeout_s:.0f} s (status {status!r})")


class KernelStuck(RuntimeError):
    """The page lost its kernel (status stuck on starting/unknown): worth one retry."""


def restart_and_run_all(page: Any, timeout_s: float, stuck_after_s: float = 120.0) -> dict[str, Any]:
    """Run the menu's "Restart Kernel and Run All Cells…" and wait until execution ends.

    Returns the final notebook state (see ``_NOTEBOOK_STATE_JS``). Execution is
    over when the kernel is idle, no cell shows ``[*]`` and the first code cell
    has run, for several polls in a row (an error stops "run all" early, which
    this also detects).
    """
    # Fire and forget: awaiting the command inside evaluate would block until the
    # confirmation dialog is answered, with no timeout of its own.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:restart-run-all'); }")
    accept = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    accept.wait_for(state="visible", timeout=30_000)
    accept.click()
    page.locator(".jp-Dialog").wait_for(state="detached", timeout=30_000)

    t0 = time.monotonic()
    deadline = t0 + timeout_s
    stable = 0
    state: dict[str, Any] | None = None
    dialog = page.locator(".jp-Dialog")
    while time.monotonic() < deadline:
        if dialog.count():  # e.g. "Kernel Restarting": the kernel died (out of memory?)
            text = " ".join(dialog.first.inner_text().split())
            raise RuntimeError(f"JupyterLab showed a dialog while the lesson ran: {text[:500]}")
        state = page.evaluate(_NOTEBOOK_STATE_JS)
        code = [c for c in state["cells"] if c["source"].strip()] if state else []
        busy = any(c["prompt"].startswith("[*]") for c in code)
        started = bool(code) and (code[0]["count"] is not None or code[0]["prompt"].startswith("[*]"))
        done = state is not None and started and not busy and state["kernelStatus"] == "idle"
        stable = stable + 1 if done else 0
        if stable >= 4:
            return state
        if not started and state is not None and time.monotonic() - t0 > stuck_after_s:
            raise KernelStuck(f"no cell started {stuck_after_s:.0f} s after the restart: {describe_progress(state)}")
        time.sleep(0.5)
    raise TimeoutError(
        f"notebook still running after {timeout_s:.0f} s; "
        f"last state: {describe_progress(state) if state else 'no notebook'}"
    )


def describe_progress(state: dict[str, Any]) -> str:
    """One line: kernel status and which cells ran, run or wait."""
    code = [c for c in state["cells"] if c["source"].strip()]
    ran = sum(c["count"] is not None for c in code)
    running = [c["index"] for c in code if c["prompt"].startswith("[*]")]
    return f"kernel {state['kernelStatus']}, {ran}/{len(code)} code cells ran, running: {running}"


def problems(state: dict[str, Any]) -> list[str]:
    """Everything that makes a run fail, each as a readable paragraph naming the cell."""
    found: list[str] = []
    for cell in state["cells"]:
        if not cell["source"].strip():
            continue
        head = cell["source"].strip().splitlines()[0][:100]
        where = f"cell {cell['index']} (`{head}`)"
        for err in cell["errors"]:
            tb = clean(err["traceback"]).strip().splitlines()
            found.append(f"{where}: {err['ename']}: {err['evalue']}\n    " + "\n    ".join(tb[-12:]))
        for text in cell["stderr"]:
            if "Traceback" in text or re.search(r"^\w*Error\b", text, re.MULTILINE):
                found.append(f"{where}: stderr shows an error:\n    {clean(text).strip()[-1500:]}")
        if cell["count"] is None:
            found.append(f"{where}: did not run (prompt {cell['prompt'] or 'empty'!r})")
    for text in state["widgetErrors"]:
        found.append(f"a widget failed to render: {text.strip()[:300]}")
    if not any(c["errors"] for c in state["cells"]):
        for text in state["domTracebacks"]:
            found.append(f"a stderr output shows a traceback:\n    {clean(text).strip()[-1500:]}")
    return found


def warnings_printed(state: dict[str, Any]) -> list[str]:
    """stderr lines that mention a Warning (reported, not failed: test_notebooks.py owns that)."""
    lines = []
    for cell in state["cells"]:
        for text in cell["stderr"]:
            for line in clean(text).splitlines():
                if re.search(r"\b\w*Warning\b", line):
                    lines.append(f"cell {cell['index']}: {line.strip()[:200]}")
    return lines


def screenshot_whole_notebook(page: Any, path: Path, max_height: int = 16_000) -> None:
    """Screenshot with the viewport stretched to the notebook's height (capped).

    JupyterLab scrolls the notebook inside a fixed-size app shell, so a
    ``full_page`` screenshot alone shows one screen; a tall viewport shows all.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate(
        """() => {
          const w = window.jupyterapp.shell.currentWidget;
          const scroller = w.content.node.querySelector('.jp-WindowedPanel-outer') || w.content.node;
          scroller.scrollTop = 0;
          // Up to the last cell's bottom: the notebook's own bottom padding is blank.
          const cells = w.content.widgets;
          const last = cells.length ? cells[cells.length - 1].node : null;
          const content = last
            ? last.getBoundingClientRect().bottom - scroller.getBoundingClientRect().top + 40
            : scroller.scrollHeight;
          return content + (window.innerHeight - scroller.clientHeight);
        }"""
    )
    if height > max_height:
        print(f"[browser] {path.name}: notebook is {height} px tall; screenshot cut at {max_height} px")
    page.set_viewport_size({"width": size["width"], "height": int(min(max(height, size["height"]), max_height))})
    try:
        page.wait_for_timeout(800)  # let the layout settle after the resize
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)


# --------------------------------------------------------------------------- explorers

_EXPLORER_OUTPUT_JS = r"""
(el) => {
  const out = el.querySelector('.rt-explorer-output');
  if (!out) return null;
  const imgs = Array.from(out.querySelectorAll('img'));
  return {
    html: out.innerHTML,
    imgs: imgs.map(i => i.getAttribute('src') || ''),
    outputs: out.querySelectorAll('.jp-OutputArea-output').length,
    text: out.innerText.slice(0, 2000),
  };
}
"""


def explorer_snapshot(explorer: Any) -> dict[str, Any] | None:
    """What the explorer's output area shows right now (image sources, HTML, output count)."""
    return explorer.evaluate(_EXPLORER_OUTPUT_JS)


def explorer_is_manual(explorer: Any) -> bool:
    """True when the explorer redraws only on its "Run" button (``manual=True``)."""
    buttons = explorer.locator("button.widget-button:not(.widget-toggle-button)")
    return any(buttons.nth(i).inner_text().strip() == "Run" for i in range(buttons.count()))


def nudge_explorer(page: Any, explorer: Any) -> str:
    """Change the explorer's first control the way a person would; return what was done."""
    handles = explorer.locator(".noUi-handle")
    if handles.count():
        handle = handles.first
        handle.scroll_into_view_if_needed()
        value_before = handle.get_attribute("aria-valuenow")
        handle.click()
        for key in ("ArrowRight", "ArrowLeft"):  # ArrowLeft when the slider starts at its maximum
            for _ in range(3):
                page.keyboard.press(key)
                page.wait_for_timeout(150)
            if handle.get_attribute("aria-valuenow") != value_before:
                return f"slider: clicked the handle, pressed {key} 3x ({value_before} -> {handle.get_attribute('aria-valuenow')})"
        raise AssertionError(f"the explorer's first slider did not move from {value_before} with the arrow keys")
    toggles = explorer.locator(".widget-toggle-button:not(.mod-active)")
    if toggles.count():
        label = toggles.first.inner_text().strip()
        toggles.first.click()
        return f"toggle: clicked {label!r}"
    selects = explorer.locator("select")
    if selects.count():
        select = selects.first
        options = select.locator("option")
        current = select.input_value()
        for i in range(options.count()):
            value = options.nth(i).get_attribute("value")
            if value != current:
                select.select_option(value=value)
                return f"dropdown: chose option {value!r}"
    checks = explorer.locator("input[type=checkbox]")
    if checks.count():
        checks.first.click()
        return "checkbox: clicked"
    raise AssertionError("explorer has no slider, toggle, dropdown or checkbox to change")


def wait_for_redraw(explorer: Any, before: dict[str, Any], timeout_s: float = 60.0) -> dict[str, Any]:
    """Wait until the output area shows new content that stays put for a moment."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    stable = 0
    while time.monotonic() < deadline:
        snap = explorer_snapshot(explorer)
        changed = snap is not None and snap["html"] != before["html"] and snap["outputs"] >= 1
        if changed and last is not None and snap["html"] == last["html"]:
            stable += 1
            if stable >= 3:
                return snap
        else:
            stable = 0
        last = snap
        time.sleep(0.4)
    raise AssertionError(f"explorer output did not change within {timeout_s:.0f} s")


# --------------------------------------------------------------------------- single cells (exercise tests)

_CELL_JS = r"""
(index) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[index];
  const outputs = [];
  const model = cell.model.outputs;
  for (let i = 0; model && i < model.length; i++) outputs.push(model.get(i).toJSON());
  return {
    type: cell.model.type,
    source: cell.model.sharedModel.getSource(),
    count: cell.model.type === 'code' ? cell.model.executionCount : null,
    tags: cell.model.getMetadata('tags') || [],
    outputs,
    text: (cell.node.querySelector('.jp-OutputArea') || {innerText: ''}).innerText,
  };
}
"""


def cell_info(page: Any, index: int) -> dict[str, Any]:
    """The open notebook's cell ``index``: type, source, execution count, tags, outputs (JSON) and the
    text its output area shows."""
    return page.evaluate(_CELL_JS, index)


def find_cells(page: Any, tag: str | None = None, contains: str | None = None) -> list[int]:
    """Indices of the open notebook's cells that carry ``tag`` and/or whose source contains ``contains``."""
    return page.evaluate(
        """([tag, contains]) => window.jupyterapp.shell.currentWidget.content.widgets
             .map((cell, i) => [cell, i])
             .filter(([cell]) => (!tag || (cell.model.getMetadata('tags') || []).includes(tag))
                              && (!contains || cell.model.sharedModel.getSource().includes(contains)))
             .map(([, i]) => i)""",
        [tag, contains],
    )


def run_cell(page: Any, index: int, timeout_s: float = 120.0) -> dict[str, Any]:
    """Select cell ``index``, run it with the "Run Selected Cell" command, wait until it has run; return
    :func:`cell_info` afterwards."""
    before = cell_info(page, index)["count"]
    page.evaluate(
        """(index) => {
          const panel = window.jupyterapp.shell.currentWidget;
          panel.content.activeCellIndex = index;
          panel.content.activeCell.node.scrollIntoView({block: 'center'});
          window.jupyterapp.commands.execute('notebook:run-cell');
        }""",
        index,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = cell_info(page, index)
        if info["count"] is not None and info["count"] != before and kernel_status(page) == "idle":
            page.wait_for_timeout(300)  # let the output area render
            return cell_info(page, index)
        time.sleep(0.3)
    raise TimeoutError(f"cell {index} did not finish within {timeout_s:.0f} s (kernel {kernel_status(page)!r})")


def type_into_cell(page: Any, index: int, text: str) -> str:
    """Replace the text of cell ``index`` the way a person does: click into its editor, select all, type.

    Playwright's ``insert_text`` delivers the text as one input (as a paste does), so the
    editor's auto-indent and bracket closing leave it as it is. Returns the cell's source afterwards.
    """
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.scroll_into_view_if_needed()
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)
    page.keyboard.press("Escape")  # leave edit mode, as after typing
    return cell_info(page, index)["source"]


def run_in_kernel(page: Any, code: str, timeout_s: float = 30.0) -> str:
    """Run ``code`` in the open notebook's kernel without a cell (test plumbing); return the reply status."""
    return page.evaluate(
        """async ([code, ms]) => {
          const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
          const future = kernel.requestExecute({code, silent: false, store_history: false});
          const timer = new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), ms));
          const reply = await Promise.race([future.done, timer]);
          return reply.content.status;
        }""",
        [code, timeout_s * 1000],
    )
