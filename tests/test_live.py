"""Figures updated in place: blitted frames equal full draws, lossless frames, round limits, runs that fade."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from resnet_tutorial.live import LiveFigure, Panel, RunPlot, StopRun, encode_png, figure_png, nice_limits, png_caption


class Wave(LiveFigure):
    figsize = (4.0, 3.0)

    def build(self, fig) -> None:
        self.ax = fig.subplots()
        (self.line,) = self.ax.plot([], [], "o-")
        self.label = self.ax.text(0.05, 0.9, "", transform=self.ax.transAxes)
        self.dynamic(self.line, self.label)
        self.ax.set_xlabel("x (unitless)")
        fig.subplots_adjust(left=0.15, bottom=0.15)

    def compute(self, phase: float = 0.0, amp: float = 1.0) -> np.ndarray:
        return amp * np.sin(np.linspace(0, 6, 40) + phase)

    def update(self, data: np.ndarray, phase: float = 0.0, amp: float = 1.0) -> None:
        self.line.set_data(np.linspace(0, 6, 40), data)
        self.label.set_text(f"phase {phase:g}")
        self.set_limits(self.ax, x=(0, 6), y=nice_limits(-amp, amp))


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.mark.parametrize("params", [dict(phase=0.7), dict(phase=2.0, amp=3.0)])
def test_a_blitted_or_updated_frame_equals_a_fresh_full_draw(params) -> None:
    view = Wave()
    view.go_live()
    view.frame(phase=0.0)
    frame = view.frame(**params)
    fresh = Wave()
    fresh.draw(**params)
    fresh.canvas.draw()
    reference = encode_png(fresh.canvas)
    assert np.array_equal(_pixels(frame), _pixels(reference))
    if "amp" in params:  # the y limits changed: one more full draw, not a blit
        assert (view.full_draws, view.blits) == (2, 0)
    else:
        assert (view.full_draws, view.blits) == (1, 1)


def test_unchanged_limits_are_not_set_again() -> None:
    view = Wave()
    view.draw(phase=0.0)
    view.canvas.draw()
    assert not view.fig.stale
    view.draw(phase=1.0)  # new data, same limits: only animated artists would change
    assert LiveFigure.set_limits(view.ax, x=(0, 6)) is False
    assert LiveFigure.set_limits(view.ax, x=(0, 7)) is True and view.ax.get_xlim() == (0, 7)


def test_compute_is_cached_per_parameter_set() -> None:
    calls = []

    class Counting(Wave):
        cache_size = 2

        def compute(self, phase: float = 0.0, amp: float = 1.0) -> np.ndarray:
            calls.append((phase, amp))
            return super().compute(phase, amp)

    view = Counting()
    for phase in (0.0, 1.0, 0.0, 2.0, 1.0):
        view.draw(phase=phase)
    # 0.0 was still cached on its second use; 1.0 had been pushed out by 0.0 and 2.0 (cache of two)
    assert calls == [(0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (1.0, 1.0)]


def test_frames_are_lossless_png_with_their_caption() -> None:
    view = Wave()
    view.draw(phase=1.5)
    view.fig.suptitle("Wave, phase 1.5 ‖x‖")
    view.canvas.draw()
    png = encode_png(view.canvas, view.caption())
    image = Image.open(io.BytesIO(png))
    assert image.info["Title"] == "Wave, phase 1.5 ‖x‖" == png_caption(png)
    assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(view.canvas.buffer_rgba())[:, :, :3])
    assert png_caption(figure_png(view.fig)) == "Wave, phase 1.5 ‖x‖"


@pytest.mark.parametrize("lo, hi", [(0.13, 0.87), (-3.2, 41.0), (1e-4, 3e-4), (5.0, 5.0), (-120.0, -7.5)])
def test_nice_limits_cover_the_data_at_round_values(lo: float, hi: float) -> None:
    a, b = nice_limits(lo, hi)
    assert a <= lo and b >= hi and b > a
    step = (b - a) / round((b - a) / min(abs(b - a), 10 ** np.floor(np.log10(b - a))))  # a round step fits
    assert np.isclose(a / step, round(a / step)) and np.isclose(b / step, round(b / step))
    # a small change of the data keeps the limits (that is what keeps frames cheap)
    if hi > lo:
        assert nice_limits(lo + (hi - lo) * 0.01, hi - (hi - lo) * 0.01) == (a, b)


def test_nice_limits_refuses_non_finite_bounds() -> None:
    with pytest.raises(ValueError, match="finite"):
        nice_limits(0.0, float("nan"))


class Steps(RunPlot):
    panels = (Panel("loss"), Panel("accuracy (%)", ylim=(0, 100)))
    keep_runs = 2

    def train(self, n: int = 4, top: float = 50.0) -> None:
        self.start(f"top {top:g}", n)
        for i in range(1, n + 1):
            self.add("loss", i, 1.0 / i)
            self.add("test", i, top * i / n, panel=1, marker="o")


def test_runs_fade_keep_at_most_keep_runs_and_clear() -> None:
    view = Steps()
    for top in (10, 20, 30, 40):
        view.run(top=top)
    assert [r["label"] for r in view.runs] == ["top 20", "top 30"]  # keep_runs = 2
    acc = view.axes[1]
    assert len(acc.lines) == 3 and acc.get_ylim() == (0, 100)
    assert [line.get_alpha() for line in acc.lines].count(view.faded_alpha) == 2
    assert view.series["test"].ys[-1] == 40
    view.clear()
    assert len(acc.lines) == 1 and view.runs == []


def test_a_stop_request_ends_the_run_at_the_next_point() -> None:
    class Stopping(Steps):
        def train(self, n: int = 10, top: float = 50.0) -> None:
            self.start("run", n)
            for i in range(1, n + 1):
                self.add("loss", i, 1.0 / i)
                if i == 3:
                    self.stop.set()  # the Stop button, pressed while step 3 trains

    view = Stopping()
    assert view.run() == "stopped"
    assert view.series["loss"].xs == [1, 2, 3]
    assert "stopped at step 4" in view.caption()
    view.stop.set()
    with pytest.raises(StopRun):
        view.add("loss", 5, 0.2)


def test_frames_stream_at_most_every_interval_and_at_flush() -> None:
    sent: list[bytes] = []
    view = Steps()
    view.go_live()
    view.sink = sent.append
    view.interval_s = 3600.0  # no timed frames: only start(), the end of the run
    view.run(n=50)
    assert len(sent) == 2
    assert png_caption(sent[0]) == "top 50: starting"
    view.interval_s = 0.0  # a frame for every point
    sent.clear()
    view.run(n=5)
    assert len(sent) == 1 + 2 * 5 + 1


def test_fit_reports_every_step_and_a_stop_raised_there_ends_training() -> None:
    import torch
    import torch.nn as nn

    from resnet_tutorial.train import fit

    torch.manual_seed(0)
    x, y = torch.randn(40, 1, 4, 4), torch.randint(0, 3, (40,))
    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 40, 8)]  # 5 steps an epoch
    seen: list[dict] = []
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    history = fit(model, batches, epochs=2, device="cpu", progress=False, on_step=seen.append)
    assert [(s["epoch"], s["batch"]) for s in seen] == [(e, b) for e in (1, 2) for b in range(1, 6)]
    # the epoch's mean training loss is the mean of its steps' losses (equal batch sizes)
    assert history["train_loss"].iloc[0] == pytest.approx(np.mean([s["loss"] for s in seen[:5]]))

    def stop_at_three(info: dict) -> None:
        if info["batch"] == 3:
            raise StopRun("stopped at step 3")

    with pytest.raises(StopRun):
        fit(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), batches, epochs=2, device="cpu", progress=False,
            on_step=stop_at_three)


def test_a_streamed_run_ends_on_the_same_picture_as_a_full_draw() -> None:
    sent: list[bytes] = []
    live = Steps()
    live.go_live()
    live.sink = sent.append
    live.interval_s = 0.0
    for top in (10, 20):
        live.run(n=6, top=top)
    static = Steps()
    for top in (10, 20):
        static.run(n=6, top=top)
    static.canvas.draw()
    assert np.array_equal(_pixels(sent[-1]), _pixels(encode_png(static.canvas)))


# --------------------------------------------------------------------------- exact values of the small helpers
@pytest.mark.parametrize("lo, hi, kw, expected", [
    (0.13, 0.87, {}, (0.0, 1.0)),              # span 0.74: a fifth is 0.148, the round step above it is 0.2
    (0.87, 0.13, {}, (0.0, 1.0)),              # bounds in either order
    (-3.2, 41.0, {}, (-10.0, 50.0)),           # a fifth of 44.2 is 8.84: no step of 1, 2, 2.5, 5 fits, so 10
    (0.0, 1.0, dict(pad=0.5), (-0.5, 1.5)),    # padded to (-0.5, 1.5): a fifth of 2 is 0.4, step 0.5
    (5.0, 5.0, {}, (2.0, 8.0)),                # no span: a span of |5| around 5, step 1
    (0.13, 0.87, dict(steps=(1, 5)), (0.0, 1.0)),  # 0.1 is too small, 0.5 is the first that fits
    (0.0, 9.0, dict(steps=(1,)), (0.0, 10.0)),  # raw step 1.8: no listed step fits, so ten times the base
    (0.0, 9.0, dict(steps=(1, 2)), (0.0, 10.0)),  # step 2: 9 rounds up to 10
    (0.0, 11.0, {}, (0.0, 12.5)),              # a fifth of 11 is 2.2: step 2.5
])
def test_nice_limits_exact(lo, hi, kw, expected) -> None:
    assert nice_limits(lo, hi, **kw) == pytest.approx(expected)


def test_nice_limits_of_a_single_zero_is_a_unit_span() -> None:
    assert nice_limits(0.0, 0.0) == pytest.approx((-0.6, 0.6))  # span 1 around 0, step 0.2


@pytest.mark.parametrize("lo, hi", [(float("inf"), 1.0), (0.0, float("-inf")), (float("nan"), 0.0)])
def test_nice_limits_names_the_bad_bounds(lo, hi) -> None:
    with pytest.raises(ValueError, match=r"nice_limits needs finite bounds, got"):
        nice_limits(lo, hi)


@pytest.mark.parametrize("value, label", [
    (1e-5, "10⁻⁵"), (100.0, "10²"), (1.0, "1"), (1e10, "10¹⁰"), (0.1, "10⁻¹"),
    (1000.0000001, "10³"),                     # float noise on a decade still counts
    (1000.01, ""), (0.5, ""), (20.0, ""),      # not a whole power of ten: no label
    (0.0, ""), (-10.0, ""), (float("inf"), ""), (float("nan"), ""),
])
def test_power_of_ten_labels(value, label) -> None:
    from resnet_tutorial.live import power_of_ten

    assert power_of_ten(value) == label
    assert power_of_ten(value, 3) == label  # matplotlib passes the tick position too


def test_log_ticks_put_plain_decade_labels_and_no_minor_ticks() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, NullLocator

    from resnet_tutorial.live import log_ticks

    ax = Figure().subplots()
    ax.set_yscale("log")
    ax.set_ylim(1e-3, 1e2)
    log_ticks(ax.yaxis)
    assert isinstance(ax.yaxis.get_major_locator(), LogLocator) and ax.yaxis.get_major_locator().numticks == 7
    assert isinstance(ax.yaxis.get_minor_locator(), NullLocator)
    assert ax.yaxis.get_major_formatter()(1e-3) == "10⁻³" and ax.yaxis.get_major_formatter()(3e-3) == ""
    log_ticks(ax.xaxis, numticks=3)
    assert ax.xaxis.get_major_locator().numticks == 3


def test_figure_caption_prefers_the_suptitle_then_the_first_titled_axes() -> None:
    from matplotlib.figure import Figure

    from resnet_tutorial.live import figure_caption

    fig = Figure()
    a, b = fig.subplots(1, 2)
    assert figure_caption(fig) == ""
    b.set_title("right")
    assert figure_caption(fig) == "right"
    a.set_title("left")
    assert figure_caption(fig) == "left"
    fig.suptitle("")  # an empty suptitle says nothing
    assert figure_caption(fig) == "left"
    fig.suptitle("whole figure")
    assert figure_caption(fig) == "whole figure"


def test_png_caption_reads_plain_text_titles_and_says_none_without_one() -> None:
    from PIL.PngImagePlugin import PngInfo

    image = Image.new("RGB", (2, 2))
    plain, titled = io.BytesIO(), io.BytesIO()
    image.save(plain, format="PNG")
    info = PngInfo()
    info.add_text("Author", "someone")   # another text chunk first: skipped
    info.add_text("Title", "café 3")     # a tEXt chunk (Latin-1)
    image.save(titled, format="PNG", pnginfo=info)
    assert png_caption(plain.getvalue()) is None
    assert png_caption(titled.getvalue()) == "café 3"
    assert png_caption(memoryview(titled.getvalue())) == "café 3"


def test_encode_png_is_a_valid_rgb_image_without_a_title_when_no_caption() -> None:
    view = Wave()
    view.draw(phase=0.3)
    view.canvas.draw()
    png = encode_png(view.canvas)
    image = Image.open(io.BytesIO(png))
    width, height = view.canvas.get_width_height(physical=True)
    assert image.size == (width, height) == (400, 300) and image.mode == "RGB"
    assert png_caption(png) is None and "Title" not in image.info
    # the compression level changes the size, never the pixels
    fast, small = encode_png(view.canvas, level=0), encode_png(view.canvas, level=9)
    assert len(fast) > len(small)
    assert np.array_equal(_pixels(fast), _pixels(small)) and np.array_equal(_pixels(fast), _pixels(png))


def test_freeze_makes_parameter_values_hashable() -> None:
    from resnet_tutorial.live import _freeze

    assert _freeze([1, [2, 3]]) == (1, (2, 3)) and _freeze((1, [2])) == (1, (2,))
    assert _freeze({1, 2}) == frozenset({1, 2}) and _freeze(frozenset({(1,)})) == frozenset({(1,)})
    assert _freeze([{3}]) == (frozenset({3}),)
    assert _freeze("relu") == "relu" and _freeze(2.5) == 2.5
    with pytest.raises(TypeError):
        _freeze({"a": 1})


# --------------------------------------------------------------------------- RunPlot: what the learner sees
class TwoPanels(RunPlot):
    panels = (Panel("loss", yscale="log", legend="lower left"), Panel("accuracy (%)", ylim=(0, None), title="test"))
    xlabel = "epoch"
    x_start, x_pad = 1.0, 0.5

    def train(self, losses=(0.5, 0.02), accs=(40.0, 73.0), x_max: float = 2, label: str = "run") -> None:
        self.start(label, x_max)
        for i, (loss, acc) in enumerate(zip(losses, accs), start=1):
            self.add("train", i, loss)
            self.add("test", i, acc, panel=1, style="--", marker="o")


def _legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def test_run_plot_axes_follow_the_panels_and_the_data() -> None:
    view = TwoPanels()
    assert view.run() == "done"
    loss, acc = view.axes
    assert loss.get_yscale() == "log" and acc.get_yscale() == "linear" and acc.get_title() == "test"
    assert loss.get_xlabel() == acc.get_xlabel() == "epoch" and acc.get_ylabel() == "accuracy (%)"
    assert loss.get_xlim() == acc.get_xlim() == (1.0, 2.5)          # x_start to x_max + x_pad
    assert loss.get_ylim() == pytest.approx((1e-2, 1.0))            # whole decades around 0.02 .. 0.5
    assert acc.get_ylim() == (0.0, 80.0)                            # fixed bottom, round top above 73
    assert view.axes[0].get_legend()._loc == 3                      # "lower left"
    assert _legend_texts(loss) == ["train"] and _legend_texts(acc) == ["test"]
    line = view.series["test"].line
    assert line.get_linestyle() == "--" and line.get_marker() == "o" and list(line.get_ydata()) == [40.0, 73.0]
    assert view.series["train"].line.get_linestyle() == "-" and view.series["train"].line.get_marker() == "None"


def test_a_log_panel_spans_at_least_one_decade_and_ignores_non_positive_values() -> None:
    view = TwoPanels()
    view.run(losses=(0.2, 0.3), accs=(1.0, 2.0))
    assert view.axes[0].get_ylim() == pytest.approx((0.1, 1.0))
    view = TwoPanels()
    view.run(losses=(0.0, 0.3), accs=(1.0, 2.0))   # a zero loss cannot be shown on a log axis
    assert view.axes[0].get_ylim() == pytest.approx((0.1, 1.0))
    view = TwoPanels()
    view.run(losses=(0.0, -1.0), accs=(1.0, 2.0))  # nothing positive: the axis keeps its limits
    assert view.series["train"].ys == [0.0, -1.0]


def test_earlier_runs_keep_their_colour_fade_and_widen_the_x_axis() -> None:
    view = TwoPanels()
    view.run(x_max=5, label="long")
    colors = {name: s.line.get_color() for name, s in view.series.items()}
    assert colors == {"train": "C0", "test": "C1"}                  # colours in order of first use
    view.run(x_max=2, label="short")
    assert {name: s.line.get_color() for name, s in view.series.items()} == colors
    faded = view.runs[0]["series"]["train"].line
    assert faded.get_alpha() == view.faded_alpha and faded.get_label() == "_faded" and faded.get_linewidth() == 1.0
    assert view.series["train"].line.get_alpha() is None
    assert view.axes[0].get_xlim() == (1.0, 5.5)                    # the earlier run reached epoch 5
    assert _legend_texts(view.axes[0]) == ["train", "earlier runs (faded)"]
    assert view.runs[0]["label"] == "long" and view.label == "short"
    view.clear()
    assert _legend_texts(view.axes[0]) == ["train"] and view.axes[0].get_xlim() == (1.0, 2.5)


def test_a_diverged_series_stops_and_says_where() -> None:
    view = TwoPanels()
    view.run(losses=(0.5, float("nan"), 0.1), accs=(10.0, 20.0, 30.0), x_max=3)
    s = view.series["train"]
    assert s.xs == [1.0] and s.ys == [0.5] and s.diverged        # the point after NaN is not added either
    assert s.label == "train (diverged at epoch 2)"
    assert _legend_texts(view.axes[0]) == ["train (diverged at epoch 2)"]
    view.run(losses=(0.5, float("inf")), accs=(10.0, 20.0))
    assert view.series["train"].label == "train (diverged at epoch 2)"


def test_run_plot_refuses_bad_ranges_and_panels() -> None:
    view = TwoPanels()
    with pytest.raises(ValueError, match=r"x_max must be > 0 \(the last step or epoch of the run\), got 0"):
        view.start("r", 0)
    view.start("r", 3)
    with pytest.raises(ValueError, match=r"panel must be 0\.\.1 \(2 panels\), got 2"):
        view.add("grad", 1, 1.0, panel=2)
    with pytest.raises(ValueError, match=r"panel must be 0\.\.1 \(2 panels\), got -1"):
        view.add("grad", 1, 1.0, panel=-1)


def test_the_status_line_tells_how_a_run_ended() -> None:
    view = TwoPanels()
    view.start("warm-up", 4)
    assert view._status.get_text() == "warm-up: starting" == view.caption()
    view.run()
    assert view.timings["run_s"] > 0


def test_the_status_line_says_a_run_was_interrupted() -> None:
    class Interrupted(TwoPanels):
        def train(self, **params) -> None:
            self.start("long run", 9)
            self.add("train", 1, 0.4)
            raise KeyboardInterrupt

    view = Interrupted()
    with pytest.raises(KeyboardInterrupt):
        view.run()
    assert view.caption() == "long run: interrupted" and view.series["train"].xs == [1.0]


def test_the_status_line_says_where_stop_ended_a_run() -> None:
    class Stopped(TwoPanels):
        def train(self, **params) -> None:
            self.start("long run", 9)
            self.stop.set()
            self.add("train", 3, 0.4, check=False)   # belongs with the epoch: added anyway
            self.add("train", 4, 0.3)

    view = Stopped()
    assert view.run() == "stopped"
    assert view.caption() == "long run: stopped at epoch 4 (Stop pressed)" and view.series["train"].xs == [3.0]
    fresh = TwoPanels()
    fresh.stop.set()                  # a Stop pressed after the last run ended
    assert fresh.run() == "done"      # does not stop the next one


def test_a_frame_goes_to_the_sink_at_start_flush_and_end() -> None:
    frames: list[bytes] = []
    view = TwoPanels()
    view.go_live()
    view.sink = frames.append
    view.interval_s = 1e9                     # no frames between the points
    view.run()
    # start sends one, the end sends one; every one is a PNG carrying the status line
    assert len(frames) == 2 and all(f.startswith(b"\x89PNG") for f in frames)
    assert png_caption(frames[0]) == "run: starting"
    view.interval_s = 0.0                     # every point sends a frame
    frames.clear()
    view.run()
    assert len(frames) == 1 + 4 + 1


def test_live_figure_cache_and_unhashable_parameters() -> None:
    calls = []

    class Counting(Wave):
        def compute(self, phase: float = 0.0, amp: float = 1.0, extra=None) -> np.ndarray:
            calls.append(phase)
            return super().compute(phase, amp)

        def update(self, data, phase: float = 0.0, amp: float = 1.0, extra=None) -> None:
            super().update(data, phase, amp)

    view = Counting()
    view.draw(phase=1.0)
    view.draw(phase=1.0)
    view.draw(phase=1.0, extra={"a": 1})      # a dict cannot be a cache key: computed every time
    view.draw(phase=1.0, extra={"a": 1})
    assert calls == [1.0, 1.0, 1.0]
    view.cache_size = 0                        # no cache at all
    view.draw(phase=2.0)
    view.draw(phase=2.0)
    assert calls == [1.0, 1.0, 1.0, 2.0, 2.0] and len(view._cache) == 1
    assert set(view.timings) == {"compute_s", "update_s"}


def test_dynamic_forget_and_set_text() -> None:
    view = Wave()
    view.draw()
    extra = view.ax.text(0, 0, "x")
    assert view.dynamic(extra) is extra and view.dynamic(extra, view.line) == (extra, view.line)
    assert view._dynamic.count(extra) == 1      # registered once
    view.go_live()
    assert extra.get_animated() and view.line.get_animated() and view.live
    late = view.ax.text(1, 1, "late")
    view.dynamic(late)
    assert late.get_animated()                  # registered after go_live: animated at once
    view.forget(extra)
    assert extra not in view._dynamic and extra.figure is None and extra not in view.ax.texts
    view.forget(view.ax.text(2, 2, "never registered"))
    assert [t.get_text() for t in view.ax.texts] == ["phase 0", "late"]
    still = Wave()
    still.draw()
    still.canvas.draw()
    assert not still.label.stale
    LiveFigure.set_text(still.label, "phase 0")  # the same text: nothing becomes stale
    assert not still.label.stale
    LiveFigure.set_text(still.label, "phase 1")
    assert still.label.get_text() == "phase 1" and still.label.stale


def test_a_figure_that_is_not_live_draws_in_full_every_frame() -> None:
    view = Wave()
    view.frame(phase=0.0)
    view.frame(phase=1.0)
    assert (view.full_draws, view.blits) == (2, 0) and not view.live
    assert set(view.timings) == {"compute_s", "update_s", "draw_s", "encode_s"}


def test_tight_layout_runs_once_after_the_first_update() -> None:
    class Tight(Wave):
        tight = True
        figsize = (3.0, 2.0)

        def build(self, fig) -> None:
            super().build(fig)
            fig.subplots_adjust(left=0.4)

    view = Tight()
    view.draw(phase=0.0)
    left = view.ax.get_position().x0
    assert left < 0.4                              # tight_layout moved the axes from the fixed 0.4
    view.fig.subplots_adjust(left=0.45)
    view.draw(phase=1.0)                           # not again on later updates
    assert view.ax.get_position().x0 == pytest.approx(0.45)
    plain = Wave()
    plain.draw(phase=0.0)
    assert plain.ax.get_position().x0 == pytest.approx(0.15)


def test_seconds_left_scales_the_time_so_far_by_the_work_left(monkeypatch) -> None:
    import resnet_tutorial.live as live

    now = [100.0]
    monkeypatch.setattr(live.time, "perf_counter", lambda: now[0])
    view = RunPlot.__new__(RunPlot)
    view._started = live.time.perf_counter()     # started at 100 s
    now[0] = 130.0
    assert view.elapsed_s() == 30.0
    assert view.seconds_left(1, 4) == 90.0      # a quarter done in 30 s: three quarters take 90 s more
    assert view.seconds_left(4, 4) == 0.0 and view.seconds_left(0, 4) == float("inf")
    assert view.seconds_left(5, 4) == 0.0      # more done than planned: nothing left, never negative


def test_start_resets_the_clock_of_seconds_left() -> None:
    import time

    view = TwoPanels()
    view._started -= 1000.0
    view.start("r", 2)
    assert view.elapsed_s() < 5.0
    assert 0.0 <= view.seconds_left(1, 2) < 5.0
    time.sleep(0.01)
    assert view.seconds_left(1, 3) > view.seconds_left(1, 2) > 0.0


# --------------------------------------------------------------------------- the PNG a frame is
def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(tag, body) of every chunk, read by the PNG specification (checking each chunk's CRC-32)."""
    import struct
    import zlib

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(png):
        length = int.from_bytes(png[pos:pos + 4], "big")
        tag, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(tag + body), f"bad CRC in {tag!r}"
        out.append((tag, body))
        pos += 12 + length
    assert pos == len(png)
    return out


