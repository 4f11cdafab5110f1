"""Lesson 09's offline transfer learning: the pretrained net, its checkpoint, and the three starts."""

from __future__ import annotations

import pytest
import torch

from resnet_tutorial import checkpoints, results
from resnet_tutorial.lessons import l09_torchvision_resnet as L09
from resnet_tutorial.recipes import recipe_of

TINY = {"epochs": 1, "per_class": 20, "test_per_class": 10, "batch_size": 50}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    path = tmp_path_factory.mktemp("transfer") / "net.pt"
    model, record = L09.pretrain(out=path, progress=False, **TINY)
    return model, record, path


def _state(model: torch.nn.Module, skip: str = "fc.") -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith(skip)}


def test_class_loaders_keep_only_the_classes_and_relabel_them():
    train, test = L09.class_loaders((5, 7), per_class=3, test_per_class=2, batch_size=4)
    assert sorted(train.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert sorted(test.labels.tolist()) == [0, 0, 1, 1]
    # the images are the data set's images of classes 5 (Sandal) and 7 (Sneaker), in that label order
    from resnet_tutorial.data import load_tensors

    images, labels = load_tensors(True)
    sandals = images[labels == 5]
    first = train.images[train.labels == 0][0]
    assert any(torch.equal(first, s) for s in sandals)
    with pytest.raises(ValueError, match="distinct FashionMNIST labels"):
        L09.class_loaders((5, 5), per_class=3)


def test_the_checkpoint_rebuilds_with_load_model(pretrained):
    model, record, path = pretrained
    rebuilt = checkpoints.load_model(path)
    assert type(rebuilt).__name__ == "CifarResNet" and rebuilt.fc.out_features == 5
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(rebuilt(x), model.eval()(x), rtol=0, atol=0)
    assert recipe_of(path).startswith("transfer-pretrain with ")  # the recipe, with the tiny budget
    assert record["classes"] == [0, 1, 2, 3, 4] and record["train_images"] == 100 and record["test_images"] == 50
    assert torch.load(path, weights_only=True)["transfer"]["class_names"][1] == "Trouser"


def test_load_pretrained_reads_a_file_and_missing_raises_with_the_command(pretrained, tmp_path, monkeypatch):
    model, _, path = pretrained
    loaded, record, message = L09.load_pretrained(path)
    assert str(path) in message and record["classes"] == [0, 1, 2, 3, 4]
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=0)
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    monkeypatch.setattr(results, "working_tree", lambda: None)
    monkeypatch.setattr(results, "user_dir", lambda: tmp_path / "user")
    monkeypatch.setattr(results, "INSTALLED", tmp_path / "installed")
    with pytest.raises(FileNotFoundError, match="resnet_tutorial pretrain"):
        L09.load_pretrained(build_if_missing=False)


def test_frozen_backbone_does_not_change_and_fine_tuning_does(pretrained):
    model, _, _ = pretrained
    original = _state(model, skip="nothing")
    runs = {}
    for start in L09.STARTS:
        net = L09.transfer_model(start, model)
        assert net.fc.out_features == 5
        before = _state(net)
        head = net.fc.weight.detach().clone()
        loaders = L09.class_loaders(L09.TARGET_CLASSES, per_class=4, test_per_class=2, batch_size=10)
        from resnet_tutorial.train import train_steps

        train_steps(net, loaders[0], 3, optimizer="adamw", lr=1e-2)
        after = _state(net)
        runs[start] = (before, after)
        assert not torch.equal(net.fc.weight, head)  # the head learns in every start
    before, after = runs["frozen backbone + new head"]
    assert all(torch.equal(after[k], v) for k, v in before.items())  # weights and BatchNorm statistics
    for start in ("fine-tuned (all layers)", "from scratch"):
        before, after = runs[start]
        assert not torch.equal(after["conv1.weight"], before["conv1.weight"])
        assert not torch.equal(after["layer1.0.bn1.running_mean"], before["layer1.0.bn1.running_mean"])
    # the pretrained net itself is never touched, and the two pretrained starts begin from its weights
    assert all(torch.equal(v, original[k]) for k, v in _state(model, skip="nothing").items())
    fine_before, _ = runs["fine-tuned (all layers)"]
    scratch_before, _ = runs["from scratch"]
    assert torch.equal(fine_before["conv1.weight"], original["conv1.weight"])
    assert not torch.equal(scratch_before["conv1.weight"], original["conv1.weight"])


def test_transfer_runs_record_every_start_at_the_same_steps(pretrained):
    model, _, _ = pretrained
    seen = []
    runs = L09.transfer_runs(model, per_class=4, steps=4, eval_every=2, batch_size=10, test_per_class=6,
                             progress=False, on_point=lambda *p: seen.append(p))
    assert list(runs.columns) == ["start", "step", "test_acc", "train_loss"]
    assert runs.groupby("start")["step"].apply(list).to_dict() == {s: [0, 2, 4] for s in L09.STARTS}
    assert len(seen) == 9 and seen[0][:2] == ("from scratch", 0)
    # 30 test images: every accuracy is a multiple of 1/30
    assert ((runs["test_acc"] * 30).round(6) % 1 == 0).all()
    assert runs[runs.step == 0]["train_loss"].isna().all() and runs[runs.step > 0]["train_loss"].notna().all()
    with pytest.raises(ValueError, match="start must be one of"):
        L09.transfer_model("warm", model)


def test_a_missing_net_is_trained_and_saved_only_on_the_full_budget(tmp_path, monkeypatch):
    """FAST mode trains a small net and leaves no file where the real one belongs; full mode saves it there."""
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    monkeypatch.setattr(results, "working_tree", lambda: None)
    monkeypatch.setattr(results, "user_dir", lambda: tmp_path / "user")
    monkeypatch.setattr(results, "INSTALLED", tmp_path / "installed")
    calls = []

    def fake_pretrain(**kw):
        calls.append(kw)
        return torch.nn.Linear(1, 1), {"seconds": 1.0}

    monkeypatch.setattr(L09, "pretrain", fake_pretrain)
    _, _, message = L09.load_pretrained(fast=True, progress=False)
    assert calls[-1]["out"] is None and calls[-1]["epochs"] == 1 and "not saved" in message
    _, _, message = L09.load_pretrained(fast=False, progress=False)
    assert calls[-1]["out"] == tmp_path / L09.PRETRAINED and "epochs" not in calls[-1]
    assert str(tmp_path / L09.PRETRAINED) in message


def test_the_pretrain_subcommand_writes_a_net_load_model_rebuilds(tmp_path, capsys):
    from resnet_tutorial import cli

    out = tmp_path / "net.pt"
    assert cli.main(["pretrain", "--epochs", "1", "--per-class", "10", "--out", str(out), "--no-progress"]) == 0
    assert f"saved to {out}" in capsys.readouterr().out
    model = checkpoints.load_model(out)
    assert model.fc.out_features == 5 and recipe_of(out) == "transfer-pretrain with epochs=1, per_class=10"
