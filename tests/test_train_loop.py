"""The training loops step by step: fit, train_steps and throughput on tiny models, checked against the
same steps written out here with plain torch (SGD with momentum and weight decay by its formula), plus
the recipe's checks, the optimizers, the progress bars a learner sees, checkpoints and the CUDA / torchrun
branches (run on this machine with recording fakes or a one-process group)."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import re
import time
import types
import warnings
from contextlib import nullcontext

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from resnet_tutorial import checkpoints, train

CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- shared pieces
def _data(n: int = 10, d: int = 4, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, classes, (n,), generator=g)


def _batches(x: torch.Tensor, y: torch.Tensor, sizes: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out, i = [], 0
    for s in sizes:
        out.append((x[i:i + s], y[i:i + s]))
        i += s
    return out


def _linear(seed: int = 0, d: int = 4, classes: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(d, classes)


def _sgd_by_hand(model: nn.Module, batches, lrs, momentum=0.9, weight_decay=0.0, nesterov=False, dtype=None,
                 bufs: list | None = None):
    """torch's documented SGD (dampening 0), one step per batch with the given learning rates.

    Returns each step's loss and logits (computed before the update, as a training loop sees them).
    ``bufs`` (a list) keeps the momentum buffers from one call to the next."""
    params = list(model.parameters())
    if bufs is None:
        bufs = []
    if not bufs:
        bufs.extend([None] * len(params))
    losses, logits = [], []
    for (x, y), lr in zip(batches, lrs):
        with torch.autocast("cpu", dtype=dtype) if dtype is not None else nullcontext():
            out = model(x)
        loss = F.cross_entropy(out.float(), y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(params, grads)):
                g = g + weight_decay * p
                bufs[i] = g.clone() if bufs[i] is None else momentum * bufs[i] + g
                p -= lr * (g + momentum * bufs[i] if nesterov else bufs[i])
        losses.append(loss.item())
        logits.append(out.detach().float())
    return losses, logits


def _cosine(lr: float, t: int, total: int) -> float:
    return lr * (1 + math.cos(math.pi * t / total)) / 2


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, msg=name)


class Probe(nn.Module):
    """A tiny conv net that writes down how it is called: input memory format, batch size, mode, autocast."""

    def __init__(self, classes: int = 3):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(3, classes)
        self.seen: list[dict] = []

    def forward(self, x):
        self.seen.append({
            # two input channels: channels-last and plain contiguous strides differ
            "channels_last": x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous(),
            "n": x.shape[0], "training": self.training, "grad": torch.is_grad_enabled(),
            "autocast": torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None,
        })
        return self.fc(self.conv(x).mean((2, 3)))


def _images(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


# ----------------------------------------------------------------------------- fit: the numbers
def test_fit_history_is_the_sgd_run_computed_by_hand():
    x, y = _data(10)
    tx, ty = _data(6, seed=1)
    batches = _batches(x, y, [4, 4, 2])  # unequal batches: the epoch's loss and accuracy weigh each image once
    model, ref = _linear(), _linear()
    rows, steps = [], []
    hist = train.fit(model, batches, [(tx, ty)], epochs=2, device="cpu", progress=False,
                     on_epoch_end=rows.append, on_step=steps.append)
    # defaults: SGD, lr 0.1, momentum 0.9, weight decay 5e-4, cosine over the 6 steps
    lrs = [_cosine(0.1, t, 6) for t in range(6)]
    expected, bufs = [], []
    for e in range(2):
        losses, logits = _sgd_by_hand(ref, batches, lrs[3 * e:3 * e + 3], weight_decay=5e-4, bufs=bufs)
        with torch.no_grad():
            test_out = ref(tx)
        right = sum(int((o.argmax(1) == yy).sum()) for o, (_, yy) in zip(logits, batches))
        expected.append({
            "epoch": e + 1, "train_loss": sum(l * len(yy) for l, (_, yy) in zip(losses, batches)) / 10,
            "train_acc": right / 10, "test_loss": F.cross_entropy(test_out, ty).item(),
            "test_acc": (test_out.argmax(1) == ty).float().mean().item(), "lr": sum(lrs[3 * e:3 * e + 3]) / 3,
        })
        for b, loss in enumerate(losses):
            want = {"epoch": e + 1, "batch": b + 1, "loss": loss, "lr": lrs[3 * e + b]}
            assert steps[3 * e + b] == pytest.approx(want, rel=1e-5)
    assert list(hist.columns) == train.HISTORY_COLUMNS and len(steps) == 6
    for row, want, seen in zip(hist.to_dict("records"), expected, rows):
        assert {k: row[k] for k in want} == pytest.approx(want, rel=1e-5)
        assert seen == row  # on_epoch_end got the same row
    _assert_same_weights(model, ref)
    assert hist["train_acc"].tolist() != [0.0, 0.0]  # the accuracy check above is not a trivial 0 == 0


def test_fit_without_a_test_loader_leaves_the_test_columns_empty_and_times_each_epoch():
    x, y = _data(10)
    rows = []
    t0 = time.perf_counter()
    hist = train.fit(_linear(), _batches(x, y, [5, 5]), epochs=2, device="cpu", progress=False,
                     on_epoch_end=rows.append)
    wall = time.perf_counter() - t0
    assert set(rows[0]) == set(train.HISTORY_COLUMNS)
    assert all(math.isnan(r["test_loss"]) and math.isnan(r["test_acc"]) for r in rows)
    assert hist["test_loss"].isna().all() and hist["test_acc"].isna().all()
    assert all(0 < s < wall for s in hist["seconds"]) and hist["seconds"].sum() <= wall


def test_fit_options_reach_the_optimizer():
    x, y = _data(10)
    batches = _batches(x, y, [5, 5])
    model, ref = _linear(), _linear()
    train.fit(model, batches, epochs=1, lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-2,
              schedule="none", device="cpu", progress=False)
    _sgd_by_hand(ref, batches, [0.05, 0.05], momentum=0.8, weight_decay=1e-2, nesterov=True)
    _assert_same_weights(model, ref)


def test_onecycle_and_constant_schedules_per_epoch():
    x, y = _data(12)
    batches = _batches(x, y, [3, 3, 3, 3])
    one = train.fit(_linear(), batches, epochs=3, lr=0.2, schedule="onecycle", device="cpu", progress=False)
    # the reference: torch's own OneCycleLR stepped 12 times on a throwaway optimizer
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.2, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=12)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert one["lr"].tolist() == pytest.approx([np.mean(lrs[4 * e:4 * e + 4]) for e in range(3)], rel=1e-6)
    assert lrs[0] == pytest.approx(0.2 / 25)  # OneCycle starts at max_lr / 25
    flat = train.fit(_linear(), batches, epochs=2, lr=0.2, schedule="none", device="cpu", progress=False)
    assert flat["lr"].tolist() == [0.2, 0.2]


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_a_one_step_run_ends_its_schedule(tmp_path, schedule):
    x, y = _data(4)
    path = tmp_path / "one.pt"
    train.fit(_linear(), [(x, y)], epochs=1, lr=0.1, schedule=schedule, checkpoint=path, device="cpu",
              progress=False)
    saved = checkpoints.load_checkpoint(path)["optimizer"]["param_groups"][0]["lr"]
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1) if schedule == "cosine"
             else torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=1))
    opt.step()
    sched.step()
    # the schedule spans the run's single step (a cosine over one step is at zero after it)
    assert saved == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)


def test_fit_bf16_autocast_is_the_same_run_under_torch_autocast():
    x, y = _data(8)
    tx, ty = _data(6, seed=1)
    batches = _batches(x, y, [4, 4])
    model, ref = _linear(), _linear()
    hist = train.fit(model, batches, [(tx, ty)], epochs=1, amp="bf16", schedule="none", weight_decay=0.0,
                     device="cpu", progress=False)
    losses, _ = _sgd_by_hand(ref, batches, [0.1, 0.1], dtype=torch.bfloat16)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        test_out = ref(tx).float()
    assert hist["train_loss"].iloc[0] == pytest.approx(np.mean(losses), rel=1e-6)
    assert hist["test_loss"].iloc[0] == pytest.approx(F.cross_entropy(test_out, ty).item(), rel=1e-6)
    _assert_same_weights(model, ref)
    # and it is not the fp32 run: bf16 rounds the logits
    fp32 = train.fit(_linear(), batches, [(tx, ty)], epochs=1, schedule="none", weight_decay=0.0, device="cpu",
                     progress=False)
    assert fp32["test_loss"].iloc[0] != hist["test_loss"].iloc[0]


def test_fit_channels_last_autocast_and_tta_reach_training_and_testing():
    x, y = _images(8)
    tx, ty = _images(4, seed=1)
    model = Probe()
    hist = train.fit(model, _batches(x, y, [4, 4]), [(tx, ty)], epochs=1, channels_last=True, amp="bf16", tta=True,
                     device="cpu", progress=False)
    fwd, tests = model.seen[:2], model.seen[2:]
    assert all(s["channels_last"] and s["training"] and s["autocast"] == torch.bfloat16 for s in fwd)
    assert len(tests) == 2  # tta: the test batch and its mirror image
    assert all(not s["training"] and s["autocast"] == torch.bfloat16 for s in tests) and tests[0]["channels_last"]
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)  # the model too
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        p = (model(tx).float().softmax(1) + model(tx.flip(3)).float().softmax(1)) / 2
    assert hist["test_loss"].iloc[0] == pytest.approx(F.nll_loss(p.log(), ty).item(), rel=1e-5)
    plain = Probe()
    train.fit(plain, _batches(x, y, [4, 4]), [(tx, ty)], epochs=1, device="cpu", progress=False)
    assert not any(s["channels_last"] or s["autocast"] for s in plain.seen) and len(plain.seen) == 3


# ----------------------------------------------------------------------------- fit: errors
def test_fit_errors_say_what_to_change():
    x, y = _data(4)
    with pytest.raises(ValueError, match=r"^resume=True needs checkpoint=PATH \(the file to resume from\)$"):
        train.fit(_linear(), [(x, y)], resume=True, progress=False)
    with pytest.raises(ValueError, match=r"^train_loader must have a length \(a DataLoader or TensorLoader\)$"):
        train.fit(_linear(), ((x, y) for _ in range(2)), progress=False)
    with pytest.raises(ValueError, match=r"^train_loader yields no batches \(empty data set or drop_last"):
        train.fit(_linear(), [], progress=False)
    fields = "amp, channels_last, epochs, label_smoothing, lr, momentum, nesterov, optimizer, schedule, seed, tta, " \
             "weight_decay"
    with pytest.raises(ValueError, match=re.escape(f"fit got unknown option(s) ['epoch']; FitConfig has: {fields}")):
        train.fit(_linear(), [(x, y)], epoch=3, progress=False)


def test_a_diverging_fit_names_the_batch_and_a_smaller_lr():
    x, y = _data(8)
    bad = x[4:].clone()
    bad[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match=r"^the training loss became nan at epoch 1, batch 2: training "
                                                  r"diverged\. Lower the learning rate \(now 0\.1\), e\.g\. lr=0\.01,"):
        train.fit(_linear(), [(x[:4], y[:4]), (bad, y[4:])], epochs=1, lr=0.1, schedule="none", device="cpu",
                  progress=False)


def test_fit_config_checks_each_field():
    with pytest.raises(ValueError, match=r"^schedule must be one of \('cosine', 'onecycle', 'none'\), got 'step'$"):
        train.FitConfig(schedule="step")
    with pytest.raises(ValueError, match=r"^epochs must be >= 1, got 0$"):
        train.FitConfig(epochs=0)
    for lr in (0.0, -0.1, float("inf")):
        with pytest.raises(ValueError, match=rf"^lr must be a positive number, got {lr}$"):
            train.FitConfig(lr=lr)
    assert train.FitConfig(weight_decay=0.01).weight_decay == 0.01
    assert train.FitConfig(optimizer="adamw", weight_decay=0.0).weight_decay == 0.0
    assert train.FitConfig(optimizer="adamw").weight_decay == 0.05 and train.FitConfig().weight_decay == 5e-4


# ----------------------------------------------------------------------------- fit: progress bars
def _bar_lines(err: str, desc: str) -> list[str]:
    return [line for line in re.split(r"[\r\n]", err) if line.startswith(desc + ":")]


def test_fit_shows_an_epoch_bar_and_one_cleared_bar_per_epoch(capsys):
    x, y = _data(14)
    tx, ty = _data(4, seed=1)
    steps = []
    hist = train.fit(_linear(), _batches(x, y, [2] * 7), [(tx, ty)], epochs=2, device="cpu", on_step=steps.append)
    err = capsys.readouterr().err  # progress=True is the default
    outer = _bar_lines(err, "epochs")
    assert outer and "?epoch/s]" in outer[0] and "| 2/2 [" in outer[-1]
    for e in (1, 2):
        row = hist.iloc[e - 1]
        assert any(f"loss={row.train_loss:.3f}, test_acc={row.test_acc:.3f}]" in line for line in outer)
        inner = _bar_lines(err, f"epoch {e}")
        assert inner and "?batch/s]" in inner[0]
        # the running loss shows the loss of every fifth batch (1 and 6 of 7)
        shown = {m for line in inner for m in re.findall(r"loss=([\d.]+)\]", line)}
        losses = [s["loss"] for s in steps if s["epoch"] == e]
        assert shown == {f"{losses[0]:.3f}", f"{losses[5]:.3f}"}
    assert len(re.findall(r"\r {20,}\x1b\[A", err)) == 2  # each epoch's bar is erased when it ends (leave=False)
    assert not _bar_lines(err, "epoch 0") and not _bar_lines(err, "epoch 3")
    train.fit(_linear(), _batches(x, y, [7, 7]), epochs=1, device="cpu")  # no test loader: no test_acc shown
    err = capsys.readouterr().err
    assert "loss=" in err and "test_acc" not in err
    train.fit(_linear(), _batches(x, y, [7, 7]), epochs=1, device="cpu", progress=False)
    assert capsys.readouterr().err == ""


def test_resumed_fit_starts_its_bar_at_the_epochs_done(tmp_path, capsys):
    x, y = _data(8)
    batches = _batches(x, y, [4, 4])
    path = tmp_path / "r.pt"
    kw = dict(lr=0.05, device="cpu", checkpoint=path)
    train.fit(_linear(), batches, epochs=1, progress=False, **kw)
    hist = train.fit(_linear(seed=3), batches, epochs=2, resume=True, **kw)
    err = capsys.readouterr().err
    outer = _bar_lines(err, "epochs")
    assert "| 1/2 [" in outer[0] and "| 2/2 [" in outer[-1]
    assert not _bar_lines(err, "epoch 1") and _bar_lines(err, "epoch 2")
    assert hist["epoch"].tolist() == [1, 2]


# ----------------------------------------------------------------------------- fit: checkpoints and resume
def test_checkpoint_keeps_the_config_and_the_recipe_only_when_given(tmp_path):
    x, y = _data(4)
    plain, with_recipe = tmp_path / "a.pt", tmp_path / "b.pt"
    train.fit(_linear(), [(x, y)], epochs=1, lr=0.05, checkpoint=plain, device="cpu", progress=False)
    state = checkpoints.load_checkpoint(plain)
    assert state["config"] == dataclasses.asdict(train.FitConfig(epochs=1, lr=0.05))
    assert "recipe" not in state and "scaler" not in state  # a CPU fp32 run has no gradient scaler
    recipe = {"name": "mine", "changes": {"lr": 0.05}}
    train.fit(_linear(), [(x, y)], epochs=1, lr=0.05, checkpoint=with_recipe, recipe=recipe, device="cpu",
              progress=False)
    assert checkpoints.load_checkpoint(with_recipe)["recipe"] == recipe


def test_resume_from_a_file_without_history_or_with_a_gpu_scaler(tmp_path, monkeypatch):
    x, y = _data(8)
    batches = _batches(x, y, [4, 4])
    full = train.fit(_linear(), batches, epochs=2, schedule="none", device="cpu", progress=False)
    path = tmp_path / "old.pt"
    train.fit(_linear(), batches, epochs=1, schedule="none", device="cpu", progress=False, checkpoint=path)
    # an older file without a history, written by an fp16 run on a GPU: a "scaler" entry that this CPU run ignores
    state = torch.load(path, weights_only=True)
    del state["history"]
    state["scaler"] = {"scale": 1024.0}
    torch.save(state, path)
    loads = []
    real_load = torch.load

    def recording_load(f, *args, **kwargs):
        loads.append(kwargs.get("map_location", "missing"))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    resumed = train.fit(_linear(seed=4), batches, epochs=2, schedule="none", device="cpu", progress=False,
                        checkpoint=path, resume=True)
    assert loads == ["cpu"]  # RNG states must come back as CPU tensors, wherever the file was written
    assert resumed["epoch"].tolist() == [2]
    assert resumed["train_loss"].iloc[0] == pytest.approx(full["train_loss"].iloc[1], rel=1e-6)


# ----------------------------------------------------------------------------- the CUDA and torchrun branches
class FakeScaler:
    """Stands in for torch.amp.GradScaler (CUDA only): records what the loop asks of it."""

    made: list["FakeScaler"] = []

    def __init__(self, device):
        self.device, self.calls = device, []
        FakeScaler.made.append(self)

    def scale(self, loss):
        self.calls.append(("scale", loss))
        return loss

    def step(self, opt):
        self.calls.append(("step", opt))
        opt.step()

    def update(self):
        self.calls.append(("update",))

    def state_dict(self):
        return {"scale": 1024.0}

    def load_state_dict(self, state):
        self.calls.append(("load", state))


def test_fp16_training_scales_every_step_and_checkpoints_the_scaler(tmp_path, monkeypatch):
    """The CUDA fp16 branch, on any machine: fp16 autocast on the CPU and a recording GradScaler."""
    FakeScaler.made = []
    monkeypatch.setattr(torch.amp, "GradScaler", FakeScaler)
    monkeypatch.setattr(train, "autocast_dtype", lambda amp, device: torch.float16 if amp == "fp16" else None)
    x, y = _data(8)
    batches = _batches(x, y, [4, 4])
    model, ref = _linear(), _linear()
    path = tmp_path / "fp16.pt"
    steps = []
    train.fit(model, batches, epochs=1, amp="fp16", schedule="none", weight_decay=0.0, checkpoint=path,
              device="cpu", progress=False, on_step=steps.append)
    (scaler,) = FakeScaler.made
    assert scaler.device == "cuda"
    assert [c[0] for c in scaler.calls] == ["scale", "step", "update"] * 2
    assert [c[1].item() for c in scaler.calls[::3]] == [s["loss"] for s in steps]
    assert all(isinstance(c[1], torch.optim.SGD) for c in scaler.calls[1::3])
    _sgd_by_hand(ref, batches, [0.1, 0.1], dtype=torch.float16)
    _assert_same_weights(model, ref)
    assert checkpoints.load_checkpoint(path)["scaler"] == {"scale": 1024.0}
    train.fit(_linear(), batches, epochs=2, amp="fp16", schedule="none", checkpoint=path, resume=True,
              device="cpu", progress=False)
    assert FakeScaler.made[1].calls[0] == ("load", {"scale": 1024.0})


def test_under_a_process_group_fit_trains_through_ddp_without_per_step_buffer_broadcasts(tmp_path, monkeypatch):
    """torchrun's branch in this one process: a one-process gloo group, with fit told it runs distributed."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        monkeypatch.setattr(train, "is_distributed", lambda: True)
        model = _linear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = train._setup(model, 2, train.FitConfig(), CPU)
        assert isinstance(run.net, DistributedDataParallel) and run.net.module is model
        assert run.net.device_ids is None  # a CPU model: no device ids
        # buffers are averaged once per epoch instead (torch >= 2.14 calls the flag forward_sync_buffers)
        assert getattr(run.net, "forward_sync_buffers", getattr(run.net, "broadcast_buffers", None)) is False
        assert not [w for w in caught if "deprecated" in str(w.message)]  # this torch's own parameter name
        x, y = _data(8)
        batches = _batches(x, y, [4, 4])
        ddp_model, ref = _linear(), _linear()
        hist = train.fit(ddp_model, batches, epochs=1, schedule="none", weight_decay=0.0, device="cpu",
                         progress=False)
        losses, _ = _sgd_by_hand(ref, batches, [0.1, 0.1])
        assert hist["train_loss"].iloc[0] == pytest.approx(np.mean(losses), rel=1e-6)
        _assert_same_weights(ddp_model, ref)
    finally:
        dist.destroy_process_group()


