"""Mistakes any exercise can have, recognised from the answers alone.

The exercise's own mistakes (wrong variants of its function) are tried first,
in :mod:`.diagnosis`; when none fits, these general recognisers look at how the
learner's answers relate to the expected ones, case by case:

* the right values in the wrong form: floats where ints are asked
  (``float_for_int``), tensors where numbers are asked (``tensor_for_number``),
  the wrong dtype (``wrong_dtype``), an extra dimension of size 1
  (``extra_dimension``), tuple items stacked into one tensor (``stacked``),
  the items of a tuple in another order (``swapped_items``), the intermediate
  results returned with the answer last (``all_steps``), dict keys spelled
  differently (``key_names``), words spelled differently (``spelling``);
* answers related to the right ones by a rule: every answer the same factor off
  (``scaled``), a list shifted by one position (``shifted``), a word that is
  none of the allowed answers (``unknown_answer``), the right inputs refused with
  another exception (``wrong_exception``), no ``return`` (``no_return``);
* a familiar error message, explained (``broadcast_error``, ``matmul_shapes``,
  ``bool_mean``, ``none_value``, ``no_graph``, ``tensor_truth``);
* an input changed in place (``mutated_input``), named alongside anything else.

Each recogniser must hold on every case: the learner's answer is either right
or related to the right one by that rule.
"""

from __future__ import annotations

import difflib
import itertools
import numbers
import re
from typing import Any, Callable

import torch

from .catalogue import Exercise, Mistake
from .comparison import Diff, compare, compare_outcomes
from .running import Outcome
from .values import describe, dtype_text, number


def general_mistake(ex: Exercise, got: list[Outcome], expected: list[Outcome],
                    diffs: list[Diff | None]) -> Mistake | None:
    """The first general mistake that explains every case (None when none does)."""
    for recogniser in (_no_return, _slip, _wrong_exception, _spelling, _unknown_answer, _relation, _error_message):
        found = recogniser(ex, got, expected, diffs)
        if found is not None:
            return found
    return None


def mutated(got: list[Outcome]) -> Mistake | None:
    """The inputs the learner's function changed in place, as a mistake (None when it changed none)."""
    names = sorted({n for g in got for n in g.changed_inputs})
    if not names:
        return None
    return Mistake("mutated_input", f"Your function changes its input {', '.join(names)} in place (an in-place "
                                    "operation such as x -= ..., x /= ..., x.sub_(...), or x[...] = ...), so the "
                                    "caller's tensor is no longer what it was. Compute new tensors instead: "
                                    "y = x - mean, or work on x.clone().")


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


# --------------------------------------------------------------------------- the right values in the wrong form
def _no_return(ex, got, expected, diffs) -> Mistake | None:
    if all(g.error is None and g.value is None for g in got):
        return Mistake("no_return", "Your function returned None on every case: did you forget the `return` "
                                    "statement?")
    return None


def _slip(ex, got, expected, diffs) -> Mistake | None:
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


def _wrong_exception(ex, got, expected, diffs) -> Mistake | None:
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


def _words(expected: list[Outcome]) -> list[str]:
    return sorted({e.value for e in expected if isinstance(e.value, str)})


def _spelling(ex, got, expected, diffs) -> Mistake | None:
    values = [(g.value, e.value) for g, e in zip(got, expected)]
    if not all(isinstance(g, str) and isinstance(e, str) for g, e in values):
        return None
    if all(" ".join(g.lower().split()) == e.lower() for g, e in values):
        return Mistake("spelling", f"The right answers, spelled differently: return exactly the words of the "
                                   f"docstring, {', '.join(repr(w) for w in _words(expected))} (lower case, single "
                                   "spaces).")
    return None


def _unknown_answer(ex, got, expected, diffs) -> Mistake | None:
    words = _words(expected)
    if not words or not all(isinstance(e.value, str) for e in expected):
        return None
    odd = sorted({g.value for g in got if isinstance(g.value, str) and g.value not in words})
    if not odd:
        return None
    return Mistake("unknown_answer", f"{odd[0]!r} is not one of the answers this function may give: return exactly "
                                     f"one of {', '.join(repr(w) for w in words)}.")


# --------------------------------------------------------------------------- answers related to the right ones
def _holds(ex: Exercise, got: list[Outcome], expected: list[Outcome],
           relation: Callable[[Any, Any], bool]) -> bool:
    """Every case is right or satisfies ``relation(got, expected)``, and at least one needs the relation."""
    used = False
    for g, e in zip(got, expected):
        if compare_outcomes(g, e, ex) is None:
            continue
        if g.error is not None or e.error is not None:
            return False
        try:
            if not relation(g.value, e.value):
                return False
        except Exception:  # a relation that cannot even be computed does not hold
            return False
        used = True
    return used


