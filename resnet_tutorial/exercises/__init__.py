""""Your turn" exercises: the learner writes a function, :func:`check` says what is wrong with it.

Every lesson has cells like these::

    def bn_forward_train(x, gamma, beta, eps=1e-5):
        \"\"\"...\"\"\"
        raise NotImplementedError        # the learner replaces this line

    check("bn_forward_train", bn_forward_train)

:func:`check` runs the learner's function on a few *cases* chosen so that each
usual mistake shows (a near-constant channel where ε matters, a batch of 2 where
the unbiased variance differs a lot, odd sizes, stride 3, float64 inputs,
shapes that broadcast...), compares every answer with a reference
implementation, and, when one is wrong, tries to *name* the mistake: each
exercise knows wrong variants of its function (the unbiased variance, ε outside
the square root, ...), and when the learner's answers equal a variant's on every
case the report says so in plain words. Slips any exercise can have (floats
where ints are asked, the wrong dtype, an input changed in place, the wrong
exception, a half-finished function) are named too. If no known mistake fits,
the report shows the first case that differs, with shapes and values.

* An unfinished stub (``raise NotImplementedError``, a ``...`` or ``pass`` body,
  ``return None``) is reported as *not attempted yet*, never as a traceback, so
  "Restart kernel and run all" runs every lesson top to bottom.
* Exceptions, wrong shapes, dtypes and types are reported with the case that
  triggered them; no traceback escapes :func:`check`.
* A check that runs for more than a few seconds says so; a case still running
  after ``time_limit`` seconds (10 by default) is stopped and named
  (:mod:`.time_limit` explains how a Python function is stopped safely).
* :func:`check` leaves the notebook's random streams (torch, numpy, ``random``),
  grad mode and default dtype as they were, so later cells give the same numbers
  whether or not the learner checked anything.
* :func:`hint` reveals an exercise's hints one at a time; the full solution is
  folded below the check cell in the notebook.
* :func:`progress` shows which exercises this learner has passed
  (:mod:`.progress_store`: a small JSON file, written atomically).

The package: the engine is :mod:`.catalogue` (what an exercise is, the
registry), :mod:`.cases` (seeded inputs), :mod:`.running` (calling a function on
a case), :mod:`.time_limit`, :mod:`.values` and :mod:`.comparison` (describing
and comparing answers), :mod:`.diagnosis` (naming mistakes), :mod:`.report`,
:mod:`.hints`, :mod:`.progress_store` and :mod:`.checker`; the catalogue is one
module per lesson, named like the lesson (:mod:`.l02_batch_normalization`, ...).
To add an exercise to a lesson, write its reference and :func:`register` an
:class:`Exercise` in that lesson's module.

This is an *app* package (like ``widgets``): it may import the library and the
lesson modules, and the library never imports it.
"""

from __future__ import annotations

from . import (  # noqa: F401  (each lesson's module registers its exercises, in lesson order)
    l00_start_here,
    l01_vanishing_exploding_gradients,
    l02_batch_normalization,
    l03_residual_block,
    l04_shape_tracing_resnet18,
    l05_add_vs_concat,
    l06_bottlenecks,
    l07_training_fashionmnist,
    l08_degradation,
    l09_torchvision_resnet,
    l10_shattered_gradients,
    l11_paths_and_landscapes,
)
from .catalogue import Case, Exercise, Mistake, Report, get_exercise, list_exercises, register
from .checker import check
from .hints import Hint, hint, reset_hints
from .progress_store import PROGRESS_ENV, ProgressFileWarning, progress, progress_path, reset_progress
from .report import CheckResult
from .running import Outcome, is_stub
from .time_limit import NOTICE_AFTER_S, TIME_LIMIT_S, CaseTimeout
from .values import describe

__all__ = [
    "NOTICE_AFTER_S",
    "PROGRESS_ENV",
    "TIME_LIMIT_S",
    "Case",
    "CaseTimeout",
    "CheckResult",
    "Exercise",
    "Hint",
    "Mistake",
    "Outcome",
    "ProgressFileWarning",
    "Report",
    "check",
    "describe",
    "get_exercise",
    "hint",
    "is_stub",
    "list_exercises",
    "progress",
    "progress_path",
    "register",
    "reset_hints",
    "reset_progress",
]