def test_each_epoch_reduces_its_sums_on_the_collective_device_and_averages_the_buffers(monkeypatch):
    reduced, averaged = [], []
    real_reduce = train.all_reduce_sum

    def recording_reduce(*values, **kwargs):
        reduced.append((values, kwargs))
        return real_reduce(*values, **kwargs)

    monkeypatch.setattr(train, "all_reduce_sum", recording_reduce)
    monkeypatch.setattr(train, "average_buffers", averaged.append)
    x, y = _data(10)
    model = _linear()
    train.fit(model, _batches(x, y, [5, 5]), epochs=2, device="cpu", progress=False)
    assert [v[2] for v, _ in reduced] == [10, 10]  # (loss sum, correct, images) of each epoch
    assert [kw for _, kw in reduced] == [{"device": CPU}] * 2
    assert averaged == [model, model]


def test_collectives_run_on_cuda_for_nccl_and_on_the_cpu_otherwise():
    assert train._collective_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert train._collective_device(CPU) == CPU
    assert train._collective_device(torch.device("meta")) == CPU


# ----------------------------------------------------------------------------- train_steps
def test_train_steps_defaults_are_sgd_momentum_without_weight_decay():
    x, y = _data(8)
    batches = _batches(x, y, [4, 4])
    model, ref = _linear(), _linear()
    seen = []
    losses = train.train_steps(model, batches, 3, on_step=lambda step, loss: seen.append((step, loss)))
    want, _ = _sgd_by_hand(ref, batches + batches[:1], [0.1] * 3)  # cycled: batch 1 again at step 3
    assert losses == pytest.approx(want, rel=1e-6)
    assert seen == [(s + 1, loss) for s, loss in enumerate(losses)]
    _assert_same_weights(model, ref)


