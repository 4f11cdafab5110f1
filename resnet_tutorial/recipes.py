"""Training recipes as data: a small, named set, picked by device and CPU kind, and one way to run one.

A :class:`Recipe` is everything that decides a training run besides the
network's code: the model (registry name + arguments), the data (images per
class, batch size, augmentation), the optimizer and schedule, the precision
and the memory layout, and what its benchmark measured with it. Every recipe
the package trains with lives in :data:`RECIPES`:

* ``bf16`` / ``fp32``: the command line's time-to-accuracy recipes (93 % on all
  60,000 images in 6-10 min on 2 cores): ``bf16`` for CPUs that compute
  bfloat16 natively and for GPUs, ``fp32`` (first conv with stride 2) for the
  other CPUs (most laptops: AVX2 only), where the ``bf16`` recipe runs in fp32
  and is 3-4x slower;
* ``lesson``: the ``fp32`` recipe's network (stride-2 stem) with ``amp="fast"``
  on a 20,000-image subset for 5 epochs, lesson 07's full mode (a few minutes);
* ``short``: tiny budgets (an explorer's run of a few seconds);
* ``add-vs-cat``, ``transfer-pretrain``: lessons 05 and 09;
* ``degradation-small`` / ``degradation-full``: lesson 08's cached runs, exactly
  as recorded in ``results/degradation.json`` and ``results/degradation_full.json``.

:func:`pick` chooses a task's recipe for this machine (what
``python -m resnet_tutorial train --recipe auto`` does), :func:`fit_recipe`
builds the loaders and runs :func:`~resnet_tutorial.train.fit` from a recipe
(plus overrides), :func:`estimate_seconds` says how long that takes here before
it starts. A recipe travels with its results (``Recipe.to_dict()`` is saved
in every checkpoint :func:`fit_recipe` writes and in the caches' JSON), so
:func:`recipe_of` can say which recipe produced a file: "unknown" for files
written before recipes were recorded.

``amp`` is spelled as everywhere in the package (:data:`~resnet_tutorial.device.AMP_CHOICES`);
``"fast"`` is the policy: bf16 where the CPU computes it natively, fp32 on other
CPUs, CUDA's autocast on GPUs.

Taught in lesson 07 (training on FashionMNIST).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd
import torch
import torch.nn as nn

from . import device as _device
from .data import TensorLoader, fast_loaders
from .distributed import rank, world_size
from .models import create_model
from .train import FitConfig, evaluate, fit, throughput

#: The machine kinds a recipe is picked for: a CUDA GPU, a CPU that computes bf16
#: natively (AVX512-BF16 / AMX), any other CPU (AVX2 laptops, Apple silicon, ...).
KINDS = ("gpu", "cpu-bf16", "cpu")


@dataclass(frozen=True)
class Recipe:
    """One training recipe: model, data, optimization, precision, and what it measured.

    ``task`` groups the recipes one caller chooses between (``"train"``:
    ``bf16`` or ``fp32``); ``picked_on`` names the machine kinds (:data:`KINDS`)
    :func:`pick` chooses it for. ``per_class`` / ``test_per_class`` are images
    per class (``None``: all 6,000 / 1,000). ``model_kwargs`` go to
    :func:`~resnet_tutorial.models.create_model` with ``model``. ``measured``
    is the figure its benchmark measured, with where to find it. ``amp`` is
    stored by its canonical name.
    """

    name: str
    task: str
    picked_on: tuple[str, ...] = KINDS
    model: str = "resnet20"
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 5e-4
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    augment: bool = False
    pad: int = 4
    resize: int | None = None
    amp: str = "auto"
    channels_last: bool = False
    tta: bool = False
    per_class: int | None = None
    test_per_class: int | None = None
    seed: int = 0
    measured: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "amp", _device.amp_name(self.amp))
        object.__setattr__(self, "picked_on", tuple(self.picked_on))
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        bad = [k for k in self.picked_on if k not in KINDS]
        if bad or not self.picked_on:
            raise ValueError(f"recipe {self.name!r}: picked_on must name some of {KINDS}, got {self.picked_on}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"recipe {self.name!r}: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("per_class", "test_per_class"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"recipe {self.name!r}: {name} must be >= 1 images per class or None (all), got {value}")
        self.fit_config()  # the optimizer, schedule and lr are checked where fit checks them

    def fit_config(self, **options: Any) -> FitConfig:
        """The :class:`~resnet_tutorial.train.FitConfig` of this recipe (``options`` replace fields)."""
        cfg = FitConfig(epochs=self.epochs, optimizer=self.optimizer, lr=self.lr, weight_decay=self.weight_decay,
                        momentum=self.momentum, nesterov=self.nesterov, schedule=self.schedule,
                        label_smoothing=self.label_smoothing, amp=self.amp, channels_last=self.channels_last,
                        tta=self.tta, seed=self.seed)
        return FitConfig.of(cfg, options) if options else cfg

    def replace(self, **overrides: Any) -> "Recipe":
        """This recipe with some fields changed (it keeps its name; :meth:`changes` lists the differences).

        Lessons: 07.
        """
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"a recipe has no field(s) {unknown}; its fields: {', '.join(sorted(fields))}")
        return dataclasses.replace(self, **overrides)

    def changes(self) -> dict[str, Any]:
        """The fields in which this recipe differs from the registered recipe of its name (``{}``: none)."""
        base = RECIPES.get(self.name)
        if base is None:
            return {}
        return {k: v for k, v in _settings(self).items() if _settings(base)[k] != v}

    def describe(self) -> str:
        """One line: the name (with what was changed) and the settings that matter most.

        Lessons: 07.
        """
        model = self.model + "".join(f", {k} {v}" for k, v in self.model_kwargs.items())
        data = "all" if self.per_class is None else f"{10 * self.per_class:,}"
        return (f"recipe {label(self.to_dict())}: {model}, {data} training images, {self.epochs} epoch(s), "
                f"{self.optimizer} lr {self.lr:g}, batch {self.batch_size}, {self.schedule}, "
                f"augment {'on' if self.augment else 'off'}, label smoothing {self.label_smoothing:g}, "
                f"amp {self.amp}{' (' + _device.amp_name(resolve_amp(self.amp)) + ' here)' if self.amp == 'fast' else ''}"
                f"{', channels_last' if self.channels_last else ''}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (JSON and ``torch.load(weights_only=True)`` read it back): every field,
        plus ``"changes"`` from the registered recipe of that name."""
        d = _settings(self)
        d.update(name=self.name, task=self.task, picked_on=list(self.picked_on), measured=self.measured,
                 changes=self.changes())
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Recipe":
        """The recipe that :meth:`to_dict` wrote (unknown keys, such as ``"changes"``, are ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = {"name", "task"} - set(d)
        if missing:
            raise ValueError(f"not a recipe record: it lacks {sorted(missing)}")
        return cls(**{k: v for k, v in d.items() if k in fields})


def _settings(recipe: Recipe) -> dict[str, Any]:
    """The fields that change what is trained (not the name, task, picked_on, measured)."""
    skip = {"name", "task", "picked_on", "measured"}
    out = {}
    for f in dataclasses.fields(recipe):
        if f.name not in skip:
            v = getattr(recipe, f.name)
            out[f.name] = dict(v) if isinstance(v, Mapping) else v
    return out


# --------------------------------------------------------------------------- the recipes
_TRAIN = dict(
    task="train", model="resnet20", epochs=10, batch_size=128, optimizer="sgd", lr=0.2, weight_decay=5e-4,
    momentum=0.9, nesterov=True, schedule="onecycle", label_smoothing=0.1, augment=False, pad=2,
    amp="fast", channels_last=True, tta=False,
)
_DEGRADATION = dict(
    model="resnet_cifar", optimizer="sgd", momentum=0.9, weight_decay=5e-4, batch_size=128, amp="fast",
    channels_last=True, seed=0,
)
RECIPES: dict[str, Recipe] = {r.name: r for r in [
    # benchmarks/time_to_accuracy.py; why these settings: the comment above cli.RECIPES and benchmarks/README.md
    Recipe("bf16", picked_on=("gpu", "cpu-bf16"), **_TRAIN,
           measured="93.66 % test accuracy in 562 s, launch to exit, 2-core AMD EPYC with native bf16 "
                    "(benchmarks/results/time_to_accuracy.json)"),
    Recipe("fp32", picked_on=("cpu",), **{**_TRAIN, "model_kwargs": {"stem_stride": 2}},
           measured="93.07 % test accuracy in 346 s, launch to exit, the same CPU limited to AVX2 "
                    "(benchmarks/results/time_to_accuracy_fp32.json)"),
    # lesson 07's full mode: the fp32 recipe's net (stride-2 stem) in bf16 where native, on a third of the
    # images for half the epochs. The paper's stem with bf16 would take 3x as long per image (measured on one
    # thread of a loaded AMX CPU: 148 against 437 training images/s), too long for a 5-minute lesson.
    Recipe("lesson", picked_on=KINDS, **{**_TRAIN, "task": "lesson", "model_kwargs": {"stem_stride": 2},
                                         "epochs": 5, "per_class": 2000, "test_per_class": None},
           measured="90.39 % test accuracy in 683 s, launch to exit, native bf16 "
                    "(benchmarks/results/time_to_accuracy_lesson.json); 90.08 % test accuracy in 795 s under the "
                    "AVX2 limitation (time_to_accuracy_lesson_fp32.json); both on one torch thread of a 2-core "
                    "Xeon shared with other work (load 10-15): the seconds are upper bounds"),
    # tiny budgets: lesson 07's explorer and train_model
    Recipe("short", task="short", model="resnet20", epochs=1, batch_size=32, optimizer="adamw", lr=4e-3,
           weight_decay=0.05, schedule="cosine", amp="auto", per_class=100,
           measured="62-67 % test accuracy after 1 epoch on 1,000 images, 3 seeds (SGD at lr 0.1: 52 %; "
                    "AdamW at batch 64: 43 %); lesson 07"),
    Recipe("add-vs-cat", task="add-vs-cat", model="resnet_cifar",
           model_kwargs={"depth": 14, "shortcut": "projection", "merge": "add"}, epochs=5, batch_size=64,
           optimizer="sgd", lr=0.1, weight_decay=5e-4, momentum=0.9, schedule="cosine", amp="auto",
           per_class=600, test_per_class=200,
           measured="add 86.8 %, cat 86.4 % test accuracy (means of 3 seeds), 444 s for the 6 runs "
                    "(results/add_vs_cat.json)"),
    # lesson 09's pretrained net: ResNet-20 (stride-2 stem: a quarter of the arithmetic) on the five classes
    # T-shirt/top, Trouser, Pullover, Dress, Coat (all 30,000 training images); the lesson transfers it to the
    # other five. `python -m resnet_tutorial pretrain` writes results/transfer_resnet20.pt.
    Recipe("transfer-pretrain", task="transfer-pretrain", model="resnet20",
           model_kwargs={"num_classes": 5, "stem_stride": 2}, epochs=3, batch_size=128, optimizer="adamw",
           lr=4e-3, weight_decay=0.05, schedule="cosine", amp="fast", per_class=None, test_per_class=None,
           measured="93.44 % test accuracy on the five classes in 251 s, one torch thread of a busy 2-core AVX512 CPU "
                    "with native bf16 (results/transfer_resnet20.pt, its 'transfer' record); lesson 09"),
    Recipe("degradation-small", task="degradation-small", **_DEGRADATION, epochs=15, lr=0.1, schedule="cosine",
           augment=True, pad=4, per_class=1200, test_per_class=300,
           measured="plain-56 trains worse than plain-20 (15 epochs, 12,000 images): 33 min for the six nets "
                    "(results/degradation.json)"),
    Recipe("degradation-full", task="degradation-full", **_DEGRADATION, epochs=12, lr=0.2, nesterov=True,
           schedule="onecycle", label_smoothing=0.1, augment=False, pad=4,
           measured="ResNet-56 1.02 % training error (final weights), 6.27 % test error; plain-56 6.04 % / "
                    "8.04 %; 4.0 h on one core with native bf16 (results/degradation_full.json)"),
]}
#: The tasks and the recipes each chooses between.
TASKS: dict[str, tuple[str, ...]] = {}
for _r in RECIPES.values():
    TASKS[_r.task] = (*TASKS.get(_r.task, ()), _r.name)


# --------------------------------------------------------------------------- choosing
def machine_kind(device: str | torch.device | None = None) -> str:
    """``"gpu"`` (CUDA), ``"cpu-bf16"`` (a CPU with native bf16) or ``"cpu"``: what :func:`pick` chooses by.

    ``device=None`` (or ``"auto"``) is the best device available here.
    """
    if device is None or str(device) == "auto":
        device = _device.get_device()
    if torch.device(device).type == "cuda":
        return "gpu"
    return "cpu-bf16" if _device.native_bf16() else "cpu"


def pick(task: str = "train", device: str | torch.device | None = None) -> Recipe:
    """The recipe of ``task`` for this machine: ``pick("train")`` is ``bf16`` on GPUs and on CPUs
    with native bf16, ``fp32`` on other CPUs (as ``python -m resnet_tutorial train`` chooses).

    Lessons: 07.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)} (recipes: {', '.join(RECIPES)})")
    kind = machine_kind(device)
    for name in TASKS[task]:
        if kind in RECIPES[name].picked_on:
            return RECIPES[name]
    raise ValueError(f"task {task!r} has no recipe for a {kind!r} machine (its recipes: {TASKS[task]})")