def test_encode_png_writes_the_chunks_the_png_specification_asks_for() -> None:
    import zlib

    view = Wave()
    view.draw(phase=0.3)
    view.canvas.draw()
    png = encode_png(view.canvas, "phase 0.3 · ‖g‖")
    chunks = _chunks(png)
    assert [tag for tag, _ in chunks] == [b"IHDR", b"iTXt", b"IDAT", b"IEND"]
    ihdr = chunks[0][1]
    # width 400, height 300, bit depth 8, colour type 2 (RGB), compression 0, filter 0, no interlace
    assert ihdr == (400).to_bytes(4, "big") + (300).to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    # keyword, NUL, not compressed (0), method 0, empty language and translated keyword, the UTF-8 text
    assert chunks[1][1] == b"Title\x00\x00\x00\x00\x00" + "phase 0.3 · ‖g‖".encode("utf-8")
    rows = zlib.decompress(chunks[2][1])
    assert len(rows) == 300 * (1 + 3 * 400) and rows[::1 + 3 * 400] == bytes(300)  # each row: filter byte 0
    assert chunks[3] == (b"IEND", b"") and png.endswith(b"\x00\x00\x00\x00IEND\xaeB`\x82")


def test_encode_png_on_a_high_dpi_canvas_keeps_every_physical_pixel() -> None:
    view = Wave()
    view.draw(phase=0.3)
    view.canvas._set_device_pixel_ratio(2)   # what a HiDPI backend does: twice the pixels each way
    view.canvas.draw()
    image = Image.open(io.BytesIO(encode_png(view.canvas)))
    assert image.size == (800, 600)
    assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(view.canvas.buffer_rgba())[:, :, :3])


