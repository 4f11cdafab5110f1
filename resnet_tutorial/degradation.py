"""The degradation problem: plain vs residual networks at growing depth.

He et al. (2016), Fig. 1 and Fig. 6: a deeper *plain* network has a higher
*training* error than a shallower one (so it is not overfitting), while its
residual twin, the same layers plus identity shortcuts, gets better with depth.
:func:`run_degradation` trains ``plainD`` and ``resnetD`` (the 6n+2 CIFAR-style
networks, option A zero-padding shortcuts) on FashionMNIST and records the
per-epoch training and test error of each; the result is cached as a CSV plus
a JSON file with the exact command and settings, so the lesson can show the
long run without retraining.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from .data import fast_loaders
from .train import fit, get_device

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "results" / "degradation.csv"
KINDS = ("plain", "resnet")
COLUMNS = ["kind", "depth", "model", "params", "epoch", "train_loss", "train_error", "test_loss",
           "test_error", "lr", "seconds"]


def _check_depths(depths: Sequence[int]) -> list[int]:
    depths = [int(d) for d in depths]
    bad = [d for d in depths if d < 8 or (d - 2) % 6]
    if not depths or bad:
        raise ValueError(f"depths must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110), got {bad or depths}")
    return depths


def build_model(kind: str, depth: int, num_classes: int = 10) -> torch.nn.Module:
    """``plain{depth}`` or ``resnet{depth}`` for 1-channel 28×28 images (option A shortcuts)."""
    from .models import create_model

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    # the registry's resnet_cifar / plain_cifar take any 6n+2 depth (resnet20... are fixed names)
    return create_model(f"{kind}_cifar", depth=depth, num_classes=num_classes, in_channels=1)


def run_degradation(
    depths: Sequence[int] = (8, 20, 56),
    epochs: int = 15,
    per_class: int | None = 1200,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    out: str | os.PathLike | None = None,
    *,
    kinds: Sequence[str] = KINDS,
    test_per_class: int | None = 300,
    batch_size: int = 128,
    lr: float = 0.1,
    amp: object = None,
    channels_last: bool | None = None,
    command: str | None = None,
) -> pd.DataFrame:
    """Train every ``kind × depth`` and return one row per model and epoch.

    Columns: ``kind, depth, model, params, epoch, train_loss, train_error,
    test_loss, test_error, lr, seconds`` (errors in 0..1; training error is
    measured on the fly during each epoch, as in the paper's curves).
    All models see the same subset, the same batches and the same recipe:
    SGD, momentum 0.9, lr ``lr`` with a cosine decay, weight decay 5e-4,
    light augmentation (random crop from a 4-pixel padding + flip).
    ``amp=None`` means bf16 autocast on CPU (measured accuracy-neutral here) and
    the automatic choice of :func:`~resnet_tutorial.train.fit` elsewhere.
    With ``out`` the table is written after each model (a crash keeps what is
    done) together with ``<out>.json`` that records the settings.
    """
    depths = _check_depths(depths)
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"kinds must be among {KINDS}, got {k!r}")
    device = get_device(device)
    # On CPU channels_last + bf16 autocast trains ResNet-20 about 2x faster than fp32 NCHW
    # (benchmarks/throughput.py) at the same test accuracy (measured: 76.0 vs 76.3 % and
    # 78.1 vs 77.5 % after 4 epochs, two seeds), so the long run uses them.
    if channels_last is None:
        channels_last = device.type == "cpu"
    if amp is None and device.type == "cpu":
        amp = "bf16"
    train_loader, test_loader = fast_loaders(
        batch_size=batch_size, per_class=per_class, test_per_class=test_per_class,
        device=device, augment=True, seed=seed,
    )
    settings = {
        "depths": depths, "kinds": list(kinds), "epochs": epochs, "per_class": per_class,
        "test_per_class": test_per_class, "seed": seed, "batch_size": batch_size, "lr": lr,
        "optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine",
        "augment": "random crop (pad 4) + horizontal flip", "amp": str(amp),
        "channels_last": channels_last, "device": str(device),
    }
    rows: list[pd.DataFrame] = []
    t_start = time.perf_counter()
    runs = [(k, d) for d in depths for k in kinds]
    if progress:
        from tqdm.auto import tqdm

        runs_iter = tqdm(runs, desc="models", unit="model")
    else:
        runs_iter = runs
    for kind, depth in runs_iter:
        if progress:
            runs_iter.set_postfix(model=f"{kind}{depth}")
        torch.manual_seed(seed)
        model = build_model(kind, depth)
        hist = fit(model, train_loader, test_loader, epochs=epochs, optimizer="sgd", lr=lr,
                   schedule="cosine", device=device, amp=amp, channels_last=channels_last,
                   seed=seed, progress=progress)
        hist.insert(0, "params", sum(p.numel() for p in model.parameters()))
        hist.insert(0, "model", f"{kind}{depth}")
        hist.insert(0, "depth", depth)
        hist.insert(0, "kind", kind)
        hist["train_error"] = 1.0 - hist["train_acc"]
        hist["test_error"] = 1.0 - hist["test_acc"]
        rows.append(hist[COLUMNS])
        table = pd.concat(rows, ignore_index=True)
        if out is not None:
            _save(table, out, settings, time.perf_counter() - t_start, command, complete=False)
    table = pd.concat(rows, ignore_index=True)
    if out is not None:
        _save(table, out, settings, time.perf_counter() - t_start, command, complete=True)
    return table


def _save(table: pd.DataFrame, out, settings: dict, seconds: float, command: str | None, complete: bool) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    table.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, out)
    meta = {
        "command": command or " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "settings": settings,
        "complete": complete,
        "wall_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads",
        "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    meta_path = out.with_suffix(".json")
    tmp = meta_path.with_name(meta_path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, meta_path)


def load_degradation(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The cached table (``results/degradation.csv`` by default); settings in ``.attrs["meta"]``."""
    path = Path(path) if path is not None else DEFAULT_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"no cached degradation results at {path}; create them with "
            f"`python -m resnet_tutorial degradation --out {path}`"
        )
    table = pd.read_csv(path)
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path} is not a degradation table: missing columns {sorted(missing)}")
    floats = ["train_loss", "train_error", "test_loss", "test_error", "lr", "seconds"]
    table[floats] = table[floats].astype(float)  # "0" (a final lr) would read back as int
    meta_path = path.with_suffix(".json")
    table.attrs["meta"] = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return table


