"""The recipes: what their benchmarks measured, the choice per machine, the round trip through files, the run."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

import resnet_tutorial.device as device
from resnet_tutorial import checkpoints, cli, degradation, recipes, train

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@pytest.fixture
def native_bf16(monkeypatch):
    """Pretend the CPU computes bf16 natively (True) or not (False)."""

    def set_to(value: bool) -> None:
        monkeypatch.setattr(device, "native_bf16", lambda: value)

    return set_to


# ----------------------------------------------------------------- what the benchmarks measured
def _train_line(name: str) -> tuple[dict, str]:
    measured = json.loads((RESULTS / f"{name}.json").read_text())
    return measured, measured["summary"]["recipe"]  # the first line the train command printed


@pytest.mark.parametrize("name, result", [("bf16", "time_to_accuracy"), ("fp32", "time_to_accuracy_fp32"),
                                          ("lesson", "time_to_accuracy_lesson"),
                                          ("lesson", "time_to_accuracy_lesson_fp32")])
def test_train_recipes_are_the_ones_their_benchmark_ran(name, result):
    """The time-to-accuracy line records exactly the recipe's settings, on the kind of CPU it is for."""
    if not (RESULTS / f"{result}.json").is_file():
        pytest.skip(f"benchmarks/results/{result}.json not measured yet")
    r = recipes.get(name)
    measured, line = _train_line(result)
    images = 60_000 if r.per_class is None else 10 * r.per_class
    assert f"training {r.model} on {images} FashionMNIST images for {r.epochs} epoch(s)" in line
    assert (f"({r.optimizer}, lr {r.lr:g}, batch {r.batch_size}, {r.schedule}, augment "
            f"{'on' if r.augment else 'off'}, label smoothing {r.label_smoothing:g}") in line
    stride = r.model_kwargs.get("stem_stride", 1)
    assert (f"stem stride {stride}" in line) == (stride != 1)
    bf16_cpu = measured["machine"].get("native_bf16")
    if bf16_cpu is not None:  # older results did not record the CPU kind
        assert ("cpu-bf16" if bf16_cpu else "cpu") in r.picked_on
        assert f"amp {'bf16' if bf16_cpu else 'off'}" in line  # what "fast" meant on that CPU
    figure = re.search(rf"([\d.]+) % test accuracy in ([\d,]+) s[^;]*\((?:benchmarks/results/)?{result}\.json\)",
                       r.measured)
    assert figure, f"the recipe's `measured` quotes no figure from {result}.json"
    if figure:  # the figure the recipe quotes is the benchmark's final one
        assert float(figure[1]) == pytest.approx(100 * measured["summary"]["final_test_acc"], abs=0.005)
        assert float(figure[2].replace(",", "")) == pytest.approx(measured["summary"]["wall_clock_s"], abs=0.5)


@pytest.mark.parametrize("name, cache", [("degradation-small", "degradation.json"),
                                         ("degradation-full", "degradation_full.json")])
def test_degradation_recipes_are_the_cached_runs_settings(name, cache, native_bf16):
    settings = json.loads((ROOT / "results" / cache).read_text())["settings"]
    r = recipes.get(name)
    native_bf16(True)  # both runs were made on a CPU with native bf16 ("fast" meant bf16 there)
    mine = {"epochs": r.epochs, "per_class": r.per_class, "test_per_class": r.test_per_class, "seed": r.seed,
            "batch_size": r.batch_size, "lr": r.lr, "optimizer": r.optimizer, "momentum": r.momentum,
            "weight_decay": r.weight_decay, "schedule": r.schedule, "nesterov": r.nesterov,
            "label_smoothing": r.label_smoothing, "channels_last": r.channels_last,
            "amp": recipes.resolve_amp(r.amp, "cpu"),
            "augment": f"random crop (pad {r.pad}) + horizontal flip" if r.augment else "none"}
    recorded = {k: v for k, v in settings.items() if k in mine}
    assert len(recorded) >= 13  # the small run's JSON predates "nesterov" and "label_smoothing"
    assert recorded == {k: mine[k] for k in recorded}
    assert {k: mine[k] for k in ("nesterov", "label_smoothing") if k not in settings} in (
        {}, {"nesterov": False, "label_smoothing": 0.0})  # fit's defaults then: off and 0


