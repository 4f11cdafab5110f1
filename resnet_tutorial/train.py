"""One training loop for every lesson: ``fit``, ``evaluate``, ``predict`` and checkpoints.

``fit`` is deliberately small and explicit (no callbacks framework): a loop
over epochs and batches with a per-step learning-rate schedule, optional mixed
precision, a check that stops on a NaN/Inf loss, and an atomic checkpoint after
every epoch that holds everything needed to resume *exactly* (model, optimizer,
scheduler, history and random-number-generator states).
"""

from __future__ import annotations

import inspect
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from .device import _amp_dtype, _autocast, fastest_amp, get_device  # noqa: F401
from .checkpoints import load_checkpoint, rng_state, save_checkpoint, set_rng_state  # noqa: F401
from .distributed import all_reduce_sum, average_buffers, is_distributed, is_main_process
from .metrics import confusion_matrix  # noqa: F401  (re-exported: part of the train API)

HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"]
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "onecycle", "none")
DEFAULT_LR = {"sgd": 0.1, "adamw": 2e-3}
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.05}


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _set_loader_epoch(loader: Iterable, epoch: int) -> None:
    # TensorLoader (and DistributedSampler-style loaders) derive their shuffle from the epoch.
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)


def _make_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float, momentum: float,
                    nesterov: bool = False):
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=nesterov)
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)


