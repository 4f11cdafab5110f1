"""Running a function on a case: outcomes, the learner's own lines, stubs, inputs changed in place.

Every call happens on fresh arguments from the case's ``make()``, with autograd
on and warnings silenced; an exception becomes part of the :class:`Outcome`
(with the line of the learner's code that raised it), never a traceback. The
learner's calls run under the time limit of :mod:`.time_limit`.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .catalogue import Case, Exercise
from .time_limit import CaseTimeout, call_with_time_limit
from .values import describe, short


@dataclass
class Outcome:
    """What one call gave: a value, or an exception (with the line of the learner's code that raised it).

    ``unfinished``: the learner's own code raised ``NotImplementedError``;
    ``timed_out``: the call was stopped at the time limit; ``changed_inputs``:
    the names of tensor arguments the call modified in place.
    """

    value: Any = None
    error: BaseException | None = None
    where: str = ""
    unfinished: bool = False
    timed_out: bool = False
    changed_inputs: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        if self.timed_out:
            return "nothing yet: the call was stopped at the time limit"
        if self.error is None:
            return describe(self.value)
        text = f"{type(self.error).__name__}: {short(str(self.error), 300)}"
        return f"{text} ({self.where})" if self.where else text


@dataclass
class Limits:
    """The time limit of each learner call and the notice while it runs (see :mod:`.time_limit`)."""

    limit_s: float | None
    notice_s: float | None = None
    notice: Callable[[], None] | None = None


def _code(fn: Callable) -> Any:
    """The code object of the learner's own function (under decorators such as ``@torch.no_grad()``)."""
    try:
        return getattr(inspect.unwrap(fn), "__code__", None)
    except ValueError:  # a cycle of __wrapped__
        return getattr(fn, "__code__", None)


def _learner_frames(exc: BaseException, fn: Callable) -> list[traceback.FrameSummary]:
    code = _code(fn)
    if code is None:
        return []
    return [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == code.co_filename]


def where(exc: BaseException, fn: Callable) -> str:
    """'line 4 of your function: `...`' for the last line of the learner's code in the traceback."""
    frames = _learner_frames(exc, fn)
    if not frames:
        return ""
    f = frames[-1]
    line = (f.line or "").strip()
    return f"line {f.lineno - _code(fn).co_firstlineno + 1} of your function: `{short(line, 120)}`" if line else ""


def _raised_by_learner(exc: BaseException, fn: Callable) -> bool:
    """True when the innermost frame is the learner's own code (a ``raise`` they wrote)."""
    frames = traceback.extract_tb(exc.__traceback__)
    code = _code(fn)
    return bool(frames) and code is not None and frames[-1].filename == code.co_filename


def _call(fn: Callable, case: Case, args: tuple, kwargs: dict) -> Any:
    if case.run is not None:
        return case.run(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def run_case(ex: Exercise, index: int, fn: Callable, *, learner: bool = False, limits: Limits | None = None) -> Outcome:
    """Call ``fn`` on fresh arguments of case ``index``; exceptions become outcomes.

    ``learner=True`` adds the learner's line to errors, tells an unfinished stub from a
    bug, and applies ``limits``.
    """
    case = ex.cases[index]
    args, kwargs = case.make()
    pristine = case.make() if ex.keeps_inputs else None
    with warnings.catch_warnings(), torch.enable_grad():
        warnings.simplefilter("ignore")
        try:
            if limits is not None:
                value = call_with_time_limit(lambda: _call(fn, case, args, kwargs), limits.limit_s,
                                             limits.notice_s, limits.notice)
            else:
                value = _call(fn, case, args, kwargs)
        except CaseTimeout as exc:
            return Outcome(error=exc, timed_out=True)
        except NotImplementedError as exc:
            mine = learner and _raised_by_learner(exc, fn)
            return Outcome(error=exc, where=where(exc, fn) if learner else "", unfinished=mine)
        except Exception as exc:  # the learner's bug, reported with its case
            return Outcome(error=exc, where=where(exc, fn) if learner else "")
    changed = changed_inputs(ex, (args, kwargs), pristine) if pristine is not None else ()
    return Outcome(value=value, changed_inputs=changed)


def changed_inputs(ex: Exercise, used: tuple[tuple, dict], pristine: tuple[tuple, dict]) -> tuple[str, ...]:
    """Names of the tensor arguments (or lists of tensors) that differ from a fresh copy after the call."""
    try:
        sig = inspect.signature(ex.reference)
        now, before = sig.bind(*used[0], **used[1]).arguments, sig.bind(*pristine[0], **pristine[1]).arguments
    except TypeError:
        return ()
    return tuple(name for name, value in now.items() if not _same_tensors(value, before[name]))


def _same_tensors(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a.detach(), b.detach())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_tensors(x, y) for x, y in zip(a, b))
    return True  # only tensors are compared


_CACHE: dict[tuple[str, tuple[str, ...], int], Outcome] = {}


def known(ex: Exercise, names: tuple[str, ...], index: int) -> Outcome:
    """Outcome of the reference (``names == ()``) or of a wrong variant on case ``index`` (cached)."""
    key = (ex.id, names, index)
    if key not in _CACHE:
        fn = ex.reference if not names else ex.variant(names)
        _CACHE[key] = run_case(ex, index, fn)
    return _CACHE[key]


def _is_stub_statement(node: ast.stmt) -> bool:
    if isinstance(node, ast.Pass):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node.value.value is Ellipsis:
        return True
    if isinstance(node, ast.Return):
        return node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)
    if isinstance(node, ast.Raise) and node.exc is not None:
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"
    return False


def is_stub(fn: Callable) -> bool:
    """True when ``fn``'s body is only a docstring and ``raise NotImplementedError`` / ``...`` / ``pass`` /
    ``return None`` (read from its source; ``False`` when the source cannot be read)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    name = getattr(fn, "__name__", None)
    defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name]
    if not defs:
        return False
    body = list(defs[0].body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return all(_is_stub_statement(n) for n in body)
