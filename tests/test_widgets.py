"""The explorer helper: frames in place, coalesced moves, runs with Stop and overlays, fallback without widgets."""

from __future__ import annotations

import threading

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pytest

from resnet_tutorial import config, widgets
from resnet_tutorial.live import LiveFigure, Panel, RunPlot, png_caption


def _draw(n: int = 3, color: str = "red"):
    fig, ax = plt.subplots()
    ax.plot(range(n), color=color)
    ax.set_title(f"n={n}")
    return fig


class Squares(LiveFigure):
    """A fast explorer: one line of k² for k < n, limits that follow n."""

    figsize = (4.0, 3.0)

    def __init__(self) -> None:
        super().__init__()
        self.computed: list[int] = []

    def compute(self, n: int = 3) -> np.ndarray:
        self.computed.append(n)
        return np.arange(n) ** 2

    def build(self, fig) -> None:
        self.ax = fig.subplots()
        (self.line,) = self.ax.plot([], [], "o-")
        self.title = self.ax.set_title(" ")
        self.dynamic(self.line, self.title)

    def update(self, data: np.ndarray, n: int = 3) -> None:
        self.line.set_data(np.arange(n), data)
        self.title.set_text(f"n={n}")
        self.set_limits(self.ax, x=(0, max(n, 10)), y=(0, max(100, (n - 1) ** 2)))


class Counter(RunPlot):
    """A run you can hold at a step: ``hold_at`` pauses there until ``go`` is set."""

    panels = (Panel("loss"),)

    def __init__(self) -> None:
        super().__init__()
        self.reached, self.go = threading.Event(), threading.Event()
        self.hold_at: int | None = None
        self.interrupt_at: int | None = None

    def train(self, steps: int = 20, rate: float = 0.5) -> None:
        self.start(f"rate {rate}", steps)
        for i in range(1, steps + 1):
            if i == self.interrupt_at:
                raise KeyboardInterrupt
            self.add("loss", i, float(np.exp(-rate * i)))
            if i == self.hold_at:
                self.reached.set()
                assert self.go.wait(10)


def _widget_kernel(monkeypatch: pytest.MonkeyPatch) -> list:
    shown: list = []
    monkeypatch.setattr(widgets, "widgets_available", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    return shown


def test_pick_follows_fast_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.FAST_ENV, "1")
    assert config.is_fast() and config.pick(10, 1) == 1
    monkeypatch.setenv(config.FAST_ENV, "0")
    assert not config.is_fast() and config.pick(10, 1) == 10


def test_fallback_runs_draw_once_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(widgets, "_show", lambda result: calls.append(result))
    assert not widgets.widgets_available()  # plain pytest process: no kernel
    widgets.explore(lambda n, color: (n, color), n=W.IntSlider(value=4, min=1, max=9), color="blue")
    assert calls == [(4, "blue")]


