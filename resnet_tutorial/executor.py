"""The project's one way to execute a notebook headless (tests, ``make lessons``, benchmarks).

It is nbclient's :class:`~nbclient.NotebookClient` with one change: the client
waits for the kernel's messages in short slices instead of one long poll.

Why: nbclient waits for a cell's ``execute_reply`` with a single
``shell_channel.get_msg(timeout=<cell timeout>)``, an asyncio ``zmq`` poll. After
a cell that displays an ipywidget that poll sometimes misses its wake-up: the
reply has arrived and the kernel is idle, but the client only notices when the
poll times out, so the cell "stalls until the timeout" (jupyter/nbclient#312,
open; fix proposed in jupyter/nbclient#311). Measured here on lesson 03's
explorer cell: 10 stalls in 14 fresh-kernel runs with plain nbclient, 0 in 16
when the poll is cut into 0.5 s slices. Each slice that comes back empty simply
polls again, so a missed wake-up costs at most one slice. Everything else
(per-cell timeout, ``CellExecutionError`` with the cell's source, widget
output handling) is nbclient's own. JupyterLab is not affected.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from queue import Empty
from typing import Any, Awaitable, Callable

import nbformat
from nbclient import NotebookClient

#: Longest single wait on a kernel channel, in seconds.
POLL_SLICE_S = 0.5
#: Per-cell limit for FAST lessons: a FAST cell that needs more than this is itself a bug.
FAST_CELL_TIMEOUT_S = 60
FAST_ENV = "RESNET_TUTORIAL_FAST"


def sliced(get_msg: Callable[..., Awaitable[dict]], slice_s: float = POLL_SLICE_S) -> Callable[..., Awaitable[dict]]:
    """Wrap a channel's async ``get_msg(timeout)`` so that it polls in slices of ``slice_s``.

    Same contract as the original: returns the next message, or raises
    ``queue.Empty`` once ``timeout`` seconds have passed (``None``: wait forever).
    """

    async def get_msg_in_slices(timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_s if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await get_msg(timeout=min(slice_s, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get_msg_in_slices


class LessonClient(NotebookClient):
    """:class:`nbclient.NotebookClient` whose shell and IOPub polls run in short slices."""

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        for channel in (kc.shell_channel, kc.iopub_channel):
            channel.get_msg = sliced(channel.get_msg)
        return kc


def execute_notebook(
    path: str | os.PathLike,
    *,
    fast: bool | None = None,
    timeout: int | None = None,
    kernel_name: str | None = None,
    **client_kw: Any,
) -> tuple[nbformat.NotebookNode, float]:
    """Run the notebook at ``path`` top to bottom in a fresh kernel: ``(executed notebook, seconds)``.

    The file is never modified (a copy in memory is executed, in the
    notebook's own folder). ``fast=True`` sets ``RESNET_TUTORIAL_FAST=1`` for the
    kernel, ``False`` removes it, ``None`` leaves the environment alone.
    ``timeout`` is the per-cell limit (default :data:`FAST_CELL_TIMEOUT_S` in
    FAST mode, one hour otherwise). The first failing cell raises nbclient's
    ``CellExecutionError`` (its message holds the cell's source and traceback),
    a cell over the limit ``CellTimeoutError``; either carries the partly
    executed notebook as ``.notebook`` and the time so far as ``.seconds``.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    nb = nbformat.read(path, as_version=4)
    saved = os.environ.get(FAST_ENV)
    if fast is not None:
        if fast:
            os.environ[FAST_ENV] = "1"
        else:
            os.environ.pop(FAST_ENV, None)
    fast_now = os.environ.get(FAST_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    if timeout is None:
        timeout = FAST_CELL_TIMEOUT_S if fast_now else 3600
    client = LessonClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name or nb.metadata.get("kernelspec", {}).get("name", "python3"),
        resources={"metadata": {"path": str(path.parent)}},
        **client_kw,
    )
    start = time.perf_counter()
    try:
        client.execute()
    except BaseException as exc:
        exc.notebook, exc.seconds = nb, time.perf_counter() - start  # what ran, for the caller's report
        raise
    finally:
        if fast is not None:
            if saved is None:
                os.environ.pop(FAST_ENV, None)
            else:
                os.environ[FAST_ENV] = saved
    return nb, time.perf_counter() - start
