""""Your turn" exercises: the learner writes a function, :func:`check` says what is wrong with it.

Every lesson has cells like these::

    def bn_forward_train(x, gamma, beta, eps=1e-5):
        \"\"\"...\"\"\"
        raise NotImplementedError        # the learner replaces this line

    check("bn_forward_train", bn_forward_train)

:func:`check` runs the learner's function on a few *cases* chosen so that each
usual mistake shows (a near-constant channel where ε matters, a batch of 2 where
the unbiased variance differs a lot, odd sizes, stride 3...), compares every
answer with a reference implementation, and, when one is wrong, tries to *name*
the mistake: each exercise knows wrong variants of its function (the unbiased
variance, ε outside the square root, ...), and when the learner's answers equal
a variant's on every case the report says so in plain words. If no known mistake
fits, the report shows the first case that differs, with shapes and values.

* An unfinished stub (``raise NotImplementedError``, a ``...`` or ``pass`` body,
  ``return None``) is reported as *not attempted yet*, never as a traceback, so
  "Restart kernel and run all" runs every lesson top to bottom.
* Exceptions, wrong shapes, wrong dtypes and wrong types are reported with the
  case that triggered them; no traceback escapes :func:`check`.
* :func:`check` never changes the notebook's random-number stream (it runs under
  ``torch.random.fork_rng``), so the lesson's later cells give the same numbers
  whether or not the learner checked anything.
* :func:`hint` reveals an exercise's hints one at a time; the full solution is
  folded below the check cell in the notebook.
* :func:`progress` shows which exercises this learner has passed. It is kept in a
  small JSON file, ``~/.cache/resnet-tutorial/progress.json`` (``$XDG_CACHE_HOME``
  is honoured; ``RESNET_TUTORIAL_PROGRESS`` names another file), written
  atomically; a corrupt file is set aside with a :class:`ProgressFileWarning` and
  progress starts afresh. Checks that find a stub write nothing.

This is an *app* module (like ``widgets``): it may import the library and the
lesson modules, and the library never imports it.
"""

from __future__ import annotations

import ast
import copy
import datetime as _dt
import functools
import html
import inspect
import itertools
import json
import math
import numbers
import os
import re
import tempfile
import textwrap
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Bottleneck, ResidualBlock, ZeroPadShortcut, conv1x1, conv3x3
from .bn import batch_norm_2d
from .data import MEAN, STD, normalize

__all__ = [
    "PROGRESS_ENV",
    "Case",
    "CheckResult",
    "Exercise",
    "Hint",
    "Mistake",
    "ProgressFileWarning",
    "check",
    "get_exercise",
    "hint",
    "is_stub",
    "list_exercises",
    "progress",
    "progress_path",
    "reset_hints",
    "reset_progress",
]

#: Environment variable naming the progress file (or a folder to keep ``progress.json`` in).
PROGRESS_ENV = "RESNET_TUTORIAL_PROGRESS"
PROGRESS_VERSION = 1


# =========================================================================== the data model
@dataclass(frozen=True)
class Case:
    """One input the learner's function is tried on.

    ``make()`` returns fresh ``(args, kwargs)`` every time it is called (seeded, so
    every call gives the same values), so a function that changes its inputs in
    place cannot spoil the next run. ``run(fn, *args, **kwargs)``, when given,
    replaces the plain call ``fn(*args, **kwargs)``: it may call ``fn`` twice, or
    turn side effects (a model's weights after a training step) into the value
    that is compared.
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
    ``detect(got, expected)`` (lists of outcomes, one per case) recognises
    mistakes whose answers cannot be predicted exactly (random weights).
    """

    name: str
    diagnosis: str
    wrong: Callable[..., Any] | None = None
    detect: Callable[[list[Outcome], list[Outcome]], bool] | None = None


@dataclass
class Exercise:
    """An exercise: its reference, the cases it is checked on, its mistakes and hints."""

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
            return self.mistake(names[0]).wrong
        if self.family is None:
            raise ValueError(f"exercise {self.id!r}: mistake(s) {names} have no variant")
        return functools.partial(self.family, flags=frozenset(names))


_EXERCISES: dict[str, Exercise] = {}


def _register(ex: Exercise) -> Exercise:
    if ex.id in _EXERCISES:
        raise ValueError(f"exercise {ex.id!r} is defined twice")
    _EXERCISES[ex.id] = ex
    return ex


def list_exercises(lesson: str | int | None = None) -> list[str]:
    """The exercise ids, in lesson order (``lesson=2`` or ``"02"``: only that lesson's)."""
    want = None if lesson is None else f"{int(lesson):02d}"
    return [i for i, ex in _EXERCISES.items() if want is None or ex.lesson == want]


def get_exercise(exercise_id: str) -> Exercise:
    """The :class:`Exercise` behind an id (its cases, mistakes and hints)."""
    try:
        return _EXERCISES[exercise_id]
    except KeyError:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(_EXERCISES)}") from None


# =========================================================================== running a function
class _Unfinished(Exception):
    """The learner's own code raised NotImplementedError: the stub is not finished."""


@dataclass
class Outcome:
    """What one call gave: a value, or an exception (with the line that raised it)."""

    value: Any = None
    error: BaseException | None = None
    where: str = ""

    def describe(self) -> str:
        if self.error is None:
            return describe(self.value)
        text = f"{type(self.error).__name__}: {_short(str(self.error), 300)}"
        return f"{text} ({self.where})" if self.where else text


class Report(dict):
    """A case runner's summary of what a function did; its keys are plain descriptions."""


def _learner_frames(exc: BaseException, fn: Callable) -> list[traceback.FrameSummary]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    return [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == code.co_filename]


def _where(exc: BaseException, fn: Callable) -> str:
    """'line 4 of your function: `...`' for the last line of the learner's code in the traceback."""
    frames = _learner_frames(exc, fn)
    if not frames:
        return ""
    f = frames[-1]
    first = fn.__code__.co_firstlineno
    line = (f.line or "").strip()
    return f"line {f.lineno - first + 1} of your function: `{_short(line, 120)}`" if line else ""


def _raised_by_learner(exc: BaseException, fn: Callable) -> bool:
    """True when the innermost frame is the learner's own code (a ``raise`` they wrote)."""
    frames = traceback.extract_tb(exc.__traceback__)
    code = getattr(fn, "__code__", None)
    return bool(frames) and code is not None and frames[-1].filename == code.co_filename