def test_fallback_shows_one_frame_of_a_live_figure_and_a_whole_run(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = []
    monkeypatch.setattr(widgets, "_show", lambda result: shown.append(result))
    assert widgets.explore(Squares, n=W.IntSlider(value=5, min=1, max=20)) is None
    assert widgets.explore(Counter, steps=W.IntSlider(value=7, min=1, max=50)) is None
    squares, run = shown
    assert squares.axes[0].get_title() == "n=5" and list(squares.axes[0].lines[0].get_xdata()) == [0, 1, 2, 3, 4]
    assert not squares.axes[0].lines[0].get_animated()  # headless figures draw every artist
    assert list(run.axes[0].lines[0].get_xdata()) == [1, 2, 3, 4, 5, 6, 7]  # the whole default run


def test_plain_function_redraws_into_one_image_and_closes_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = _widget_kernel(monkeypatch)
    open_before = set(plt.get_fignums())  # figures other tests left open in this process are not ours
    slider = W.IntSlider(value=3, min=1, max=9)
    explorer = widgets.explore(_draw, n=slider, color="green")
    assert png_caption(explorer.image.value) == "n=3"
    slider.value = 7  # what a person's key press does
    assert png_caption(explorer.image.value) == "n=7"
    assert set(plt.get_fignums()) == open_before  # closed after the frame: nothing piles up in pyplot
    assert "rt-explorer" in explorer.box._dom_classes and "rt-explorer-output" in explorer.output._dom_classes
    assert slider.continuous_update is False  # a rebuilt figure is slow: redraw when let go
    # displayed once, by explore; the output area holds exactly the image widget
    assert shown == [explorer.box]
    (entry,) = explorer.output.outputs
    assert entry["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.image.model_id


def test_live_figure_follows_the_drag_and_blits_when_axes_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)
    slider = W.IntSlider(value=3, min=1, max=30)
    explorer = widgets.explore(Squares, n=slider)
    view = explorer.view
    assert slider.continuous_update is True
    assert (view.full_draws, view.blits) == (1, 0)
    slider.value = 4  # same limits: only the line and the title are redrawn
    assert (view.full_draws, view.blits) == (1, 1) and png_caption(explorer.image.value) == "n=4"
    slider.value = 25  # limits grow: one full draw
    assert view.full_draws == 2 and png_caption(explorer.image.value) == "n=25"
    slider.value = 4
    assert view.computed == [3, 4, 25]  # 4 again came from the cache


def test_burst_of_moves_draws_few_frames_and_ends_on_the_last_value(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)
    queue: list = []
    monkeypatch.setattr(widgets, "_schedule_soon", queue.append)  # an event loop we turn by hand
    slider = W.IntSlider(value=0, min=0, max=100)
    explorer = widgets.explore(Squares, n=slider)
    first = explorer.frames.frames if explorer.frames else 0
    seen = []
    for value in range(1, 21):  # 20 moves; the loop gets a turn after every 6th, as while a frame draws
        slider.value = value
        if value % 6 == 0:
            while queue:
                queue.pop(0)()
                seen.append(png_caption(explorer.image.value))
    while queue:
        queue.pop(0)()
        seen.append(png_caption(explorer.image.value))
    frames = explorer.frames.frames - first
    assert 1 <= frames <= 4, seen
    assert seen[-1] == "n=20" and png_caption(explorer.image.value) == "n=20"
    # every frame showed the value the slider had when it was drawn, in order
    assert seen == sorted(seen, key=lambda s: int(s[2:])) and len(set(seen)) == len(seen)


def test_frames_merges_requests_until_it_runs() -> None:
    queue: list = []
    rendered = []
    frames = widgets.Frames(lambda: rendered.append(len(rendered)), schedule=queue.append)
    for _ in range(20):
        frames.request()
    assert len(queue) == 1 and rendered == []
    queue.pop()()
    assert rendered == [0] and frames.frames == 1
    frames.request()
    assert len(queue) == 1  # a request after the frame asks for the next one


def test_returned_handle_does_not_display_the_explorer_again() -> None:
    from IPython.core.formatters import DisplayFormatter

    box = W.VBox([])
    handle = widgets.Explorer(box, {}, W.Output(), lambda: None, "draw")
    data, _ = DisplayFormatter().format(handle)  # what IPython does with a cell's last value
    assert data == {}
    data_box, _ = DisplayFormatter().format(box)
    assert "application/vnd.jupyter.widget-view+json" in data_box  # the box itself would show again


def test_manual_explorer_waits_for_the_button(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)
    calls = []
    slider = W.IntSlider(value=2, min=1, max=9)
    explorer = widgets.explore(lambda n: calls.append(n) or f"value {n}", manual=True, n=slider)
    assert calls == [2]
    slider.value = 5
    assert calls == [2]  # no rerun until Run is pressed
    explorer.buttons["run"].click()
    assert calls == [2, 5]
    assert explorer.output.outputs[0]["data"]["text/plain"] == "'value 5'"  # not a figure: shown as itself


def test_a_loop_left_running_outside_a_kernel_does_not_swallow_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    # playwright's sync API (the browser tests, in the same worker) leaves a loop registered as running that
    # only turns inside playwright calls: a frame scheduled on it would never be drawn
    import asyncio

    _widget_kernel(monkeypatch)
    loop = asyncio.new_event_loop()
    loop.is_running = lambda: True  # type: ignore[method-assign]
    before = asyncio._get_running_loop()  # playwright's, when the browser tests ran first in this worker
    asyncio._set_running_loop(loop)
    try:
        calls = []
        slider = W.IntSlider(value=2, min=1, max=9)
        widgets.explore(lambda n: calls.append(n) or f"value {n}", n=slider)
        slider.value = 5
        assert calls == [2, 5]
    finally:
        asyncio._set_running_loop(before)  # put back whatever was there: the browser fixture still needs it
        del loop.is_running
        loop.close()


def test_in_a_kernel_frames_wait_for_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    scheduled = []

    class Loop:
        def is_running(self) -> bool:
            return True

        def call_later(self, delay: float, callback) -> None:
            scheduled.append((delay, callback))

    monkeypatch.setattr(widgets, "_in_kernel", lambda: True)
    monkeypatch.setattr(asyncio, "get_running_loop", lambda: Loop())
    calls = []
    frames = widgets.Frames(lambda: calls.append(1))
    frames.request()
    frames.request()  # merged into the pending frame
    assert calls == [] and len(scheduled) == 1 and scheduled[0][0] == widgets.COALESCE_S
    scheduled[0][1]()
    assert calls == [1] and frames.frames == 1


def test_a_failing_draw_shows_its_error_and_keeps_the_last_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)

    def draw(n: int = 2):
        if n == 5:
            raise ValueError("n = 5 is not allowed")
        return _draw(n)

    slider = W.IntSlider(value=2, min=1, max=9)
    explorer = widgets.explore(draw, n=slider)
    slider.value = 5
    assert png_caption(explorer.image.value) == "n=2"
    assert "n = 5 is not allowed" in explorer.messages.outputs[0]["text"]
    slider.value = 6
    assert png_caption(explorer.image.value) == "n=6" and explorer.messages.outputs == ()