def test_train_steps_passes_its_optimizer_settings():
    x, y = _data(8)
    batches = _batches(x, y, [4, 4])
    model, ref = _linear(), _linear()
    train.train_steps(model, batches, 2, lr=0.05, momentum=0.5, weight_decay=0.1)
    _sgd_by_hand(ref, batches, [0.05] * 2, momentum=0.5, weight_decay=0.1)
    _assert_same_weights(model, ref)
    model2, ref2 = _linear(), _linear()
    opt = torch.optim.SGD(model2.parameters(), lr=0.02)  # an optimizer of one's own is used as it is
    train.train_steps(model2, batches, 2, optimizer=opt)
    _sgd_by_hand(ref2, batches, [0.02] * 2, momentum=0.0)
    _assert_same_weights(model2, ref2)


def test_train_steps_bf16_is_the_same_steps_under_torch_autocast():
    x, y = _data(8)
    batches = _batches(x, y, [4, 4])
    model, ref = _linear(), _linear()
    losses = train.train_steps(model, batches, 2, amp="bf16")
    want, _ = _sgd_by_hand(ref, batches, [0.1] * 2, dtype=torch.bfloat16)
    assert losses == pytest.approx(want, rel=1e-6)
    _assert_same_weights(model, ref)


def test_train_steps_accepts_one_pair_a_list_or_a_tuple_of_pairs_and_cycles_them():
    x, y = _data(12)
    pairs = _batches(x, y, [4, 4, 4])
    as_list = train.train_steps(_linear(), pairs, 5)
    assert train.train_steps(_linear(), tuple(pairs), 5) == as_list
    one = train.train_steps(_linear(), pairs[0], 3)
    assert train.train_steps(_linear(), pairs[:1], 3) == one and len(one) == 3
    assert len(set(one)) == 3  # the same batch three times, a step after another


