"""Training: ``fit`` (epochs, for real runs), ``train_steps`` (a few steps, for demos), ``evaluate``, ``predict``.

There is one training step in the package, :func:`_step` (forward under
autocast, loss, a NaN/Inf check, backward, optimizer step), and two loops
around it:

* :func:`fit` trains for epochs, nanoGPT-style readable in one sitting: a
  :class:`FitConfig` says what to do, :func:`_setup` builds optimizer,
  schedule and (under ``torchrun``) the DDP wrapper, :func:`_train_epoch` runs
  one epoch, and an atomic checkpoint after every epoch holds everything
  needed to resume *exactly* (model, optimizer, scheduler, history, RNG states);
* :func:`train_steps` runs a given number of steps on a stream of batches and
  returns the losses: the lessons' demos (BN on/off curves, update ratios,
  train/eval pitfalls) and the throughput benchmark use it.

Taught in lesson 07 (training on FashionMNIST).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pandas as pd
import torch
import torch.nn as nn

from .checkpoints import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .device import amp_name, autocast, autocast_dtype, get_device
from .distributed import all_reduce_sum, average_buffers, is_distributed, is_main_process
from .modes import frozen

HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"]
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "onecycle", "none")
#: fit's defaults when no lr / weight decay is given (the train command's recipe has its own, measured).
DEFAULT_LR = {"sgd": 0.1, "adamw": 2e-3}
DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.05}


@dataclass
class FitConfig:
    """What :func:`fit` does: the recipe, in one object (every field has a default).

    ``lr`` / ``weight_decay`` ``None`` take :data:`DEFAULT_LR` /
    :data:`DEFAULT_WEIGHT_DECAY` of the optimizer. ``amp`` uses the vocabulary
    of :mod:`resnet_tutorial.device` and is stored by its canonical name; the
    default ``"auto"`` is autocast on CUDA GPUs and full fp32 on CPUs (``"fast"``
    adds bf16 on CPUs that compute it natively). ``nesterov`` applies to SGD;
    ``tta`` evaluates with test-time flips. The named, measured recipes that
    fill these fields are in :mod:`resnet_tutorial.recipes`.
    """

    epochs: int = 1
    optimizer: str = "sgd"
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    amp: str = "auto"
    channels_last: bool = False
    tta: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        self.amp = amp_name(self.amp)
        self.lr = DEFAULT_LR[self.optimizer] if self.lr is None else self.lr
        self.weight_decay = DEFAULT_WEIGHT_DECAY[self.optimizer] if self.weight_decay is None else self.weight_decay
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")

    @classmethod
    def of(cls, config: "FitConfig | None", options: dict[str, Any]) -> "FitConfig":
        """``config`` (or the defaults) with ``options`` replacing fields; unknown names are an error."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise ValueError(f"fit got unknown option(s) {unknown}; FitConfig has: {', '.join(sorted(fields))}")
        base = dataclasses.asdict(config) if config is not None else {}
        return cls(**{**base, **options})


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that a run repeats."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(model: nn.Module, name: str = "sgd", lr: float = 0.1, weight_decay: float = 0.0,
                   momentum: float = 0.9, nesterov: bool = False) -> torch.optim.Optimizer:
    """``"sgd"`` (with ``momentum``; 0 = plain SGD), ``"adamw"`` or ``"adam"`` over the trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=nesterov and momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be 'sgd', 'adamw' or 'adam', got {name!r}")


def _make_scheduler(optimizer, name: str, lr: float, total_steps: int):
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(total_steps, 1))
    return None


def _step(net: nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor,
          device: torch.device, dtype: torch.dtype | None, scaler: Any = None) -> tuple[float, torch.Tensor]:
    """One optimizer step on ``(x, y)``: ``(loss value, logits)``; no step when the loss is NaN/Inf."""
    with autocast(device, dtype):
        out = net(x)
    loss = loss_fn(out.float(), y)
    value = loss.item()
    if not math.isfinite(value):
        return value, out
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    return value, out


def _cycle(batches: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless ``(x, y)`` pairs from a loader, a list of pairs, or one pair."""
    if isinstance(batches, tuple) and len(batches) == 2 and isinstance(batches[0], torch.Tensor):
        batches = [batches]
    while True:
        n = 0
        for batch in batches:
            if not (isinstance(batch, (tuple, list)) and len(batch) >= 2):
                raise ValueError("batches must yield (inputs, targets) pairs")
            n += 1
            yield batch[0], batch[1]
        if n == 0:
            raise ValueError("the loader / batches yielded nothing")