def _make_scheduler(optimizer, name: str, lr: float, total_steps: int):
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(total_steps, 1))
    return None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that a run repeats."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    device: str | torch.device | None = None,
    amp: Any = False,
    channels_last: bool = False,
    tta: bool = False,
) -> dict:
    """Mean cross-entropy ``loss`` and accuracy ``acc`` (0..1) of ``model`` on ``loader``.

    ``tta=True`` (test-time augmentation) averages the predicted probabilities
    of each image and its mirror image (FashionMNIST's classes are symmetric
    under a horizontal flip). Under ``torchrun`` the sums are taken over all
    processes, each evaluating its own shard.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    dtype = _amp_dtype(amp, device)
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    for x, y in loader:
        x, y = _to_device(x, device, channels_last), y.to(device)
        with _autocast(device, dtype):
            out = model(x).float()
            if tta:
                probs = (out.softmax(1) + model(x.flip(3)).float().softmax(1)) / 2
                out = probs.clamp_min(1e-12).log()  # log-probabilities: cross_entropy of the average
        total_loss += nn.functional.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
        n += len(y)
    model.train(was_training)
    total_loss, correct, n = all_reduce_sum(total_loss, correct, n, device=_collective_device(device))
    if n == 0:
        raise ValueError("evaluate got an empty loader")
    return {"loss": total_loss / n, "acc": correct / n}


def _collective_device(device: torch.device) -> torch.device:
    # gloo reduces CPU tensors, nccl CUDA tensors
    return device if device.type == "cuda" else torch.device("cpu")


@torch.no_grad()
def predict(
    model: nn.Module, loader: Iterable, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes and true targets (both int64 on the CPU) for every batch of ``loader``."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds, targets = [], []
    for x, y in loader:
        preds.append(model(x.to(device)).argmax(1).cpu())
        targets.append(y.cpu())
    model.train(was_training)
    return torch.cat(preds), torch.cat(targets).to(torch.int64)


def _progress(iterable, progress: bool, **kw):
    if not progress:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


def fit(
    model: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable | None = None,
    *,
    epochs: int = 1,
    optimizer: str = "sgd",
    lr: float | None = None,
    weight_decay: float | None = None,
    momentum: float = 0.9,
    schedule: str = "cosine",
    label_smoothing: float = 0.0,
    device: str | torch.device | None = None,
    amp: Any = None,
    channels_last: bool = False,
    seed: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    nesterov: bool = False,
    tta: bool = False,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> pd.DataFrame:
    """Train ``model`` for ``epochs`` epochs and return one history row per epoch.

    Columns: ``epoch, train_loss, train_acc, test_loss, test_acc, lr, seconds``
    (accuracies in 0..1, ``lr`` the mean learning rate of the epoch's steps, ``seconds`` of wall
    time for training + evaluation). Defaults: SGD with momentum 0.9, lr 0.1,
    weight decay 5e-4 (AdamW: lr 2e-3, weight decay 0.05) and a cosine decay
    per step to zero. ``amp=None`` uses bf16/fp16 autocast on CUDA only;
    ``amp="bf16"`` opts in on CPU. With ``checkpoint`` a checkpoint is written
    after every epoch; ``resume=True`` continues from it if it exists (``epochs`` is the
    total, so an interrupted ``fit(epochs=10)`` is resumed with the same call).
    A NaN or infinite loss raises ``FloatingPointError`` at once. ``tta=True``
    evaluates with test-time flips (see :func:`evaluate`); ``on_epoch_end(row)`` is
    called with each epoch's history row (e.g. to print it).

    Under ``torchrun`` (a process group is initialized, see
    :mod:`resnet_tutorial.distributed`) the model is wrapped in
    ``DistributedDataParallel``, each process trains on its shard of every batch
    (pass loaders made with ``num_replicas``/``rank``), the history's metrics
    are sums over all processes, BatchNorm statistics are averaged at the end of
    every epoch, and only rank 0 shows progress and writes the checkpoint.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH (the file to resume from)")
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    weight_decay = DEFAULT_WEIGHT_DECAY[optimizer] if weight_decay is None else weight_decay
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr}")
    device = get_device(device)
    dtype = _amp_dtype(amp, device)
    try:
        steps_per_epoch = len(train_loader)  # type: ignore[arg-type]
    except TypeError as e:
        raise ValueError("train_loader must have a length (a DataLoader or TensorLoader)") from e
    if steps_per_epoch == 0:
        raise ValueError("train_loader yields no batches (empty data set or drop_last with a tiny subset)")

    if seed is not None:
        seed_everything(seed)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    distributed = is_distributed()
    main = is_main_process()
    progress = progress and main
    net: nn.Module = model  # what the batches go through: the model, or its DDP wrapper
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        # buffers are averaged once per epoch instead of broadcast from rank 0 at every step
        # (torch >= 2.14 renamed broadcast_buffers to forward_sync_buffers)
        params = inspect.signature(DistributedDataParallel).parameters
        no_sync = {"forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers": False}
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, **no_sync
        )
    opt = _make_optimizer(model, optimizer, lr, weight_decay, momentum, nesterov)
    sched = _make_scheduler(opt, schedule, lr, epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    history: list[dict] = []
    start_epoch = 0
    if resume and Path(checkpoint).is_file():
        # CPU first: RNG states must stay CPU tensors; load_state_dict moves the rest to the device
        state = load_checkpoint(checkpoint, model, opt, sched, map_location="cpu")
        history = list(state.get("history", []))
        start_epoch = int(state["epoch"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])

    epoch_bar = _progress(range(start_epoch, epochs), progress, desc="epochs", unit="epoch",
                          initial=start_epoch, total=epochs)
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        net.train()
        _set_loader_epoch(train_loader, epoch)
        total_loss, correct, n, lr_sum = 0.0, 0, 0, 0.0
        batches = _progress(train_loader, progress, desc=f"epoch {epoch + 1}", leave=False, unit="batch")
        for b, (x, y) in enumerate(batches):
            x, y = _to_device(x, device, channels_last), y.to(device)
            with _autocast(device, dtype):
                out = net(x)
            loss = loss_fn(out.float(), y)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"the training loss became {loss_value} at epoch {epoch + 1}, batch {b + 1}: "
                    f"training diverged. Lower the learning rate (now {opt.param_groups[0]['lr']:.3g}), "
                    f"e.g. lr={lr / 10:g}, or check the inputs for NaN."
                )
            lr_sum += opt.param_groups[0]["lr"]
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            if sched is not None:
                sched.step()
            total_loss += loss_value * len(y)
            correct += (out.argmax(1) == y).sum().item()
            n += len(y)
            if progress and b % 5 == 0:
                batches.set_postfix(loss=f"{loss_value:.3f}")
        total_loss, correct, n = all_reduce_sum(total_loss, correct, n, device=_collective_device(device))
        average_buffers(model)  # every process now holds the same model
        row = {
            "epoch": epoch + 1,
            "train_loss": total_loss / n,
            "train_acc": correct / n,
            "test_loss": float("nan"),
            "test_acc": float("nan"),
            "lr": lr_sum / (b + 1),
        }
        if test_loader is not None:
            res = evaluate(model, test_loader, device, amp=dtype or False, channels_last=channels_last, tta=tta)
            row["test_loss"], row["test_acc"] = res["loss"], res["acc"]
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if on_epoch_end is not None:
            on_epoch_end(dict(row))
        if progress:
            shown = {"loss": f"{row['train_loss']:.3f}"}
            if test_loader is not None:
                shown["test_acc"] = f"{row['test_acc']:.3f}"
            epoch_bar.set_postfix(shown)
        if checkpoint is not None and main:
            extra = {"scaler": scaler.state_dict()} if scaler is not None else {}
            save_checkpoint(checkpoint, model, opt, sched, epoch=epoch + 1, history=history,
                            rng=rng_state(), **extra)
    return pd.DataFrame(history, columns=HISTORY_COLUMNS)


