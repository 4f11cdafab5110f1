"""Checkpoints rebuild their model; the registry refuses ambiguity; fit's config is checked."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_tutorial import checkpoints, models, train


def test_load_model_rebuilds_the_net_from_its_file_alone(tmp_path):
    torch.manual_seed(0)
    net = models.create_model("plain_cifar", depth=14, width=2, num_classes=7).eval()
    path = checkpoints.save_checkpoint(tmp_path / "net.pt", net, epoch=3)
    state = torch.load(path, weights_only=True)
    assert state["model_spec"] == {"name": "plain_cifar", "kwargs": {"depth": 14, "width": 2, "num_classes": 7}}
    rebuilt = checkpoints.load_model(path)
    assert type(rebuilt) is type(net) and rebuilt.depth == 14 and rebuilt.fc.out_features == 7
    assert not rebuilt.training
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(rebuilt(x), net(x))  # same weights, same BN statistics
    assert all(b.shortcut is None for b in rebuilt.blocks())  # the plain twin, not a ResNet


def test_a_model_not_from_the_registry_cannot_be_rebuilt(tmp_path):
    path = checkpoints.save_checkpoint(tmp_path / "lin.pt", nn.Linear(2, 2))
    with pytest.raises(ValueError, match="does not say which model"):
        checkpoints.load_model(path)
    with pytest.raises(FileNotFoundError):
        checkpoints.load_model(tmp_path / "missing.pt")


def test_spec_left_out_when_an_argument_is_not_a_plain_value():
    net = models.create_model("resnet20")
    assert checkpoints.model_spec(net) == {"name": "resnet20", "kwargs": {}}
    net.model_spec = {"name": "resnet20", "kwargs": {"weights": object()}}
    assert checkpoints.model_spec(net) is None


def test_register_model_refuses_a_second_model_under_a_taken_name():
    def resnet20(**kwargs):  # noqa: ANN202 - same name as the registry's entry
        return nn.Linear(1, 1)

    with pytest.raises(ValueError, match="already registered"):
        models.register_model(resnet20)
    assert isinstance(models.create_model("resnet20"), models.CifarResNet)  # the original is intact


def test_entry_points_pass_keyword_arguments_through():
    # torchvision-style: extra keywords reach the network's constructor
    net = models.create_model("resnet18", num_classes=10, zero_init_residual=True)
    blocks = [b for b in net.modules() if isinstance(b, models.BasicBlock)]
    assert len(blocks) == 8 and all(torch.count_nonzero(b.bn2.weight.detach()) == 0 for b in blocks)
    with pytest.raises(ValueError, match="post_fashion_resnet18"):
        models.create_model("post_fashion_resnet18", no_such_option=1)


def test_fit_config_rejects_unknown_options_and_bad_values():
    with pytest.raises(ValueError, match="unknown option.*'epoch'"):
        train.FitConfig.of(None, {"epoch": 3})
    with pytest.raises(ValueError, match="optimizer"):
        train.FitConfig(optimizer="rmsprop")
    cfg = train.FitConfig.of(train.FitConfig(epochs=4, optimizer="adamw"), {"lr": 1e-3})
    assert (cfg.epochs, cfg.lr, cfg.weight_decay) == (4, 1e-3, train.DEFAULT_WEIGHT_DECAY["adamw"])
