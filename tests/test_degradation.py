"""The plain-vs-residual experiment: a tiny run, the cache, the CLI and the plot."""

import json

import matplotlib
import pandas as pd
import pytest
import torch

from resnet_tutorial import cli, degradation
from resnet_tutorial.lessons import l08_degradation as L08


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("deg") / "deg.csv"
    table = degradation.run_degradation(depths=(8, 14), epochs=1, per_class=6, test_per_class=3,
                                        batch_size=20, device="cpu", progress=False, out=out,
                                        weights_dir=out.parent / "weights")
    return table, out


def test_table_structure_and_errors_recounted_from_the_saved_nets(tiny):
    table, out = tiny
    assert list(table.columns) == degradation.COLUMNS
    assert sorted(table["model"].unique()) == ["plain14", "plain8", "resnet14", "resnet8"]
    assert (table["epoch"] == 1).all() and len(table) == 4
    # errors are counts of wrong images: k/60 on the 6-per-class training set, k/30 on the test set
    for col, n in (("train_error", 60), ("test_error", 30)):
        wrong = table[col] * n
        assert ((wrong - wrong.round()).abs() < 1e-6).all(), (col, list(wrong))
    # the test error, recounted here from the saved net's logits (fp32; the run may have used bf16
    # autocast, which can flip one borderline image)
    from resnet_tutorial import recipes
    from resnet_tutorial.checkpoints import load_model

    recipe = recipes.get("degradation-small").replace(epochs=1, per_class=6, test_per_class=3, batch_size=20)
    _, test = recipes.make_loaders(recipe, "cpu")
    assert len(test.labels) == 30 and sorted(test.labels.bincount().tolist()) == [3] * 10
    batches = list(test)  # the loader's normalized (images, labels), unshuffled
    x, y = torch.cat([b[0] for b in batches]).float(), torch.cat([b[1] for b in batches])
    assert torch.equal(y, test.labels)
    for row in table.itertuples():
        net = load_model(out.parent / "weights" / f"{row.model}.pt").eval()
        with torch.no_grad():
            wrong = int((net(x).argmax(1) != y).sum())
        assert abs(wrong - round(row.test_error * 30)) <= 1, (row.model, wrong, row.test_error)
    # counted by hand (1 channel, 10 classes, option A adds nothing): ResNet-8 = stem 144 + 32,
    # stages 4,672 + 13,952 + 55,552, fc 650; each further block per stage adds 4,672 + 18,560 + 73,984
    params = table.set_index("model")["params"]
    assert params["plain8"] == params["resnet8"] == 176 + 4_672 + 13_952 + 55_552 + 650 == 75_002
    assert params["plain14"] == params["resnet14"] == 75_002 + 4_672 + 18_560 + 73_984


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
    curves = [[line for line in fig.axes[0].lines if line.get_linestyle() != ":"] for fig in (both, one)]
    assert len(curves[0]) == 4 and len(curves[1]) == 2  # train and test per depth (the dotted line: chance)
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


def test_final_errors_table(tiny):
    table, _ = tiny
    final = L08.final_errors(table)
    assert list(final.index) == [8, 14]
    by_depth = table.set_index(["depth", "kind"])["train_error"]
    assert final[("train_error", "plain")].tolist() == [by_depth[(8, "plain")], by_depth[(14, "plain")]]
    assert final[("train_error", "resnet")].tolist() == [by_depth[(8, "resnet")], by_depth[(14, "resnet")]]


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