def throughput(
    model: nn.Module,
    input_size: tuple[int, int, int] = (1, 28, 28),
    batch_size: int = 256,
    steps: int = 5,
    warmup: int = 1,
    device: str | torch.device | None = None,
    channels_last: bool = False,
    amp: Any = False,
    train: bool = True,
) -> float:
    """Images per second of training steps (``train=True``) or forward passes, on random data.

    Measures the model alone (no data loading): ``warmup`` untimed steps, then
    ``steps`` timed ones. Use it to compare settings on one machine; absolute
    numbers depend on what else the machine is doing. The model is trained in
    place by the timed SGD steps, so pass a throwaway copy.
    """
    device = get_device(device)
    dtype = _amp_dtype(amp, device)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    x = _to_device(torch.randn(batch_size, *input_size), device, channels_last)
    y = torch.randint(0, 10, (batch_size,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    model.train(train)

    def step() -> None:
        if train:
            with _autocast(device, dtype):
                out = model(x)
            loss = nn.functional.cross_entropy(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad(), _autocast(device, dtype):
                model(x)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- lesson 07 helpers
def train_model(
    model: str | nn.Module = "resnet20",
    epochs: int = 1,
    per_class: int | None = 100,
    test_per_class: int | None = None,
    *,
    batch_size: int = 32,
    optimizer: str = "adamw",
    lr: float | None = 4e-3,
    augment: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    **fit_kw: Any,
) -> tuple[nn.Module, pd.DataFrame]:
    """Build (by registry name) and train a model on a FashionMNIST subset: ``(model, history)``.

    The recipe the command line uses (AdamW, lr 4e-3, batch 32, cosine decay),
    with the fast on-device loaders; the model is evaluated on ``test_per_class``
    images per class each epoch (``None``: all 10,000 test images).
    """
    from .data import fast_loaders
    from .models import create_model

    device = get_device(device)
    name = model if isinstance(model, str) else type(model).__name__
    if isinstance(model, str):
        torch.manual_seed(seed)
        model = create_model(model, num_classes=10)
    in_channels = next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 1)
    train_loader, test_loader = fast_loaders(
        batch_size=batch_size, per_class=per_class, test_per_class=test_per_class, device=device,
        augment=augment, seed=seed, in_channels=in_channels,
    )
    history = fit(model, train_loader, test_loader, epochs=epochs, optimizer=optimizer, lr=lr,
                  device=device, seed=seed, progress=progress, **fit_kw)
    history.attrs["model"] = name
    return model, history


def training_explorer(
    model: str = "resnet20", epochs: int = 2, per_class: int = 100, test_per_class: int = 100,
    progress: bool = False,
):
    """Explorer for lesson 07: train ``model`` on ``per_class`` images per class, plot the curves."""
    from .plots import plot_history

    _, history = train_model(model, epochs, per_class, test_per_class, progress=progress)
    last = history.iloc[-1]
    return plot_history(
        {model: history},
        title=f"{model}: {10 * per_class} training images, {epochs} epoch(s): "
        f"test accuracy {100 * last['test_acc']:.1f} % on {10 * test_per_class} images",
    )


DEFAULT_THROUGHPUT_CONFIGS: tuple[tuple[str, int], ...] = (
    ("resnet20", 28),
    ("post_fashion_resnet18", 96),
    ("post_fashion_resnet18", 224),
)


def throughput_table(
    configs: Iterable[tuple[str, int]] = DEFAULT_THROUGHPUT_CONFIGS,
    batch_size: int = 32,
    steps: int = 2,
    device: str | torch.device | None = "cpu",
    channels_last: bool = False,
    amp: Any = False,
    train_images: int = 60_000,
) -> pd.DataFrame:
    """Training speed of ``(model name, image side)`` pairs and what one epoch would cost.

    Columns: ``model``, ``input`` (side in pixels), ``params``, ``images_per_s``,
    ``epoch_minutes`` (``train_images`` images at that speed), ``relative``
    (cost of one image relative to the first row).
    """
    from .models import create_model

    rows = []
    for name, side in configs:
        torch.manual_seed(0)
        model = create_model(name, num_classes=10)
        ch = next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 1)
        rate = throughput(model, (ch, side, side), batch_size, steps=steps, device=device,
                          channels_last=channels_last, amp=amp)
        rows.append({"model": name, "input": side, "params": sum(p.numel() for p in model.parameters()),
                     "images_per_s": rate, "epoch_minutes": train_images / rate / 60})
    table = pd.DataFrame(rows)
    table["relative"] = table["images_per_s"].iloc[0] / table["images_per_s"]
    return table