def test_train_steps_refuses_what_is_not_pairs_and_an_empty_loader():
    x, y = _data(4)
    with pytest.raises(ValueError, match=r"^batches must yield \(inputs, targets\) pairs$"):
        train.train_steps(_linear(), [x, y], 1)  # one pair as a list: its items are not pairs
    with pytest.raises(ValueError, match=r"^batches must yield \(inputs, targets\) pairs$"):
        train.train_steps(_linear(), [torch.randn(4, 4)], 1)

    class Empty:
        """Yields nothing; a loop that kept asking would get an error on the third pass."""

        passes = 0

        def __iter__(self):
            Empty.passes += 1
            if Empty.passes > 2:
                raise RuntimeError("asked again and again")
            return iter(())

    with pytest.raises(ValueError, match=r"^the loader / batches yielded nothing$"):
        train.train_steps(_linear(), Empty(), 1)


def test_train_steps_checks_its_arguments():
    x, y = _data(4)
    for steps in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match=rf"^steps must be a positive int, got {steps!r}$"):
            train.train_steps(_linear(), (x, y), steps)
    with pytest.raises(ValueError, match=r"^lr must be > 0, got 0$"):
        train.train_steps(_linear(), (x, y), 1, lr=0)


def test_train_steps_stops_at_a_nan_loss_before_updating():
    x, y = _data(8)
    bad = x[4:].clone()
    bad[0, 0] = float("nan")
    model = _linear()
    after_one = []
    losses = train.train_steps(model, [(x[:4], y[:4]), (bad, y[4:])], 3,
                               on_step=lambda s, l: after_one.append([p.detach().clone() for p in model.parameters()]))
    assert len(losses) == 2 and math.isfinite(losses[0]) and math.isnan(losses[1])
    assert len(after_one) == 1  # on_step ran after the good step only
    for p, q in zip(model.parameters(), after_one[0]):
        assert torch.equal(p, q)