def test_stop_ends_a_run_and_keeps_its_curves(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)
    explorer = widgets.explore(Counter, autorun=False, steps=W.IntSlider(value=40, min=1, max=100))
    view = explorer.view
    view.hold_at = 6
    run, stop = explorer.buttons["run"], explorer.buttons["stop"]
    run.click()  # trains in a background thread: this returns at once
    assert view.reached.wait(10)
    assert run.disabled and not stop.disabled
    stop.click()  # what the kernel does with the Stop click while the run trains
    assert stop.disabled is True  # at once, while the run still finishes its step: one click is enough
    view.go.set()
    explorer.wait(10)
    assert not explorer.thread.is_alive()
    assert view.series["loss"].xs == [1, 2, 3, 4, 5, 6]  # what was trained stays
    assert "stopped" in png_caption(explorer.image.value)
    assert not run.disabled and stop.disabled
    assert list(view.series["loss"].line.get_xdata()) == [1, 2, 3, 4, 5, 6]


def test_earlier_runs_stay_faded_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)
    rate = W.FloatSlider(value=0.5, min=0.1, max=1.0)
    explorer = widgets.explore(Counter, steps=W.IntSlider(value=5, min=1, max=10), rate=rate)  # first run: in the cell
    view = explorer.view
    rate.value = 0.2
    explorer.buttons["run"].click()
    explorer.wait(10)
    rate.value = 0.9
    explorer.buttons["run"].click()
    explorer.wait(10)
    ax = view.axes[0]
    assert [r["label"] for r in view.runs] == ["rate 0.5", "rate 0.2"]
    faded = [line for line in ax.lines if line.get_alpha() == view.faded_alpha]
    assert len(faded) == 2 and len(ax.lines) == 3
    assert ax.get_legend().get_texts()[-1].get_text() == "earlier runs (faded)"
    explorer.buttons["clear"].click()
    assert view.runs == [] and len(ax.lines) == 1
    assert view.series["loss"].ys[0] == pytest.approx(np.exp(-0.9))  # the current run stays


def test_interrupting_the_first_run_keeps_its_curves(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)
    frames: list[str] = []
    real_set_frame = widgets._set_frame
    monkeypatch.setattr(widgets, "_set_frame", lambda ex, png: (frames.append(png_caption(png)), real_set_frame(ex, png)))
    view = Counter()
    view.interrupt_at = 4  # the kernel's interrupt (■) arrives while step 4 trains
    with pytest.raises(KeyboardInterrupt):
        widgets.explore(view, steps=W.IntSlider(value=10, min=1, max=20))
    assert view.series["loss"].xs == [1, 2, 3]
    assert frames[-1] == "rate 0.5: interrupted"  # the last frame on screen shows the three trained steps
    assert list(view.series["loss"].line.get_xdata()) == [1, 2, 3]


