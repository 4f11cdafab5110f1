"""``check(exercise_id, fn)``: run the learner's function on every case and say what, if anything, is wrong."""

from __future__ import annotations

import contextlib
import random
import time
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .catalogue import Exercise, get_exercise, is_known, list_exercises
from .comparison import compare_outcomes
from .diagnosis import failure, half_finished, signature_problem, stopped
from .progress_store import record_progress
from .report import CheckResult
from .running import Limits, Outcome, is_stub, known, run_case
from .time_limit import NOTICE_AFTER_S, TIME_LIMIT_S
from .values import describe


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Leave the notebook as it was: torch's, numpy's and Python's random streams, grad mode, default dtype."""
    py_state, np_state, dtype = random.getstate(), np.random.get_state(), torch.get_default_dtype()
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_default_dtype(dtype)


class _Notice:
    """Prints "still running" once, when the whole check has taken more than ``after_s`` seconds."""

    def __init__(self, ex: Exercise, after_s: float | None, limit_s: float | None) -> None:
        self.ex, self.after_s, self.limit_s = ex, after_s, limit_s
        self.start, self.shown, self.index = time.monotonic(), False, 0

    def limits(self, index: int) -> Limits:
        self.index = index
        if self.shown or self.after_s is None:
            return Limits(self.limit_s)
        return Limits(self.limit_s, max(self.after_s - (time.monotonic() - self.start), 0.0), self.show)

    def show(self) -> None:
        self.shown = True
        n = len(self.ex.cases)
        stop = f"; a case still running after {self.limit_s:g} s is stopped" if self.limit_s is not None else ""
        print(f"⏳ {self.ex.id}: still running case {self.index + 1} of {n} ({self.ex.cases[self.index].label}) "
              f"after {time.monotonic() - self.start:.0f} s{stop}.", flush=True)


def _run_all(ex: Exercise, fn: Callable[..., Any], notice: _Notice) -> list[Outcome]:
    """The learner's outcomes, case by case; the run ends at the first case stopped at the time limit."""
    got: list[Outcome] = []
    for index in range(len(ex.cases)):
        got.append(run_case(ex, index, fn, learner=True, limits=notice.limits(index)))
        if got[-1].timed_out:
            break
    return got


def check(exercise_id: str, fn: Callable[..., Any], *, record: bool = True,
          time_limit: float | None = TIME_LIMIT_S) -> CheckResult:
    """Check the learner's ``fn`` for exercise ``exercise_id`` and say what, if anything, is wrong.

    Never raises for anything the learner's code does: stubs are "not attempted",
    exceptions, wrong shapes, dtypes and types are reported with the case that
    triggered them, and a case still running after ``time_limit`` seconds is
    stopped and named (``None``: no limit). A check that takes more than a few
    seconds says so while it runs. A real attempt (passed or not) is counted in
    the progress file unless ``record=False`` (for demonstrations). The notebook's
    random streams (torch, numpy, ``random``), grad mode and default dtype are left
    as they were.
    """
    if not is_known(exercise_id):
        return CheckResult(exercise_id, "unknown exercise",
                           note=f"Known exercises: {', '.join(list_exercises())}. Check the spelling of the id.")
    ex = get_exercise(exercise_id)
    not_yet = CheckResult(ex.id, "not attempted", title=ex.title,
                          note="Write your function in the cell above (replace `raise NotImplementedError`), "
                               f"run that cell, then run this one again. hint({ex.id!r}) gives a hint.")
    if not callable(fn):
        return CheckResult(ex.id, "failed", title=ex.title, got=describe(fn),
                           diagnosis=f"check needs your function itself: check({ex.id!r}, {ex.id}) without "
                                     "parentheses after the function's name.")
    if is_stub(fn):
        return not_yet
    with isolated():
        result = signature_problem(ex, fn)
        if result is None:
            got = _run_all(ex, fn, _Notice(ex, NOTICE_AFTER_S, time_limit))
            if all(g.unfinished for g in got):
                return not_yet
            result = _verdict(ex, got, time_limit)
    if record:
        record_progress(ex.id, result.passed)
    return result


def _verdict(ex: Exercise, got: list[Outcome], time_limit: float | None) -> CheckResult:
    if got[-1].timed_out:
        return stopped(ex, len(got) - 1, time_limit or 0.0)
    if any(g.unfinished for g in got):
        return half_finished(ex, got)
    if all(compare_outcomes(g, known(ex, (), i), ex) is None for i, g in enumerate(got)):
        return CheckResult(ex.id, "passed", title=ex.title, cases=[c.label for c in ex.cases])
    return failure(ex, got)