def _call(fn: Callable, case: Case, args: tuple, kwargs: dict) -> Any:
    if case.run is not None:
        return case.run(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def _run(fn: Callable, case: Case, learner: bool = False) -> Outcome:
    """Call ``fn`` on fresh arguments of ``case``; exceptions become outcomes."""
    args, kwargs = case.make()
    with warnings.catch_warnings(), torch.enable_grad():
        warnings.simplefilter("ignore")
        try:
            return Outcome(value=_call(fn, case, args, kwargs))
        except NotImplementedError as exc:
            if learner and _raised_by_learner(exc, fn):
                raise _Unfinished() from exc
            return Outcome(error=exc, where=_where(exc, fn) if learner else "")
        except Exception as exc:  # the learner's bug, reported with its case
            return Outcome(error=exc, where=_where(exc, fn) if learner else "")


_CACHE: dict[tuple[str, tuple[str, ...], int], Outcome] = {}


def _known(ex: Exercise, names: tuple[str, ...], index: int) -> Outcome:
    """Outcome of the reference (``names == ()``) or of a wrong variant on case ``index`` (cached)."""
    key = (ex.id, names, index)
    if key not in _CACHE:
        fn = ex.reference if not names else ex.variant(names)
        _CACHE[key] = _run(fn, ex.cases[index])
    return _CACHE[key]


# =========================================================================== describing and comparing values
def _short(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _shape(t: torch.Tensor) -> str:
    return "×".join(str(s) for s in t.shape) if t.dim() else "scalar"


def _num(v: float) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _tensor_values(t: torch.Tensor, n: int = 6) -> str:
    flat = t.detach().reshape(-1).cpu()
    shown = ", ".join(_num(v) for v in flat[:n].tolist())
    return f"[{shown}{', …' if flat.numel() > n else ''}]"


def describe(value: Any) -> str:
    """A short, human description of a value: type, shape, dtype and the first numbers."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        if value.dim() == 0:
            return f"a 0-d tensor {_num(value.item())} ({dtype})"
        return f"a tensor of shape {_shape(value)} ({dtype}) {_tensor_values(value)}"
    if isinstance(value, nn.Module):
        kids = len(list(value.children()))
        if kids:
            return f"a {type(value).__name__} of {kids} modules"
        if isinstance(value, nn.modules.batchnorm._BatchNorm):  # its mode matters more than its eps
            return f"{type(value).__name__}({value.num_features}, {'train' if value.training else 'eval'} mode)"
        return _short(repr(value), 90)
    if isinstance(value, torch.optim.Optimizer):
        return f"a {type(value).__name__}(lr={value.param_groups[0]['lr']:g})"
    if isinstance(value, Report):
        return "; ".join(f"{k}: {describe(v)}" for k, v in value.items())
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in list(value.items())[:10]) + "}"
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        if value and all(isinstance(v, torch.Tensor) for v in value):
            return f"a {type(value).__name__} of {len(value)} tensors ({', '.join(_shape(v) for v in value)})"
        if value and all(callable(v) for v in value):
            return f"a {type(value).__name__} of {len(value)} functions/modules"
        inner = ", ".join(describe(v) if not isinstance(v, (int, float, str)) else _num(v) for v in value[:8])
        open_, close = ("[", "]") if isinstance(value, list) else ("(", ")" if len(value) != 1 else ",)")
        return open_ + inner + (", …" if len(value) > 8 else "") + close
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, str):
        return repr(value)
    return _short(repr(value), 120)


def _brief(value: Any) -> str:
    """Like :func:`describe`, without the numbers of tensors larger than 8 values."""
    if isinstance(value, torch.Tensor) and value.numel() > 8:
        return f"a {_shape(value)} tensor ({str(value.dtype).replace('torch.', '')})"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
        return describe(value)
    return describe(value)


def _type_name(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return "a tensor"
    return {bool: "a bool", int: "an int", float: "a float", str: "a str", list: "a list", tuple: "a tuple",
            dict: "a dict", type(None): "None"}.get(type(v), f"a {type(v).__name__}")


@dataclass
class Diff:
    """Where two values first differ: the location, both values there, and how they differ."""

    where: str
    got: Any
    expected: Any
    detail: str

    def text(self) -> str:
        return f"{self.where}: {self.detail}" if self.where else self.detail


def _join(where: str, part: str) -> str:
    return f"{where}{part}" if where else part.lstrip(" ")


def _compare_tensors(got: Any, exp: torch.Tensor, rtol: float, atol: float, where: str,
                     lenient: bool = False) -> Diff | None:
    if not isinstance(got, torch.Tensor):
        return Diff(where, got, exp, f"{_type_name(got)} where a tensor was expected")
    if tuple(got.shape) != tuple(exp.shape):
        return Diff(where, got, exp, f"shape {_shape(got)} instead of {_shape(exp)}")
    if got.dtype != exp.dtype:
        if not lenient:
            return Diff(where, got, exp, f"dtype {str(got.dtype)[6:]} instead of {str(exp.dtype)[6:]}")
        got = got.detach().to(exp.dtype)
    g, e = got.detach().cpu(), exp.detach().cpu()
    if not exp.is_floating_point():
        if torch.equal(g, e):
            return None
        idx = tuple(int(i) for i in torch.nonzero(g != e)[0])
        return Diff(where, got, exp, f"at index {idx}: {g[idx].item()} instead of {e[idx].item()}")
    g64, e64 = g.double(), e.double()
    if torch.allclose(g64, e64, rtol=rtol, atol=atol, equal_nan=True):
        return None
    bad = ~torch.isclose(g64, e64, rtol=rtol, atol=atol, equal_nan=True)
    err = torch.where(bad, (g64 - e64).abs().nan_to_num(float("inf")), torch.zeros_like(g64))
    flat = int(err.reshape(-1).argmax())
    idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), g.shape)) if g.dim() else ()
    n_bad = int(bad.sum())
    return Diff(where, got, exp, f"{n_bad} of {g.numel()} values differ; the largest difference is at index "
                                 f"{idx}: {_num(g64[idx].item())} instead of {_num(e64[idx].item())}")


def _compare(got: Any, exp: Any, rtol: float, atol: float, where: str = "", lenient: bool = False) -> Diff | None:
    """``None`` when ``got`` matches ``exp`` (numbers within tolerance), else the first :class:`Diff`.

    ``lenient`` forgives dtypes and number types (a float32 tensor for a float64 one,
    a 0-d tensor or a float for an int): used to recognise a mistake behind such a slip.
    """
    if isinstance(exp, torch.Tensor):
        return _compare_tensors(got, exp, rtol, atol, where, lenient)
    if lenient and isinstance(got, torch.Tensor) and got.dim() == 0 and isinstance(exp, numbers.Number):
        got = got.item()
    if lenient and isinstance(exp, numbers.Integral) and not isinstance(exp, bool) and isinstance(got, float):
        return None if got == exp else Diff(where, got, exp, f"{_num(got)} instead of {exp}")
    if isinstance(exp, Report):
        if not isinstance(got, dict):
            return Diff(where, got, exp, f"{_type_name(got)} instead of a report")
        for key, value in exp.items():
            d = _compare(got.get(key), value, rtol, atol, key, lenient)
            if d is not None:
                return d
        return None
    if isinstance(exp, bool):
        if isinstance(got, bool) and got == exp:
            return None
        return Diff(where, got, exp, f"{describe(got)} instead of {exp}")
    if isinstance(exp, numbers.Integral):
        if isinstance(got, numbers.Integral) and not isinstance(got, bool):
            return None if int(got) == int(exp) else Diff(where, got, exp, f"{int(got)} instead of {exp}")
        if isinstance(got, float) and got == exp:
            return Diff(where, got, exp, f"{got!r}, a float, where the int {exp} was expected")
        return Diff(where, got, exp, f"{_type_name(got)} where an int was expected")
    if isinstance(exp, float):
        if isinstance(got, numbers.Real) and not isinstance(got, bool) and not isinstance(got, torch.Tensor):
            g = float(got)
            if (math.isnan(g) and math.isnan(exp)) or math.isclose(g, exp, rel_tol=rtol, abs_tol=atol):
                return None
            return Diff(where, got, exp, f"{_num(g)} instead of {_num(exp)}")
        return Diff(where, got, exp, f"{_type_name(got)} where a float was expected")
    if isinstance(exp, str):
        return None if got == exp else Diff(where, got, exp, f"{describe(got)} instead of {exp!r}")
    if isinstance(exp, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return Diff(where, got, exp, f"{_type_name(got)} where a {type(exp).__name__} was expected")
        if len(got) != len(exp):
            return Diff(where, got, exp, f"{len(got)} items instead of {len(exp)}")
        for i, (g, e) in enumerate(zip(got, exp)):
            d = _compare(g, e, rtol, atol, _join(where, f" item {i}"), lenient)
            if d is not None:
                return d
        return None
    if isinstance(exp, dict):
        if not isinstance(got, dict):
            return Diff(where, got, exp, f"{_type_name(got)} where a dict was expected")
        missing, extra = [k for k in exp if k not in got], [k for k in got if k not in exp]
        if missing or extra:
            parts = ([f"missing keys {missing}"] if missing else []) + ([f"unexpected keys {extra}"] if extra else [])
            return Diff(where, got, exp, "; ".join(parts))
        for key, value in exp.items():
            d = _compare(got[key], value, rtol, atol, _join(where, f"[{key!r}]"), lenient)
            if d is not None:
                return d
        return None
    if exp is None:
        return None if got is None else Diff(where, got, exp, f"{describe(got)} instead of None")
    return None if got == exp else Diff(where, got, exp, f"{describe(got)} instead of {describe(exp)}")


def _compare_outcomes(got: Outcome, exp: Outcome, ex: Exercise, lenient: bool = False) -> Diff | None:
    if exp.error is not None:  # the reference refuses this input: so must the learner
        if got.error is None:
            return Diff("", got.value, exp.error, f"returned {describe(got.value)}, but this input must be refused "
                                                  f"with a {type(exp.error).__name__}")
        if isinstance(got.error, type(exp.error)):
            return None
        return Diff("", got.error, exp.error, f"raised {type(got.error).__name__} instead of {type(exp.error).__name__}")
    if got.error is not None:
        return Diff("", got.error, exp.value, f"raised {got.describe()}")
    return _compare(got.value, exp.value, ex.rtol, ex.atol, lenient=lenient)


# =========================================================================== stubs
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


# =========================================================================== recognising mistakes
def _candidates(ex: Exercise) -> list[tuple[str, ...]]:
    """Mistake combinations to try: every single mistake with a variant, then pairs of family mistakes."""
    singles = [(m.name,) for m in ex.mistakes if m.wrong is not None or (ex.family is not None and m.detect is None)]
    flags = [m.name for m in ex.mistakes if m.wrong is None and m.detect is None and ex.family is not None]
    return singles + list(itertools.combinations(flags, 2))


def _recognise(ex: Exercise, got: list[Outcome]) -> tuple[list[Mistake], bool]:
    """The mistakes whose variant gives the learner's outcomes on every case, and whether that needed a
    lenient comparison (the learner's answer also has a dtype or type slip)."""
    expected = [_known(ex, (), i) for i in range(len(ex.cases))]
    for lenient in (False, True):
        for names in _candidates(ex):
            outcomes = [_known(ex, names, i) for i in range(len(ex.cases))]
            if all(_compare_outcomes(g, o, ex, lenient) is None for g, o in zip(got, outcomes)) and \
                    any(_compare_outcomes(o, e, ex, lenient) is not None for o, e in zip(outcomes, expected)):
                return [ex.mistake(n) for n in names], lenient
    found = []
    for m in ex.mistakes:
        if m.detect is not None:
            try:
                if m.detect(got, expected):
                    found.append(m)
            except Exception:  # a detector must never turn a report into a traceback
                continue
    return found, False


# =========================================================================== the report
@dataclass
class CheckResult:
    """What :func:`check` found. ``passed`` and ``message`` (plain text) are the contract;
    in a notebook the result shows as a short report (HTML), elsewhere as its message."""

    exercise_id: str
    status: str  # "passed", "failed", "not attempted", "unknown exercise"
    title: str = ""
    tried: str = ""
    got: str = ""
    expected: str = ""
    difference: str = ""
    diagnosis: str = ""
    mistakes: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def attempted(self) -> bool:
        return self.status in ("passed", "failed")

    def _rows(self) -> list[tuple[str, str]]:
        rows = [("Tried", self.tried), ("Got", self.got), ("Expected", self.expected),
                ("Difference", self.difference), ("Diagnosis", self.diagnosis)]
        return [(k, v) for k, v in rows if v]

    def _headline(self) -> str:
        if self.status == "passed":
            return f"✓ {self.exercise_id} passed: your function matches the reference on all {len(self.cases)} cases."
        if self.status == "failed":
            return f"✗ {self.exercise_id}: not right yet."
        if self.status == "not attempted":
            return f"○ {self.exercise_id}: not attempted yet."
        return f"? {self.exercise_id}: no such exercise."

    @property
    def message(self) -> str:
        lines = [self._headline()]
        if self.status == "passed":
            lines += [f"  · {c}" for c in self.cases]
        lines += [f"{k}: {v}" for k, v in self._rows()]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.message

    __str__ = __repr__

    def _repr_html_(self) -> str:
        color = {"passed": "#2e7d32", "failed": "#c75c00", "not attempted": "#757575"}.get(self.status, "#b00020")
        esc = _inline_html
        parts = [f'<div class="rt-check rt-check-{self.status.replace(" ", "-")}" style="border-left: 4px solid '
                 f'{color}; padding: 4px 12px; margin: 4px 0;">',
                 f'<div style="font-weight: bold; color: {color};">{esc(self._headline())}</div>']
        if self.status == "passed":
            parts.append("<ul style='margin: 2px 0;'>" + "".join(f"<li>{esc(c)}</li>" for c in self.cases) + "</ul>")
        if self._rows():
            parts.append('<table style="border-collapse: collapse; margin-top: 2px;">')
            for k, v in self._rows():
                parts.append(f'<tr><td style="vertical-align: top; padding: 2px 10px 2px 0; font-weight: bold; '
                             f'text-align: left;">{esc(k)}</td><td style="text-align: left; padding: 2px 0;">'
                             f'{esc(v)}</td></tr>')
            parts.append("</table>")
        if self.note:
            parts.append(f'<div style="margin-top: 2px; font-style: italic;">{esc(self.note)}</div>')
        parts.append("</div>")
        return "".join(parts)


def _inline_html(text: str) -> str:
    """Escape ``text`` for HTML and render its `code` and *emphasis* spans."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"(?<![\w*])\*(\S[^*]*?)\*(?![\w*])", r"<em>\1</em>", out)


def _tried(ex: Exercise, index: int) -> str:
    case = ex.cases[index]
    args, kwargs = case.make()
    try:
        bound = inspect.signature(ex.reference).bind(*args, **kwargs)
        call = ", ".join(f"{k}={_brief(v)}" for k, v in bound.arguments.items())
    except TypeError:
        call = ", ".join(_brief(a) for a in args)
    return f"case {index + 1} of {len(ex.cases)}, {case.label}: {ex.id}({call})"


def _signature_problem(ex: Exercise, fn: Callable) -> str | None:
    args, kwargs = ex.cases[0].make()
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        sig.bind(*args, **kwargs)
    except TypeError as err:
        return (f"your function is declared as {getattr(fn, '__name__', 'f')}{sig}, but the exercise calls it as "
                f"{ex.signature} ({err}). Keep the parameters of the stub.")
    return None


def _failure(ex: Exercise, got: list[Outcome]) -> CheckResult:
    """The report for a wrong function: first differing case, and the named mistake if one fits."""
    expected = [_known(ex, (), i) for i in range(len(ex.cases))]
    diffs = [_compare_outcomes(g, e, ex) for g, e in zip(got, expected)]
    first = next(i for i, d in enumerate(diffs) if d is not None)
    d = diffs[first]
    wrong = [i + 1 for i, x in enumerate(diffs) if x is not None]
    result = CheckResult(ex.id, "failed", title=ex.title, tried=_tried(ex, first),
                         got=got[first].describe(), expected=expected[first].describe(), difference=d.text())
    if got[first].error is not None:
        result.difference = ""  # "Got" already shows the exception and its line
    elif d.where:  # show the part that differs, not the whole report
        result.got, result.expected = f"{d.where}: {describe(d.got)}", f"{d.where}: {describe(d.expected)}"
    found, lenient = _recognise(ex, got)
    if found:
        result.mistakes = [m.name for m in found]
        lead = "Two mistakes at once. " if len(found) > 1 else ""
        result.diagnosis = lead + " ".join(m.diagnosis for m in found)
        if lenient:
            result.diagnosis += f" And one more thing to fix: {d.text()}."
    elif all(g.error is None and g.value is None for g in got):
        result.diagnosis = "Your function returned None on every case: did you forget the `return` statement?"
    elif got[first].error is not None:
        result.diagnosis = ("Your code raised an exception on this case (its line is shown above). Read the "
                            "message, fix that line and run both cells again.")
    else:
        result.diagnosis = ("None of the usual mistakes matches this answer: compare what came back with what was "
                            "expected on this case. " + _kind_advice(d))
    which = "" if len(wrong) == len(ex.cases) else f" ({', '.join(map(str, wrong))})"
    result.note = (f"{len(wrong)} of {len(ex.cases)} cases differ{which}. Stuck? hint({ex.id!r}) shows a hint; "
                   "the solution is folded below this cell.")
    return result


def _kind_advice(d: Diff) -> str:
    if d.detail.startswith("shape"):
        return "The shape is wrong: check which dimensions you reduce over or pad, and keepdim."
    if d.detail.startswith("dtype"):
        return "The dtype is wrong: compute in the input's dtype (avoid creating tensors with a fixed dtype)."
    if "where a" in d.detail or "instead of the int" in d.detail:
        return "The type of the answer is wrong: return exactly what the docstring promises."
    return "Print your intermediate results on this case and compare them with the formula in the lesson."


def check(exercise_id: str, fn: Callable[..., Any], *, record: bool = True) -> CheckResult:
    """Check the learner's ``fn`` for exercise ``exercise_id`` and say what, if anything, is wrong.

    Never raises for anything the learner's code does: stubs are "not attempted",
    exceptions, wrong shapes, dtypes and types are reported with the case that
    triggered them. A real attempt (passed or not) is counted in the progress
    file unless ``record=False`` (for demonstrations).
    """
    def _record(ex_id: str, passed: bool) -> None:
        if record:
            _record_progress(ex_id, passed)

    if exercise_id not in _EXERCISES:
        return CheckResult(exercise_id, "unknown exercise",
                           note=f"Known exercises: {', '.join(_EXERCISES)}. Check the spelling of the id.")
    ex = _EXERCISES[exercise_id]
    not_yet = CheckResult(ex.id, "not attempted", title=ex.title,
                          note="Write your function in the cell above (replace `raise NotImplementedError`), "
                               f"run that cell, then run this one again. hint({ex.id!r}) gives a hint.")
    if not callable(fn):
        return CheckResult(ex.id, "failed", title=ex.title, got=describe(fn),
                           diagnosis=f"check needs your function itself: check({ex.id!r}, {ex.id}) without "
                                     "parentheses after the function's name.")
    if is_stub(fn):
        return not_yet
    # the notebook's random numbers and grad mode stay as they were; cases may need autograd
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        problem = _signature_problem(ex, fn)
        if problem:
            _record(ex.id, False)
            return CheckResult(ex.id, "failed", title=ex.title, diagnosis=problem)
        try:
            got = [_run(fn, case, learner=True) for case in ex.cases]
        except _Unfinished:
            return not_yet
        if all(_compare_outcomes(g, _known(ex, (), i), ex) is None for i, g in enumerate(got)):
            _record(ex.id, True)
            return CheckResult(ex.id, "passed", title=ex.title, cases=[c.label for c in ex.cases])
        result = _failure(ex, got)
    _record(ex.id, False)
    return result


# =========================================================================== hints
_HINTS_SHOWN: dict[str, int] = {}


@dataclass
class Hint:
    """One hint, shown as a short note; ``number`` counts from 1, 0 means "no hints left"."""

    exercise_id: str
    number: int
    total: int
    text: str

    def __repr__(self) -> str:
        if self.number == 0:
            return self.text
        return f"Hint {self.number} of {self.total} for {self.exercise_id}: {self.text}"

    def _repr_html_(self) -> str:
        head = "" if self.number == 0 else f"<b>Hint {self.number} of {self.total}</b> for <code>{self.exercise_id}</code>: "
        return (f'<div class="rt-hint" style="border-left: 4px solid #1565c0; padding: 4px 12px;">'
                f"{head}{_inline_html(self.text)}</div>")


def hint(exercise_id: str) -> Hint:
    """The next hint for an exercise: the first call shows hint 1, the next hint 2, ...

    After the last hint it points to the folded solution. :func:`reset_hints`
    starts the count again.
    """
    if exercise_id not in _EXERCISES:
        return Hint(exercise_id, 0, 0, f"No exercise {exercise_id!r}; known: {', '.join(_EXERCISES)}.")
    hints = _EXERCISES[exercise_id].hints
    n = _HINTS_SHOWN.get(exercise_id, 0)
    if n >= len(hints):
        return Hint(exercise_id, 0, len(hints), f"No more hints for {exercise_id}: the full solution is folded "
                                                "under 'Solution' below its check cell.")
    _HINTS_SHOWN[exercise_id] = n + 1
    return Hint(exercise_id, n + 1, len(hints), hints[n])


def reset_hints(exercise_id: str | None = None) -> None:
    """Start the hint count again for one exercise (or all)."""
    if exercise_id is None:
        _HINTS_SHOWN.clear()
    else:
        _HINTS_SHOWN.pop(exercise_id, None)


# =========================================================================== progress
class ProgressFileWarning(UserWarning):
    """The progress file could not be read or written; progress goes on without it."""


def progress_path() -> Path:
    """Where progress is kept: ``$RESNET_TUTORIAL_PROGRESS`` (a file, or a folder for
    ``progress.json``), else ``$XDG_CACHE_HOME`` or ``~/.cache``, in ``resnet-tutorial/``."""
    env = os.environ.get(PROGRESS_ENV, "").strip()
    if env:
        p = Path(env).expanduser()
        return p / "progress.json" if p.is_dir() else p
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "resnet-tutorial" / "progress.json"


def _valid(data: Any) -> bool:
    return (isinstance(data, dict) and isinstance(data.get("exercises"), dict)
            and all(isinstance(k, str) and isinstance(v, dict) for k, v in data["exercises"].items()))


def _write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` to a temporary file next to ``path``, then move it into place (``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _load_progress(path: Path) -> dict[str, dict]:
    """The stored entries; a missing file is empty, a corrupt one is set aside and reset (with a warning)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as err:
        warnings.warn(f"could not read the exercise progress file {path} ({err}); showing no progress",
                      ProgressFileWarning, stacklevel=3)
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:  # also UnicodeDecodeError
        data = None
    if _valid(data):
        return dict(data["exercises"])
    backup = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, backup)
        _write_json_atomic(path, {"version": PROGRESS_VERSION, "exercises": {}})
        kept = f"the old file is kept as {backup}"
    except OSError as err:
        kept = f"it could not be replaced ({err})"
    warnings.warn(f"the exercise progress file {path} was unreadable, so progress starts afresh; {kept}",
                  ProgressFileWarning, stacklevel=3)
    return {}


def _now() -> str:
    return _dt.datetime.now().replace(microsecond=0).isoformat(sep=" ")


def _record_progress(exercise_id: str, passed: bool) -> None:
    """Count an attempt (and a pass) for ``exercise_id``; a file problem warns, never raises."""
    path = progress_path()
    entries = _load_progress(path)
    entry = dict(entries.get(exercise_id, {}))
    entry["attempts"] = int(entry.get("attempts", 0)) + 1
    entry["last_tried"] = _now()
    if passed and not entry.get("passed"):
        entry["first_passed"] = _now()
    entry["passed"] = bool(entry.get("passed")) or passed
    entries[exercise_id] = entry
    try:
        _write_json_atomic(path, {"version": PROGRESS_VERSION, "exercises": entries})
    except Exception as err:  # a full disk, a read-only home...: never let it break a check
        warnings.warn(f"could not save exercise progress to {path} ({err}); the check itself is not affected",
                      ProgressFileWarning, stacklevel=3)


def progress(lesson: str | int | None = None):
    """A table (pandas DataFrame) of every exercise: lesson, id, title, status, attempts, first passed.

    ``lesson=2`` shows one lesson. The file it reads is ``progress_path()``
    (also in the table's ``attrs["path"]``).
    """
    import pandas as pd

    path = progress_path()
    entries = _load_progress(path)
    rows = []
    for ex_id in list_exercises(lesson):
        ex, entry = _EXERCISES[ex_id], entries.get(ex_id, {})
        if entry.get("passed"):
            status = "passed ✓"
        elif entry.get("attempts"):
            status = "tried, not passed yet"
        else:
            status = "not tried"
        rows.append({"lesson": ex.lesson, "exercise": ex_id, "title": ex.title, "status": status,
                     "attempts": int(entry.get("attempts", 0)), "first passed": entry.get("first_passed", "")})
    table = pd.DataFrame(rows, columns=["lesson", "exercise", "title", "status", "attempts", "first passed"])
    table.attrs["path"] = str(path)
    table.attrs["passed"] = int((table["status"] == "passed ✓").sum())
    return table


def reset_progress() -> None:
    """Forget all progress (removes the progress file)."""
    try:
        progress_path().unlink()
    except FileNotFoundError:
        pass


# =========================================================================== the catalogue
# Every exercise: a reference with the exercise's exact signature (the package's own
# implementation where there is one), a "family" implementation whose ``flags``
# switch on the usual mistakes, the cases, the named mistakes and the hints.


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(seed: int, *shape: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=_g(seed), dtype=dtype)


def _t(values: Sequence[float], dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def _case(label: str, *args: Any, run: Callable[..., Any] | None = None, **kwargs: Any) -> Case:
    """A case whose arguments are plain values (deep-copied for every run)."""
    return Case(label, lambda: (copy.deepcopy(args), copy.deepcopy(kwargs)), run)


# --------------------------------------------------------------------------- lesson 00
def normalize_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255, N×1×H×W → float32 ``(x / 255 − MEAN) / STD`` with the training set's constants."""
    return normalize(images)


def _normalize_family(images, *, flags=frozenset()):
    x = images.float() if "no_scale" in flags else images.float() / 255
    mean, std = (x.mean(), x.std()) if "own_stats" in flags else (MEAN, STD)
    if "no_std" in flags:
        return x - mean
    return (x - mean) / (std * std if "variance" in flags else std)


def _uint8(seed: int, *shape: int) -> torch.Tensor:
    return torch.randint(0, 256, shape, generator=_g(seed), dtype=torch.uint8)


_register(Exercise(
    "normalize_pixels", "00", "Normalize FashionMNIST pixels", normalize_pixels,
    cases=[
        Case("two random 28×28 images", lambda: ((_uint8(0, 2, 1, 28, 28),), {})),
        Case("a black and a white 4×4 image", lambda: ((torch.stack([torch.zeros(1, 4, 4, dtype=torch.uint8),
                                                                      torch.full((1, 4, 4), 255, dtype=torch.uint8)]),), {})),
        Case("one tiny 3×5 image", lambda: ((_uint8(1, 1, 1, 3, 5),), {})),
    ],
    mistakes=[
        Mistake("no_scale", "You subtracted MEAN and divided by STD without first dividing the pixels by 255. MEAN "
                            "and STD are for pixels scaled to 0…1: use images.float() / 255 first."),
        Mistake("own_stats", "You normalized with this batch's own mean and standard deviation. Use the training "
                             "set's constants MEAN and STD for every batch and every split, so the network always sees "
                             "inputs scaled the same way."),
        Mistake("no_std", "You subtracted MEAN but did not divide by STD: the result has mean 0 but the pixels' "
                          "spread (about 0.35), not 1."),
        Mistake("variance", "You divided by STD² (the variance) instead of STD: standardizing divides by the "
                            "standard deviation."),
    ],
    hints=["Three steps: turn the uint8 tensor into floats, scale 0…255 to 0…1, then (x − MEAN) / STD.",
           "images.float() / 255 gives floats in 0…1; MEAN and STD are imported from resnet_tutorial.data."],
    family=_normalize_family,
))


# --------------------------------------------------------------------------- lesson 01
_WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


def weight_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """L2 norm of every Conv2d/Linear weight gradient, in ``model.modules()`` order, after one
    fresh cross-entropy backward pass on ``(x, y)``."""
    model.zero_grad(set_to_none=True)
    nn.CrossEntropyLoss()(model(x), y).backward()
    return [float(m.weight.grad.detach().double().norm()) for m in model.modules() if isinstance(m, _WEIGHT_LAYERS)]


def _grad_norms_family(model, x, y, *, flags=frozenset()):
    if "not_zeroed" not in flags:
        model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    if "with_batchnorm" in flags:
        layers = [m for m in model.modules() if isinstance(getattr(m, "weight", None), torch.Tensor)]
    else:
        layers = [m for m in model.modules() if isinstance(m, _WEIGHT_LAYERS)]
    if "reversed" in flags:
        layers = layers[::-1]
    out = []
    for m in layers:
        t = m.weight.detach() if "weight_norms" in flags else m.weight.grad
        out.append(float(t.pow(2).sum()) if "squared" in flags else float(t.norm()))
    return out


def _mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))


def _bn_cnn(seed: int = 1) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def _labels(seed: int, n: int, classes: int = 3) -> torch.Tensor:
    return torch.randint(0, classes, (n,), generator=_g(seed))


def _mlp_args(seed: int = 0):
    return (_mlp(seed), _randn(10 + seed, 4, 3, 2, 2, dtype=torch.float32), _labels(20 + seed, 4)), {}


def _cnn_args(seed: int = 1, stale: bool = False):
    model = _bn_cnn(seed)
    if stale:  # an earlier backward pass left its gradients in .grad
        F.cross_entropy(model(_randn(99, 5, 1, 6, 6, dtype=torch.float32)), _labels(98, 5)).backward()
    return (model, _randn(30 + seed, 5, 1, 6, 6, dtype=torch.float32), _labels(40 + seed, 5)), {}


def _twice(fn, *args, **kwargs):
    fn(*args, **kwargs)
    return fn(*args, **kwargs)


_register(Exercise(
    "weight_grad_norms", "01", "Per-layer weight-gradient norms", weight_grad_norms,
    cases=[
        Case("a 3-layer MLP on a batch of 4", _mlp_args),
        Case("a small CNN with BatchNorm, a batch of 5", _cnn_args),
        Case("the CNN arriving with stale gradients from an earlier step in .grad",
             functools.partial(_cnn_args, stale=True)),
        Case("the MLP with your function called twice in a row (the second answer is checked)",
             functools.partial(_mlp_args, 2), run=_twice),
    ],
    mistakes=[
        Mistake("weight_norms", "These are the norms of the weights themselves (layer.weight), not of their "
                                "gradients: after loss.backward() each gradient is in layer.weight.grad."),
        Mistake("not_zeroed", "The gradients were never zeroed: PyTorch *adds* every backward pass's gradients to "
                              "whatever is already in .grad, so stale gradients (or your previous call's) are "
                              "included. Call model.zero_grad() before loss.backward()."),
        Mistake("with_batchnorm", "You included BatchNorm's weight (γ) as well: only Conv2d and Linear layers "
                                  "count here. Filter with isinstance(m, (nn.Conv2d, nn.Linear))."),
        Mistake("squared", "These are squared norms (the sum of squares): take the square root, e.g. "
                           "g.norm() or g.pow(2).sum().sqrt()."),
        Mistake("reversed", "The norms come out in reverse order (output to input): keep the order of "
                            "model.modules(), first layer first."),
    ],
    hints=["Zero the old gradients, run the model, compute F.cross_entropy(model(x), y), call .backward().",
           "Then loop over model.modules(), keep the nn.Conv2d and nn.Linear ones, and read m.weight.grad.",
           "float(m.weight.grad.norm()) turns each norm into a plain Python float."],
    family=_grad_norms_family,
))


def chain_rule_product(jacobians: list[torch.Tensor], grad_output: torch.Tensor) -> torch.Tensor:
    """dL/da(0) from the layer Jacobians ``J(k) = d a(k+1) / d a(k)`` (shape out × in, in layer order)
    and ``grad_output = dL/da(L)``: the row vector times J(L−1) ··· J(0)."""
    g = grad_output
    for jac in reversed(jacobians):
        g = g @ jac
    return g


def _chain_family(jacobians, grad_output, *, flags=frozenset()):
    order = list(jacobians) if "wrong_order" in flags else list(reversed(jacobians))
    if "skip_first" in flags:
        order = [j for j in order if j is not jacobians[0]]
    g = grad_output
    for jac in order:
        g = jac @ g if "transposed" in flags else g @ jac
    return g


def _jacobians(seed: int, sizes: Sequence[int], scale: float = 1.0):
    """Jacobians for layers with ``sizes[0] → sizes[1] → ...`` units, and dL/da(L)."""
    jacs = [scale * _randn(seed + k, sizes[k + 1], sizes[k]) for k in range(len(sizes) - 1)]
    return (jacs, _randn(seed + 100, sizes[-1])), {}


_register(Exercise(
    "chain_rule_product", "01", "Backpropagation as a product of Jacobians", chain_rule_product,
    cases=[
        Case("one 3×3 Jacobian", functools.partial(_jacobians, 0, (3, 3))),
        Case("three square 4×4 Jacobians", functools.partial(_jacobians, 10, (4, 4, 4, 4))),
        Case("three Jacobians of different sizes: 5 → 4 → 3 → 2 units", functools.partial(_jacobians, 20, (5, 4, 3, 2))),
        Case("six small 3×3 Jacobians (a vanishing product)", functools.partial(_jacobians, 30, (3,) * 7, 0.25)),
    ],
    mistakes=[
        Mistake("wrong_order", "You multiplied the Jacobians in layer order, J(0) first. The gradient meets them on "
                               "its way *back*: start from dL/da(L) and multiply by J(L−1), then J(L−2), ..., J(0) "
                               "last (loop over reversed(jacobians))."),
        Mistake("transposed", "You computed J @ g, i.e. multiplied by the transposed Jacobians. With the row-vector "
                              "convention of the lesson the gradient is g @ J: dL/da(k) = dL/da(k+1) · J(k)."),
        Mistake("skip_first", "Off by one: J(0) is missing, so this is dL/da(1), the gradient at the first layer's "
                              "output. Multiply by every Jacobian, J(0) included."),
    ],
    hints=["Start with g = grad_output and multiply it by one Jacobian per layer.",
           "The row vector goes on the left: g = g @ J. Which Jacobian does the gradient meet first on its way back?",
           "for J in reversed(jacobians): g = g @ J"],
    family=_chain_family, rtol=1e-7, atol=1e-10,
))


# --------------------------------------------------------------------------- lesson 02
def bn_forward_train(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """BatchNorm2d in training mode: batch mean and biased variance per channel over N, H, W."""
    return batch_norm_2d(x, None, None, gamma, beta, training=True, eps=eps)


def _bn_dims(flags: frozenset) -> tuple[int, ...]:
    if "batch_only" in flags:
        return (0,)
    if "per_image" in flags:
        return (2, 3)
    return (0, 2, 3)


def _bn_train_family(x, gamma, beta, eps=1e-5, *, flags=frozenset()):
    dims = _bn_dims(flags)
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, correction=1 if "unbiased" in flags else 0)
    x_hat = (x - mean) / (var.sqrt() + eps if "eps_outside" in flags else torch.sqrt(var + eps))
    if "no_affine" in flags:
        return x_hat
    return gamma.view(1, -1, 1, 1) * x_hat + beta.view(1, -1, 1, 1)


def _near_constant(seed: int, n: int = 6, size: int = 3) -> torch.Tensor:
    x = _randn(seed, n, 2, size, size)
    x[:, 0] = 5 + 1e-3 * x[:, 0]
    return x


_BN_DIAGNOSES = {
    "unbiased": "You normalized with the unbiased variance (dividing by m − 1). In training mode BatchNorm divides by "
                "m = N·H·W, the exact variance of the values in hand: x.var(dim=(0, 2, 3), unbiased=False) (or "
                "mean of the squared deviations). The unbiased one belongs in the *running* variance only.",
    "eps_outside": "ε is outside the square root: you divided by √σ² + ε instead of √(σ² + ε). It only shows when a "
                   "channel is almost constant (σ² close to ε), which is exactly when ε is there to help.",
    "batch_only": "Your statistics are taken over the batch dimension only (one mean per channel *and pixel*). "
                  "BatchNorm2d uses all N·H·W values of a channel: reduce over dims (0, 2, 3).",
    "per_image": "Your statistics are taken per image (over H and W only): that is instance normalization. "
                 "BatchNorm2d shares one mean and variance per channel across the batch: reduce over dims (0, 2, 3).",
    "no_affine": "γ and β are missing: after normalizing, scale by gamma and shift by beta, reshaped to "
                 "(1, C, 1, 1) so that they broadcast over N, H and W.",
}

_register(Exercise(
    "bn_forward_train", "02", "BatchNorm2d forward pass, training mode", bn_forward_train,
    cases=[
        Case("odd sizes, a batch of 4 with 3 channels of 5×7 pixels, γ and β not 1 and 0",
             lambda: ((_randn(0, 4, 3, 5, 7) * 3 + 2, _t([0.5, 2.0, -1.0]), _t([1.0, -2.0, 0.5])), {})),
        Case("a near-constant channel (values 5 ± 0.001), where ε matters",
             lambda: ((_near_constant(1), _t([1.5, 1.0]), _t([0.0, 0.5])), {})),
        Case("a batch of 2 images of 1×1 pixels, so m = N·H·W = 2",
             lambda: ((_randn(2, 2, 4, 1, 1) * 2, _t([1.0, 2.0, 0.5, 1.0]), _t([0.0, 1.0, 0.0, -1.0])), {})),
        Case("ε = 0.1 given by the caller", lambda: ((_randn(3, 3, 2, 2, 2), _t([1.0, 3.0]), _t([0.5, 0.0])),
                                                      {"eps": 0.1})),
        Case("a float32 batch (the answer must stay float32)",
             lambda: ((_randn(4, 5, 3, 4, 4, dtype=torch.float32), torch.ones(3), torch.zeros(3)), {})),
    ],
    mistakes=[Mistake(n, d) for n, d in _BN_DIAGNOSES.items()],
    hints=["Per channel c, use all N·H·W values x[:, c]: mean = x.mean(dim=(0, 2, 3), keepdim=True).",
           "The variance divides by m, not m − 1: x.var(dim=(0, 2, 3), keepdim=True, unbiased=False).",
           "x_hat = (x − mean) / sqrt(var + eps); then gamma.view(1, -1, 1, 1) * x_hat + beta.view(1, -1, 1, 1)."],
    family=_bn_train_family,
))


def bn_running_update(running_mean: torch.Tensor, running_var: torch.Tensor, x: torch.Tensor,
                      momentum: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """The running statistics after one training batch ``x``: ``(new_running_mean, new_running_var)``."""
    rm, rv = running_mean.clone(), running_var.clone()
    batch_norm_2d(x, rm, rv, training=True, momentum=momentum)
    return rm, rv


def _running_family(running_mean, running_var, x, momentum=0.1, *, flags=frozenset()):
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), correction=0 if "biased_var" in flags else 1)
    if "replaced" in flags:
        return mean, var
    old, new = (momentum, 1 - momentum) if "momentum_swapped" in flags else (1 - momentum, momentum)
    return old * running_mean + new * mean, old * running_var + new * var


