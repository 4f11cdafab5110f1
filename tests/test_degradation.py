"""The plain-vs-residual experiment: a tiny run, the cache, the CLI and the plot."""

import json

import matplotlib
import pandas as pd
import pytest

from resnet_tutorial import cli, degradation
from resnet_tutorial.lessons import l08_degradation as L08


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("deg") / "deg.csv"
    table = degradation.run_degradation(depths=(8, 14), epochs=1, per_class=6, test_per_class=3,
                                        batch_size=20, device="cpu", progress=False, out=out)
    return table, out


def test_table_structure_and_error_range(tiny):
    table, _ = tiny
    assert list(table.columns) == degradation.COLUMNS
    assert sorted(table["model"].unique()) == ["plain14", "plain8", "resnet14", "resnet8"]
    assert (table["epoch"] == 1).all() and len(table) == 4
    for col in ("train_error", "test_error"):
        assert table[col].between(0, 1).all()
    # same layers, so the plain twin has exactly the residual net's parameters (option A adds none)
    params = table.set_index("model")["params"]
    assert params["plain8"] == params["resnet8"] and params["plain14"] > params["plain8"]


def test_cache_round_trip_with_settings(tiny):
    table, out = tiny
    loaded = degradation.load_degradation(out)
    pd.testing.assert_frame_equal(loaded, table, check_exact=False, rtol=1e-5)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["complete"] and meta["settings"]["depths"] == [8, 14] and "torch" in meta
    assert loaded.attrs["meta"]["settings"]["per_class"] == 6
    # the recipe is recorded beside the settings, with what the call changed
    assert meta["recipe"]["name"] == "degradation-small"
    assert meta["recipe"]["changes"] == {"epochs": 1, "batch_size": 20, "per_class": 6, "test_per_class": 3}
    assert loaded.attrs["recipe"] == "degradation-small with epochs=1, batch_size=20, per_class=6, test_per_class=3"


def test_plot_selects_depths(tiny):
    table, _ = tiny
    matplotlib.use("Agg")
    both = L08.plot_degradation(table)
    one = L08.plot_degradation(table, depths=[14])
    assert len(both.axes[0].lines) == 4 and len(one.axes[0].lines) == 2
    assert both.axes[0].get_ylabel().startswith("error (%")
    with pytest.raises(ValueError, match="none of the requested depths"):
        L08.plot_degradation(table, depths=[56])


def test_bad_depth_and_missing_cache(tmp_path):
    with pytest.raises(ValueError, match="6n\\+2"):
        degradation.run_degradation(depths=(10,), progress=False)
    with pytest.raises(FileNotFoundError, match="python -m resnet_tutorial degradation"):
        degradation.load_degradation(tmp_path / "none.csv")


def test_cli_writes_the_cache(tmp_path, capsys):
    out = tmp_path / "cli.csv"
    rc = cli.main(["degradation", "--depths", "8", "--epochs", "1", "--subset", "4", "--test-subset", "2",
                   "--batch-size", "20", "--device", "cpu", "--no-progress", "--out", str(out)])
    assert rc == 0 and out.is_file()
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["command"].startswith("python -m resnet_tutorial degradation --depths 8")
    assert "resnet8" in capsys.readouterr().out
    assert meta["recipe"]["name"] == "degradation-small" and meta["settings"]["epochs"] == 1


def test_cli_full_is_the_full_runs_recipe(tmp_path):
    out = tmp_path / "full.csv"
    rc = cli.main(["degradation", "--full", "--depths", "8", "--kinds", "resnet", "--epochs", "1", "--subset", "2",
                   "--test-subset", "2", "--device", "cpu", "--no-progress", "--out", str(out)])
    assert rc == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["recipe"]["name"] == "degradation-full"
    assert meta["recipe"]["changes"] == {"epochs": 1, "per_class": 2, "test_per_class": 2}
    cached = json.loads((degradation.FULL_PATH.with_suffix(".json")).read_text())["settings"]
    same = ("lr", "schedule", "label_smoothing", "augment", "nesterov", "batch_size", "weight_decay", "momentum")
    assert {k: meta["settings"][k] for k in same} == {k: cached[k] for k in same}  # the cached full run's recipe


def test_explorer_redraws_for_other_depths_and_panels(tiny):
    _, out = tiny
    a = L08.degradation_explorer(depths=(8, 14), path=out)
    b = L08.degradation_explorer(depths=(14,), path=out, show="plain")
    assert len(a.axes) == 2 and len(b.axes) == 1
    assert len(a.axes[0].lines) == 4 and len(b.axes[0].lines) == 2
    ya = sorted(tuple(line.get_ydata()) for line in a.axes[0].lines)
    yb = sorted(tuple(line.get_ydata()) for line in b.axes[0].lines)
    assert ya != yb
    with pytest.raises(ValueError, match="at least one depth"):
        L08.degradation_explorer(depths=(), path=out)


def test_final_errors_table(tiny):
    table, _ = tiny
    final = L08.final_errors(table)
    assert list(final.index) == [8, 14]
    assert final[("train_error", "plain")].between(0, 1).all()


def test_the_full_run_is_cached_with_its_trained_nets():
    """results/degradation_full*: the table, its metadata and each model's weights agree."""
    from resnet_tutorial.checkpoints import load_model
    from resnet_tutorial.data import stratified_subset
    from resnet_tutorial.lessons.l11_paths_and_landscapes import accuracy

    table = degradation.load_degradation(degradation.FULL_PATH)
    meta = table.attrs["meta"]
    assert meta["settings"]["per_class"] is None, "the full run trains on all 60,000 images"
    assert {20, 56} <= set(table.depth) and set(meta["models"]) == set(table.model)
    x, y = stratified_subset(train=False, per_class=50, seed=3)
    for name, info in meta["models"].items():
        rows = table[table.model == name]
        assert rows.epoch.max() == info["epochs"] == meta["settings"]["epochs"]
        net = load_model(degradation.FULL_WEIGHTS / f"{name}.pt")
        assert sum(p.numel() for p in net.parameters()) == info["params"] == rows.params.iloc[0]
        assert net.depth == rows.depth.iloc[0] and not net.training
        # the saved weights are the ones measured: 500 test images within 4 points of the 10,000-image figure
        assert abs(accuracy(net, x, y) - (1 - info["test_error"])) < 0.04, name