def test_figure_png_is_cropped_tight_unless_asked_and_honours_the_level() -> None:
    view = Wave()
    view.draw(phase=0.3)
    tight = Image.open(io.BytesIO(figure_png(view.fig)))
    loose = Image.open(io.BytesIO(figure_png(view.fig, tight=False)))
    assert loose.size == (400, 300) and tight.size != (400, 300)  # the white margins are cut off
    assert tight.size[0] < 400
    fast, small = figure_png(view.fig, level=0), figure_png(view.fig, level=9)
    assert len(fast) > 2 * len(small)                               # level 0 stores the pixels uncompressed
    assert np.array_equal(_pixels(fast), _pixels(small))
    assert [tag for tag, _ in _chunks(fast)][0] == b"IHDR"


def test_nice_limits_falls_back_to_ten_times_the_decade() -> None:
    assert nice_limits(0.0, 90.0, steps=(1,)) == (0.0, 100.0)   # a fifth of 90 is 18: base 10, step 100
    assert nice_limits(0.0, 0.9, steps=(1,)) == pytest.approx((0.0, 1.0))


def test_a_live_figure_uses_its_own_dpi() -> None:
    class Small(Wave):
        dpi = 50.0

    view = Small()
    view.draw()
    view.canvas.draw()
    assert view.canvas.get_width_height() == (200, 150)