def _same(ex: Exercise) -> Callable[[Any, Any], bool]:
    return lambda a, b: compare(a, b, ex.rtol, ex.atol) is None


def _relation(ex, got, expected, diffs) -> Mistake | None:
    same = _same(ex)
    checks: list[tuple[Callable[[Any, Any], bool], Callable[[], Mistake]]] = [
        (lambda g, e: _is_extra_dimension(g, e, same), _extra_dimension),
        (lambda g, e: _is_stacked(g, e, same), _stacked),
        (lambda g, e: _permutation(g, e, same) is not None, lambda: _swapped(got, expected, same)),
        (lambda g, e: _is_all_steps(g, e, same), _all_steps),
        (lambda g, e: _renamed_keys(g, e, same) is not None, lambda: _key_names(got, expected, same)),
        (lambda g, e: _shift(g, e, same) is not None, lambda: _shifted(got, expected, same)),
    ]
    for relation, mistake in checks:
        if _holds(ex, got, expected, relation):
            return mistake()
    factor = _common_factor(ex, got, expected)
    return _scaled(factor) if factor is not None else None


def _is_extra_dimension(g: Any, e: Any, same: Callable) -> bool:
    return (isinstance(g, torch.Tensor) and isinstance(e, torch.Tensor) and g.shape != e.shape
            and g.numel() == e.numel() and [s for s in g.shape if s != 1] == [s for s in e.shape if s != 1]
            and same(g.reshape(e.shape), e))


def _extra_dimension() -> Mistake:
    return Mistake("extra_dimension", "The values are right but the shape is not: it has an extra (or a missing) "
                                      "dimension of size 1. Look for an unsqueeze, a [None], a keepdim=True or a "
                                      "view(...) too many, or squeeze the answer to the shape the docstring gives.")


def _is_stacked(g: Any, e: Any, same: Callable) -> bool:
    return (isinstance(g, torch.Tensor) and isinstance(e, (tuple, list)) and len(e) > 1 and g.dim() > 0
            and g.shape[0] == len(e) and all(same(g[i], item) for i, item in enumerate(e)))


def _stacked() -> Mistake:
    return Mistake("stacked", "The values are right, but stacked into one tensor: return them as separate items, "
                              "a tuple (a, b), as the docstring says.")


def _permutation(g: Any, e: Any, same: Callable) -> tuple[int, ...] | None:
    if not (isinstance(g, (tuple, list)) and isinstance(e, (tuple, list)) and 1 < len(g) == len(e) <= 6):
        return None
    for perm in itertools.permutations(range(len(e))):
        if perm != tuple(range(len(e))) and all(same(g[i], e[j]) for i, j in enumerate(perm)):
            return perm
    return None


def _swapped(got: list[Outcome], expected: list[Outcome], same: Callable) -> Mistake:
    perms = {_permutation(g.value, e.value, same) for g, e in zip(got, expected)} - {None}
    reverse = all(p == tuple(range(len(p)))[::-1] for p in perms)
    what = "in reverse order" if reverse and max(len(p) for p in perms) > 2 else "in another order"
    return Mistake("reversed_items" if what == "in reverse order" else "swapped_items",
                   f"Every item is right, but they come {what}: return them in the order the docstring gives.")


def _is_all_steps(g: Any, e: Any, same: Callable) -> bool:
    return isinstance(g, (list, tuple)) and not isinstance(e, (list, tuple)) and len(g) > 0 and same(g[-1], e)


def _all_steps() -> Mistake:
    return Mistake("all_steps", "You returned a list of every intermediate result, and the last one is the answer: "
                                "return only that final result.")


def _renamed_keys(g: Any, e: Any, same: Callable) -> dict[str, str] | None:
    if not (isinstance(g, dict) and isinstance(e, dict)) or len(g) != len(e) or set(g) == set(e):
        return None
    renamed = {}
    for key in set(e) - set(g):
        close = difflib.get_close_matches(str(key), [str(k) for k in set(g) - set(e)], n=1, cutoff=0.6)
        if not close or not same(g[close[0]], e[key]):
            return None
        renamed[close[0]] = key
    return renamed if all(same(g[k], e[k]) for k in set(e) & set(g)) else None


def _key_names(got: list[Outcome], expected: list[Outcome], same: Callable) -> Mistake:
    renamed: dict[str, str] = {}
    for g, e in zip(got, expected):
        renamed.update(_renamed_keys(g.value, e.value, same) or {})
    pairs = ", ".join(f"{a!r} should be {b!r}" for a, b in sorted(renamed.items()))
    return Mistake("key_names", f"The values are right, but some keys are spelled differently ({pairs}): use the "
                                "docstring's keys exactly, they are how the answer is read.")