def train_steps(
    model: nn.Module,
    batches: Any,
    steps: int,
    *,
    optimizer: str | torch.optim.Optimizer = "sgd",
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    amp: Any = "off",
    channels_last: bool = False,
    on_step: Callable[[int, float], None] | None = None,
    progress: bool = False,
    desc: str = "training",
) -> list[float]:
    """Train ``model`` in place for ``steps`` optimizer steps; return the loss of each step.

    ``batches`` is a loader, a list of ``(x, y)`` pairs or one pair, cycled as
    often as needed. ``optimizer`` is a name for :func:`make_optimizer` (or an
    optimizer you built). ``on_step(step, loss)`` runs after each update (step
    1 = after the first), with the gradients still on the parameters. A NaN or
    infinite loss stops training before that update; it is the last value of
    the returned list, so ``len(losses) < steps`` or ``not isfinite(losses[-1])``
    tells that the run diverged.

    Lessons: 09.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    from tqdm.auto import tqdm

    p = next(model.parameters())
    device = p.device
    opt = optimizer if isinstance(optimizer, torch.optim.Optimizer) else make_optimizer(
        model, optimizer, lr, weight_decay, momentum)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    dtype = autocast_dtype(amp, device)
    stream = _cycle(batches)
    model.train()
    losses: list[float] = []
    for step in tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False):
        x, y = next(stream)
        x = _to_device(x, device, channels_last)
        x = x.to(p.dtype) if x.is_floating_point() else x
        value, _ = _step(model, opt, loss_fn, x, y.to(device), device, dtype)
        losses.append(value)
        if not math.isfinite(value):
            break
        if on_step is not None:
            on_step(step, value)
    return losses


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    device: str | torch.device | None = None,
    amp: Any = "off",
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
    dtype = autocast_dtype(amp, device)
    total_loss, correct, n = 0.0, 0, 0
    with frozen(model):  # eval mode, then every module's own mode back (a frozen BN stays frozen)
        for x, y in loader:
            x, y = _to_device(x, device, channels_last), y.to(device)
            with autocast(device, dtype):
                out = model(x).float()
                if tta:
                    probs = (out.softmax(1) + model(x.flip(3)).float().softmax(1)) / 2
                    out = probs.clamp_min(1e-12).log()  # log-probabilities: cross_entropy of the average
            total_loss += nn.functional.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            n += len(y)
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
    """Predicted classes and true targets (both int64 on the CPU) for every batch of ``loader``.

    Lessons: 07.
    """
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


@dataclass
class _Run:
    """Everything one :func:`fit` call trains with (built by :func:`_setup`)."""

    model: nn.Module
    net: nn.Module  # what the batches go through: the model, or its DDP wrapper
    opt: torch.optim.Optimizer
    sched: Any
    scaler: Any
    loss_fn: nn.Module
    dtype: torch.dtype | None
    device: torch.device
    cfg: FitConfig
    main: bool


def _setup(model: nn.Module, steps_per_epoch: int, cfg: FitConfig, device: torch.device) -> _Run:
    if cfg.seed is not None:
        seed_everything(cfg.seed)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    net: nn.Module = model
    if is_distributed():
        from torch.nn.parallel import DistributedDataParallel

        # buffers are averaged once per epoch instead of broadcast from rank 0 at every step
        # (torch >= 2.14 renamed broadcast_buffers to forward_sync_buffers)
        params = inspect.signature(DistributedDataParallel).parameters
        no_sync = {"forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers": False}
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, **no_sync
        )
    opt = make_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum, cfg.nesterov)
    dtype = autocast_dtype(cfg.amp, device)
    return _Run(
        model=model, net=net, opt=opt, sched=_make_scheduler(opt, cfg.schedule, cfg.lr, cfg.epochs * steps_per_epoch),
        scaler=torch.amp.GradScaler("cuda") if dtype == torch.float16 else None,
        loss_fn=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), dtype=dtype, device=device, cfg=cfg,
        main=is_main_process(),
    )


def _resume(run: _Run, checkpoint: Path) -> tuple[list[dict], int]:
    """Restore model, optimizer, schedule, scaler and RNGs: ``(history so far, epochs done)``."""
    # CPU first: RNG states must stay CPU tensors; load_state_dict moves the rest to the device
    state = load_checkpoint(checkpoint, run.model, run.opt, run.sched, map_location="cpu")
    if run.scaler is not None and "scaler" in state:
        run.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return list(state.get("history", [])), int(state["epoch"])


def _train_epoch(run: _Run, loader: Iterable, epoch: int, progress: bool,
                 on_step: Callable[[dict], None] | None = None) -> dict:
    """One pass over ``loader``: the epoch's mean loss, accuracy and learning rate (summed over processes)."""
    run.net.train()
    if hasattr(loader, "set_epoch"):  # TensorLoader / DistributedSampler: shuffle from the epoch
        loader.set_epoch(epoch)
    total_loss, correct, n, lr_sum = 0.0, 0, 0, 0.0
    batches = _progress(loader, progress, desc=f"epoch {epoch + 1}", leave=False, unit="batch")
    for b, (x, y) in enumerate(batches):
        x, y = _to_device(x, run.device, run.cfg.channels_last), y.to(run.device)
        lr = run.opt.param_groups[0]["lr"]
        loss, out = _step(run.net, run.opt, run.loss_fn, x, y, run.device, run.dtype, run.scaler)
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"the training loss became {loss} at epoch {epoch + 1}, batch {b + 1}: "
                f"training diverged. Lower the learning rate (now {lr:.3g}), "
                f"e.g. lr={run.cfg.lr / 10:g}, or check the inputs for NaN."
            )
        if run.sched is not None:
            run.sched.step()
        lr_sum += lr
        total_loss += loss * len(y)
        correct += (out.argmax(1) == y).sum().item()
        n += len(y)
        if on_step is not None:
            on_step({"epoch": epoch + 1, "batch": b + 1, "loss": loss, "lr": lr})
        if progress and b % 5 == 0:
            batches.set_postfix(loss=f"{loss:.3f}")
    total_loss, correct, n = all_reduce_sum(total_loss, correct, n, device=_collective_device(run.device))
    average_buffers(run.model)  # every process now holds the same model
    return {"train_loss": total_loss / n, "train_acc": correct / n, "lr": lr_sum / (b + 1)}