def get(recipe: "str | Recipe") -> Recipe:
    """A recipe by name (a :class:`Recipe` is returned as it is).

    Lessons: 07.
    """
    if isinstance(recipe, Recipe):
        return recipe
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; the recipes: {', '.join(RECIPES)}")
    return RECIPES[recipe]


def resolve_amp(amp: Any, device: str | torch.device | None = None) -> str:
    """``amp`` with ``"fast"`` resolved for ``device``: ``"bf16"``, ``"off"`` or ``"auto"`` (GPUs)."""
    name = _device.amp_name(amp)
    if name != "fast":
        return name
    return _device.fastest_amp(torch.device(device) if device is not None else _device.get_device())


def recipe_of(source: Any) -> str:
    """Which recipe produced a file: its name (with what was changed), or ``"unknown"``.

    ``source`` is a checkpoint path (``.pt``), a cached run's table or its JSON
    (``.csv`` / ``.json``: the JSON beside it is read), a model from
    :func:`~resnet_tutorial.checkpoints.load_model`, a checkpoint dict or a
    cache's metadata dict, or ``None``. Files written before recipes were
    recorded say ``"unknown"``; so does a path that does not exist.

    Lessons: 07.
    """
    record: Any = source
    if isinstance(source, nn.Module):
        record = {"recipe": getattr(source, "recipe", None)}
    elif isinstance(source, (str, os.PathLike)):
        record = _read_record(Path(source))
    recipe = record.get("recipe") if isinstance(record, Mapping) else None
    if not isinstance(recipe, Mapping) or "name" not in recipe:
        return "unknown"
    return label(recipe)