_register(Exercise(
    "bn_running_update", "02", "BatchNorm's running statistics", bn_running_update,
    cases=[
        Case("fresh statistics (mean 0, variance 1), a batch of 8 with 3 channels of 4×4, momentum 0.1",
             lambda: ((torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64),
                       _randn(0, 8, 3, 4, 4) * 2 + 1), {})),
        Case("a batch of 2 images of 1×1 pixels (m = 2), running statistics from earlier batches",
             lambda: ((_t([0.5, -1.0]), _t([2.0, 0.5]), _randn(1, 2, 2, 1, 1) * 3), {})),
        Case("momentum 0.3", lambda: ((_t([1.0, 2.0, 3.0, 4.0]), _t([1.0, 1.0, 2.0, 2.0]), _randn(2, 5, 4, 3, 2) + 1),
                                      {"momentum": 0.3})),
    ],
    mistakes=[
        Mistake("momentum_swapped", "The momentum works the wrong way round: in PyTorch momentum is the weight of "
                                    "the *new* batch, new = (1 − momentum)·old + momentum·batch (Keras uses the "
                                    "opposite convention)."),
        Mistake("biased_var", "The running variance uses the biased batch variance. It estimates the variance of "
                              "the whole population, so it uses the unbiased m/(m − 1)·σ² (x.var(..., unbiased=True)); "
                              "only the normalization itself uses the biased one."),
        Mistake("replaced", "You replaced the running statistics by the batch's own: they are an exponential "
                            "average, (1 − momentum)·old + momentum·batch, so one batch moves them only a little."),
    ],
    hints=["The batch's statistics per channel: reduce over dims (0, 2, 3).",
           "Running mean: (1 − momentum) · running_mean + momentum · batch mean.",
           "Running variance: the same average, with the *unbiased* batch variance (divide by m − 1)."],
    family=_running_family, rtol=1e-6, atol=1e-9,
))


