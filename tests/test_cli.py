"""The command line: data, train, trace (degradation is tested in test_degradation.py)."""

import subprocess
import sys

import pytest
import torch

from resnet_tutorial import cli, data, recipes, train


def test_data_quiet_prints_nothing_and_succeeds(capsys):
    assert cli.main(["data", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert cli.main(["data"]) == 0
    assert "FashionMNIST" in capsys.readouterr().out


def test_data_missing_exits_nonzero_with_the_fixes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "nothing")
    assert cli.main(["data", "--quiet", "--no-download"]) == 1
    err = capsys.readouterr().err
    assert "apt-get install dataset-fashion-mnist" in err and data.DATA_ENV in err


def test_train_runs_end_to_end_and_saves_a_checkpoint(tmp_path):
    ck = tmp_path / "r20.pt"
    proc = subprocess.run(
        [sys.executable, "-m", "resnet_tutorial", "train", "--model", "resnet20", "--epochs", "1",
         "--subset", "10", "--test-subset", "10", "--device", "cpu", "--checkpoint", str(ck), "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy:" in proc.stdout and "on 100 test images" in proc.stdout
    state = torch.load(ck, weights_only=True)
    assert state["epoch"] == 1 and "optimizer" in state
    # the checkpoint says which recipe made it: this CPU's train recipe with the options given
    label = recipes.recipe_of(state)
    assert label.startswith(cli.recipe_for("cpu") + " with epochs=1") and "per_class=10, test_per_class=10" in label


def test_train_options_are_the_recipe_with_the_given_fields_replaced():
    for name in ("bf16", "fp32", "lesson"):
        args = cli.build_parser(name).parse_args(["train", "--recipe", name])
        args.recipe = name
        assert cli.recipe_from_args(args) == recipes.get(name)  # no option given: exactly the recipe
    args = cli.build_parser("fp32").parse_args(["train", "--epochs", "3", "--optimizer", "adamw", "--width", "2"])
    args.recipe = "fp32"
    assert cli.recipe_from_args(args).changes() == {
        "epochs": 3, "optimizer": "adamw", "nesterov": False, "model_kwargs": {"stem_stride": 2, "width": 2},
        # another optimizer without --lr / --weight-decay: the measured AdamW lr and fit's AdamW weight decay
        "lr": recipes.get("short").lr, "weight_decay": train.DEFAULT_WEIGHT_DECAY["adamw"],
    }
    args = cli.build_parser("bf16").parse_args(["train", "--lr", "0.05", "--amp", "off", "--subset", "7"])
    args.recipe = "bf16"
    assert cli.recipe_from_args(args).changes() == {"lr": 0.05, "amp": "off", "per_class": 7}


def test_trace_prints_the_shape_table(capsys):
    assert cli.main(["trace", "resnet20", "--input", "1,1,28,28"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: " ".join(line.split()) for line in lines[1:]}
    # He et al. section 4.2: 16 channels at 28x28, then 32 at 14x14, 64 at 7x7, pooled, 10 classes
    assert rows["conv1"].endswith("(1, 1, 28, 28) (1, 16, 28, 28) 144")
    assert rows["layer2.0.conv1"].endswith("(1, 16, 28, 28) (1, 32, 14, 14) 4608")
    assert rows["layer3.2.act2"].endswith("(1, 64, 7, 7) (1, 64, 7, 7) 0")
    assert rows["fc"].endswith("(1, 64) (1, 10) 650")  # 64 * 10 weights + 10 biases
    # conv1 + 3 stages x 3 blocks x 2 convs + fc = 20 weighted layers
    assert sum(1 for r in rows.values() if r.split()[1] in ("Conv2d", "Linear")) == 20


def test_bad_arguments_exit_with_usage():
    with pytest.raises(SystemExit):
        cli.main(["train", "--epochs", "0"])
    with pytest.raises(SystemExit):
        cli.main(["trace", "resnet20", "--input", "a,b"])
