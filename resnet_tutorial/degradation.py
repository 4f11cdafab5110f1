"""The degradation problem: plain vs residual networks at growing depth.

He et al. (2016), Fig. 1 and Fig. 6: a deeper *plain* network has a higher
*training* error than a shallower one (so it is not overfitting), while its
residual twin, the same layers plus identity shortcuts, gets better with depth.
:func:`run_degradation` trains ``plainD`` and ``resnetD`` (the 6n+2 CIFAR-style
networks, option A zero-padding shortcuts) on FashionMNIST and records the
per-epoch training and test error of each; the result is cached as a CSV plus
a JSON file with the exact command, settings and recipe
(:mod:`resnet_tutorial.recipes`), so the lesson can show the long run without retraining.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
import torch

from . import results
from .checkpoints import save_checkpoint
from .data import TensorLoader
from .device import get_device, machine_line
from .recipes import Recipe, fit_recipe, make_loaders, recipe_of, resolve_amp
from .recipes import get as get_recipe
from .train import evaluate

#: The small run's cached table, found by :func:`resnet_tutorial.results.locate` (see there for the order).
DEFAULT_PATH = results.path("degradation.csv")
#: The full-scale run (all 60,000 images; `degradation --full`) and its trained nets
#: (``plain56.pt``, ``resnet56.pt``, ... for :func:`~resnet_tutorial.checkpoints.load_model`).
FULL_PATH = results.path("degradation_full.csv")
FULL_WEIGHTS = results.path("degradation_full")
KINDS = ("plain", "resnet")
COLUMNS = ["kind", "depth", "model", "params", "epoch", "train_loss", "train_error", "test_loss",
           "test_error", "lr", "seconds"]


def check_depths(depths: Sequence[int]) -> list[int]:
    """``depths`` as ints, or a ``ValueError`` naming the ones that are not 6n+2 (the CIFAR-style nets' depths)."""
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


@dataclass
class _Run:
    """What one call of :func:`run_degradation` trains and how (shared by every model)."""

    recipe: Recipe
    settings: dict
    train_loader: TensorLoader
    test_loader: TensorLoader
    device: torch.device
    weights_dir: Path | None
    progress: bool
    log: Callable[[str], None]
    on_step: Callable[[str, dict], None] | None = None
    on_epoch_end: Callable[[str, dict], None] | None = None


def run_degradation(
    depths: Sequence[int] = (8, 20, 56),
    recipe: str | Recipe = "degradation-small",
    *,
    kinds: Sequence[str] = KINDS,
    device: str | torch.device | None = None,
    progress: bool = True,
    out: str | os.PathLike | None = None,
    command: str | None = None,
    weights_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
    on_step: Callable[[str, dict], None] | None = None,
    on_epoch_end: Callable[[str, dict], None] | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """Train every ``kind × depth`` by ``recipe`` and return one row per model and epoch.

    Columns: ``kind, depth, model, params, epoch, train_loss, train_error,
    test_loss, test_error, lr, seconds`` (errors in 0..1; training error is
    measured on the fly during each epoch, as in the paper's curves).
    All models see the same subset, the same batches and the same recipe of
    :mod:`resnet_tutorial.recipes`: ``"degradation-small"`` (the cached
    ``results/degradation.csv``: 1,200 images per class, 15 epochs, SGD with
    momentum 0.9 at lr 0.1 and a cosine schedule, random crops + flips) or
    ``"degradation-full"`` (``results/degradation_full.csv``: all images, 12
    epochs, the train command's one-cycle recipe); ``overrides`` replace its
    fields (``epochs=1, per_class=6``). Both train with ``amp="fast"``: bf16
    autocast on CPUs that compute bf16 natively (measured accuracy-neutral
    here), fp32 on other CPUs (emulated bf16 is 5-12x slower there), CUDA's
    autocast on GPUs. With ``out`` the table is written after each model (a
    crash keeps what is done) together with ``<out>.json`` that records the
    settings and the recipe.

    With ``weights_dir`` the run is resumable and keeps the trained nets: each
    model trains with a per-epoch checkpoint in ``weights_dir/checkpoints/`` (a
    killed run continues from its last epoch), a finished model's weights go to
    ``weights_dir/<model>.pt`` (rebuild with
    :func:`~resnet_tutorial.checkpoints.load_model`) together with its error
    on *all* training images in eval mode, and models already finished are
    skipped. Models are trained in the order of ``depths`` (and ``kinds``
    within a depth); a bar over all remaining epochs, weighted by depth,
    estimates the time left.

    ``on_step(model, info)`` and ``on_epoch_end(model, row)`` (live plots:
    lesson 08's :class:`~resnet_tutorial.lessons.l08_degradation.LiveDegradationRun`)
    receive the model's name (``"plain20"``) and what
    :func:`~resnet_tutorial.recipes.fit_recipe` passes to its hooks of the same name.
    """
    depths = check_depths(depths)
    for k in kinds:
        if k not in KINDS:
            raise ValueError(f"kinds must be among {KINDS}, got {k!r}")
    if weights_dir is not None and out is None:
        raise ValueError("weights_dir needs out=PATH too (the table that a resumed run continues)")
    recipe = get_recipe(recipe).replace(**overrides) if overrides else get_recipe(recipe)
    run = _prepare(depths, kinds, recipe, device, progress, weights_dir, log)
    run.on_step, run.on_epoch_end = on_step, on_epoch_end
    plan = [(k, d) for d in depths for k in kinds]  # in the order asked for (cheapest first by default)
    done, meta = _resume(out, run) if run.weights_dir is not None else ({}, {})
    todo = [(k, d) for k, d in plan if f"{k}{d}" not in done]
    clock = _Clock([(f"{k}{d}", d) for k, d in todo], recipe.epochs, progress)
    t_start = time.perf_counter() - meta.get("wall_seconds", 0.0)
    for kind, depth in todo:
        name = f"{kind}{depth}"
        table, summary = _train_one(run, kind, depth, clock)
        done[name] = (table, summary)
        if out is not None:
            _save(_ordered(done, plan), out, run.settings, time.perf_counter() - t_start, command,
                  complete=len(done) == len(plan), models=_summaries(done), recipe=recipe.to_dict())
    clock.close()
    return _ordered(done, plan)


def _prepare(depths, kinds, recipe: Recipe, device, progress, weights_dir, log) -> _Run:
    device = get_device(device)
    # On CPU channels_last + bf16 autocast trains ResNet-20 about 2x faster than fp32 NCHW
    # (benchmarks/throughput.py) at the same test accuracy (measured: 76.0 vs 76.3 % and
    # 78.1 vs 77.5 % after 4 epochs, two seeds), so the recipes use them where bf16 is native.
    train_loader, test_loader = make_loaders(recipe, device)
    r = recipe
    # the same keys and values as the cached runs' JSON (a resumed run must match them)
    settings = {
        "depths": list(depths), "kinds": list(kinds), "epochs": r.epochs, "per_class": r.per_class,
        "test_per_class": r.test_per_class, "seed": r.seed, "batch_size": r.batch_size, "lr": r.lr,
        "optimizer": r.optimizer, "momentum": r.momentum, "nesterov": r.nesterov, "weight_decay": r.weight_decay,
        "schedule": r.schedule, "label_smoothing": r.label_smoothing,
        "augment": f"random crop (pad {r.pad}) + horizontal flip" if r.augment else "none",
        "amp": resolve_amp(r.amp, device), "channels_last": r.channels_last, "device": str(device),
    }
    say = log if log is not None else (lambda text: None)
    if progress and log is not None:
        from tqdm.auto import tqdm

        say = tqdm.write  # lines above the bars instead of through them
    return _Run(recipe, settings, train_loader, test_loader, device, Path(weights_dir) if weights_dir else None,
                progress, say)


def _train_one(run: _Run, kind: str, depth: int, clock: "_Clock") -> tuple[pd.DataFrame, dict]:
    """Train ``kind{depth}`` (resuming from its checkpoint), save its weights: (history rows, summary)."""
    s, name = run.settings, f"{kind}{depth}"
    torch.manual_seed(s["seed"])
    model = build_model(kind, depth)
    checkpoint = run.weights_dir / "checkpoints" / f"{name}.pt" if run.weights_dir else None

    def epoch_done(row: dict) -> None:
        left = clock.step(name, row["epoch"])
        run.log(f"{name} epoch {row['epoch']}/{s['epochs']}: train error {100 * (1 - row['train_acc']):.2f} %, "
                f"test error {100 * (1 - row['test_acc']):.2f} %, {row['seconds']:.0f} s; {left}")
        if run.on_epoch_end is not None:
            run.on_epoch_end(name, dict(row))

    def step_done(info: dict) -> None:
        if run.on_step is not None:
            run.on_step(name, info)

    clock.start(name)
    hist = fit_recipe(run.recipe, model, loaders=(run.train_loader, run.test_loader), device=run.device,
                      progress=run.progress, checkpoint=checkpoint, resume=checkpoint is not None,
                      on_epoch_end=epoch_done, on_step=step_done if run.on_step is not None else None).history
    params = sum(p.numel() for p in model.parameters())
    hist.insert(0, "params", params)
    hist.insert(0, "model", name)
    hist.insert(0, "depth", depth)
    hist.insert(0, "kind", kind)
    hist["train_error"] = 1.0 - hist["train_acc"]
    hist["test_error"] = 1.0 - hist["test_acc"]
    seconds = float(hist["seconds"].sum())
    summary = {"params": params, "epochs": int(hist["epoch"].max()), "train_seconds": round(seconds, 1),
               "images_per_s": round(len(run.train_loader.images) * len(hist) / seconds, 1),
               "test_error": float(hist["test_error"].iloc[-1])}
    if run.weights_dir is not None:
        clean = evaluate(model, _clean_train_loader(run), run.device,
                         amp=run.recipe.amp, channels_last=s["channels_last"])
        summary["train_error_eval"] = 1.0 - clean["acc"]
        save_checkpoint(run.weights_dir / f"{name}.pt", model.float().to(memory_format=torch.contiguous_format),
                        history=hist.to_dict("records"), summary=summary, settings=s,
                        recipe=run.recipe.to_dict())
        run.log(f"{name} done: {summary['train_error_eval'] * 100:.2f} % training error (eval mode, all "
                f"{len(run.train_loader.images)} images), {summary['test_error'] * 100:.2f} % test error")
    return hist[COLUMNS], summary


def _clean_train_loader(run: _Run) -> TensorLoader:
    """The training images without shuffling or augmentation, for the final training error."""
    t = run.train_loader
    return TensorLoader(t.images, t.labels, batch_size=1024, device=run.device)


def _resume(out, run: _Run) -> tuple[dict, dict]:
    """Models already finished by an earlier run with the same settings: ``({name: (rows, summary)}, meta)``."""
    out = Path(out)
    if not out.is_file() or not results.meta_path(out).is_file():
        return {}, {}
    meta = results.read_json(results.meta_path(out))
    changed = {k: (meta["settings"].get(k), v) for k, v in run.settings.items()
               if k not in ("depths", "kinds") and meta["settings"].get(k) != v}
    if changed:
        raise ValueError(
            f"{out} was made with other settings ({', '.join(f'{k}: {a!r} then, {b!r} now' for k, (a, b) in changed.items())}): "
            "pass another --out (and --weights-dir), or delete the old files to start over"
        )
    table = pd.read_csv(out)
    done = {}
    for name, rows in table.groupby("model", sort=False):
        summary = meta.get("models", {}).get(name)
        if summary is not None and (run.weights_dir / f"{name}.pt").is_file():
            done[name] = (rows[COLUMNS].reset_index(drop=True), summary)
    if done:
        run.log(f"resuming: {', '.join(done)} already finished in {out}")
    return done, meta


def _ordered(done: dict, plan: list[tuple[str, int]]) -> pd.DataFrame:
    """The finished models' rows, by depth and then kind (whatever order they were trained in)."""
    names = [f"{k}{d}" for k, d in sorted(plan, key=lambda kd: (kd[1], KINDS.index(kd[0]))) if f"{k}{d}" in done]
    return pd.concat([done[n][0] for n in names], ignore_index=True)


def _summaries(done: dict) -> dict:
    return {name: summary for name, (_, summary) in done.items()}


class _Clock:
    """A bar over every epoch still to train, weighted by depth (a 56-layer epoch costs about
    2.8 times a 20-layer one), whose rate gives the estimate of the time left."""

    def __init__(self, models: list[tuple[str, int]], epochs: int, progress: bool) -> None:
        self.depth = dict(models)
        self.epochs = epochs
        self.total = sum(d for _, d in models) * epochs
        self.done = 0
        self.t0 = time.perf_counter()
        self.bar = None
        self.first_epoch: dict[str, int] = {}
        if progress and self.total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc="all models", unit=" layer-epochs", position=0)

    def start(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix(model=name)

    def step(self, name: str, epoch: int) -> str:
        """Count one finished epoch of ``name``; return the estimate of the time left."""
        self.first_epoch.setdefault(name, epoch)
        if epoch == self.first_epoch[name] and epoch > 1:  # resumed mid-model: those epochs were done before
            self.total -= (epoch - 1) * self.depth[name]
        self.done += self.depth[name]
        if self.bar is not None:
            self.bar.update(self.depth[name])
        rate = (time.perf_counter() - self.t0) / self.done
        return f"about {_duration(rate * (self.total - self.done))} left for all models"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _save(table: pd.DataFrame, out, settings: dict, seconds: float, command: str | None, complete: bool,
          models: dict | None = None, recipe: dict | None = None) -> None:
    meta = {
        "command": command or " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "settings": settings,
        "complete": complete,
        "wall_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": machine_line(),
        "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    if models:
        meta["models"] = models
    if recipe is not None:
        meta["recipe"] = recipe
    results.save_table(table, out, meta)


def load_degradation(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The cached table (the small run, ``degradation.csv``, by default); settings in ``.attrs["meta"]``,
    the name of the recipe that produced it in ``.attrs["recipe"]`` (``"unknown"`` for runs cached
    before recipes were recorded, as the two in ``results/``).

    ``path=None`` looks the cache up with :func:`resnet_tutorial.results.locate`.

    Lessons: 08.
    """
    if path is None:
        path = results.locate("degradation.csv")
    path = Path(path)
    if not path.is_file():
        name = path.name if path.name in results.REBUILD else "degradation.csv"
        raise results.missing(name, path, "no cached degradation results")
    table = results.load_table(path)
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path} is not a degradation table: missing columns {sorted(missing)}")
    floats = ["train_loss", "train_error", "test_loss", "test_error", "lr", "seconds"]
    table[floats] = table[floats].astype(float)  # "0" (a final lr) would read back as int
    table.attrs["recipe"] = recipe_of(table.attrs["meta"])
    return table