def bn_forward_eval(x: torch.Tensor, running_mean: torch.Tensor, running_var: torch.Tensor, gamma: torch.Tensor,
                    beta: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """BatchNorm2d in eval mode: the running statistics replace the batch's."""
    return batch_norm_2d(x, running_mean, running_var, gamma, beta, training=False, eps=eps)


def _eval_family(x, running_mean, running_var, gamma, beta, eps=1e-5, *, flags=frozenset()):
    shape = (1, -1, 1, 1)
    if "batch_stats" in flags:
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), correction=0)
    else:
        mean, var = running_mean, running_var
    mean, var = mean.view(shape), var.view(shape)
    if "no_sqrt" in flags:
        denom = var + eps
    else:
        denom = var.sqrt() + eps if "eps_outside" in flags else torch.sqrt(var + eps)
    x_hat = (x - mean) / denom
    return x_hat if "no_affine" in flags else gamma.view(shape) * x_hat + beta.view(shape)


_register(Exercise(
    "bn_forward_eval", "02", "BatchNorm2d forward pass, eval mode", bn_forward_eval,
    cases=[
        Case("a batch of 4 whose own statistics are far from the running ones",
             lambda: ((_randn(0, 4, 3, 3, 3) * 2 + 1, _t([0.5, -1.0, 2.0]), _t([0.25, 4.0, 1.0]),
                       _t([1.0, 2.0, 0.5]), _t([0.0, 1.0, -1.0])), {})),
        Case("a single image (batch of 1): eval mode must work for it",
             lambda: ((_randn(1, 1, 2, 2, 3), _t([0.0, 1.0]), _t([1.0, 2.0]), _t([1.0, 1.0]), _t([0.0, 0.0])), {})),
        Case("a tiny running variance (1e-6), where ε matters",
             lambda: ((_randn(2, 3, 2, 2, 2) * 1e-3, _t([0.0, 0.0]), _t([1e-6, 1.0]), _t([1.0, 1.0]),
                       _t([0.5, 0.0])), {})),
    ],
    mistakes=[
        Mistake("batch_stats", "You normalized with the batch's own mean and variance, as in training mode. In eval "
                               "mode BN uses running_mean and running_var, so one image's output no longer depends "
                               "on the rest of its batch."),
        Mistake("eps_outside", _BN_DIAGNOSES["eps_outside"]),
        Mistake("no_sqrt", "You divided by the variance (plus ε) instead of the standard deviation: "
                           "x_hat = (x − μ̂) / √(σ̂² + ε)."),
        Mistake("no_affine", _BN_DIAGNOSES["no_affine"]),
    ],
    hints=["Nothing is computed from x except the normalization itself: use running_mean and running_var.",
           "Reshape every per-channel vector to (1, C, 1, 1) so it broadcasts over N, H, W.",
           "gamma * (x − running_mean) / sqrt(running_var + eps) + beta, all reshaped."],
    family=_eval_family,
))


