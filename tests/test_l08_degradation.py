"""Lesson 08's module: the full-range error figure, the twin diagrams, the two runs' differences, the explorer."""

from __future__ import annotations

import json
import math

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")

from resnet_tutorial import degradation  # noqa: E402
from resnet_tutorial.lessons import l08_degradation as L08  # noqa: E402


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return degradation.load_degradation(degradation.DEFAULT_PATH)


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    return degradation.load_degradation(degradation.FULL_PATH)


@pytest.fixture(scope="module")
def view() -> L08.DegradationExplorer:
    return L08.DegradationExplorer()


def _data_lines(ax) -> list:
    return [line for line in ax.lines if line.get_linestyle() != ":"]  # the chance line is dotted


def test_curve_figure_shows_every_curve_and_marks_chance(small):
    """plain-56 starts at 82 % error in the small run: above the old 70 % limit, inside the new axis."""
    fig = L08.plot_degradation(small)
    top = 100 * small[["train_error", "test_error"]].to_numpy().max()
    bottom = 100 * small[["train_error", "test_error"]].to_numpy().min()
    assert top > 80
    for ax in fig.axes:
        lo, hi = ax.get_ylim()
        assert lo <= bottom and hi >= 100 >= top
        chance = [line for line in ax.lines if line.get_linestyle() == ":"]
        assert len(chance) == 1 and set(chance[0].get_ydata()) == {90.0}  # 1 in 10 classes right
        assert len(_data_lines(ax)) == 2 * small["depth"].nunique()  # train and test per depth
    assert fig.axes[0].get_ylabel() == "error (%, log scale)"


def test_curve_figure_widens_a_too_narrow_limit(small):
    fig = L08.plot_degradation(small, ylim=(10.0, 50.0))
    lo, hi = fig.axes[0].get_ylim()
    assert lo < 100 * small.train_error.min() and hi > 100 * small.test_error.max()


def test_final_table_reads_the_cached_summaries():
    meta = json.loads(degradation.FULL_PATH.with_suffix(".json").read_text())
    table = L08.final_table(meta)
    assert sorted(table.index) == sorted(meta["models"])
    assert table.loc["plain56", "train error, final weights (%)"] == pytest.approx(100 * 0.0604)
    assert table.loc["resnet56", "test error (%)"] == pytest.approx(100 * 0.0627)
    assert table.loc["plain20", "depth"] == 20 and table.loc["resnet20", "kind"] == "resnet"
    for d in (20, 32, 56):  # option A shortcuts have no parameters: twins have the same count
        assert table.loc[f"plain{d}", "params"] == table.loc[f"resnet{d}", "params"]
    with pytest.raises(ValueError, match="weights-dir"):
        L08.final_table({"settings": {}})


def test_last_epoch_errors_and_the_flip(small, full):
    res_small = L08.last_epoch_errors(small, "resnet")
    assert sorted(res_small) == [8, 20, 56]
    last56 = small[(small.model == "resnet56") & (small.epoch == 15)].train_error.item()
    assert res_small[56] == pytest.approx(last56)
    # the lesson's story: ResNet-56 vs ResNet-20 flips between the runs, plain-56 is worse in both
    assert L08.depth_verdict(res_small) == "worse"
    assert L08.depth_verdict(L08.last_epoch_errors(full, "resnet")) == "better"
    for table in (small, full):
        assert L08.depth_verdict(L08.last_epoch_errors(table, "plain")) == "worse"
    with pytest.raises(ValueError, match="kind"):
        L08.last_epoch_errors(small, "dense")
    with pytest.raises(ValueError, match="column"):
        L08.last_epoch_errors(small, "plain", "train_loss")


def test_depth_verdict_by_hand():
    assert L08.depth_verdict({20: 0.08, 56: 0.11}) == "worse"
    assert L08.depth_verdict({20: 0.11, 56: 0.08}) == "better"
    assert L08.depth_verdict({20: 0.0800, 56: 0.0803}) == "the same"
    assert L08.depth_verdict({8: 0.2, 20: 0.1}, shallow=8, deep=20) == "better"
    with pytest.raises(ValueError, match=r"depths \[56\]"):
        L08.depth_verdict({8: 0.1, 20: 0.1})


def test_recipe_differences_of_the_two_runs(small, full):
    d = L08.recipe_differences(small.attrs["meta"], full.attrs["meta"])
    assert list(d.columns) == ["small run", "full run", "differs"]
    # steps by hand: ceil(12,000 / 128) = 94 per epoch x 15; ceil(60,000 / 128) = 469 x 12
    assert d.loc["SGD steps", "small run"].startswith("1,410 ")
    assert d.loc["SGD steps", "full run"].startswith("5,628 ")
    for setting in ("peak learning rate", "schedule", "augmentation", "Nesterov momentum", "label smoothing",
                    "test images", "per-epoch training error measured on"):
        assert d.loc[setting, "differs"], setting
    assert d.loc["per-epoch training error measured on", "small run"].startswith("augmented")
    same = L08.recipe_differences(full.attrs["meta"], full.attrs["meta"])
    assert not same["differs"].any()
    with pytest.raises(ValueError, match="settings"):
        L08.recipe_differences({}, full.attrs["meta"])


def test_twins_are_drawn_from_the_trained_nets(tmp_path):
    fig = L08.draw_twins(20)
    plain, res = fig.diagrams["plain"], fig.diagrams["resnet"]
    assert len(plain.blocks) == len(res.blocks) == 9  # (20 - 2) / 2 blocks
    assert {b.shortcut_kind for b in plain.blocks} == {"none"}
    kinds = [b.shortcut_kind for b in res.blocks]
    assert kinds.count("zeropad") == 2 and kinds.count("identity") == 7  # where stages 2 and 3 begin
    with pytest.raises(FileNotFoundError, match="plain44"):
        L08.draw_twins(44, weights=tmp_path)


