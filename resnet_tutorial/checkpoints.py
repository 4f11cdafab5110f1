"""Checkpoints: atomic saves, exact resume, and rebuilding a model from its file.

A checkpoint is one ``torch.save`` dict: ``"model"`` (the state_dict), the
``"model_spec"`` (registry name and constructor arguments, as nanoGPT keeps
``model_args``), and whatever the caller adds (optimizer, scheduler, epoch,
history, random-number-generator states; :func:`~resnet_tutorial.train.fit`
adds its ``"config"`` and the ``"recipe"`` it followed, as nanoGPT keeps its
config). Everything in it loads with ``torch.load(..., weights_only=True)``.

Taught in lesson 07 (save, reload, resume).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .models import create_model
from .results import atomic_path

_PLAIN = (bool, int, float, str, type(None))


def model_spec(model: nn.Module) -> dict | None:
    """``{"name", "kwargs"}`` of a model built by ``create_model``, or ``None``.

    ``None`` also when a constructor argument is not a plain value (a weights
    enum, a module): such a model cannot be rebuilt from a file alone.
    """
    spec = getattr(model, "model_spec", None)
    if spec is None:
        return None
    kwargs = spec["kwargs"]
    if not all(isinstance(v, _PLAIN) or (isinstance(v, (list, tuple)) and all(isinstance(i, _PLAIN) for i in v))
               for v in kwargs.values()):
        return None
    return {"name": spec["name"], "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}}


def rng_state() -> dict:
    """The states of every random generator training touches (weights_only-loadable)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    random.setstate(_tuplify(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    **extra: Any,
) -> Path:
    """Write model (+ optimizer, scheduler, extras) to ``path`` atomically.

    The file is written to a temporary name in the same directory and moved
    into place with ``os.replace`` (:func:`~resnet_tutorial.results.atomic_path`),
    so an interrupted save never leaves a half-written checkpoint behind. A model built by
    :func:`~resnet_tutorial.models.create_model` also leaves its registry name and
    constructor arguments (``"model_spec"``), so :func:`load_model` can rebuild it.

    Lessons: 07.
    """
    path = Path(path)
    state = {"model": model.state_dict(), **extra}
    spec = model_spec(model)
    if spec is not None:
        state["model_spec"] = spec
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    map_location: str | torch.device = "cpu",
) -> dict:
    """Load a checkpoint, restore the given objects from it, and return the whole dict.

    Lessons: 07.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train first (fit(..., checkpoint=path))")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if model is not None:
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise ValueError(
                f"checkpoint {path} does not fit this model (was it saved from another architecture?): {e}"
            ) from e
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    return state


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model a checkpoint was saved from and load its weights (eval mode).

    ``load_model("results/degradation_full/resnet56.pt")`` needs no other
    information: the checkpoint names the registry entry and its arguments.
    The model's ``recipe`` attribute is the recipe the file says it was trained
    with (``Recipe.to_dict()``), or ``None`` for files saved without one;
    :func:`resnet_tutorial.recipes.recipe_of` names it ("unknown" for ``None``).

    Lessons: 11.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train first (fit(..., checkpoint=path))")
    state = torch.load(path, map_location=map_location, weights_only=True)
    spec = state.get("model_spec")
    if spec is None:
        raise ValueError(
            f"checkpoint {path} does not say which model it holds (saved from a model not built "
            "by create_model): build the model yourself and call load_checkpoint(path, model)"
        )
    model = create_model(spec["name"], **spec["kwargs"])
    model.load_state_dict(state["model"])
    model.recipe = state.get("recipe")
    return model.to(map_location).eval()