def test_train_steps_casts_float_inputs_to_the_model_dtype_and_leaves_indices_alone():
    x, y = _data(8)
    model, ref = _linear().double(), _linear().double()
    train.train_steps(model, (x, y), 2)
    _sgd_by_hand(ref, [(x.double(), y)] * 2, [0.1] * 2)
    _assert_same_weights(model, ref)
    torch.manual_seed(0)
    emb = nn.Embedding(5, 3)  # integer inputs are indices: not cast to float
    ids = torch.tensor([0, 1, 2, 3, 4, 1])
    losses = train.train_steps(emb, (ids, torch.tensor([0, 1, 2, 0, 1, 2])), 2)
    assert len(losses) == 2 and losses[1] < losses[0]


def test_a_parameter_a_step_does_not_use_stays_where_it_was():
    """Gradients are reset to None between steps: momentum does not move an unused parameter."""

    class Switch(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, x):
            return self.a(x) if x[0, 0] > 0 else self.b(x)

    x, y = _data(8)
    x[0, 0], x[4, 0] = 1.0, -1.0
    model = Switch()
    kept = []
    train.train_steps(model, [(x[:4], y[:4]), (x[4:], y[4:])], 2,
                      on_step=lambda s, l: kept.append(model.a.weight.detach().clone()))
    assert not torch.equal(kept[0], Switch().a.weight)  # step 1 moved a
    assert torch.equal(model.a.weight, kept[0])  # step 2 used b only