def test_a_cache_of_one_keeps_the_last_parameters() -> None:
    calls = []

    class One(Wave):
        cache_size = 1

        def compute(self, phase: float = 0.0, amp: float = 1.0) -> np.ndarray:
            calls.append(phase)
            return super().compute(phase, amp)

    view = One()
    for phase in (1.0, 1.0, 2.0, 1.0):
        view.draw(phase=phase)
    assert calls == [1.0, 2.0, 1.0]


def test_timings_are_the_seconds_each_part_took(monkeypatch) -> None:
    import time

    class Slow(Wave):
        def compute(self, phase: float = 0.0, amp: float = 1.0) -> np.ndarray:
            time.sleep(0.05)
            return super().compute(phase, amp)

        def update(self, data, phase: float = 0.0, amp: float = 1.0) -> None:
            time.sleep(0.03)
            super().update(data, phase, amp)

    view = Slow()
    view.frame(phase=0.5)
    t = view.timings
    assert 0.05 <= t["compute_s"] < 5 and 0.03 <= t["update_s"] < 5
    assert 0 < t["draw_s"] < 5 and 0 < t["encode_s"] < 5
    plot = TwoPanels()
    plot.run()
    assert 0 < plot.timings["run_s"] < 30


def test_set_limits_reports_a_changed_y_axis() -> None:
    view = Wave()
    view.draw(phase=0.0)
    assert LiveFigure.set_limits(view.ax, y=(-1, 1)) is False
    assert LiveFigure.set_limits(view.ax, y=(-1, 2)) is True and view.ax.get_ylim() == (-1, 2)
    assert LiveFigure.set_limits(view.ax, x=(0, 6), y=(-1, 2)) is False