def test_add_vs_cat_recipe_is_the_cached_runs():
    meta = json.loads((ROOT / "results" / "add_vs_cat.json").read_text())
    r = recipes.get("add-vs-cat")
    assert (r.model_kwargs["depth"], r.epochs, r.per_class, r.test_per_class, r.batch_size) == (
        meta["depth"], meta["epochs"], meta["per_class"], meta["test_per_class"], meta["batch_size"])
    # that cache names its recipe in words: "train.fit defaults (SGD momentum 0.9, lr 0.1, cosine)"
    words = meta["recipe"]
    assert f"lr {r.lr:g}" in words and f"momentum {r.momentum:g}" in words and r.schedule in words
    assert r.optimizer.upper() in words and (r.lr, r.weight_decay) == (train.DEFAULT_LR["sgd"],
                                                                       train.DEFAULT_WEIGHT_DECAY["sgd"])
    assert not r.nesterov and r.amp == "auto"  # fit's defaults then: fp32 on a CPU


# ----------------------------------------------------------------- the choice per machine
@pytest.mark.parametrize("bf16, cpu_train", [(True, "bf16"), (False, "fp32")])
def test_pick_by_device_and_cpu_kind(native_bf16, bf16, cpu_train):
    native_bf16(bf16)
    assert recipes.machine_kind("cpu") == ("cpu-bf16" if bf16 else "cpu")
    assert recipes.pick("train", "cpu").name == cpu_train
    assert recipes.pick("lesson", "cpu").name == "lesson"  # one recipe; its amp "fast" follows the CPU
    assert recipes.pick("train", "cuda").name == "bf16"  # GPUs: the bf16 recipe (amp fast = CUDA's autocast)
    assert recipes.pick("lesson", "cuda:0").name == "lesson"
    assert recipes.pick("degradation-full", "cpu").name == "degradation-full"  # one recipe everywhere
    # the command line picks the same way
    assert cli._chosen_recipe(["train", "--device", "cpu"]) == cpu_train
    assert cli.recipe_for("cpu") == cpu_train
    # "fast" follows the CPU kind: bf16 where native, fp32 elsewhere
    assert recipes.resolve_amp("fast", "cpu") == ("bf16" if bf16 else "off")
    assert recipes.resolve_amp("fast", "cuda") == "auto"


def _diff(a: str, b: str) -> set[str]:
    return {k for k, v in recipes._settings(recipes.get(a)).items() if recipes._settings(recipes.get(b))[k] != v}


def test_the_fp32_recipe_differs_from_the_bf16_one_only_by_the_stem_and_the_lesson_only_by_its_budget():
    assert _diff("bf16", "fp32") == {"model_kwargs"} and recipes.get("fp32").model_kwargs == {"stem_stride": 2}
    assert _diff("fp32", "lesson") == {"epochs", "per_class"}
    assert (recipes.get("lesson").epochs, recipes.get("lesson").per_class) == (5, 2000)


def test_unknown_names_and_bad_fields_are_refused():
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        recipes.pick("nope")
    with pytest.raises(ValueError, match="unknown recipe 'nope'.*bf16"):
        recipes.get("nope")
    with pytest.raises(ValueError, match="no field.*'epoch'"):
        recipes.get("bf16").replace(epoch=3)
    with pytest.raises(ValueError, match="amp"):
        recipes.get("bf16").replace(amp="half")
    with pytest.raises(ValueError, match="per_class"):
        recipes.get("bf16").replace(per_class=0)
    with pytest.raises(ValueError, match="optimizer"):
        recipes.get("bf16").replace(optimizer="rmsprop")


def test_one_spelling_of_amp():
    assert train.FitConfig().amp == "auto"  # explicit: autocast on CUDA, fp32 on a CPU
    assert train.FitConfig(amp=None).amp == "auto" and train.FitConfig(amp=False).amp == "off"
    assert recipes.get("bf16").replace(amp=False).amp == "off"
    for r in recipes.RECIPES.values():
        assert r.amp in device.AMP_CHOICES, r.name
    assert {device.fastest_amp("cpu"), device.fastest_amp("cuda")} <= set(device.AMP_CHOICES)


# ----------------------------------------------------------------- round trips through files
def test_a_recipe_round_trips_through_a_checkpoint(tmp_path):
    recipe = recipes.get("fp32").replace(epochs=1, per_class=3, test_per_class=2, batch_size=10)
    ck = tmp_path / "r.pt"
    run = recipes.fit_recipe(recipe, device="cpu", checkpoint=ck, progress=False)
    state = torch.load(ck, weights_only=True)
    assert recipes.Recipe.from_dict(state["recipe"]) == recipe
    assert state["config"]["lr"] == recipe.lr and state["config"]["amp"] == "fast"
    assert recipes.recipe_of(state) == recipes.recipe_of(ck) == "fp32 with epochs=1, batch_size=10, per_class=3, test_per_class=2"
    model = checkpoints.load_model(ck)
    assert recipes.recipe_of(model) == recipes.recipe_of(ck)
    assert model.conv1.stride == (2, 2)  # the recipe's stem, rebuilt from the file
    assert run.history.attrs["recipe"] == state["recipe"]
    # the unchanged recipe is named alone
    assert recipes.recipe_of({"recipe": recipes.get("bf16").to_dict()}) == "bf16"