def final_errors(table: pd.DataFrame) -> pd.DataFrame:
    """Last-epoch training and test error per model: rows = depth, columns = (error, kind)."""
    last = table[table["epoch"] == table.groupby("model")["epoch"].transform("max")]
    return last.pivot_table(index="depth", columns="kind", values=["train_error", "test_error"])


def plot_degradation(table: pd.DataFrame, depths: Sequence[int] | None = None, kinds: Sequence[str] = KINDS):
    """He et al.'s Fig. 6 layout: one panel per kind, error (%, log) vs epoch; dashed = train, solid = test.

    Deeper networks are drawn darker; ``depths`` selects which ones to show.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, MaxNLocator, NullFormatter

    all_depths = sorted(table["depth"].unique())
    depths = all_depths if depths is None else [d for d in all_depths if d in set(depths)]
    if not depths:
        raise ValueError(f"none of the requested depths is in the table (it has {all_depths})")
    kinds = [k for k in kinds if k in set(table["kind"])]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, kind in zip(axes[0], kinds):
        for i, depth in enumerate(depths):
            color = cmap(0.85 - 0.75 * all_depths.index(depth) / max(len(all_depths) - 1, 1))
            run = table[(table["kind"] == kind) & (table["depth"] == depth)].sort_values("epoch")
            if run.empty:
                continue
            ax.plot(run["epoch"], 100 * run["train_error"], "--", color=color, lw=1.5)
            ax.plot(run["epoch"], 100 * run["test_error"], "-", color=color, lw=2.2, label=f"{kind}-{depth}")
        ax.set_title("plain networks" if kind == "plain" else "residual networks (ResNet)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(title="solid: test, dashed: train", fontsize=9, title_fontsize=9)
    # A log axis keeps both the first epochs (tens of %) and the final gaps (a few tenths) readable;
    # a short run whose errors span less than a factor of 3 reads better on a linear axis.
    shown = table[table["depth"].isin(depths) & table["kind"].isin(kinds)]
    errors = 100 * shown[["train_error", "test_error"]].to_numpy()
    lo, hi = max(errors.min(), 0.1), max(errors.max(), 0.1)
    log = hi / lo >= 3
    for ax in axes[0]:
        if log:
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(FixedLocator([1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100]))
            ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(NullFormatter())
    axes[0, 0].set_ylabel("error (%, log scale)" if log else "error (%)")
    fig.tight_layout()
    return fig


def degradation_explorer(depths: Sequence[int] = (8, 20, 56), path: str | os.PathLike | None = None,
                         show: str = "both"):
    """Explorer for lesson 08: the cached curves for the chosen ``depths``.

    ``show`` is ``"both"``, ``"plain"`` or ``"resnet"`` (which panels). Reads the
    cache on every call (cheap), so it always shows what is on disk.
    """
    kinds = KINDS if show == "both" else (show,)
    if show not in ("both", *KINDS):
        raise ValueError(f"show must be 'both', 'plain' or 'resnet', got {show!r}")
    if not depths:
        raise ValueError("select at least one depth")
    return plot_degradation(load_degradation(path), depths=depths, kinds=kinds)