def bn_identity_params(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """``(gamma, beta)`` that make training-mode BN give back ``x`` itself: √(σ²_B + ε) and μ_B per channel."""
    mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), correction=0)
    return torch.sqrt(var + eps), mean


def _identity_family(x, eps=1e-5, *, flags=frozenset()):
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), correction=1 if "unbiased" in flags else 0)
    scale = var + eps if "no_sqrt" in flags else (var.sqrt() if "no_eps" in flags else torch.sqrt(var + eps))
    return (mean, scale) if "swapped" in flags else (scale, mean)


def _channels_near_constant(seed: int) -> torch.Tensor:
    return _randn(seed, 8, 2, 3, 3) * 1e-3 + _t([1.0, -2.0]).view(1, 2, 1, 1)


_register(Exercise(
    "bn_identity_params", "02", "γ and β that undo the normalization", bn_identity_params,
    cases=[
        Case("a batch of 16 with 3 channels of 6×6, mean 5 and std 3", lambda: ((_randn(0, 16, 3, 6, 6) * 3 + 5,), {})),
        Case("near-constant channels (std 0.001), where ε matters", lambda: ((_channels_near_constant(1),), {})),
        Case("a batch of 2 images of 1×1 pixels", lambda: ((_randn(2, 2, 3, 1, 1),), {})),
    ],
    mistakes=[
        Mistake("no_eps", "γ must be √(σ² + ε), not σ: BN divides by √(σ² + ε), so only that undoes it exactly "
                          "(the difference shows on near-constant channels)."),
        Mistake("unbiased", "You used the unbiased variance: BN normalized with the biased one (divide by m), so "
                            "γ = √(σ²_B + ε) with the biased σ²_B."),
        Mistake("swapped", "γ and β are swapped: γ (the scale) must be the standard deviation √(σ² + ε) and β "
                           "(the shift) the mean."),
        Mistake("no_sqrt", "γ is the variance (plus ε), not its square root: BN divided by √(σ² + ε)."),
    ],
    hints=["BN computed x_hat = (x − μ) / √(σ² + ε). Solve γ·x_hat + β = x for γ and β.",
           "Both are per-channel vectors of shape (C,): reduce over dims (0, 2, 3), biased variance."],
    family=_identity_family, rtol=1e-6, atol=1e-10,
))


# --------------------------------------------------------------------------- lesson 03
def zero_pad_shortcut(x: torch.Tensor, out_channels: int, stride: int) -> torch.Tensor:
    """He et al.'s option A: keep every ``stride``-th pixel, then append zero channels up to ``out_channels``."""
    return ZeroPadShortcut(x.shape[1], out_channels, stride)(x)


def _zeropad_family(x, out_channels, stride, *, flags=frozenset()):
    if "pooled" in flags:
        x = F.avg_pool2d(x, stride) if stride > 1 else x
    elif "no_subsample" not in flags:
        x = x[:, :, ::stride, ::stride]
    zeros = x.new_zeros(x.shape[0], out_channels - x.shape[1], x.shape[2], x.shape[3])
    return torch.cat([zeros, x] if "zeros_first" in flags else [x, zeros], dim=1)


def _f32(seed: int, *shape: int) -> torch.Tensor:
    return _randn(seed, *shape, dtype=torch.float32)


_register(Exercise(
    "zero_pad_shortcut", "03", "The zero-padding shortcut (option A)", zero_pad_shortcut,
    cases=[
        Case("stride 2, 4 → 8 channels, a batch of 2 of 8×8", lambda: ((_f32(0, 2, 4, 8, 8), 8, 2), {})),
        Case("stride 1: only channels are added, 3 → 5 channels of 5×5", lambda: ((_f32(1, 1, 3, 5, 5), 5, 1), {})),
        Case("stride 3 on an odd 7×7 map, 2 → 6 channels", lambda: ((_f32(2, 2, 2, 7, 7), 6, 3), {})),
        Case("nothing to add: 4 → 4 channels at stride 2 on 6×6", lambda: ((_f32(3, 1, 4, 6, 6), 4, 2), {})),
    ],
    mistakes=[
        Mistake("no_subsample", "The input is not subsampled: with stride s the shortcut must keep every s-th "
                                "row and column, x[:, :, ::s, ::s], so that its size matches the strided branch."),
        Mistake("zeros_first", "The zero channels come before the input's channels: option A appends them *after*, "
                               "so channel c of the output is channel c of the input."),
        Mistake("pooled", "You averaged over s×s windows (avg_pool2d) instead of subsampling: option A keeps single "
                          "pixels, x[:, :, ::s, ::s], which also keeps odd sizes right (7 → 3 at stride 3)."),
    ],
    hints=["Two steps: subsample the spatial dimensions, then add channels of zeros.",
           "x[:, :, ::stride, ::stride] keeps every stride-th row and column (odd sizes round up).",
           "torch.cat([x, zeros], dim=1) with zeros = x.new_zeros(N, out_channels − C, H, W)."],
    family=_zeropad_family, rtol=0.0, atol=0.0,
))


def residual_block_forward(x: torch.Tensor, conv1: nn.Module, bn1: nn.Module, conv2: nn.Module, bn2: nn.Module,
                           shortcut: nn.Module | None = None) -> torch.Tensor:
    """The basic block: ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + s(x)), ``s`` the identity when ``shortcut`` is None."""
    from .blocks import BasicBlock

    block = BasicBlock(conv1.in_channels, conv1.out_channels, conv1.stride[0], downsample=shortcut)
    block.conv1, block.bn1, block.conv2, block.bn2 = conv1, bn1, conv2, bn2
    return block(x)


def _block_family(x, conv1, bn1, conv2, bn2, shortcut=None, *, flags=frozenset()):
    out = bn1(conv1(x))
    if "no_inner_relu" not in flags:
        out = torch.relu(out)
    out = bn2(conv2(out))
    if "relu_before_add" in flags:
        out = torch.relu(out)
    if "no_shortcut" not in flags:
        out = out + (x if shortcut is None else shortcut(x))
    return out if {"relu_before_add", "no_final_relu"} & set(flags) else torch.relu(out)


