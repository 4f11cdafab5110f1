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


# --- the module's own functions, each against facts written out here (mutation-tested: [mutation:checkpoints]) ---
def test_model_spec_keeps_plain_values_and_turns_tuples_into_lists():
    net = models.create_model("resnet20")
    net.model_spec = {"name": "resnet20", "kwargs": {"a": 1, "b": 2.5, "c": "x", "d": None, "e": True,
                                                     "f": (1, 2), "g": [False, None]}}
    assert checkpoints.model_spec(net) == {"name": "resnet20", "kwargs": {"a": 1, "b": 2.5, "c": "x", "d": None, "e": True,
                                                                           "f": [1, 2], "g": [False, None]}}
    net.model_spec = {"name": "resnet20", "kwargs": {"f": (1, object())}}
    assert checkpoints.model_spec(net) is None  # a tuple holding a non-plain value
    net.model_spec = {"name": "resnet20", "kwargs": {"m": nn.ReLU()}}
    assert checkpoints.model_spec(net) is None
    assert checkpoints.model_spec(nn.Linear(1, 1)) is None  # not built by create_model


def test_rng_state_round_trip_replays_every_generator():
    import random

    import numpy as np

    state = checkpoints.rng_state()
    assert set(state) == ({"torch", "python", "numpy", "cuda"} if torch.cuda.is_available() else {"torch", "python", "numpy"})
    first = (torch.rand(3), random.random(), np.random.rand(2))
    # through a weights_only round trip, as a checkpoint stores it
    buf = __import__("io").BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    checkpoints.set_rng_state(torch.load(buf, weights_only=True))
    again = (torch.rand(3), random.random(), np.random.rand(2))
    assert torch.equal(first[0], again[0]) and first[1] == again[1] and np.array_equal(first[2], again[2])
    name, keys, pos, *rest = state["numpy"]
    assert name == "MT19937" and keys.dtype == torch.int64 and keys.shape == (624,)
    assert int(keys.min()) >= 0 and int(keys.max()) <= 2**32 - 1  # uint32 values, kept exactly in int64
    assert checkpoints._tuplify([1, [2, (3, [4])]]) == (1, (2, (3, (4,))))


def test_save_and_load_checkpoint_restore_model_optimizer_and_scheduler(tmp_path):
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched.step()  # lr 0.5 -> 0.05, a momentum buffer per parameter
    path = checkpoints.save_checkpoint(tmp_path / "sub" / "c.pt", net, opt, sched, epoch=7, note="x")
    assert path == tmp_path / "sub" / "c.pt" and sorted(p.name for p in path.parent.iterdir()) == ["c.pt"]
    raw = torch.load(path, weights_only=True)
    assert sorted(raw) == ["epoch", "model", "note", "optimizer", "scheduler"]  # no model_spec for a bare Linear
    assert raw["epoch"] == 7 and raw["scheduler"]["last_epoch"] == 1

    torch.manual_seed(1)
    other = nn.Linear(3, 2)
    opt2 = torch.optim.SGD(other.parameters(), lr=1.0, momentum=0.9)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=1, gamma=0.1)
    state = checkpoints.load_checkpoint(path, other, opt2, sched2)
    assert state["note"] == "x"
    assert torch.equal(other.weight, net.weight) and torch.equal(other.bias, net.bias)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.05) and sched2.last_epoch == 1
    assert torch.equal(opt2.state[other.weight]["momentum_buffer"], opt.state[net.weight]["momentum_buffer"])
    # without an optimizer / scheduler in the file, the given ones are left alone
    bare = checkpoints.save_checkpoint(tmp_path / "bare.pt", net)
    opt3 = torch.optim.SGD(other.parameters(), lr=0.3)
    sched3 = torch.optim.lr_scheduler.StepLR(opt3, step_size=1)
    assert sorted(checkpoints.load_checkpoint(bare, other, opt3, sched3)) == ["model"]
    assert opt3.param_groups[0]["lr"] == 0.3 and sched3.last_epoch == 0
    assert sorted(checkpoints.load_checkpoint(bare)) == ["model"]  # nothing to restore: the dict only


