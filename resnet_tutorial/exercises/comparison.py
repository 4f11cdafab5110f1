"""Comparing the learner's answer with the expected one, and saying where they first differ.

Numbers within the exercise's tolerance are equal; types, shapes and dtypes must
match exactly, except in a *lenient* comparison, which forgives a dtype or
number-type slip (a float for an int, a 0-d tensor for a float) so that the
mistake behind the slip can still be recognised.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch

from .catalogue import Exercise, Report
from .running import Outcome
from .values import describe, dtype_text, number, shape_text, type_name


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
        return Diff(where, got, exp, f"{type_name(got)} where a tensor was expected")
    if tuple(got.shape) != tuple(exp.shape):
        return Diff(where, got, exp, f"shape {shape_text(got)} instead of {shape_text(exp)}")
    if got.dtype != exp.dtype:
        if not lenient:
            return Diff(where, got, exp, f"dtype {dtype_text(got.dtype)} instead of {dtype_text(exp.dtype)}")
        if got.is_floating_point() and exp.is_floating_point():  # compare at the precision the learner kept
            exp = exp.detach().to(got.dtype).to(exp.dtype)
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
    return Diff(where, got, exp, f"{int(bad.sum())} of {g.numel()} values differ; the largest difference is at "
                                 f"index {idx}: {number(g64[idx].item())} instead of {number(e64[idx].item())}")


def compare(got: Any, exp: Any, rtol: float, atol: float, where: str = "", lenient: bool = False) -> Diff | None:
    """``None`` when ``got`` matches ``exp`` (numbers within tolerance), else the first :class:`Diff`.

    ``lenient`` forgives dtypes and number types (a float32 tensor for a float64 one,
    a 0-d tensor or a float for an int): used to recognise a mistake behind such a slip.
    """
    if isinstance(exp, torch.Tensor):
        return _compare_tensors(got, exp, rtol, atol, where, lenient)
    if lenient and isinstance(got, torch.Tensor) and got.dim() == 0 and isinstance(exp, numbers.Number):
        got = got.item()
    if lenient and isinstance(exp, numbers.Integral) and not isinstance(exp, bool) and isinstance(got, float):
        return None if got == exp else Diff(where, got, exp, f"{number(got)} instead of {exp}")
    if isinstance(exp, Report):
        return _compare_report(got, exp, rtol, atol, where, lenient)
    if isinstance(exp, bool):
        if isinstance(got, bool) and got == exp:
            return None
        return Diff(where, got, exp, f"{describe(got)} instead of {exp}")
    if isinstance(exp, numbers.Integral):
        return _compare_int(got, exp, where)
    if isinstance(exp, float):
        if isinstance(got, numbers.Real) and not isinstance(got, bool) and not isinstance(got, torch.Tensor):
            g = float(got)
            if (math.isnan(g) and math.isnan(exp)) or math.isclose(g, exp, rel_tol=rtol, abs_tol=atol):
                return None
            return Diff(where, got, exp, f"{number(got)} instead of {number(exp)}")
        return Diff(where, got, exp, f"{type_name(got)} where a float was expected")
    if isinstance(exp, str):
        return None if got == exp else Diff(where, got, exp, f"{describe(got)} instead of {exp!r}")
    if isinstance(exp, (list, tuple)):
        return _compare_sequence(got, exp, rtol, atol, where, lenient)
    if isinstance(exp, dict):
        return _compare_dict(got, exp, rtol, atol, where, lenient)
    if exp is None:
        return None if got is None else Diff(where, got, exp, f"{describe(got)} instead of None")
    return None if got == exp else Diff(where, got, exp, f"{describe(got)} instead of {describe(exp)}")


def _compare_int(got: Any, exp: numbers.Integral, where: str) -> Diff | None:
    if isinstance(got, numbers.Integral) and not isinstance(got, bool):
        return None if int(got) == int(exp) else Diff(where, got, exp, f"{int(got)} instead of {exp}")
    if isinstance(got, float) and got == exp:
        return Diff(where, got, exp, f"{number(got)}, {type_name(got)}, where the int {exp} was expected")
    return Diff(where, got, exp, f"{type_name(got)} where an int was expected")


def _compare_report(got: Any, exp: Report, rtol: float, atol: float, where: str, lenient: bool) -> Diff | None:
    if not isinstance(got, dict):
        return Diff(where, got, exp, f"{type_name(got)} instead of a report")
    for key, value in exp.items():
        d = compare(got.get(key), value, rtol, atol, key, lenient)
        if d is not None:
            return d
    return None


def _compare_sequence(got: Any, exp: list | tuple, rtol: float, atol: float, where: str, lenient: bool) -> Diff | None:
    if not isinstance(got, (list, tuple)):
        return Diff(where, got, exp, f"{type_name(got)} where a {type(exp).__name__} was expected")
    if len(got) != len(exp):
        return Diff(where, got, exp, f"{len(got)} items instead of {len(exp)}")
    for i, (g, e) in enumerate(zip(got, exp)):
        d = compare(g, e, rtol, atol, _join(where, f" item {i}"), lenient)
        if d is not None:
            return d
    return None


def _compare_dict(got: Any, exp: dict, rtol: float, atol: float, where: str, lenient: bool) -> Diff | None:
    if not isinstance(got, dict):
        return Diff(where, got, exp, f"{type_name(got)} where a dict was expected")
    missing, extra = [k for k in exp if k not in got], [k for k in got if k not in exp]
    if missing or extra:
        parts = ([f"missing keys {missing}"] if missing else []) + ([f"unexpected keys {extra}"] if extra else [])
        return Diff(where, got, exp, "; ".join(parts))
    for key, value in exp.items():
        d = compare(got[key], value, rtol, atol, _join(where, f"[{key!r}]"), lenient)
        if d is not None:
            return d
    return None


def compare_outcomes(got: Outcome, exp: Outcome, ex: Exercise, lenient: bool = False,
                     inputs: bool = True) -> Diff | None:
    """``None`` when the learner's outcome on a case is right: the same value (or the same refusal),
    and (unless ``inputs=False``) no argument changed in place that the reference leaves alone."""
    if got.timed_out:
        return Diff("", None, exp.value, "the call was stopped at the time limit")
    if exp.error is not None:  # the reference refuses this input: so must the learner
        if got.error is None:
            return Diff("", got.value, exp.error, f"returned {describe(got.value)}, but this input must be refused "
                                                  f"with a {type(exp.error).__name__}")
        if isinstance(got.error, type(exp.error)):
            return None
        return Diff("", got.error, exp.error, f"raised {type(got.error).__name__} instead of {type(exp.error).__name__}")
    if got.error is not None:
        return Diff("", got.error, exp.value, f"raised {got.describe()}")
    d = compare(got.value, exp.value, ex.rtol, ex.atol, lenient=lenient)
    if d is None and inputs and set(got.changed_inputs) - set(exp.changed_inputs):
        names = ", ".join(sorted(set(got.changed_inputs) - set(exp.changed_inputs)))
        return Diff("", got.value, exp.value, f"the right answer, but your function changed its input {names} in place")
    return d