def _block_modules(seed: int, c_in: int, c_out: int, stride: int, projection: bool, eval_mode: bool = False):
    torch.manual_seed(seed)
    mods = [conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out), conv3x3(c_out, c_out), nn.BatchNorm2d(c_out)]
    short = nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out)) if projection else None
    if eval_mode:
        for bn in (mods[1], mods[3]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.eval()
    return mods, short


def _block_args(seed: int, n: int, c_in: int, c_out: int, size: int, stride: int = 1, projection: bool = False,
                eval_mode: bool = False):
    mods, short = _block_modules(seed, c_in, c_out, stride, projection, eval_mode)
    return (_f32(seed + 50, n, c_in, size, size), *mods, short), {}


_register(Exercise(
    "residual_block_forward", "03", "The basic residual block's forward pass", residual_block_forward,
    cases=[
        Case("an identity shortcut (shortcut=None): 4 channels, a batch of 3 of 5×5",
             functools.partial(_block_args, 0, 3, 4, 4, 5)),
        Case("4 → 8 channels at stride 2 with a 1×1 projection shortcut",
             functools.partial(_block_args, 1, 2, 4, 8, 6, 2, True)),
        Case("BatchNorm layers in eval mode with running statistics, as at test time",
             functools.partial(_block_args, 2, 2, 4, 4, 4, eval_mode=True)),
    ],
    mistakes=[
        Mistake("relu_before_add", "The ReLU is applied to the branch before the addition (ReLU(F(x)) + x). The "
                                   "basic block adds first and applies the ReLU to the sum: ReLU(F(x) + s(x))."),
        Mistake("no_final_relu", "The ReLU after the addition is missing: the basic block returns ReLU(F(x) + s(x)), "
                                 "so its output is never negative."),
        Mistake("no_inner_relu", "The ReLU between the two convolutions is missing: F(x) = bn2(conv2(ReLU(bn1(conv1(x)))))."),
        Mistake("no_shortcut", "The shortcut is missing: without + s(x) this is a plain block. Add x (or "
                               "shortcut(x) when a shortcut module is given) before the last ReLU."),
    ],
    hints=["The branch: conv1 → bn1 → ReLU → conv2 → bn2.",
           "The shortcut: x itself when shortcut is None, else shortcut(x) (it fixes the shape).",
           "Add the two, then apply the ReLU: torch.relu(branch + identity)."],
    family=_block_family,
))


def residual_stack(x: torch.Tensor, branches: Sequence[Callable[[torch.Tensor], torch.Tensor]],
                   shortcut: bool = True) -> torch.Tensor:
    """Run ``x`` through the branches in order: x ← x + f(x) with shortcuts, x ← f(x) without (a plain stack)."""
    for f in branches:
        x = x + f(x) if shortcut else f(x)
    return x


def _stack_family(x, branches, shortcut=True, *, flags=frozenset()):
    h = x
    for f in branches:
        inp = x if "branch_on_input" in flags else h
        if shortcut or "always_residual" in flags:
            h = (x if "adds_input" in flags else h) + f(inp)
        else:
            h = f(inp)
    return h


def _stack_args(seed: int, n: int, shortcut: bool | None):
    torch.manual_seed(seed)
    branches = [nn.Sequential(nn.Linear(4, 4), nn.Tanh()) for _ in range(n)]
    kwargs = {} if shortcut is None else {"shortcut": shortcut}
    return (_f32(seed + 7, 3, 4), branches), kwargs


_register(Exercise(
    "residual_stack", "03", "A plain stack versus a residual stack", residual_stack,
    cases=[
        Case("three branches with shortcuts (shortcut=True)", functools.partial(_stack_args, 0, 3, True)),
        Case("the same three branches as a plain stack (shortcut=False)", functools.partial(_stack_args, 0, 3, False)),
        Case("a single branch, shortcut left at its default", functools.partial(_stack_args, 1, 1, None)),
        Case("five branches, plain", functools.partial(_stack_args, 2, 5, False)),
    ],
    mistakes=[
        Mistake("adds_input", "You added the stack's *input* x to every branch's output. Each residual unit adds "
                              "its own input, the previous unit's output: h = h + f(h)."),
        Mistake("branch_on_input", "Every branch was applied to the stack's input x instead of the previous "
                                   "unit's output: the units are chained, h = h + f(h) (or h = f(h) when plain)."),
        Mistake("always_residual", "The plain stack still adds the shortcut: with shortcut=False each unit is "
                                   "just h = f(h)."),
    ],
    hints=["Keep one running tensor h, starting at x, and update it once per branch.",
           "With shortcuts: h = h + f(h). Without: h = f(h)."],
    family=_stack_family,
))


# --------------------------------------------------------------------------- lesson 04
def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output height (or width) of a conv or pooling layer: ⌊(H + 2p − k) / s⌋ + 1."""
    from .lessons.l04_shape_tracing_resnet18 import (
        conv_output_size as lesson_formula,  # imports torchvision: lazily
    )

    return lesson_formula(size, kernel, stride, padding)


def _conv_size_family(size, kernel, stride=1, padding=0, *, flags=frozenset()):
    span = size + (padding if "one_side_padding" in flags else 2 * padding) - kernel
    if "float" in flags:
        q = span / stride
    elif "ceil" in flags:
        q = -(-span // stride)
    else:
        q = span // stride
    return q if "no_plus_one" in flags else q + 1


_register(Exercise(
    "conv_output_size", "04", "The output-size formula", conv_output_size,
    cases=[
        _case("ResNet's stem: 224 px, 7×7 kernel, stride 2, padding 3", 224, 7, 2, 3),
        _case("the max pool after it: 112 px, 3×3, stride 2, padding 1", 112, 3, 2, 1),
        _case("a 3×3 conv that keeps the size: 28 px, stride 1, padding 1", 28, 3, 1, 1),
        _case("post 000's stride-3 stem: 224 px, 7×7, stride 3, padding 3", 224, 7, 3, 3),
        _case("an odd 7×7 map, 3×3 kernel, stride 2, no padding", 7, 3, 2, 0),
        _case("stride 3 without padding: 10 px, 3×3 kernel", 10, 3, 3, 0),
        _case("a kernel as large as the map: 5 px, 5×5 (padding and stride left at their defaults)", 5, 5),
    ],
    mistakes=[
        Mistake("ceil", "You rounded up. The window only counts where it fits completely, so the formula rounds "
                        "*down*: ⌊(H + 2p − k) / s⌋ + 1, which is (H + 2 * p - k) // s + 1 in Python."),
        Mistake("no_plus_one", "The \"+ 1\" is missing: ⌊(H + 2p − k) / s⌋ counts the steps the window can move; "
                               "the first position comes on top of them."),
        Mistake("one_side_padding", "Padding is counted on one side only: p pixels are added on *both* sides, "
                                    "so the padded size is H + 2p."),
        Mistake("float", "The answer is a float: / is true division in Python 3. Use // (floor division), which "
                         "rounds down and keeps an int."),
    ],
    hints=["Pad first: the map is H + 2p wide. How many positions can a window of k fit in it at stride s?",
           "Python's // divides and rounds down, on ints."],
    family=_conv_size_family,
))


_STAGES = ("input", "conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc")


def resnet18_stage_shapes(n: int, channels: int, size: int, num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """The output shape of every top-level stage of torchvision's ResNet-18 for an n×channels×size×size batch."""
    shapes: dict[str, tuple[int, ...]] = {"input": (n, channels, size, size)}
    h = conv_output_size(size, 7, 2, 3)
    shapes["conv1"] = (n, 64, h, h)
    h = conv_output_size(h, 3, 2, 1)
    shapes["maxpool"] = shapes["layer1"] = (n, 64, h, h)
    for c, stage in ((128, "layer2"), (256, "layer3"), (512, "layer4")):
        h = conv_output_size(h, 3, 2, 1)
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"], shapes["fc"] = (n, 512, 1, 1), (n, num_classes)
    return shapes


def _stages_family(n, channels, size, num_classes=1000, *, flags=frozenset()):
    def down(h: int, k: int, p: int) -> int:
        return h // 2 if "floor_halving" in flags else (h + 2 * p - k) // 2 + 1

    shapes = {"input": (n, channels, size, size)}
    h = down(size, 7, 3)
    shapes["conv1"] = (n, 64, h, h)
    h = h if "no_maxpool" in flags else down(h, 3, 1)
    shapes["maxpool"] = (n, 64, h, h)
    h = down(h, 3, 1) if "layer1_halves" in flags else h
    shapes["layer1"] = (n, 64, h, h)
    c = 64
    for stage in ("layer2", "layer3", "layer4"):
        h, c = down(h, 3, 1), c if "same_channels" in flags else 2 * c
        shapes[stage] = (n, c, h, h)
    shapes["avgpool"], shapes["fc"] = (n, c, 1, 1), (n, num_classes)
    return shapes


_register(Exercise(
    "resnet18_stage_shapes", "04", "ResNet-18's stage shapes by hand", resnet18_stage_shapes,
    cases=[
        _case("one 3×224×224 image", 1, 3, 224),
        _case("a batch of 2 gray 100×100 images, 10 classes (odd sizes on the way)", 2, 1, 100, 10),
        _case("a batch of 4 CIFAR-sized 32×32 images", 4, 3, 32),
        _case("a batch of 3 odd-sized 97×97 images", 3, 3, 97),
    ],
    mistakes=[
        Mistake("no_maxpool", "The max pool does not shrink the map here: after conv1 the 3×3 max pool with "
                              "stride 2 (padding 1) halves it again, so layer1 sees 56×56 for a 224 input."),
        Mistake("layer1_halves", "layer1 keeps the size: its blocks have stride 1. Only layer2, layer3 and layer4 "
                                 "start with a stride-2 block."),
        Mistake("floor_halving", "You halved with size // 2. A stride-2 layer with padding gives "
                                 "⌊(H + 2p − k)/2⌋ + 1, which rounds *up* for odd sizes (25 → 13, not 12)."),
        Mistake("same_channels", "The channel count never changes in your answer: each of layer2, layer3, layer4 "
                                 "doubles it (64 → 128 → 256 → 512) while halving the size."),
    ],
    hints=["conv1 is 7×7, stride 2, padding 3; the max pool 3×3, stride 2, padding 1.",
           "layer1 keeps size and channels; layer2-4 each halve the size (3×3, stride 2, padding 1) and double the "
           "channels.",
           "avgpool is adaptive: always 1×1. fc gives (n, num_classes). Use your conv_output_size."],
    family=_stages_family,
))


# --------------------------------------------------------------------------- lesson 05
def merge_output_shape(f_shape: Sequence[int], s_shape: Sequence[int], merge: str) -> tuple[int, ...]:
    """Shape after merging the branch output (``f_shape``) with the shortcut (``s_shape``): "add" or "cat"
    along the channels; a ValueError when the merge is impossible."""
    f, s = tuple(f_shape), tuple(s_shape)
    if merge == "add":
        if f != s:
            raise ValueError(f"cannot add shapes {f} and {s}: they must be equal")
        return f
    if merge == "cat":
        if len(f) != len(s) or f[0] != s[0] or f[2:] != s[2:]:
            raise ValueError(f"cannot concatenate {f} and {s} along channels: batch and spatial sizes must match")
        return (f[0], f[1] + s[1], *f[2:])
    raise ValueError(f"merge must be 'add' or 'cat', got {merge!r}")


def _merge_family(f_shape, s_shape, merge, *, flags=frozenset()):
    f, s = tuple(f_shape), tuple(s_shape)
    if merge == "add":
        if f != s and "add_no_check" not in flags:
            raise ValueError("shapes differ")
        return (f[0], f[1] + s[1], *f[2:]) if "add_sums" in flags else f
    dim = 0 if "cat_batch" in flags else 1
    if "cat_no_check" not in flags and any(f[i] != s[i] for i in range(len(f)) if i != dim):
        raise ValueError("shapes differ")
    out = list(f)
    out[dim] = f[dim] + s[dim]
    return tuple(out)


_register(Exercise(
    "merge_output_shape", "05", "Add versus concatenate: output shapes", merge_output_shape,
    cases=[
        _case("adding two 1×64×28×28 tensors", (1, 64, 28, 28), (1, 64, 28, 28), "add"),
        _case("concatenating the same two", (1, 64, 28, 28), (1, 64, 28, 28), "cat"),
        _case("concatenating 64 and 32 channels of 14×14", (2, 64, 14, 14), (2, 32, 14, 14), "cat"),
        _case("adding 64 and 32 channels (must be refused)", (2, 64, 14, 14), (2, 32, 14, 14), "add"),
        _case("concatenating 8×8 and 7×7 maps (must be refused)", (2, 16, 8, 8), (2, 16, 7, 7), "cat"),
    ],
    mistakes=[
        Mistake("cat_batch", "You concatenated along the batch dimension (dim 0). A merge stacks channels: "
                             "torch.cat([f, s], dim=1), so the batch size stays and the channel counts add up."),
        Mistake("add_sums", "Addition does not add channels: x + y is element-wise and keeps the shape "
                            "(C channels in, C channels out). Only concatenation gives C₁ + C₂."),
        Mistake("add_no_check", "An add with different shapes must be refused (raise ValueError): element-wise "
                                "addition needs identical shapes."),
        Mistake("cat_no_check", "Concatenating along channels needs the same batch size and the same height and "
                                "width: refuse other shapes with a ValueError."),
    ],
    hints=["add: both shapes must be identical, and the result has that same shape.",
           "cat along dim 1: N, H and W must agree; the channel counts add up.",
           "raise ValueError(...) when the shapes do not allow the merge."],
    family=_merge_family,
))


def dense_block_channels(in_channels: int, growth_rate: int, num_layers: int) -> list[int]:
    """Channels entering each of a dense block's layers, then the channels leaving the block
    (``num_layers + 1`` numbers)."""
    return [in_channels + i * growth_rate for i in range(num_layers + 1)]


def _dense_family(in_channels, growth_rate, num_layers, *, flags=frozenset()):
    ks = range(1, num_layers + 1) if "outputs_only" in flags else range(num_layers if "no_output" in flags
                                                                           else num_layers + 1)
    if "doubling" in flags:
        return [in_channels * 2 ** i for i in ks]
    base = 0 if "growth_only" in flags else in_channels
    return [base + i * growth_rate for i in ks]


_register(Exercise(
    "dense_block_channels", "05", "DenseNet's channel bookkeeping", dense_block_channels,
    cases=[
        _case("DenseNet-121's first block: 64 channels in, growth rate 32, 6 layers", 64, 32, 6),
        _case("its second block: 128 in, growth 32, 12 layers", 128, 32, 12),
        _case("one layer: 3 in, growth 4", 3, 4, 1),
        _case("no layers at all: 16 in", 16, 12, 0),
    ],
    mistakes=[
        Mistake("no_output", "The block's output is missing at the end: after the last layer the block emits "
                             "in_channels + num_layers·growth_rate channels, so the list has num_layers + 1 numbers."),
        Mistake("outputs_only", "The first number must be what enters the first layer (in_channels itself); your "
                                "list starts one layer late."),
        Mistake("doubling", "The channels double at every layer in your answer. A dense layer adds only "
                            "growth_rate new channels to what it received, so the count grows linearly: "
                            "c₀ + ℓ·k."),
        Mistake("growth_only", "The block's input channels are missing: every layer receives the block's input "
                               "*plus* all new channels so far, c₀ + ℓ·k."),
    ],
    hints=["Layer ℓ (counting from 0) receives the block's input and the k new channels of each earlier layer.",
           "That is in_channels + ℓ · growth_rate, for ℓ = 0 … num_layers (the last one is the block's output)."],
    family=_dense_family,
))


# --------------------------------------------------------------------------- lesson 06
def conv_params(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    """Learnable parameters of ``nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)``."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, bias=bias)
    return sum(p.numel() for p in conv.parameters())


def _conv_params_family(in_channels, out_channels, kernel_size, bias=True, *, flags=frozenset()):
    k = kernel_size if "kernel_not_squared" in flags else kernel_size * kernel_size
    weights = k * in_channels * out_channels
    counted = (bias or "bias_always" in flags) and "no_bias" not in flags
    return weights + ((in_channels if "bias_per_input" in flags else out_channels) if counted else 0)


_register(Exercise(
    "conv_params", "06", "Parameters of a convolution", conv_params,
    cases=[
        _case("ResNet's stem conv: 3 → 64 channels, 7×7, no bias", 3, 64, 7, False),
        _case("a 3×3 conv at 64 channels, no bias", 64, 64, 3, False),
        _case("a 1×1 conv 256 → 64 with a bias", 256, 64, 1, True),
        _case("a 3×3 conv 16 → 32 with a bias (left at its default)", 16, 32, 3),
        _case("a single 5×5 filter on one channel, with a bias", 1, 1, 5, True),
    ],
    mistakes=[
        Mistake("kernel_not_squared", "The kernel size must be squared: a k×k kernel has k² weights for every pair "
                                      "of input and output channels, k²·C_in·C_out in all."),
        Mistake("bias_per_input", "A conv has one bias per *output* channel (each filter adds one number), so the "
                                  "bias adds C_out parameters, not C_in."),
        Mistake("bias_always", "You counted a bias even with bias=False: then the layer has only its k²·C_in·C_out "
                               "weights."),
        Mistake("no_bias", "The bias is missing: with bias=True the layer also learns one number per output "
                           "channel (+ C_out)."),
    ],
    hints=["Every output channel has one k×k filter per input channel.",
           "weights = k·k·C_in·C_out; with bias=True add one bias per output channel."],
    family=_conv_params_family,
))


def bottleneck_params(in_channels: int, planes: int) -> int:
    """Parameters of torchvision's ``Bottleneck(in_channels, planes)`` (convs without bias, BN's γ and β), plus
    its 1×1 projection shortcut (conv + BN) when ``in_channels != 4 * planes``."""
    out = Bottleneck.expansion * planes
    down = nn.Sequential(conv1x1(in_channels, out), nn.BatchNorm2d(out)) if in_channels != out else None
    return sum(p.numel() for p in Bottleneck(in_channels, planes, downsample=down).parameters())


def _bottleneck_family(in_channels, planes, *, flags=frozenset()):
    out = 4 * planes
    per_channel = 0 if "no_bn" in flags else (4 if "bn_buffers" in flags else 2)
    total = in_channels * planes + 9 * planes * planes + planes * out + per_channel * (planes + planes + out)
    if (in_channels != out and "no_shortcut" not in flags) or "shortcut_always" in flags:
        total += in_channels * out + per_channel * out
    return total


_register(Exercise(
    "bottleneck_params", "06", "Parameters of a bottleneck block", bottleneck_params,
    cases=[
        _case("an identity block of ResNet-50's layer1: 256 channels, planes 64", 256, 64),
        _case("layer1's first block: 64 → 256 channels (projection shortcut)", 64, 64),
        _case("an identity block of layer4: 2048 channels, planes 512", 2048, 512),
        _case("layer4's first block: 1024 → 2048 channels (projection shortcut)", 1024, 512),
        _case("layer2's first block: 256 → 512 channels (projection shortcut)", 256, 128),
    ],
    mistakes=[
        Mistake("no_bn", "BatchNorm's parameters are missing: every BN layer learns γ and β, 2 numbers per channel "
                         "(2·(planes + planes + 4·planes) in the branch)."),
        Mistake("bn_buffers", "You counted 4 numbers per BN channel: running_mean and running_var are buffers, "
                              "not parameters (they are not learned by gradient descent). Only γ and β count."),
        Mistake("no_shortcut", "The projection shortcut is missing: when in_channels ≠ 4·planes the block needs a "
                               "1×1 conv (in_channels·4·planes weights) and its BN (2·4·planes)."),
        Mistake("shortcut_always", "You added a projection shortcut where the shapes already match: then the "
                                   "shortcut is the identity and costs nothing."),
    ],
    hints=["The branch: 1×1 conv in → planes, 3×3 conv planes → planes, 1×1 conv planes → 4·planes; no biases.",
           "Each conv is followed by a BN with 2 parameters per channel (γ, β).",
           "If in_channels ≠ 4·planes, add a 1×1 conv in → 4·planes and its BN."],
    family=_bottleneck_family,
))


# --------------------------------------------------------------------------- lesson 07
def _bn_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One optimizer step on ``(x, y)`` with the cross-entropy loss; returns the loss as a float."""
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _train_family(model, optimizer, x, y, *, flags=frozenset()):
    if "stays_eval" not in flags:
        model.train()
    if "no_zero_grad" not in flags:
        optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    if "no_update" not in flags:
        optimizer.step()
    return loss if "tensor_loss" in flags else loss.item()


def _train_model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))