def test_a_live_run_blits_between_legend_changes() -> None:
    view = TwoPanels()
    view.go_live()
    frames: list[bytes] = []
    view.sink = frames.append
    view.interval_s = 0.0
    view.run(losses=(0.5, 0.4, 0.3, 0.2), accs=(40.0, 50.0, 60.0, 70.0), x_max=4)
    # the legends change when a series first appears; after that, frames only redraw the curves
    assert view.blits >= 3 and view.full_draws + view.blits == len(frames)


def test_fixed_limits_of_a_panel_are_both_kept() -> None:
    class Fixed(TwoPanels):
        panels = (Panel("loss", ylim=(-5.0, 5.0)), Panel("accuracy (%)", ylim=(-3.0, None)))

    view = Fixed()
    view.run(losses=(0.5, 9.0), accs=(10.0, 11.0))
    assert view.axes[0].get_ylim() == (-5.0, 5.0)          # data above the top does not move a fixed axis
    assert view.axes[1].get_ylim() == (-3.0, 15.0)         # nice_limits(-3, 11) = (-5, 15), bottom kept at -3


@pytest.mark.parametrize("ylim, losses, expected", [
    ((1e-4, None), (0.02, 0.5), (1e-4, 1.0)),     # fixed bottom, whole-decade top
    ((None, 100.0), (0.02, 0.5), (1e-2, 100.0)),  # fixed top, whole-decade bottom
    ((None, None), (0.02, 5.0), (1e-2, 10.0)),    # 5 rounds up to the decade 10
    ((None, None), (0.1, 0.1), (0.1, 1.0)),       # one value on a decade: still one decade shown
])
def test_log_panel_limits(ylim, losses, expected) -> None:
    class Log(TwoPanels):
        panels = (Panel("loss", yscale="log", ylim=ylim), Panel("accuracy (%)"))

    view = Log()
    view.run(losses=losses)
    assert view.axes[0].get_ylim() == pytest.approx(expected)
    assert view.axes[0].yaxis.get_major_formatter()(1e-2) == "10⁻²"  # a log panel gets plain decade labels