def test_train_steps_channels_last_and_its_progress_bar(capsys):
    x, y = _images(4)
    model = Probe()
    train.train_steps(model, (x, y), 2, channels_last=True, progress=True, desc="demo")
    err = capsys.readouterr().err
    assert all(s["channels_last"] for s in model.seen)
    bar = _bar_lines(err, "demo")
    assert bar and re.search(r"\r {20,}\r?$", err)  # erased when done (leave=False)
    plain = Probe()
    train.train_steps(plain, (x, y), 2)
    assert not any(s["channels_last"] for s in plain.seen)
    assert capsys.readouterr().err == ""  # silent by default
    train.train_steps(Probe(), (x, y), 1, progress=True)
    assert _bar_lines(capsys.readouterr().err, "training")


# ----------------------------------------------------------------------------- make_optimizer
def _steps_with(opt, model, batches):
    for x, y in batches:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


def test_make_optimizer_defaults_and_nesterov():
    x, y = _data(8)
    batches = _batches(x, y, [4, 4])
    model, ref = _linear(), _linear()
    _steps_with(train.make_optimizer(model), model, batches)  # SGD, lr 0.1, momentum 0.9, no weight decay
    _sgd_by_hand(ref, batches, [0.1, 0.1])
    _assert_same_weights(model, ref)
    model, ref = _linear(), _linear()
    _steps_with(train.make_optimizer(model, "sgd", 0.05, 1e-2, 0.8, nesterov=True), model, batches)
    _sgd_by_hand(ref, batches, [0.05, 0.05], momentum=0.8, weight_decay=1e-2, nesterov=True)
    _assert_same_weights(model, ref)
    model, ref = _linear(), _linear()  # nesterov without momentum: plain SGD (torch would refuse it)
    _steps_with(train.make_optimizer(model, "sgd", 0.05, 0.0, 0.0, nesterov=True), model, batches)
    _sgd_by_hand(ref, batches, [0.05, 0.05], momentum=0.0)
    _assert_same_weights(model, ref)