def _train_args(seed: int, arrives_in_eval: bool = False):
    model = _train_model(seed)
    if arrives_in_eval:  # an earlier step left gradients behind, then an evaluation switched to eval mode
        F.cross_entropy(model(_f32(77, 6, 1, 5, 5)), _labels(78, 6)).backward()
        model.eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return (model, opt, _f32(seed + 5, 6, 1, 5, 5), _labels(seed + 6, 6)), {}


def _run_train_step(fn, model, optimizer, x, y, steps: int = 1):
    for _ in range(steps):
        loss = fn(model, optimizer, x, y)
    weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    running = torch.cat([m.running_mean.detach().reshape(-1) for m in _bn_modules(model)])
    return Report({"the loss returned": loss, "the weights afterwards": weights,
                   "BatchNorm's running mean afterwards": running})


_register(Exercise(
    "train_step", "07", "One training step", train_step,
    cases=[
        Case("one step on a fresh model with BatchNorm (SGD, lr 0.1), a batch of 6", functools.partial(_train_args, 0),
             run=_run_train_step),
        Case("two steps in a row on the same batch (the second loss is checked)", functools.partial(_train_args, 1),
             run=functools.partial(_run_train_step, steps=2)),
        Case("a model that arrives in eval mode (as after an evaluation), with stale gradients in .grad",
             functools.partial(_train_args, 2, True), run=_run_train_step),
    ],
    mistakes=[
        Mistake("no_zero_grad", "optimizer.zero_grad() is missing: backward() *adds* to the gradients already "
                                "stored, so each step also applies the previous steps' gradients. Zero them before "
                                "loss.backward()."),
        Mistake("no_update", "The weights did not change: optimizer.step() must run after loss.backward() (and "
                             "zero_grad() before the backward pass, not between backward and step)."),
        Mistake("stays_eval", "The model stayed in eval mode: start with model.train(), so that BatchNorm uses "
                              "the batch's statistics and updates its running ones (after an evaluation the "
                              "model is still in eval mode)."),
        Mistake("tensor_loss", "You returned the loss tensor: return loss.item(), a plain float (a tensor keeps "
                               "the whole graph of the step alive, and piles up memory in a loop)."),
    ],
    hints=["The order: model.train(), optimizer.zero_grad(), loss = F.cross_entropy(model(x), y), loss.backward(), "
           "optimizer.step().",
           "Return loss.item()."],
    family=_train_family,
))


