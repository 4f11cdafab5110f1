"""Solutions of every "Your turn" exercise as learners write them, right and wrong.

Each lesson's file (named like the lesson) defines functions named like the
exercise, as a learner's cell does, and marks each one::

    @right("the biased variance as the mean of squares")
    def bn_forward_train(x, gamma, beta, eps=1e-5): ...

    @wrong("x.var() with its default, the unbiased variance", mistake="unbiased")
    def bn_forward_train(x, gamma, beta, eps=1e-5): ...

``mistake`` is the name the checker should give the mistake (``None``: it only
has to reject it); ``defect`` tags the variants that stand for a class of
defects found in issue 19 (a case that did not exercise its rule, ...).

The variants are written from the lessons' instructions, stubs and hints, as a
learner would write them, not from the checker's recognisers. They are the
corpus behind ``tests/exercises/test_lNN_*.py`` and ``count_variants.py``. The file
``held_out.py`` is a second batch, written after the recognisers were done and
kept out of their design: its counts measure how well the checker generalizes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

LESSON_MODULES = [
    "l00_start_here",
    "l01_vanishing_exploding_gradients",
    "l02_batch_normalization",
    "l03_residual_block",
    "l04_shape_tracing_resnet18",
    "l05_add_vs_concat",
    "l06_bottlenecks",
    "l07_training_fashionmnist",
    "l08_degradation",
    "l09_torchvision_resnet",
    "l10_shattered_gradients",
    "l11_paths_and_landscapes",
    "held_out",
]


@dataclass(frozen=True)
class Variant:
    """One learner's function for one exercise."""

    exercise: str
    fn: Callable[..., Any]
    correct: bool
    note: str
    mistake: str | None = None
    defect: str | None = None
    held_out: bool = False

    @property
    def id(self) -> str:
        kind = ("right" if self.correct else "wrong") + ("-held-out" if self.held_out else "")
        return f"{self.exercise}:{kind}:{self.note}"


_FOUND: list[Variant] = []


def right(note: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a correct solution (``note``: its style)."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        _FOUND.append(Variant(fn.__name__, fn, True, note, held_out=fn.__module__.endswith(".held_out")))
        return fn

    return mark


def wrong(note: str, mistake: str | None = None, defect: str | None = None
          ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a wrong solution: what the learner did, the mistake's name the checker should give, its defect class."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        _FOUND.append(Variant(fn.__name__, fn, False, note, mistake, defect,
                              held_out=fn.__module__.endswith(".held_out")))
        return fn

    return mark


def load(lesson: str | None = None) -> list[Variant]:
    """Every variant (or one lesson's: ``lesson="02"``), in the order the files define them."""
    from resnet_tutorial.exercises import list_exercises

    for name in LESSON_MODULES:
        importlib.import_module(f"{__name__}.{name}")
    wanted = set(list_exercises(lesson))
    return [v for v in _FOUND if v.exercise in wanted]