def _read_record(path: Path) -> Mapping[str, Any] | None:
    """A checkpoint's dict or a cache's JSON metadata (``None`` when there is neither)."""
    if path.suffix in (".pt", ".pth"):
        return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
    meta = path if path.suffix == ".json" else path.with_suffix(".json")
    if not meta.is_file():
        meta = path / "meta.json"  # a directory of cached tables (lesson 10)
    return json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else None


def label(recipe: Mapping[str, Any]) -> str:
    """``"bf16"``, or ``"bf16 with epochs=1, per_class=10"`` for a changed copy (from ``to_dict()``)."""
    changes = recipe.get("changes") or {}
    return recipe["name"] + (" with " + ", ".join(f"{k}={v}" for k, v in changes.items()) if changes else "")


def table() -> pd.DataFrame:
    """Every recipe, one row each: name, task, picked on, model, the main settings, what it measured."""
    rows = []
    for r in RECIPES.values():
        rows.append({"recipe": r.name, "task": r.task, "picked on": ", ".join(r.picked_on),
                     "model": r.model + "".join(f" {k}={v}" for k, v in r.model_kwargs.items()),
                     "images/class": "all" if r.per_class is None else r.per_class, "epochs": r.epochs,
                     "optimizer": f"{r.optimizer} lr {r.lr:g}", "batch": r.batch_size, "schedule": r.schedule,
                     "amp": r.amp, "measured": r.measured})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- running