def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` classified as ``y``, in eval mode and without recording gradients."""
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    return (pred == y).float().mean().item()


def _evaluate_family(model, x, y, *, flags=frozenset()):
    if "no_eval" not in flags:
        model.eval()
    with torch.set_grad_enabled("no_no_grad" in flags):
        pred = model(x).argmax(dim=1)
    right = (pred == y).float()
    return right.sum().item() if "count" in flags else right.mean().item()


def _eval_args(seed: int, n: int, flipped: int):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    bn = model[1]
    bn.running_mean.fill_(1.5)
    bn.running_var.fill_(3.0)
    x = _f32(seed + 1, n, 4)
    model.eval()
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    y[:flipped] = (y[:flipped] + 1) % 3
    model.train()  # as it is during training
    return (model, x, y), {}


def _run_evaluate(fn, model, x, y):
    recorded: list[bool] = []
    handle = model.register_forward_hook(lambda m, i, o: recorded.append(torch.is_grad_enabled()))
    try:
        accuracy = fn(model, x, y)
    finally:
        handle.remove()
    running = torch.cat([m.running_mean.detach().reshape(-1) for m in _bn_modules(model)])
    return Report({"the accuracy returned": accuracy, "BatchNorm's running mean afterwards": running,
                   "autograd recorded the forward pass": any(recorded)})


_register(Exercise(
    "evaluate_accuracy", "07", "Evaluation: eval mode and no_grad", evaluate_accuracy,
    cases=[
        Case("a model with BatchNorm that arrives in training mode, a batch of 8", functools.partial(_eval_args, 0, 8, 2),
             run=_run_evaluate),
        Case("the same kind of model, 5 images all predicted right", functools.partial(_eval_args, 3, 5, 0),
             run=_run_evaluate),
    ],
    mistakes=[
        Mistake("no_eval", "model.eval() is missing: in training mode BatchNorm normalizes with the test batch's own "
                           "statistics (predictions depend on the batch) and overwrites its running statistics "
                           "with test data."),
        Mistake("no_no_grad", "The forward pass ran with autograd on: wrap it in `with torch.no_grad():`, which "
                              "saves the memory and time of recording a graph nobody will backpropagate through."),
        Mistake("count", "You returned the number of right answers, not the fraction: divide by len(y) "
                         "(or take the mean of the 0/1 hits)."),
    ],
    hints=["Two switches: model.eval() for BatchNorm (and dropout), torch.no_grad() for autograd.",
           "pred = model(x).argmax(dim=1); accuracy = (pred == y).float().mean().item()."],
    family=_evaluate_family,
))


def label_smoothing_targets(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """Soft targets (N × num_classes, float32) as ``F.cross_entropy(..., label_smoothing=smoothing)`` uses them:
    (1 − ε)·one_hot + ε / K."""
    return F.one_hot(y, num_classes).float() * (1 - smoothing) + smoothing / num_classes


def _smoothing_family(y, num_classes, smoothing, *, flags=frozenset()):
    hot = F.one_hot(y, num_classes).float()
    if "other_classes" in flags:
        return hot * (1 - smoothing) + (1 - hot) * smoothing / (num_classes - 1)
    if "no_share" in flags:
        return hot * (1 - smoothing) + (1 - hot) * smoothing / num_classes
    return hot * (1 if "unscaled" in flags else 1 - smoothing) + smoothing / num_classes


_register(Exercise(
    "label_smoothing_targets", "07", "Label smoothing's targets", label_smoothing_targets,
    cases=[
        _case("3 labels, 10 classes, ε = 0.1 (the recipe's setting)", torch.tensor([0, 3, 9]), 10, 0.1),
        _case("2 labels, 3 classes, ε = 0.2", torch.tensor([2, 0]), 3, 0.2),
        _case("ε = 0: plain one-hot targets", torch.tensor([1]), 4, 0.0),
        _case("2 classes, ε = 0.5", torch.tensor([1, 1, 0]), 2, 0.5),
    ],
    mistakes=[
        Mistake("other_classes", "You spread ε over the K − 1 wrong classes only. PyTorch's label smoothing (and "
                                 "the original paper's) mixes with the uniform distribution over *all* K classes: "
                                 "(1 − ε)·one_hot + ε/K, so the true class gets 1 − ε + ε/K."),
        Mistake("no_share", "The true class is missing its share ε/K: every class, the true one included, gets ε/K "
                            "on top of (1 − ε)·one_hot, so each row sums to 1."),
        Mistake("unscaled", "The one-hot part is not scaled by 1 − ε: with one_hot + ε/K the rows sum to 1 + ε. "
                            "Use (1 − ε)·one_hot + ε/K."),
    ],
    hints=["F.one_hot(y, num_classes).float() gives the hard targets.",
           "Mix them with the uniform distribution 1/K: weight 1 − ε for the one-hot, ε for the uniform."],
    family=_smoothing_family,
))


# --------------------------------------------------------------------------- lesson 08
def degradation_or_overfitting(train_err_shallow: float, train_err_deep: float, test_err_shallow: float,
                               test_err_deep: float) -> str:
    """"degradation" when the deeper net has the higher *training* error, else "overfitting" when it has the
    higher test error, else "deeper is better"."""
    if train_err_deep > train_err_shallow:
        return "degradation"
    if test_err_deep > test_err_shallow:
        return "overfitting"
    return "deeper is better"


def _degradation_family(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep, *, flags=frozenset()):
    if "test_only" in flags:
        return "degradation" if test_err_deep > test_err_shallow else "deeper is better"
    answer = degradation_or_overfitting(train_err_shallow, train_err_deep, test_err_shallow, test_err_deep)
    if "swapped" in flags:
        return {"degradation": "overfitting", "overfitting": "degradation"}.get(answer, answer)
    return answer


_register(Exercise(
    "degradation_or_overfitting", "08", "Degradation or overfitting?", degradation_or_overfitting,
    cases=[
        _case("the cached run, plain-20 vs plain-56: training error 9.4 % → 22.1 %, test error 9.1 % → 20.5 %",
              0.094, 0.221, 0.091, 0.205),
        _case("the deeper net fits the training set better but tests worse", 0.05, 0.01, 0.10, 0.14),
        _case("the deeper net is better on both", 0.10, 0.08, 0.12, 0.10),
        _case("the deeper net trains worse but happens to test a little better", 0.09, 0.12, 0.10, 0.09),
    ],
    mistakes=[
        Mistake("test_only", "You judged from the test error. Degradation is about the *training* error: a deeper "
                             "net that fits its own training data worse has an optimization problem, whatever its "
                             "test error. Look at the training errors first."),
        Mistake("swapped", "The two words are swapped: overfitting means a *lower* training error with a higher "
                           "test error (the net memorizes); degradation means a *higher* training error."),
    ],
    hints=["Compare the training errors first: is the deeper net worse on its own training data?",
           "Only if it is not, look at the test errors."],
    family=_degradation_family,
))


def deepen_with_identity_blocks(shallow: nn.Sequential, extra: int) -> nn.Sequential:
    """The shallow net's blocks followed by ``extra`` new ``ResidualBlock(c, c)`` that start as the identity, so
    the deeper net computes exactly what the shallow one does."""
    channels = shallow[-1].out_channels
    new = []
    for _ in range(extra):
        block = ResidualBlock(channels, channels)
        block.zero_init_residual()
        new.append(block)
    return nn.Sequential(*shallow, *new)


def _shallow_args(seed: int, blocks: int, channels: int, extra: int):
    torch.manual_seed(seed)
    shallow = nn.Sequential(*[ResidualBlock(channels, channels) for _ in range(blocks)])
    with torch.no_grad():  # "trained": running statistics that are not the initial 0 / 1
        for k in range(3):
            shallow(_f32(seed + k, 8, channels, 5, 5) * 2 + 1)
    return (shallow, extra), {}


def _run_deepen(fn, shallow, extra):
    before = {k: v.clone() for k, v in shallow.state_dict().items()}
    x = torch.relu(_f32(123, 3, shallow[0].in_channels, 5, 5))
    deep = fn(shallow, extra)
    if not isinstance(deep, nn.Module):
        raise TypeError(f"your function returned {_type_name(deep)}; return an nn.Sequential of blocks")
    deep.eval()
    with torch.no_grad():
        out = deep(x)
    now = shallow.state_dict()
    return Report({"blocks in the deeper network": len(deep) if hasattr(deep, "__len__") else 1,
                   "its output in eval mode": out,
                   "the shallow network's weights unchanged": all(torch.equal(now[k], v) for k, v in before.items())})


def _reports(got: list[Outcome], expected: list[Outcome]):
    return [(g.value, e.value) for g, e in zip(got, expected) if g.error is None and e.error is None]


def _output_differs(g: Report, e: Report) -> bool:
    a, b = g["its output in eval mode"], e["its output in eval mode"]
    return not (isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a, b, atol=1e-5))


def _detect_random_extra(got, expected) -> bool:
    pairs = _reports(got, expected)
    return bool(pairs) and all(g["blocks in the deeper network"] == e["blocks in the deeper network"]
                               and g["the shallow network's weights unchanged"] for g, e in pairs) \
        and any(_output_differs(g, e) and isinstance(g["its output in eval mode"], torch.Tensor)
                and g["its output in eval mode"].abs().max() > 0 for g, e in pairs)


def _detect_plain_extra(got, expected) -> bool:
    pairs = _reports(got, expected)
    return any(isinstance(g["its output in eval mode"], torch.Tensor) and g["its output in eval mode"].abs().max() == 0
               and e["its output in eval mode"].abs().max() > 0 for g, e in pairs)


def _detect_changed_shallow(got, expected) -> bool:
    return any(not g["the shallow network's weights unchanged"] for g, _ in _reports(got, expected))


def _detect_wrong_count(got, expected) -> bool:
    return any(g["blocks in the deeper network"] != e["blocks in the deeper network"] for g, e in _reports(got, expected))


_register(Exercise(
    "deepen_with_identity_blocks", "08", "A deeper ResNet that is exactly as good", deepen_with_identity_blocks,
    cases=[
        Case("2 trained blocks at 4 channels, 2 extra blocks", functools.partial(_shallow_args, 0, 2, 4, 2),
             run=_run_deepen),
        Case("1 trained block at 6 channels, 3 extra blocks", functools.partial(_shallow_args, 1, 1, 6, 3),
             run=_run_deepen),
        Case("3 trained blocks, no extra block", functools.partial(_shallow_args, 2, 3, 4, 0), run=_run_deepen),
    ],
    mistakes=[
        Mistake("random_extra", "The deeper network computes something else: its extra blocks keep their random "
                                "initial weights, so their branches are not zero. Call block.zero_init_residual() "
                                "on every new block (it zeroes the last BatchNorm's γ and β, so F(x) = 0).",
                detect=_detect_random_extra),
        Mistake("plain_extra", "The output is all zeros: the extra blocks have no shortcut (shortcut='none'), so "
                               "zeroing their branches zeroes everything. Use ResidualBlock(c, c), whose identity "
                               "shortcut carries x past the zeroed branch.", detect=_detect_plain_extra),
        Mistake("changed_shallow", "Your function changed the shallow network's own weights (did you "
                                   "zero-initialize its blocks too?). Only the new blocks start as the identity; the "
                                   "trained ones keep what they learned.", detect=_detect_changed_shallow),
        Mistake("wrong_count", "The deeper network should have len(shallow) + extra blocks: the shallow net's "
                               "blocks, then exactly `extra` new ones.", detect=_detect_wrong_count),
    ],
    hints=["The shallow net's last block tells you the channel count: shallow[-1].out_channels.",
           "A new ResidualBlock(c, c) is the identity after block.zero_init_residual() (its input is non-negative, "
           "so the final ReLU changes nothing).",
           "nn.Sequential(*shallow, *new_blocks) chains them."],
))


# --------------------------------------------------------------------------- lesson 09
def adapt_conv1_weights(rgb_weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """conv1 weights for ``in_channels`` inputs from RGB ones (out × 3 × k × k): the colour filters summed and
    spread evenly over the new channels, so a gray image fed as R = G = B gets the same response."""
    from .lessons.l09_torchvision_resnet import (
        adapt_input_channels,  # imports torchvision: lazily
    )

    holder = nn.Module()
    holder.conv1 = nn.Conv2d(3, rgb_weight.shape[0], tuple(rgb_weight.shape[2:]), bias=False, dtype=rgb_weight.dtype)
    with torch.no_grad():
        holder.conv1.weight.copy_(rgb_weight)
    return adapt_input_channels(holder, in_channels).conv1.weight.detach().clone()


def _conv1_family(rgb_weight, in_channels, *, flags=frozenset()):
    w = rgb_weight
    if "red_only" in flags:
        one = w[:, :1]
    elif "mean" in flags:
        one = w.mean(dim=1, keepdim=True)
    else:
        one = w.sum(dim=0 if "wrong_axis" in flags else 1, keepdim=True)
    spread = one.repeat(1, in_channels, 1, 1)
    return spread if "not_spread" in flags else spread / in_channels


_register(Exercise(
    "adapt_conv1_weights", "09", "A 1-channel conv1 from RGB weights", adapt_conv1_weights,
    cases=[
        Case("ResNet-style 7×7 filters (8 of them) → 1 gray channel", lambda: ((_f32(0, 8, 3, 7, 7), 1), {})),
        Case("3×3 filters → 2 input channels", lambda: ((_f32(1, 4, 3, 3, 3), 2), {})),
        Case("1×1 filters → 4 input channels", lambda: ((_f32(2, 5, 3, 1, 1), 4), {})),
    ],
    mistakes=[
        Mistake("mean", "You averaged the colour filters: a gray image fed as R = G = B gets W_R·g + W_G·g + W_B·g, "
                        "the *sum* of the filters, so the mean gives a third of the response."),
        Mistake("red_only", "You kept only the first (red) filter: the green and blue filters' response to a gray "
                            "image is lost. Sum the three colour filters."),
        Mistake("not_spread", "With several new channels each gets the full sum, so the response is in_channels "
                              "times too strong: divide the summed filter by in_channels."),
        Mistake("wrong_axis", "You summed over the wrong axis: the weight is out × in × k × k, and the colours are "
                              "axis 1 (dim=1), not the output filters (dim=0)."),
    ],
    hints=["For R = G = B = g the conv computes (W_R + W_G + W_B) * g: sum over the colour axis, dim=1, keepdim=True.",
           "With k new channels that each receive the gray image, give each 1/k of the sum: .repeat(1, k, 1, 1) / k."],
    family=_conv1_family,
))


class TinyResNet(nn.Module):
    """A stand-in for torchvision's ResNet: a small backbone, global average pooling and a head ``fc``."""

    def __init__(self, width: int = 16, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.relu(self.bn1(self.conv1(x)))), 1))


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Give ``model`` a new head ``fc`` for ``num_classes`` classes (same input features); return the model."""
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def _head_family(model, num_classes, *, flags=frozenset()):
    if "hardcoded_512" in flags:
        fc = nn.Linear(512, num_classes)
    elif "swapped" in flags:
        fc = nn.Linear(num_classes, model.fc.in_features)
    else:
        fc = nn.Linear(model.fc.in_features, num_classes)
    model.fc = fc
    if "returns_layer" in flags:
        return fc
    return None if "no_return" in flags else model


def _head_args(seed: int, width: int, classes: int, new: int):
    torch.manual_seed(seed)
    return (TinyResNet(width, classes), new), {}


def _run_replace_head(fn, model, num_classes):
    backbone = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    out = fn(model, num_classes)
    fc = getattr(out, "fc", None)
    try:
        with torch.no_grad():
            shape: Any = tuple(out(_f32(5, 2, 3, 8, 8)).shape)
    except Exception as err:
        shape = f"the forward pass fails ({type(err).__name__})"
    now = model.state_dict()
    return Report({"what the function returned": type(out).__name__,
                   "fc.in_features": getattr(fc, "in_features", None),
                   "fc.out_features": getattr(fc, "out_features", None),
                   "the output's shape for a batch of 2 images": shape,
                   "the backbone's weights unchanged": all(torch.equal(now[k], v) for k, v in backbone.items())})


_register(Exercise(
    "replace_head", "09", "A new classifier head", replace_head,
    cases=[
        Case("a 1000-class model with 16 features before fc → 10 classes", functools.partial(_head_args, 0, 16, 1000, 10),
             run=_run_replace_head),
        Case("a 10-class model with 8 features → 3 classes", functools.partial(_head_args, 1, 8, 10, 3),
             run=_run_replace_head),
        Case("a model with 512 features (like ResNet-18) → 7 classes", functools.partial(_head_args, 2, 512, 1000, 7),
             run=_run_replace_head),
    ],
    mistakes=[
        Mistake("hardcoded_512", "The new layer has 512 inputs whatever the model: read the number of features "
                                 "from the old head, model.fc.in_features (2048 for ResNet-50, 512 for ResNet-18)."),
        Mistake("swapped", "nn.Linear's arguments are (in_features, out_features): the new head takes "
                           "model.fc.in_features inputs and gives num_classes outputs."),
        Mistake("returns_layer", "You returned the new layer only: assign it to model.fc and return the whole "
                                 "model."),
        Mistake("no_return", "Your function replaced fc but returned nothing: end with `return model`."),
    ],
    hints=["The old head tells you how many features it receives: model.fc.in_features.",
           "model.fc = nn.Linear(model.fc.in_features, num_classes); return model."],
    family=_head_family,
))


# --------------------------------------------------------------------------- lesson 10
def count_residual_paths(n_blocks: int) -> int:
    """Paths from input to output through ``n_blocks`` residual units (each unit: through the branch, or around it)."""
    return 2 ** n_blocks


def _paths_family(n_blocks, *, flags=frozenset()):
    if "lengths" in flags:
        return n_blocks + 1
    if "two_per_block" in flags:
        return 2 * n_blocks
    return 2 ** n_blocks - 1 if "minus_one" in flags else 2 ** n_blocks


_PATH_CASES = [
    _case("no residual unit at all", 0),
    _case("one unit", 1),
    _case("three units", 3),
    _case("ten units", 10),
    _case("ResNet-110's 54 units", 54),
]

_register(Exercise(
    "count_residual_paths", "10", "Counting the paths through a residual stack", count_residual_paths,
    cases=list(_PATH_CASES),
    mistakes=[
        Mistake("lengths", "n + 1 is the number of different path *lengths* (0 … n branches). The paths themselves "
                           "multiply: each unit doubles them (branch or shortcut), so there are 2ⁿ."),
        Mistake("two_per_block", "The choices multiply, they do not add: two ways through each of n units give "
                                 "2·2·…·2 = 2ⁿ paths, not 2·n."),
        Mistake("minus_one", "One path is missing: the one that takes every shortcut and no branch at all "
                             "(length 0) counts too, so there are 2ⁿ, not 2ⁿ − 1."),
    ],
    hints=["Unroll two units: (1 + f₂)(1 + f₁) has four terms, each one path.",
           "Each unit doubles the number of paths."],
    family=_paths_family,
))


def path_length_counts(n_blocks: int) -> list[int]:
    """How many of the 2ⁿ paths pass through exactly k residual branches, for k = 0 … n: C(n, k)."""
    return [math.comb(n_blocks, k) for k in range(n_blocks + 1)]


def _lengths_family(n_blocks, *, flags=frozenset()):
    ks = range(1, n_blocks + 1) if "no_zero_length" in flags else range(n_blocks + 1)
    if "all_ones" in flags:
        return [1 for _ in ks]
    if "fractions" in flags:
        return [math.comb(n_blocks, k) / 2 ** n_blocks for k in ks]
    return [math.comb(n_blocks, k) for k in ks]


_register(Exercise(
    "path_length_counts", "10", "Path lengths: the binomial distribution", path_length_counts,
    cases=list(_PATH_CASES),
    mistakes=[
        Mistake("no_zero_length", "The list must start at length 0: one path takes every shortcut and passes no "
                                  "branch, so there are n + 1 lengths, 0 … n."),
        Mistake("fractions", "These are the *fractions* of paths (C(n, k) / 2ⁿ); the exercise asks for the counts "
                             "C(n, k), as ints (math.comb)."),
        Mistake("all_ones", "There is one way to pick 0 or n branches, but many to pick k of them in between: "
                            "choosing which k of the n units use their branch gives C(n, k) paths."),
    ],
    hints=["A path of length k chooses which k of the n units it passes through their branch.",
           "math.comb(n, k) counts the ways to choose k of n; k runs from 0 to n."],
    family=_lengths_family,
))