@pytest.mark.parametrize("name", ["adamw", "adam"])
def test_make_optimizer_adam_first_step_by_its_formula(name):
    x, y = _data(8)
    model = _linear()
    before = [p.detach().clone() for p in model.parameters()]
    opt = train.make_optimizer(model, name, lr=0.01, weight_decay=0.1)
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    opt.step()
    for p, p0, g in zip(model.parameters(), before, grads):
        # first Adam step: the bias-corrected moments are g and g^2, so the step is lr * g / (|g| + eps)
        if name == "adamw":  # decoupled weight decay
            want = p0 * (1 - 0.01 * 0.1) - 0.01 * g / (g.abs() + 1e-8)
        else:  # L2 penalty added to the gradient
            g2 = g + 0.1 * p0
            want = p0 - 0.01 * g2 / (g2.abs() + 1e-8)
        torch.testing.assert_close(p.detach(), want, rtol=1e-5, atol=1e-7)


def test_make_optimizer_names_its_choices():
    with pytest.raises(ValueError, match=r"^optimizer must be 'sgd', 'adamw' or 'adam', got 'rmsprop'$"):
        train.make_optimizer(_linear(), "rmsprop")


# ----------------------------------------------------------------------------- throughput and seeding
def test_throughput_times_warmup_then_timed_training_steps(monkeypatch):
    clock = iter([100.0, 102.0])
    monkeypatch.setattr(train, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    model = Probe(classes=10)
    ref = copy.deepcopy(model)
    torch.manual_seed(0)
    rate = train.throughput(model, input_size=(2, 4, 4))
    assert rate == 5 * 256 / 2.0  # 5 timed steps of 256 images in the 2 s between the clock's readings
    assert [s["n"] for s in model.seen] == [256] * 6  # 1 warmup step + 5 timed ones
    assert all(s["training"] and s["grad"] and not s["channels_last"] and s["autocast"] is None for s in model.seen)
    # the same six SGD steps (lr 1e-3, momentum 0.9) on the same random batch
    torch.manual_seed(0)
    x = torch.randn(256, 2, 4, 4)
    y = torch.randint(0, 10, (256,))
    assert y.min() == 0 and y.max() == 9  # all ten classes
    _sgd_by_hand(ref, [(x, y)] * 6, [1e-3] * 6)
    _assert_same_weights(model, ref)


def test_throughput_of_forward_passes_and_of_bf16_channels_last_training():
    model = Probe(classes=10)
    rate = train.throughput(model, input_size=(2, 4, 4), batch_size=4, steps=2, warmup=0, train=False,
                            amp="bf16", channels_last=True)
    assert rate > 0 and len(model.seen) == 2
    assert all(not s["training"] and not s["grad"] and s["channels_last"] and s["autocast"] == torch.bfloat16
               for s in model.seen)
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    trained = Probe(classes=10)
    train.throughput(trained, input_size=(2, 4, 4), batch_size=4, steps=1, warmup=1, amp="bf16", channels_last=True)
    assert len(trained.seen) == 2 and all(s["training"] and s["autocast"] == torch.bfloat16 and s["channels_last"]
                                          for s in trained.seen)


def test_seed_everything_seeds_python_numpy_and_torch():
    seed = 2**32 + 5  # numpy takes seeds below 2**32: it gets 5
    train.seed_everything(seed)
    got = (random.random(), np.random.random(), torch.rand(1))
    assert got[0] == random.Random(seed).random()
    assert got[1] == np.random.RandomState(5).random_sample()
    assert torch.equal(got[2], torch.rand(1, generator=torch.Generator().manual_seed(seed)))
