"""What an exercise is, and the registry that holds all of them.

An :class:`Exercise` is a reference function with the exact signature of the
learner's stub, the :class:`Case` inputs it is checked on, the usual
:class:`Mistake` s it can name, and hints. Each lesson's module in this package
(``l02_batch_normalization.py``, ...) builds its exercises and hands each one to
:func:`register`; :func:`list_exercises` gives them back in lesson order.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class Case:
    """One input the learner's function is tried on.

    ``make()`` returns fresh ``(args, kwargs)`` every time it is called (seeded, so
    every call gives the same values), so a function that changes its inputs in
    place cannot spoil the next run. ``run(fn, *args, **kwargs)``, when given,
    replaces the plain call ``fn(*args, **kwargs)``: it may call ``fn`` twice, or
    turn side effects (a model's weights after a training step) into the value
    that is compared (a :class:`Report`).
    """

    label: str
    make: Callable[[], tuple[tuple, dict]]
    run: Callable[..., Any] | None = None


@dataclass(frozen=True)
class Mistake:
    """A usual mistake, recognised either by value or by a test.

    ``wrong`` is a wrong variant with the exercise's signature: the mistake is
    recognised when the learner's answers equal the variant's on every case.
    When an exercise has a ``family`` (one implementation with switches),
    ``wrong`` may be left out: the variant is the family with this mistake's
    ``name`` switched on, and pairs of such mistakes are recognised too.
    ``detect(got, expected)`` (lists of :class:`~.running.Outcome`, one per case) recognises
    mistakes whose answers cannot be predicted exactly (random weights).
    """

    name: str
    diagnosis: str
    wrong: Callable[..., Any] | None = None
    detect: Callable[[list[Any], list[Any]], bool] | None = None


class Report(dict):
    """What a case's ``run`` measured about a call (its keys are plain descriptions, compared in order)."""


@dataclass
class Exercise:
    """An exercise: its reference, the cases it is checked on, its mistakes and hints.

    ``keeps_inputs``: the function must not change its tensor arguments in place
    (checked on every case; a learner's ``x -= mean`` is then named).
    ``rtol``/``atol``: the tolerance for floating-point answers.
    """

    id: str
    lesson: str
    title: str
    reference: Callable[..., Any]
    cases: list[Case]
    mistakes: list[Mistake] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    family: Callable[..., Any] | None = None
    rtol: float = 1e-4
    atol: float = 1e-6
    keeps_inputs: bool = False

    @property
    def signature(self) -> str:
        """``name(param, ...)`` as the learner's stub declares it."""
        return f"{self.id}{inspect.signature(self.reference)}".replace("'", "")

    def mistake(self, name: str) -> Mistake:
        for m in self.mistakes:
            if m.name == name:
                return m
        raise KeyError(f"exercise {self.id!r} has no mistake {name!r}: {[m.name for m in self.mistakes]}")

    def variant(self, names: Iterable[str]) -> Callable[..., Any]:
        """The wrong variant for one mistake or a combination of family mistakes."""
        names = tuple(names)
        if len(names) == 1 and self.mistake(names[0]).wrong is not None:
            return self.mistake(names[0]).wrong  # type: ignore[return-value]
        if self.family is None:
            raise ValueError(f"exercise {self.id!r}: mistake(s) {names} have no variant")
        return functools.partial(self.family, flags=frozenset(names))


_EXERCISES: dict[str, Exercise] = {}


def register(ex: Exercise) -> Exercise:
    """Add ``ex`` to the catalogue (its id must be new; its lesson is two digits, ``"02"``)."""
    if ex.id in _EXERCISES:
        raise ValueError(f"exercise {ex.id!r} is defined twice")
    if len(ex.lesson) != 2 or not ex.lesson.isdigit():
        raise ValueError(f"exercise {ex.id!r}: lesson must be two digits such as '02', got {ex.lesson!r}")
    names = [m.name for m in ex.mistakes]
    if len(set(names)) != len(names):
        raise ValueError(f"exercise {ex.id!r}: two mistakes share a name: {names}")
    _EXERCISES[ex.id] = ex
    return ex


def list_exercises(lesson: str | int | None = None) -> list[str]:
    """The exercise ids, in lesson order (``lesson=2`` or ``"02"``: only that lesson's)."""
    want = None if lesson is None else f"{int(lesson):02d}"
    ids = [i for i, ex in _EXERCISES.items() if want is None or ex.lesson == want]
    return sorted(ids, key=lambda i: _EXERCISES[i].lesson)  # stable: registration order within a lesson


def get_exercise(exercise_id: str) -> Exercise:
    """The :class:`Exercise` behind an id (its cases, mistakes and hints)."""
    try:
        return _EXERCISES[exercise_id]
    except KeyError:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(_EXERCISES)}") from None


def is_known(exercise_id: str) -> bool:
    """True when ``exercise_id`` names a registered exercise."""
    return exercise_id in _EXERCISES