@pytest.mark.parametrize("ylim, accs, expected", [
    ((0.0, None), (10.0, 11.0), (0.0, 12.5)),     # nice_limits(0, 11): the fixed bottom is part of the span
    ((None, 7.0), (1.0, 2.0), (0.0, 7.0)),        # nice_limits(1, 7) = (0, 8): the fixed top stays 7
])
def test_partly_fixed_linear_panel_limits(ylim, accs, expected) -> None:
    class Part(TwoPanels):
        panels = (Panel("loss"), Panel("accuracy (%)", ylim=ylim))

    view = Part()
    view.run(accs=accs)
    assert view.axes[1].get_ylim() == pytest.approx(expected)


def test_a_run_that_starts_without_points_still_gets_its_legend_right() -> None:
    class Empty(TwoPanels):
        def train(self, empty: bool = False, **params) -> None:
            if empty:
                self.start("nothing yet", 2)
            else:
                super().train(**params)

    view = Empty()
    view.run()
    view.run(empty=True)
    assert _legend_texts(view.axes[0]) == ["earlier runs (faded)"]


def test_a_stop_before_the_run_starts_says_so_without_a_label() -> None:
    class Early(TwoPanels):
        def train(self, **params) -> None:
            self.stop.set()       # Stop pressed while the run was still preparing (before start)
            self.check_stop(0)

    view = Early()
    assert view.run() == "stopped"
    assert view.caption() == "stopped at epoch 0 (Stop pressed)"