def fit(
    model: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable | None = None,
    config: FitConfig | None = None,
    *,
    device: str | torch.device | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch_end: Callable[[dict], None] | None = None,
    on_step: Callable[[dict], None] | None = None,
    recipe: dict | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Train ``model`` for ``epochs`` epochs and return one history row per epoch.

    The recipe is a :class:`FitConfig`, given whole (``config=``) or field by
    field (``fit(model, train, test, epochs=5, lr=0.05)``); defaults: SGD with
    momentum 0.9, lr 0.1, weight decay 5e-4 (AdamW: lr 2e-3, weight decay 0.05)
    and a cosine decay per step to zero. Columns: ``epoch, train_loss,
    train_acc, test_loss, test_acc, lr, seconds`` (accuracies in 0..1, ``lr``
    the mean learning rate of the epoch's steps, ``seconds`` of wall time for
    training + evaluation). With ``checkpoint`` a checkpoint is written after
    every epoch; ``resume=True`` continues from it if it exists (``epochs`` is
    the total, so an interrupted ``fit(epochs=10)`` is resumed with the same
    call). A NaN or infinite loss raises ``FloatingPointError`` at once.
    ``on_epoch_end(row)`` is called with each epoch's history row, ``on_step(info)``
    after every optimizer step with ``{"epoch", "batch", "loss", "lr"}`` (live
    plots; an exception it raises, e.g. a Stop button's, ends training there).
    Every checkpoint also holds the ``config`` (the :class:`FitConfig` as a dict) and,
    if given, the ``recipe`` (``Recipe.to_dict()`` of :mod:`resnet_tutorial.recipes`)
    the run follows, as nanoGPT keeps its config with the weights.

    Under ``torchrun`` (a process group is initialized, see
    :mod:`resnet_tutorial.distributed`) the model is wrapped in
    ``DistributedDataParallel``, each process trains on its shard of every batch
    (pass loaders made with ``num_replicas``/``rank``), the history's metrics
    are sums over all processes, BatchNorm statistics are averaged at the end of
    every epoch, and only rank 0 shows progress and writes the checkpoint.

    Lessons: 07.
    """
    cfg = FitConfig.of(config, options)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH (the file to resume from)")
    try:
        steps_per_epoch = len(train_loader)  # type: ignore[arg-type]
    except TypeError as e:
        raise ValueError("train_loader must have a length (a DataLoader or TensorLoader)") from e
    if steps_per_epoch == 0:
        raise ValueError("train_loader yields no batches (empty data set or drop_last with a tiny subset)")
    run = _setup(model, steps_per_epoch, cfg, get_device(device))
    progress = progress and run.main
    history, start = _resume(run, Path(checkpoint)) if resume and Path(checkpoint).is_file() else ([], 0)

    epoch_bar = _progress(range(start, cfg.epochs), progress, desc="epochs", unit="epoch",
                          initial=start, total=cfg.epochs)
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        row = {"epoch": epoch + 1, **_train_epoch(run, train_loader, epoch, progress, on_step),
               "test_loss": float("nan"), "test_acc": float("nan")}
        if test_loader is not None:
            res = evaluate(model, test_loader, run.device, amp=cfg.amp, channels_last=cfg.channels_last, tta=cfg.tta)
            row["test_loss"], row["test_acc"] = res["loss"], res["acc"]
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if on_epoch_end is not None:
            on_epoch_end(dict(row))
        if progress:
            epoch_bar.set_postfix({"loss": f"{row['train_loss']:.3f}",
                                   **({"test_acc": f"{row['test_acc']:.3f}"} if test_loader is not None else {})})
        if checkpoint is not None and run.main:
            extra = {"scaler": run.scaler.state_dict()} if run.scaler is not None else {}
            extra.update(config=dataclasses.asdict(cfg), **({"recipe": recipe} if recipe is not None else {}))
            save_checkpoint(checkpoint, model, run.opt, run.sched, epoch=epoch + 1, history=history,
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
    amp: Any = "off",
    train: bool = True,
) -> float:
    """Images per second of training steps (``train=True``) or forward passes, on random data.

    Measures the model alone (no data loading): ``warmup`` untimed steps, then
    ``steps`` timed ones. Use it to compare settings on one machine; absolute
    numbers depend on what else the machine is doing. The model is trained in
    place by the timed SGD steps, so pass a throwaway copy.
    """
    device = get_device(device)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    x = _to_device(torch.randn(batch_size, *input_size), device, channels_last)
    y = torch.randint(0, 10, (batch_size,), device=device)
    opt = make_optimizer(model, "sgd", lr=1e-3)

    def run(n: int) -> None:
        if train:
            train_steps(model, (x, y), n, optimizer=opt, amp=amp, channels_last=channels_last)
        else:
            model.eval()
            with torch.no_grad(), autocast(device, autocast_dtype(amp, device)):
                for _ in range(n):
                    model(x)

    if warmup:
        run(warmup)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    run(steps)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0)
