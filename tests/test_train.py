"""fit/evaluate/predict, checkpoints and exact resume, the NaN guard, and metrics."""

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn as nn

from resnet_tutorial import checkpoints, data, device, metrics, train
from resnet_tutorial.lessons import l07_training_fashionmnist as L07


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


@pytest.fixture(scope="module")
def loaders():
    return data.fast_loaders(batch_size=50, per_class=30, test_per_class=20, device="cpu", seed=0)


def test_fit_lowers_the_loss_on_real_fashion_mnist(loaders):
    tr, te = loaders
    trained = small_cnn()
    hist = train.fit(trained, tr, te, epochs=6, lr=0.2, seed=0, progress=False, device="cpu")
    assert list(hist.columns) == train.HISTORY_COLUMNS and hist["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0] - 0.4
    # the last test accuracy is the trained net's, recounted here image by image (200 images: k/200)
    trained.eval()
    with torch.no_grad():
        right = sum(int((trained(x).argmax(1) == y).sum()) for x, y in te)
    assert hist["test_acc"].iloc[-1] == pytest.approx(right / 200) and right > 60  # chance: 20 of 200
    lrs = hist["lr"].tolist()  # mean lr per epoch: the cosine decays towards zero
    assert lrs == sorted(lrs, reverse=True) and 0 < lrs[-1] < lrs[0] / 10
    model = small_cnn().eval()
    res = train.evaluate(model, te, "cpu")
    # the same numbers computed directly, image by image
    with torch.no_grad():
        pairs = [(model(x), y) for x, y in te]
    logits, labels = torch.cat([p for p, _ in pairs]), torch.cat([t for _, t in pairs])
    assert res["acc"] == pytest.approx((logits.argmax(1) == labels).float().mean().item())
    assert res["loss"] == pytest.approx(nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)


def test_fit_is_reproducible_with_a_seed(loaders):
    tr, te = loaders
    a = train.fit(small_cnn(), tr, None, epochs=1, seed=3, progress=False, device="cpu")
    b = train.fit(small_cnn(), tr, None, epochs=1, seed=3, progress=False, device="cpu")
    assert a["train_loss"].tolist() == b["train_loss"].tolist()


def test_checkpoint_round_trip_restores_weights_and_optimizer(tmp_path, loaders):
    tr, _ = loaders
    model = small_cnn()
    path = tmp_path / "ck" / "m.pt"
    train.fit(model, tr, None, epochs=1, optimizer="adamw", checkpoint=path, progress=False, device="cpu")
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    other = small_cnn(seed=1)
    opt = torch.optim.AdamW(other.parameters())
    state = checkpoints.load_checkpoint(path, other, opt)
    for (k, v), v2 in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(v, v2), k
    saved = state["optimizer"]["state"]
    assert len(saved) == len(list(model.parameters()))
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], saved[0]["exp_avg"])
    assert state["epoch"] == 1 and len(state["history"]) == 1
    with pytest.raises(ValueError, match="does not fit this model"):
        checkpoints.load_checkpoint(path, nn.Linear(2, 2))
    with pytest.raises(FileNotFoundError, match="train first"):
        checkpoints.load_checkpoint(tmp_path / "none.pt")


class CrashAfter:
    """Wraps a loader and raises after ``n`` batches in all (a simulated crash mid-epoch)."""

    def __init__(self, loader, n: int):
        self.loader, self.n, self.seen = loader, n, 0

    def __len__(self):
        return len(self.loader)

    def __getattr__(self, name):  # set_epoch of a TensorLoader, if the loader has one
        return getattr(self.__dict__["loader"], name)

    def __iter__(self):
        for batch in self.loader:
            if self.seen == self.n:
                raise KeyboardInterrupt("simulated crash")
            self.seen += 1
            yield batch


@pytest.mark.parametrize("kind", ["tensor", "torchvision"])
def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, kind):
    if kind == "tensor":
        tr, te = data.fast_loaders(batch_size=40, per_class=20, test_per_class=5, device="cpu", augment=True)
    else:
        tr, te = data.torchvision_loaders(batch_size=40, per_class=20, test_per_class=5)
    kw = dict(epochs=3, lr=0.05, seed=0, progress=False, device="cpu", schedule="onecycle")
    full_model = small_cnn()
    full = train.fit(full_model, tr, te, **kw)

    path = tmp_path / "run.pt"
    crashing = CrashAfter(tr, n=2 * len(tr) + 2)  # in the middle of epoch 3
    with pytest.raises(KeyboardInterrupt):
        train.fit(small_cnn(), crashing, te, checkpoint=path, **kw)
    assert checkpoints.load_checkpoint(path)["epoch"] == 2
    resumed_model = small_cnn(seed=5)  # different init: everything must come from the checkpoint
    resumed = train.fit(resumed_model, tr, te, checkpoint=path, resume=True, **kw)
    cols = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr"]
    pd.testing.assert_frame_equal(full[cols], resumed[cols])
    for v, v2 in zip(full_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(v, v2)


def test_nan_loss_stops_with_a_clear_message(loaders):
    tr, _ = loaders
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))  # no BatchNorm to tame a huge step
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch [2-6]: training diverged.*Lower the learning rate"):
        train.fit(model, tr, None, epochs=2, lr=1e38, schedule="none", progress=False, device="cpu")


def test_bad_arguments(loaders):
    tr, _ = loaders
    with pytest.raises(ValueError, match="optimizer"):
        train.fit(small_cnn(), tr, optimizer="adam", progress=False)
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        train.fit(small_cnn(), tr, resume=True, progress=False)
    with pytest.raises(ValueError, match="fp16"):
        train.fit(small_cnn(), tr, amp="fp16", device="cpu", progress=False)
    assert device.get_device("cpu") == torch.device("cpu")