def test_run_plot_marks_a_diverged_series_and_checks_its_arguments() -> None:
    class Diverging(RunPlot):
        def train(self) -> None:
            self.start("lr 10", 5)
            for i, y in enumerate([2.0, 5.0, float("nan"), 1.0], start=1):
                self.add("loss", i, y)

    view = Diverging()
    fig = view.draw()
    assert view.series["loss"].ys == [2.0, 5.0]
    assert fig.axes[0].get_legend().get_texts()[0].get_text() == "loss (diverged at step 3)"
    with pytest.raises(ValueError, match="x_max"):
        view.start("bad", 0)
    with pytest.raises(ValueError, match="panel"):
        view.add("other", 1, 1.0, panel=3)


# ---------------------------------------------------------------- what the learner sees and can rely on
def _find(box, kind, description: str | None = None) -> list:
    """Every widget of type ``kind`` inside ``box`` (depth first), optionally with this description."""
    found = []
    for child in getattr(box, "children", ()):
        if isinstance(child, kind) and (description is None or child.description == description):
            found.append(child)
        found += _find(child, kind, description)
    return found


def test_output_entries_are_what_jupyter_itself_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image entry equals ipywidgets' own display bundle; every entry validates as a notebook output."""
    import nbformat
    import pandas as pd

    image = W.Image(format="png")
    entry = widgets._widget_output(image)
    assert entry == {"output_type": "display_data", "data": image._repr_mimebundle_(), "metadata": {}}
    table = pd.DataFrame({"a": [1, 2]})
    rich = widgets._rich_output(table)
    assert rich["output_type"] == "display_data" and rich["data"]["text/html"] == table._repr_html_()
    error = widgets._error_output("Traceback ...\nValueError: bad\n")
    assert error == {"output_type": "stream", "name": "stderr", "text": "Traceback ...\nValueError: bad\n"}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("explore(...)", outputs=[entry, rich, error])])
    nbformat.validate(nb)  # a wrong key or output type would not be a notebook JupyterLab can save


def test_widgets_available_needs_ipywidgets_a_kernel_and_no_opt_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    import IPython

    kernel_shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setattr(IPython, "get_ipython", lambda: kernel_shell)
    monkeypatch.delenv(widgets.NO_WIDGETS_ENV, raising=False)
    assert widgets.widgets_available()
    for value in ("1", "true", "yes", " yes "):
        monkeypatch.setenv(widgets.NO_WIDGETS_ENV, value)
        assert not widgets.widgets_available(), value
    monkeypatch.setenv(widgets.NO_WIDGETS_ENV, "0")
    assert widgets.widgets_available()
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace())  # a terminal IPython: no kernel
    assert not widgets.widgets_available()
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)  # plain Python
    assert not widgets.widgets_available()
    monkeypatch.setattr(IPython, "get_ipython", lambda: kernel_shell)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # not installed: import fails
    assert not widgets.widgets_available()


def test_in_kernel_asks_ipykernel_only_when_it_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    state = {"initialized": True}
    fake = types.SimpleNamespace(Kernel=types.SimpleNamespace(initialized=lambda: state["initialized"]))
    monkeypatch.setitem(sys.modules, "ipykernel.kernelbase", fake)
    assert widgets._in_kernel()
    state["initialized"] = False
    assert not widgets._in_kernel()
    monkeypatch.delitem(sys.modules, "ipykernel.kernelbase")
    assert not widgets._in_kernel()


def test_in_a_kernel_without_a_running_loop_frames_draw_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(widgets, "_in_kernel", lambda: True)  # a kernel, but called outside its loop
    calls = []
    widgets._schedule_soon(lambda: calls.append(1))
    assert calls == [1]


def test_fallback_show_displays_a_result_and_closes_every_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    plt.figure()
    plt.figure()
    widgets._show("a table")
    assert shown == ["a table"] and plt.get_fignums() == []
    widgets._show(None)  # nothing to show: nothing displayed (not a "None" line)
    assert shown == ["a table"]