def test_spread_keeps_labels_apart():
    out = L08._spread([1.0, 1.01, 0.5, 1.02], gap=0.1)
    assert out[2] == 0.5 and out[0] == 1.0
    ordered = sorted(out)
    assert all(b - a >= 0.1 - 1e-12 for a, b in zip(ordered, ordered[1:]))


def test_explorer_shows_only_what_each_run_has(view, small, full):
    for run, table in (("small", small), ("full", full)):
        for family in ("plain", "resnet"):
            for error in ("training", "test"):
                data = view.data(run=run, family=family, error=error)
                assert [c[0] for c in data["curves"]] == sorted(table.depth.unique())
    fig = view.draw(run="small", family="resnet", error="training")
    shown = [line for line in view.lines if len(line.get_xdata())]
    assert len(shown) == 3 and all(line.get_linestyle() == "--" for line in shown)
    lo, hi = view.ax.get_ylim()
    for line in shown:
        assert lo <= min(line.get_ydata()) and max(line.get_ydata()) <= hi
    assert "worse" in view.verdict.get_text() and "small run" in fig._suptitle.get_text()
    view.draw(run="full", family="resnet", error="test")
    assert "full run" in fig._suptitle.get_text() and "test error" in view.verdict.get_text()
    assert all(line.get_linestyle() == "-" for line in view.lines if len(line.get_xdata()))


def test_explorer_verdict_flips_between_the_runs(view):
    assert view.data(run="full", family="resnet", error="training")["verdict"].endswith("better")
    assert view.data(run="small", family="resnet", error="training")["verdict"].endswith("worse")
    end_labels = [t.get_text() for t in view.labels]
    assert all(t == "" or "%" in t for t in end_labels)


def test_explorer_refuses_what_no_run_has(view, tmp_path):
    with pytest.raises(ValueError, match="run must be one of"):
        view.data(run="medium")
    with pytest.raises(ValueError, match="error must be"):
        view.data(error="validation")
    with pytest.raises(ValueError, match="kind must be"):
        view.data(family="dense")
    with pytest.raises(FileNotFoundError):
        L08.DegradationExplorer({"full": tmp_path / "none.csv"})


def test_explorer_frames_are_pngs_with_a_caption(view):
    from resnet_tutorial.live import png_caption

    png = view.frame(run="small", family="plain", error="test")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_caption(png).startswith("small run") and "plain" in png_caption(png)
    assert math.isfinite(view.timings["draw_s"])


def _series(run: L08.LiveDegradationRun) -> dict:
    return {name: (s.panel, list(s.xs), list(s.ys)) for name, s in run.series.items()}


def test_live_run_grows_per_epoch_into_both_panels_and_keeps_a_table():
    run = L08.LiveDegradationRun()
    frames: list[bytes] = []
    run.sink = frames.append
    assert run.run(depths=(8,), epochs=2, per_class=4, test_per_class=2, batch_size=16) == "done"
    series = _series(run)
    assert set(series) == {"plain-8: train", "plain-8: test", "ResNet-8: train", "ResNet-8: test"}
    assert series["plain-8: test"][0] == 0 and series["ResNet-8: test"][0] == 1  # left plain, right ResNet
    for _, xs, ys in series.values():
        assert xs == [1.0, 2.0] and all(0 <= y <= 100 for y in ys)
    table = run.table
    assert list(table.model) == ["plain8", "plain8", "resnet8", "resnet8"]
    assert (table.train_error == 1 - table.train_acc).all()
    assert series["ResNet-8: test"][2] == pytest.approx(list(100 * table[table.model == "resnet8"].test_error))
    assert len(frames) >= 5  # the start, and one frame per finished epoch at least
    assert run._status.get_text().startswith("done in")
    labels = [t.get_text() for t in run.axes[1].get_legend().get_texts()]
    assert labels == ["ResNet-8", "training error", "test error", "chance (guessing): 90 %"]
    assert run.axes[0].get_xlim() == (0.8, 2.2)  # epochs 1 and 2, no epoch 0, the last markers whole


def test_live_run_stopped_keeps_the_finished_epochs_and_fades_on_the_next_run():
    class StopAfterFirstEpoch(L08.LiveDegradationRun):
        stop_early = True

        def add(self, *args, **kwargs) -> None:
            super().add(*args, **kwargs)
            if self.stop_early:
                self.stop.set()  # as if Stop were pressed while the first epoch's points went in

    run = StopAfterFirstEpoch()
    assert run.run(depths=(8,), epochs=3, per_class=4, test_per_class=2, batch_size=16) == "stopped"
    assert list(run.table.model) == ["plain8"] and list(run.table.epoch) == [1]
    assert _series(run)["plain-8: test"][1] == [1.0] and "stopped at epoch" in run._status.get_text()
    kept = run.series["plain-8: test"].line
    run.stop_early = False
    assert run.run(depths=(8,), epochs=1, per_class=4, test_per_class=2, batch_size=16) == "done"
    assert kept.get_alpha() == run.faded_alpha and kept in run.axes[0].lines  # the stopped run stays, faded
    assert "earlier runs (faded)" in [t.get_text() for t in run.axes[0].get_legend().get_texts()]


def test_live_run_refuses_bad_settings_before_training():
    with pytest.raises(ValueError, match="epochs"):
        L08.LiveDegradationRun().run(depths=(8,), epochs=0)
    with pytest.raises(ValueError, match="6n"):
        L08.LiveDegradationRun().run(depths=(9,), epochs=1, per_class=4, test_per_class=2)
