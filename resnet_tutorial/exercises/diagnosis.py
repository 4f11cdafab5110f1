"""Naming what is wrong with a learner's function, and the report that says so.

Three kinds of names, tried in this order:

* the exercise's own mistakes (:class:`~.catalogue.Mistake`): a wrong variant
  (or a pair of family switches) whose answers equal the learner's on every case,
  first exactly, then forgiving a dtype or number-type slip on top; or a detector;
* mistakes any exercise can have, recognised from how the answers relate to the
  right ones (:mod:`.slips`: floats for ints, the wrong dtype, a factor off, a
  shifted list, a familiar error message, ...);
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

from .catalogue import Exercise, Mistake
from .comparison import Diff, compare_outcomes
from .report import CheckResult
from .running import Outcome, known
from .slips import dtype_advice, general_mistake, mutated
from .values import brief, describe

NOTE = "Stuck? hint({id!r}) shows a hint; the solution is folded below this cell."


def _candidates(ex: Exercise) -> list[tuple[str, ...]]:
    """Mistake combinations to try: every single mistake with a variant, then pairs of family mistakes."""
    singles = [(m.name,) for m in ex.mistakes if m.wrong is not None or (ex.family is not None and m.detect is None)]
    flags = [m.name for m in ex.mistakes if m.wrong is None and m.detect is None and ex.family is not None]
    return singles + list(itertools.combinations(flags, 2))


def _matches(ex: Exercise, got: list[Outcome], variant: list[Outcome], expected: list[Outcome], lenient: bool) -> bool:
    """The learner's outcomes are the variant's on every case, with evidence: at least one case where the variant
    is wrong and the learner's answer is the same value, the same refusal, or a crash with the very same message
    (a crash's type alone would let any crash pass for a variant that crashes)."""
    evidence = False
    for g, o, e in zip(got, variant, expected):
        if compare_outcomes(g, o, ex, lenient, inputs=False) is not None:
            return False
        telling = compare_outcomes(o, e, ex, lenient) is not None
        evidence = evidence or (telling and (o.error is None or e.error is not None or str(g.error) == str(o.error)))
    return evidence


def recognise(ex: Exercise, got: list[Outcome]) -> tuple[list[Mistake], bool]:
    """The exercise's mistakes whose variant gives the learner's outcomes on every case, and whether that
    needed a lenient comparison (the learner's answer also has a dtype or type slip)."""
    n = len(ex.cases)
    expected = [known(ex, (), i) for i in range(n)]
    for lenient in (False, True):
        for names in _candidates(ex):
            outcomes = [known(ex, names, i) for i in range(n)]
            if _matches(ex, got, outcomes, expected, lenient) and \
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
        generic = general_mistake(ex, got, expected, diffs)
        found = [generic] if generic else []
    changed = mutated(got)
    parts = []
    if found:
        parts.append(("Two mistakes at once. " if len(found) > 1 else "") + " ".join(m.diagnosis for m in found))
        if lenient:
            parts.append(f"And one more thing to fix: {d.text()}.")
    elif not values_right:
        parts.append(_unnamed(got, first, d, ex))
    if changed is not None:
        parts.append(("Also: " if parts else "") + changed.diagnosis)
        found.append(changed)
    result.diagnosis = " ".join(parts)
    result.mistakes = [m.name for m in found]
    wrong = [i + 1 for i, x in enumerate(diffs) if x is not None]
    which = "" if len(wrong) == len(ex.cases) else f" ({', '.join(map(str, wrong))})"
    result.note = f"{len(wrong)} of {len(ex.cases)} cases differ{which}. " + NOTE.format(id=ex.id)
    return result


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