def test_explorer_layout_is_readable_on_a_narrow_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Labels are never cut, controls wrap, the frame scales down and keeps its aspect, the cell does not jump."""
    shown = _widget_kernel(monkeypatch)
    slider = W.IntSlider(value=3, min=1, max=9, description="number of layers")
    explorer = widgets.explore(_draw, title="Lines", n=slider, color="green")
    (box,) = shown
    title, controls, out, messages = box.children
    assert title.value == "<b>Lines</b>" and list(controls.children) == [slider]
    assert controls.layout.flex_flow == "row wrap" and slider.style.description_width == "initial"
    assert explorer.image.format == "png"
    assert (explorer.image.layout.max_width, explorer.image.layout.height) == ("100%", "auto")
    assert out is explorer.output and out.layout.min_height == "120px"
    assert messages is explorer.messages and "rt-explorer-messages" in messages._dom_classes
    no_title = widgets.explore(_draw, n=W.IntSlider(value=2, min=1, max=9))
    assert not _find(no_title.box, W.HTML)  # no empty title line


def test_explorer_names_itself_after_what_it_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)

    class Drawer:  # a callable without __name__
        def __call__(self, n: int = 2):
            return _draw(n)

    assert repr(widgets.explore(_draw, n=W.IntSlider(value=2, min=1, max=9), color="red")) == \
        "<explorer of _draw(n), shown above>"
    assert widgets.explore(Squares, n=W.IntSlider(value=2, min=1, max=9)).name == "Squares"
    assert widgets.explore(Squares(), n=W.IntSlider(value=2, min=1, max=9)).name == "Squares"
    assert widgets.explore(Drawer(), n=W.IntSlider(value=2, min=1, max=9)).name == "draw"
    handle = widgets.Explorer(W.VBox([]), {"a": 1, "b": 2}, W.Output(), lambda: None, "f")
    assert repr(handle) == "<explorer of f(a, b), shown above>"
    assert (handle.image, handle.view, handle.frames, handle.messages, handle.thread) == (None,) * 5


def test_fixed_values_reach_the_draw_and_only_value_changes_redraw(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)

    def draw(n: int = 2, unit: str = "?"):
        fig, ax = plt.subplots()
        ax.set_title(f"{n} {unit}")
        return fig

    slider = W.IntSlider(value=2, min=1, max=9)
    explorer = widgets.explore(draw, n=slider, unit="layers")
    assert png_caption(explorer.image.value) == "2 layers"
    frames = explorer.frames.frames
    slider.description = "depth"  # not a value: no new frame
    slider.max = 20
    assert explorer.frames.frames == frames
    slider.value = 4
    assert explorer.frames.frames == frames + 1 and png_caption(explorer.image.value) == "4 layers"


def test_live_figure_gets_the_fixed_values_too(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)

    class Scaled(Squares):
        def compute(self, n: int = 3, scale: int = 1) -> np.ndarray:
            return scale * super().compute(n)

        def update(self, data: np.ndarray, n: int = 3, scale: int = 1) -> None:
            super().update(data, n)
            self.title.set_text(f"n={n} x{scale}")

    explorer = widgets.explore(Scaled, n=W.IntSlider(value=3, min=1, max=9), scale=10)
    assert png_caption(explorer.image.value) == "n=3 x10"


def test_a_draw_that_returns_a_table_or_nothing_then_a_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)

    def draw(n: int = 2):
        if n == 5:
            return "five"  # shown as itself
        if n == 6:
            return None  # nothing to show
        return _draw(n)

    slider = W.IntSlider(value=2, min=1, max=9)
    explorer = widgets.explore(draw, n=slider)
    image_entry = (widgets._widget_output(explorer.image),)
    slider.value = 5
    assert explorer.output.outputs[0]["data"]["text/plain"] == "'five'"
    slider.value = 6
    assert explorer.output.outputs == ()
    slider.value = 7
    assert explorer.output.outputs == image_entry and png_caption(explorer.image.value) == "n=7"


def test_frames_counts_every_render() -> None:
    queue: list = []
    frames = widgets.Frames(lambda: None, schedule=queue.append)
    for _ in range(3):
        frames.request()
        queue.pop()()
    assert frames.frames == 3 and not frames._scheduled


def test_buttons_say_what_they_do(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)
    manual = widgets.explore(lambda n: f"value {n}", manual=True, n=W.IntSlider(value=2, min=1, max=9))
    run = manual.buttons["run"]
    assert (run.description, run.button_style, run.icon) == ("Run", "primary", "play")
    explorer = widgets.explore(Counter, autorun=False, steps=W.IntSlider(value=3, min=1, max=9))
    b = explorer.buttons
    assert [(x.description, x.button_style, x.icon) for x in (b["run"], b["stop"], b["clear"])] == [
        ("Run", "primary", "play"), ("Stop", "danger", "stop"), ("Clear earlier runs", "", "eraser")]
    assert b["clear"].layout.width == "auto"  # the long label is not cut
    assert b["stop"].disabled is True and b["run"].disabled is False  # nothing to stop yet
    assert _find(explorer.box, W.Button) == [b["run"], b["stop"], b["clear"]]


def test_a_run_started_with_run_shows_a_first_frame_and_trains_in_a_daemon_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)
    captions: list[str] = []
    real_set_frame = widgets._set_frame
    monkeypatch.setattr(widgets, "_set_frame", lambda ex, png: (captions.append(png_caption(png)), real_set_frame(ex, png)))
    explorer = widgets.explore(Counter, autorun=False, steps=W.IntSlider(value=40, min=1, max=100))
    view = explorer.view
    view.hold_at = 3
    captions.clear()
    explorer.buttons["run"].click()
    assert view.reached.wait(10)
    assert captions[0] == "starting a new run..."  # before any model is built
    thread = explorer.thread
    assert thread.daemon and thread.name == "rt-explorer-run"  # a run never keeps Python from exiting
    assert explorer.buttons["stop"].disabled is False
    explorer.buttons["run"].click()  # a second click while it trains starts nothing
    assert explorer.thread is thread
    explorer.wait(0.05)  # returns after the timeout although the run still holds
    assert thread.is_alive()
    view.go.set()
    explorer.wait(10)
    assert explorer.buttons["stop"].disabled is True and explorer.buttons["run"].disabled is False


def test_a_failing_run_reports_its_error_and_gives_the_buttons_back(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)

    class Failing(Counter):
        def train(self, steps: int = 20, rate: float = 0.5) -> None:
            self.start(f"rate {rate}", steps)
            if rate > 0.8:
                raise ValueError(f"rate {rate} is too large")
            super().train(steps, rate)

    rate = W.FloatSlider(value=0.9, min=0.1, max=1.0)
    explorer = widgets.explore(Failing, steps=W.IntSlider(value=3, min=1, max=9), rate=rate)  # fails in the cell
    assert "rate 0.9 is too large" in explorer.messages.outputs[0]["text"]
    assert explorer.buttons["run"].disabled is False
    rate.value = 0.95
    explorer.buttons["run"].click()  # fails in the thread
    explorer.wait(10)
    assert "rate 0.95 is too large" in explorer.messages.outputs[0]["text"]
    assert explorer.buttons["run"].disabled is False and explorer.buttons["stop"].disabled is True


def test_the_first_run_uses_the_controls_and_holds_the_run_button(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = _widget_kernel(monkeypatch)
    seen: list = []

    class Watched(Counter):
        def train(self, steps: int = 20, rate: float = 0.5) -> None:
            (run,) = _find(shown[0], W.Button, "Run")
            seen.append(run.disabled)  # while the first run trains in the cell, Run cannot start a second
            super().train(steps, rate)

    explorer = widgets.explore(Watched, steps=W.IntSlider(value=4, min=1, max=9), rate=W.FloatSlider(value=0.3))
    assert seen == [True] and explorer.buttons["run"].disabled is False
    assert explorer.view.label == "rate 0.3" and explorer.view.series["loss"].xs == [1, 2, 3, 4]


def test_continuous_overrides_the_default_and_redraw_starts_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)
    slider = W.IntSlider(value=3, min=1, max=9)
    widgets.explore(_draw, continuous=True, n=slider)  # a plain function that is fast enough to follow the drag
    assert slider.continuous_update is True
    fast = W.IntSlider(value=3, min=1, max=9)
    widgets.explore(Squares, continuous=False, n=fast)
    assert fast.continuous_update is False
    explorer = widgets.explore(Counter, autorun=False, steps=W.IntSlider(value=3, min=1, max=9))
    explorer.redraw()  # the documented way to start a run from code
    explorer.wait(10)
    assert explorer.view.series["loss"].xs == [1, 2, 3]


def test_the_first_run_gets_the_fixed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    _widget_kernel(monkeypatch)
    explorer = widgets.explore(Counter, steps=3, rate=W.FloatSlider(value=0.4))  # steps: a constant, not a control
    assert explorer.view.series["loss"].xs == [1, 2, 3] and explorer.view.label == "rate 0.4"