def _shift(g: Any, e: Any, same: Callable) -> str | None:
    if not (isinstance(g, list) and isinstance(e, list) and len(g) == len(e) >= 2):
        return None
    if all(same(a, b) for a, b in zip(g[:-1], e[1:])):
        return "late"
    if all(same(a, b) for a, b in zip(g[1:], e[:-1])):
        return "early"
    return None


def _shifted(got: list[Outcome], expected: list[Outcome], same: Callable) -> Mistake:
    ways = {_shift(g.value, e.value, same) for g, e in zip(got, expected)} - {None}
    how = "one step late (your first number is the expected second)" if ways == {"late"} else \
        "one step early (your second number is the expected first)" if ways == {"early"} else "by one position"
    return Mistake("shifted", f"Your list is shifted {how}: check where your loop or range starts and ends "
                              "(range(n + 1) runs 0 … n).")


def _numbers(value: Any) -> list[float] | None:
    """The numbers in an answer (a number, a float tensor, a list of numbers), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        try:
            return [float(value)]
        except OverflowError:  # an int beyond float's range: no factor can be read from it
            return None
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().double().reshape(-1).tolist()
    if isinstance(value, (list, tuple)) and value and all(_numbers(v) is not None for v in value):
        return [x for v in value for x in _numbers(v)]  # type: ignore[union-attr]
    return None


def _common_factor(ex: Exercise, got: list[Outcome], expected: list[Outcome]) -> float | None:
    """The factor c with got == c · expected on every wrong case (the same c everywhere), if there is one."""
    factors = []
    for g, e in zip(got, expected):
        if compare_outcomes(g, e, ex) is None:
            continue
        gs, es = (_numbers(g.value), _numbers(e.value)) if g.error is None and e.error is None else (None, None)
        if gs is None or es is None or len(gs) != len(es):
            return None
        big = max(range(len(es)), key=lambda i: abs(es[i]))
        if es[big] == 0:
            return None
        c = gs[big] / es[big]
        if not all(abs(a - c * b) <= 1e-6 * max(1.0, abs(c * b)) + ex.atol for a, b in zip(gs, es)):
            return None
        factors.append(c)
    if not factors or any(abs(c - factors[0]) > 1e-6 * abs(factors[0]) for c in factors) or abs(factors[0] - 1) < 1e-9:
        return None
    return factors[0]


def _scaled(c: float) -> Mistake:
    return Mistake("scaled", f"Every answer is {c:.6g} times the expected one: look for a factor that "
                             "should not be there (×100 for a percentage, a sum where a mean belongs, an extra 2) or "
                             "one that is missing (a division by n or by the batch size).")


# --------------------------------------------------------------------------- familiar error messages
_ERRORS = [
    (r"size of tensor a \(\d+\) must match the size of tensor b", "broadcast_error",
     "Two tensors do not line up in an element-wise operation: PyTorch matches their sizes from the *last* "
     "dimension. A per-channel vector of shape (C,) acting on an N×C×H×W tensor needs .view(1, -1, 1, 1) (or "
     "keepdim=True when it comes from a reduction); print both operands' shapes on the line shown."),
    (r"shapes cannot be multiplied|size mismatch|inconsistent tensor size", "matmul_shapes",
     "A matrix product got shapes that do not fit (a @ b needs a's last size to equal b's first): print both "
     "shapes on the line shown. Is one operand transposed, or are they in the wrong order?"),
    (r"could not infer output dtype.*Bool|mean\(\).*Bool", "bool_mean",
     "mean() of a bool tensor (a comparison such as pred == y) is not defined: convert it first, "
     "(pred == y).float().mean()."),
    (r"'NoneType' object has no attribute", "none_value",
     "Something is None where a value was expected: a .grad that no backward pass has filled (zero_grad() sets it "
     "to None; a layer the loss does not reach has none), or a function that returns nothing."),
    (r"does not require grad and does not have a grad_fn", "no_graph",
     "backward() found no graph: the forward pass ran under torch.no_grad() (or on detached tensors). Compute "
     "the loss with autograd on."),
    (r"Boolean value of Tensor with more than one", "tensor_truth",
     "if, and, or on a tensor with several values is ambiguous: compare plain numbers (.item()) or use "
     ".all() / .any()."),
]


def _error_message(ex, got, expected, diffs) -> Mistake | None:
    errors = [g.error for g, e in zip(got, expected) if g.error is not None and e.error is None]
    for error in errors[:1]:
        for pattern, name, advice in _ERRORS:
            if re.search(pattern, str(error)):
                return Mistake(name, advice)
    return None