@dataclass
class RecipeRun:
    """What :func:`fit_recipe` returns: the trained model, its history and what it was trained with."""

    model: nn.Module
    history: pd.DataFrame
    recipe: Recipe
    train_loader: TensorLoader
    test_loader: TensorLoader
    seconds: float

    def evaluate(self) -> dict:
        """Loss and accuracy on the whole test loader, with test-time flips if the recipe asks for them."""
        return evaluate(self.model, self.test_loader, amp=self.recipe.amp,
                        channels_last=self.recipe.channels_last, tta=self.recipe.tta)


def build_model(recipe: Recipe | str) -> nn.Module:
    """The recipe's network, freshly initialized from its seed (10 classes unless its kwargs say otherwise)."""
    recipe = get(recipe)
    torch.manual_seed(recipe.seed)
    return create_model(recipe.model, **{"num_classes": 10, **recipe.model_kwargs})


def make_loaders(recipe: Recipe | str, device: str | torch.device | None = None, in_channels: int = 1
                 ) -> tuple[TensorLoader, TensorLoader]:
    """The recipe's training and test loaders on ``device``.

    ``batch_size`` is the global batch: under ``torchrun`` each process gets
    ``batch_size / world_size`` images of its own shard, so a recipe means the
    same on one process or several.
    """
    recipe = get(recipe)
    world = world_size()
    if recipe.batch_size % world:
        raise ValueError(f"batch size {recipe.batch_size} is the global batch and must divide evenly over "
                         f"{world} processes: use a multiple of {world}")
    return fast_loaders(batch_size=recipe.batch_size // world, per_class=recipe.per_class,
                        test_per_class=recipe.test_per_class, resize=recipe.resize, device=device,
                        augment=recipe.augment, seed=recipe.seed, in_channels=in_channels, pad=recipe.pad,
                        num_replicas=world, rank=rank())


