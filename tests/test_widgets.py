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
