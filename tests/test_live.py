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
