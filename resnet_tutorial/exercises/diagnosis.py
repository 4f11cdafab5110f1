"""Naming what is wrong with a learner's function, and the report that says so.

Three kinds of names, tried in this order:

* the exercise's own mistakes (:class:`~.catalogue.Mistake`): a wrong variant
  (or a pair of family switches) whose answers equal the learner's on every case,
  first exactly, then forgiving a dtype or number-type slip on top; or a detector;
* slips any exercise can have: the right numbers as floats where ints are asked
  (``float_for_int``), a tensor where a number is asked (``tensor_for_number``),
  the wrong dtype (``wrong_dtype``), the right inputs refused with the wrong
  exception (``wrong_exception``), the right words spelled differently
  (``spelling``), no ``return`` (``no_return``);
* what the run itself showed: a function that raises ``NotImplementedError`` on
  some cases only (``half_finished``), one stopped at the time limit
  (``too_slow``), one whose parameters differ from the stub's (``signature``),
  and one that changes its inputs in place (``mutated_input``, named alongside
  any other mistake).
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any, Callable

import torch

from .catalogue import Exercise, Mistake
from .comparison import Diff, compare_outcomes
from .report import CheckResult
from .running import Outcome, known
from .values import brief, describe, dtype_text

NOTE = "Stuck? hint({id!r}) shows a hint; the solution is folded below this cell."


def _candidates(ex: Exercise) -> list[tuple[str, ...]]:
    """Mistake combinations to try: every single mistake with a variant, then pairs of family mistakes."""
    singles = [(m.name,) for m in ex.mistakes if m.wrong is not None or (ex.family is not None and m.detect is None)]
    flags = [m.name for m in ex.mistakes if m.wrong is None and m.detect is None and ex.family is not None]
    return singles + list(itertools.combinations(flags, 2))


def recognise(ex: Exercise, got: list[Outcome]) -> tuple[list[Mistake], bool]:
    """The exercise's mistakes whose variant gives the learner's outcomes on every case, and whether that
    needed a lenient comparison (the learner's answer also has a dtype or type slip)."""
    n = len(ex.cases)
    expected = [known(ex, (), i) for i in range(n)]
    for lenient in (False, True):
        for names in _candidates(ex):
            outcomes = [known(ex, names, i) for i in range(n)]
            if all(compare_outcomes(g, o, ex, lenient, inputs=False) is None for g, o in zip(got, outcomes)) and \
                    any(compare_outcomes(o, e, ex, lenient) is not None for o, e in zip(outcomes, expected)):
                return [ex.mistake(m) for m in names], lenient
    found = []
    for m in ex.mistakes:
        if m.detect is not None:
            try:
                if m.detect(got, expected):
                    found.append(m)
            except Exception:  # a detector must never turn a report into a traceback
                continue
    return found, False


# --------------------------------------------------------------------------- slips any exercise can have
def _slip(ex: Exercise, got: list[Outcome], expected: list[Outcome], diffs: list[Diff | None]) -> Mistake | None:
    """A type or dtype slip: the answers are right once the type is forgiven."""
    if not all(compare_outcomes(g, e, ex, lenient=True, inputs=False) is None for g, e in zip(got, expected)):
        return None
    index = next(i for i, d in enumerate(diffs) if d is not None)
    d = diffs[index]
    if isinstance(d.got, torch.Tensor) and not isinstance(d.expected, torch.Tensor):
        return Mistake("tensor_for_number", f"The numbers are right, but they are tensors ({describe(d.got)}) where "
                                            "the exercise asks for plain Python numbers: use .item() (or float(...)) "
                                            "on a one-element tensor.")
    if isinstance(d.got, float) and isinstance(d.expected, int):
        return Mistake("float_for_int", f"The numbers are right, but they are floats ({describe(d.got)}) where the "
                                        "exercise asks for ints. / always gives a float in Python 3: use // (floor "
                                        "division) or int(...), or math functions that return ints (math.comb).")
    if isinstance(d.got, torch.Tensor) and isinstance(d.expected, torch.Tensor):
        return Mistake("wrong_dtype", "The values are right but the dtype is not: " + dtype_advice(ex, index, d))
    return None


def dtype_advice(ex: Exercise, index: int, d: Diff) -> str:
    """What to do about a tensor of the wrong dtype, depending on the dtypes the case passes in."""
    got, exp = dtype_text(d.got.dtype), dtype_text(d.expected.dtype)
    args, kwargs = ex.cases[index].make()
    given = {dtype_text(v.dtype) for v in [*args, *kwargs.values()] if isinstance(v, torch.Tensor)}
    if exp in given:
        return (f"{got} instead of {exp}, the dtype of the input. Compute in the input's dtype: create new tensors "
                "with x.new_zeros(...), torch.zeros_like(x) or dtype=x.dtype, and do not convert to another dtype.")
    inputs = f" (the input here is {', '.join(sorted(given))})" if given else ""
    return (f"{got} instead of {exp}{inputs}. The docstring asks for {exp}: convert to it, e.g. .float() for float32, "
            "and avoid .double() or torch.float64 in the answer.")


def _wrong_exception(ex: Exercise, got: list[Outcome], expected: list[Outcome]) -> Mistake | None:
    """The right inputs refused, but with another exception than the one asked for."""
    pairs = list(zip(got, expected))
    refused = [(g, e) for g, e in pairs if e.error is not None]
    if not refused or any(g.error is None or g.timed_out for g, _ in refused):
        return None
    if any(compare_outcomes(g, e, ex) is not None for g, e in pairs if e.error is None):
        return None
    bad = [(g, e) for g, e in refused if not isinstance(g.error, type(e.error))]
    if not bad:
        return None
    g, e = bad[0]
    asked, raised = type(e.error).__name__, type(g.error).__name__
    how = " (an assert statement raises AssertionError)" if isinstance(g.error, AssertionError) else ""
    return Mistake("wrong_exception", f"Your function refuses exactly the right inputs, but with {raised} where the "
                                      f"exercise asks for {asked}{how}: raise {asked}(\"...\") with a message that "
                                      "says what is wrong.")


def _spelling(got: list[Outcome], expected: list[Outcome]) -> Mistake | None:
    values = [(g.value, e.value) for g, e in zip(got, expected)]
    if not all(isinstance(g, str) and isinstance(e, str) for g, e in values):
        return None
    if all(" ".join(g.lower().split()) == e.lower() for g, e in values):
        words = sorted({e for _, e in values})
        return Mistake("spelling", f"The right answers, spelled differently: return exactly the words of the "
                                   f"docstring, {', '.join(repr(w) for w in words)} (lower case, single spaces).")
    return None


def _mutated(got: list[Outcome]) -> Mistake | None:
    names = sorted({n for g in got for n in g.changed_inputs})
    if not names:
        return None
    return Mistake("mutated_input", f"Your function changes its input {', '.join(names)} in place (an in-place "
                                    "operation such as x -= ..., x /= ..., x.sub_(...), or x[...] = ...), so the "
                                    "caller's tensor is no longer what it was. Compute new tensors instead: "
                                    "y = x - mean, or work on x.clone().")


# --------------------------------------------------------------------------- reports
def tried(ex: Exercise, index: int) -> str:
    """``case 2 of 5, <label>: name(arg=..., ...)``."""
    case = ex.cases[index]
    args, kwargs = case.make()
    try:
        bound = inspect.signature(ex.reference).bind(*args, **kwargs)
        call = ", ".join(f"{k}={brief(v)}" for k, v in bound.arguments.items())
    except TypeError:
        call = ", ".join(brief(a) for a in args)
    return f"case {index + 1} of {len(ex.cases)}, {case.label}: {ex.id}({call})"


def signature_problem(ex: Exercise, fn: Callable[..., Any]) -> CheckResult | None:
    """A report when some case cannot even call ``fn`` (a renamed parameter, a lost default, ...)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    for index, case in enumerate(ex.cases):
        args, kwargs = case.make()
        try:
            sig.bind(*args, **kwargs)
        except TypeError as err:
            return CheckResult(ex.id, "failed", title=ex.title, tried=tried(ex, index), mistakes=["signature"],
                               diagnosis=f"Your function is declared as {getattr(fn, '__name__', 'f')}{sig}, but the "
                                         f"exercise calls it as {ex.signature}, and this case cannot call it ({err}). "
                                         "Keep the parameters of the stub: their names, order and defaults.")
    return None


def stopped(ex: Exercise, index: int, limit_s: float) -> CheckResult:
    """The report for a case stopped at the time limit."""
    return CheckResult(
        ex.id, "failed", title=ex.title, tried=tried(ex, index), got=f"no answer after {limit_s:g} s: the call "
        "was stopped", expected=known(ex, (), index).describe(), mistakes=["too_slow"],
        diagnosis=f"Your function was still running on case {index + 1} ({ex.cases[index].label}) after "
                  f"{limit_s:g} s, so it was stopped; the reference takes well under a second. Look for a loop that "
                  "never ends (a variable that never changes in a while loop) or work that grows too fast (a loop "
                  f"over all 2ⁿ of something). To allow more time: check({ex.id!r}, {ex.id}, time_limit=60).",
        note=f"The cases after case {index + 1} were not run. " + NOTE.format(id=ex.id))


def half_finished(ex: Exercise, got: list[Outcome]) -> CheckResult:
    """The report for a function that raises NotImplementedError on some cases only."""
    index = next(i for i, g in enumerate(got) if g.unfinished)
    answered = sum(1 for g in got if not g.unfinished)
    where = f" ({got[index].where})" if got[index].where else ""
    return CheckResult(
        ex.id, "failed", title=ex.title, tried=tried(ex, index), got=got[index].describe(),
        expected=known(ex, (), index).describe(), mistakes=["half_finished"],
        diagnosis=f"Your function is half finished: it answers {answered} of the {len(got)} cases but raises "
                  f"NotImplementedError on this one{where}. Finish the part that handles it.",
        note=NOTE.format(id=ex.id))


def failure(ex: Exercise, got: list[Outcome]) -> CheckResult:
    """The report for a wrong function: the first differing case, and the named mistake if one fits."""
    expected = [known(ex, (), i) for i in range(len(ex.cases))]
    diffs = [compare_outcomes(g, e, ex) for g, e in zip(got, expected)]
    first = next(i for i, d in enumerate(diffs) if d is not None)
    d = diffs[first]
    result = CheckResult(ex.id, "failed", title=ex.title, tried=tried(ex, first), got=got[first].describe(),
                         expected=expected[first].describe(), difference=d.text())
    if got[first].error is not None:
        result.difference = ""  # "Got" already shows the exception and its line
    elif d.where:  # show the part that differs, not the whole report
        result.got, result.expected = f"{d.where}: {describe(d.got)}", f"{d.where}: {describe(d.expected)}"
    values_right = all(compare_outcomes(g, e, ex, inputs=False) is None for g, e in zip(got, expected))
    found, lenient = ([], False) if values_right else recognise(ex, got)
    if not found and not values_right:
        generic = (_no_return(got) or _slip(ex, got, expected, diffs) or _wrong_exception(ex, got, expected)
                   or _spelling(got, expected))
        found = [generic] if generic else []
    mutated = _mutated(got)
    parts = []
    if found:
        parts.append(("Two mistakes at once. " if len(found) > 1 else "") + " ".join(m.diagnosis for m in found))
        if lenient:
            parts.append(f"And one more thing to fix: {d.text()}.")
    elif not values_right:
        parts.append(_unnamed(got, first, d, ex))
    if mutated is not None:
        parts.append(("Also: " if parts else "") + mutated.diagnosis)
        found.append(mutated)
    result.diagnosis = " ".join(parts)
    result.mistakes = [m.name for m in found]
    wrong = [i + 1 for i, x in enumerate(diffs) if x is not None]
    which = "" if len(wrong) == len(ex.cases) else f" ({', '.join(map(str, wrong))})"
    result.note = f"{len(wrong)} of {len(ex.cases)} cases differ{which}. " + NOTE.format(id=ex.id)
    return result


def _no_return(got: list[Outcome]) -> Mistake | None:
    if all(g.error is None and g.value is None for g in got):
        return Mistake("no_return", "Your function returned None on every case: did you forget the `return` "
                                    "statement?")
    return None


def _unnamed(got: list[Outcome], first: int, d: Diff, ex: Exercise) -> str:
    if got[first].error is not None:
        line = " (its line is shown above)" if got[first].where else ""
        return (f"Your code raised an exception on this case{line}. Read the message, fix the cause and run both "
                "cells again.")
    return ("None of the usual mistakes matches this answer: compare what came back with what was expected on this "
            "case. " + kind_advice(ex, first, d))


def kind_advice(ex: Exercise, index: int, d: Diff) -> str:
    """One sentence on what kind of difference this is."""
    if d.detail.startswith("shape"):
        return "The shape is wrong: check which dimensions you reduce over, index or pad, and keepdim."
    if d.detail.startswith("dtype"):
        return "The dtype is wrong: " + dtype_advice(ex, index, d)
    if "where a" in d.detail or "where the int" in d.detail:
        return "The type of the answer is wrong: return exactly what the docstring promises."
    return "Print your intermediate results on this case and compare them with the formula in the lesson."