def _in_channels(model: nn.Module) -> int:
    return next((m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d)), 1)


def fit_recipe(
    recipe: Recipe | str,
    model: nn.Module | None = None,
    /,
    *,
    loaders: tuple[TensorLoader, TensorLoader] | None = None,
    device: str | torch.device | None = None,
    checkpoint: Any = None,
    resume: bool = False,
    progress: bool = True,
    on_epoch_end: Callable[[dict], None] | None = None,
    on_step: Callable[[dict], None] | None = None,
    test_each_epoch: bool = True,
    estimate: Callable[[str], None] | None = None,
    **overrides: Any,
) -> RecipeRun:
    """Train by ``recipe`` (a :class:`Recipe` or a name; ``overrides`` replace its fields): the
    package's one "loaders + fit" sequence.

    ``model`` (positional; a ``model=`` keyword is the recipe's field, the
    registry name) defaults to the recipe's (:func:`build_model`); ``loaders``
    defaults to the recipe's (:func:`make_loaders`, sharded under ``torchrun``).
    ``checkpoint``, ``resume``, ``progress``, ``on_epoch_end`` and ``on_step`` (live plots) go to
    :func:`~resnet_tutorial.train.fit`; every checkpoint also holds the recipe
    (``recipe_of(torch.load(path))`` names it). ``test_each_epoch=False`` skips the
    per-epoch test pass. Per-epoch tests never use test-time flips (half the
    cost); :meth:`RecipeRun.evaluate` applies the recipe's ``tta``. With
    ``estimate`` (for example ``print``) a line with the expected time on this
    machine (:func:`estimate_seconds`) is passed to it before training starts.
    The history's ``attrs["recipe"]`` is ``recipe.to_dict()``.
    """
    recipe = get(recipe).replace(**overrides) if overrides else get(recipe)
    device = _device.get_device(device)
    model = build_model(recipe) if model is None else model
    train_loader, test_loader = loaders if loaders is not None else make_loaders(
        recipe, device, in_channels=_in_channels(model))
    if estimate is not None:
        seconds = estimate_seconds(recipe, len(train_loader.images) * world_size(), device=device, model=model,
                                   test_images=len(test_loader.images) if test_each_epoch else 0)
        estimate(f"{recipe.describe()}; about {_duration(seconds)} on this machine")
    record = recipe.to_dict()
    start = time.perf_counter()
    history = fit(model, train_loader, test_loader if test_each_epoch else None, recipe.fit_config(tta=False),
                  device=device, checkpoint=checkpoint, resume=resume, progress=progress,
                  on_epoch_end=on_epoch_end, on_step=on_step, recipe=record)
    history.attrs["recipe"] = record
    return RecipeRun(model, history, recipe, train_loader, test_loader, time.perf_counter() - start)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def estimate_seconds(
    recipe: Recipe | str,
    n_images: int | None = None,
    epochs: int | None = None,
    device: str | torch.device | None = None,
    *,
    test_images: int | None = None,
    model: nn.Module | None = None,
    steps: int = 2,
    repeats: int = 3,
) -> float:
    """Seconds that ``epochs`` epochs of ``recipe`` on ``n_images`` images take on this machine, measured now.

    Times ``steps`` training steps and one test batch of the recipe's model
    at its batch size, precision and layout (:func:`~resnet_tutorial.train.throughput`,
    on a copy), ``repeats`` times, and scales the median rates (a second or
    two in all): ``epochs x (n_images / train rate + test_images / test rate)``.
    Defaults come from the recipe (its images per class, epochs, test images).
    Data loading is not counted; it is small next to the model on a CPU. On a
    machine shared with other work the estimate is as noisy as the machine.

    Lessons: 07.
    """
    import copy

    recipe = get(recipe)
    device = _device.get_device(device)
    n_images = (10 * recipe.per_class if recipe.per_class else 60_000) if n_images is None else n_images
    test_images = (10 * recipe.test_per_class if recipe.test_per_class else 10_000) if test_images is None else test_images
    epochs = recipe.epochs if epochs is None else epochs
    net = copy.deepcopy(model) if model is not None else build_model(recipe)
    side = recipe.resize or 28
    shape = (_in_channels(net), side, side)
    amp = resolve_amp(recipe.amp, device)
    common = dict(device=device, channels_last=recipe.channels_last, amp=amp)
    # the median of three short timings: one stalled by other work on a shared machine does not decide
    train_rate = statistics.median(throughput(net, shape, recipe.batch_size, steps=steps, warmup=1, **common)
                                   for _ in range(repeats))
    test_batch = min(500, max(recipe.batch_size, 128))
    test_rate = statistics.median(throughput(net, shape, test_batch, steps=1, warmup=1, train=False, **common)
                                  for _ in range(repeats)) if test_images else float("inf")
    return epochs * (n_images / train_rate + test_images / test_rate)