def test_load_checkpoint_errors_name_the_file_and_the_fix(tmp_path):
    path = checkpoints.save_checkpoint(tmp_path / "lin.pt", nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"^checkpoint .*lin\.pt does not fit this model \(was it saved from another architecture\?\): "):
        checkpoints.load_checkpoint(path, nn.Linear(3, 2))
    missing = tmp_path / "none.pt"
    for load in (checkpoints.load_checkpoint, checkpoints.load_model):
        with pytest.raises(FileNotFoundError, match=r"^no checkpoint at .*none\.pt; train first \(fit\(\.\.\., checkpoint=path\)\)$"):
            load(missing)
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoints.load_checkpoint(tmp_path / "dir.pt")  # a directory is not a checkpoint
    with pytest.raises(ValueError, match=r"^checkpoint .*lin\.pt does not say which model it holds \(saved from a model not built "
                                         r"by create_model\): build the model yourself and call load_checkpoint\(path, model\)$"):
        checkpoints.load_model(path)


def test_load_model_records_the_recipe_and_returns_an_eval_model(tmp_path):
    net = models.create_model("resnet_cifar", depth=8, num_classes=3).train()
    recipe = {"name": "tiny", "epochs": 1}
    path = checkpoints.save_checkpoint(tmp_path / "r.pt", net, recipe=recipe)
    rebuilt = checkpoints.load_model(str(path), map_location="cpu")
    assert rebuilt.recipe == recipe and not rebuilt.training and rebuilt.fc.out_features == 3
    assert all(not m.training for m in rebuilt.modules())
    assert checkpoints.load_model(checkpoints.save_checkpoint(tmp_path / "n.pt", net)).recipe is None
    assert rebuilt.model_spec == {"name": "resnet_cifar", "kwargs": {"depth": 8, "num_classes": 3}}


def test_rng_state_saves_and_restores_the_cuda_generators_when_there_are_some(monkeypatch):
    """The CUDA branch, on any machine: torch.cuda's generator functions replaced by recording fakes."""
    calls = []
    fake_states = [torch.tensor([1, 2], dtype=torch.uint8), torch.tensor([3], dtype=torch.uint8)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: fake_states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: calls.append(states))
    state = checkpoints.rng_state()
    assert state["cuda"] is fake_states
    checkpoints.set_rng_state(state)
    assert calls == [fake_states]
    del state["cuda"]  # a state saved on a machine without CUDA: the GPUs' generators are left alone
    checkpoints.set_rng_state(state)
    assert calls == [fake_states]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "cuda" not in checkpoints.rng_state()
    checkpoints.set_rng_state({**checkpoints.rng_state(), "cuda": fake_states})  # saved on a GPU, loaded without one
    assert calls == [fake_states]


def test_loading_refuses_pickled_code_and_maps_tensors_to_the_device(tmp_path, monkeypatch):
    """weights_only=True: a file holding an arbitrary Python object is refused (safe to load a stranger's file);
    map_location reaches torch.load (a checkpoint written on a GPU loads on a machine without one)."""
    net = models.create_model("resnet_cifar", depth=8)
    path = checkpoints.save_checkpoint(tmp_path / "ok.pt", net)
    evil = tmp_path / "evil.pt"
    torch.save({"model": net.state_dict(), "model_spec": {"name": "resnet_cifar", "kwargs": {"depth": 8}},
                "payload": _Unsafe()}, evil)
    for load in (checkpoints.load_model, checkpoints.load_checkpoint):
        with pytest.raises(Exception, match="Weights only load failed"):
            load(evil)
    seen = []
    real_load = torch.load

    def recording_load(f, *args, **kwargs):
        seen.append((kwargs.get("map_location", "missing"), kwargs.get("weights_only", "missing")))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    checkpoints.load_model(path)
    checkpoints.load_checkpoint(path)
    checkpoints.load_model(path, map_location=torch.device("cpu"))
    checkpoints.load_checkpoint(path, map_location=torch.device("cpu"))
    assert seen == [("cpu", True), ("cpu", True), (torch.device("cpu"), True), (torch.device("cpu"), True)]


class _Unsafe:
    """Not in torch's weights-only allowlist: unpickling it would run this module's code."""


def test_load_model_moves_the_model_to_map_location(tmp_path, monkeypatch):
    """The model ends on ``map_location`` (on a machine without a GPU the move is recorded, as it changes nothing)."""
    path = checkpoints.save_checkpoint(tmp_path / "m.pt", models.create_model("resnet_cifar", depth=8))
    moves, real_to = [], nn.Module.to

    def recording_to(self, *args, **kwargs):
        moves.append((type(self).__name__, args))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "to", recording_to)
    checkpoints.load_model(path, map_location="cpu")
    assert moves == [("CifarResNet", ("cpu",))]
