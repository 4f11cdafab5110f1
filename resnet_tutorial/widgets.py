"""Interactive explorers that follow the hand, runs you watch, and the same figures without widgets.

Every explorer in the lessons is either a *plain function* ``draw(**params)``
returning a matplotlib Figure (or a DataFrame, or anything IPython can
display), or a :class:`~resnet_tutorial.live.LiveFigure` /
:class:`~resnet_tutorial.live.RunPlot` subclass whose figure is built once
and updated in place. Tests call the function, or ``View().draw(**params)``,
directly. :func:`explore` wraps either in ipywidgets:

* the picture is one ``Image`` widget inside the output area: each frame is
  one PNG sent as a binary buffer (no second layout pass, no flicker);
* moves are coalesced: a control change only asks for a frame, and the frame
  is drawn a moment later (on the kernel's event loop) with the controls'
  values *at that time*; changes that arrive while a frame is drawn ask
  once more, so a burst of moves draws a few frames and always ends on the
  last value (ipywidgets' front end also keeps at most one update per
  control in flight);
* a LiveFigure explorer's sliders send values while dragged
  (``continuous_update=True``); a plain function's only when let go;
* ``manual=True`` adds a "Run" button for plain functions that take seconds;
* a RunPlot explorer gets Run / Stop / Clear: the first run (the default
  values) trains in the cell, streaming frames (the kernel's interrupt ■
  stops it and keeps the curves); runs started with Run train in a
  background thread, so the kernel stays free to take the Stop click;
* without ipywidgets, outside a kernel, or with ``RESNET_TUTORIAL_NO_WIDGETS=1``
  the explorer draws once with the default values and shows that figure.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import traceback
from typing import Any, Callable

NO_WIDGETS_ENV = "RESNET_TUTORIAL_NO_WIDGETS"
#: Seconds a frame waits after the first request, so that moves already queued in the kernel are read first.
COALESCE_S = 0.005


def widgets_available() -> bool:
    """True when ipywidgets is importable, we run inside a kernel and not disabled."""
    if os.environ.get(NO_WIDGETS_ENV, "").strip() in {"1", "true", "yes"}:
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _default_value(control: Any) -> Any:
    """The value a control starts at (a widget's ``.value`` or a plain constant)."""
    return getattr(control, "value", control)


def _show(result: Any) -> None:
    """Display a draw function's result and close figures so they do not pile up."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    if result is not None:
        display(result)
    plt.close("all")


def _in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (whose event loop runs between the learner's messages)."""
    kernelbase = sys.modules.get("ipykernel.kernelbase")
    return kernelbase is not None and kernelbase.Kernel.initialized()


def _schedule_soon(callback: Callable[[], None]) -> None:
    """Run ``callback`` on the kernel's event loop after :data:`COALESCE_S`; at once outside a kernel.

    Only a Jupyter kernel's loop is trusted to run the callback: in a plain
    process another library can leave a loop registered as running that never
    turns again (playwright's sync API does, for as long as its browser is
    open), and a callback put there would never draw.
    """
    loop = None
    if _in_kernel():
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
    if loop is None or not loop.is_running():
        callback()
        return
    loop.call_later(COALESCE_S, callback)


class Frames:
    """Latest value wins: frame requests that arrive while one is pending are merged into it.

    ``request()`` marks a frame as wanted and schedules one call of ``render``
    (through ``schedule``, default: the kernel's event loop a few ms later);
    more requests before that call runs add nothing. ``render`` reads the
    controls itself, so the frame shows the values they have when it is
    drawn, never an older one. ``frames`` counts the renders.
    """

    def __init__(self, render: Callable[[], None], schedule: Callable[[Callable[[], None]], None] | None = None) -> None:
        self.render = render
        self.schedule = schedule or _schedule_soon
        self.frames = 0
        self._scheduled = False

    def request(self, *_: Any) -> None:
        """Ask for a frame (an ``observe`` callback: the change itself is not needed)."""
        if self._scheduled:
            return
        self._scheduled = True
        self.schedule(self._run)

    def _run(self) -> None:
        self._scheduled = False  # a request from now on asks for the next frame
        self.frames += 1
        self.render()


def _widget_output(widget: Any) -> dict[str, Any]:
    """An output-area entry that shows ``widget`` (what ``display(widget)`` inside an Output records)."""
    return {
        "output_type": "display_data",
        "data": {
            "text/plain": repr(widget),
            "application/vnd.jupyter.widget-view+json": {"model_id": widget.model_id, "version_major": 2, "version_minor": 0},
        },
        "metadata": {},
    }


def _rich_output(obj: Any) -> dict[str, Any]:
    """An output-area entry for any displayable object (formatted now, so any thread may set it)."""
    from IPython.core.formatters import format_display_data

    data, metadata = format_display_data(obj)
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def _error_output(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stderr", "text": text}


class Explorer:
    """What :func:`explore` returns: handles on an explorer that is already on screen.

    ``explore`` displays the explorer itself. Were it to return the widget box,
    a cell ending in ``explore(...)`` would display it a second time (IPython
    shows a cell's last value), so it returns this handle, which displays as
    nothing. Tests and curious learners reach the parts through ``box``,
    ``controls``, ``output``, ``image`` (the frame), ``view`` (the LiveFigure,
    if any), ``frames`` (the coalescer) and :meth:`redraw`.
    """

    def __init__(self, box: Any, controls: dict[str, Any], output: Any, redraw: Callable[..., None],
                 name: str) -> None:
        self.box, self.controls, self.output, self._redraw, self.name = box, controls, output, redraw, name
        self.image: Any = None
        self.view: Any = None
        self.frames: Frames | None = None
        self.messages: Any = None
        self.buttons: dict[str, Any] = {}
        self.thread: threading.Thread | None = None

    def redraw(self) -> None:
        """Draw again with the controls' current values (a training explorer: start a run)."""
        self._redraw()

    def wait(self, timeout: float | None = None) -> None:
        """Wait until a run started with Run has ended (tests; a notebook never needs this)."""
        if self.thread is not None:
            self.thread.join(timeout)

    def _ipython_display_(self) -> None:
        """Nothing: the explorer was displayed once, by ``explore``."""

    def __repr__(self) -> str:
        return f"<explorer of {self.name}({', '.join(self.controls)}), shown above>"


def _as_view(draw: Any) -> Any:
    """A LiveFigure instance for a LiveFigure class or instance, else None (a plain function)."""
    from .live import LiveFigure

    if isinstance(draw, type) and issubclass(draw, LiveFigure):
        return draw()
    return draw if isinstance(draw, LiveFigure) else None


def explore(
    draw: Callable[..., Any] | type,
    *,
    manual: bool = False,
    continuous: bool | None = None,
    autorun: bool = True,
    title: str | None = None,
    **controls: Any,
) -> Any:
    """Show ``draw`` with one control per keyword and redraw in place on change.

    ``draw`` is a plain function returning a figure (rebuilt each time), or a
    :class:`~resnet_tutorial.live.LiveFigure` subclass (updated in place:
    fast, sliders follow the drag), or a :class:`~resnet_tutorial.live.RunPlot`
    subclass (a run you watch: Run, Stop, Clear; ``autorun=False`` waits for
    Run instead of training the default run in the cell). ``controls`` maps
    parameter names to ipywidgets controls (``IntSlider``, ``Dropdown``,
    ``ToggleButtons``, ``Checkbox``...) or to constants passed through
    unchanged. ``continuous`` overrides whether sliders send values while
    dragged (default: yes for a LiveFigure). The explorer is displayed here,
    once; the returned :class:`Explorer` displays as nothing. Without widgets
    the figure is drawn once with the default values, shown, and ``None``
    returned.
    """
    from .live import RunPlot

    view = _as_view(draw)
    if not widgets_available():
        values = {name: _default_value(c) for name, c in controls.items()}
        _show(view.draw(**values) if view is not None else draw(**values))
        return None

    import ipywidgets as W
    from IPython.display import display

    live = {k: c for k, c in controls.items() if isinstance(c, W.ValueWidget)}
    fixed = {k: c for k, c in controls.items() if k not in live}
    follow = (view is not None and not isinstance(view, RunPlot)) if continuous is None else continuous
    for c in live.values():
        if hasattr(c, "continuous_update"):
            c.continuous_update = follow  # plain functions: redraw when the learner lets go
        c.style = {"description_width": "initial"}

    image = W.Image(format="png", layout=W.Layout(max_width="100%", height="auto"))
    out = W.Output(layout=W.Layout(min_height="120px"))
    out.add_class("rt-explorer-output")
    out.outputs = (_widget_output(image),)
    messages = W.Output()
    messages.add_class("rt-explorer-messages")
    name = getattr(draw, "__name__", type(view).__name__ if view is not None else "draw")
    explorer = Explorer(W.VBox([]), live, out, lambda: None, name)
    explorer.image, explorer.view, explorer.messages = image, view, messages

    children: list[Any] = [W.HTML(f"<b>{title}</b>")] if title else []
    children.append(W.HBox(list(live.values()), layout=W.Layout(flex_flow="row wrap")))
    if isinstance(view, RunPlot):
        children.append(_training_buttons(explorer, view, live, fixed))
    else:
        _wire_redraws(explorer, draw, view, live, fixed, manual, children)
    children += [out, messages]
    explorer.box.children = tuple(children)
    explorer.box.add_class("rt-explorer")
    display(explorer.box)
    if isinstance(view, RunPlot):
        if autorun:
            _run_in_cell(explorer, view, live, fixed)
        else:
            view.flush()
    else:
        explorer.redraw()
    return explorer


def _set_frame(explorer: Explorer, png: bytes) -> None:
    """Put one PNG on screen; an earlier error message goes away."""
    if explorer.output.outputs != (_widget_output(explorer.image),):
        explorer.output.outputs = (_widget_output(explorer.image),)
    explorer.image.value = png
    if explorer.messages.outputs:
        explorer.messages.outputs = ()


def _report_error(explorer: Explorer) -> None:
    """Show the current exception's traceback under the explorer (the last frame stays)."""
    explorer.messages.outputs = (_error_output(traceback.format_exc()),)


def _wire_redraws(explorer: Explorer, draw: Any, view: Any, live: dict[str, Any], fixed: dict[str, Any],
                  manual: bool, children: list[Any]) -> None:
    """Frames for a plain function or a LiveFigure: coalesced, on change or on Run."""
    import ipywidgets as W
    from matplotlib.figure import Figure

    from .live import figure_png

    if view is not None:
        view.go_live()

    def render() -> None:
        values = {k: c.value for k, c in live.items()}
        try:
            if view is not None:
                _set_frame(explorer, view.frame(**values, **fixed))
                return
            result = draw(**values, **fixed)
            if isinstance(result, Figure):
                import matplotlib.pyplot as plt

                png = figure_png(result)  # a rebuilt figure: laid out like the inline backend's
                plt.close(result)
                _set_frame(explorer, png)
            else:
                explorer.output.outputs = (_rich_output(result),) if result is not None else ()
        except Exception:
            _report_error(explorer)

    frames = Frames(render)
    explorer.frames = frames
    explorer._redraw = render
    if manual:
        button = W.Button(description="Run", button_style="primary", icon="play")
        button.on_click(frames.request)
        explorer.buttons["run"] = button
        children.append(button)
    else:
        for c in live.values():
            c.observe(frames.request, names="value")


def _training_buttons(explorer: Explorer, view: Any, live: dict[str, Any], fixed: dict[str, Any]) -> Any:
    """Run / Stop / Clear for a RunPlot; Run trains in a background thread."""
    import ipywidgets as W

    run = W.Button(description="Run", button_style="primary", icon="play")
    stop = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
    clear = W.Button(description="Clear earlier runs", icon="eraser", layout=W.Layout(width="auto"))
    explorer.buttons.update(run=run, stop=stop, clear=clear)
    view.go_live()
    view.sink = lambda png: _set_frame(explorer, png)

    def start(*_: Any) -> None:
        if explorer.thread is not None and explorer.thread.is_alive():
            return
        values = {k: c.value for k, c in live.items()}
        run.disabled, stop.disabled = True, False
        view.stop.clear()
        view.note("starting a new run...")
        view.flush()  # the first frame, before any model is built
        explorer.thread = threading.Thread(target=_run_thread, args=(explorer, view, {**values, **fixed}),
                                           name="rt-explorer-run", daemon=True)
        explorer.thread.start()

    def request_stop(*_: Any) -> None:
        view.stop.set()
        stop.disabled = True

    def clear_runs(*_: Any) -> None:
        view.clear()
        view.flush()

    run.on_click(start)
    stop.on_click(request_stop)
    clear.on_click(clear_runs)
    explorer._redraw = start
    return W.HBox([run, stop, clear])


def _run_thread(explorer: Explorer, view: Any, params: dict[str, Any]) -> None:
    """A run started with Run: trains, streams, and hands the buttons back however it ends."""
    try:
        view.run(**params)
    except Exception:
        view.flush()  # the frame first: a new frame clears the messages, and the error must stay
        _report_error(explorer)
    finally:
        explorer.buttons["run"].disabled = False
        explorer.buttons["stop"].disabled = True


def _run_in_cell(explorer: Explorer, view: Any, live: dict[str, Any], fixed: dict[str, Any]) -> None:
    """The first run, with the default values, inside the cell: frames stream, ■ (interrupt) stops it."""
    run = explorer.buttons["run"]
    run.disabled = True
    try:
        view.run(**{k: c.value for k, c in live.items()}, **fixed)
    except Exception:
        view.flush()
        _report_error(explorer)
    finally:
        run.disabled = False