def test_old_files_without_a_recipe_still_load_and_say_unknown():
    net = checkpoints.load_model(degradation.FULL_WEIGHTS / "resnet20.pt")
    assert net.recipe is None and recipes.recipe_of(net) == "unknown"
    assert recipes.recipe_of(degradation.FULL_WEIGHTS / "resnet20.pt") == "unknown"
    assert degradation.load_degradation().attrs["recipe"] == "unknown"
    assert recipes.recipe_of(ROOT / "results" / "add_vs_cat.csv") == "unknown"  # its "recipe" is prose
    assert recipes.recipe_of(None) == recipes.recipe_of({}) == "unknown"


def test_a_recipe_round_trips_through_a_cached_runs_json(tmp_path):
    out = tmp_path / "deg.csv"
    degradation.run_degradation(depths=(8,), kinds=("plain",), epochs=1, per_class=3, test_per_class=2,
                                batch_size=10, device="cpu", progress=False, out=out)
    meta = json.loads(out.with_suffix(".json").read_text())
    again = recipes.Recipe.from_dict(meta["recipe"])
    assert again == recipes.get("degradation-small").replace(epochs=1, per_class=3, test_per_class=2, batch_size=10)
    label = "degradation-small with epochs=1, batch_size=10, per_class=3, test_per_class=2"
    assert degradation.load_degradation(out).attrs["recipe"] == recipes.recipe_of(out) == label
    # the settings block keeps its old keys, so older runs still resume
    assert set(meta["settings"]) == set(json.loads((ROOT / "results" / "degradation_full.json").read_text())["settings"])


# ----------------------------------------------------------------- running a recipe
def test_fit_recipe_trains_and_returns_the_history():
    recipe = recipes.get("short").replace(per_class=8, test_per_class=3, batch_size=16, epochs=3, lr=3e-3)
    run = recipes.fit_recipe(recipe, device="cpu", progress=False)
    h = run.history
    assert list(h.columns) == train.HISTORY_COLUMNS and list(h.epoch) == [1, 2, 3]
    assert h.train_loss.iloc[-1] < h.train_loss.iloc[0]
    assert len(run.train_loader.images) == 80 and len(run.test_loader.images) == 30
    assert h.test_acc.between(0, 1).all() and run.evaluate()["acc"] == pytest.approx(h.test_acc.iloc[-1])
    hits = h.test_acc * 30  # 30 test images: each epoch's accuracy is a whole number of hits over 30
    assert ((hits - hits.round()).abs() < 1e-6).all()
    assert h.attrs["recipe"]["name"] == "short" and h.attrs["recipe"]["changes"]["epochs"] == 3
    # without per-epoch tests the history has no test numbers
    quiet = recipes.fit_recipe(recipe, device="cpu", progress=False, test_each_epoch=False, epochs=1)
    assert math.isnan(quiet.history.test_acc.iloc[0]) and quiet.history.train_loss.notna().all()


def test_estimate_scales_the_measured_rates(monkeypatch):
    rates = {True: 400.0, False: 2000.0}  # images/s of training steps and of test passes
    seen = []

    def fake_throughput(model, input_size, batch_size, steps, warmup, device, channels_last, amp, train=True):
        seen.append((input_size, batch_size, channels_last, amp, train))
        return rates[train]

    monkeypatch.setattr(recipes, "throughput", fake_throughput)
    r = recipes.get("lesson")
    assert recipes.estimate_seconds(r, device="cpu") == pytest.approx(r.epochs * (20_000 / 400 + 10_000 / 2000))
    assert recipes.estimate_seconds(r, 1000, 2, "cpu", test_images=0) == pytest.approx(2 * 1000 / 400)
    assert seen[0] == ((1, 28, 28), r.batch_size, True, recipes.resolve_amp("fast", "cpu"), True)
    lines = []
    recipes.fit_recipe(r, device="cpu", progress=False, estimate=lines.append, epochs=1, per_class=2, test_per_class=1,
                       batch_size=10)
    assert len(lines) == 1 and lines[0].startswith("recipe lesson with") and "on this machine" in lines[0]