def test_start_accepts_a_fractional_range_and_a_fresh_plot_spans_zero_to_one() -> None:
    view = Steps()
    view.start("half an epoch", 0.5)
    assert view.x_max == 0.5 and view.axes[0].get_xlim() == (0.0, 0.5)
    fresh = TwoPanels()
    fresh.x_start = 0.0
    fresh._ensure_built()
    fresh.clear()                          # before any run: x from x_start to 1 (+ pad)
    assert fresh.axes[0].get_xlim() == (0.0, 1.5)
    assert fresh.caption().strip() == ""   # the status line starts blank


def test_run_plot_style() -> None:
    """The look every run plot shares. The layout is fixed (no tight_layout per frame): that is what
    lets a frame blit, and the explorer benchmarks and browser tests were measured with these numbers."""
    view = TwoPanels()
    view.run(x_max=2)
    view.run(x_max=2)
    sp = view.fig.subplotpars
    assert (sp.left, sp.right, sp.bottom, sp.top, sp.wspace) == (0.07, 0.98, 0.16, 0.82, 0.28)
    loss, acc = view.axes
    assert loss.get_position().y0 == acc.get_position().y0 and loss.get_position().x1 < acc.get_position().x0
    assert view._status.get_fontsize() == 11 and acc.title.get_fontsize() == 10
    assert all(line.get_alpha() == 0.3 for line in loss.get_xgridlines() + loss.get_ygridlines())
    line = view.series["test"].line
    assert (line.get_markersize(), line.get_linewidth(), line.get_label()) == (4, 1.6, "test")
    faded = view.runs[0]["series"]["test"].line
    assert (faded.get_markersize(), faded.get_linewidth(), faded.get_alpha()) == (2, 1.0, 0.3)
    assert not faded.get_animated()
    legend = acc.get_legend()
    assert all(t.get_fontsize() == 8 for t in legend.get_texts())
    handle = legend.legend_handles[-1]
    assert (handle.get_color(), handle.get_alpha(), handle.get_linewidth()) == ("gray", 0.5, 1.0)
    assert legend.legend_handles[0].get_color() == "C1"