def test_bf16_autocast_trains_on_cpu(loaders):
    tr, te = loaders
    kw = dict(epochs=6, lr=0.2, progress=False, device="cpu", seed=0)
    bf16 = train.fit(small_cnn(), tr, te, amp="bf16", channels_last=True, **kw)
    fp32 = train.fit(small_cnn(), tr, te, amp=False, **kw)
    assert math.isfinite(bf16["train_loss"].iloc[-1])
    assert bf16["train_loss"].iloc[-1] < bf16["train_loss"].iloc[0] - 0.4
    assert abs(bf16["train_loss"].iloc[-1] - fp32["train_loss"].iloc[-1]) < 0.15


def test_predict_and_confusion_matrix_against_a_manual_count(loaders):
    _, te = loaders
    model = small_cnn()
    preds, targets = train.predict(model, te, "cpu")
    assert preds.shape == targets.shape == (200,) and preds.dtype == torch.int64
    cm = metrics.confusion_matrix(preds, targets, 10)
    manual = torch.zeros(10, 10, dtype=torch.int64)
    for p, t in zip(preds.tolist(), targets.tolist()):
        manual[t, p] += 1
    assert torch.equal(cm, manual)


def test_metrics_tables():
    preds = torch.tensor([0, 1, 1, 2, 2, 2, 0, 1])
    targets = torch.tensor([0, 0, 1, 2, 1, 1, 0, 2])
    cm = metrics.confusion_matrix(preds, targets, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 2], [0, 1, 1]]
    acc = metrics.per_class_accuracy(cm, ["a", "b", "c"])
    assert acc["accuracy"].tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 2])
    top = metrics.most_confused(cm, ["a", "b", "c"], k=2)
    assert top.iloc[0].to_dict() == {"true": "b", "predicted": "c", "count": 2, "share": 2 / 3}
    assert len(top) == 2
    assert metrics.mistakes(preds, targets).tolist() == [1, 4, 5, 7]
    assert metrics.mistakes(preds, targets, true_class=1).tolist() == [4, 5]
    assert len(metrics.mistakes(preds, targets, k=2, seed=0)) == 2
    with pytest.raises(ValueError, match="num_classes"):
        metrics.confusion_matrix(preds, targets, 2)
    with pytest.raises(ValueError, match="argmax"):
        metrics.confusion_matrix(preds.float(), targets, 3)


def test_train_model_reacts_to_its_arguments():
    model, hist = L07.train_model("resnet20", epochs=1, per_class=5, test_per_class=2,
                                    progress=False, device="cpu")
    assert len(hist) == 1 and hist.attrs["model"] == "resnet20"
    _, hist2 = L07.train_model("plain20", epochs=2, per_class=5, test_per_class=2, progress=False, device="cpu")
    assert len(hist2) == 2 and hist2.attrs["model"] == "plain20"


def test_throughput_table_columns():
    table = L07.throughput_table([("resnet20", 28), ("resnet20", 40)], batch_size=4, steps=1)
    assert list(table.columns) == ["model", "input", "params", "images_per_s", "epoch_minutes", "relative"]
    # the columns derived from the measured speed, recomputed (60,000 training images per epoch)
    rate = table["images_per_s"]
    assert table["epoch_minutes"].tolist() == pytest.approx((60_000 / rate / 60).tolist())
    assert table["relative"].tolist() == pytest.approx([1.0, rate.iloc[0] / rate.iloc[1]])
    # Table 6: ResNet-20 has 269,722 parameters with 3 input channels; 1 channel saves 2 x 16 x 9
    assert table["params"].tolist() == [269_722 - 2 * 144] * 2


def test_evaluate_tta_averages_an_image_and_its_mirror():
    torch.manual_seed(0)
    x = torch.randn(40, 1, 6, 6)
    y = torch.randint(0, 3, (40,))
    batches = [(x[:20], y[:20]), (x[20:], y[20:])]
    # a flip-invariant model: TTA must change nothing
    invariant = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 3))
    plain, tta = train.evaluate(invariant, batches), train.evaluate(invariant, batches, tta=True)
    assert tta["acc"] == plain["acc"] and tta["loss"] == pytest.approx(plain["loss"], rel=1e-5)
    # a model that sees the left half only: TTA = mean of the softmaxes of left and right halves
    left = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
    with torch.no_grad():
        left[1].weight[:, [c for c in range(36) if c % 6 >= 3]] = 0
    got = train.evaluate(left, batches, tta=True)
    with torch.no_grad():
        p = (left(x).softmax(1) + left(x.flip(3)).softmax(1)) / 2
    assert got["loss"] == pytest.approx(nn.functional.nll_loss(p.log(), y).item(), rel=1e-5)
    assert got["acc"] == pytest.approx((p.argmax(1) == y).float().mean().item())


def test_fastest_amp_picks_bf16_only_where_the_cpu_has_it():
    assert device.fastest_amp("cuda") == "auto"  # GPUs: CUDA's autocast, fit's own automatic choice
    choice = device.fastest_amp("cpu")
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("needs Linux's /proc/cpuinfo to know the CPU's flags")
    flags = set(cpuinfo.read_text().split())
    # the kernel's own report of the CPU: native bf16 is AVX512-BF16 or AMX-BF16
    assert (choice == "bf16") == bool(flags & {"avx512_bf16", "amx_bf16"})
    assert choice in ("bf16", "off")  # canonical names (device.AMP_CHOICES), never None / False
