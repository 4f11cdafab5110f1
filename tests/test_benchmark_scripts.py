"""The benchmark scripts read the train command's output: keep the two formats in step."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from resnet_tutorial import cli

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_time_to_accuracy_parses_the_train_commands_epoch_lines():
    tta = _load("time_to_accuracy")
    rows = [{"epoch": 1, "train_loss": 0.91234, "train_acc": 0.7, "test_acc": 0.8512},
            {"epoch": 12, "train_loss": 0.3, "train_acc": 0.95, "test_acc": 0.9321}]
    lines = ["training resnet20 on 60000 ...", cli._epoch_line(rows[0], 51.25), cli._epoch_line(rows[1], 580.0),
             "test_acc=0.9350 elapsed_s=590.2"]
    parsed = tta.parse_epochs(lines, offset_s=4.0)
    assert [r["epoch"] for r in parsed] == [1, 12]
    assert parsed[0]["test_acc"] == pytest.approx(0.8512) and parsed[0]["elapsed_s"] == pytest.approx(55.2, abs=0.06)
    assert parsed[1]["train_loss"] == pytest.approx(0.3)
    assert tta.FINAL_RE.match(lines[-1])[1] == "0.9350"


def test_epoch_line_without_a_test_pass_is_not_mistaken_for_one():
    tta = _load("time_to_accuracy")
    line = cli._epoch_line({"epoch": 1, "train_loss": 0.5, "train_acc": 0.8, "test_acc": float("nan")}, 10.0)
    assert "test accuracy" not in line and tta.parse_epochs([line], 0.0) == []


def test_throughput_config_parsing():
    tp = _load("throughput")
    assert tp._config("post_fashion_resnet18:96") == ("post_fashion_resnet18", 96)
    with pytest.raises(Exception, match="model:image side"):
        tp._config("resnet20")


@pytest.mark.parametrize("recipe", sorted(cli.RECIPES))
def test_default_recipe_is_the_measured_one(recipe):
    """`train` with no options must run the recipe that benchmarks/ measured (README's headline), per CPU kind."""
    name = bench_name(f"... recipe {recipe}, ...")
    measured = json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())
    args = cli.build_parser(recipe).parse_args(["train"])
    assert measured["summary"]["train_command"].split() == ["python", "-m", "resnet_tutorial", "train"]
    line = measured["summary"]["recipe"]  # the first line the train command printed then
    assert f"training {args.model} on 60000 FashionMNIST images for {args.epochs} epoch(s)" in line
    lr = cli.DEFAULT_SGD_LR if args.optimizer == "sgd" else cli.DEFAULT_ADAMW_LR
    assert (f"({args.optimizer}, lr {lr:g}, batch {args.batch_size}, {args.schedule}, augment "
            f"{'on' if args.augment else 'off'}, label smoothing {args.label_smoothing:g}") in line
    assert (f"stem stride {args.stem_stride}" in line) == (args.stem_stride != 1)
    if "native_bf16" in measured["machine"]:  # measured on the kind of CPU the recipe is for
        assert f"recipe {recipe}," in line
        assert measured["machine"]["native_bf16"] == (recipe == "bf16")


def test_recipe_is_chosen_by_machine_and_can_be_overridden(monkeypatch):
    import resnet_tutorial.device as device

    monkeypatch.setattr(device, "native_bf16", lambda: False)
    assert cli._chosen_recipe(["train"]) == "fp32"
    assert cli._chosen_recipe(["train", "--recipe", "bf16"]) == "bf16"
    assert cli._chosen_recipe(["train", "--device", "cuda"]) == "bf16"
    monkeypatch.setattr(device, "native_bf16", lambda: True)
    assert cli._chosen_recipe(["train", "--epochs", "3"]) == "bf16"
    assert cli._chosen_recipe(["train", "--recipe=fp32"]) == "fp32"
    assert cli.build_parser("fp32").parse_args(["train"]).stem_stride == 2
    assert cli.build_parser("fp32").parse_args(["train", "--stem-stride", "1"]).stem_stride == 1
    assert cli.build_parser("bf16").parse_args(["train"]).stem_stride == 1
    assert bench_name("training ... recipe fp32, this CPU has no native bf16 ...") == "time_to_accuracy_fp32"
    assert bench_name("training ... recipe bf16, ...") == "time_to_accuracy"
    assert bench_name("training ... (an older line, no recipe)") == "time_to_accuracy"


def bench_name(line: str) -> str:
    return _load("time_to_accuracy").result_name(line)