def test_a_partly_fixed_panel_keeps_its_default_range_until_data_arrives() -> None:
    class High(TwoPanels):
        panels = (Panel("loss"), Panel("accuracy (%)", ylim=(50.0, None)))

    view = High()
    view._ensure_built()
    lo, hi = view.axes[1].get_ylim()
    assert lo < hi                                  # never an upside-down axis (50 above the default top 1)
    view.run(accs=(60.0, 61.0))
    assert view.axes[1].get_ylim() == (50.0, 62.5)  # then the fixed bottom and nice_limits(50, 61)'s top (step 2.5)


def test_going_live_after_a_full_draw_redraws_the_background_once() -> None:
    class Caption(LiveFigure):
        figsize = (3.0, 2.0)

        def build(self, fig) -> None:
            fig.subplots().plot([0, 1], [0, 1])
            self.text = self.dynamic(fig.text(0.5, 0.9, "", ha="center"))

        def update(self, data, word: str = "") -> None:
            self.set_text(self.text, word)

    view = Caption()
    view.draw(word="a")
    view.canvas.draw()                              # drawn once in full: nothing is stale
    view.go_live()
    first, second = view.frame(word="b"), view.frame(word="c")
    assert (view.full_draws, view.blits) == (1, 1)
    fresh = Caption()
    fresh.draw(word="c")
    fresh.canvas.draw()
    assert np.array_equal(_pixels(second), _pixels(encode_png(fresh.canvas)))
    assert not np.array_equal(_pixels(first), _pixels(second))
